use keras::prelude::*;

sequential! {
    struct Net = Input((28, 28, 4))
        => DepthwiseConv2D(3, depth_multiplier = 0)
        => DepthwiseConv2D((3, 0))
        => DepthwiseConv2D(3, strides = (1, 0))
        => DepthwiseConv2D(3, dilation_rate = 0)
        => DepthwiseConv2D(padding = "same")
        => SeparableConv2D(0, 3)
        => SeparableConv2D(8, 3, depth_multiplier = -1)
        => SeparableConv2D(8)
        => SeparableConv2D(8, 3, padding = "causal")
        => Conv2DTranspose(0, 3)
        => Conv2DTranspose(8, 3, strides = 0)
        => Conv2DTranspose(8, 3, strides = 2, dilation_rate = 2)
        => Conv2DTranspose(8, (2, 2, 2));
}

fn main() {}
