//! The models of the preprocessing layers' fixtures, and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! {
    pub struct RescaleNet = Input(6) => Rescaling(1.0 / 255.0) => Dense(4, tanh) => Rescaling(2.5, offset = -0.5) => Dense(3, softmax);
}
sequential! {
    pub struct RescaleImage = Input((4, 4, 2)) => Rescaling(1.0 / 127.5, offset = -1) => Conv2D(2, 3, tanh) => Flatten() => Dense(3, softmax);
}

sequential! { pub struct NormAdapt = Input(4) => Normalization() => Dense(3, softmax); }
sequential! { pub struct NormAxis1 = Input((3, 4)) => Normalization(axis = 1) => Flatten() => Dense(3, softmax); }
sequential! { pub struct NormAxes12 = Input((2, 3, 4)) => Normalization(axis = (1, 2)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct NormNoneInvert = Input((3, 4)) => Normalization(axis = None, invert = true) => Flatten() => Dense(3, softmax); }
sequential! {
    pub struct NormGiven = Input(3) => Normalization(mean = [1.0, -2.0, 0.5], variance = [4.0, 0.25, 1.0]) => Dense(4, tanh)
        => Normalization(mean = 0.5, variance = 2.0, invert = true) => Dense(3, softmax);
}

/// Every fixture of this group, trained on `device` to Keras's numbers (the adapted statistics
/// are the fixtures' `weights_init`).
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<RescaleNet<B>>(device, "D_layer_rescaling", 1e-5);
    run_fixture_on::<RescaleImage<B>>(device, "D_layer_rescaling_image", 1e-5);
    run_fixture_on::<NormAdapt<B>>(device, "D_layer_normalization_adapt", 1e-5);
    run_fixture_on::<NormAxis1<B>>(device, "D_layer_normalization_axis1", 1e-5);
    run_fixture_on::<NormAxes12<B>>(device, "D_layer_normalization_axes12", 1e-5);
    run_fixture_on::<NormNoneInvert<B>>(device, "D_layer_normalization_none_invert", 1e-5);
    run_fixture_on::<NormGiven<B>>(device, "D_layer_normalization_given", 1e-5);
}
