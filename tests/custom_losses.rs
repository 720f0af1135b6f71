//! A user's own losses and metrics (Keras's `def my_loss(y_true, y_pred)` and metric
//! functions): a loss written once over `Real` and differentiated by dual numbers trains exactly
//! as the Keras loss it restates (same history, weights, weighted batches); a pinball loss
//! trains a model to its quantile; gradients are checked by finite differences and a wrong
//! hand-written gradient is caught; metric functions, named closures and mixed lists log under
//! their names, and a closure without a name is refused with what to write instead.

mod common;

use keras::autodiff::{Dual, Real};
use keras::losses::{CustomLoss, check_gradient, from_fn};
use keras::metrics;
use keras::ndarray::{Array1, Array2, ArrayD};
use keras::prelude::*;
use keras::utils::Rng;

/// The pinball (quantile) loss: under-prediction costs `tau`, over-prediction `1 - tau`.
struct Pinball {
    tau: f32,
}

impl CustomLoss for Pinball {
    fn call<T: Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
        let sum: T = y_true
            .iter()
            .zip(y_pred)
            .map(|(&t, &p)| {
                let e = t - p;
                (e * self.tau).max(e * (self.tau - 1.0))
            })
            .sum();
        sum / y_pred.len() as f32
    }
}

/// Keras's mean squared error, restated as a user would write it.
struct MySquaredError;

impl CustomLoss for MySquaredError {
    fn call<T: Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
        let sum: T = y_true.iter().zip(y_pred).map(|(&t, &p)| (p - t).square()).sum();
        sum / y_pred.len() as f32
    }
}

/// A loss whose hand-written gradient is wrong by a factor of 2: the check must catch it.
struct WrongGradient;

impl CustomLoss for WrongGradient {
    fn call<T: Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
        y_true.iter().zip(y_pred).map(|(&t, &p)| (p - t).square()).sum()
    }
    fn gradient(&self, y_true: &[f32], y_pred: &[f32], grad: &mut [f32]) -> f32 {
        for ((g, t), p) in grad.iter_mut().zip(y_true).zip(y_pred) {
            *g = p - t; // should be 2 (p - t)
        }
        self.call(y_true, y_pred)
    }
}

/// Keras's mean absolute error as a metric function (logged as `abs_error`).
fn abs_error(y_true: &[f32], y_pred: &[f32]) -> f32 {
    y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()).sum::<f32>() / y_pred.len() as f32
}

sequential! {
    struct Regressor = Dense(16, in = 3, tanh) => Dense(2);
}

sequential! {
    struct Line = Dense(1, in = 1);
}

fn regression_data(n: usize, seed: u64) -> (Array2<f32>, Array2<f32>, Array1<f32>) {
    let mut rng = Rng::new(seed);
    let x = Array2::from_shape_fn((n, 3), |_| rng.normal() as f32);
    let y = Array2::from_shape_fn((n, 2), |(i, j)| x[[i, 0]] * (j as f32 + 1.0) - x[[i, 2]] + 0.1 * rng.normal() as f32);
    let w = Array1::from_shape_fn(n, |i| 0.25 + (i % 5) as f32 * 0.5);
    (x, y, w)
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    common::rel_err(a, b)
}

/// A restated MSE trains as `"mse"` does: same history, validation, metric and weights (SGD is
/// linear in the gradient, so the dual numbers' rounding stays at rounding).
#[test]
fn a_restated_loss_trains_as_the_keras_loss() {
    let (x, y, w) = regression_data(96, 1);
    let start = Regressor::new(&Cpu::default()).get_weights().unwrap();
    let run = |custom: bool, weighted: bool| {
        let mut model = Regressor::new(&Cpu::default());
        model.set_weights(&start).unwrap();
        let mut m = if custom {
            model.compile(Sgd::new(0.05), MySquaredError, [abs_error]).unwrap()
        } else {
            model.compile(Sgd::new(0.05), "mse", [Metric::MeanAbsoluteError]).unwrap()
        };
        let mut args = FitArgs::default().epochs(3).batch_size(16).shuffle(false).validation_split(0.25).verbose(0);
        if weighted {
            args = args.sample_weight(&w);
        }
        let h = m.fit(&x, &y, args).unwrap();
        (h, m.get_weights().unwrap())
    };
    for weighted in [false, true] {
        let (keras_h, keras_w) = run(false, weighted);
        let (ours_h, ours_w) = run(true, weighted);
        assert!(max_rel(keras_h.loss(), ours_h.loss()) < 1e-6, "{weighted}: {:?} vs {:?}", keras_h.loss(), ours_h.loss());
        assert!(max_rel(&keras_h["val_loss"], &ours_h["val_loss"]) < 1e-6);
        assert!(max_rel(&keras_h["mean_absolute_error"], &ours_h["abs_error"]) < 1e-6);
        assert!(max_rel(&keras_h["val_mean_absolute_error"], &ours_h["val_abs_error"]) < 1e-6);
        for (a, b) in keras_w.iter().zip(&ours_w) {
            assert!(max_rel(a.as_slice().unwrap(), b.as_slice().unwrap()) < 1e-5);
        }
    }
}

/// A custom loss accepts sample weights per batch as the Keras loss does, and `evaluate`
/// returns the same numbers.
#[test]
fn weighted_batches_and_evaluate_match_the_keras_loss() {
    let (x, y, w) = regression_data(40, 2);
    let start = Regressor::new(&Cpu::default()).get_weights().unwrap();
    let compile = |loss: keras::losses::LossSpec| {
        let mut model = Regressor::new(&Cpu::default());
        model.set_weights(&start).unwrap();
        model.compile(Sgd::new(0.1), loss, ["mae"]).unwrap()
    };
    let mut keras_m = compile(Loss::MeanSquaredError.into());
    let squared = from_fn("squared", |t: &[Dual], p: &[Dual]| {
        let sum: Dual = t.iter().zip(p).map(|(&t, &p)| (p - t) * (p - t)).sum();
        sum / p.len() as f32
    });
    let mut ours = compile(squared);
    assert_eq!(ours.loss().name(), "squared");
    assert!(ours.loss().keras().is_none());
    for _ in 0..4 {
        let a = keras_m.train_on_batch_weighted(&x, &y, &w).unwrap().loss();
        let b = ours.train_on_batch_weighted(&x, &y, &w).unwrap().loss();
        assert!(((a - b) / a).abs() < 1e-6, "{a} vs {b}");
    }
    let (a, b) = (keras_m.evaluate(&x, &y).unwrap(), ours.evaluate(&x, &y).unwrap());
    assert!(((a.loss() - b.loss()) / a.loss()).abs() < 1e-6);
    assert!(((a["mae"] - b["mae"]) / a["mae"]).abs() < 1e-6);
}

/// Trained with the pinball loss, a line leaves about `tau` of the targets below it.
#[test]
fn pinball_trains_a_model_to_its_quantile() {
    let mut rng = Rng::new(5);
    let n = 512;
    let x = Array2::from_shape_fn((n, 1), |_| rng.uniform() as f32);
    let y = Array2::from_shape_fn((n, 1), |(i, _)| 2.0 * x[[i, 0]] + rng.normal() as f32);
    for tau in [0.1f32, 0.9] {
        keras::utils::set_random_seed(3);
        let mut m = Line::new(&Cpu::default()).compile(Adam::new(0.05), Pinball { tau }, no_metrics()).unwrap();
        assert_eq!(m.loss().name(), "pinball");
        let h = m.fit(&x, &y, FitArgs::default().epochs(60).batch_size(64).verbose(0)).unwrap();
        assert!(h.loss().last().unwrap() < &h.loss()[0], "the loss falls: {:?}", h.loss());
        let pred = m.predict(&x).unwrap();
        let below = y.iter().zip(pred.iter()).filter(|(t, p)| t < p).count() as f32 / n as f32;
        assert!((below - tau).abs() < 0.05, "tau {tau}: {below} of the targets lie below the fitted line");
    }
}

fn no_metrics() -> [Metric; 0] {
    []
}

/// The gradient a custom loss trains with, by dual numbers, against finite differences at f64;
/// a wrong hand-written gradient is reported.
#[test]
fn gradients_are_checked_by_finite_differences() {
    let t = [0.3f32, -1.2, 2.0, 0.0];
    let p = [0.7f32, -0.4, 1.1, 0.25];
    let c = check_gradient(&Pinball { tau: 0.7 }, &t, &p).unwrap();
    assert!(c.max_error < 1e-6, "{c:?}");
    assert_eq!(c.gradient, [-0.075, -0.075, 0.175, -0.075].map(|g: f32| -g));
    let c = check_gradient(&MySquaredError, &t, &p).unwrap();
    assert!(c.max_error < 1e-6, "{c:?}");
    let c = check_gradient(&WrongGradient, &t, &p).unwrap();
    assert!(c.max_error > 0.3, "a gradient off by 2x must fail the check: {c:?}");
    let e = check_gradient(&Pinball { tau: 0.5 }, &t, &p[..3]).unwrap_err().to_string();
    assert_eq!(e, "check_gradient y_true: expected 3 values, as many as y_pred, found 4");
    let e = check_gradient(&Pinball { tau: 0.5 }, &[f32::NAN], &[0.0]).unwrap_err().to_string();
    assert!(e.contains("finite values") && e.contains("NaN"), "{e}");
}

/// Metric functions log under their names, named closures under the name given, mixed lists
/// work; a closure without a name and a name listed twice are refused.
#[test]
fn metric_functions_and_named_closures() {
    let (x, y, _) = regression_data(32, 3);
    let within = |t: &[f32], p: &[f32]| t.iter().zip(p).filter(|(t, p)| (*t - *p).abs() <= 1.0).count() as f32 / p.len() as f32;
    let fresh = || Regressor::new(&Cpu::default());

    let mut m = fresh().compile(Sgd::default(), "mse", [("within_one", within)]).unwrap();
    let logs = m.evaluate(&x, &y).unwrap();
    let pred = m.predict(&x).unwrap();
    let expected = (0..32).map(|i| within(y.row(i).as_slice().unwrap(), pred.row(i).as_slice().unwrap())).sum::<f32>() / 32.0;
    assert!((logs["within_one"] - expected).abs() < 1e-6, "{} vs {expected}", logs["within_one"]);

    let mut m = fresh()
        .compile(Sgd::default(), "mse", ["mae".into(), metrics::custom("within_one", within), abs_error.into_metric().unwrap()])
        .unwrap();
    let h = m.fit(&x, &y, FitArgs::default().epochs(1).validation_split(0.25).verbose(0)).unwrap();
    for key in ["loss", "mae", "within_one", "abs_error", "val_loss", "val_mae", "val_within_one", "val_abs_error"] {
        assert!(h.get(key).is_some(), "history lacks {key}: {h:?}");
    }

    let e = fresh().compile(Sgd::default(), "mse", [within]).err().unwrap().to_string();
    assert!(e.contains("a closure (or a list of functions") && e.contains("metrics::custom(\"my_metric\", closure)"), "{e}");
    // Two functions in one list become function pointers, which have no names.
    fn rounded_error(t: &[f32], p: &[f32]) -> f32 {
        abs_error(t, p).round()
    }
    let e = fresh().compile(Sgd::default(), "mse", [abs_error, rounded_error]).err().unwrap().to_string();
    assert!(e.contains("has no name to log it under"), "{e}");
    let mut m = fresh()
        .compile(Sgd::default(), "mse", [("abs_error", abs_error as fn(&[f32], &[f32]) -> f32), ("rounded", rounded_error)])
        .unwrap();
    assert!(m.evaluate(&x, &y).unwrap().get("rounded").is_some());
    let e = fresh().compile(Sgd::default(), "mse", [("val_mae", abs_error)]).err().unwrap().to_string();
    assert!(e.contains("metric name `val_mae`: `loss` and names starting `val_` are the logs' own"), "{e}");
    let e = fresh().compile(Sgd::default(), "mse", [abs_error, abs_error]).err().unwrap().to_string();
    assert!(e.contains("metric `abs_error` is listed twice"), "{e}");
    let e = fresh().compile(Sgd::default(), "mse", ["mae".into(), metrics::custom("x", within), "maee".into()]).err().unwrap().to_string();
    assert!(e.contains("unknown metric `maee`"), "{e}");
}

use keras::metrics::IntoMetric;

sequential! {
    struct Classes = Dense(8, in = 3, relu) => Dense(4, softmax);
}

/// With a sparse loss a metric function receives the one class index as `y_true`, as Keras
/// passes it.
#[test]
fn metric_functions_see_class_indices_with_a_sparse_loss() {
    let x = Array2::from_shape_fn((12, 3), |(i, j)| (i * 3 + j) as f32 / 36.0);
    let y = Array1::from_shape_fn(12, |i| (i % 4) as f32);
    let hit = |t: &[f32], p: &[f32]| {
        assert_eq!(t.len(), 1, "one class index");
        let best = (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        (best == t[0] as usize) as u8 as f32
    };
    let mut m = Classes::new(&Cpu::default())
        .compile(Sgd::default(), "sparse_categorical_crossentropy", ["accuracy".into(), metrics::custom("hit", hit)])
        .unwrap();
    let logs = m.evaluate(&x, &y).unwrap();
    assert_eq!(logs["hit"], logs["accuracy"]);
}

/// A custom loss over an output with several loss rows per sample (a sequence): each row is
/// one call, all of a sample's rows take its weight, as Keras's losses do.
#[test]
fn sequence_outputs_call_the_loss_per_position() {
    sequential! { struct Seq = Input((4, 3)) => Dense(2); }
    let mut rng = Rng::new(9);
    let x = ArrayD::from_shape_fn(vec![6, 4, 3], |_| rng.normal() as f32);
    let y = ArrayD::from_shape_fn(vec![6, 4, 2], |_| rng.normal() as f32);
    let w = Array1::from_shape_fn(6, |i| i as f32 * 0.5);
    let start = Seq::new(&Cpu::default()).get_weights().unwrap();
    let mut losses = Vec::new();
    for custom in [false, true] {
        let mut model = Seq::new(&Cpu::default());
        model.set_weights(&start).unwrap();
        let mut m = if custom {
            model.compile(Sgd::new(0.1), MySquaredError, no_metrics())
        } else {
            model.compile(Sgd::new(0.1), "mse", no_metrics())
        }
        .unwrap();
        let (loss, grads) = m.gradients_weighted(&x, &y, &w).unwrap();
        losses.push((loss, grads));
    }
    assert!(((losses[0].0 - losses[1].0) / losses[0].0).abs() < 1e-6);
    for (a, b) in losses[0].1.iter().zip(&losses[1].1) {
        assert!(max_rel(a.as_slice().unwrap(), b.as_slice().unwrap()) < 1e-5);
    }
}
