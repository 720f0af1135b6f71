use keras::prelude::*;

sequential! {
    struct Small = Input((2, 5, 1)) => Conv2D(4, (3, 3));
}

sequential! {
    struct Dilated = Input((5, 5, 1)) => Conv2D(4, 3, dilation_rate = 3);
}

sequential! {
    struct Pooled = Input((28, 28, 1)) => Conv2D(8, 3) => MaxPooling2D((2, 2)) => AveragePooling2D(14);
}

fn main() {}
