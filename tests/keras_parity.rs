//! Parity with real Keras 3: the same models, weights, data and training give the same
//! predictions, gradients, losses and weights (fixtures in `tests/fixtures/`). The losses have
//! their own file, `tests/losses.rs`.
//!
//! Each tensor is compared at its own scale (`max |ours - keras| / max |keras|`, see
//! `common::rel_err`); the tolerance is 1e-5 everywhere.

mod common;

use common::{Fixture, assert_all_close, assert_close};
use keras::backend::Backend;
use keras::ndarray::{ArrayD, Axis, Slice};
use keras::prelude::*;
use keras::{Compiled, Loss};

const RTOL: f64 = 1e-5;

/// The model compiled as the fixture compiled it (no metrics).
fn compile<M: Model<Backend = Cpu>>(model: M, f: &Fixture) -> Compiled<M> {
    let loss: Loss = f.value("compile")["loss"].as_str().unwrap().parse().unwrap();
    let o = f.optimizer();
    let num = |k: &str| o[k].as_f64().unwrap() as f32;
    let no_metrics: [Metric; 0] = [];
    match o["class_name"].as_str().unwrap() {
        "SGD" => model.compile(
            Sgd::new(num("learning_rate")).momentum(num("momentum")).nesterov(o["nesterov"].as_bool().unwrap()),
            loss,
            no_metrics,
        ),
        "Adam" => {
            let adam = Adam::new(num("learning_rate")).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon"));
            model.compile(adam.amsgrad(o["amsgrad"].as_bool().unwrap()), loss, no_metrics)
        }
        other => panic!("optimizer {other} is not part of this test"),
    }
    .unwrap()
}

fn first_rows(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    a.slice_axis(Axis(0), Slice::from(0..n)).to_owned()
}

/// Runs a whole fixture: forward, first-batch loss and gradients, fit, weights and forward after.
/// Returns the worst relative error seen.
fn run<M: Model<Backend = Cpu>>(name: &str, rtol: f64) -> f64 {
    let f = Fixture::load(name);
    let mut model = M::create(&Cpu::default()).unwrap();
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x = f.tensor("x");
    let y = f.tensor("y");
    let mut worst = 0.0f64;
    let pred = model.predict(&x).unwrap();
    worst = worst.max(assert_close(
        &format!("{name} forward_before"),
        pred.as_slice().unwrap(),
        f.tensor("forward_before").as_slice().unwrap(),
        rtol,
    ));

    let mut model = compile(model, &f);
    let batch = f.usize(&["fit", "batch_size"]).min(x.shape()[0]);
    let (loss, grads) = model.gradients(&first_rows(&x, batch), &first_rows(&y, batch)).unwrap();
    worst = worst.max(assert_close(&format!("{name} loss_first_batch"), &[loss], &[f.f32(&["loss_first_batch"])], rtol));
    worst = worst.max(assert_all_close(&format!("{name} grads_first_batch"), &grads, &f.weights("grads_first_batch"), rtol));

    let epochs = f.usize(&["fit", "epochs"]);
    let history = model.fit(&x, &y, FitArgs::default().epochs(epochs).batch_size(batch).shuffle(false).verbose(0)).unwrap();
    worst = worst.max(assert_close(&format!("{name} history.loss"), history.loss(), &f.history_loss(), rtol));
    worst = worst.max(assert_all_close(&format!("{name} weights_after"), &model.get_weights().unwrap(), &f.weights("weights_after"), rtol));
    let pred = model.predict(&x).unwrap();
    worst = worst.max(assert_close(
        &format!("{name} forward_after"),
        pred.as_slice().unwrap(),
        f.tensor("forward_after").as_slice().unwrap(),
        rtol,
    ));
    eprintln!("{name}: worst relative error {worst:.2e}");
    worst
}

sequential! { struct Softmax3 = Dense(5, in = 4, relu) => Dense(3, softmax); }
sequential! { struct XorNet = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid); }

#[test]
fn xor_tutorial_1500_epochs_matches_keras() {
    run::<XorNet>("F_xor_tutorial", RTOL);
}

macro_rules! activation_cases {
    ($($test:ident: $model:ident = $act:ident, $case:literal;)*) => {$(
        sequential! { struct $model = Dense(4, in = 3, $act); }

        #[test]
        fn $test() {
            run::<$model>($case, RTOL);
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
    Cpu::default().bias_act(&mut y, None, Some(&mut pre), rows, cols, act);
    assert_close(&format!("{case} probe y"), &y, Fixture::tensor_of(&p["y"]).as_slice().unwrap(), RTOL);
    // Softmax's probe is the gradient of sum(softmax(x) * w) row-wise; the others are dy/dx.
    let (mut g, want) = if name == "softmax" {
        let w = Fixture::tensor_of(&p["dy_weights"]);
        let g: Vec<f32> = (0..rows).flat_map(|_| w.iter().copied()).collect();
        (g, Fixture::tensor_of(&p["dy_weighted"]))
    } else {
        (vec![1.0; xs.len()], Fixture::tensor_of(&p["dy"]))
    };
    Cpu::default().act_backward(&mut g, &y, Some(&pre), rows, cols, act, None);
    assert_close(&format!("{case} probe dy"), &g, want.as_slice().unwrap(), RTOL);
}
