use keras::prelude::*;

sequential! {
    struct Short = Input((4, 2)) => Conv1D(4, 5);
}

sequential! {
    struct Dilated = Input((6, 2)) => Conv1D(4, 3, dilation_rate = 3);
}

sequential! {
    struct Pooled = Input((9, 2)) => Conv1D(4, 3) => MaxPooling1D(8);
}

sequential! {
    struct Image = Input((8, 8, 1)) => Conv1D(4, 3) => Flatten() => Dense(1);
}

sequential! {
    struct Flat = Input(10) => GlobalAveragePooling1D() => Dense(1);
}

fn main() {}
