use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, kernel_initializer = glorot_uniformm) => Dense(1, bias_initializer = constant(value = 0.1, scale = 2));
}

fn main() {}
