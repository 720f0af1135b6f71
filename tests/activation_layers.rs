//! The activation layers `ReLU`, `LeakyReLU`, `ELU`, `PReLU` and `Softmax`, and `Lambda`: matched to Keras's
//! fits (`tests/fixtures/gen_activation_layers.py`: forward, every layer's output, first-batch loss
//! and gradients, two epochs of SGD, within 1e-5 relative), PReLU's `alpha` as Keras's weight,
//! the summary Keras prints, the files Keras saves, and `save_keras` read back by Python Keras.
//! The same fixtures run on every backend in the conformance suite (`tests/conformance/`, models
//! in `tests/models/activation_layers.rs`); the kernels' kinks and NaN there too.

mod common;
#[path = "models/activation_layers.rs"]
mod models;

use common::{Fixture, assert_close, run_fixture};
use keras::model::{Arena, Model};
use keras::prelude::*;
use models::{AllFive, EluSoftmax, LambdaImage, LambdaNet, PReluFull, PReluNet, PReluShared, ReluDefaults, ReluNet, SoftmaxAxis};

const RTOL: f64 = 1e-5;

#[test]
fn relu_and_leaky_relu_match_keras() {
    run_fixture::<ReluNet>("D_layer_relu", RTOL);
    run_fixture::<ReluDefaults>("D_layer_relu_defaults", RTOL);
}

#[test]
fn elu_and_softmax_match_keras() {
    run_fixture::<EluSoftmax>("D_layer_elu_softmax", RTOL);
    run_fixture::<SoftmaxAxis>("D_layer_softmax_axis", RTOL);
}

#[test]
fn prelu_matches_keras() {
    run_fixture::<PReluNet>("D_layer_prelu", RTOL);
    run_fixture::<PReluShared>("D_layer_prelu_shared", RTOL);
    run_fixture::<PReluFull>("D_layer_prelu_full", RTOL);
}

/// Every layer's output in inference, against Keras's `layer_outputs_before`, layer by layer: the
/// fixtures' models cut after each activation layer.
#[test]
fn each_activation_layer_outputs_what_keras_outputs() {
    sequential! { struct UpToRelu = Input(6) => Dense(8) => ReLU(max_value = 0.6, negative_slope = 0.1, threshold = 0.05); }
    sequential! { struct UpToLeaky = Input((3, 4)) => Dense(5) => LeakyReLU(); }
    sequential! { struct UpToElu = Input((3, 4)) => Dense(5) => ELU(alpha = 0.7); }
    sequential! { struct UpToSoftmax = Input((3, 4)) => Dense(4) => Softmax(axis = 2); }
    sequential! { struct UpToShared = Input((5, 5, 2)) => Conv2D(3, 3) => PReLU(shared_axes = [1, 2]); }
    fn check<M: Model<Backend = Cpu>>(fixture: &str, layer: usize) {
        let f = Fixture::load(fixture);
        let mut model = M::create(&Cpu::default()).unwrap();
        let init = f.weights("weights_init");
        model.set_weights(&init[..M::WEIGHTS.len()]).unwrap();
        let got = model.predict_joined(&f.tensor("x")).unwrap();
        let want = Fixture::tensor_of(&f.value("layer_outputs_before")[layer]);
        assert_eq!(got.shape()[1..], want.shape()[1..], "{fixture}: layer {layer}");
        assert_close(&format!("{fixture}: layer {layer}"), got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    }
    check::<UpToRelu>("D_layer_relu", 1);
    check::<UpToLeaky>("D_layer_relu_defaults", 1);
    check::<UpToElu>("D_layer_elu_softmax", 1);
    check::<UpToSoftmax>("D_layer_softmax_axis", 1);
    check::<UpToShared>("D_layer_prelu_shared", 1);
}

/// PReLU's one weight is Keras's: `alpha`, of the input's shape with the shared axes 1,
/// trainable, zeros unless another initializer is given; the parameter counts are compile-time
/// constants.
#[test]
fn prelu_alpha_is_keras_weight() {
    fn specs<M: Model>() -> Vec<(String, Vec<usize>, bool)> {
        M::WEIGHTS.iter().map(|w| (w.path(), w.shape.to_vec(), w.arena == Arena::Trainable)).collect()
    }
    fn keras(name: &str) -> Vec<(String, Vec<usize>, bool)> {
        let f = Fixture::load(name);
        let records = f.value("weights_init").as_array().unwrap().clone();
        records
            .iter()
            .map(|w| {
                let shape = w["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (w["path"].as_str().unwrap().trim_start_matches("sequential/").to_string(), shape, w["trainable"].as_bool().unwrap())
            })
            .collect()
    }
    assert_eq!(specs::<PReluNet>(), keras("D_layer_prelu"));
    assert_eq!(specs::<PReluShared>(), keras("D_layer_prelu_shared"));
    assert_eq!(specs::<PReluFull>(), keras("D_layer_prelu_full"));
    const _: () = assert!(PReluShared::PARAMS == 57 + 3 + 84);
    const _: () = assert!(PReluFull::PARAMS == 20 + 12 + 4 + 39);
    let model = PReluNet::new(&Cpu::default());
    let weights = model.get_weights().unwrap();
    assert_eq!(weights[2].shape(), [6]);
    assert!(weights[2].iter().all(|&a| a == 0.0), "alpha starts at zeros, as in Keras");
    sequential! { struct Slopes = Input(3) => PReLU(alpha_initializer = constant(0.25)); }
    let w = Slopes::new(&Cpu::default()).get_weights().unwrap();
    assert_eq!(w[0].as_slice().unwrap(), [0.25; 3]);
    let got = Slopes::new(&Cpu::default()).predict(&keras::ndarray::array![[-2.0f32, 0.0, 3.0]]).unwrap();
    assert_eq!(got.as_slice().unwrap(), [-0.5, 0.0, 3.0]);
}

#[test]
fn summary_is_keras_summary() {
    let want = include_str!("fixtures/activation_layers_summary.txt").replacen("Model: \"sequential\"", "Model: \"all_five\"", 1);
    assert_eq!(AllFive::new(&Cpu::default()).summary().to_string(), want);
    assert_eq!(AllFive::PARAMS, 160);
}

/// The model saved by Keras as `.keras`, legacy `.h5` and `.weights.h5` loads and predicts what
/// Keras predicted; our `save_keras` of it loads back, and Python Keras loads it and predicts
/// the same.
#[test]
fn keras_files_load_save_and_predict_as_keras() {
    let f = Fixture::load("activation_layers_files");
    let (x, want, weights) = (f.tensor("x"), f.tensor("forward"), f.weights("weights"));
    for file in ["activation_layers_files.keras", "activation_layers_files.h5", "activation_layers_files.weights.h5"] {
        let mut model = AllFive::new(&Cpu::default());
        model.load_keras(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), weights, "{file}: the weights Keras saved");
        let got = model.predict(&x).unwrap();
        assert_close(file, got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    }
    let dir = std::env::temp_dir().join(format!("keras-rs-activation-layers-{}", std::process::id()));
    let path = dir.join("all_five.keras");
    let mut model = AllFive::new(&Cpu::default());
    model.set_weights(&weights).unwrap();
    model.save_keras(&path).unwrap();
    let mut back = AllFive::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), weights);
    let ours = back.predict(&x).unwrap();
    assert_close("our archive", ours.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    if let Some(keras) = common::python_keras_predicts(&path, x.as_slice().unwrap(), x.shape()) {
        assert_close("Python Keras on our archive", &keras, want.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file whose layers differ in their configuration is refused, naming the layer and both
/// configurations.
#[test]
fn a_keras_file_with_other_slopes_is_refused() {
    sequential! {
        struct OtherCap = Input(4) => Dense(6) => ReLU(max_value = 6.0, threshold = 0.1) => Dense(6) => LeakyReLU(0.25) => Dense(5)
            => ELU(0.5) => Dense(5) => PReLU() => Dense(3) => Softmax();
    }
    sequential! {
        struct OtherAlpha = Input(4) => Dense(6) => ReLU(max_value = 1.5, threshold = 0.1) => Dense(6) => LeakyReLU(0.25) => Dense(5)
            => ELU(1.0) => Dense(5) => PReLU() => Dense(3) => Softmax();
    }
    let path = format!("{}/tests/fixtures/activation_layers_files.keras", env!("CARGO_MANIFEST_DIR"));
    let e = OtherCap::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(e.contains("layer 2 (re_lu)") && e.contains("max_value=1.5") && e.contains("max_value=6"), "{e}");
    let e = OtherAlpha::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(e.contains("layer 6 (elu)") && e.contains("alpha=0.5") && e.contains("alpha=1"), "{e}");
}

/// In a functional model too, and with `predict_one`; one ReLU written as a Lambda,
/// `x.max(T::zero())` (the closure's values are of the type `T: Real`).
#[test]
fn functional_models_take_the_activation_layers() {
    functional! {
        struct Branches(x: [6]) -> out {
            let h = Dense(8)(x);
            let a = ReLU(max_value = 0.6, negative_slope = 0.1, threshold = 0.05)(h);
            let h = Dense(5)(a);
            let h = LeakyReLU(negative_slope = 0.2)(h);
            let h = Dense(4)(h);
            let h = Lambda(|x| x.max(T::zero()))(h);
            let out = Dense(3, softmax)(h);
        }
    }
    let f = Fixture::load("D_layer_relu");
    let mut model = Branches::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x = f.tensor("x");
    let got = model.predict(&[x.view()]).unwrap();
    let want = f.tensor("forward_before");
    assert_close("functional ReLU net", got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    let row: Vec<f32> = x.as_slice().unwrap()[..6].to_vec();
    let one = model.predict_one(&row.try_into().unwrap());
    assert_close("predict_one", &one, &want.as_slice().unwrap()[..3], RTOL);
}

/// `Lambda` of a closure and of a generic function, matched to Keras's `Lambda` of the same
/// expressions (values by f32, gradients by dual numbers).
#[test]
fn lambda_matches_keras() {
    run_fixture::<LambdaNet>("D_layer_lambda", RTOL);
    run_fixture::<LambdaImage>("D_layer_lambda_image", RTOL);
}

/// A Lambda is a row of the summary as in Keras (`lambda (Lambda)`, no parameters); a model
/// with Lambdas saves and loads in keras-rs (`.keras`, `.weights.h5`), and Python Keras loads
/// the `.weights.h5` into its own model with the same Lambdas and predicts the same (it cannot
/// rebuild a Rust function from a `.keras` file).
#[test]
fn lambda_models_summarize_save_and_load() {
    let want = include_str!("fixtures/lambda_summary.txt").replacen("Model: \"sequential\"", "Model: \"lambda_net\"", 1);
    assert_eq!(LambdaNet::new(&Cpu::default()).summary().to_string(), want);
    let f = Fixture::load("D_layer_lambda");
    let (x, weights) = (f.tensor("x"), f.weights("weights_init"));
    let mut model = LambdaNet::new(&Cpu::default());
    model.set_weights(&weights).unwrap();
    let ours = model.predict(&x).unwrap();
    assert_close("forward", ours.as_slice().unwrap(), f.tensor("forward_before").as_slice().unwrap(), RTOL);
    let dir = std::env::temp_dir().join(format!("keras-rs-lambda-{}", std::process::id()));
    for file in ["lambda.keras", "lambda.weights.h5"] {
        let path = dir.join(file);
        let mut back = LambdaNet::new(&Cpu::default());
        if file.ends_with(".keras") {
            model.save_keras(&path).unwrap();
            back.load_keras(&path).unwrap();
        } else {
            model.save_weights(&path).unwrap();
            back.load_weights(&path).unwrap();
        }
        assert_eq!(back.predict(&x).unwrap(), ours, "{file}");
    }
    let script = format!(
        "import numpy as np, keras\nfrom keras import layers as L\n\
         m = keras.Sequential([keras.Input((5,)), L.Dense(6), L.Lambda(lambda x: x * keras.ops.sigmoid(x)), L.Dense(4),\n\
         L.Lambda(lambda x: keras.ops.clip(x, -0.5, 0.5) * 2.0 + keras.ops.tanh(x)), L.Dense(3, activation='softmax')])\n\
         m.load_weights({:?})\nx = np.array({:?}, dtype='float32').reshape({:?})\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        dir.join("lambda.weights.h5").display().to_string(),
        x.as_slice().unwrap(),
        x.shape()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras with our weights", &keras, ours.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Keras's other spellings of the same layers load: `Softmax(axis=1)` on `(None, 8)` is
/// `Softmax()`, `PReLU(shared_axes=[])` is `PReLU()` (and the DSL takes `shared_axes = []`).
#[test]
fn keras_spellings_of_the_same_config_load() {
    sequential! { struct Spelled = Input(8) => Dense(8) => PReLU() => Softmax(); }
    sequential! { struct SpelledAsKeras = Input(8) => Dense(8) => PReLU(shared_axes = []) => Softmax(axis = 1); }
    let f = Fixture::load("activation_layers_spellings");
    let path = format!("{}/tests/fixtures/activation_layers_spellings.keras", env!("CARGO_MANIFEST_DIR"));
    let mut model = Spelled::new(&Cpu::default());
    model.load_keras(&path).unwrap();
    let got = model.predict(&f.tensor("x")).unwrap();
    assert_close("Softmax() and PReLU()", got.as_slice().unwrap(), f.tensor("forward").as_slice().unwrap(), RTOL);
    let mut model = SpelledAsKeras::new(&Cpu::default());
    model.load_keras(&path).unwrap();
    let got = model.predict(&f.tensor("x")).unwrap();
    assert_close("as Keras wrote them", got.as_slice().unwrap(), f.tensor("forward").as_slice().unwrap(), RTOL);
}
