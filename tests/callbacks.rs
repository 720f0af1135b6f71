//! The standard callbacks: replayed against Keras's own EarlyStopping and ReduceLROnPlateau on
//! fixed sequences (`tests/fixtures/callbacks_keras.json`, from `gen_callbacks.py`), and each
//! one's effect inside `fit`.

use keras::callbacks::{
    CSVLogger, Callback, EarlyStopping, LambdaCallback, LearningRateScheduler, Mode, ReduceLROnPlateau, TerminateOnNaN,
};
use keras::ndarray::{Array2, ArrayD, IxDyn};
use keras::prelude::*;
use keras::{Compiled, Logs};
use serde_json::Value;
use std::sync::Mutex;

sequential! { struct Tiny = Dense(1, in = 2); }
sequential! { struct Regressor = Dense(8, in = 2, tanh) => Dense(1); }

static SEED: Mutex<()> = Mutex::new(());

fn cases(group: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/callbacks_keras.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v[group].as_array().unwrap().clone()
}

fn tiny() -> Compiled<Tiny> {
    Tiny::new(&Cpu::default()).compile(Sgd::new(0.1), "mse", [Metric::Accuracy; 0]).unwrap()
}

/// Every weight set to `value`.
fn fill(model: &mut Compiled<Tiny>, value: f32) {
    let w: Vec<ArrayD<f32>> = model.get_weights().unwrap().iter().map(|a| ArrayD::from_elem(IxDyn(a.shape()), value)).collect();
    model.set_weights(&w).unwrap();
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn mode(config: &Value) -> Mode {
    match config.get("mode").and_then(Value::as_str) {
        Some("max") => Mode::Max,
        Some("min") => Mode::Min,
        _ => Mode::Auto,
    }
}

/// EarlyStopping driven from a user's own loop, as Keras's was in the generator.
#[test]
fn early_stopping_matches_keras() {
    for case in cases("early_stopping") {
        let c = &case["config"];
        let monitor = case["monitor"].as_str().unwrap().to_string();
        let mut es = EarlyStopping::new().monitor(monitor.clone()).mode(mode(c));
        if let Some(p) = c.get("patience") {
            es = es.patience(p.as_u64().unwrap() as usize);
        }
        if let Some(d) = c.get("min_delta") {
            es = es.min_delta(f(d));
        }
        if let Some(b) = c.get("baseline") {
            es = es.baseline(f(b));
        }
        if let Some(r) = c.get("restore_best_weights") {
            es = es.restore_best_weights(r.as_bool().unwrap());
        }
        if let Some(s) = c.get("start_from_epoch") {
            es = es.start_from_epoch(s.as_u64().unwrap() as usize);
        }
        let mut model = tiny();
        es.on_train_begin(&mut model).unwrap();
        let mut epochs = 0;
        let mut logs = Logs::new();
        for (epoch, v) in case["values"].as_array().unwrap().iter().enumerate() {
            fill(&mut model, epoch as f32);
            logs.clear();
            logs.set(monitor.clone(), f(v) as f32);
            es.on_epoch_end(epoch, &mut logs, &mut model).unwrap();
            epochs = epoch + 1;
            if model.stop_requested() {
                break;
            }
        }
        es.on_train_end(&logs, &mut model).unwrap();
        let what = format!("{} {monitor} {c}", case["sequence"]);
        assert_eq!(epochs as u64, case["epochs_run"].as_u64().unwrap(), "{what}: epochs run");
        assert_eq!(es.stopped_epoch().unwrap_or(0) as u64, case["stopped_epoch"].as_u64().unwrap(), "{what}: stopped epoch");
        assert_eq!(es.best_epoch() as u64, case["best_epoch"].as_u64().unwrap(), "{what}: best epoch");
        assert_eq!(model.get_weights().unwrap()[0][[0, 0]], f(&case["final_weight"]) as f32, "{what}: weights at the end");
    }
}

#[test]
fn reduce_lr_on_plateau_matches_keras() {
    for case in cases("reduce_lr") {
        let c = &case["config"];
        let monitor = case["monitor"].as_str().unwrap().to_string();
        let mut cb = ReduceLROnPlateau::new().monitor(monitor.clone());
        if let Some(p) = c.get("patience") {
            cb = cb.patience(p.as_u64().unwrap() as usize);
        }
        if let Some(v) = c.get("factor") {
            cb = cb.factor(f(v));
        }
        if let Some(v) = c.get("cooldown") {
            cb = cb.cooldown(v.as_u64().unwrap() as usize);
        }
        if let Some(v) = c.get("min_lr") {
            cb = cb.min_lr(f(v));
        }
        if let Some(v) = c.get("min_delta") {
            cb = cb.min_delta(f(v));
        }
        let mut model = tiny();
        cb.on_train_begin(&mut model).unwrap();
        let mut lrs = Vec::new();
        let mut logs = Logs::new();
        for (epoch, v) in case["values"].as_array().unwrap().iter().enumerate() {
            logs.clear();
            logs.set(monitor.clone(), f(v) as f32);
            cb.on_epoch_end(epoch, &mut logs, &mut model).unwrap();
            lrs.push(model.optimizer().learning_rate());
        }
        let want: Vec<f32> = case["learning_rates"].as_array().unwrap().iter().map(|v| f(v) as f32).collect();
        let what = format!("{} {monitor} {c}", case["sequence"]);
        assert_eq!(lrs, want, "{what}: learning rate after each epoch");
        assert_eq!(logs["learning_rate"], f(&case["logged_learning_rate_last"]) as f32, "{what}: logged rate");
    }
}

fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((64, 2), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
    let y = Array2::from_shape_fn((64, 1), |(i, _)| x[[i, 0]] * 2.0 - x[[i, 1]]);
    (x, y)
}

/// Inside `fit`: training stops `patience` epochs after the best validation loss, and the weights
/// are those of the best epoch.
#[test]
fn early_stopping_in_fit_stops_and_restores_the_best_weights() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(3);
    let (x, y) = data();
    // A learning rate this large makes the validation loss bounce, so there is a best epoch to
    // go back to.
    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(0.9), "mse", [Metric::Accuracy; 0]).unwrap();
    struct Snapshots(Vec<Vec<ArrayD<f32>>>);
    impl Callback for Snapshots {
        fn on_epoch_end(&mut self, _e: usize, _l: &mut Logs, control: &mut dyn keras::Control) -> keras::Result<()> {
            self.0.push(control.get_weights()?);
            Ok(())
        }
    }
    let mut snaps = Snapshots(Vec::new());
    let mut es = EarlyStopping::new().patience(2).restore_best_weights(true);
    let h = model
        .fit(&x, &y, FitArgs::default().epochs(60).batch_size(8).validation_split(0.25).verbose(0).callback(&mut snaps).callback(&mut es))
        .unwrap();
    let val = &h["val_loss"];
    let best = (0..val.len()).fold(0, |b, i| if val[i] < val[b] { i } else { b });
    assert!(val.len() < 60, "training should stop early: {val:?}");
    assert_eq!(es.best_epoch(), best);
    assert_eq!(es.stopped_epoch(), Some(best + 2), "stops `patience` epochs after the best: {val:?}");
    assert_eq!(model.get_weights().unwrap(), snaps.0[best], "weights of the best epoch restored");
}

#[test]
fn terminate_on_nan_stops_at_the_first_bad_batch() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(1);
    let (x, y) = data();
    let y = y * 1e30;
    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(1e10), "mse", [Metric::Accuracy; 0]).unwrap();
    // The closure borrows a local (LambdaCallback's closures need not be 'static).
    let batches = std::cell::Cell::new(0);
    let mut counter = LambdaCallback::new().on_batch_end(|_, _| batches.set(batches.get() + 1));
    let mut stop = TerminateOnNaN::new();
    let h = model.fit(&x, &y, FitArgs::default().epochs(5).batch_size(8).verbose(0).callback(&mut stop).callback(&mut counter)).unwrap();
    assert_eq!(h.loss().len(), 1, "stopped in the first epoch");
    assert!(!h.loss()[0].is_finite());
    assert_eq!(batches.get(), 1, "the first batch's loss overflows; no batch runs after it");

    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(1e10), "mse", [Metric::Accuracy; 0]).unwrap();
    let mut stop = TerminateOnNaN::new().raise_error(true);
    let err = model.fit(&x, &y, FitArgs::default().epochs(5).batch_size(8).verbose(0).callback(&mut stop)).unwrap_err();
    assert!(err.to_string().starts_with("NaN or Inf loss encountered at batch"), "{err}");
}

#[test]
fn learning_rate_scheduler_sets_and_logs_the_rate() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(1);
    let (x, y) = data();
    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(0.1), "mse", [Metric::Accuracy; 0]).unwrap();
    let mut sched = LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 });
    let h = model.fit(&x, &y, FitArgs::default().epochs(4).verbose(0).callback(&mut sched)).unwrap();
    assert_eq!(&h["learning_rate"], &[0.1, 0.1, 0.05, 0.025]);
    assert_eq!(model.optimizer().learning_rate(), 0.025);

    let mut bad = LearningRateScheduler::new(|_, _| -1.0);
    let err = model.fit(&x, &y, FitArgs::default().epochs(1).verbose(0).callback(&mut bad)).unwrap_err();
    assert!(err.to_string().contains("the schedule returned -1 at epoch 0"), "{err}");
}

#[test]
fn reduce_lr_on_plateau_in_fit_lowers_the_rate() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(1);
    let (x, y) = data();
    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(0.9), "mse", [Metric::Accuracy; 0]).unwrap();
    // min_delta this large makes no epoch an improvement after the first.
    let mut cb = ReduceLROnPlateau::new().monitor("loss").patience(1).factor(0.5).min_delta(1e9);
    let h = model.fit(&x, &y, FitArgs::default().epochs(4).verbose(0).callback(&mut cb)).unwrap();
    assert_eq!(&h["learning_rate"], &[0.9, 0.9, 0.45, 0.225]);
    assert_eq!(model.optimizer().learning_rate(), 0.1125);
    let mut bad = ReduceLROnPlateau::new().factor(1.5);
    let err = model.fit(&x, &y, FitArgs::default().verbose(0).callback(&mut bad)).unwrap_err();
    assert_eq!(err.to_string(), "ReduceLROnPlateau factor: expected a number in (0, 1), found 1.5");
    // A schedule drives the rate: refused before the first epoch trains.
    let mut scheduled = Regressor::new(&Cpu::default())
        .compile(Sgd::new(keras::ExponentialDecay::new(0.1, 10, 0.9)), "mse", [Metric::Accuracy; 0])
        .unwrap();
    let before = scheduled.get_weights().unwrap();
    let mut cb = ReduceLROnPlateau::new().monitor("loss");
    let err = scheduled.fit(&x, &y, FitArgs::default().epochs(3).verbose(0).callback(&mut cb)).unwrap_err();
    let err = err.to_string();
    assert!(
        err.starts_with("ReduceLROnPlateau: ") && err.contains("the learning rate comes from a schedule, so it cannot be set"),
        "{err}"
    );
    assert_eq!(scheduled.get_weights().unwrap(), before, "nothing trained");
    let mut unknown = EarlyStopping::new().monitor("val_loss");
    let err = model.fit(&x, &y, FitArgs::default().verbose(0).callback(&mut unknown)).unwrap_err();
    assert!(err.to_string().contains("monitors `val_loss`, which is not logged (logged: loss)"), "{err}");
    let mut unknown = EarlyStopping::new().monitor("score");
    let err = model.fit(&x, &y, FitArgs::default().verbose(0).callback(&mut unknown)).unwrap_err();
    assert!(err.to_string().contains("whose direction cannot be inferred"), "{err}");
}

#[test]
fn csv_logger_writes_what_keras_writes() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(1);
    let (x, y) = data();
    let dir = std::env::temp_dir().join(format!("keras-rs-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.csv");
    let mut model = Regressor::new(&Cpu::default()).compile(Sgd::new(0.1), "mse", [Metric::Accuracy; 0]).unwrap();
    let mut csv = CSVLogger::new(&path);
    let h = model.fit(&x, &y, FitArgs::default().epochs(2).verbose(0).callback(&mut csv)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "epoch,loss,val_loss");
    assert_eq!(lines[1], format!("0,{},NA", h.loss()[0] as f64));
    assert_eq!(lines[2], format!("1,{},NA", h.loss()[1] as f64));
    assert_eq!(lines[3], "");
    // Appending (a resumed run) adds rows and no second header.
    let mut csv = CSVLogger::new(&path).append(true);
    model.fit(&x, &y, FitArgs::default().epochs(3).initial_epoch(2).verbose(0).callback(&mut csv)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("epoch").count(), 1);
    assert!(text.split("\r\n").nth(3).unwrap().starts_with("2,"));
    std::fs::remove_dir_all(&dir).unwrap();
}
