//! Legacy weights-only `.h5` files, the format of Keras's published application weights
//! (`resnet50_weights_tf_dim_ordering_tf_kernels.h5`), read by layer name as Keras's
//! `load_weights(path, by_name=True)`: fixtures from `tests/fixtures/gen_legacy_weights.py`, a
//! small model named as Keras's applications name their layers, saved by Keras 3's
//! `save_weights_to_hdf5_group` (`legacy_weights.h5`) and as Keras 2 wrote such files, with
//! chunked `layer_names` and `weight_names`, its layers in another order, `:0` weight names and a
//! layer the model lacks (`legacy_weights_chunked.h5`). The loaded models predict what Keras
//! predicted within 1e-5 relative; mismatches are errors naming the layer, and so are the faults
//! of `legacy_weights_broken.h5` (a listed layer without weights, a top-level model weight).

use keras::ndarray::{Array2, Array4, ArrayD, Ix2, Ix4, IxDyn};
use keras::prelude::*;
use serde_json::Value;

functional! {
    /// The fixture's model, written as Keras's generator builds it.
    struct TinyApp(input_1: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(5, softmax, name = "predictions")(p);
    }

    /// The same layers, the branches added the other way round (the same sum): Keras's order of
    /// the layers, and so this model's, puts `branch_b` first.
    struct Reordered(image: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(image);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let j = Add(name = "add")(b, a);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(5, softmax, name = "predictions")(p);
    }

    /// Without the classifier: the features `avg_pool` gives.
    struct Headless(input_1: [6, 6, 3]) -> p {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
    }

    /// A weighted layer the file does not have (`conv2_conv`).
    struct ExtraLayer(input_1: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let e = Conv2D(4, 1, name = "conv2_conv")(r);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(e);
        let b = Conv2D(3, 1, relu, name = "branch_b")(e);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(5, softmax, name = "predictions")(p);
    }

    /// Six classes where the file has five.
    struct WrongShape(input_1: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(6, softmax, name = "predictions")(p);
    }

    /// A convolution without the bias the file holds.
    struct NoBias(input_1: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", use_bias = false, name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bn")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(5, softmax, name = "predictions")(p);
    }

    /// The normalization under another name.
    struct Misnamed(input_1: [6, 6, 3]) -> out {
        let c = Conv2D(4, 3, padding = "same", name = "conv1_conv")(input_1);
        let n = BatchNormalization(epsilon = 1.001e-5, name = "conv1_bm")(c);
        let r = Activation(relu, name = "conv1_relu")(n);
        let a = Conv2D(3, 1, tanh, name = "branch_a")(r);
        let b = Conv2D(3, 1, relu, name = "branch_b")(r);
        let j = Add(name = "add")(a, b);
        let p = GlobalAveragePooling2D(name = "avg_pool")(j);
        let out = Dense(5, softmax, name = "predictions")(p);
    }
}

const FILES: [&str; 2] = ["legacy_weights.h5", "legacy_weights_chunked.h5"];

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("legacy_weights.json")).unwrap()).unwrap()
}

fn tensor(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn input(r: &Value) -> Array4<f32> {
    tensor(&r["x"]).into_dimensionality::<Ix4>().unwrap()
}

fn assert_close(what: &str, got: &Array2<f32>, want: &ArrayD<f32>) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{what}: keras-rs {a}, Keras {b}");
    }
}

/// Each file loads into the model and gives exactly the weights Keras saved, per layer, and the
/// predictions Keras made.
#[test]
fn each_file_loads_by_name_and_predicts_what_keras_predicted() {
    let r = reference();
    let want = tensor(&r["predict"]);
    for file in FILES {
        let mut model = TinyApp::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let weights = model.get_weights().unwrap();
        assert_eq!(weights.len(), 12);
        for (w, spec) in weights.iter().zip(<TinyApp as Model>::WEIGHTS) {
            let layer = r["weights"][spec.layer].as_array().unwrap_or_else(|| panic!("no layer {}", spec.layer));
            let i = <TinyApp as Model>::WEIGHTS.iter().filter(|s| s.layer == spec.layer).position(|s| s.name == spec.name).unwrap();
            assert_eq!(w, &tensor(&layer[i]), "{file}: {}/{}", spec.layer, spec.name);
        }
        let y: Array2<f32> = model.predict(&input(&r)).unwrap();
        assert_close(file, &y, &want);
    }
}

/// Layers are found by name, not by position: a model listing the branches the other way round
/// loads the same weights.
#[test]
fn the_order_of_the_layers_does_not_matter() {
    let names = |layers: &[keras::model::LayerSpec]| layers.iter().map(|l| l.name).filter(|n| n.starts_with("branch")).collect::<Vec<_>>();
    assert_ne!(names(<TinyApp as Model>::LAYERS), names(<Reordered as Model>::LAYERS), "the two models order their layers differently");
    let r = reference();
    let want = tensor(&r["predict"]);
    for file in FILES {
        let mut model = Reordered::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let y: Array2<f32> = model.predict(&input(&r)).unwrap();
        assert_close(&format!("{file} reordered"), &y, &want);
    }
}

/// The file's `predictions` (and, in the chunked file, `fc1000`) are ignored by a model without
/// them, as Keras ignores them.
#[test]
fn a_headless_model_ignores_the_layers_it_lacks() {
    let r = reference();
    let want = tensor(&r["features"]);
    for file in FILES {
        let mut model = Headless::new(&Cpu::default());
        model.load_keras(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let y = model.predict(&input(&r)).unwrap().into_dimensionality::<Ix2>().unwrap();
        assert_close(&format!("{file} headless"), &y, &want);
    }
}

/// The error of loading `file` into `model`, after checking that the refused file wrote nothing.
fn error<M: Network>(mut model: M, file: &str) -> String {
    let before = model.get_weights().unwrap();
    let e = model.load_keras(fixture(file)).expect_err("a mismatched file must be refused").to_string();
    assert_eq!(model.get_weights().unwrap(), before, "{file}: a refused file writes nothing");
    assert!(e.starts_with(&fixture(file)), "the error names the file: {e}");
    e
}

/// A layer of the model that the file lacks is an error naming it; a name close to one of the
/// file's layers that the model does not have is suggested.
#[test]
fn a_layer_the_file_lacks_is_an_error_naming_it() {
    for (file, layers) in [("legacy_weights.h5", 9), ("legacy_weights_chunked.h5", 10)] {
        let e = error(ExtraLayer::new(&Cpu::default()), file);
        let want = format!(
            "layer 5 (conv2_conv): the file has no weights for it (no layer of that name among its {layers} layers), this model has 2 \
             weights (kernel (1, 1, 4, 4), bias (4,))"
        );
        assert!(e.ends_with(&want), "{file}: {e}");
        let e = error(Misnamed::new(&Cpu::default()), file);
        assert!(
            e.ends_with(&format!(
                "layer 3 (conv1_bm): the file has no weights for it (no layer of that name among its {layers} layers; did you mean \
                 `conv1_bn`?), this model has 4 weights (gamma (4,), beta (4,), moving_mean (4,), moving_variance (4,))"
            )),
            "{file}: {e}"
        );
    }
}

#[test]
fn another_shape_or_count_is_an_error_naming_the_layer() {
    let e = error(WrongShape::new(&Cpu::default()), "legacy_weights.h5");
    assert!(e.ends_with("layer 9 (predictions) weight kernel: the file has shape (3, 5), this model has (3, 6)"), "{e}");
    let e = error(NoBias::new(&Cpu::default()), "legacy_weights.h5");
    assert!(
        e.ends_with("layer 2 (conv1_conv): the file has 2 (conv1_conv/kernel, conv1_conv/bias) for it, this model has 1 weight (kernel (3, 3, 3, 4))"),
        "{e}"
    );
    let e = error(NoBias::new(&Cpu::default()), "legacy_weights_chunked.h5");
    assert!(e.contains("layer 2 (conv1_conv): the file has 2 (conv1_conv/kernel:0, conv1_conv/bias:0)"), "{e}");
}

sequential! {
    /// A layer `d` that `legacy_weights_broken.h5` lists but holds no group of weights for.
    struct ListedOnly = Input(4) => Dense(2, name = "d");
}

sequential! {
    /// No weights at all: only the broken file's top-level weight is left to refuse.
    struct Weightless = Input(4) => Activation(relu, name = "act");
}

#[test]
fn a_listed_layer_without_weights_and_top_level_weights_are_errors() {
    let e = error(ListedOnly::new(&Cpu::default()), "legacy_weights_broken.h5");
    assert!(e.ends_with("layer 1 (d): the file lists it in layer_names but has no group `d` of weights"), "{e}");
    let e = error(Weightless::new(&Cpu::default()), "legacy_weights_broken.h5");
    assert!(e.ends_with("the file has 1 top-level model weight (scale), this model has none (its weights are its layers')"), "{e}");
}

/// Damaged copies of the files (bytes changed all through them, or cut short) load or give an
/// error, never a panic.
#[test]
fn damaged_files_are_errors_not_panics() {
    for file in FILES {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let mut refused = 0;
        for at in (0..bytes.len()).step_by(37) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            refused += usize::from(keras::io::keras_file::weights_from_bytes::<TinyApp>(damaged).is_err());
        }
        // (The end of a file may be space HDF5 set aside and never used: a copy cut there loads.)
        for len in (0..bytes.len() / 2).step_by(997) {
            assert!(keras::io::keras_file::weights_from_bytes::<TinyApp>(bytes[..len].to_vec()).is_err(), "{file} cut to {len} bytes");
        }
        for len in (bytes.len() / 2..bytes.len()).step_by(97) {
            let _ = keras::io::keras_file::weights_from_bytes::<TinyApp>(bytes[..len].to_vec());
        }
        assert!(refused > 0, "{file}: some damage is noticed");
    }
}
