//! A functional model with several outputs (issue 13 point 3), matched to real Keras
//! (`tests/fixtures/gen_multi_output.py`): a classification head and a regression head on one
//! trunk, a loss and a metric per output and `loss_weights`, trained by `fit` with validation
//! data; History's keys and values, `evaluate`, the weights and both outputs' predictions after,
//! the summary, and the `.keras` file Keras saved, loaded here and saved back for Keras.

mod common;

use common::{Fixture, assert_all_close, assert_close};
use keras::ndarray::{Array1, Array2, ArrayD, Ix1, Ix2, Ix4};
use keras::prelude::*;
use keras::{Model, metrics};

const RTOL: f64 = 1e-5;

functional! {
    /// Keras's `keras.Model(image, [digit, size])`.
    #[params(172)]
    pub struct TwoHeads(image: [4, 4, 1]) -> (digit, size) {
        let h = Flatten()(image);
        let h = Dense(8, tanh)(h);
        let digit = Dense(3, softmax, name = "digit")(h);
        let size = Dense(1, name = "size")(h);
    }
}

/// The fixture's data: x, and the two target arrays.
fn data(f: &Fixture, prefix: &str) -> (ArrayD<f32>, Array1<f32>, Array2<f32>) {
    let x = f.tensor(&format!("{prefix}x"));
    let yd = f.tensor(&format!("{prefix}y_digit")).into_dimensionality::<Ix1>().unwrap();
    let ys = f.tensor(&format!("{prefix}y_size")).into_dimensionality::<Ix2>().unwrap();
    (x, yd, ys)
}

fn compiled(f: &Fixture) -> keras::Compiled<TwoHeads> {
    let mut model = TwoHeads::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    model
        .compile(Sgd::new(0.1), ["sparse_categorical_crossentropy", "mse"], [metrics::on("digit", "accuracy"), metrics::on("size", "mae")])
        .unwrap()
        .loss_weights([1.0, 0.5])
        .unwrap()
}

#[test]
fn the_model_has_keras_outputs() {
    assert_eq!(<TwoHeads as Model>::OUTPUTS.iter().map(|o| o.name).collect::<Vec<_>>(), ["digit", "size"]);
    assert_eq!(TwoHeads::LAYER_NAMES, ["image", "flatten", "dense", "digit", "size"]);
    assert_eq!(<TwoHeads as Model>::OUTPUT_SHAPE, [4]);
    let want = include_str!("fixtures/multi_output_summary.txt");
    assert_eq!(TwoHeads::new(&Cpu::default()).summary().to_string().trim_end(), want.trim_end());
}

#[test]
fn fit_with_validation_matches_keras() {
    let f = Fixture::load("multi_output");
    let (x, yd, ys) = data(&f, "");
    let (vx, vyd, vys) = data(&f, "val_");
    let mut model = compiled(&f);
    let y = (yd.view(), ys.view());
    let vy = (vyd.view(), vys.view());
    let h = model.fit(&x, &y, FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0).validation_data(&vx, &vy)).unwrap();
    let keras_history = f.value("history").as_object().unwrap();
    let keys: Vec<&str> = h.keys().collect();
    assert_eq!(keys, keras_history.keys().map(String::as_str).collect::<Vec<_>>());
    for (key, values) in keras_history {
        let want: Vec<f32> = values.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_close(&format!("history {key}"), &h[key.as_str()], &want, RTOL);
    }
    assert_all_close("weights after fit", &model.get_weights().unwrap(), &f.weights("weights_after"), RTOL);

    let logs = model.evaluate(&vx, &vy).unwrap();
    for (key, value) in f.value("evaluate").as_object().unwrap() {
        assert_close(&format!("evaluate {key}"), &[logs[key.as_str()]], &[value.as_f64().unwrap() as f32], RTOL);
    }

    let outputs = model.predict_outputs(&vx).unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0].shape(), [12, 3]);
    assert_eq!(outputs[1].shape(), [12, 1]);
    assert_close("predict digit", outputs[0].as_slice().unwrap(), f.tensor("predict_digit").as_slice().unwrap(), RTOL);
    assert_close("predict size", outputs[1].as_slice().unwrap(), f.tensor("predict_size").as_slice().unwrap(), RTOL);
    // `predict` returns one array per output, as Keras's list (and `predict_on_batch` too);
    // `predict_joined` has them side by side; `predict_one` returns a tuple.
    let listed: Vec<ArrayD<f32>> = model.predict(&vx).unwrap();
    assert_eq!(listed, outputs);
    assert_eq!(model.predict_on_batch(&vx).unwrap().len(), 2);
    let joined = model.predict_joined(&vx).unwrap();
    assert_eq!(joined.shape(), [12, 4]);
    assert_eq!(joined.column(3).to_vec(), outputs[1].iter().copied().collect::<Vec<f32>>());
    let sample = vx.clone().into_dimensionality::<Ix4>().unwrap();
    let first: Vec<f32> = sample.slice(keras::ndarray::s![0, .., .., ..]).iter().copied().collect();
    let (digit, size) = model.model().predict_one(first.as_slice().try_into().unwrap());
    assert_close("predict_one digit", &digit, &outputs[0].as_slice().unwrap()[..3], 1e-6);
    assert_close("predict_one size", &size, &outputs[1].as_slice().unwrap()[..1], 1e-6);
}

/// `train_on_batch`'s loss is the weighted sum of the outputs' losses; the gradient of the
/// total against finite differences of the loss `evaluate` computes.
#[test]
fn the_total_loss_weighs_each_output() {
    let f = Fixture::load("multi_output");
    let (x, yd, ys) = data(&f, "");
    let mut model = compiled(&f);
    let y = (yd.view(), ys.view());
    let logs = model.test_on_batch(&x, &y).unwrap().clone();
    let total = logs["digit_loss"] + 0.5 * logs["size_loss"];
    assert!((logs.loss() - total).abs() < 1e-6 * total, "{} vs {total}", logs.loss());
    let (loss, grads) = model.gradients(&x, &y).unwrap();
    assert!((loss - total).abs() < 1e-6 * total);
    let weights = model.get_weights().unwrap();
    let eps = 1e-2f32;
    let mut checked = 0;
    for (k, w) in weights.iter().enumerate() {
        for i in (0..w.len()).step_by(7) {
            let mut at = |d: f32| {
                let mut moved = weights.clone();
                moved[k].as_slice_mut().unwrap()[i] += d;
                model.set_weights(&moved).unwrap();
                model.test_on_batch(&x, &y).unwrap().loss() as f64
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let got = grads[k].as_slice().unwrap()[i] as f64;
            assert!((got - numeric).abs() < 2e-3 * numeric.abs().max(0.05), "weight {k}[{i}]: {got} vs {numeric}");
            checked += 1;
        }
    }
    assert!(checked > 20);
}

/// The `.keras` file Keras saved loads here; ours, saved back, loads in Keras with both outputs.
#[test]
fn keras_files_with_two_outputs() {
    let f = Fixture::load("multi_output");
    let mut model = TwoHeads::new(&Cpu::default());
    model.load_keras(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/multi_output.keras")).unwrap();
    assert_all_close("weights from Keras's file", &model.get_weights().unwrap(), &f.weights("weights_after"), 0.0);
    let dir = std::env::temp_dir().join(format!("keras-multi-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two_heads.keras");
    model.save_keras(&path).unwrap();
    let mut again = TwoHeads::new(&Cpu::default());
    again.load_keras(&path).unwrap();
    assert_all_close("our file read back", &again.get_weights().unwrap(), &f.weights("weights_after"), 0.0);
    let vx = f.tensor("val_x");
    let ours = model.predict_outputs(&vx).unwrap();
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nassert m.output_names == ['digit', 'size'], m.output_names\n\
         x = np.array({:?}, dtype='float32').reshape({:?})\nd, s = m.predict(x, verbose=0)\nprint(' '.join(repr(float(v)) for v in list(d.ravel()) + list(s.ravel())))",
        path.display().to_string(),
        vx.as_slice().unwrap(),
        vx.shape()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        let mine: Vec<f32> = ours.iter().flat_map(|o| o.iter().copied()).collect();
        assert_close("Python Keras on our file", &keras, &mine, RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts that do not fit the outputs are errors at `compile`, naming the outputs.
#[test]
fn mismatched_losses_and_targets_are_errors() {
    let cpu = Cpu::default();
    let no_metrics: [Metric; 0] = [];
    let e = TwoHeads::new(&cpu).compile(Sgd::new(0.1), ["mse", "mse", "mse"], no_metrics).err().unwrap();
    assert_eq!(e.to_string(), "3 losses given for a model with 2 outputs (digit, size): give one per output");
    let e = TwoHeads::new(&cpu).compile(Sgd::new(0.1), [("digit", "mse"), ("sise", "mse")], no_metrics).err().unwrap();
    assert_eq!(e.to_string(), "a loss for output `sise`, which the model does not have; its outputs are digit, size");
    let e = TwoHeads::new(&cpu).compile(Sgd::new(0.1), "mse", ["mae"]).err().unwrap();
    assert!(e.to_string().contains("say which output it is for, as in `metrics::on(\"digit\", \"mae\")`"), "{e}");
    let e = TwoHeads::new(&cpu).compile(Sgd::new(0.1), "mse", no_metrics).unwrap().loss_weights([1.0]).err().unwrap();
    assert_eq!(e.to_string(), "1 loss weights given for a model with 2 outputs: give one per output");
    // One loss for both outputs, by name in any order.
    let model =
        TwoHeads::new(&cpu).compile(Sgd::new(0.1), [("size", "mse"), ("digit", "sparse_categorical_crossentropy")], no_metrics).unwrap();
    assert_eq!(
        model.losses().iter().map(|l| l.name().to_string()).collect::<Vec<_>>(),
        ["sparse_categorical_crossentropy", "mean_squared_error"]
    );
    let f = Fixture::load("multi_output");
    let (x, yd, ys) = data(&f, "");
    let mut model = compiled(&f);
    let e = model.train_on_batch(&x, &ys).err().unwrap();
    assert_eq!(e.to_string(), "y: expected 2 arrays, one per output (digit, size), found one array of shape (40, 1)");
    let e = model.train_on_batch(&x, &(ys.view(), yd.view())).err().unwrap();
    assert!(e.to_string().starts_with("y[0], the targets of output `digit`:"), "{e}");
}
