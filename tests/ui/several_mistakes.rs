use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, rleu) => Dense(0) => Dense(4, in = 9) => Dropout(2.0);
}

fn main() {}
