use keras::prelude::*;

sequential! {
    struct Net = Dense(8, relu, in = 4, activation = tanh) => Dense(units = 1, units = 2);
}

fn main() {}
