//! Parity with real Keras 3: the same models, weights, data and training give the same
//! predictions, gradients, losses and weights (fixtures in `tests/fixtures/`). Whole fixtures run
//! on every backend in the conformance suite (`tests/conformance/`, models in `tests/models/`);
//! the losses have their own file, `tests/losses.rs`.
//!
//! Each tensor is compared at its own scale (`max |ours - keras| / max |keras|`, see
//! `common::rel_err`); the tolerance is 1e-5 everywhere.

mod common;
#[path = "models/basic.rs"]
mod models;

use common::{Fixture, assert_close};
use keras::backend::BiasAct;
use keras::prelude::*;

const RTOL: f64 = 1e-5;

/// Every activation evaluated by the CPU's kernels on Keras's grid, forward and backward (the
/// activation fixtures' whole-model runs are in the conformance suite, `tests/conformance/`).
#[test]
fn activations_match_keras_on_its_grid() {
    for case in models::ACTIVATION_CASES {
        probe(case);
    }
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
