use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4) => Input(8) => Dense(1);
}

fn main() {}
