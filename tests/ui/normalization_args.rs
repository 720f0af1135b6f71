use keras::prelude::*;

sequential! {
    struct OutOfRange = Input(4) => Normalization(axis = 2);
}

sequential! {
    struct BatchAxis = Input(4) => Normalization(axis = 0);
}

sequential! {
    struct Apart = Input((2, 3, 4)) => Normalization(axis = (1, 3));
}

sequential! {
    struct Twice = Input(4) => Normalization(axis = (1, -1));
}

sequential! {
    struct NotAnAxis = Input(4) => Normalization(axis = "last", invert = 1);
}

sequential! {
    struct MeanOnly = Input(3) => Normalization(mean = [1.0, 2.0, 3.0]);
}

sequential! {
    struct Shapes = Input(3) => Normalization(mean = [1.0, 2.0, 3.0], variance = 1.0) => Normalization(mean = 0.0, variance = -2.0);
}

sequential! {
    struct Lengths = Input(3) => Normalization(mean = [1.0, 2.0], variance = [1.0, 1.0]);
}

sequential! {
    struct Scalars = Input((3, 4)) => Normalization(axis = None, mean = [1.0], variance = [1.0]);
}

sequential! {
    struct Wrapped = Input((3, 4)) => TimeDistributed(Normalization());
}

fn main() {}
