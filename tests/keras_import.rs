//! `load_keras`: models saved by Python Keras 3.15 (`.keras`, legacy `.h5`, `.weights.h5`,
//! fixtures `tests/fixtures/G_files_*`) load into the matching macro model and predict what Keras
//! predicted; a different architecture or a damaged file is an `Err`, never a panic.

mod common;

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
    assert!(e.contains("the file has weights under `layers/dense_1`, a layer this model does not have"), "{e}");
}

#[test]
fn a_conv2d_model_is_refused_at_its_first_layer() {
    for file in ["G_files_conv2d.keras", "G_files_conv2d.h5"] {
        let e = error(ImageDense::new(&Cpu::default()), file);
        assert!(e.contains("layer 1 (conv2d): the file has Conv2D(filters="), "{e}");
        assert!(e.ends_with("this model has Dense(units=4, activation=relu, use_bias=true)"), "{e}");
    }
    let e = error(ImageDense::new(&Cpu::default()), "G_files_conv2d.weights.h5");
    assert!(e.ends_with("the file has weights under `layers/conv2d`, a layer this model does not have"), "{e}");
}

#[test]
fn missing_and_foreign_files_are_errors() {
    let mut model = Net::new(&Cpu::default());
    assert!(matches!(model.load_keras(fixture("no_such_file.keras")), Err(keras::Error::Io { .. })));
    let e = model.load_keras(fixture("G_files_dense.json")).unwrap_err();
    assert!(matches!(e, keras::Error::Format { .. }) && e.to_string().contains("not a Keras file"), "{e}");
    // A Keras file given to load_weights is read as load_keras reads it.
    for file in ["G_files_dense.keras", "G_files_dense.weights.h5"] {
        let mut by_keras = Net::new(&Cpu::default());
        by_keras.load_keras(fixture(file)).unwrap();
        model.load_weights(fixture(file)).unwrap();
        assert_eq!(model.get_weights().unwrap(), by_keras.get_weights().unwrap(), "{file}");
    }
    // A zip that is not a Keras archive (no config.json: the name is changed everywhere).
    let mut bytes = std::fs::read(fixture("G_files_dense.keras")).unwrap();
    let at: Vec<usize> = (0..bytes.len() - 11).filter(|&i| &bytes[i..i + 11] == b"config.json").collect();
    assert!(at.len() >= 2, "config.json in the local header and the central directory");
    for i in at {
        bytes[i..i + 11].copy_from_slice(b"notes.json_");
    }
    let e = keras::io::keras_file::weights_from_bytes::<Net>(bytes).unwrap_err();
    assert_eq!(e, "a zip archive without config.json: not a .keras file saved by Keras");
}

/// Truncations at many offsets and byte flips across each file: every outcome is an `Ok` (a flip
/// in padding or in a weight's value) or an `Err`, never a panic.
#[test]
fn damaged_files_never_panic() {
    for file in FILES {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in (0..bytes.len()).step_by(bytes.len() / 499 + 1) {
            cases.push(bytes[..cut].to_vec());
        }
        for at in (0..bytes.len()).step_by(bytes.len() / 997 + 1) {
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

/// A `.keras` archive whose central directory declares a 4 GiB member: refused without
/// allocating what it claims.
#[test]
fn huge_declared_sizes_are_refused() {
    let bytes = std::fs::read(fixture("G_files_dense.keras")).unwrap();
    let name = b"model.weights.h5";
    let entry = (0..bytes.len() - 46)
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] && bytes[i + 46..].starts_with(name))
        .expect("central directory entry of model.weights.h5");
    for field in [20, 24] {
        let mut b = bytes.clone();
        b[entry + field..entry + field + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = keras::io::keras_file::weights_from_bytes::<Net>(b).unwrap_err();
        assert!(e.contains("model.weights.h5"), "{e}");
    }
    let mut b = bytes.clone();
    b[entry + 10] = 8; // claims deflate over stored bytes
    assert!(keras::io::keras_file::weights_from_bytes::<Net>(b).is_err());
}

sequential! { struct Mixed = Input(4) => Dense(6, tanh) => Dropout(0.25) => Dense(3, use_bias = false) => Activation(softmax); }

/// `save_keras` then `load_keras` gives back the same weights; where Python Keras is at hand
/// (see `common::python`), Keras opens the archive and predicts what
/// keras-rs predicts.
#[test]
fn save_keras_round_trips_and_python_keras_loads_it() {
    let dir = std::env::temp_dir().join(format!("keras_rs_import_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mixed.keras");
    let model = Mixed::new(&Cpu::default());
    model.save_keras(&path).unwrap();
    let mut back = Mixed::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap());
    let e = WrongUnits::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(e.contains("layer 1 (dense)"), "{e}");

    // save_weights by Keras's names: `.weights.h5` is Keras's weights file, `.keras` the archive;
    // both load back through load_weights and load_keras. Other weights than the archive's, so
    // that Python below shows it read the `.weights.h5`.
    let other = Mixed::new(&Cpu::default());
    let h5 = dir.join("other.weights.h5");
    other.save_weights(&h5).unwrap();
    assert!(std::fs::read(&h5).unwrap().starts_with(b"\x89HDF\r\n\x1a\n"));
    let archive = dir.join("other.keras");
    other.save_weights(&archive).unwrap();
    assert!(std::fs::read(&archive).unwrap().starts_with(b"PK\x03\x04"));
    for file in [&h5, &archive] {
        let (mut a, mut b) = (Mixed::new(&Cpu::default()), Mixed::new(&Cpu::default()));
        a.load_weights(file).unwrap();
        b.load_keras(file).unwrap();
        assert_eq!(a.get_weights().unwrap(), other.get_weights().unwrap(), "{}", file.display());
        assert_eq!(b.get_weights().unwrap(), other.get_weights().unwrap(), "{}", file.display());
    }

    let x = Array2::from_shape_fn((3, 4), |(i, j)| (i as f32 - 1.0) * 0.5 + j as f32 * 0.25);
    let y: Array2<f32> = other.predict(&x).unwrap();
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nm.load_weights({:?})\nx = np.array({:?}, dtype='float32').reshape(3, 4)\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        h5.display().to_string(),
        x.iter().copied().collect::<Vec<f32>>()
    );
    if let Some(text) = common::python(&script) {
        let keras: Vec<f32> = text.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_eq!(keras.len(), y.len(), "{text}");
        for (a, b) in y.iter().zip(&keras) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "keras-rs {a}, Keras {b}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

sequential! {
    struct SmallCnn = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(3, softmax);
}

/// The Conv2D fixture files load into the matching macro model and predict what Keras predicted.
#[test]
fn conv2d_files_load_and_predict_what_keras_predicted() {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(fixture("G_files_conv2d.json")).unwrap()).unwrap();
    let x = array(&r["x"]);
    let expected = array(&r["forward_before"]);
    let init: Vec<ArrayD<f32>> = r["weights_init"].as_array().unwrap().iter().map(array).collect();
    for file in ["G_files_conv2d.keras", "G_files_conv2d.h5", "G_files_conv2d.weights.h5"] {
        let mut model = SmallCnn::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), init, "{file}: the weights Keras saved");
        let y = model.predict(&x).unwrap();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{file}: predicted {a}, Keras {b}");
        }
    }
}

sequential! {
    struct ConvFamily = Input((6, 6, 2))
        => DepthwiseConv2D(3, relu, depth_multiplier = 2)
        => SeparableConv2D(3, 2, tanh)
        => Conv2DTranspose(2, 2, strides = 2)
        => Reshape((36, 2))
        => Conv1D(3, 3, relu, padding = "causal")
        => MaxPooling1D(2)
        => AveragePooling1D(3, padding = "same")
        => GlobalMaxPooling1D()
        => Dense(3, softmax);
}
sequential! {
    struct ConvFamilyOtherMultiplier = Input((6, 6, 2))
        => DepthwiseConv2D(3, relu, depth_multiplier = 1)
        => SeparableConv2D(3, 2, tanh)
        => Conv2DTranspose(2, 2, strides = 2)
        => Reshape((36, 2))
        => Conv1D(3, 3, relu, padding = "causal")
        => MaxPooling1D(2)
        => AveragePooling1D(3, padding = "same")
        => GlobalMaxPooling1D()
        => Dense(3, softmax);
}

/// Files with DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, Conv1D and the 1-D poolings load
/// into the matching macro model (Keras's weight names and layouts) and predict what Keras
/// predicted; a different depth multiplier is refused at its layer.
#[test]
fn convolution_family_files_load_and_predict_what_keras_predicted() {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(fixture("G_files_convfam.json")).unwrap()).unwrap();
    let x = array(&r["x"]);
    let expected = array(&r["forward_before"]);
    let init: Vec<ArrayD<f32>> = r["weights_init"].as_array().unwrap().iter().map(array).collect();
    for file in ["G_files_convfam.keras", "G_files_convfam.h5", "G_files_convfam.weights.h5"] {
        let mut model = ConvFamily::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), init, "{file}: the weights Keras saved");
        let y = model.predict(&x).unwrap();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{file}: predicted {a}, Keras {b}");
        }
    }
    let e = error(ConvFamilyOtherMultiplier::new(&Cpu::default()), "G_files_convfam.keras");
    assert!(e.contains("layer 1 (depthwise_conv2d): the file has DepthwiseConv2D("), "{e}");
}

sequential! {
    struct ConvFamilyOtherPadding = Input((6, 6, 2))
        => DepthwiseConv2D(3, relu, depth_multiplier = 2)
        => SeparableConv2D(3, 2, tanh)
        => Conv2DTranspose(2, 2, strides = 2)
        => Reshape((36, 2))
        => Conv1D(3, 3, relu)
        => MaxPooling1D(2)
        => AveragePooling1D(3, padding = "same")
        => GlobalMaxPooling1D()
        => Dense(3, softmax);
}
sequential! {
    struct Images = Input((6, 6, 2))
        => DepthwiseConv2D(3, relu, depth_multiplier = 2, padding = "same")
        => SeparableConv2D(3, 2, tanh, strides = 2)
        => Conv2DTranspose(2, 3, strides = 2, padding = "same")
        => MaxPooling2D(2, strides = 1)
        => GlobalAveragePooling2D()
        => Dense(3, softmax);
}
sequential! {
    struct Signals = Input((12, 3))
        => Reshape((-1, 6))
        => Reshape((12, 3))
        => Conv1D(4, 3, relu, padding = "causal", dilation_rate = 2)
        => MaxPooling1D(2)
        => AveragePooling1D(3, strides = 1, padding = "same")
        => GlobalMaxPooling1D()
        => Dense(2);
}

/// The window arguments (`kernel_size`, `strides`, `padding`, `dilation_rate`, `pool_size`) are
/// part of the architecture check: a file whose Conv1D pads causally does not load into a model
/// whose Conv1D does not.
#[test]
fn a_different_window_is_refused() {
    let e = error(ConvFamilyOtherPadding::new(&Cpu::default()), "G_files_convfam.keras");
    assert!(e.contains("layer 5 (conv1d): the file has Conv1D(filters=3, kernel_size=(3,), strides=(1,), padding=causal"), "{e}");
    assert!(
        e.contains("this model has Conv1D(filters=3, activation=relu, use_bias=true, kernel_size=(3,), strides=(1,), padding=valid"),
        "{e}"
    );
}

/// The convolution family through `save_keras`: back through `load_keras`, and (where Python
/// Keras is at hand, as above) into Keras, which predicts what keras-rs predicts.
#[test]
fn convolution_family_save_keras_round_trips_into_python_keras() {
    fn round_trip<M: Model<Backend = Cpu>>(name: &str, x: ArrayD<f32>) {
        keras::utils::set_random_seed(5);
        let dir = std::env::temp_dir().join(format!("keras_rs_convfam_{}_{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.keras"));
        let model = M::create(&Cpu::default()).unwrap();
        model.save_keras(&path).unwrap();
        let mut back = M::create(&Cpu::default()).unwrap();
        back.load_keras(&path).unwrap();
        assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap(), "{name}");
        let y = model.predict_joined(&x).unwrap();
        let script = format!(
            "import numpy as np, keras\nm = keras.models.load_model({:?})\nx = np.array({:?}, dtype='float32').reshape({:?})\n\
             print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
            path.display().to_string(),
            x.iter().copied().collect::<Vec<f32>>(),
            x.shape()
        );
        if let Some(text) = common::python(&script) {
            let keras: Vec<f32> = text.split_whitespace().map(|v| v.parse().unwrap()).collect();
            assert_eq!(keras.len(), y.len(), "{name}: {text}");
            for (a, b) in y.iter().zip(&keras) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{name}: keras-rs {a}, Keras {b}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let images = ArrayD::from_shape_fn(IxDyn(&[3, 6, 6, 2]), |i| ((i[0] * 7 + i[1] * 5 + i[2] * 3 + i[3]) % 11) as f32 / 11.0 - 0.5);
    round_trip::<Images>("images", images);
    let signals = ArrayD::from_shape_fn(IxDyn(&[2, 12, 3]), |i| ((i[0] * 5 + i[1] * 3 + i[2]) % 7) as f32 / 7.0 - 0.5);
    round_trip::<Signals>("signals", signals);
}

sequential! {
    /// G_files_named: the second layer carries the first one's default name.
    struct Named = Input(4) => Dense(3, tanh, name = "hidden") => Dense(2, name = "dense");
}

/// Keras 3 files place a layer's weights by class and position (`layers/dense`,
/// `layers/dense_1`), whatever the layer is named: a model whose second layer is named `dense`
/// loads from Keras's `.keras` and `.weights.h5` files and predicts what Keras predicted, and
/// `save_keras` writes the same layout back.
#[test]
fn weights_are_placed_by_class_and_position_not_by_name() {
    let f: Value = serde_json::from_str(&std::fs::read_to_string(fixture("G_files_named.json")).unwrap()).unwrap();
    let rows = |v: &Value| {
        v.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect::<Vec<f32>>()
    };
    let x = Array2::from_shape_vec((5, 4), rows(&f["x"])).unwrap();
    let want = rows(&f["predict"]);
    for file in ["G_files_named.keras", "G_files_named.weights.h5"] {
        let mut model = Named::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap();
        let got: Array2<f32> = model.predict(&x).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{file}: keras-rs {a}, Keras {b}");
        }
        let path = std::env::temp_dir().join(format!("keras_rs_named_{}.keras", std::process::id()));
        model.save_keras(&path).unwrap();
        let mut back = Named::new(&Cpu::default());
        back.load_keras(&path).unwrap();
        assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap());
        std::fs::remove_file(&path).unwrap();
    }
}
