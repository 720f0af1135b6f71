use keras::prelude::*;

sequential! {
    struct Net = Input(4) => Dense => Dense(1);
}

fn main() {}
