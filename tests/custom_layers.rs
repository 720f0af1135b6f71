//! Layers of the user's own (`keras::layers::custom::CustomLayer`), used by name in both macros:
//! matched to Keras's subclassed layers of the same math (`tests/fixtures/gen_custom_layers.py`:
//! forward, first-batch gradients, two epochs of SGD, within 1e-5), their weights under Keras's
//! names in the arena (counted, summarized, saved, loaded, `get_weights`), constructor arguments
//! and non-trainable weights, shared in a functional model; the same fixtures run on every
//! backend in the conformance suite (`tests/models/custom_layers.rs`), and the shape rule and the
//! trait are checked at compile time (`tests/ui/custom_layer_*.rs`).

mod common;
#[path = "models/custom_layers.rs"]
mod models;

use common::{Fixture, assert_close, run_fixture};
use keras::model::{Arena, Model};
use keras::ndarray::{Array2, array};
use keras::prelude::*;
use models::{Affine, Capped, CustomNet, CustomSteps, Linear, Shift};

const RTOL: f64 = 1e-5;

#[test]
fn custom_layers_match_keras_subclassed_layers() {
    run_fixture::<CustomNet>("D_layer_custom_linear", RTOL);
    run_fixture::<CustomSteps>("D_layer_custom_steps", RTOL);
}

/// The weights are Keras's (`linear/kernel`, `affine/gamma`, ..., shapes from the widths), the
/// counts compile-time constants, the summary Keras's, the initializers the layer's own.
#[test]
fn custom_weights_join_the_model() {
    fn specs<M: Model>() -> Vec<(String, Vec<usize>, bool)> {
        M::WEIGHTS.iter().map(|w| (w.path(), w.shape.to_vec(), w.arena == Arena::Trainable)).collect()
    }
    let f = Fixture::load("D_layer_custom_linear");
    let keras: Vec<(String, Vec<usize>, bool)> = f
        .value("weights_init")
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let shape = w["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (w["path"].as_str().unwrap().trim_start_matches("sequential/").to_string(), shape, true)
        })
        .collect();
    assert_eq!(specs::<CustomNet>(), keras);
    const _: () = assert!(CustomNet::PARAMS == 25 + 10 + 18 && CustomNet::NON_TRAINABLE_PARAMS == 0);
    let want = include_str!("fixtures/custom_layers_summary.txt").replacen("Model: \"sequential\"", "Model: \"custom_net\"", 1);
    assert_eq!(CustomNet::new(&Cpu::default()).summary().to_string(), want);
    let w = CustomNet::new(&Cpu::default()).get_weights().unwrap();
    assert_eq!(w[2].as_slice().unwrap(), [1.0; 5], "Affine's gamma starts at ones");
    assert_eq!(w[3].as_slice().unwrap(), [0.0; 5]);
    assert!(w[0].iter().any(|&v| v != 0.0), "Linear's kernel is Glorot-uniform");
}

/// `Shift(2.0)` is built with `Shift::new(2.0)`; its non-trainable `offset` (0.5) is counted as
/// Keras counts it, saved, and untouched by training; the input gradient goes through it.
#[test]
fn constructor_arguments_and_non_trainable_weights() {
    sequential! {
        #[params(9)]
        struct Shifted = Input(4) => Shift(2.0) => Dense(1, params = 5);
    }
    const _: () = assert!(Shifted::TRAINABLE_PARAMS == 5 && Shifted::NON_TRAINABLE_PARAMS == 4);
    let model = Shifted::new(&Cpu::default());
    let summary = model.summary().to_string();
    assert!(summary.contains("shift (Shift)") && summary.contains("Non-trainable params: 4 (16.00 B)"), "{summary}");
    let x = array![[1.0f32, -1.0, 0.0, 2.0]];
    let w = model.get_weights().unwrap();
    assert_eq!(w[0].as_slice().unwrap(), [0.5; 4]);
    let (kernel, bias) = (w[1].as_slice().unwrap().to_vec(), w[2].as_slice().unwrap()[0]);
    let want: f32 = [1.0f32, -1.0, 0.0, 2.0].iter().zip(&kernel).map(|(x, k)| (x * 2.0 + 0.5) * k).sum::<f32>() + bias;
    assert!((model.predict(&x).unwrap()[[0, 0]] - want).abs() < 1e-6);
    let y = array![[1.0f32]];
    let mut m = model.compile(Sgd::new(0.1), "mse", ["mae"]).unwrap();
    m.fit(&x, &y, FitArgs::default().epochs(3).verbose(0)).unwrap();
    let after = m.get_weights().unwrap();
    assert_eq!(after[0].as_slice().unwrap(), [0.5; 4], "a non-trainable weight is not trained");
    assert_ne!(after[1], w[1], "the Dense behind it trains");
}

/// `.keras`, `.weights.h5` and safetensors keep a custom layer's weights under its names, and
/// load them back.
#[test]
fn custom_layers_save_and_load() {
    let f = Fixture::load("D_layer_custom_linear");
    let (x, weights) = (f.tensor("x"), f.weights("weights_init"));
    let mut model = CustomNet::new(&Cpu::default());
    model.set_weights(&weights).unwrap();
    let ours = model.predict(&x).unwrap();
    assert_close("forward", ours.as_slice().unwrap(), f.tensor("forward_before").as_slice().unwrap(), RTOL);
    let dir = std::env::temp_dir().join(format!("keras-rs-custom-layers-{}", std::process::id()));
    for file in ["custom.keras", "custom.weights.h5", "custom.safetensors"] {
        let path = dir.join(file);
        let mut back = CustomNet::new(&Cpu::default());
        if file.ends_with(".keras") {
            model.save_keras(&path).unwrap();
            back.load_keras(&path).unwrap();
        } else {
            model.save_weights(&path).unwrap();
            back.load_weights(&path).unwrap();
        }
        assert_eq!(back.get_weights().unwrap(), weights, "{file}");
        assert_eq!(back.predict(&x).unwrap(), ours, "{file}");
    }
    // Python Keras reads the `.weights.h5` into its own model with the subclassed layers.
    let script = format!(
        "import numpy as np, keras\nfrom keras import ops, layers as L\n\
         class Linear(keras.layers.Layer):\n    def __init__(self, units=32, **kw):\n        super().__init__(**kw); self.units = units\n\
         \x20   def build(self, s):\n        self.w = self.add_weight(shape=(s[-1], self.units), name='kernel'); self.b = self.add_weight(shape=(self.units,), initializer='zeros', name='bias')\n\
         \x20   def call(self, x):\n        return ops.matmul(x, self.w) + self.b\n\
         class Affine(keras.layers.Layer):\n    def build(self, s):\n        self.gamma = self.add_weight(shape=(s[-1],), initializer='ones', name='gamma'); self.beta = self.add_weight(shape=(s[-1],), initializer='zeros', name='beta')\n\
         \x20   def call(self, x):\n        return x * self.gamma + self.beta\n\
         m = keras.Sequential([keras.Input((4,)), Linear(5), L.Activation('tanh'), Affine(), Linear(3), L.Activation('softmax')])\n\
         m.load_weights({:?})\nx = np.array({:?}, dtype='float32').reshape({:?})\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        dir.join("custom.weights.h5").display().to_string(),
        x.as_slice().unwrap(),
        x.shape()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras with our weights", &keras, ours.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// In `functional!`: a custom layer shared by two inputs (its weight gradients summed over both
/// calls), trained as the same graph of built-in layers trains.
#[test]
fn functional_models_share_custom_layers() {
    functional! {
        struct Twin(a: [4], b: [4]) -> out {
            let shared = Linear(out = 3);
            let ha = shared(a);
            let hb = shared(b);
            let h = Add()(ha, hb);
            let h = Affine()(h);
            let out = Dense(2, softmax)(h);
        }
    }
    functional! {
        struct TwinDense(a: [4], b: [4]) -> out {
            let shared = Dense(3);
            let ha = shared(a);
            let hb = shared(b);
            let h = Add()(ha, hb);
            let h = Dense(3)(h);
            let out = Dense(2, softmax)(h);
        }
    }
    const _: () = assert!(Twin::PARAMS == 15 + 6 + 8);
    let twin = Twin::new(&Cpu::default());
    let mut start = twin.get_weights().unwrap();
    // The same math in built-in layers: Affine as a Dense with a diagonal kernel.
    let mut dense = TwinDense::new(&Cpu::default());
    let mut dense_weights = dense.get_weights().unwrap();
    dense_weights[0] = start[0].clone();
    dense_weights[1] = start[1].clone();
    start[2] = keras::ndarray::arr1(&[1.5f32, 0.5, -1.0]).into_dyn();
    start[3] = keras::ndarray::arr1(&[0.1f32, 0.2, 0.3]).into_dyn();
    dense_weights[2] = keras::ndarray::Array2::from_diag(&keras::ndarray::arr1(&[1.5f32, 0.5, -1.0])).into_dyn();
    dense_weights[3] = start[3].clone();
    dense_weights[4] = start[4].clone();
    dense_weights[5] = start[5].clone();
    let mut twin = twin;
    twin.set_weights(&start).unwrap();
    dense.set_weights(&dense_weights).unwrap();
    let a = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 4 + j) as f32 * 0.37).sin());
    let b = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 4 + j) as f32 * 0.21).cos());
    let y = Array2::from_shape_fn((6, 2), |(i, j)| ((i + j) % 2) as f32);
    let got = twin.predict(&[a.view(), b.view()]).unwrap();
    let want = dense.predict(&[a.view(), b.view()]).unwrap();
    assert_close("predict", got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-6);
    // The gradients of the first step: the shared Linear's summed over both calls as the shared
    // Dense's, Affine's as the diagonal Dense's diagonal and bias.
    let no_metrics: [Metric; 0] = [];
    let mut twin = twin.compile(Sgd::new(0.1), "categorical_crossentropy", no_metrics).unwrap();
    let mut dense = dense.compile(Sgd::new(0.1), "categorical_crossentropy", no_metrics).unwrap();
    let (lt, gt) = twin.gradients(&[a.view(), b.view()], &y).unwrap();
    let (ld, gd) = dense.gradients(&[a.view(), b.view()], &y).unwrap();
    assert!((lt - ld).abs() < 1e-6, "loss {lt} vs {ld}");
    // Compared as one vector, at the scale of the whole gradient: a bias's gradient is a sum over
    // the batch and both calls, and can cancel to near zero, where f32 rounding in a different
    // summation order is a large fraction of the tensor's own scale.
    let diag: Vec<f32> = (0..3).map(|i| gd[2][[i, i]]).collect();
    let flat = |g: &[keras::ndarray::ArrayD<f32>], gamma: &[f32]| -> Vec<f32> {
        [0, 1, 3, 4, 5].iter().flat_map(|&k| g[k].iter().copied()).chain(gamma.iter().copied()).collect()
    };
    assert_close("gradients (Affine's gamma as the diagonal)", &flat(&gt, gt[2].as_slice().unwrap()), &flat(&gd, &diag), 1e-5);
    // Training: one full batch, no shuffle, so each epoch is one plain SGD step and the run does
    // not depend on the shuffle's random stream (shared by the tests running beside this one).
    let full = || FitArgs::default().batch_size(6).shuffle(false).verbose(0);
    twin.fit(&[a.view(), b.view()], &y, full().epochs(1)).unwrap();
    let stepped = twin.get_weights().unwrap();
    for k in 0..6 {
        let want: Vec<f32> = start[k].iter().zip(gt[k].iter()).map(|(w, g)| w - 0.1 * g).collect();
        let got: Vec<f32> = stepped[k].iter().copied().collect();
        assert_close(&format!("weight {k} after one SGD step"), &got, &want, 1e-5);
    }
    let h = twin.fit(&[a.view(), b.view()], &y, full().epochs(20)).unwrap();
    assert!(h.loss()[19] < h.loss()[0], "{:?}", h.loss());
    assert!(h.loss()[0] < lt, "the first step lowered the loss: {lt} -> {}", h.loss()[0]);
}

/// A layer of one's own whose name is one slip from a Keras class (`ReLU6`, `ReLU`) is written
/// with its path, `self::ReLU6()`; it is named and summarized by its type's name.
#[test]
fn a_path_names_a_layer_of_ones_own() {
    assert_eq!(Capped::LAYER_NAMES, ["dense", "re_lu6", "dense_1"]);
    let model = Capped::new(&Cpu::default());
    assert!(model.summary().to_string().contains("re_lu6 (ReLU6)"));
    let w = model.get_weights().unwrap();
    let x = array![[1.0f32, -2.0, 3.0]];
    let h: Vec<f32> = (0..4).map(|j| ((0..3).map(|i| x[[0, i]] * w[0][[i, j]]).sum::<f32>() + w[1][j]).clamp(0.0, 6.0)).collect();
    let want = (0..4).map(|j| h[j] * w[2][[j, 0]]).sum::<f32>() + w[3][0];
    assert!((model.predict(&x).unwrap()[[0, 0]] - want).abs() < 1e-5);
}

mod mixed {
    use keras::constraints::Constraint;
    use keras::initializers::Initializer;
    use keras::layers::custom::{CustomLayer, Grads, Weight, Weights};
    use keras::regularizers::Regularizer;

    /// Weights declared trainable `a`, non-trainable `b` (penalized and constrained, which
    /// Keras ignores for a weight it does not train), trainable `c`: `y = x * a + b + c`.
    #[derive(Default)]
    pub struct Mix;

    impl<const D: usize> CustomLayer<D, D> for Mix {
        const WEIGHTS: &'static [Weight] = &[
            Weight::new("a", &[D], Initializer::Ones),
            Weight::new("b", &[D], Initializer::Constant(-0.5))
                .non_trainable()
                .regularizer(Regularizer { l1: 0.0, l2: 1.0 })
                .constraint(Constraint::NonNeg),
            Weight::new("c", &[D], Initializer::Constant(2.0)),
        ];

        fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
            let (a, b, c) = (w.get("a"), w.get("b"), w.get("c"));
            for (i, (y, x)) in y.iter_mut().zip(x).enumerate() {
                *y = x * a[i % D] + b[i % D] + c[i % D];
            }
        }

        fn backward(&self, w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>) {
            for (i, (&x, &g)) in x.iter().zip(dy).enumerate() {
                grads.get_mut("a")[i % D] += g * x;
                grads.get_mut("c")[i % D] += g;
            }
            if let Some(dx) = dx {
                let a = w.get("a");
                for (i, (dx, &g)) in dx.iter_mut().zip(dy).enumerate() {
                    *dx = g * a[i % D];
                }
            }
        }
    }
}

/// Keras's order of a layer's weights is its trainable ones, then the others (`get_weights`,
/// `.weights.h5`), whatever order they were declared in; a non-trainable weight is neither
/// penalized nor constrained (Keras's `model.losses` has no term for it), and the trainable
/// weights around it keep their own.
#[test]
fn mixed_weights_follow_keras_order_and_rules() {
    use mixed::Mix;
    sequential! {
        struct Mixed = Input(3) => Mix() => Normalization(mean = [1.0, 2.0, 3.0], variance = [4.0, 4.0, 4.0]) => Dense(1, kernel_initializer = constant(-1.0), use_bias = false);
    }
    let names: Vec<String> = <Mixed as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(names, ["mix/a", "mix/c", "mix/b", "dense/kernel"]);
    let model = Mixed::new(&Cpu::default());
    let w = model.get_weights().unwrap();
    assert_eq!([w[0][0], w[1][0], w[2][0]], [1.0, 2.0, -0.5]);
    let x = array![[1.0f32, 2.0, 3.0]];
    // (x * 1 + 2 - 0.5 - mean) / 2, summed with kernel -1: the constants after the weights.
    let want: f32 = (0..3).map(|i| -((x[[0, i]] + 1.5 - (i + 1) as f32) / 2.0)).sum();
    assert!((model.predict(&x).unwrap()[[0, 0]] - want).abs() < 1e-6);
    let no_metrics: [Metric; 0] = [];
    let mut m = model.compile(Sgd::new(0.0), "mse", no_metrics).unwrap();
    let (loss, _) = m.gradients(&x, &array![[0.0f32]]).unwrap();
    assert!((loss - want * want).abs() < 1e-5, "no penalty on `b`: loss {loss} vs {}", want * want);
    m.fit(&x, &array![[0.0f32]], FitArgs::default().epochs(1).verbose(0)).unwrap();
    let after = m.get_weights().unwrap();
    assert_eq!(after[2][0], -0.5, "NonNeg is not applied to the non-trainable `b`");
    assert_eq!(after[3].as_slice().unwrap(), [-1.0; 3], "nor to the Dense kernel it used to reach");
}
