use keras::prelude::*;

sequential! {
    struct Small = Input((2, 5, 3)) => DepthwiseConv2D((3, 3));
}

sequential! {
    struct Dilated = Input((8, 8, 1)) => SeparableConv2D(4, 3, dilation_rate = 4);
}

sequential! {
    struct Sequence = Input((10, 4)) => DepthwiseConv2D(3) => Flatten() => Dense(1);
}

sequential! {
    struct Flat = Input(16) => SeparableConv2D(4, 3) => Flatten() => Dense(1);
}

sequential! {
    struct Vector = Input(16) => Conv2DTranspose(4, 3) => Flatten() => Dense(1);
}

sequential! {
    struct Huge = Input((40000, 40000, 1)) => Conv2DTranspose(8, 3, strides = 4) => GlobalMaxPooling2D();
}

fn main() {}
