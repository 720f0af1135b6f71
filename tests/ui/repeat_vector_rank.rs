use keras::prelude::*;

sequential! {
    struct Net = Input((3, 4)) => RepeatVector(2);
}

sequential! {
    struct NoTimes = Input(4) => RepeatVector(0);
}

fn main() {}
