use keras::prelude::*;

sequential! {
    struct Net = Input((28, 3))
        => Conv1D(0, 3)
        => Conv1D(8, (3, 3))
        => Conv1D(8, 3, strides = 0)
        => Conv1D(8, 3, padding = "full")
        => Conv2D(8, 3, padding = "causal")
        => Conv1D(8)
        => MaxPooling1D((2, 2));
}

fn main() {}
