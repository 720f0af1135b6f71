//! The models of the activation layers' fixtures (`tests/fixtures/gen_activation_layers.py`), and
//! those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! {
    pub struct ReluNet = Input(6) => Dense(8) => ReLU(max_value = 0.6, negative_slope = 0.1, threshold = 0.05) => Dense(5)
        => LeakyReLU(negative_slope = 0.2) => Dense(4) => ReLU() => Dense(3, softmax);
}
sequential! {
    pub struct ReluDefaults = Input((3, 4)) => Dense(5) => LeakyReLU() => Flatten() => Dense(4) => ReLU(6.0) => Dense(3, softmax);
}
sequential! {
    pub struct EluSoftmax = Input((3, 4)) => Dense(5) => ELU(alpha = 0.7) => Dense(4) => ELU() => Flatten() => Dense(3) => Softmax();
}
sequential! {
    pub struct SoftmaxAxis = Input((3, 4)) => Dense(4) => Softmax(axis = 2) => Flatten() => Dense(3, softmax);
}
sequential! {
    pub struct PReluNet = Input(5) => Dense(6) => PReLU() => Dense(3, softmax);
}
sequential! {
    pub struct PReluShared = Input((5, 5, 2)) => Conv2D(3, 3) => PReLU(shared_axes = [1, 2]) => Flatten() => Dense(3, softmax);
}
sequential! {
    pub struct PReluFull = Input((3, 4)) => Dense(4) => PReLU() => PReLU(shared_axes = 1) => Flatten() => Dense(3, softmax);
}
sequential! {
    /// All five layers, as `activation_layers_files.*` holds them.
    pub struct AllFive = Input(4) => Dense(6) => ReLU(max_value = 1.5, threshold = 0.1) => Dense(6) => LeakyReLU(0.25) => Dense(5)
        => ELU(0.5) => Dense(5) => PReLU() => Dense(3) => Softmax();
}

/// The fixtures' cases: (fixture, how to run it on a device).
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<ReluNet<B>>(device, "D_layer_relu", 1e-5);
    run_fixture_on::<ReluDefaults<B>>(device, "D_layer_relu_defaults", 1e-5);
    run_fixture_on::<EluSoftmax<B>>(device, "D_layer_elu_softmax", 1e-5);
    run_fixture_on::<SoftmaxAxis<B>>(device, "D_layer_softmax_axis", 1e-5);
    run_fixture_on::<PReluNet<B>>(device, "D_layer_prelu", 1e-5);
    run_fixture_on::<PReluShared<B>>(device, "D_layer_prelu_shared", 1e-5);
    run_fixture_on::<PReluFull<B>>(device, "D_layer_prelu_full", 1e-5);
    run_lambda(device);
}

sequential! {
    pub struct LambdaNet = Input(5) => Dense(6) => Lambda(|x| x * x.sigmoid()) => Dense(4)
        => Lambda(|x| x.clip(-0.5, 0.5) * 2.0 + x.tanh()) => Dense(3, softmax);
}

/// `ln(1 + x²)`, for `Lambda` by path.
pub fn log_square<T: keras::autodiff::Real>(x: T) -> T {
    x.square().ln_1p()
}

sequential! {
    pub struct LambdaImage = Input((5, 5, 2)) => Conv2D(2, 3) => Lambda(log_square) => Flatten() => Dense(3, softmax);
}

/// The Lambda fixtures on a device: the layer runs on the host, its input and gradient copied.
pub fn run_lambda<B: Backend>(device: &B) {
    run_fixture_on::<LambdaNet<B>>(device, "D_layer_lambda", 1e-5);
    run_fixture_on::<LambdaImage<B>>(device, "D_layer_lambda_image", 1e-5);
}
