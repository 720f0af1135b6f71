use keras::prelude::*;

sequential! {
    struct Net = Dense(8.5, in = 4) => Dense(4, use_bias = 1) => Dense(2, in = "four") => Dense(1, name = hidden);
}

fn main() {}
