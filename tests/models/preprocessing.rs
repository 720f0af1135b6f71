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

/// Every fixture of this group, trained on `device` to Keras's numbers.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<RescaleNet<B>>(device, "D_layer_rescaling", 1e-5);
    run_fixture_on::<RescaleImage<B>>(device, "D_layer_rescaling_image", 1e-5);
}
