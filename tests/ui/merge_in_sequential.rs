use keras::prelude::*;

sequential! {
    struct Net = Input(4) => Dense(4) => Add();
}

fn main() {}
