//! The preprocessing layers, Rescaling and Normalization: what they compute, their summary rows,
//! saving and loading. Their Keras fixtures (from `tests/fixtures/gen_preprocessing.py`: forward,
//! first-batch loss and gradients, two epochs of SGD, within 1e-5 relative) run here on the CPU
//! and on every backend in the conformance suite (`tests/conformance/`, models in
//! `tests/models/preprocessing.rs`); their finite-difference checks are in `tests/gradients.rs`.

mod common;
#[path = "models/preprocessing.rs"]
mod models;

use common::{Fixture, assert_close, run_fixture};
use keras::prelude::*;
use models::{RescaleImage, RescaleNet};

const RTOL: f64 = 1e-5;

#[test]
fn rescaling_matches_keras() {
    run_fixture::<RescaleNet>("D_layer_rescaling", RTOL);
    run_fixture::<RescaleImage>("D_layer_rescaling_image", RTOL);
}

/// Each layer's output in inference, against Keras's `layer_outputs_before`: the Rescaling layers
/// alone, on pixel values.
#[test]
fn rescaling_outputs_are_keras_outputs() {
    sequential! { struct Pixels = Input(6) => Rescaling(1.0 / 255.0); }
    sequential! { struct Centered = Input((4, 4, 2)) => Rescaling(1.0 / 127.5, offset = -1); }
    let f = Fixture::load("D_layer_rescaling");
    let got = Pixels::new(&Cpu::default()).predict(&f.tensor("x")).unwrap();
    let want = Fixture::tensor_of(&f.value("layer_outputs_before")[0]);
    assert_close("Rescaling(1 / 255)", got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-7);
    let f = Fixture::load("D_layer_rescaling_image");
    let got = Centered::new(&Cpu::default()).predict(&f.tensor("x")).unwrap();
    let want = Fixture::tensor_of(&f.value("layer_outputs_before")[0]);
    assert_close("Rescaling(1 / 127.5, offset = -1)", got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-7);
}

/// Where Python Keras is at hand (`KERAS_PYTHON`, else `/tmp/refenv/bin/python`): what Keras
/// predicts for `x` (of `shape`) with the `.keras` archive at `path`; `None` without Keras.
fn python_keras_predicts(path: &std::path::Path, x: &[f32], shape: &[usize]) -> Option<Vec<f32>> {
    let python = std::env::var("KERAS_PYTHON").unwrap_or_else(|_| "/tmp/refenv/bin/python".into());
    let run = |script: &str| std::process::Command::new(&python).env("KERAS_BACKEND", "jax").args(["-c", script]).output();
    if !run("import keras").is_ok_and(|out| out.status.success()) {
        println!("skipped the Python Keras check: no Keras at {python} (set KERAS_PYTHON)");
        return None;
    }
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nx = np.array({x:?}, dtype='float32').reshape({shape:?})\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
    );
    let out = run(&script).unwrap();
    assert!(out.status.success(), "Keras could not load {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect())
}

/// A model with Rescaling saved by `save_keras` loads back, and Python Keras loads it and
/// predicts what keras-rs predicts; a file with another scale is refused, naming it.
#[test]
fn rescaling_save_keras_round_trips_into_python_keras() {
    sequential! { struct OtherScale = Input(6) => Rescaling(1.0 / 127.5) => Dense(4, tanh) => Rescaling(2.5, offset = -0.5) => Dense(3, softmax); }
    let f = Fixture::load("D_layer_rescaling");
    let dir = std::env::temp_dir().join(format!("keras-rs-rescaling-{}", std::process::id()));
    let path = dir.join("rescale.keras");
    let mut model = RescaleNet::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    model.save_keras(&path).unwrap();
    let mut back = RescaleNet::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap());
    let e = OtherScale::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 1 (rescaling): the file has Rescaling(scale=0.00392156862745098, offset=0.0), \
             this model has Rescaling(scale=0.00784313725490196, offset=0)"
        ),
        "{e}"
    );
    let x = f.tensor("x");
    let ours = model.predict(&x).unwrap();
    if let Some(keras) = python_keras_predicts(&path, x.as_slice().unwrap(), x.shape()) {
        assert_close("Python Keras on our archive", ours.as_slice().unwrap(), &keras, RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
