//! Models used as layers of other models, matched to real Keras (`tests/fixtures/gen_nested.py`):
//! a Sequential `Encoder` (Dense, BatchNormalization, Dense) called on both inputs of a
//! functional Siamese network, and the same encoder inside a Sequential classifier. Layer names
//! and weight paths as Keras gives them, the summaries, `fit` with validation data (History's
//! keys and values, `evaluate`, the weights, the moving statistics moved by both calls, and
//! predictions after), the gradient of the shared encoder's weights against Keras's and against
//! finite differences, and the `.keras` files both ways.

mod common;

use common::{Fixture, assert_all_close, assert_close, assert_grads_close};
use keras::Model;
use keras::model::Arena;
use keras::ndarray::{Array1, ArrayD, Axis, Ix2, Slice};
use keras::prelude::*;

const RTOL: f64 = 1e-5;

sequential! {
    /// Keras's `Sequential([Input((6,)), Dense(5, tanh), BatchNormalization(), Dense(4, relu)], name="encoder")`.
    #[params(79)]
    pub struct Encoder = Input(6) => Dense(5, tanh) => BatchNormalization() => Dense(4, relu);
}

functional! {
    use Encoder;
    /// Keras's `Model([a, b], Dense(1, sigmoid)(Concatenate()([encoder(a), encoder(b)])))`.
    #[params(88)]
    pub struct Siamese(a: [6], b: [6]) -> out {
        let encoder = Encoder();
        let za = encoder(a);
        let zb = encoder(b);
        let h = Concatenate()(za, zb);
        let out = Dense(1, sigmoid)(h);
    }
}

sequential! {
    use Encoder;
    /// Keras's `Sequential([Input((6,)), encoder, Dense(3, softmax)], name="clf")`.
    #[params(94)]
    pub struct Clf = Input(6) => Encoder() => Dense(3, softmax);
}

sequential! {
    use Encoder;
    /// A model that holds a model: `Sequential([Input((6,)), encoder, Dense(3, tanh)], name="stack")`.
    pub struct Stack = Input(6) => Encoder() => Dense(3, tanh);
}

functional! {
    use Stack;
    use Encoder;
    /// Two levels of nesting, a second encoder of its own, and two outputs, one of them read
    /// from a nested model's output.
    pub struct Deep(a: [6], b: [6]) -> (out, side) {
        let s = Stack()(a);
        let e = Encoder()(b);
        let h = Concatenate()(s, e);
        let out = Dense(1, sigmoid, name = "out")(h);
        let side = Dense(2, name = "side")(e);
    }
}

functional! {
    /// A functional model with two inputs, to be used as a layer.
    pub struct Pair(p: [3], q: [2]) -> r {
        let j = Concatenate()(p, q);
        let r = Dense(4, tanh)(j);
    }
}

functional! {
    use Pair;
    /// The pair model called on two of this model's tensors, named as the call says.
    pub struct UsesPair(x: [3], y: [5]) -> out {
        let q = Dense(2, name = "q_proj")(y);
        let r = Pair(name = "joint")(x, q);
        let out = Dense(1, name = "out")(r);
    }
}

sequential! {
    /// Only a dropout: its mask is the whole output.
    pub struct DropEnc = Input(512) => Dropout(0.5);
}

functional! {
    use DropEnc;
    /// One dropout model called twice on one tensor, and a second one after it: every call
    /// draws a mask of its own.
    pub struct Drops(a: [512]) -> out {
        let e = DropEnc();
        let za = e(a);
        let zb = e(a);
        let d = Subtract()(za, zb);
        let again = DropEnc()(d);
        let out = Dense(1, use_bias = false)(again);
    }
}

functional! {
    /// A functional model with one input, to be used in a chain.
    pub struct FEnc(p: [6]) -> r {
        let h = Dense(5, tanh)(p);
        let r = Dense(4)(h);
    }
}

sequential! {
    use FEnc;
    /// A functional model inside a Sequential.
    pub struct SeqOfF = Input(6) => FEnc() => Dense(2);
}

/// A tensor of the scenario `s` (`siamese`, `clf`) of the fixture.
fn tensor(f: &Fixture, s: &str, key: &str) -> ArrayD<f32> {
    Fixture::tensor_of(&f.value(s)[key])
}

/// A list of tensors of the scenario `s`.
fn tensors(f: &Fixture, s: &str, key: &str) -> Vec<ArrayD<f32>> {
    f.value(s)[key].as_array().unwrap_or_else(|| panic!("{s}.{key} is no list")).iter().map(Fixture::tensor_of).collect()
}

/// The Siamese data: the two inputs, the targets, and the same for validation.
fn siamese_data(f: &Fixture) -> (Vec<ArrayD<f32>>, ArrayD<f32>, Vec<ArrayD<f32>>, ArrayD<f32>) {
    let x = vec![tensor(f, "siamese", "x_a"), tensor(f, "siamese", "x_b")];
    let vx = vec![tensor(f, "siamese", "val_a"), tensor(f, "siamese", "val_b")];
    (x, tensor(f, "siamese", "y"), vx, tensor(f, "siamese", "val_y"))
}

/// `(path, shape, trainable)` of each weight Keras lists in `model.weights` for scenario `s`, the
/// prefix `strip` taken off each path (a Sequential names its own layers' weights under its name,
/// which keras-rs leaves out, as `tests/activation_layers.rs` does `sequential/`).
fn keras_weights(f: &Fixture, key: &[&str], strip: &str) -> Vec<(String, Vec<usize>, bool)> {
    let mut v = f.value(key[0]);
    for k in &key[1..] {
        v = &v[*k];
    }
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let path = w["path"].as_str().unwrap();
            let shape = w["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (path.strip_prefix(strip).unwrap_or(path).to_string(), shape, w["trainable"].as_bool().unwrap())
        })
        .collect()
}

fn our_weights<M: Model>() -> Vec<(String, Vec<usize>, bool)> {
    M::WEIGHTS.iter().map(|w| (w.path(), w.shape.to_vec(), w.arena == Arena::Trainable)).collect()
}

/// History against Keras's: the same keys in the same order, every value within [`RTOL`].
fn assert_history(what: &str, h: &keras::History, keras_history: &serde_json::Value) {
    let keras_history = keras_history.as_object().unwrap();
    assert_eq!(h.keys().collect::<Vec<_>>(), keras_history.keys().map(String::as_str).collect::<Vec<_>>(), "{what}: History's keys");
    for (key, values) in keras_history {
        let want: Vec<f32> = values.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_close(&format!("{what} history {key}"), &h[key.as_str()], &want, RTOL);
    }
}

fn compiled_siamese(f: &Fixture) -> keras::Compiled<Siamese> {
    let mut model = Siamese::new(&Cpu::default());
    model.set_weights(&tensors(f, "siamese", "weights_init")).unwrap();
    model.compile(Sgd::new(0.1), "binary_crossentropy", ["accuracy"]).unwrap()
}

fn compiled_clf(f: &Fixture) -> keras::Compiled<Clf> {
    let mut model = Clf::new(&Cpu::default());
    model.set_weights(&tensors(f, "clf", "weights_init")).unwrap();
    model.compile(Sgd::new(0.1), "sparse_categorical_crossentropy", ["accuracy"]).unwrap()
}

#[test]
fn layer_names_weights_and_summaries_are_keras() {
    let f = Fixture::load("nested");
    let names = |s: &str, key: &str| -> Vec<String> {
        f.value(s)[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    // Keras names the encoder's layers first, then counts on in the model that uses it.
    assert_eq!(names("siamese", "encoder_layers"), ["dense", "batch_normalization", "dense_1"]);
    assert_eq!(Encoder::LAYER_NAMES, names("siamese", "encoder_layers"));
    assert_eq!(Siamese::LAYER_NAMES, names("siamese", "layers"));
    assert_eq!(Siamese::LAYER_NAMES, ["a", "b", "encoder", "concatenate", "dense_2"]);
    assert_eq!(Clf::LAYER_NAMES, names("clf", "layers"));
    assert_eq!(Clf::LAYER_NAMES, ["encoder", "dense_2"]);

    // `model.weights`: the encoder's (under `encoder/`, its moving statistics after its
    // trainable weights, as BatchNormalization lists them), then the outer model's own.
    assert_eq!(our_weights::<Encoder>(), keras_weights(&f, &["siamese", "encoder_weights"], "encoder/"));
    assert_eq!(our_weights::<Siamese>(), keras_weights(&f, &["siamese", "weights"], ""));
    assert_eq!(our_weights::<Clf>(), keras_weights(&f, &["clf", "weights"], "clf/"));
    let paths: Vec<String> = <Siamese as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(paths[0], "encoder/dense/kernel");
    assert_eq!(paths[5], "encoder/batch_normalization/moving_variance");
    assert_eq!(paths[8], "dense_2/kernel");
    let paths: Vec<String> = <Clf as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(paths[0], "encoder/dense/kernel");
    assert_eq!(paths[8], "dense_2/kernel");
    // Each weight once: the encoder called twice has one set of weights.
    assert_eq!(<Siamese as Model>::WEIGHTS.len(), 10);
    assert_eq!((<Siamese as Model>::PARAMS, <Siamese as Model>::TRAINABLE_PARAMS, <Siamese as Model>::NON_TRAINABLE_PARAMS), (88, 78, 10));
    assert_eq!((<Clf as Model>::PARAMS, <Clf as Model>::TRAINABLE_PARAMS, <Clf as Model>::NON_TRAINABLE_PARAMS), (94, 84, 10));
    for (w, want) in <Siamese as Model>::WEIGHTS.iter().zip(tensors(&f, "siamese", "weights_init")) {
        assert_eq!(w.shape, want.shape(), "{}", w.path());
    }
    for (w, want) in <Clf as Model>::WEIGHTS.iter().zip(tensors(&f, "clf", "weights_init")) {
        assert_eq!(w.shape, want.shape(), "{}", w.path());
    }
    assert_eq!(<Siamese as Model>::INPUTS.iter().map(|i| i.name).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(<Siamese as Model>::OUTPUT_SHAPE, [1]);
    assert_eq!(<Clf as Model>::INPUT_SHAPE, [6]);
    assert_eq!(<Clf as Model>::OUTPUT_SHAPE, [3]);

    // The summary lists the encoder as one layer (`encoder (Sequential)`), called on a and b.
    let cpu = Cpu::default();
    let want = f.value("siamese")["encoder_summary"].as_str().unwrap();
    assert_eq!(Encoder::new(&cpu).summary().to_string().trim_end(), want.trim_end());
    let want = include_str!("fixtures/nested_summary.txt");
    assert_eq!(Siamese::new(&cpu).summary().to_string().trim_end(), want.trim_end());
    let want = include_str!("fixtures/nested_seq_summary.txt");
    assert_eq!(Clf::new(&cpu).summary().to_string().trim_end(), want.trim_end());
}

#[test]
fn siamese_fit_with_validation_matches_keras() {
    let f = Fixture::load("nested");
    let (x, y, vx, vy) = siamese_data(&f);
    let mut model = compiled_siamese(&f);
    let before = model.predict(&vx).unwrap();
    assert_eq!(before.shape(), [12, 1]);
    assert_close("predict before fit", before.as_slice().unwrap(), tensor(&f, "siamese", "predict_before").as_slice().unwrap(), RTOL);

    let h = model.fit(&x, &y, FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0).validation_data(&vx, &vy)).unwrap();
    assert_history("siamese", &h, &f.value("siamese")["history"]);
    // The moving statistics are among these: each step moves them once per call of the encoder.
    assert_all_close("weights after fit", &model.get_weights().unwrap(), &tensors(&f, "siamese", "weights_after"), RTOL);

    let logs = model.evaluate(&vx, &vy).unwrap();
    for (key, value) in f.value("siamese")["evaluate"].as_object().unwrap() {
        assert_close(&format!("evaluate {key}"), &[logs[key.as_str()]], &[value.as_f64().unwrap() as f32], RTOL);
    }
    let pred = model.predict(&vx).unwrap();
    assert_eq!(pred.shape(), [12, 1]);
    assert_close("predict after fit", pred.as_slice().unwrap(), tensor(&f, "siamese", "predict").as_slice().unwrap(), RTOL);
}

/// A training step calls the encoder on `a`, then on `b`: BatchNormalization's moving
/// statistics move twice, the second time from where the first left them (Keras's JAX
/// trainer reads the state the first call wrote), by the biased batch variance.
#[test]
fn both_calls_move_the_shared_statistics_in_turn() {
    let f = Fixture::load("nested");
    let (x, y, _, _) = siamese_data(&f);
    let init = tensors(&f, "siamese", "weights_init");
    let first = |a: &ArrayD<f32>| a.slice_axis(Axis(0), Slice::from(0..8)).to_owned();
    let xb: Vec<ArrayD<f32>> = x.iter().map(first).collect();
    let mut model = compiled_siamese(&f);
    model.train_on_batch(&xb, &first(&y)).unwrap();
    let after = model.get_weights().unwrap();

    // The encoder's first Dense (tanh) on each input: what BatchNormalization sees.
    let kernel = init[0].clone().into_dimensionality::<Ix2>().unwrap();
    let bias = init[1].clone().into_shape_with_order(5).unwrap();
    let dense = |x: &ArrayD<f32>| (x.clone().into_dimensionality::<Ix2>().unwrap().dot(&kernel) + &bias).mapv(f32::tanh);
    let (ha, hb) = (dense(&xb[0]), dense(&xb[1]));
    let stats = |h: &keras::ndarray::Array2<f32>| -> (Array1<f32>, Array1<f32>) {
        let mean = h.mean_axis(Axis(0)).unwrap();
        let var = (h - &mean).mapv(|v| v * v).mean_axis(Axis(0)).unwrap();
        (mean, var)
    };
    let ((mean_a, var_a), (mean_b, var_b)) = (stats(&ha), stats(&hb));
    let step = |moving: &ArrayD<f32>, a: &Array1<f32>, b: &Array1<f32>| {
        let m = moving.clone().into_shape_with_order(5).unwrap();
        let once = &m * 0.99 + a * 0.01;
        (&once * 0.99 + b * 0.01).into_dyn()
    };
    let tol = RTOL;
    assert_close("moving_mean after one step", after[4].as_slice().unwrap(), step(&init[4], &mean_a, &mean_b).as_slice().unwrap(), tol);
    assert_close("moving_variance after one step", after[5].as_slice().unwrap(), step(&init[5], &var_a, &var_b).as_slice().unwrap(), tol);
}

/// The gradient of the encoder's weights adds both calls': Keras's first-batch gradient, and
/// central differences of the training loss for every weight of the encoder.
#[test]
fn the_shared_encoder_gradient_sums_both_calls() {
    let f = Fixture::load("nested");
    let (x, y, _, _) = siamese_data(&f);
    let first = |a: &ArrayD<f32>| a.slice_axis(Axis(0), Slice::from(0..8)).to_owned();
    let (x, y): (Vec<ArrayD<f32>>, ArrayD<f32>) = (x.iter().map(first).collect(), first(&y));
    let no_metrics: [Metric; 0] = [];
    let mut model = Siamese::new(&Cpu::default());
    model.set_weights(&tensors(&f, "siamese", "weights_init")).unwrap();
    let mut model = model.compile(Sgd::new(0.1), "binary_crossentropy", no_metrics).unwrap();
    let (loss, grads) = model.gradients(&x, &y).unwrap();
    assert_close("loss of the first batch", &[loss], &[f.f32(&["siamese", "loss_first_batch"])], RTOL);
    let specs = <Siamese as Model>::WEIGHTS;
    let trainable: Vec<ArrayD<f32>> =
        grads.iter().zip(specs).filter(|(_, w)| w.arena == Arena::Trainable).map(|(g, _)| g.clone()).collect();
    let keras_paths: Vec<&str> = f.value("siamese")["grad_paths"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let our_paths: Vec<String> = specs.iter().filter(|w| w.arena == Arena::Trainable).map(|w| w.path()).collect();
    assert_eq!(our_paths, keras_paths);
    assert_grads_close("first-batch gradients", &trainable, &tensors(&f, "siamese", "grads_first_batch"), RTOL);

    let weights = model.get_weights().unwrap();
    let eps = 1e-2f32;
    let mut checked = 0;
    for (k, w) in weights.iter().enumerate() {
        let spec = &specs[k];
        if spec.arena == Arena::NonTrainable {
            assert!(grads[k].iter().all(|&g| g == 0.0), "{}: not trained, yet has a gradient", spec.path());
            continue;
        }
        if !spec.path().starts_with("encoder/") {
            continue;
        }
        for i in 0..w.len() {
            let mut at = |d: f32| {
                let mut moved = weights.clone();
                moved[k].as_slice_mut().unwrap()[i] += d;
                model.set_weights(&moved).unwrap();
                // The training-mode loss (batch statistics), whose gradient `gradients` gives.
                model.gradients(&x, &y).unwrap().0 as f64
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            let got = grads[k].as_slice().unwrap()[i] as f64;
            assert!((got - numeric).abs() < 2e-3 * numeric.abs().max(0.05), "{}[{i}]: {got} vs {numeric}", spec.path());
            checked += 1;
        }
    }
    assert_eq!(checked, 30 + 5 + 5 + 5 + 20 + 4);
    // `gradients` leaves the state as it was.
    model.set_weights(&weights).unwrap();
    assert_eq!(model.get_weights().unwrap(), weights);
}

#[test]
fn sequential_in_sequential_matches_keras() {
    let f = Fixture::load("nested");
    let x = tensor(&f, "clf", "x");
    let y = tensor(&f, "clf", "y");
    let mut model = compiled_clf(&f);
    let before = model.predict(&x).unwrap();
    assert_eq!(before.shape(), [24, 3]);
    assert_close("clf predict before fit", before.as_slice().unwrap(), tensor(&f, "clf", "predict_before").as_slice().unwrap(), RTOL);
    let h = model.fit(&x, &y, FitArgs::default().epochs(2).batch_size(8).shuffle(false).verbose(0)).unwrap();
    assert_history("clf", &h, &f.value("clf")["history"]);
    assert_all_close("clf weights after fit", &model.get_weights().unwrap(), &tensors(&f, "clf", "weights_after"), RTOL);
    let pred = model.predict(&x).unwrap();
    assert_close("clf predict after fit", pred.as_slice().unwrap(), tensor(&f, "clf", "predict").as_slice().unwrap(), RTOL);
}

fn fixture_path(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::path::Path::new(&path).exists() { path } else { format!("tests/fixtures/{name}") }
}

/// The `.keras` files Keras saved (the encoder a Sequential inside the archive, its weights under
/// `layers/sequential/layers/..`) load here; ours, saved back, load here again and in Keras, as
/// models with the encoder nested, predicting the same.
#[test]
fn keras_files_with_a_nested_model() {
    let f = Fixture::load("nested");
    let dir = std::env::temp_dir().join(format!("keras-nested-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The Siamese network.
    let (_, _, vx, _) = siamese_data(&f);
    let after = tensors(&f, "siamese", "weights_after");
    let mut model = Siamese::new(&Cpu::default());
    model.load_keras(fixture_path("nested.keras")).unwrap();
    assert_all_close("siamese weights from Keras's file", &model.get_weights().unwrap(), &after, 0.0);
    let ours = model.predict(&vx).unwrap();
    assert_close("siamese predict from Keras's file", ours.as_slice().unwrap(), tensor(&f, "siamese", "predict").as_slice().unwrap(), RTOL);
    let path = dir.join("siamese.keras");
    model.save_keras(&path).unwrap();
    let mut again = Siamese::new(&Cpu::default());
    again.load_keras(&path).unwrap();
    assert_all_close("siamese: our file read back", &again.get_weights().unwrap(), &after, 0.0);
    let arrays =
        vx.iter().map(|a| format!("np.array({:?}, dtype='float32').reshape({:?})", a.iter().copied().collect::<Vec<f32>>(), a.shape()));
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\n\
         assert [l.name for l in m.layers] == ['a', 'b', 'encoder', 'concatenate', 'dense_2'], [l.name for l in m.layers]\n\
         e = m.get_layer('encoder')\nassert type(e).__name__ == 'Sequential', type(e)\n\
         assert [l.name for l in e.layers] == ['dense', 'batch_normalization', 'dense_1'], [l.name for l in e.layers]\n\
         x = [{}]\nprint(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        arrays.collect::<Vec<_>>().join(", ")
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras on our siamese.keras", &keras, ours.as_slice().unwrap(), RTOL);
    }

    // The Sequential inside a Sequential.
    let x = tensor(&f, "clf", "x");
    let after = tensors(&f, "clf", "weights_after");
    let mut model = Clf::new(&Cpu::default());
    model.load_keras(fixture_path("nested_seq.keras")).unwrap();
    assert_all_close("clf weights from Keras's file", &model.get_weights().unwrap(), &after, 0.0);
    let ours = model.predict(&x).unwrap();
    assert_close("clf predict from Keras's file", ours.as_slice().unwrap(), tensor(&f, "clf", "predict").as_slice().unwrap(), RTOL);
    let path = dir.join("clf.keras");
    model.save_keras(&path).unwrap();
    let mut again = Clf::new(&Cpu::default());
    again.load_keras(&path).unwrap();
    assert_all_close("clf: our file read back", &again.get_weights().unwrap(), &after, 0.0);
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\n\
         assert type(m).__name__ == 'Sequential' and [l.name for l in m.layers] == ['encoder', 'dense_2'], [l.name for l in m.layers]\n\
         assert type(m.layers[0]).__name__ == 'Sequential', type(m.layers[0])\n\
         x = np.array({:?}, dtype='float32').reshape({:?})\nprint(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        x.as_slice().unwrap(),
        x.shape()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras on our clf.keras", &keras, ours.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model two levels deep (a Sequential holding the encoder, inside a functional model with an
/// encoder of its own and two outputs): its summary, its weights' Keras paths, and its `.keras`
/// file, which Python Keras loads as models within models and predicts from as we do.
#[test]
fn models_nest_two_levels_deep() {
    let want = [
        "a (InputLayer)",
        "b (InputLayer)",
        "stack (Sequential)",
        "encoder",
        "concatenate",
        "out (Dense)",
        "side (Dense)",
        "Total params: 191",
        "Non-trainable params: 20",
    ];
    let summary = Deep::new(&Cpu::default()).summary().to_string();
    for w in want {
        assert!(summary.contains(w), "{w} missing from\n{summary}");
    }
    let paths: Vec<String> = <Deep as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(&paths[..3], ["stack/encoder/dense/kernel", "stack/encoder/dense/bias", "stack/encoder/batch_normalization/gamma"]);
    assert_eq!(paths[8..10], ["stack/dense_2/kernel", "stack/dense_2/bias"]);
    assert_eq!(paths[10], "encoder/dense/kernel");
    assert_eq!(paths[18..], ["out/kernel", "out/bias", "side/kernel", "side/bias"]);

    // Weights of every kind of value (moving variances positive), then the file both ways.
    let mut model = Deep::new(&Cpu::default());
    let weights: Vec<ArrayD<f32>> = <Deep as Model>::WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let n = w.len();
            let v = (0..n).map(|j| ((i * 31 + j * 7) % 17) as f32 / 17.0 - 0.4 + if w.name.ends_with("variance") { 1.0 } else { 0.0 });
            ArrayD::from_shape_vec(w.shape.to_vec(), v.collect()).unwrap()
        })
        .collect();
    model.set_weights(&weights).unwrap();
    let x: Vec<ArrayD<f32>> = (0..2)
        .map(|k| ArrayD::from_shape_vec(vec![5, 6], (0..30).map(|j| ((j * 13 + k * 5) % 11) as f32 / 5.0 - 1.0).collect()).unwrap())
        .collect();
    let ours = model.predict_outputs(&x).unwrap();
    let dir = std::env::temp_dir().join(format!("keras-nested-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("deep.keras");
    model.save_keras(&path).unwrap();
    let mut again = Deep::new(&Cpu::default());
    again.load_keras(&path).unwrap();
    assert_all_close("deep: our file read back", &again.get_weights().unwrap(), &weights, 0.0);
    let arrays =
        x.iter().map(|a| format!("np.array({:?}, dtype='float32').reshape({:?})", a.iter().copied().collect::<Vec<f32>>(), a.shape()));
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\n\
         s = m.get_layer('stack')\nassert [l.name for l in s.layers] == ['encoder', 'dense_2'], [l.name for l in s.layers]\n\
         assert type(s.layers[0]).__name__ == 'Sequential'\n\
         assert m.output_names == ['out', 'side'], m.output_names\n\
         x = [{}]\nprint(' '.join(repr(float(v)) for p in m.predict(x, verbose=0) for v in p.ravel()))",
        path.display().to_string(),
        arrays.collect::<Vec<_>>().join(", ")
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        let ours: Vec<f32> = ours.iter().flat_map(|o| o.iter().copied()).collect();
        assert_close("Python Keras on our deep.keras", &keras, &ours, RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A functional model with two inputs, used as a layer under a name of its own: the same
/// numbers as the model on its own, and a `.keras` file Python Keras reads as a nested
/// functional model.
#[test]
fn a_functional_model_with_two_inputs_is_a_layer() {
    let cpu = Cpu::default();
    let names: Vec<&str> = <UsesPair as Model>::LAYERS.iter().map(|l| l.name).collect();
    // Keras lists layers by depth: `y` feeds `q_proj`, so it is deeper than `x`.
    assert_eq!(names, ["y", "x", "q_proj", "joint", "out"]);
    assert_eq!(<UsesPair as Model>::LAYERS[3].class, "Functional");
    let outer = UsesPair::new(&cpu);
    let weights = outer.get_weights().unwrap();
    // joint's weights are Pair's (its Dense), after q_proj's.
    let mut pair = Pair::new(&cpu);
    pair.set_weights(&weights[2..4]).unwrap();
    let x = ArrayD::from_shape_vec(vec![4, 3], (0..12).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let y = ArrayD::from_shape_vec(vec![4, 5], (0..20).map(|i| (i as f32 * 0.21).cos()).collect()).unwrap();
    let ours = outer.predict(&vec![x.clone(), y.clone()]).unwrap();
    // By hand: q = y Wq + bq, r = Pair(x, q), out = r Wo + bo.
    let wq = weights[0].view().into_dimensionality::<Ix2>().unwrap();
    let q = y.view().into_dimensionality::<Ix2>().unwrap().dot(&wq) + &weights[1];
    let r = pair.predict(&vec![x.clone(), q.into_dyn()]).unwrap();
    let wo = weights[4].view().into_dimensionality::<Ix2>().unwrap();
    let want = r.view().into_dimensionality::<Ix2>().unwrap().dot(&wo) + &weights[5];
    assert_close("a nested functional model computes as on its own", ours.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);

    let dir = std::env::temp_dir().join(format!("keras-nested-pair-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("uses_pair.keras");
    outer.save_keras(&path).unwrap();
    let mut again = UsesPair::new(&cpu);
    again.load_keras(&path).unwrap();
    assert_all_close("uses_pair: our file read back", &again.get_weights().unwrap(), &weights, 0.0);
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\n\
         j = m.get_layer('joint')\nassert type(j).__name__ == 'Functional', type(j)\n\
         x = [np.array({:?}, dtype='float32').reshape(4, 3), np.array({:?}, dtype='float32').reshape(4, 5)]\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        x.iter().copied().collect::<Vec<f32>>(),
        y.iter().copied().collect::<Vec<f32>>()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras on our uses_pair.keras", &keras, ours.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each call of a nested model, and each nested model, draws its own dropout mask: two calls of
/// one dropout model on one tensor differ (their difference is zero only where both masks
/// agree, about half the time), and a second dropout model masks about half of what is left.
#[test]
fn nested_dropouts_draw_masks_of_their_own() {
    let cpu = Cpu::default();
    let mut model = Drops::new(&cpu).compile(Sgd::new(0.1), "mse", [] as [&str; 0]).unwrap();
    let x = ArrayD::from_elem(vec![1, 512], 1.0f32);
    let y = ArrayD::from_elem(vec![1, 1], 1.0f32);
    let (_, grads) = model.gradients(&x, &y).unwrap();
    let kernel = &grads[0];
    let zeros = kernel.iter().filter(|g| **g == 0.0).count() as f64 / kernel.len() as f64;
    // d = 0 where the two masks agree (p = 0.5); the second dropout zeroes half the rest.
    assert!((0.65..0.85).contains(&zeros), "zero fraction of the gradient {zeros}, want about 0.75");
}

/// A functional model inside a Sequential: its `.keras` file (the nested model's one input and
/// output written as Keras writes them) loads in Python Keras, which predicts as we do; a file
/// of ours loads back.
#[test]
fn a_functional_model_inside_a_sequential() {
    let cpu = Cpu::default();
    let model = SeqOfF::new(&cpu);
    assert_eq!(<SeqOfF as Model>::LAYERS[0].class, "Functional");
    let x = ArrayD::from_shape_vec(vec![3, 6], (0..18).map(|i| (i as f32 * 0.3).sin()).collect()).unwrap();
    let ours = model.predict(&x).unwrap();
    let dir = std::env::temp_dir().join(format!("keras-nested-seqf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seq_of_f.keras");
    model.save_keras(&path).unwrap();
    let mut again = SeqOfF::new(&cpu);
    again.load_keras(&path).unwrap();
    assert_all_close("seq_of_f: our file read back", &again.get_weights().unwrap(), &model.get_weights().unwrap(), 0.0);
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\n\
         assert type(m.layers[0]).__name__ == 'Functional', type(m.layers[0])\n\
         x = np.array({:?}, dtype='float32').reshape(3, 6)\nprint(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        x.iter().copied().collect::<Vec<f32>>()
    );
    if let Some(out) = common::python(&script) {
        let keras: Vec<f32> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Python Keras on our seq_of_f.keras", &keras, ours.as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Keras's legacy `.h5` (`model.save("m.h5")`) lists a nested model's trainable weights before
/// its non-trainable ones: they load in our order, the BatchNormalization statistics where they
/// belong. Python Keras writes the file from ours (when it is installed).
#[test]
fn a_legacy_h5_file_with_a_nested_model() {
    let f = Fixture::load("nested");
    let x = tensor(&f, "clf", "x");
    let after = tensors(&f, "clf", "weights_after");
    let mut model = Clf::new(&Cpu::default());
    model.load_keras(fixture_path("nested_seq.keras")).unwrap();
    let dir = std::env::temp_dir().join(format!("keras-nested-h5-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (keras_file, h5) = (fixture_path("nested_seq.keras"), dir.join("clf.h5"));
    let script = format!(
        "import keras\nm = keras.models.load_model({keras_file:?})\nm.save({:?})\n\
         import h5py\nprint(' '.join(n.decode() if isinstance(n, bytes) else n for n in h5py.File({:?})['model_weights/encoder'].attrs['weight_names']))",
        h5.display().to_string(),
        h5.display().to_string()
    );
    if let Some(out) = common::python(&script) {
        // The file's order: every trainable weight of the encoder first.
        assert!(out.trim().ends_with("dense_1/bias batch_normalization/moving_mean batch_normalization/moving_variance"), "{out}");
        let mut legacy = Clf::new(&Cpu::default());
        legacy.load_keras(&h5).unwrap();
        assert_all_close("clf from Keras's legacy .h5", &legacy.get_weights().unwrap(), &after, 0.0);
        let pred = legacy.predict(&x).unwrap();
        assert_close("clf predict from the legacy .h5", pred.as_slice().unwrap(), tensor(&f, "clf", "predict").as_slice().unwrap(), RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `.weights.h5` file whose nested model has a layer this model's does not is refused, as one
/// with an extra layer at the top is.
#[test]
fn a_weights_file_with_an_extra_nested_layer_is_refused() {
    sequential! {
        pub struct Encoder3 = Input(6) => Dense(5, tanh) => BatchNormalization() => Dense(4, relu) => Dense(4);
    }
    sequential! {
        use Encoder3;
        pub struct Clf3 = Input(6) => Encoder3(name = "encoder") => Dense(3, softmax);
    }
    let dir = std::env::temp_dir().join(format!("keras-nested-extra-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("extra.weights.h5");
    Clf3::new(&Cpu::default()).save_weights(&path).unwrap();
    let err = Clf::new(&Cpu::default()).load_weights(&path).unwrap_err().to_string();
    assert!(err.contains("layers/sequential/layers/dense_2"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A nested model taken out as a model of its own (Keras's `model.get_layer("encoder")`) and
/// put back: the trained encoder predicts what it computes inside the Siamese network, and a
/// pretrained one replaces its weights only.
#[test]
fn a_nested_model_is_taken_out_and_put_back() {
    let f = Fixture::load("nested");
    let (_, _, vx, _) = siamese_data(&f);
    let after = tensors(&f, "siamese", "weights_after");
    let cpu = Cpu::default();
    let mut model = Siamese::new(&cpu);
    model.set_weights(&after).unwrap();
    let encoder: Encoder = model.get_submodel("encoder").unwrap();
    assert_all_close("the encoder's weights", &encoder.get_weights().unwrap(), &after[..8], 0.0);
    // The Siamese output from the encoder run on its own: sigmoid([e(a) | e(b)] W + b).
    let (za, zb) = (encoder.predict(&vx[0]).unwrap(), encoder.predict(&vx[1]).unwrap());
    let joined = keras::ndarray::concatenate(Axis(1), &[za.view(), zb.view()]).unwrap();
    let w = after[8].view().into_dimensionality::<Ix2>().unwrap();
    let logits = joined.dot(&w) + &after[9];
    let want: Vec<f32> = logits.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
    let ours = model.predict(&vx).unwrap();
    assert_close("the Siamese output through the encoder taken out", ours.as_slice().unwrap(), &want, RTOL);

    // Put back: a new encoder's weights replace the nested one's, and nothing else.
    let fresh = Encoder::new(&cpu);
    model.set_submodel("encoder", &fresh).unwrap();
    let now = model.get_weights().unwrap();
    assert_all_close("the encoder put back", &now[..8], &fresh.get_weights().unwrap(), 0.0);
    assert_all_close("the head kept", &now[8..], &after[8..], 0.0);

    // A layer that is no model, and a model of another type, are errors that say so.
    let err = model.get_submodel::<Encoder>("dense_2").err().expect("dense_2 is no model").to_string();
    assert!(err.contains("`dense_2` is no model used as a layer") && err.contains("encoder"), "{err}");
    let err = model.get_submodel::<Clf>("encoder").err().expect("Clf is not the encoder").to_string();
    assert!(err.contains("layer `encoder` of `siamese` has 8 weights, model `clf` has 10"), "{err}");
}
