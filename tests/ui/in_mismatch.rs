use keras::prelude::*;

sequential! {
    pub struct Bad = Dense(32, in = 784) => Dense(10, in = 64);
}

fn main() {}
