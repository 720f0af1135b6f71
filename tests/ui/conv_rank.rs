use keras::prelude::*;

sequential! {
    struct Flat = Input(784) => Conv2D(32, (3, 3), relu) => Flatten() => Dense(10);
}

sequential! {
    struct Sequence = Input((10, 4)) => MaxPooling2D(2) => Flatten() => Dense(1);
}

fn main() {}
