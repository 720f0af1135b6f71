//! The models of the loss fixtures (`B_loss_*`, `L_*`), and those fixtures run on a device:
//! the loss and options each compiled with, SGD, sample and class weights.
#![allow(dead_code)]

use crate::common::{Fixture, assert_all_close, assert_close};
use keras::losses::{Loss, LossConfig};
use keras::ndarray::{Array1, ArrayD, Axis, Slice};
use keras::prelude::*;

const RTOL: f64 = 1e-5;

sequential! { pub struct ReluSigmoid2 = Dense(5, in = 4, relu) => Dense(2, sigmoid); }
sequential! { pub struct ReluSigmoid1 = Dense(5, in = 4, relu) => Dense(1, sigmoid); }
sequential! { pub struct ReluLinear2 = Dense(5, in = 4, relu) => Dense(2); }
sequential! { pub struct ReluLinear3 = Dense(5, in = 4, relu) => Dense(3); }
sequential! { pub struct ReluSoftmax3 = Dense(5, in = 4, relu) => Dense(3, softmax); }
sequential! { pub struct TanhLinear2 = Dense(5, in = 4, tanh) => Dense(2); }
sequential! { pub struct TanhLinear3 = Dense(5, in = 4, tanh) => Dense(3); }
sequential! { pub struct TanhSoftplus2 = Dense(5, in = 4, tanh) => Dense(2, softplus); }

/// The loss and options the fixture compiled with.
pub fn loss_config(f: &Fixture) -> LossConfig {
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
pub fn sample_weights(f: &Fixture) -> Option<Vec<f32>> {
    if f.has("class_weight") {
        Some(Fixture::tensor_of(&f.value("per_sample")["weights"]).iter().copied().collect())
    } else if f.has("sample_weight") {
        Some(f.tensor("sample_weight").iter().copied().collect())
    } else {
        None
    }
}

/// Runs a whole loss fixture on `device` (the fixture's loss and options, SGD, its sample or
/// class weights); returns the worst relative error seen.
pub fn run_on<M: Model>(device: &M::Backend, name: &str) -> f64 {
    let f = Fixture::load(name);
    let mut model = M::create(device).unwrap();
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x = f.tensor("x");
    let y = f.tensor("y");
    let forward = f.tensor("forward_before");
    let mut worst = 0.0f64;
    let pred = model.predict_joined(&x).unwrap();
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
    let pred = model.predict_joined(&x).unwrap();
    worst = worst.max(assert_close(
        &format!("{name} forward_after"),
        pred.as_slice().unwrap(),
        f.tensor("forward_after").as_slice().unwrap(),
        RTOL,
    ));
    eprintln!("{name}: worst relative error {worst:.2e}");
    worst
}

/// Every loss fixture: the model it trains and its name.
macro_rules! cases {
    ($($model:ident, $case:literal;)*) => {
        /// Every loss fixture on `device`.
        pub fn run_all<B: Backend>(device: &B) {
            $(run_on::<$model<B>>(device, $case);)*
        }

        /// The loss fixtures' names.
        pub const CASES: &[&str] = &[$($case),*];
    };
}

cases! {
    TanhLinear2, "B_loss_mean_squared_error";
    TanhLinear2, "B_loss_mean_absolute_error";
    TanhLinear2, "B_loss_mean_absolute_percentage_error";
    TanhSoftplus2, "B_loss_mean_squared_logarithmic_error";
    ReluSigmoid2, "B_loss_binary_crossentropy";
    ReluLinear2, "B_loss_binary_crossentropy_from_logits";
    ReluSoftmax3, "B_loss_categorical_crossentropy";
    ReluSoftmax3, "B_loss_categorical_crossentropy_label_smoothing";
    ReluSoftmax3, "B_loss_sparse_categorical_crossentropy";
    TanhLinear3, "B_loss_cosine_similarity";
    TanhLinear2, "B_loss_hinge";
    TanhLinear2, "B_loss_huber";
    ReluSoftmax3, "B_loss_kl_divergence";
    TanhLinear2, "B_loss_log_cosh";
    TanhSoftplus2, "B_loss_poisson";
    ReluSigmoid2, "L_loss_binary_focal_crossentropy";
    ReluLinear2, "L_loss_binary_focal_crossentropy_options";
    ReluSigmoid2, "L_loss_binary_crossentropy_label_smoothing";
    TanhLinear2, "L_loss_squared_hinge";
    TanhLinear2, "L_loss_hinge_signed_labels";
    TanhLinear3, "L_loss_categorical_hinge";
    ReluLinear3, "L_loss_sparse_categorical_crossentropy_from_logits";
    ReluLinear3, "L_loss_categorical_crossentropy_from_logits";
    TanhLinear2, "L_loss_huber_delta";
    TanhLinear2, "L_weighted_mse_sample_weight";
    ReluSoftmax3, "L_weighted_sparse_class_weight";
    ReluSoftmax3, "L_weighted_categorical_class_weight";
    ReluSigmoid1, "L_weighted_binary_class_weight";
}
