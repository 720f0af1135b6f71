use keras::prelude::*;

sequential! {
    struct Net = Input((4, 4, 2)) => GaussianNoise(-0.1) => GaussianDropout(1.0) => SpatialDropout2D(1.5);
}

sequential! {
    struct Flat = Input(8) => SpatialDropout2D(0.5);
}

fn main() {}
