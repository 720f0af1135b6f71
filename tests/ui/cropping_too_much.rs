use keras::prelude::*;

sequential! {
    struct NoRows = Input((4, 5, 1)) => Cropping2D(((2, 2), (0, 0)));
}

sequential! {
    struct NoColumns = Input((4, 5, 1)) => Cropping2D((1, 3));
}

fn main() {}
