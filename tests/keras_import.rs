//! `load_keras`: models saved by Python Keras 3.15 (`.keras`, legacy `.h5`, `.weights.h5`,
//! fixtures `tests/fixtures/G_files_*`) load into the matching macro model and predict what Keras
//! predicted; a different architecture or a damaged file is an `Err`, never a panic.

use keras::ndarray::{Array2, ArrayD, Ix2, IxDyn};
use keras::prelude::*;
use serde_json::Value;

sequential! { struct Net = Input(4) => Dense(5, relu) => Dense(3, softmax); }
sequential! { struct WrongUnits = Input(4) => Dense(5, relu) => Dense(4, softmax); }
sequential! { struct WrongActivation = Input(4) => Dense(5, tanh) => Dense(3, softmax); }
sequential! { struct NoBias = Input(4) => Dense(5, relu, use_bias = false) => Dense(3, softmax); }
sequential! { struct ExtraLayer = Input(4) => Dense(5, relu) => Dense(3, softmax) => Dense(2); }
sequential! { struct Shorter = Input(4) => Dense(3, softmax); }
sequential! { struct WrongInput = Input(6) => Dense(5, relu) => Dense(3, softmax); }
sequential! { struct ImageDense = Input((6, 6, 2)) => Dense(4, relu) => Flatten() => Dense(3, softmax); }

const FILES: [&str; 3] = ["G_files_dense.keras", "G_files_dense.h5", "G_files_dense.weights.h5"];

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn array(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("G_files_dense.json")).unwrap()).unwrap()
}

#[test]
fn each_file_loads_and_predicts_what_keras_predicted() {
    let r = reference();
    let x = array(&r["x"]).into_dimensionality::<Ix2>().unwrap();
    let expected = array(&r["forward_before"]).into_dimensionality::<Ix2>().unwrap();
    let init: Vec<ArrayD<f32>> = r["weights_init"].as_array().unwrap().iter().map(array).collect();
    for file in FILES {
        let mut model = Net::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let weights = model.get_weights().unwrap();
        assert_eq!(weights, init, "{file}: the weights Keras saved");
        let y: Array2<f32> = model.predict(&x).unwrap();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{file}: predicted {a}, Keras {b}");
        }
    }
}

fn error<M: Network>(mut model: M, file: &str) -> String {
    let before = model.get_weights().unwrap();
    let e = model.load_keras(fixture(file)).expect_err("a mismatched file must be refused").to_string();
    assert_eq!(model.get_weights().unwrap(), before, "{file}: a refused file writes nothing");
    e
}

#[test]
fn a_different_architecture_names_the_first_difference() {
    for file in ["G_files_dense.keras", "G_files_dense.h5"] {
        let e = error(WrongUnits::new(&Cpu::default()), file);
        assert!(
            e.ends_with(
                "layer 2 (dense_1): the file has Dense(units=3, activation=softmax, use_bias=true), \
                 this model has Dense(units=4, activation=softmax, use_bias=true)"
            ),
            "{e}"
        );
        let e = error(WrongActivation::new(&Cpu::default()), file);
        assert!(e.ends_with("layer 1 (dense): the file has Dense(units=5, activation=relu, use_bias=true), this model has Dense(units=5, activation=tanh, use_bias=true)"), "{e}");
        let e = error(NoBias::new(&Cpu::default()), file);
        assert!(e.contains("layer 1 (dense)") && e.contains("this model has Dense(units=5, activation=relu, use_bias=false)"), "{e}");
        let e = error(ExtraLayer::new(&Cpu::default()), file);
        assert!(e.ends_with("layer 3 (dense_2): the file has 2 layers, this model has 3 (the file has no Dense(units=2, activation=linear, use_bias=true))"), "{e}");
        let e = error(Shorter::new(&Cpu::default()), file);
        assert!(e.contains("layer 1 (dense): the file has Dense(units=5"), "{e}");
        let e = error(WrongInput::new(&Cpu::default()), file);
        assert!(e.ends_with("input: the file has (None, 4), this model has (None, 6)"), "{e}");
    }
    // A weights-only file has no architecture: its weights' shapes and layer names decide.
    let e = error(WrongUnits::new(&Cpu::default()), "G_files_dense.weights.h5");
    assert!(e.ends_with("layer 2 (dense_1) weight kernel: the file has shape (5, 3), this model has (5, 4)"), "{e}");
    let e = error(NoBias::new(&Cpu::default()), "G_files_dense.weights.h5");
    assert!(e.ends_with("layer 1 (dense): the file has 2 weights, this model has 1"), "{e}");
    let e = error(Shorter::new(&Cpu::default()), "G_files_dense.weights.h5");
    assert!(e.contains("the file has weights for a layer `dense_1`, which this model does not have"), "{e}");
}

#[test]
fn a_conv2d_model_is_refused_at_its_first_layer() {
    for file in ["G_files_conv2d.keras", "G_files_conv2d.h5"] {
        let e = error(ImageDense::new(&Cpu::default()), file);
        assert!(e.contains("layer 1 (conv2d): the file has Conv2D(filters="), "{e}");
        assert!(e.ends_with("this model has Dense(units=4, activation=relu, use_bias=true)"), "{e}");
    }
    let e = error(ImageDense::new(&Cpu::default()), "G_files_conv2d.weights.h5");
    assert!(e.contains("conv2d"), "{e}");
}

#[test]
fn missing_and_foreign_files_are_errors() {
    let mut model = Net::new(&Cpu::default());
    assert!(matches!(model.load_keras(fixture("no_such_file.keras")), Err(keras::Error::Io { .. })));
    let e = model.load_keras(fixture("G_files_dense.json")).unwrap_err();
    assert!(matches!(e, keras::Error::Format { .. }) && e.to_string().contains("not a Keras file"), "{e}");
}

/// Truncations at many offsets and byte flips across each file: every outcome is an `Ok` (a flip
/// in padding or in a weight's value) or an `Err`, never a panic.
#[test]
fn damaged_files_never_panic() {
    for file in FILES {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            cases.push(bytes[..cut].to_vec());
        }
        for at in (0..bytes.len()).step_by(bytes.len() / 211 + 1) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                cases.push(b);
            }
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20 {
            let mut b = bytes.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % b.len() as u64) as usize;
                b[at] = (state >> 32) as u8;
            }
            cases.push(b);
        }
        cases.push((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect());
        for (i, case) in cases.into_iter().enumerate() {
            let outcome = std::panic::catch_unwind(|| keras::io::keras_file::weights_from_bytes::<Net>(case));
            assert!(outcome.is_ok(), "{file}: case {i} panicked");
        }
    }
}
