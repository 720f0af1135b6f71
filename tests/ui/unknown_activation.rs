use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, rleu) => Dense(1, activation = "sigmod");
}

fn main() {}
