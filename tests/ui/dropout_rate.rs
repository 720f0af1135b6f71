use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4) => Dropout(1.0) => Dense(1) => Dropout(-0.1);
}

fn main() {}
