//! Every Keras 3 loss against real Keras: the shared `B_loss_*` fixtures and this repository's
//! `L_*` fixtures (`tests/fixtures/gen_losses.py`: the losses and options the shared set lacks,
//! and `fit` with `sample_weight` and `class_weight`). Each case runs forward, the first batch's
//! loss and gradients, `fit`'s history, the weights after, and for `L_*` the per-sample losses
//! and their gradient with respect to the predictions straight through the CPU kernel.
//!
//! Tensors are compared at their own scale (`common::rel_err`); the tolerance is 1e-5.

mod common;

use common::{Fixture, assert_all_close, assert_close};
use keras::backend::LossBatch;
use keras::backend::cpu::losses::{binary_targets, sample};
use keras::losses::{Loss, LossConfig};
use keras::ndarray::{Array1, Array2, ArrayD, Axis, Slice, array};
use keras::prelude::*;

const RTOL: f64 = 1e-5;

/// The loss and options the fixture compiled with.
fn loss_config(f: &Fixture) -> LossConfig {
    let c = &f.value("compile");
    let loss: Loss = c["loss"].as_str().unwrap().parse().unwrap();
    let o = &c["loss_config"];
    let mut config = loss.config();
    if let Some(v) = o.get("from_logits") {
        config = config.from_logits(v.as_bool().unwrap());
    }
    if let Some(v) = o.get("label_smoothing") {
        config = config.label_smoothing(v.as_f64().unwrap() as f32);
    }
    if let Some(v) = o.get("delta") {
        config = config.delta(v.as_f64().unwrap() as f32);
    }
    if let Some(v) = o.get("apply_class_balancing") {
        config = config.apply_class_balancing(v.as_bool().unwrap());
    }
    if let Some(v) = o.get("alpha") {
        config = config.alpha(v.as_f64().unwrap() as f32);
    }
    if let Some(v) = o.get("gamma") {
        config = config.gamma(v.as_f64().unwrap() as f32);
    }
    config
}

fn first_rows(a: &ArrayD<f32>, n: usize) -> ArrayD<f32> {
    a.slice_axis(Axis(0), Slice::from(0..n)).to_owned()
}

/// The weight of every sample as the fixture's `fit` weighed it, if it did.
fn sample_weights(f: &Fixture) -> Option<Vec<f32>> {
    if f.has("class_weight") {
        Some(Fixture::tensor_of(&f.value("per_sample")["weights"]).iter().copied().collect())
    } else if f.has("sample_weight") {
        Some(f.tensor("sample_weight").iter().copied().collect())
    } else {
        None
    }
}

/// Runs a whole fixture; returns the worst relative error seen.
fn run<M: Model<Backend = Cpu>>(name: &str) -> f64 {
    let f = Fixture::load(name);
    let mut model = M::create(&Cpu::default()).unwrap();
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x = f.tensor("x");
    let y = f.tensor("y");
    let forward = f.tensor("forward_before");
    let mut worst = 0.0f64;
    let pred = model.predict(&x).unwrap();
    worst = worst.max(assert_close(&format!("{name} forward_before"), pred.as_slice().unwrap(), forward.as_slice().unwrap(), RTOL));

    let config = loss_config(&f);
    let lr = f.optimizer()["learning_rate"].as_f64().unwrap() as f32;
    let no_metrics: [Metric; 0] = [];
    let mut model = model.compile(Sgd::new(lr), config, no_metrics).unwrap();
    let batch = f.usize(&["fit", "batch_size"]).min(x.shape()[0]);
    let weights = sample_weights(&f);
    let (xb, yb) = (first_rows(&x, batch), first_rows(&y, batch));
    let (loss, grads) = match &weights {
        None => model.gradients(&xb, &yb).unwrap(),
        Some(w) => model.gradients_weighted(&xb, &yb, &Array1::from(w[..batch].to_vec())).unwrap(),
    };
    worst = worst.max(assert_close(&format!("{name} loss_first_batch"), &[loss], &[f.f32(&["loss_first_batch"])], RTOL));
    worst = worst.max(assert_all_close(&format!("{name} grads_first_batch"), &grads, &f.weights("grads_first_batch"), RTOL));

    if f.has("per_sample") {
        worst = worst.max(per_sample(&f, config, &forward, &y, weights.as_deref()));
    }

    let epochs = f.usize(&["fit", "epochs"]);
    let args = FitArgs::default().epochs(epochs).batch_size(batch).shuffle(false).verbose(0);
    let class_weight: Vec<(usize, f32)> = if f.has("class_weight") { f.class_weight() } else { Vec::new() };
    let sample_weight = f.has("sample_weight").then(|| f.tensor("sample_weight"));
    let args = match &sample_weight {
        Some(w) => args.sample_weight(w),
        None if !class_weight.is_empty() => args.class_weight(&class_weight),
        None => args,
    };
    let history = model.fit(&x, &y, args).unwrap();
    worst = worst.max(assert_close(&format!("{name} history.loss"), history.loss(), &f.history_loss(), RTOL));
    worst = worst.max(assert_all_close(&format!("{name} weights_after"), &model.get_weights().unwrap(), &f.weights("weights_after"), RTOL));
    let pred = model.predict(&x).unwrap();
    worst = worst.max(assert_close(
        &format!("{name} forward_after"),
        pred.as_slice().unwrap(),
        f.tensor("forward_after").as_slice().unwrap(),
        RTOL,
    ));
    eprintln!("{name}: worst relative error {worst:.2e}");
    worst
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

sequential! { struct ReluSigmoid2 = Dense(5, in = 4, relu) => Dense(2, sigmoid); }
sequential! { struct ReluSigmoid1 = Dense(5, in = 4, relu) => Dense(1, sigmoid); }
sequential! { struct ReluLinear2 = Dense(5, in = 4, relu) => Dense(2); }
sequential! { struct ReluLinear3 = Dense(5, in = 4, relu) => Dense(3); }
sequential! { struct ReluSoftmax3 = Dense(5, in = 4, relu) => Dense(3, softmax); }
sequential! { struct TanhLinear2 = Dense(5, in = 4, tanh) => Dense(2); }
sequential! { struct TanhLinear3 = Dense(5, in = 4, tanh) => Dense(3); }
sequential! { struct TanhSoftplus2 = Dense(5, in = 4, tanh) => Dense(2, softplus); }

macro_rules! cases {
    ($($test:ident: $model:ident, $case:literal;)*) => {$(
        #[test]
        fn $test() {
            run::<$model>($case);
        }
    )*};
}

cases! {
    mean_squared_error: TanhLinear2, "B_loss_mean_squared_error";
    mean_absolute_error: TanhLinear2, "B_loss_mean_absolute_error";
    mean_absolute_percentage_error: TanhLinear2, "B_loss_mean_absolute_percentage_error";
    mean_squared_logarithmic_error: TanhSoftplus2, "B_loss_mean_squared_logarithmic_error";
    binary_crossentropy: ReluSigmoid2, "B_loss_binary_crossentropy";
    binary_crossentropy_from_logits: ReluLinear2, "B_loss_binary_crossentropy_from_logits";
    categorical_crossentropy: ReluSoftmax3, "B_loss_categorical_crossentropy";
    categorical_crossentropy_label_smoothing: ReluSoftmax3, "B_loss_categorical_crossentropy_label_smoothing";
    sparse_categorical_crossentropy: ReluSoftmax3, "B_loss_sparse_categorical_crossentropy";
    cosine_similarity: TanhLinear3, "B_loss_cosine_similarity";
    hinge: TanhLinear2, "B_loss_hinge";
    huber: TanhLinear2, "B_loss_huber";
    kl_divergence: ReluSoftmax3, "B_loss_kl_divergence";
    log_cosh: TanhLinear2, "B_loss_log_cosh";
    poisson: TanhSoftplus2, "B_loss_poisson";

    binary_focal_crossentropy: ReluSigmoid2, "L_loss_binary_focal_crossentropy";
    binary_focal_crossentropy_options: ReluLinear2, "L_loss_binary_focal_crossentropy_options";
    binary_crossentropy_label_smoothing: ReluSigmoid2, "L_loss_binary_crossentropy_label_smoothing";
    squared_hinge: TanhLinear2, "L_loss_squared_hinge";
    hinge_signed_labels: TanhLinear2, "L_loss_hinge_signed_labels";
    categorical_hinge: TanhLinear3, "L_loss_categorical_hinge";
    sparse_categorical_crossentropy_from_logits: ReluLinear3, "L_loss_sparse_categorical_crossentropy_from_logits";
    categorical_crossentropy_from_logits: ReluLinear3, "L_loss_categorical_crossentropy_from_logits";
    huber_delta: TanhLinear2, "L_loss_huber_delta";
    mse_sample_weight: TanhLinear2, "L_weighted_mse_sample_weight";
    sparse_class_weight: ReluSoftmax3, "L_weighted_sparse_class_weight";
    categorical_class_weight: ReluSoftmax3, "L_weighted_categorical_class_weight";
    binary_class_weight: ReluSigmoid1, "L_weighted_binary_class_weight";
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
