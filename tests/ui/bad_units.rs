use keras::prelude::*;

sequential! {
    struct Net = Dense(0, in = 4) => Dense(-3);
}

fn main() {}
