//! `functional!` models against Keras: the shared group E fixtures (a Dense shared by two inputs
//! and an Add; two inputs joined by Concatenate) and own ones from `fixtures/gen_functional.py`
//! (every merge layer, a layer called three times, three inputs at different depths,
//! Concatenate along an inner axis, a plain chain): forward, first-batch loss and gradients, fit history, weights
//! and forward after, within 1e-5 relative; `summary()` as Keras prints it; `predict_one` with
//! one argument per input.

mod common;
#[path = "models/functional.rs"]
mod models;

use common::{Fixture, assert_close, compile_as_fixture};
use keras::ndarray::{ArrayD, Axis, Slice};
use keras::prelude::*;
use models::{Chain, InnerAxis, Merges, SharedThree, TextMeta, ThreeInputs, TwoInputConcat};

/// The fixture's inputs, one array per model input.
fn inputs(f: &Fixture) -> Vec<ArrayD<f32>> {
    f.value("x").as_array().expect("x is a list").iter().map(Fixture::tensor_of).collect()
}

/// Keras orders a functional model's layers by depth from the output, not inputs first.
#[test]
fn three_inputs_are_ordered_as_keras_orders_them() {
    assert_eq!(<ThreeInputs as Model>::LAYERS.iter().map(|l| l.name).collect::<Vec<_>>(), ["a", "b", "meta", "enc", "by", "m", "j", "out"]);
}

/// Section `name` of functional-summaries.md.
fn keras_summary(name: &str) -> String {
    let doc = include_str!("fixtures/functional-summaries.md");
    let start = doc.find(&format!("## {name}\n")).expect("section");
    let block = &doc[start..];
    let a = block.find("```text\n").unwrap() + "```text\n".len();
    let b = block[a..].find("```").unwrap();
    block[a..a + b].trim_end().to_string()
}

#[test]
fn summaries_are_keras_text() {
    let cpu = Cpu::default();
    let check = |got: String, name: &str, ours: &str| {
        let want = keras_summary(name).replacen(&format!("Model: \"{name}\""), &format!("Model: \"{ours}\""), 1);
        assert_eq!(got.trim_end(), want, "summary of {name}");
    };
    check(Merges::new(&cpu).summary().to_string(), "merges", "merges");
    check(SharedThree::new(&cpu).summary().to_string(), "shared_three", "shared_three");
    check(ThreeInputs::new(&cpu).summary().to_string(), "three_inputs", "three_inputs");
    check(InnerAxis::new(&cpu).summary().to_string(), "inner_axis", "inner_axis");
    check(Chain::new(&cpu).summary().to_string(), "chain", "chain");
}

#[test]
fn predict_one_takes_one_argument_per_input() {
    let f = Fixture::load("E_functional_three_inputs");
    let mut model = ThreeInputs::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x = inputs(&f);
    let batch = model.predict(&x).unwrap();
    for i in 0..x[0].shape()[0] {
        let row = |k: usize| x[k].index_axis(Axis(0), i).iter().copied().collect::<Vec<f32>>();
        let (a, b, meta) = (row(0), row(1), row(2));
        let one = model.predict_one(&a.clone().try_into().unwrap(), &b.clone().try_into().unwrap(), &meta.clone().try_into().unwrap());
        assert_close("predict_one", &one, batch.index_axis(Axis(0), i).as_slice().unwrap(), 1e-6);
        // The checked form over slices: the same answer; a wrong length or a NaN is an `Err`
        // naming the input.
        assert_eq!(model.predict_one_slice(&a, &b, &meta).unwrap(), one);
        let e = model.predict_one_slice(&a, &b[1..], &meta).unwrap_err().to_string();
        assert!(e.starts_with("predict_one_slice: input `b`: expected") && e.ends_with(&format!("found {} values", b.len() - 1)), "{e}");
        let mut nan = meta.clone();
        nan[0] = f32::NAN;
        let e = model.predict_one_slice(&a, &b, &nan).unwrap_err().to_string();
        assert!(e.starts_with("predict_one_slice: input `meta` contains a non-finite value (NaN) at flat index 0"), "{e}");
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `.keras` files Keras saved after fitting load (architecture and calls checked, weights placed
/// by Keras's layer order) and predict what Keras predicted; a file of another graph is refused
/// with the first difference.
#[test]
fn keras_saved_functional_models_load() {
    let f = Fixture::load("E_functional_three_inputs");
    let mut model = ThreeInputs::new(&Cpu::default());
    model.load_keras(fixture("E_functional_three_inputs.keras")).unwrap();
    let pred = model.predict(&inputs(&f)).unwrap();
    assert_close("three_inputs from .keras", pred.as_slice().unwrap(), f.tensor("forward_after").as_slice().unwrap(), 1e-5);

    let f = Fixture::load("E_functional_shared_three");
    let mut model = SharedThree::new(&Cpu::default());
    model.load_keras(fixture("E_functional_shared_three.keras")).unwrap();
    let pred = model.predict(&inputs(&f)).unwrap();
    assert_close("shared_three from .keras", pred.as_slice().unwrap(), f.tensor("forward_after").as_slice().unwrap(), 1e-5);

    let e = Merges::new(&Cpu::default()).load_keras(fixture("E_functional_three_inputs.keras")).unwrap_err().to_string();
    assert!(e.ends_with("the file has 8 layers (inputs included), this model has 11"), "{e}");
    let e = ThreeInputs::new(&Cpu::default()).load_keras(fixture("G_files_dense.keras")).unwrap_err().to_string();
    assert!(e.ends_with("the file holds a Sequential model, this model is functional"), "{e}");
}

functional! {
    /// SharedThree with the Add's last two tensors swapped: the same layers, other calls.
    struct Rewired(x: [6]) -> out {
        let h = Dense(5, tanh, name = "h")(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add(name = "add")(h, c, b);
        let out = Dense(3, softmax, name = "out")(s);
    }
}

#[test]
fn a_file_with_other_calls_is_refused() {
    let e = Rewired::new(&Cpu::default()).load_keras(fixture("E_functional_shared_three.keras")).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 4 (add): the file calls it on (h[0][0], shared[1][0], shared[2][0]), this model on (h[0][0], shared[2][0], shared[1][0])"
        ),
        "{e}"
    );
}

/// `save_keras` writes Keras's functional config: it loads back, and (where Python Keras is at
/// hand: see `common::python`) Keras opens it and predicts the same.
#[test]
fn save_keras_round_trips_and_python_keras_loads_it() {
    let f = Fixture::load("E_functional_merges");
    let mut model = Merges::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let path = std::env::temp_dir().join(format!("keras_rs_functional_{}.keras", std::process::id()));
    model.save_keras(&path).unwrap();
    let mut back = Merges::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap());
    let x = inputs(&f);
    let ours = model.predict(&x).unwrap();
    let arrays = x
        .iter()
        .map(|a| format!("np.array({:?}, dtype='float32').reshape({:?})", a.iter().copied().collect::<Vec<f32>>(), a.shape()))
        .collect::<Vec<_>>();
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nx = [{}]\nprint(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        arrays.join(", ")
    );
    if let Some(text) = common::python(&script) {
        let keras: Vec<f32> = text.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Keras's predictions of our .keras", ours.as_slice().unwrap(), &keras, 1e-5);
    }
    std::fs::remove_file(&path).unwrap();
}

/// `x` for a model with several inputs: one array per input, each checked against its input,
/// errors naming what was expected and found; lists, arrays, `Vec`s and tuples of arrays or views
/// all work, for `fit` (validation data included), `evaluate` and `predict`.
#[test]
fn inputs_are_one_array_per_input_and_checked() {
    let f = Fixture::load("E_functional_two_input_concat");
    let x = inputs(&f);
    let y = f.tensor("y");
    let mut model = TwoInputConcat::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let want = model.predict(&x).unwrap();
    let (a, b) = (x[0].clone(), x[1].clone());
    assert_eq!(model.predict(&[a.view(), b.view()]).unwrap(), want);
    assert_eq!(model.predict(&(a.clone(), b.view())).unwrap(), want);
    assert_eq!(model.predict(&(&a, &b.mapv(f64::from))).unwrap(), want);
    assert_eq!(model.predict_on_batch(&x).unwrap(), want);

    let err = |r: keras::Result<keras::ndarray::Array2<f32>>| r.unwrap_err().to_string();
    assert_eq!(
        err(model.predict(&a)),
        "x: expected 2 arrays, one per input (in_a: (None, 6), in_b: (None, 3)), found one array of shape (8, 6)"
    );
    assert_eq!(err(model.predict(&[a.view()])), "x: expected 2 arrays, one per input (in_a: (None, 6), in_b: (None, 3)), found 1 arrays");
    assert_eq!(err(model.predict(&[b.view(), a.view()])), "x[0] (input `in_a`): expected shape (None, 6), found (8, 3)");
    let short = b.slice_axis(Axis(0), Slice::from(0..5)).to_owned();
    assert_eq!(err(model.predict(&(a.view(), short.view()))), "x[1] (input `in_b`): expected 8 samples, as many as x[0], found 5 samples");
    let mut nan = b.clone();
    nan[[2, 1]] = f32::NAN;
    assert!(err(model.predict(&(a.view(), nan.view()))).starts_with("x[1] contains a non-finite value (NaN) at flat index 7"));

    let mut model = compile_as_fixture(model, &f);
    let logs = model.evaluate(&x, &y).unwrap();
    assert!(logs.loss().is_finite());
    let e = model.fit(&a, &y, FitArgs::default().verbose(0)).unwrap_err().to_string();
    assert!(e.starts_with("x: expected 2 arrays"), "{e}");
    let e = model.fit(&x, &y, FitArgs::default().verbose(0).validation_data(&b, &y)).unwrap_err().to_string();
    assert_eq!(e, "validation x: expected 2 arrays, one per input (in_a: (None, 6), in_b: (None, 3)), found one array of shape (8, 3)");
    let history = model.fit(&x, &y, FitArgs::default().epochs(2).verbose(0).validation_data(&x, &y)).unwrap();
    assert_eq!(history["val_loss"].len(), 2);
    let history = model.fit(&x, &y, FitArgs::default().epochs(1).verbose(0).validation_split(0.25)).unwrap();
    assert_eq!(history["val_loss"].len(), 1);
}

/// An Embedding on one input of several: Keras's numbers, its layer order (`ids, emb, meta, ..`:
/// by depth, not inputs first), `.keras` files both ways, ids checked in `fit`/`predict` and
/// taken as `&[i32; N]` by `predict_one`.
#[test]
fn token_ids_beside_floats_match_keras() {
    assert_eq!(<TextMeta as Model>::LAYERS.iter().map(|l| l.name).collect::<Vec<_>>(), ["ids", "emb", "meta", "pool", "m", "j", "out"]);
    let f = Fixture::load("E_functional_text_meta");
    let x = inputs(&f);
    let mut model = TextMeta::new(&Cpu::default());
    model.load_keras(fixture("E_functional_text_meta.keras")).unwrap();
    let pred = model.predict(&x).unwrap();
    assert_close("text_meta from .keras", pred.as_slice().unwrap(), f.tensor("forward_after").as_slice().unwrap(), 1e-5);
    let ids: Vec<i32> = x[0].index_axis(Axis(0), 0).iter().map(|&v| v as i32).collect();
    let meta: Vec<f32> = x[1].index_axis(Axis(0), 0).iter().copied().collect();
    let one = model.predict_one(&ids.clone().try_into().unwrap(), &meta.clone().try_into().unwrap()).unwrap();
    assert_close("predict_one with ids", &one, pred.index_axis(Axis(0), 0).as_slice().unwrap(), 1e-6);
    let mut bad: [i32; 6] = ids.try_into().unwrap();
    bad[4] = 20;
    let e = model.predict_one(&bad, &meta.try_into().unwrap()).unwrap_err().to_string();
    assert_eq!(e, "`ids` token id at position 4: expected an integer in [0, 20) (the Embedding's input_dim is 20), found 20");
    let mut bad_ids = x[0].clone();
    bad_ids[[3, 2]] = 2.5;
    let e = model.predict(&[bad_ids.view(), x[1].view()]).unwrap_err().to_string();
    assert_eq!(
        e,
        "x[0] (input `ids`, token id of sample 3, position 2): expected an integer in [0, 20) (the Embedding's input_dim is 20), found 2.5"
    );
}

functional! {
    /// Keras's line-by-line style: `x = Dense(..)(x)` as shadowing `let`s.
    struct Rebound(x: [6], extra: [2]) -> x {
        let x = Dense(8, relu)(x);
        let x = Dense(4, tanh)(x);
        let extra = Dense(4)(extra);
        let x = Add()(x, extra);
        let x = Dense(1)(x);
    }
}

functional! {
    /// The same graph with a name per tensor.
    struct Named(x: [6], extra: [2]) -> out {
        let h1 = Dense(8, relu)(x);
        let h2 = Dense(4, tanh)(h1);
        let e = Dense(4)(extra);
        let sum = Add()(h2, e);
        let out = Dense(1)(sum);
    }
}

/// A `let` that shadows an earlier name builds the graph the distinct names build: same
/// weights, layer names, summary and predictions.
#[test]
fn shadowing_lets_build_the_same_graph() {
    assert_eq!(Rebound::PARAMS, Named::PARAMS);
    assert_eq!(Rebound::LAYER_NAMES, Named::LAYER_NAMES);
    let named = Named::new(&Cpu::default());
    let mut rebound = Rebound::new(&Cpu::default());
    rebound.set_weights(&named.get_weights().unwrap()).unwrap();
    assert_eq!(rebound.summary().to_string().replace("rebound", "named"), named.summary().to_string());
    let x = ArrayD::from_shape_fn(vec![5, 6], |i| (i[0] * 6 + i[1]) as f32 / 30.0);
    let extra = ArrayD::from_shape_fn(vec![5, 2], |i| i[1] as f32 - i[0] as f32 / 5.0);
    assert_eq!(rebound.predict(&[x.view(), extra.view()]).unwrap(), named.predict(&[x.view(), extra.view()]).unwrap());
}

functional! {
    /// InceptionResNetV2's residual: `x + up * scale` (Keras's `CustomScaleLayer`).
    struct ScaledResidual(x: [4]) -> out {
        let h = Dense(3, tanh, name = "h")(x);
        let up = Dense(3, name = "up")(h);
        let s = CustomScaleLayer(0.17)(h, up);
        let out = Dense(2, name = "out")(s);
    }
}

/// `CustomScaleLayer(scale)` computes `x + y * scale`; its `.keras` file names Keras's class in
/// Keras's application module, so Keras opens it and predicts the same.
#[test]
fn custom_scale_layer_is_keras_s() {
    keras::utils::set_random_seed(5);
    let model = ScaledResidual::new(&Cpu::default());
    let x = keras::ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i as f32 - 1.0) * 0.7 + j as f32 * 0.3);
    // By hand from the weights: h = tanh(x W + b), up = h U + c, s = h + up * 0.17, out = s V + d.
    let w = model.get_weights().unwrap();
    let dense = |x: &[f32], k: &keras::ndarray::ArrayD<f32>, b: &keras::ndarray::ArrayD<f32>| -> Vec<f32> {
        let (n, m) = (k.shape()[0], k.shape()[1]);
        (0..m).map(|j| b[[j]] + (0..n).map(|i| x[i] * k[[i, j]]).sum::<f32>()).collect()
    };
    let ours = model.predict(&x).unwrap();
    for (r, row) in x.rows().into_iter().enumerate() {
        let h: Vec<f32> = dense(row.as_slice().unwrap(), &w[0], &w[1]).iter().map(|v| v.tanh()).collect();
        let up = dense(&h, &w[2], &w[3]);
        let s: Vec<f32> = h.iter().zip(&up).map(|(a, b)| a + b * 0.17).collect();
        assert_close("CustomScaleLayer by hand", ours.row(r).as_slice().unwrap(), &dense(&s, &w[4], &w[5]), 1e-6);
    }
    let path = std::env::temp_dir().join(format!("keras_rs_scaled_{}.keras", std::process::id()));
    model.save_keras(&path).unwrap();
    let mut back = ScaledResidual::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), w);
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nassert type(m.layers[3]).__name__ == 'CustomScaleLayer' and m.layers[3].scale == 0.17\n\
         x = np.array({:?}, dtype='float32').reshape(3, 4)\nprint(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
        x.iter().copied().collect::<Vec<f32>>()
    );
    if let Some(text) = common::python(&script) {
        let keras: Vec<f32> = text.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_close("Keras's predictions of our .keras", ours.as_slice().unwrap(), &keras, 1e-5);
    }
    std::fs::remove_file(&path).unwrap();
}
