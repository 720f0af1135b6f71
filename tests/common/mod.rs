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
        let mut path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
        if !std::path::Path::new(&path).exists() {
            // A test binary carried to another machine (scripts/gpu-check.sh) runs from a copy
            // of the repository: the fixtures are found from the working directory there.
            path = format!("tests/fixtures/{name}.json");
        }
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

/// Compares gradients tensor by tensor, as [`assert_all_close`] does, except that a tensor whose
/// reference is numerically zero (every value below 1e-6 of the largest gradient of the model,
/// as the gradient of a bias that batch normalization cancels) is compared at the scale of the
/// largest gradient: its values are rounding noise in both frameworks.
pub fn assert_grads_close(what: &str, got: &[ArrayD<f32>], want: &[ArrayD<f32>], rtol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: tensor counts differ");
    let largest = want.iter().flat_map(|w| w.iter()).fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.shape(), w.shape(), "{what}[{i}] shapes differ");
        let own = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        if own < 1e-6 * largest {
            let err = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) as f64 / largest as f64;
            assert!(err <= rtol, "{what}[{i}]: difference {err:.3e} of the largest gradient > {rtol:.0e}");
            worst = worst.max(err);
        } else {
            worst = worst.max(assert_close(&format!("{what}[{i}]"), g.as_slice().unwrap(), w.as_slice().unwrap(), rtol));
        }
    }
    worst
}

/// A learning rate as Keras serialises it: a number, or `{class_name, config}` of a schedule.
pub fn learning_rate_of(v: &Value) -> keras::optimizers::LearningRate {
    use keras::optimizers::*;
    if let Some(lr) = v.as_f64() {
        return LearningRate::Constant(lr as f32);
    }
    let c = &v["config"];
    let num = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("schedule {k}")) as f32;
    let steps = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("schedule {k}"));
    let flag = |k: &str| c[k].as_bool().unwrap_or(false);
    match v["class_name"].as_str().unwrap() {
        "ExponentialDecay" => {
            ExponentialDecay::new(num("initial_learning_rate"), steps("decay_steps"), num("decay_rate")).staircase(flag("staircase")).into()
        }
        "InverseTimeDecay" => {
            InverseTimeDecay::new(num("initial_learning_rate"), steps("decay_steps"), num("decay_rate")).staircase(flag("staircase")).into()
        }
        "PolynomialDecay" => PolynomialDecay::new(num("initial_learning_rate"), steps("decay_steps"))
            .end_learning_rate(num("end_learning_rate"))
            .power(num("power"))
            .cycle(flag("cycle"))
            .into(),
        "PiecewiseConstantDecay" => PiecewiseConstantDecay::new(
            c["boundaries"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap()).collect::<Vec<_>>(),
            c["values"].as_array().unwrap().iter().map(|b| b.as_f64().unwrap() as f32).collect::<Vec<_>>(),
        )
        .into(),
        "CosineDecay" => {
            let s = CosineDecay::new(num("initial_learning_rate"), steps("decay_steps")).alpha(num("alpha"));
            match c["warmup_target"].as_f64() {
                Some(t) => s.warmup(t as f32, steps("warmup_steps")).into(),
                None => s.into(),
            }
        }
        other => panic!("schedule {other} is not supported by this test"),
    }
}

/// The model compiled with the optimizer of a fixture's `compile.optimizer` (every Keras 3
/// optimizer keras-rs has, its common options and schedules), the fixture's loss, no metrics.
pub fn compile_as_fixture<M: keras::Model>(model: M, f: &Fixture) -> keras::Compiled<M> {
    use keras::optimizers::*;
    use keras::prelude::*;
    let loss: Loss = f.value("compile")["loss"].as_str().unwrap().parse().unwrap();
    let o = f.optimizer();
    let num = |k: &str| o[k].as_f64().unwrap_or_else(|| panic!("optimizer {k}")) as f32;
    let opt = |k: &str| o[k].as_f64().map(|v| v as f32);
    let flag = |k: &str| o[k].as_bool().unwrap();
    let lr = learning_rate_of(&o["learning_rate"]);
    let no_metrics: [Metric; 0] = [];
    macro_rules! common {
        ($c:expr) => {{
            let mut c = $c;
            c.common = Common {
                weight_decay: opt("weight_decay"),
                clipnorm: opt("clipnorm"),
                clipvalue: opt("clipvalue"),
                global_clipnorm: opt("global_clipnorm"),
            };
            model.compile(c, loss, no_metrics)
        }};
    }
    match o["class_name"].as_str().unwrap() {
        "SGD" => common!(Sgd::new(lr).momentum(num("momentum")).nesterov(flag("nesterov"))),
        "Adam" => common!(Adam::new(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon")).amsgrad(flag("amsgrad"))),
        "AdamW" => common!(AdamW::new(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon")).amsgrad(flag("amsgrad"))),
        "Adamax" => common!(Adamax::new(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon"))),
        "Nadam" => common!(Nadam::new(lr).beta_1(num("beta_1")).beta_2(num("beta_2")).epsilon(num("epsilon"))),
        "RMSprop" => common!(RmsProp::new(lr).rho(num("rho")).momentum(num("momentum")).epsilon(num("epsilon")).centered(flag("centered"))),
        "Adagrad" => common!(Adagrad::new(lr).initial_accumulator_value(num("initial_accumulator_value")).epsilon(num("epsilon"))),
        "Adadelta" => common!(Adadelta::new(lr).rho(num("rho")).epsilon(num("epsilon"))),
        "Lion" => common!(Lion::new(lr).beta_1(num("beta_1")).beta_2(num("beta_2"))),
        "Ftrl" => common!(
            Ftrl::new(lr)
                .learning_rate_power(num("learning_rate_power"))
                .initial_accumulator_value(num("initial_accumulator_value"))
                .l1_regularization_strength(num("l1_regularization_strength"))
                .l2_regularization_strength(num("l2_regularization_strength"))
                .l2_shrinkage_regularization_strength(num("l2_shrinkage_regularization_strength"))
                .beta(num("beta"))
        ),
        other => panic!("optimizer {other} is not supported by this test"),
    }
    .unwrap()
}

/// Runs a whole fixture on the CPU (see [`run_fixture_on`]).
pub fn run_fixture<M: keras::Model<Backend = keras::Cpu>>(name: &str, rtol: f64) -> f64 {
    run_fixture_on::<M>(&keras::Cpu::default(), name, rtol)
}

/// Runs a whole fixture on `device` with [`compile_as_fixture`]: forward, first-batch loss and
/// gradients, fit, weights and forward after. A functional fixture's `x` is a list, one array per
/// input. Returns the worst relative error seen.
pub fn run_fixture_on<M: keras::Model>(device: &M::Backend, name: &str, rtol: f64) -> f64 {
    use keras::ndarray::{Axis, Slice};
    use keras::prelude::*;
    let f = Fixture::load(name);
    let mut model = M::create(device).unwrap();
    model.set_weights(&f.weights("weights_init")).unwrap();
    let x: Vec<ArrayD<f32>> = match f.value("x").as_array() {
        Some(list) => list.iter().map(Fixture::tensor_of).collect(),
        None => vec![f.tensor("x")],
    };
    let y = f.tensor("y");
    let batch = f.usize(&["fit", "batch_size"]).min(x[0].shape()[0]);
    let first = |a: &ArrayD<f32>| a.slice_axis(Axis(0), Slice::from(0..batch)).to_owned();
    let x_first: Vec<ArrayD<f32>> = x.iter().map(first).collect();
    let pred = model.predict_joined(&x).unwrap();
    let mut worst =
        assert_close(&format!("{name} forward_before"), pred.as_slice().unwrap(), f.tensor("forward_before").as_slice().unwrap(), rtol);
    let mut model = compile_as_fixture(model, &f);
    let (loss, grads) = model.gradients(&x_first, &first(&y)).unwrap();
    // Keras lists the gradients of trainable weights only.
    let grads: Vec<ArrayD<f32>> =
        grads.into_iter().zip(M::WEIGHTS).filter(|(_, w)| w.arena == keras::model::Arena::Trainable).map(|(g, _)| g).collect();
    worst = worst.max(assert_close(&format!("{name} loss_first_batch"), &[loss], &[f.f32(&["loss_first_batch"])], rtol));
    worst = worst.max(assert_grads_close(&format!("{name} grads_first_batch"), &grads, &f.weights("grads_first_batch"), rtol));
    let epochs = f.usize(&["fit", "epochs"]);
    let history = model.fit(&x, &y, FitArgs::default().epochs(epochs).batch_size(batch).shuffle(false).verbose(0)).unwrap();
    worst = worst.max(assert_close(&format!("{name} history.loss"), history.loss(), &f.history_loss(), rtol));
    worst = worst.max(assert_all_close(&format!("{name} weights_after"), &model.get_weights().unwrap(), &f.weights("weights_after"), rtol));
    let pred = model.predict_joined(&x).unwrap();
    worst = worst.max(assert_close(
        &format!("{name} forward_after"),
        pred.as_slice().unwrap(),
        f.tensor("forward_after").as_slice().unwrap(),
        rtol,
    ));
    eprintln!("{name}: worst relative error {worst:.2e}");
    worst
}

/// What Python prints running `script` (with Keras's JAX backend), where Python Keras is at
/// hand (`KERAS_PYTHON`, else `KERAS_APPLICATIONS_PYTHON`, else `/tmp/refenv/bin/python`);
/// `None` without Keras, except under CI (`CI=true`), where `.ci/run` installs it and a missing
/// Keras fails the test.
pub fn python(script: &str) -> Option<String> {
    let python = std::env::var("KERAS_PYTHON")
        .or_else(|_| std::env::var("KERAS_APPLICATIONS_PYTHON"))
        .unwrap_or_else(|_| "/tmp/refenv/bin/python".into());
    let run = |script: &str| std::process::Command::new(&python).env("KERAS_BACKEND", "jax").args(["-c", script]).output();
    if !run("import keras").is_ok_and(|out| out.status.success()) {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "no Python Keras at {python}: .ci/run installs it (set KERAS_PYTHON)");
        println!("skipped the Python Keras check: no Keras at {python} (set KERAS_PYTHON)");
        return None;
    }
    let out = run(script).unwrap();
    assert!(out.status.success(), "Python failed on\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

/// What Python Keras predicts for `x` (of `shape`) with the `.keras` archive at `path`; `None`
/// without Keras.
pub fn python_keras_predicts(path: &std::path::Path, x: &[f32], shape: &[usize]) -> Option<Vec<f32>> {
    let script = format!(
        "import numpy as np, keras\nm = keras.models.load_model({:?})\nx = np.array({x:?}, dtype='float32').reshape({shape:?})\n\
         print(' '.join(repr(float(v)) for v in m.predict(x, verbose=0).ravel()))",
        path.display().to_string(),
    );
    Some(python(&script)?.split_whitespace().map(|v| v.parse().unwrap()).collect())
}
