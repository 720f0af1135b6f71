use keras::prelude::*;

sequential! {
    struct Net = Input((4, 3)) => BatchNormalization(axis = 1) => Dense(1, kernel_initializer = he_normal) => BatchNormalization(momentum = 1.5);
}

fn main() {}
