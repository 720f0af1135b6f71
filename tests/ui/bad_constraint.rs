use keras::prelude::*;

sequential! {
    struct Net = Dense(8, in = 4, kernel_constraint = max_norm(0)) => Dense(4, kernel_constraint = min_max_norm(min_value = 2.0, max_value = 1.0))
        => Dense(1, bias_constraint = unit_norm(axis = 1));
}

fn main() {}
