//! Whole models on the backend: every Keras fixture of the other test files (their models are in
//! `tests/models/`) trained to Keras's numbers within 1e-5, and the training loop's device paths
//! (a held training set, shuffled batches gathered on the device, several inputs, dropout's
//! stream) against the CPU.

use crate::common::assert_close;
use crate::{
    activation_models, basic_models, custom_models, functional_models, layer_models, loss_models, preprocessing_models, recurrent_models,
    reshape_models,
};
use keras::backend::RandomStream;
use keras::ndarray::{Array1, Array2, ArrayD, IxDyn, s};
use keras::prelude::*;

/// Every optimizer, its options and schedules (`A_opt_*`, `S_opt_*`, `S_sched_*`).
pub fn optimizers<B: Backend>(dev: &B) {
    basic_models::optimizers(dev);
}

/// Every loss with its options and weights (`B_loss_*`, `L_*`), every activation (`C_act_*`),
/// and the small models (normalization, flatten, XOR, a partial last batch).
pub fn losses_and_activations<B: Backend>(dev: &B) {
    loss_models::run_all(dev);
    basic_models::activations(dev);
    basic_models::small_models(dev);
}

/// Convolutions, pooling, normalization over feature maps, the reshaping, the preprocessing and
/// the activation layers, Lambda and layers of the user's own.
pub fn layers<B: Backend>(dev: &B) {
    layer_models::run_all(dev);
    reshape_models::run_all(dev);
    preprocessing_models::run_all(dev);
    activation_models::run_all(dev);
    custom_models::run_all(dev);
}

/// Embedding, SimpleRNN, LSTM, GRU and Bidirectional.
pub fn recurrent<B: Backend>(dev: &B) {
    recurrent_models::run_all(dev);
}

/// Functional graphs: shared layers, merges, several inputs.
pub fn functional<B: Backend>(dev: &B) {
    functional_models::run_all(dev);
}

sequential! {
    struct Noisy = Dense(16, in = 6, relu) => Dropout(0.3) => BatchNormalization() => Dense(4, softmax);
}

functional! {
    struct Pair(a: [5], b: [3]) -> out {
        let h = Dense(6, tanh)(a);
        let g = Dense(6, tanh)(b);
        let j = Concatenate()(h, g);
        let d = Dropout(0.25)(j);
        let out = Dense(2, softmax)(d);
    }

    struct PairPlain(a: [5], b: [3]) -> out {
        let j = Concatenate()(a, b);
        let h = Dense(6, tanh)(j);
        let out = Dense(2, softmax)(h);
    }
}

/// The data of [`training_matches_the_cpu`]: 40 samples of 6 features, 4 classes, weights.
struct Data {
    x: Array2<f32>,
    labels: Array1<u8>,
    weights: Array1<f32>,
}

impl Data {
    fn new() -> Data {
        Data {
            x: Array2::from_shape_fn((40, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0 - 0.4),
            labels: Array1::from_shape_fn(40, |i| (i % 4) as u8),
            weights: Array1::from_shape_fn(40, |i| 0.5 + (i % 3) as f32 * 0.25),
        }
    }

    /// The two inputs of [`Pair`]: the first five features and the last three.
    fn pair(&self) -> (Array2<f32>, Array2<f32>) {
        (self.x.slice(s![.., ..5]).to_owned(), self.x.slice(s![.., 3..]).to_owned())
    }
}

/// Trains a [`Noisy`] with sample weights and validation data; its history (loss, val_loss,
/// accuracy), weights after and predictions.
fn train_noisy<D: Backend>(model: Noisy<D>, d: &Data) -> (Vec<f32>, Vec<ArrayD<f32>>, Vec<f32>) {
    let mut m = model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let vx = d.x.clone() * 0.5;
    let args =
        FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0).sample_weight(&d.weights).validation_data(&vx, &d.labels);
    let h = m.fit(&d.x, &d.labels, args).unwrap();
    let history = h.loss().iter().chain(&h["val_loss"]).chain(&h["accuracy"]).copied().collect();
    let pred = m.predict(&d.x).unwrap().iter().copied().collect();
    (history, m.get_weights().unwrap(), pred)
}

/// Trains a model of [`Data::pair`]'s inputs for two epochs with `batch_size` and `shuffle`: its
/// history and weights after.
fn train_pair<M: Model>(model: M, d: &Data, optimizer: Sgd, batch_size: usize, shuffle: bool) -> Vec<f32> {
    let (a, b) = d.pair();
    let labels = d.labels.mapv(|l| l % 2);
    let mut m = model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let h = m.fit(&[a.view(), b.view()], &labels, FitArgs::default().epochs(2).batch_size(batch_size).shuffle(shuffle).verbose(0)).unwrap();
    let mut out: Vec<f32> = h.loss().iter().chain(&h["accuracy"]).copied().collect();
    out.extend(m.get_weights().unwrap().iter().flat_map(|w| w.iter().copied().collect::<Vec<_>>()));
    out
}

/// `weights` with every kernel (rank 2) replaced by Glorot-uniform draws of a generator seeded
/// with `seed`, biases and normalization statistics kept: the same start in every run, so a
/// failure here reproduces (the models' own initializers draw a new seed per process).
fn fixed_init(weights: &[ArrayD<f32>], seed: u64) -> Vec<ArrayD<f32>> {
    let mut rng = keras::utils::Rng::new(seed);
    weights
        .iter()
        .map(|w| match w.shape() {
            &[fan_in, fan_out] => {
                let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
                w.mapv(|_| ((rng.uniform() * 2.0 - 1.0) * limit) as f32)
            }
            _ => w.clone(),
        })
        .collect()
}

/// The same training on the backend and on the CPU (weights and dropout stream copied): dropout
/// masks drawn from the device's stream, validation data and sample weights, a fit of several
/// inputs; then a shuffled fit whose one batch holds every sample (gathered on the device in the
/// epoch's order), which must equal the unshuffled one up to the order of a sum.
pub fn training_matches_the_cpu<B: Backend>(dev: &B) {
    let (cpu, d) = (Cpu::default(), Data::new());
    let stream = RandomStream { seed: 0x5eed, step: 0 };
    let mut reference = Noisy::new(&cpu);
    let mut on_dev = Noisy::<B>::new(dev);
    let init = fixed_init(&reference.get_weights().unwrap(), 7);
    reference.set_weights(&init).unwrap();
    on_dev.set_weights(&init).unwrap();
    reference.core_mut().set_random_stream(stream).unwrap();
    on_dev.core_mut().set_random_stream(stream).unwrap();
    let (want, want_w, want_p) = train_noisy(reference, &d);
    let (got, got_w, got_p) = train_noisy(on_dev, &d);
    assert_close("history (loss, val_loss, accuracy)", &got, &want, 1e-5);
    assert_close("predictions", &got_p, &want_p, 1e-5);
    // Adam divides each gradient by its own running RMS, so an element whose gradient is rounding
    // noise (a dead relu unit, a cancelling sum) moves by up to the learning rate whichever sign
    // the noise has: over 300 initialisations the weights after this fit differed from the CPU's
    // by at most 1.6e-4 of their scale (median 8.6e-7), while the history and the predictions,
    // what the weights compute, stayed within 6.1e-7 and 2.6e-6. The function is held to 1e-5
    // above; the weights to what Adam's amplification allows.
    for (i, (g, e)) in got_w.iter().zip(&want_w).enumerate() {
        assert_close(&format!("weight {i}"), g.as_slice().unwrap(), e.as_slice().unwrap(), 1e-3);
    }

    // Several inputs, staged input by input; dropout active.
    let mut reference = Pair::new(&cpu);
    let mut on_dev = Pair::<B>::new(dev);
    let init = fixed_init(&reference.get_weights().unwrap(), 8);
    reference.set_weights(&init).unwrap();
    on_dev.set_weights(&init).unwrap();
    reference.core_mut().set_random_stream(stream).unwrap();
    on_dev.core_mut().set_random_stream(stream).unwrap();
    let sgd = || Sgd::new(0.1).momentum(0.5);
    assert_close(
        "two inputs: history and weights",
        &train_pair(on_dev, &d, sgd(), 16, false),
        &train_pair(reference, &d, sgd(), 16, false),
        1e-5,
    );

    // One batch of every sample, shuffled or not: the same step up to the order of the sum.
    let one_batch = |shuffle: bool| {
        let mut model = PairPlain::<B>::new(dev);
        let init: Vec<ArrayD<f32>> = model.get_weights().unwrap().iter().map(|w| ArrayD::from_elem(IxDyn(w.shape()), 0.1)).collect();
        model.set_weights(&init).unwrap();
        train_pair(model, &d, Sgd::default(), 40, shuffle)
    };
    assert_close("a shuffled full batch", &one_batch(true), &one_batch(false), 1e-5);
}
