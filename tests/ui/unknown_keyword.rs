use keras::prelude::*;

sequential! {
    struct Net = Dense(units = 8, in = 4, activaton = relu) => Dropout(0.5, noise_shape = 3) => Dense(1);
}

fn main() {}
