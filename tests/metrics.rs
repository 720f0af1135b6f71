//! Metrics against Keras's own (`tests/fixtures/metrics_keras.json`, from `gen_metrics.py`):
//! each metric's value after each of several batches (its state carried across them), and the
//! history of short `fit`s that log them, validation included.

mod common;

use common::assert_close;
use keras::backend::MetricBatch;
use keras::metrics::{Average, Metric};
use keras::ndarray::{Array1, Array2, ArrayD, IxDyn};
use keras::prelude::*;
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics_keras.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        v => vec![v.as_f64().unwrap() as f32],
    }
}

fn matrix(v: &Value) -> Array2<f32> {
    let rows = v.as_array().unwrap().len();
    let data = flat(v);
    Array2::from_shape_vec((rows, data.len() / rows), data).unwrap()
}

/// The metric a fixture stream names, and the loss whose targets it takes.
fn metric(name: &str) -> (Metric, &'static str) {
    let dense = "binary_crossentropy";
    match name {
        "top_k_categorical_accuracy k=2" => (Metric::TopKCategoricalAccuracy { k: 2 }, dense),
        "sparse_top_k_categorical_accuracy k=2" => (Metric::SparseTopKCategoricalAccuracy { k: 2 }, "sparse_categorical_crossentropy"),
        "sparse_categorical_accuracy" => (Metric::SparseCategoricalAccuracy, "sparse_categorical_crossentropy"),
        "precision threshold=0.7" => (Metric::Precision { threshold: 0.7 }, dense),
        "auc num_thresholds=13" => (Metric::Auc { num_thresholds: 13 }, dense),
        "f1_score macro" => (Metric::F1Score { average: Average::Macro, threshold: None }, dense),
        "f1_score micro" => (Metric::F1Score { average: Average::Micro, threshold: None }, dense),
        "f1_score weighted threshold=0.3" => (Metric::F1Score { average: Average::Weighted, threshold: Some(0.3) }, dense),
        other => (other.parse().unwrap(), dense),
    }
}

#[test]
fn metric_states_match_keras_batch_by_batch() {
    let dev = Cpu::default();
    for s in fixture()["streams"].as_array().unwrap() {
        let name = s["metric"].as_str().unwrap();
        let cols = s["cols"].as_u64().unwrap() as usize;
        let (m, loss) = metric(name);
        let kind = m.resolve(&loss.parse::<Loss>().unwrap().into(), cols).unwrap();
        let mut stats = vec![0.0f32; kind.stats_len(cols)];
        let mut got = Vec::new();
        for b in s["batches"].as_array().unwrap() {
            let (pred, target) = (flat(&b["pred"]), flat(&b["target"]));
            dev.metric(&MetricBatch { kind, rows: pred.len() / cols, cols }, &pred, &target, &mut stats);
            got.push(kind.result(&stats, cols));
        }
        assert_close(name, &got, &flat(&s["results"]), 1e-6);
    }
}

sequential! { struct Binary = Dense(6, in = 4, tanh) => Dense(1, sigmoid); }
sequential! { struct MultiLabel = Dense(6, in = 4, tanh) => Dense(3, sigmoid); }
sequential! { struct Classes = Dense(6, in = 4, tanh) => Dense(4, softmax); }
sequential! { struct Regression = Dense(6, in = 4, tanh) => Dense(2); }

fn fit_case<M: Model<Backend = Cpu>>(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let mut model = M::create(&Cpu::default()).unwrap();
    let init: Vec<ArrayD<f32>> = case["weights_init"]
        .as_array()
        .unwrap()
        .iter()
        .zip(model.get_weights().unwrap())
        .map(|(w, like)| ArrayD::from_shape_vec(IxDyn(like.shape()), flat(w)).unwrap())
        .collect();
    model.set_weights(&init).unwrap();
    let metrics: Vec<&str> = case["metrics"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let mut model = model.compile(Sgd::new(0.1), case["loss"].as_str().unwrap(), metrics).unwrap();
    let (x, xv) = (matrix(&case["x"]), matrix(&case["x_val"]));
    fn args(f: FitArgs<'_>) -> FitArgs<'_> {
        f.epochs(3).batch_size(16).shuffle(false).verbose(0)
    }
    let history = if case["y"][0].is_array() {
        let (y, yv) = (matrix(&case["y"]), matrix(&case["y_val"]));
        model.fit(&x, &y, args(FitArgs::default()).validation_data(&xv, &yv))
    } else {
        let (y, yv) = (Array1::from(flat(&case["y"])), Array1::from(flat(&case["y_val"])));
        model.fit(&x, &y, args(FitArgs::default()).validation_data(&xv, &yv))
    }
    .unwrap();
    let want = case["history"].as_object().unwrap();
    assert_eq!(history.keys().collect::<Vec<_>>(), want.keys().map(String::as_str).collect::<Vec<_>>(), "{name}: logged names");
    for (key, values) in want {
        assert_close(&format!("{name} {key}"), &history[key.as_str()], &flat(values), 1e-5);
    }
}

#[test]
fn fit_logs_metrics_as_keras_does() {
    let f = fixture();
    for case in f["fits"].as_array().unwrap() {
        match case["name"].as_str().unwrap() {
            "binary" => fit_case::<Binary>(case),
            "multilabel" => fit_case::<MultiLabel>(case),
            "sparse" => fit_case::<Classes>(case),
            "regression" => fit_case::<Regression>(case),
            other => panic!("unexpected case {other}"),
        }
    }
}
