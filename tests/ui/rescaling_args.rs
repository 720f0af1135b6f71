use keras::prelude::*;

sequential! {
    struct NoScale = Input(4) => Rescaling();
}

sequential! {
    struct NotNumbers = Input(4) => Rescaling("1/255", offset = minus_one);
}

sequential! {
    struct Infinite = Input(4) => Rescaling(1.0 / 0.0) => Rescaling(0.5, 1.0, 2.0) => Rescaling(0.5, shift = 1.0);
}

fn main() {}
