use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, name = "hidden") => Dense(4, name = "hidden") => Dense(2, name = "dense") => Dense(1);
}

fn main() {}
