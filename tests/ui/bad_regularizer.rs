use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, relu, kernel_regularizer = l2(-0.01)) => Dense(1, bias_regularizer = l3(0.1));
}

fn main() {}
