use keras::prelude::*;

sequential! {
    struct Net = Input(4) => Dence(8, relu) => Dense(1);
}

fn main() {}
