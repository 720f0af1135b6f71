//! Parity with real Keras 3: the same models, weights, data and training give the same
//! predictions, gradients, losses and weights (fixtures in `tests/fixtures/`). The losses have
//! their own file, `tests/losses.rs`.
//!
//! Each tensor is compared at its own scale (`max |ours - keras| / max |keras|`, see
//! `common::rel_err`); the tolerance is 1e-5 everywhere.

mod common;

use common::{Fixture, assert_close, run_fixture};
use keras::backend::BiasAct;
use keras::prelude::*;

const RTOL: f64 = 1e-5;

sequential! { struct Softmax3 = Dense(5, in = 4, relu) => Dense(3, softmax); }
sequential! { struct XorNet = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid); }

sequential! {
    struct BatchNormNet = Dense(5, in = 4) => BatchNormalization() => Activation(relu) => Dense(3, softmax);
}

/// Training uses batch statistics and moves the moving ones; inference uses the moving ones;
/// the moving statistics after training are among the weights compared.
#[test]
fn batch_normalization_matches_keras() {
    assert_eq!(BatchNormNet::NON_TRAINABLE_PARAMS, 10);
    run_fixture::<BatchNormNet>("D_layer_batchnorm", RTOL);
}

sequential! { struct LayerNormNet = Dense(6, in = 4) => LayerNormalization() => Dense(3, softmax); }

#[test]
fn layer_normalization_matches_keras() {
    run_fixture::<LayerNormNet>("D_layer_layernorm", RTOL);
}

#[test]
fn xor_tutorial_1500_epochs_matches_keras() {
    run_fixture::<XorNet>("F_xor_tutorial", RTOL);
}

macro_rules! activation_cases {
    ($($test:ident: $model:ident = $act:ident, $case:literal;)*) => {$(
        sequential! { struct $model = Dense(4, in = 3, $act); }

        #[test]
        fn $test() {
            run_fixture::<$model>($case, RTOL);
            probe($case);
        }
    )*};
}

activation_cases! {
    linear_matches_keras: ActLinear = linear, "C_act_linear";
    relu_matches_keras: ActRelu = relu, "C_act_relu";
    sigmoid_matches_keras: ActSigmoid = sigmoid, "C_act_sigmoid";
    tanh_matches_keras: ActTanh = tanh, "C_act_tanh";
    softmax_matches_keras: ActSoftmax = softmax, "C_act_softmax";
    elu_matches_keras: ActElu = elu, "C_act_elu";
    selu_matches_keras: ActSelu = selu, "C_act_selu";
    softplus_matches_keras: ActSoftplus = softplus, "C_act_softplus";
    softsign_matches_keras: ActSoftsign = softsign, "C_act_softsign";
    swish_matches_keras: ActSwish = swish, "C_act_swish";
    silu_matches_keras: ActSilu = silu, "C_act_silu";
    gelu_matches_keras: ActGelu = gelu, "C_act_gelu";
    leaky_relu_matches_keras: ActLeakyRelu = leaky_relu, "C_act_leaky_relu";
    relu6_matches_keras: ActRelu6 = relu6, "C_act_relu6";
    hard_sigmoid_matches_keras: ActHardSigmoid = hard_sigmoid, "C_act_hard_sigmoid";
    exponential_matches_keras: ActExponential = exponential, "C_act_exponential";
    mish_matches_keras: ActMish = mish, "C_act_mish";
}

/// The activation evaluated directly on Keras's grid, and its derivative, through the CPU
/// backend's kernels.
fn probe(case: &str) {
    let f = Fixture::load(case);
    let p = f.value("activation_probe");
    let x = Fixture::tensor_of(&p["x"]);
    let name = f.value("layers")[0]["activation"].as_str().unwrap();
    let act: keras::activations::Activation = name.parse().unwrap();
    let (rows, cols) = if x.ndim() == 2 { (x.shape()[0], x.shape()[1]) } else { (1, x.len()) };
    let xs: Vec<f32> = x.iter().copied().collect();
    let mut y = xs.clone();
    let mut pre = vec![0.0; xs.len()];
    Cpu::default().bias_act(&BiasAct { rows, cols, act }, &mut y, None, Some(&mut pre));
    assert_close(&format!("{case} probe y"), &y, Fixture::tensor_of(&p["y"]).as_slice().unwrap(), RTOL);
    // Softmax's probe is the gradient of sum(softmax(x) * w) row-wise; the others are dy/dx.
    let (mut g, want) = if name == "softmax" {
        let w = Fixture::tensor_of(&p["dy_weights"]);
        let g: Vec<f32> = (0..rows).flat_map(|_| w.iter().copied()).collect();
        (g, Fixture::tensor_of(&p["dy_weighted"]))
    } else {
        (vec![1.0; xs.len()], Fixture::tensor_of(&p["dy"]))
    };
    Cpu::default().act_backward(&BiasAct { rows, cols, act }, &mut g, &y, Some(&pre), None);
    assert_close(&format!("{case} probe dy"), &g, want.as_slice().unwrap(), RTOL);
}

sequential! { struct DropoutNet = Dense(5, in = 4, relu) => Dropout(0.5) => Dense(3, softmax); }

/// Dropout is the identity in inference: `predict` gives what Keras's `predict` gave.
#[test]
fn dropout_is_the_identity_in_predict_as_in_keras() {
    let f = Fixture::load("D_layer_dropout");
    let mut model = DropoutNet::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let pred = model.predict(&f.tensor("x")).unwrap();
    assert_close("D_layer_dropout forward_before", pred.as_slice().unwrap(), f.tensor("forward_before").as_slice().unwrap(), RTOL);
}

sequential! { struct FlattenNet = Input((3, 4)) => Flatten() => Dense(3, softmax); }

#[test]
fn flatten_matches_keras() {
    run_fixture::<FlattenNet>("D_layer_flatten", RTOL);
}

/// Ten samples in batches of four: the last batch has two, and the epoch's loss weighs each
/// batch's mean by its size, as Keras 3's loss tracker does.
#[test]
fn partial_last_batch_matches_keras() {
    run_fixture::<Softmax3>("D_misc_partial_last_batch", RTOL);
}
