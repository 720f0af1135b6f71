//! The reshaping, noise and wrapper layers (Permute, RepeatVector, UpSampling2D, ZeroPadding2D,
//! Cropping2D, GaussianNoise, GaussianDropout, SpatialDropout2D, TimeDistributed): the noise
//! layers' training statistics and determinism; shapes, parameter counts, weight names and the
//! summary. Their Keras fixtures (from `tests/fixtures/gen_reshapefam.py`: forward, first-batch
//! loss and gradients, two epochs of SGD, within 1e-5 relative) run on every backend in the
//! conformance suite (`tests/conformance/`, models in `tests/models/reshape.rs`).

mod common;
#[path = "models/reshape.rs"]
mod models;

use common::{Fixture, assert_close};
use keras::model::{Model, ModelCore};
use keras::ndarray::{ArrayD, IxDyn};
use keras::prelude::*;
use models::TdDense;
use std::sync::Mutex;

const RTOL: f64 = 1e-5;

sequential! {
    struct NoiseNet = Input(5) => Dense(4, tanh) => GaussianNoise(0.3) => GaussianDropout(0.4) => Reshape((2, 2, 1))
        => SpatialDropout2D(0.5) => Flatten() => Dense(3, softmax);
}

/// Keras's weight paths, less the model's name: `time_distributed/dense/kernel`, and the layer
/// after the wrapper is `dense_1` (the wrapped layer took `dense`).
#[test]
fn time_distributed_weights_have_keras_names() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let f = Fixture::load("D_layer_timedistributed_dense");
    let want: Vec<String> = f
        .value("weights_init")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["path"].as_str().unwrap().trim_start_matches("sequential/").to_string())
        .collect();
    let got: Vec<String> = <TdDense as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(got, want);
    assert_eq!(TdDense::LAYER_NAMES, &["time_distributed", "flatten", "dense_1"]);
}

/// In inference the noise layers are the identity: each layer's output and the model's match
/// Keras's `predict`.
#[test]
fn noise_layers_are_the_identity_in_inference() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let f = Fixture::load("D_layer_noise_layers");
    let mut model = NoiseNet::create(&Cpu::default()).unwrap();
    model.set_weights(&f.weights("weights_init")).unwrap();
    let pred = model.predict(&f.tensor("x")).unwrap();
    let err = assert_close("noise layers forward", pred.as_slice().unwrap(), f.tensor("forward_before").as_slice().unwrap(), RTOL);
    eprintln!("D_layer_noise_layers: worst relative error {err:.2e}");
}

/// One training-mode forward pass of `M` over `x`; the output.
fn forward_training<M: Model<Backend = Cpu>>(model: &mut M, x: &[f32], batch: usize) -> Vec<f32> {
    let core: &mut ModelCore<Cpu> = model.core_mut();
    core.prepare(batch, M::SLOTS).unwrap();
    M::forward(core, x, batch, true);
    core.slot(M::OUTPUT_SLOT)[..batch * M::OUTPUT_SIZE].to_vec()
}

/// Mean and (biased) variance.
fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (mean, v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n)
}

/// Models are created under the global seed (their weights and noise streams are drawn from it):
/// every test holds this lock, so none creates a model between another's `set_random_seed` and its
/// model.
static SEED: Mutex<()> = Mutex::new(());

sequential! { struct Noisy = Input(1000) => GaussianNoise(0.5); }
sequential! { struct GDrop = Input(1000) => GaussianDropout(0.2); }
sequential! { struct SDrop = Input((4, 5, 16)) => SpatialDropout2D(0.3); }
sequential! { struct Seeded = Input(100) => GaussianNoise(1.0, seed = 7); }

#[test]
fn gaussian_noise_adds_noise_of_its_stddev_in_training() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let mut model = Noisy::create(&Cpu::default()).unwrap();
    let x = vec![2.0f32; 64 * 1000];
    let y = forward_training(&mut model, &x, 64);
    let (mean, var) = moments(&y);
    assert!((mean - 2.0).abs() < 0.01, "mean {mean}");
    assert!((var - 0.25).abs() < 0.01, "variance {var}");
    // Inference: the identity.
    let p = model.predict(&ArrayD::from_shape_vec(IxDyn(&[64, 1000]), x.clone()).unwrap()).unwrap();
    assert_eq!(p.as_slice().unwrap(), &x[..]);
}

#[test]
fn gaussian_dropout_multiplies_by_noise_of_mean_one() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let mut model = GDrop::create(&Cpu::default()).unwrap();
    let x = vec![3.0f32; 64 * 1000];
    let y = forward_training(&mut model, &x, 64);
    let (mean, var) = moments(&y);
    // y = 3 * n, n ~ N(1, rate / (1 - rate) = 0.25).
    assert!((mean - 3.0).abs() < 0.02, "mean {mean}");
    assert!((var - 9.0 * 0.25).abs() < 0.05, "variance {var}");
}

#[test]
fn spatial_dropout2d_drops_whole_channels_per_sample() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let mut model = SDrop::create(&Cpu::default()).unwrap();
    let (batch, positions, channels) = (200, 20, 16);
    let x: Vec<f32> = (0..batch * positions * channels).map(|i| 1.0 + (i % 7) as f32).collect();
    let y = forward_training(&mut model, &x, batch);
    let mut kept = 0;
    for b in 0..batch {
        for c in 0..channels {
            let at = |p: usize| (b * positions + p) * channels + c;
            let on = y[at(0)] != 0.0;
            kept += on as usize;
            for p in 0..positions {
                let want = if on { x[at(p)] / 0.7 } else { 0.0 };
                assert!((y[at(p)] - want).abs() < 1e-5, "sample {b} channel {c} position {p}: {} vs {want}", y[at(p)]);
            }
        }
    }
    let rate = kept as f64 / (batch * channels) as f64;
    assert!((rate - 0.7).abs() < 0.04, "kept {rate}");
}

#[test]
fn noise_is_deterministic_under_set_random_seed() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let x = vec![0.5f32; 8 * 1000];
    let run = |seed: u64| {
        keras::utils::set_random_seed(seed);
        let mut model = Noisy::create(&Cpu::default()).unwrap();
        forward_training(&mut model, &x, 8)
    };
    let (a, b, c) = (run(3), run(3), run(4));
    assert_eq!(a, b, "same seed, same noise");
    assert_ne!(a, c, "another seed, other noise");
    // A layer `seed` fixes the noise whatever the global seed.
    let fixed = |seed: u64| {
        keras::utils::set_random_seed(seed);
        let mut model = Seeded::create(&Cpu::default()).unwrap();
        forward_training(&mut model, &x[..800], 8)
    };
    assert_eq!(fixed(1), fixed(2));
}

sequential! {
    /// Every layer of this file, for the summary.
    struct Everything = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2)) => ZeroPadding2D(((1, 0), (2, 1)))
        => Cropping2D(1) => SpatialDropout2D(0.2) => GaussianNoise(0.1) => GaussianDropout(0.1)
        => TimeDistributed(Dense(3)) => Flatten() => RepeatVector(2) => TimeDistributed(Dense(2));
}

#[test]
fn summary_is_keras_summary() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let want = include_str!("fixtures/reshapefam_summary.txt").replacen("Model: \"sequential\"", "Model: \"everything\"", 1);
    let got = Everything::create(&Cpu::default()).unwrap().summary().to_string();
    assert_eq!(got, want);
    assert_eq!(Everything::PARAMS, 2 * 3 + 3 + 135 * 2 + 2);
    assert_eq!(Everything::OUTPUT_SHAPE, &[2, 2]);
}

/// The `Everything` model saved by Keras as `.keras`, legacy `.h5` and `.weights.h5` loads (the
/// wrapped layers' weights included: `layers/time_distributed/layer/vars` in Keras 3 files) and
/// predicts what Keras predicted; saved again by keras-rs, it loads back the same.
#[test]
fn keras_files_load_and_predict_as_keras() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let f = Fixture::load("reshapefam_files");
    let (x, want, weights) = (f.tensor("x"), f.tensor("forward"), f.weights("weights"));
    for file in ["reshapefam_files.keras", "reshapefam_files.h5", "reshapefam_files.weights.h5"] {
        let mut model = Everything::create(&Cpu::default()).unwrap();
        model.load_keras(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), weights, "{file}: the weights Keras saved");
        let got = model.predict(&x).unwrap();
        assert_close(file, got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    }
    let dir = std::env::temp_dir().join(format!("keras-rs-reshapefam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("everything.keras");
    let mut model = Everything::create(&Cpu::default()).unwrap();
    model.set_weights(&weights).unwrap();
    model.save_keras(&path).unwrap();
    let mut back = Everything::create(&Cpu::default()).unwrap();
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), weights);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `predict_one` (stack buffers, one sample) agrees with `predict` through every layer of this file.
#[test]
fn predict_one_agrees_with_predict() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let f = Fixture::load("reshapefam_files");
    let mut model = Everything::create(&Cpu::default()).unwrap();
    model.set_weights(&f.weights("weights")).unwrap();
    let x = f.tensor("x");
    let batch = model.predict(&x).unwrap();
    let per = Everything::OUTPUT_SHAPE.iter().product::<usize>();
    for (i, sample) in x.as_slice().unwrap().chunks(4 * 6 * 2).enumerate() {
        let one = model.predict_one(sample.try_into().unwrap());
        assert_close("predict_one", &one, &batch.as_slice().unwrap()[i * per..(i + 1) * per], 1e-6);
    }
}

sequential! {
    /// `Everything` with another activation in the first wrapped layer.
    struct WrappedRelu = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2)) => ZeroPadding2D(((1, 0), (2, 1)))
        => Cropping2D(1) => SpatialDropout2D(0.2) => GaussianNoise(0.1) => GaussianDropout(0.1)
        => TimeDistributed(Dense(3, relu)) => Flatten() => RepeatVector(2) => TimeDistributed(Dense(2));
}

/// The wrapped layer's configuration is part of the architecture a file is checked against.
#[test]
fn a_file_with_another_wrapped_layer_is_refused() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    for file in ["reshapefam_files.keras", "reshapefam_files.h5"] {
        let mut model = WrappedRelu::create(&Cpu::default()).unwrap();
        let e = model.load_keras(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "layer 8 (time_distributed): the file has TimeDistributed(layer=Dense(units=3, activation=linear, use_bias=true)), \
                 this model has TimeDistributed(layer=Dense(units=3, activation=relu, use_bias=true))"
            ),
            "{file}: {e}"
        );
    }
}

sequential! {
    /// `Everything` with bilinear upsampling and another padding: the same shapes and weights.
    struct Bilinear = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2), interpolation = "bilinear")
        => ZeroPadding2D(((1, 0), (2, 1))) => Cropping2D(1) => SpatialDropout2D(0.2) => GaussianNoise(0.1) => GaussianDropout(0.1)
        => TimeDistributed(Dense(3)) => Flatten() => RepeatVector(2) => TimeDistributed(Dense(2));
}
sequential! {
    struct OtherPadding = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2)) => ZeroPadding2D(((0, 1), (2, 1)))
        => Cropping2D(1) => SpatialDropout2D(0.2) => GaussianNoise(0.1) => GaussianDropout(0.1)
        => TimeDistributed(Dense(3)) => Flatten() => RepeatVector(2) => TimeDistributed(Dense(2));
}

/// The reshaping layers' arguments are part of the architecture too: a file whose layers move
/// values elsewhere is refused, though every weight would fit.
#[test]
fn a_file_with_other_reshaping_arguments_is_refused() {
    let _seed = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let path = format!("{}/tests/fixtures/reshapefam_files.keras", env!("CARGO_MANIFEST_DIR"));
    let e = Bilinear::create(&Cpu::default()).unwrap().load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 2 (up_sampling2d): the file has UpSampling2D(size=(1, 2), interpolation=nearest), \
             this model has UpSampling2D(size=(1, 2), interpolation=bilinear)"
        ),
        "{e}"
    );
    let e = OtherPadding::create(&Cpu::default()).unwrap().load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 3 (zero_padding2d): the file has ZeroPadding2D(padding=((1, 0), (2, 1))), \
             this model has ZeroPadding2D(padding=((0, 1), (2, 1)))"
        ),
        "{e}"
    );
}
