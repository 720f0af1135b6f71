//! Weight and activity regularizers and constraints written in the DSL, against Keras fits of the same
//! models (`tests/fixtures/regularizers_keras.json`, from `gen_regularizers.py`): the penalty in
//! the evaluated and logged losses (validation included), its gradient and the projections in
//! the weights after training.

mod common;

use common::{assert_all_close, assert_close};
use keras::ndarray::{Array2, ArrayD, IxDyn};
use keras::prelude::*;
use serde_json::Value;

sequential! {
    struct Constrained = Dense(5, in = 4, relu, kernel_regularizer = l2(0.01), bias_regularizer = l1(0.02), kernel_constraint = max_norm(0.5))
        => Dense(3, softmax, kernel_regularizer = l1_l2(l1 = 0.01, l2 = 0.02), kernel_constraint = unit_norm(), bias_constraint = non_neg());
}
sequential! {
    struct MinMax = Dense(5, in = 4, tanh, kernel_regularizer = "l2", kernel_constraint = min_max_norm(0.2, 0.6, rate = 0.5))
        => Dense(3, softmax, bias_regularizer = l2(0.05));
}
sequential! {
    struct ActivityLayer = Dense(5, in = 4, tanh) => ActivityRegularization(l1 = 0.01, l2 = 0.02) => Reshape((5, 1)) => Flatten()
        => Dense(3, softmax);
}
sequential! {
    struct Activity = Dense(5, in = 4, relu, activity_regularizer = l2(0.05))
        => Dense(3, softmax, activity_regularizer = l1_l2(l1 = 0.02, l2 = 0.01), kernel_regularizer = l2(0.01));
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        v => vec![v.as_f64().unwrap() as f32],
    }
}

fn matrix(v: &Value) -> Array2<f32> {
    let rows = v.as_array().unwrap().len();
    let data = flat(v);
    Array2::from_shape_vec((rows, data.len() / rows), data).unwrap()
}

fn weights(v: &Value, like: &[ArrayD<f32>]) -> Vec<ArrayD<f32>> {
    v.as_array().unwrap().iter().zip(like).map(|(w, l)| ArrayD::from_shape_vec(IxDyn(l.shape()), flat(w)).unwrap()).collect()
}

fn run<M: Model<Backend = Cpu>>(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let mut model = M::create(&Cpu::default()).unwrap();
    let like = model.get_weights().unwrap();
    model.set_weights(&weights(&case["weights_init"], &like)).unwrap();
    let mut model = model.compile(Sgd::new(0.2), "categorical_crossentropy", [Metric::Accuracy; 0]).unwrap();
    let (x, y, xv, yv) = (matrix(&case["x"]), matrix(&case["y"]), matrix(&case["x_val"]), matrix(&case["y_val"]));
    let first = model.test_on_batch(&x.slice(keras::ndarray::s![..8, ..]), &y.slice(keras::ndarray::s![..8, ..])).unwrap().loss();
    assert_close(&format!("{name} evaluate"), &[first], &[case["evaluate_first_batch"].as_f64().unwrap() as f32], 1e-5);
    let h = model.fit(&x, &y, FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0).validation_data(&xv, &yv)).unwrap();
    assert_close(&format!("{name} loss"), h.loss(), &flat(&case["history"]["loss"]), 1e-5);
    assert_close(&format!("{name} val_loss"), &h["val_loss"], &flat(&case["history"]["val_loss"]), 1e-5);
    assert_all_close(&format!("{name} weights_after"), &model.get_weights().unwrap(), &weights(&case["weights_after"], &like), 1e-5);
}

#[test]
fn regularized_and_constrained_training_matches_keras() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/regularizers_keras.json")).unwrap();
    let f: Value = serde_json::from_str(&text).unwrap();
    let cases = f["cases"].as_array().unwrap();
    run::<Constrained>(&cases[0]);
    run::<MinMax>(&cases[1]);
    run::<ActivityLayer>(&cases[2]);
    run::<Activity>(&cases[3]);
}

/// The penalty's gradient agrees with finite differences of the regularized loss.
#[test]
fn regularizer_gradients_match_finite_differences() {
    sequential! {
        struct Net = Dense(3, in = 2, tanh, kernel_regularizer = l1_l2(l1 = 0.05, l2 = 0.1), bias_regularizer = l2(0.2),
                           activity_regularizer = l1_l2(l1 = 0.03, l2 = 0.2))
            => Dense(1, activity_regularizer = l2(0.1));
    }
    keras::utils::set_random_seed(4);
    let mut model = Net::new(&Cpu::default()).compile(Sgd::default(), "mse", [Metric::Accuracy; 0]).unwrap();
    let x = keras::ndarray::array![[0.3f32, -0.7], [1.2, 0.4], [-0.5, 0.9]];
    let y = keras::ndarray::array![[0.5f32], [-0.2], [0.1]];
    let mut w = model.get_weights().unwrap();
    w[1] = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.3, -0.2, 0.1]).unwrap();
    model.set_weights(&w).unwrap();
    let (_, grads) = model.gradients(&x, &y).unwrap();
    let h = 1e-2f32;
    for (t, wt) in w.iter().enumerate().take(2) {
        for i in 0..wt.len() {
            let mut loss_at = |d: f32| {
                let mut w2 = w.clone();
                w2[t].as_slice_mut().unwrap()[i] += d;
                model.set_weights(&w2).unwrap();
                model.gradients(&x, &y).unwrap().0 as f64
            };
            let fd = (loss_at(h) - loss_at(-h)) / (2.0 * h as f64);
            let g = grads[t].as_slice().unwrap()[i] as f64;
            assert!((fd - g).abs() < 2e-3 * (1.0 + g.abs()), "weight {t}[{i}]: analytic {g}, finite difference {fd}");
        }
    }
}

sequential! {
    struct ActivityPositional = Dense(5, in = 4, tanh) => ActivityRegularization(0.01, 0.02) => Reshape((5, 1)) => Flatten()
        => Dense(3, softmax);
}

sequential! {
    struct NoActivity = Dense(5, in = 4, tanh) => Reshape((5, 1)) => Flatten() => Dense(3, softmax);
}

/// `ActivityRegularization(l1, l2)` positionally, as Keras allows, is the keyword form (and
/// its penalty is in the loss).
#[test]
fn activity_regularization_takes_l1_and_l2_positionally() {
    let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 3 + j) % 5) as f32 / 5.0 - 0.4);
    let y = Array2::from_shape_fn((6, 3), |(i, j)| (i % 3 == j) as u8 as f32);
    let keyword = ActivityLayer::new(&Cpu::default());
    let weights = keyword.get_weights().unwrap();
    let mut positional = ActivityPositional::new(&Cpu::default());
    positional.set_weights(&weights).unwrap();
    let mut plain = NoActivity::new(&Cpu::default());
    plain.set_weights(&weights).unwrap();
    let mut keyword = keyword.compile("sgd", "categorical_crossentropy", ["accuracy"]).unwrap();
    let mut positional = positional.compile("sgd", "categorical_crossentropy", ["accuracy"]).unwrap();
    let mut plain = plain.compile("sgd", "categorical_crossentropy", ["accuracy"]).unwrap();
    let a = keyword.gradients(&x, &y).unwrap();
    let b = positional.gradients(&x, &y).unwrap();
    let c = plain.gradients(&x, &y).unwrap();
    assert_eq!(a, b);
    assert!(a.0 > c.0 + 1e-4, "the penalty is in the loss: {} vs {} without it", a.0, c.0);
}
