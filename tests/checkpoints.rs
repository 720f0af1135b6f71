//! Weights files, training state and the checkpoint callbacks: round trips, mismatched and
//! hostile files, atomic replacement, ModelCheckpoint's best-only saving and path formatting,
//! and resuming a run (save_state / load_state, BackupAndRestore) with bit-identical results.

use keras::callbacks::{BackupAndRestore, Callback, Mode, ModelCheckpoint};
use keras::io::write_atomic;
use keras::ndarray::{Array2, ArrayD};
use keras::prelude::*;
use keras::{Compiled, Error, Logs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

sequential! { struct Regressor = Dense(8, in = 2, tanh) => Dense(1); }
sequential! { struct Wider = Dense(16, in = 2, tanh) => Dense(1); }
sequential! { struct Deeper = Dense(8, in = 2, tanh) => Dense(4) => Dense(1); }
sequential! { struct Dropped = Dense(8, in = 2, relu) => Dropout(0.3) => Dense(1); }
sequential! { struct Normalized = Dense(8, in = 2, use_bias = false) => BatchNormalization() => Dense(1); }

/// The global generator is shared by the tests of this file: each takes the lock while it seeds.
static SEED: Mutex<()> = Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keras-checkpoints-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// y = sin(x0) + x1 / 2 on a grid, and a held-out set.
fn data() -> (Array2<f32>, Array2<f32>, Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((64, 2), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 8.0 - 1.0);
    let y = Array2::from_shape_fn((64, 1), |(i, _)| x[[i, 0]].sin() + x[[i, 1]] / 2.0);
    let vx = Array2::from_shape_fn((16, 2), |(i, j)| ((i * 5 + j * 3) % 11) as f32 / 5.0 - 1.0);
    let vy = Array2::from_shape_fn((16, 1), |(i, _)| vx[[i, 0]].sin() + vx[[i, 1]] / 2.0);
    (x, y, vx, vy)
}

fn regressor(seed: u64) -> Regressor {
    keras::utils::set_random_seed(seed);
    Regressor::new(&Cpu::default())
}

fn bits(weights: &[ArrayD<f32>]) -> Vec<Vec<u32>> {
    weights.iter().map(|w| w.iter().map(|v| v.to_bits()).collect()).collect()
}

fn format_message(e: Error) -> String {
    match e {
        Error::Format { message, .. } => message,
        other => panic!("expected a format error, found {other}"),
    }
}

#[test]
fn weights_round_trip_gives_identical_predictions() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("round-trip");
    let path = dir.join("regressor.safetensors");
    let (x, y, ..) = data();
    let mut trained = regressor(1).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).unwrap();
    trained.fit(&x, &y, FitArgs::default().epochs(3).verbose(0)).unwrap();
    trained.save_weights(&path).unwrap();

    let mut plain = regressor(2);
    assert_ne!(bits(&plain.get_weights().unwrap()), bits(&trained.get_weights().unwrap()));
    plain.load_weights(&path).unwrap();
    assert_eq!(bits(&plain.get_weights().unwrap()), bits(&trained.get_weights().unwrap()));
    let (a, b) = (trained.predict(&x).unwrap(), plain.predict(&x).unwrap());
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());

    // A compiled model loads too, and the file holds nothing but the weights.
    let mut compiled = regressor(3).compile("sgd", "mse", [Metric::Accuracy; 0]).unwrap();
    compiled.load_weights(&path).unwrap();
    assert_eq!(bits(&compiled.get_weights().unwrap()), bits(&trained.get_weights().unwrap()));
    assert_eq!(files(&dir), ["regressor.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Non-trainable weights (batch normalization's moving statistics) are saved and restored, so the
/// reloaded model predicts (in inference mode, from those statistics) exactly as the trained one.
#[test]
fn moving_statistics_round_trip() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("moving-statistics");
    let path = dir.join("normalized.safetensors");
    let (x, y, ..) = data();
    keras::utils::set_random_seed(4);
    let mut trained = Normalized::new(&Cpu::default()).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).unwrap();
    trained.fit(&x, &y, FitArgs::default().epochs(2).verbose(0)).unwrap();
    let moving = &trained.get_weights().unwrap()[3];
    assert!(moving.iter().any(|&v| v != 0.0), "training moved the moving mean");
    trained.save_weights(&path).unwrap();
    let mut fresh = Normalized::new(&Cpu::default());
    fresh.load_weights(&path).unwrap();
    assert_eq!(bits(&fresh.get_weights().unwrap()), bits(&trained.get_weights().unwrap()));
    assert_eq!(bits(&[fresh.predict(&x).unwrap().into_dyn()]), bits(&[trained.predict(&x).unwrap().into_dyn()]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_architecture_is_an_error_naming_the_difference() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("architecture");
    let path = dir.join("regressor.safetensors");
    regressor(1).save_weights(&path).unwrap();

    keras::utils::set_random_seed(5);
    let mut wider = Wider::new(&Cpu::default());
    let before = bits(&wider.get_weights().unwrap());
    let msg = format_message(wider.load_weights(&path).unwrap_err());
    assert!(msg.starts_with("the weights do not fit the model: tensor `dense/kernel`: expected shape (2, 16), found (2, 8)"), "{msg}");
    assert!(msg.contains("tensor `dense/bias`: expected shape (16,), found (8,)"), "{msg}");
    assert_eq!(bits(&wider.get_weights().unwrap()), before, "nothing is written on error");

    let mut deeper = Deeper::new(&Cpu::default());
    let before = bits(&deeper.get_weights().unwrap());
    let msg = format_message(deeper.load_weights(&path).unwrap_err());
    assert!(msg.contains("tensor `dense_1/kernel`: expected shape (8, 4), found (8, 1)"), "{msg}");
    assert!(msg.contains("missing tensor `dense_2/kernel` (shape (4, 1))"), "{msg}");
    assert_eq!(bits(&deeper.get_weights().unwrap()), before);

    // The other way round: the file has tensors the model does not.
    deeper.save_weights(&path).unwrap();
    let mut small = regressor(6);
    let msg = format_message(small.load_weights(&path).unwrap_err());
    assert!(msg.contains("unexpected tensor `dense_2/bias`") && msg.contains("unexpected tensor `dense_2/kernel`"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file with the given header entries `(name, dtype, shape, bytes)`, zero data.
fn crafted(entries: &[(&str, &str, &[usize], usize)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, dtype, shape, len)) in entries.iter().enumerate() {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            "{}\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            if i > 0 { "," } else { "" },
            dims.join(","),
            offset + len
        ));
        offset += len;
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + offset, 0);
    out
}

#[test]
fn hostile_files_are_errors() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("hostile");
    let good = dir.join("good.safetensors");
    regressor(1).save_weights(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mut model = regressor(2);
    let before = bits(&model.get_weights().unwrap());

    let mut huge_header = u64::MAX.to_le_bytes().to_vec();
    huge_header.extend_from_slice(b"{}");
    let mut claims_99mb = 99_000_000u64.to_le_bytes().to_vec();
    claims_99mb.extend_from_slice(b"{}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated header", bytes[..bytes.len() / 8].to_vec()),
        ("truncated data", bytes[..bytes.len() - 5].to_vec()),
        ("garbage", (0..500u32).map(|i| (i * 37 % 251) as u8).collect()),
        ("huge header size", huge_header),
        ("header beyond the file", claims_99mb),
        ("data beyond the file", {
            let mut b = crafted(&[("dense/kernel", "F32", &[2, 8], 64)]);
            b.truncate(b.len() - 32);
            b
        }),
        ("not JSON", {
            let mut b = 4u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{{{{");
            b
        }),
    ];
    for (name, contents) in cases {
        let path = dir.join(format!("{}.safetensors", name.replace(' ', "_")));
        std::fs::write(&path, &contents).unwrap();
        let err = model.load_weights(&path).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{name}: {err}");
        assert!(err.to_string().contains("not a valid safetensors file"), "{name}: {err}");
    }

    // Well formed, but of the wrong dtype.
    let path = dir.join("f64.safetensors");
    let entries: [(&str, &str, &[usize], usize); 4] = [
        ("dense/kernel", "F64", &[2, 8], 128),
        ("dense/bias", "F32", &[8], 32),
        ("dense_1/kernel", "F32", &[8, 1], 32),
        ("dense_1/bias", "F32", &[1], 4),
    ];
    std::fs::write(&path, crafted(&entries)).unwrap();
    let msg = format_message(model.load_weights(&path).unwrap_err());
    assert_eq!(msg, "the weights do not fit the model: tensor `dense/kernel`: expected dtype F32, found F64");

    let missing = model.load_weights(dir.join("absent.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    assert_eq!(bits(&model.get_weights().unwrap()), before, "nothing is written on error");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_checkpoint_leaves_the_previous_file_loadable() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("interrupted");
    let path = dir.join("ckpt.safetensors");
    let saved = regressor(1);
    saved.save_weights(&path).unwrap();
    let err = write_atomic(&path, |w| {
        w.write_all(&[0xAB; 4096]).map_err(|source| Error::Io { path: "ckpt".into(), source })?;
        Err(Error::Config("interrupted".into()))
    })
    .unwrap_err();
    assert!(err.to_string().contains("interrupted"));
    assert_eq!(files(&dir), ["ckpt.safetensors"], "no temporary file is left behind");
    let mut model = regressor(2);
    model.load_weights(&path).unwrap();
    assert_eq!(bits(&model.get_weights().unwrap()), bits(&saved.get_weights().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a fixed `score` sequence into the logs and records the weights of each epoch.
struct Scripted {
    scores: Vec<f32>,
    weights: Vec<Vec<ArrayD<f32>>>,
}

impl Callback for Scripted {
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn keras::Control) -> keras::Result<()> {
        logs.set("score", self.scores[epoch]);
        self.weights.push(control.get_weights()?);
        Ok(())
    }
}

#[test]
fn model_checkpoint_saves_on_improvement_under_formatted_names() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("model-checkpoint");
    let (x, y, vx, vy) = data();
    let mut model = regressor(1).compile(Sgd::new(0.05), "mse", [Metric::Accuracy; 0]).unwrap();
    let mut script = Scripted { scores: vec![0.5, 0.4, 0.45, 0.3, 0.35], weights: Vec::new() };
    let template = dir.join("sub/ep{epoch:02d}-{score:.3f}.safetensors").to_string_lossy().into_owned();
    let mut best_only = ModelCheckpoint::new(template).monitor("score").mode(Mode::Min).save_best_only(true).verbose(1);
    let mut every = ModelCheckpoint::new(dir.join("last.safetensors").to_string_lossy().into_owned());
    let mut best_val = ModelCheckpoint::new(dir.join("best_val.safetensors").to_string_lossy().into_owned()).save_best_only(true);
    let history = model
        .fit(
            &x,
            &y,
            FitArgs::default()
                .epochs(5)
                .verbose(0)
                .shuffle(false)
                .validation_data(&vx, &vy)
                .callback(&mut script)
                .callback(&mut best_only)
                .callback(&mut every)
                .callback(&mut best_val),
        )
        .unwrap();
    assert_eq!(files(&dir.join("sub")), ["ep01-0.500.safetensors", "ep02-0.400.safetensors", "ep04-0.300.safetensors"]);
    assert_eq!(best_only.best(), Some(f64::from(0.3f32)));
    let load = |name: &str| {
        let mut m = regressor(9);
        m.load_weights(dir.join(name)).unwrap();
        bits(&m.get_weights().unwrap())
    };
    assert_eq!(load("sub/ep04-0.300.safetensors"), bits(&script.weights[3]));
    assert_eq!(load("sub/ep02-0.400.safetensors"), bits(&script.weights[1]));
    assert_eq!(load("last.safetensors"), bits(&script.weights[4]));
    let val = history.get("val_loss").unwrap();
    let best_epoch = (0..val.len()).fold(0, |b, i| if val[i] < val[b] { i } else { b });
    assert_eq!(load("best_val.safetensors"), bits(&script.weights[best_epoch]));

    // An unknown field is an error from fit, and a threshold no epoch beats saves nothing.
    let mut unknown = ModelCheckpoint::new("w.{val_acc:.2f}.safetensors");
    let err = model.fit(&x, &y, FitArgs::default().verbose(0).callback(&mut unknown)).unwrap_err();
    assert!(err.to_string().contains("unknown field `val_acc`"), "{err}");
    let mut strict = ModelCheckpoint::new(dir.join("never.safetensors").to_string_lossy().into_owned())
        .monitor("loss")
        .save_best_only(true)
        .initial_value_threshold(0.0);
    model.fit(&x, &y, FitArgs::default().epochs(2).verbose(0).callback(&mut strict)).unwrap();
    assert!(!dir.join("never.safetensors").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records the weights after every training batch.
#[derive(Default)]
struct EveryBatch {
    weights: Vec<Vec<ArrayD<f32>>>,
}

impl Callback for EveryBatch {
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, control: &mut dyn keras::Control) -> keras::Result<()> {
        self.weights.push(control.get_weights()?);
        Ok(())
    }
}

/// `save_freq(n)` saves after every `n` batches counted across epochs, as Keras counts them,
/// under names that may hold `{batch}`; the file holds the weights after that batch. With
/// `save_best_only` a batch save monitors the epoch's running value, and saves with a warning
/// (as Keras 3.15 does) when the monitored value is not logged (`val_loss` within an epoch).
#[test]
fn model_checkpoint_saves_every_n_batches() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("save-freq");
    let (x, y, vx, vy) = data();
    let x = x.slice(keras::ndarray::s![..10, ..]).to_owned();
    let y = y.slice(keras::ndarray::s![..10, ..]).to_owned();
    let mut model = regressor(3).compile(Sgd::new(0.05), "mse", [Metric::Accuracy; 0]).unwrap();
    let template = dir.join("w-{epoch}-{batch:02d}.safetensors").to_string_lossy().into_owned();
    let mut every_two = ModelCheckpoint::new(template).save_freq(2);
    let mut best_loss = ModelCheckpoint::new(dir.join("best-{epoch}-{batch}.safetensors").to_string_lossy().into_owned())
        .monitor("loss")
        .save_best_only(true)
        .save_freq(3);
    let mut best_val =
        ModelCheckpoint::new(dir.join("unmonitored.safetensors").to_string_lossy().into_owned()).save_best_only(true).save_freq(1);
    let mut record = EveryBatch::default();
    let args = FitArgs::default()
        .epochs(3)
        .batch_size(4)
        .verbose(0)
        .shuffle(false)
        .validation_data(&vx, &vy)
        .callback(&mut record)
        .callback(&mut every_two)
        .callback(&mut best_loss)
        .callback(&mut best_val);
    model.fit(&x, &y, args).unwrap();
    // 3 batches per epoch (4, 4, 2 samples): batches 2, 4, 6 and 8 of the run.
    let saved: Vec<String> = files(&dir).into_iter().filter(|f| f.starts_with("w-")).collect();
    assert_eq!(saved, ["w-1-02.safetensors", "w-2-01.safetensors", "w-2-03.safetensors", "w-3-02.safetensors"]);
    let load = |name: &str| {
        let mut m = regressor(9);
        m.load_weights(dir.join(name)).unwrap();
        bits(&m.get_weights().unwrap())
    };
    assert_eq!(load("w-2-01.safetensors"), bits(&record.weights[3]));
    assert_eq!(load("w-3-02.safetensors"), bits(&record.weights[7]));
    // Every third batch, while the epoch's running loss improves on the best so far.
    assert!(files(&dir).iter().any(|f| f == "best-1-3.safetensors"), "{:?}", files(&dir));
    assert!(best_loss.best().is_some());
    // val_loss is not logged within an epoch: every batch saves, the last batch's weights last.
    let mut last = regressor(9);
    last.load_weights(dir.join("unmonitored.safetensors")).unwrap();
    assert_eq!(bits(&last.get_weights().unwrap()), bits(&record.weights[8]));
    // Zero batches is refused before training.
    let mut zero = ModelCheckpoint::new("z.safetensors").save_freq(0);
    let e = model.fit(&x, &y, FitArgs::default().verbose(0).callback(&mut zero)).unwrap_err().to_string();
    assert_eq!(e, "ModelCheckpoint save_freq: expected SaveFreq::Epoch or a number of batches >= 1, found 0");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn compiled_dropped(seed: u64) -> Compiled<Dropped> {
    keras::utils::set_random_seed(seed);
    Dropped::new(&Cpu::default()).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).unwrap()
}

#[test]
fn a_resumed_run_ends_with_the_same_weights() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("resume");
    let path = dir.join("state.safetensors");
    let (x, y, ..) = data();
    for shuffle in [false, true] {
        let args = || FitArgs::default().batch_size(16).verbose(0).shuffle(shuffle);
        let mut straight = compiled_dropped(1);
        straight.fit(&x, &y, args().epochs(6)).unwrap();

        let mut first = compiled_dropped(1);
        first.fit(&x, &y, args().epochs(2)).unwrap();
        first.save_state(&path, 2).unwrap();
        let mut resumed = compiled_dropped(77);
        assert_eq!(resumed.load_state(&path).unwrap(), 2);
        assert_eq!(resumed.optimizer().iterations(), 8);
        let history = resumed.fit(&x, &y, args().epochs(6).initial_epoch(2)).unwrap();
        assert_eq!(history.epochs, [2, 3, 4, 5]);
        assert_eq!(bits(&resumed.get_weights().unwrap()), bits(&straight.get_weights().unwrap()), "shuffle {shuffle}");
    }
    let mut resumed = compiled_dropped(77);

    // Another optimizer, or plain weights, are errors that change nothing.
    keras::utils::set_random_seed(3);
    let mut sgd = Dropped::new(&Cpu::default()).compile("sgd", "mse", [Metric::Accuracy; 0]).unwrap();
    let before = bits(&sgd.get_weights().unwrap());
    let msg = format_message(sgd.load_state(&path).unwrap_err());
    assert_eq!(msg, "the state was saved with the adam optimizer, but this model is compiled with sgd");
    sgd.save_weights(dir.join("weights.safetensors")).unwrap();
    let msg = format_message(resumed.load_state(dir.join("weights.safetensors")).unwrap_err());
    assert!(msg.contains("not a training state: no `epoch`"), "{msg}");
    assert_eq!(bits(&sgd.get_weights().unwrap()), before);
    // A state file is not a weights file: its optimizer variables are unexpected there.
    let msg = format_message(sgd.load_weights(&path).unwrap_err());
    assert!(msg.contains("unexpected tensor `optimizer/iterations`"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fails when epoch `at` (0-based) begins, as a crash would.
struct Crash {
    at: usize,
}

impl Callback for Crash {
    fn on_epoch_begin(&mut self, epoch: usize, _control: &mut dyn keras::Control) -> keras::Result<()> {
        if epoch == self.at { Err(Error::Config(format!("crashed at epoch {epoch}"))) } else { Ok(()) }
    }
}

#[test]
fn backup_and_restore_resumes_an_interrupted_fit() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("backup");
    let backup_dir = dir.join("backup");
    let (x, y, ..) = data();
    for shuffle in [false, true] {
        let args = || FitArgs::default().epochs(6).batch_size(16).verbose(0).shuffle(shuffle);
        let mut straight = compiled_dropped(1);
        straight.fit(&x, &y, args()).unwrap();

        let mut backup = BackupAndRestore::new(&backup_dir);
        let mut crash = Crash { at: 3 };
        let mut first = compiled_dropped(1);
        let err = first.fit(&x, &y, args().callback(&mut backup).callback(&mut crash)).unwrap_err();
        assert!(err.to_string().contains("crashed at epoch 3"), "{err}");
        assert_eq!(files(&backup_dir), ["training_state.safetensors"]);

        let mut backup = BackupAndRestore::new(&backup_dir);
        let mut second = compiled_dropped(42);
        let history = second.fit(&x, &y, args().callback(&mut backup)).unwrap();
        assert_eq!(history.epochs, [3, 4, 5]);
        assert_eq!(bits(&second.get_weights().unwrap()), bits(&straight.get_weights().unwrap()), "shuffle {shuffle}");
        assert!(!backup_dir.exists(), "the backup is deleted when fit completes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
