use keras::prelude::*;

sequential! {
    struct Net = Input((28, 28)) => Reshape((10, 10)) => Dense(1) => Reshape((-1, 3));
}

fn main() {}
