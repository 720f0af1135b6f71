use keras::prelude::*;

sequential! {
    struct Net = Input((28, 28, 1))
        => Conv2D(0, (3, 3))
        => Conv2D(8, (3, 0))
        => Conv2D(8, 3, strides = (0, 1))
        => Conv2D(8, 3, dilation_rate = 0)
        => Conv2D(8, 3, padding = "full")
        => Conv2D(8)
        => MaxPooling2D(2, strides = 0);
}

fn main() {}
