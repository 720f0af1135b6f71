use keras::prelude::*;

sequential! {
    struct Negative = Input((4, 4, 1)) => ZeroPadding2D(-1);
}

sequential! {
    struct ThreeSides = Input((4, 4, 1)) => ZeroPadding2D((1, 2, 3));
}

sequential! {
    struct Flat = Input(16) => ZeroPadding2D(1);
}

fn main() {}
