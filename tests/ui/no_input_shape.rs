use keras::prelude::*;

sequential! {
    struct Net = Dense(32, relu) => Dense(1, sigmoid);
}

fn main() {}
