//! The models of the reshaping layers' fixtures, and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! { pub struct PermuteNet = Input((3, 4, 2)) => Dense(3, tanh) => Permute((3, 1, 2)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct RepeatNet = Input(5) => Dense(3, tanh) => RepeatVector(4) => Dense(2, tanh) => Flatten() => Dense(3, softmax); }
sequential! { pub struct UpNearest = Input((3, 3, 2)) => Conv2D(2, 2, tanh) => UpSampling2D((2, 3)) => Flatten() => Dense(3, softmax); }
sequential! {
    pub struct UpBilinear = Input((4, 3, 2)) => Conv2D(2, 2, tanh) => UpSampling2D((3, 2), interpolation = "bilinear") => Flatten() => Dense(3, softmax);
}
sequential! {
    pub struct PadNet = Input((4, 4, 2)) => ZeroPadding2D(((1, 2), (0, 1))) => Conv2D(2, 3, tanh) => ZeroPadding2D(1) => Flatten() => Dense(3, softmax);
}
sequential! {
    pub struct CropNet = Input((6, 6, 2)) => Conv2D(3, 1, tanh) => Cropping2D(((1, 0), (2, 1))) => Cropping2D((1, 0)) => Flatten() => Dense(3, softmax);
}
sequential! { pub struct TdDense = Input((5, 4)) => TimeDistributed(Dense(3, tanh)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct TdConv = Input((3, 5, 5, 2)) => TimeDistributed(Conv2D(2, 3, relu)) => Flatten() => Dense(3, softmax); }

/// Every fixture of this group, trained on `device` to Keras's numbers.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<PermuteNet<B>>(device, "D_layer_permute", 1e-5);
    run_fixture_on::<RepeatNet<B>>(device, "D_layer_repeatvector", 1e-5);
    run_fixture_on::<UpNearest<B>>(device, "D_layer_upsampling2d_nearest", 1e-5);
    run_fixture_on::<UpBilinear<B>>(device, "D_layer_upsampling2d_bilinear", 1e-5);
    run_fixture_on::<PadNet<B>>(device, "D_layer_zeropadding2d", 1e-5);
    run_fixture_on::<CropNet<B>>(device, "D_layer_cropping2d", 1e-5);
    run_fixture_on::<TdDense<B>>(device, "D_layer_timedistributed_dense", 1e-5);
    run_fixture_on::<TdConv<B>>(device, "D_layer_timedistributed_conv2d", 1e-5);
}
