//! Shared test helpers: Keras reference fixtures and tolerant comparison.
#![allow(dead_code)]

use keras::ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// A case produced by real Keras (see `tests/fixtures/README-keras-fixtures.md`).
pub struct Fixture {
    pub name: String,
    json: Value,
}

impl Fixture {
    pub fn load(name: &str) -> Fixture {
        let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Fixture { name: name.to_string(), json: serde_json::from_str(&text).expect("fixture is JSON") }
    }

    pub fn value(&self, key: &str) -> &Value {
        self.json.get(key).unwrap_or_else(|| panic!("{}: no key {key}", self.name))
    }

    /// A `{shape, data}` tensor.
    pub fn tensor_of(v: &Value) -> ArrayD<f32> {
        let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap() as f32).collect();
        ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
    }

    pub fn tensor(&self, key: &str) -> ArrayD<f32> {
        Self::tensor_of(self.value(key))
    }

    /// A list of weight records (`weights_init`, `weights_after`, `grads_first_batch`).
    pub fn weights(&self, key: &str) -> Vec<ArrayD<f32>> {
        self.value(key).as_array().unwrap().iter().map(Self::tensor_of).collect()
    }

    pub fn f32(&self, path: &[&str]) -> f32 {
        let mut v = &self.json;
        for p in path {
            v = &v[*p];
        }
        v.as_f64().unwrap_or_else(|| panic!("{}: {path:?} is not a number", self.name)) as f32
    }

    pub fn usize(&self, path: &[&str]) -> usize {
        self.f32(path) as usize
    }

    /// The loss of every epoch (`loss_all_epochs` where the fixture thins `loss`).
    pub fn history_loss(&self) -> Vec<f32> {
        let h = &self.json["history"];
        let all = if h.get("loss_all_epochs").is_some() { &h["loss_all_epochs"] } else { &h["loss"] };
        all.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
    }

    /// Whether the fixture has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.json.get(key).is_some()
    }

    /// `class_weight` as `[[class, weight], ...]`.
    pub fn class_weight(&self) -> Vec<(usize, f32)> {
        let pairs = self.value("class_weight").as_array().unwrap();
        pairs.iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap() as f32)).collect()
    }

    pub fn optimizer(&self) -> &Value {
        &self.json["compile"]["optimizer"]
    }
}

/// Relative error of `got` against `want` in the max norm: `max |a - b| / max |b|`. Elementwise
/// relative error is meaningless for values that are themselves the result of cancellation (a
/// weight near zero, an activation's tail), so each tensor is compared at its own scale.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(0f64, |m, &b| m.max(b.abs() as f64)).max(f64::MIN_POSITIVE);
    got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).abs()).fold(0.0, f64::max) / scale
}

/// Asserts `got` is within `rtol` of `want` (see [`rel_err`]); returns the error.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f64) -> f64 {
    let err = rel_err(got, want);
    if err > rtol || got.iter().any(|v| !v.is_finite()) {
        let (i, _) =
            got.iter().zip(want).enumerate().map(|(i, (&a, &b))| (i, (a - b).abs())).fold((0, 0.0), |m, c| if c.1 > m.1 { c } else { m });
        panic!("{what}: relative error {err:.3e} > {rtol:.0e}; largest difference at {i}: got {} want {}", got[i], want[i]);
    }
    err
}

/// Compares tensor by tensor; returns the worst error.
pub fn assert_all_close(what: &str, got: &[ArrayD<f32>], want: &[ArrayD<f32>], rtol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: tensor counts differ");
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(i, (g, w))| {
            assert_eq!(g.shape(), w.shape(), "{what}[{i}] shapes differ");
            assert_close(&format!("{what}[{i}]"), g.as_slice().unwrap(), w.as_slice().unwrap(), rtol)
        })
        .fold(0.0, f64::max)
}
