//! Every Keras 3 loss against real Keras: the shared `B_loss_*` fixtures and this repository's
//! `L_*` fixtures (`tests/fixtures/gen_losses.py`: the losses and options the shared set lacks,
//! and `fit` with `sample_weight` and `class_weight`). Each case runs forward, the first batch's
//! loss and gradients, `fit`'s history and the weights after on every backend in the conformance
//! suite (`tests/conformance/`, models in `tests/models/losses.rs`); here, for `L_*`, the
//! per-sample losses and their gradient with respect to the predictions straight through the CPU
//! kernel, and the API of weights and options.
//!
//! Tensors are compared at their own scale (`common::rel_err`); the tolerance is 1e-5.

mod common;
#[path = "models/losses.rs"]
mod models;

use common::{Fixture, assert_close};
use keras::backend::LossBatch;
use keras::backend::cpu::losses::{binary_targets, sample};
use keras::losses::{Loss, LossConfig};
use keras::ndarray::{Array1, Array2, ArrayD, Axis, Slice, array};
use keras::prelude::*;
use models::{ReluSoftmax3, loss_config, sample_weights};

const RTOL: f64 = 1e-5;

/// The CPU's per-sample losses on Keras's own predictions, and its batch loss and gradient with
/// respect to them (weighted as the fixture's `fit` was), for every fixture that has them.
#[test]
fn per_sample_losses_match_keras() {
    for case in models::CASES {
        let f = Fixture::load(case);
        if f.has("per_sample") {
            let weights = sample_weights(&f);
            per_sample(&f, loss_config(&f), &f.tensor("forward_before"), &f.tensor("y"), weights.as_deref());
        }
    }
}

/// The kernel on Keras's own predictions: per-sample losses, the (weighted) batch loss and its
/// gradient with respect to the predictions.
fn per_sample(f: &Fixture, config: LossConfig, pred: &ArrayD<f32>, y: &ArrayD<f32>, weights: Option<&[f32]>) -> f64 {
    let name = &f.name;
    let p = f.value("per_sample");
    let (rows, cols) = (pred.shape()[0], pred.len() / pred.shape()[0]);
    let (pred, target) = (pred.as_slice().unwrap(), y.as_slice().unwrap());
    let tcols = target.len() / rows;
    let binary = binary_targets(&config, target);
    let values: Vec<f32> = (0..rows)
        .map(|r| sample(&config, &pred[r * cols..(r + 1) * cols], &target[r * tcols..(r + 1) * tcols], None, 1.0, binary))
        .collect();
    let mut worst = assert_close(&format!("{name} per_sample values"), &values, Fixture::tensor_of(&p["values"]).as_slice().unwrap(), RTOL);
    let mut grad = vec![0.0f32; pred.len()];
    let mut stats = [0.0f32; 2];
    Cpu::default().loss(&LossBatch { loss: config, rows, cols }, pred, target, weights, Some(&mut grad), &mut stats);
    let batch_loss = stats[0] / stats[1];
    worst = worst.max(assert_close(&format!("{name} per_sample loss"), &[batch_loss], &[p["loss"].as_f64().unwrap() as f32], RTOL));
    worst.max(assert_close(&format!("{name} per_sample grad"), &grad, Fixture::tensor_of(&p["grad"]).as_slice().unwrap(), RTOL))
}

/// `class_weight` is the same as the sample weights it stands for; a weight of 1 everywhere is
/// no weight; the held-out part of `validation_split` keeps its sample weights.
#[test]
fn weights_agree_with_each_other() {
    let f = Fixture::load("B_loss_sparse_categorical_crossentropy");
    let (x, y) = (f.tensor("x"), f.tensor("y"));
    let fresh = || {
        let mut m = ReluSoftmax3::new(&Cpu::default());
        m.set_weights(&f.weights("weights_init")).unwrap();
        m.compile(Sgd::new(0.1), "sparse_categorical_crossentropy", ["accuracy"]).unwrap()
    };
    // Unshuffled: other tests draw from the process-wide seed meanwhile.
    let args = || FitArgs::default().epochs(2).batch_size(3).shuffle(false).verbose(0);
    let class_weight = [(0, 2.0), (2, 0.5)];
    let per_sample: Array1<f32> = y.iter().map(|&c| [2.0, 1.0, 0.5][c as usize]).collect();
    let by_class = fresh().fit(&x, &y, args().class_weight(&class_weight)).unwrap();
    let by_sample = fresh().fit(&x, &y, args().sample_weight(&per_sample)).unwrap();
    assert_eq!(by_class.loss(), by_sample.loss());
    assert_eq!(by_class.get("accuracy"), by_sample.get("accuracy"), "metrics are unweighted");

    let ones = Array1::<f32>::ones(x.shape()[0]);
    let mut m = fresh();
    let plain = m.test_on_batch(&x, &y).unwrap().loss();
    assert_eq!(m.test_on_batch_weighted(&x, &y, &ones).unwrap().loss(), plain);
    let weighted = m.evaluate_weighted(&x, &y, &per_sample).unwrap();
    let want: f32 = {
        let mut stats = [0.0f32; 2];
        let pred = m.predict(&x).unwrap();
        let config = Loss::SparseCategoricalCrossentropy.config();
        let w = per_sample.as_slice().unwrap();
        Cpu::default().loss(
            &LossBatch { loss: config, rows: 8, cols: 3 },
            pred.as_slice().unwrap(),
            y.as_slice().unwrap(),
            Some(w),
            None,
            &mut stats,
        );
        stats[0] / stats[1]
    };
    assert!((weighted.loss() - want).abs() <= 1e-6 * want, "{} vs {want}", weighted.loss());

    // validation_split = 0.25 holds out the last 2 samples, with their weights.
    let mut m = fresh();
    let h = m
        .fit(&x, &y, FitArgs::default().epochs(1).batch_size(8).shuffle(false).verbose(0).validation_split(0.25).sample_weight(&per_sample))
        .unwrap();
    let tail = |a: &ArrayD<f32>| a.slice_axis(Axis(0), Slice::from(6..)).to_owned();
    let val = m.evaluate_weighted(&tail(&x), &tail(&y), &per_sample.slice(keras::ndarray::s![6..])).unwrap().loss();
    assert_eq!(h.get("val_loss").unwrap(), &[val]);
    // The same held-out samples as validation_data with their weights.
    let (head, head_w) = (|a: &ArrayD<f32>| a.slice_axis(Axis(0), Slice::from(..6)).to_owned(), per_sample.slice(keras::ndarray::s![..6]));
    let (vx, vy, vw) = (tail(&x), tail(&y), per_sample.slice(keras::ndarray::s![6..]).to_owned());
    let mut m = fresh();
    let args = FitArgs::default().epochs(1).batch_size(8).shuffle(false).verbose(0).sample_weight(&head_w);
    let h = m.fit(&head(&x), &head(&y), args.validation_data(&vx, &vy).validation_sample_weight(&vw)).unwrap();
    assert_eq!(h.get("val_loss").unwrap(), &[val]);
}

#[test]
fn bad_weights_and_options_are_errors_that_name_expected_and_found() {
    let f = Fixture::load("B_loss_sparse_categorical_crossentropy");
    let (x, y) = (f.tensor("x"), f.tensor("y"));
    let mut m = ReluSoftmax3::new(&Cpu::default()).compile(Sgd::default(), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let err = |r: keras::Result<keras::History>| r.unwrap_err().to_string();
    let quiet = || FitArgs::default().verbose(0);
    let two = array![1.0f32, 2.0];
    assert_eq!(err(m.fit(&x, &y, quiet().sample_weight(&two))), "sample_weight: expected 8 weights, one per sample, found 2 weights");
    let negative = Array1::from(vec![1.0f32, 1.0, -0.5, 1.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(err(m.fit(&x, &y, quiet().sample_weight(&negative))), "sample_weight[2]: expected a non-negative weight, found -0.5");
    let nan = Array1::from(vec![1.0f32, 1.0, f32::NAN, 1.0, 1.0, 1.0, 1.0, 1.0]);
    assert!(err(m.fit(&x, &y, quiet().sample_weight(&nan))).contains("non-finite"));
    let e = err(m.fit(&x, &y, quiet().class_weight(&[(3, 2.0)])));
    assert_eq!(e, "class_weight entry 0: expected a class index in [0, 3) for this model's output, found 3");
    assert!(err(m.fit(&x, &y, quiet().class_weight(&[(1, f32::INFINITY)]))).contains("finite, non-negative"));
    let both = Array1::<f32>::ones(8);
    assert!(err(m.fit(&x, &y, quiet().class_weight(&[(1, 2.0)]).sample_weight(&both))).contains("at the same time"));
    let e = err(m.fit(&x, &y, quiet().validation_data(&x, &y).validation_sample_weight(&two)));
    assert_eq!(e, "validation data: sample_weight: expected 8 weights, one per sample, found 2 weights");
    assert!(err(m.fit(&x, &y, quiet().validation_sample_weight(&two))).contains("needs validation_data"));
    let wide = Array2::<f32>::ones((8, 2));
    assert!(m.test_on_batch_weighted(&x, &y, &wide).unwrap_err().to_string().contains("one weight per sample"));

    let compile = |loss: LossConfig| ReluSoftmax3::new(&Cpu::default()).compile(Sgd::default(), loss, ["accuracy"]).map(|_| ());
    let e = compile(Loss::CategoricalCrossentropy.label_smoothing(-0.1)).unwrap_err().to_string();
    assert_eq!(e, "categorical_crossentropy label_smoothing: expected a value in [0, 1], found -0.1");
    assert_eq!(compile(Loss::huber(-1.0)).unwrap_err().to_string(), "huber delta: expected a finite value > 0, found -1");
    assert!(compile(Loss::KlDivergence.from_logits(true)).unwrap_err().to_string().contains("from_logits"));
    compile(Loss::BinaryFocalCrossentropy.config().apply_class_balancing(true).alpha(0.5).gamma(3.0)).unwrap();
}
