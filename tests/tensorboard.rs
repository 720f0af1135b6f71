//! The TensorBoard callback, checked with TensorBoard itself (2.21, from PyPI): its
//! `EventAccumulator` reads the event files of a `fit` back (every scalar equal to the logged
//! value, every histogram the size of its weight, steps and wall times in order), a file cut
//! mid-record still yields each complete record, and `tensorboard --logdir` serves the runs over
//! HTTP. `.ci/run` installs TensorBoard into `target/tensorboard-venv` and points
//! `KERAS_TENSORBOARD_PYTHON` at its Python; without it these tests skip, except under `CI=true`,
//! where they fail.

use keras::callbacks::{LambdaCallback, TensorBoard, UpdateFreq};
use keras::ndarray::{Array1, Array2};
use keras::prelude::*;
use keras::{Compiled, History, Logs};
use serde_json::Value;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

sequential! { struct Net = Dense(8, in = 4, relu) => Dense(3, softmax); }

/// The Python that has TensorBoard, or `None` (with a message) where it is missing outside CI.
fn tensorboard_python() -> Option<PathBuf> {
    let python = std::env::var_os("KERAS_TENSORBOARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tensorboard-venv/bin/python"));
    let found = Command::new(&python).args(["-c", "import tensorboard; print(tensorboard.__version__)"]).output();
    match found {
        Ok(out) if out.status.success() => Some(python),
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TensorBoard is needed under CI=true ({} cannot import it: {why}); .ci/run installs it into target/tensorboard-venv",
                python.display()
            );
            eprintln!("skipped: no TensorBoard at {} (set KERAS_TENSORBOARD_PYTHON, or run .ci/run once): {why}", python.display());
            None
        }
    }
}

/// A fresh, empty scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keras-tensorboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` samples of 4 features and a class in 0..3 that depends on them.
fn data(n: usize, offset: usize) -> (Array2<f32>, Array1<f32>) {
    let x = Array2::from_shape_fn((n, 4), |(i, j)| (((i + offset) * 7 + j * 13) % 17) as f32 / 17.0 - 0.5);
    let y = Array1::from_shape_fn(n, |i| {
        if x[[i, 0]] + x[[i, 1]] > 0.2 {
            2.0
        } else if x[[i, 2]] > 0.0 {
            1.0
        } else {
            0.0
        }
    });
    (x, y)
}

fn model() -> Compiled<Net> {
    Net::new(&Cpu::default()).compile(Sgd::new(0.1), "sparse_categorical_crossentropy", ["accuracy"]).unwrap()
}

/// Runs `script` with TensorBoard's Python and parses what it prints as JSON.
fn python_json(python: &Path, script: &str, args: &[&Path]) -> Value {
    let out = Command::new(python).arg("-c").arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "the TensorBoard script failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Loads each run directory given with TensorBoard's `EventAccumulator` (keeping every event)
/// and prints, per run: the file version, the tag lists, each tensor summary's plugin and events
/// (wall time, step, value), and the events of each file in the order written.
const READ_RUNS: &str = r#"
import json, os, sys
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.util import tensor_util

def value(proto):
    a = tensor_util.make_ndarray(proto)
    if a.dtype.kind in "SO":
        return [v.decode() for v in a.reshape(-1)]
    return {"shape": list(a.shape), "values": a.tolist(), "dtype": str(a.dtype)}

out = {}
for run in sys.argv[1:]:
    guidance = {k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    acc = event_accumulator.EventAccumulator(run, size_guidance=guidance)
    acc.Reload()
    tags = acc.Tags()
    tensors = {}
    for tag in tags["tensors"]:
        tensors[tag] = {
            "plugin": acc.SummaryMetadata(tag).plugin_data.plugin_name,
            "events": [[e.wall_time, e.step, value(e.tensor_proto)] for e in acc.Tensors(tag)],
        }
    files = {}
    for name in sorted(os.listdir(run)):
        events = event_file_loader.EventFileLoader(os.path.join(run, name)).Load()
        files[name] = [[e.wall_time, e.step, e.file_version or [v.tag for v in e.summary.value]] for e in events]
    out[os.path.basename(run)] = {
        "file_version": acc.file_version,
        "scalars": tags["scalars"], "histograms": tags["histograms"],
        "tensors": tensors, "files": files,
    }
print(json.dumps(out))
"#;

/// The values of a scalar tag, by step.
fn scalars(run: &Value, tag: &str) -> Vec<(u64, f32)> {
    let t = &run["tensors"][tag];
    assert_eq!(t["plugin"], "scalars", "{tag}: {t}");
    t["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no tag {tag} in {}", run["tensors"].as_object().unwrap().keys().cloned().collect::<Vec<_>>().join(", ")))
        .iter()
        .map(|e| {
            assert_eq!(e[2]["shape"], serde_json::json!([]), "{tag} is a scalar");
            assert_eq!(e[2]["dtype"], "float32", "{tag} is written as tf.summary.scalar writes it");
            (e[1].as_u64().unwrap(), e[2]["values"].as_f64().unwrap() as f32)
        })
        .collect()
}

fn by_step(values: &[f32], first_step: u64) -> Vec<(u64, f32)> {
    values.iter().enumerate().map(|(i, &v)| (first_step + i as u64, v)).collect()
}

/// Steps increase and wall times never go back, per tag and through each file.
fn check_order(run: &Value) {
    for (tag, t) in run["tensors"].as_object().unwrap() {
        let events = t["events"].as_array().unwrap();
        for pair in events.windows(2) {
            assert!(pair[0][1].as_u64() < pair[1][1].as_u64(), "{tag}: steps {} then {}", pair[0][1], pair[1][1]);
            assert!(pair[0][0].as_f64() <= pair[1][0].as_f64(), "{tag}: wall times {} then {}", pair[0][0], pair[1][0]);
        }
    }
    for (file, events) in run["files"].as_object().unwrap() {
        let events = events.as_array().unwrap();
        assert_eq!(events[0][2], "brain.Event:2", "{file} starts with its file version");
        for pair in events.windows(2) {
            assert!(pair[0][0].as_f64() <= pair[1][0].as_f64(), "{file}: wall times {} then {}", pair[0][0], pair[1][0]);
        }
    }
}

/// A `fit` with validation data, histograms every epoch and batch updates, read back by
/// TensorBoard's own reader.
#[test]
fn tensorboard_reads_back_every_value_of_a_fit() {
    let Some(python) = tensorboard_python() else { return };
    let dir = scratch("fit");
    let (x, y) = data(64, 0);
    let (vx, vy) = data(24, 100);
    let mut model = model();
    let batches: Rc<RefCell<Vec<Logs>>> = Rc::default();
    let seen = batches.clone();
    let mut record = LambdaCallback::new().on_batch_end(move |_, logs| seen.borrow_mut().push(logs.clone()));
    let mut tensorboard = TensorBoard::new(&dir).histogram_freq(1).update_freq(UpdateFreq::Batch).write_steps_per_second(true);
    let history: History = model
        .fit(
            &x,
            &y,
            FitArgs::default()
                .epochs(3)
                .batch_size(16)
                .verbose(0)
                .validation_data(&vx, &vy)
                .callback(&mut tensorboard)
                .callback(&mut record),
        )
        .unwrap();
    let batches = batches.borrow();
    assert_eq!(batches.len(), 12);

    let runs = python_json(&python, READ_RUNS, &[&dir.join("train"), &dir.join("validation")]);
    let (train, validation) = (&runs["train"], &runs["validation"]);
    for run in [train, validation] {
        assert_eq!(run["file_version"], 2.0);
        assert_eq!(run["scalars"], serde_json::json!([]), "scalars are v2 tensor summaries, as TensorFlow 2 writes them");
        assert_eq!(run["histograms"], serde_json::json!([]), "histograms are v2 tensor summaries");
        check_order(run);
        let files: Vec<&String> = run["files"].as_object().unwrap().keys().collect();
        assert_eq!(files.len(), 1, "one event file per run and fit: {files:?}");
        let parts: Vec<&str> = files[0].split('.').collect();
        assert!(files[0].starts_with("events.out.tfevents.") && files[0].ends_with(".v2"), "{}", files[0]);
        assert_eq!(parts[3].len(), 10, "seconds as TensorFlow pads them: {}", files[0]);
        assert_eq!(parts[parts.len() - 3], std::process::id().to_string(), "the pid: {}", files[0]);
    }

    // Epoch values: train in train/, validation (without `val_`) in validation/, step = epoch.
    assert_eq!(scalars(train, "epoch_loss"), by_step(history.loss(), 0));
    assert_eq!(scalars(train, "epoch_accuracy"), by_step(history.get("accuracy").unwrap(), 0));
    assert_eq!(scalars(train, "epoch_learning_rate"), by_step(&[0.1; 3], 0));
    assert_eq!(scalars(validation, "epoch_loss"), by_step(history.get("val_loss").unwrap(), 0));
    assert_eq!(scalars(validation, "epoch_accuracy"), by_step(history.get("val_accuracy").unwrap(), 0));
    // Validation against the optimizer's iterations (4 batches an epoch).
    let at_iterations =
        |name: &str| history.get(name).unwrap().iter().enumerate().map(|(e, &v)| (4 * (e as u64 + 1), v)).collect::<Vec<_>>();
    assert_eq!(scalars(validation, "evaluation_loss_vs_iterations"), at_iterations("val_loss"));
    assert_eq!(scalars(validation, "evaluation_accuracy_vs_iterations"), at_iterations("val_accuracy"));
    // Batch values: the running values the logs held, at step 1, 2, ... over the whole fit.
    let batch = |name: &str| batches.iter().enumerate().map(|(i, l)| (i as u64 + 1, l[name])).collect::<Vec<_>>();
    assert_eq!(scalars(train, "batch_loss"), batch("loss"));
    assert_eq!(scalars(train, "batch_accuracy"), batch("accuracy"));
    for (tag, steps) in [("epoch_steps_per_second", 3), ("batch_steps_per_second", 12)] {
        let values = scalars(train, tag);
        assert_eq!(values.len(), steps, "{tag}");
        assert!(values.iter().all(|&(_, v)| v.is_finite() && v > 0.0), "{tag}: {values:?}");
    }

    // Histograms: one per weight and epoch, tagged by the weight's Keras path, 30 buckets that
    // count every element; the last epoch's span the final weights.
    let weights = model.get_weights().unwrap();
    let paths = ["net/dense/kernel", "net/dense/bias", "net/dense_1/kernel", "net/dense_1/bias"];
    for (path, w) in paths.iter().zip(&weights) {
        let t = &train["tensors"][format!("{path}/histogram")];
        assert_eq!(t["plugin"], "histograms", "{path}: {t}");
        let events = t["events"].as_array().unwrap();
        assert_eq!(events.iter().map(|e| e[1].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2], "{path}");
        for e in events {
            assert_eq!(e[2]["shape"], serde_json::json!([30, 3]), "{path}");
            assert_eq!(e[2]["dtype"], "float64", "{path}");
            let rows = e[2]["values"].as_array().unwrap();
            let count: f64 = rows.iter().map(|r| r[2].as_f64().unwrap()).sum();
            assert_eq!(count, w.len() as f64, "{path}: the counts sum to the weight's size");
            assert!(rows.iter().all(|r| r[0].as_f64() <= r[1].as_f64()), "{path}: edges in order");
        }
        let last = events[2][2]["values"].as_array().unwrap();
        let min = w.iter().copied().fold(f32::INFINITY, f32::min);
        let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // Compared as f32: the edges are the f32 extremes, and serde_json parses doubles to
        // within a unit in the last place.
        assert_eq!(last[0][0].as_f64().unwrap() as f32, min, "{path}");
        assert_eq!(last[29][1].as_f64().unwrap() as f32, max, "{path}");
    }

    // The graph: the model's Keras config at step 0, as Keras's `keras_model_summary` writes it.
    let keras = &train["tensors"]["keras"];
    assert_eq!(keras["plugin"], "graph_keras_model");
    // (The reader gives it the shape [1] of a blob sequence.)
    let config: Value = serde_json::from_str(keras["events"][0][2][0].as_str().unwrap()).unwrap();
    assert_eq!(config["class_name"], "Sequential");
    assert_eq!(config["config"]["name"], "net");
    assert_eq!(config["config"]["layers"][2]["config"]["name"], "dense_1");

    // Nothing else was written.
    let mut train_tags: Vec<&str> = train["tensors"].as_object().unwrap().keys().map(String::as_str).collect();
    train_tags.sort_unstable();
    let mut expected = vec![
        "batch_accuracy",
        "batch_loss",
        "batch_steps_per_second",
        "epoch_accuracy",
        "epoch_learning_rate",
        "epoch_loss",
        "epoch_steps_per_second",
        "keras",
    ];
    let histograms: Vec<String> = paths.iter().map(|p| format!("{p}/histogram")).collect();
    expected.extend(histograms.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(train_tags, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The byte offsets at which each record of a TFRecord file ends.
fn record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 8 + 4 + len + 4;
        ends.push(at);
    }
    assert_eq!(at, bytes.len(), "the file is whole records");
    ends
}

/// Reads the first file of `argv[1]` with `EventFileLoader` and keeps its first `argv[3]` events;
/// loads run directory `argv[2]` (a copy cut short) with `EventAccumulator`; prints both as tag
/// -> [(step, value)], and how many events the loader finds in the cut copy.
const READ_CUT: &str = r#"
import json, os, sys
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.util import tensor_util

full_dir, cut_dir, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
def name(d): return os.path.join(d, os.listdir(d)[0])
def value(proto):
    # The reader gives the model's JSON, a string scalar, the shape [1] of a blob sequence.
    a = tensor_util.make_ndarray(proto)
    return [v.decode() for v in a.reshape(-1)] if a.dtype.kind in "SO" else a.tolist()
expected = {}
for e in list(event_file_loader.EventFileLoader(name(full_dir)).Load())[:k]:
    for v in e.summary.value:
        expected.setdefault(v.tag, []).append([e.step, value(v.tensor)])
acc = event_accumulator.EventAccumulator(cut_dir, size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE})
acc.Reload()
found = {tag: [[e.step, value(e.tensor_proto)] for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}
loaded = len(list(event_file_loader.EventFileLoader(name(cut_dir)).Load()))
print(json.dumps({"expected": expected, "found": found, "loaded": loaded}))
"#;

/// A file cut anywhere inside a record (its header, its data, its last checksum) still gives
/// TensorBoard every record before the cut.
#[test]
fn a_file_cut_mid_record_keeps_its_complete_records() {
    let Some(python) = tensorboard_python() else { return };
    let dir = scratch("cut");
    let (x, y) = data(48, 0);
    let mut tensorboard = TensorBoard::new(dir.join("logs")).histogram_freq(1).update_freq(UpdateFreq::Batches(2));
    let history = model().fit(&x, &y, FitArgs::default().epochs(2).batch_size(8).verbose(0).callback(&mut tensorboard)).unwrap();
    let train = dir.join("logs/train");
    assert!(!dir.join("logs/validation").exists(), "no validation data, no validation run");
    let file = std::fs::read_dir(&train).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(&file).unwrap();
    let ends = record_ends(&bytes);
    // keras, then 6 batches of which every second one is written (loss and accuracy), then
    // epoch_accuracy, epoch_learning_rate, epoch_loss and 4 histograms, twice.
    assert_eq!(ends.len(), 1 + 1 + 2 * (3 * 2 + 3 + 4));

    let runs = python_json(&python, READ_RUNS, &[&train]);
    assert_eq!(scalars(&runs["train"], "batch_loss").iter().map(|s| s.0).collect::<Vec<_>>(), [2, 4, 6, 8, 10, 12]);
    assert_eq!(scalars(&runs["train"], "epoch_loss"), by_step(history.loss(), 0));

    for k in [2, ends.len() / 2, ends.len() - 1] {
        let next = ends[k] - ends[k - 1];
        for cut in [ends[k - 1] + 3, ends[k - 1] + 20, ends[k] - 1] {
            assert!(cut < ends[k] && next > 20);
            let cut_dir = dir.join(format!("cut-{cut}"));
            std::fs::create_dir_all(&cut_dir).unwrap();
            std::fs::write(cut_dir.join(file.file_name().unwrap()), &bytes[..cut]).unwrap();
            let k_arg = k.to_string();
            let out = python_json(&python, READ_CUT, &[&train, &cut_dir, Path::new(&k_arg)]);
            assert_eq!(out["loaded"], k, "cut at byte {cut} of record {k}");
            assert_eq!(out["found"], out["expected"], "cut at byte {cut} of record {k}");
            assert!(!out["found"].as_object().unwrap().is_empty());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `tensorboard` server on loopback, stopped when dropped (also when a test fails).
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `tensorboard --logdir` on a free loopback port.
    fn start(python: &Path, logdir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "tensorboard.main", "--host", "127.0.0.1", "--port", &port.to_string(), "--logdir"])
            .arg(logdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Server { child, port }
    }

    /// `GET path`: the status and the body.
    fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// `GET path` as JSON, which must come with status 200.
    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Waits until `ready` holds of `GET path`, or fails with the server's output.
    fn wait_for(&mut self, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Ok((200, body)) = self.get(path)
                && let Ok(v) = serde_json::from_str::<Value>(&body)
                && ready(&v)
            {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("tensorboard exited ({status}):\n{err}");
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                let mut err = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("tensorboard did not serve {path} within 120 s; its output:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// `tensorboard --logdir` serves the runs of a `fit`: its HTTP API lists the runs and tags and
/// returns the values, and its Graphs plugin draws the model.
#[test]
fn tensorboard_serves_the_runs_over_http() {
    let Some(python) = tensorboard_python() else { return };
    let dir = scratch("serve");
    let (x, y) = data(64, 0);
    let (vx, vy) = data(24, 100);
    let mut tensorboard = TensorBoard::new(&dir).histogram_freq(1);
    let history = model()
        .fit(&x, &y, FitArgs::default().epochs(3).batch_size(16).verbose(0).validation_data(&vx, &vy).callback(&mut tensorboard))
        .unwrap();

    let mut server = Server::start(&python, &dir);
    let tags = server
        .wait_for("/data/plugin/scalars/tags", |v| v["train"].get("epoch_loss").is_some() && v["validation"].get("epoch_loss").is_some());
    let mut runs: Vec<String> = serde_json::from_value(server.json("/data/runs")).unwrap();
    runs.sort();
    assert_eq!(runs, ["train", "validation"]);
    let mut train_tags: Vec<&String> = tags["train"].as_object().unwrap().keys().collect();
    train_tags.sort();
    assert_eq!(train_tags, ["epoch_accuracy", "epoch_learning_rate", "epoch_loss"]);
    let mut validation_tags: Vec<&String> = tags["validation"].as_object().unwrap().keys().collect();
    validation_tags.sort();
    assert_eq!(validation_tags, ["epoch_accuracy", "epoch_loss", "evaluation_accuracy_vs_iterations", "evaluation_loss_vs_iterations"]);

    // Each value: [wall_time, step, value].
    let values = |run: &str, tag: &str| -> Vec<(u64, f32)> {
        let v = server.json(&format!("/data/plugin/scalars/scalars?run={run}&tag={tag}"));
        v.as_array().unwrap().iter().map(|e| (e[1].as_u64().unwrap(), e[2].as_f64().unwrap() as f32)).collect()
    };
    assert_eq!(values("train", "epoch_loss"), by_step(history.loss(), 0));
    assert_eq!(values("train", "epoch_accuracy"), by_step(history.get("accuracy").unwrap(), 0));
    assert_eq!(values("validation", "epoch_loss"), by_step(history.get("val_loss").unwrap(), 0));
    let val_loss = history.get("val_loss").unwrap();
    assert_eq!(values("validation", "evaluation_loss_vs_iterations"), [(4, val_loss[0]), (8, val_loss[1]), (12, val_loss[2])]);

    let histograms = server.json("/data/plugin/histograms/tags");
    let mut weight_tags: Vec<&String> = histograms["train"].as_object().unwrap().keys().collect();
    weight_tags.sort();
    assert_eq!(
        weight_tags,
        ["net/dense/bias/histogram", "net/dense/kernel/histogram", "net/dense_1/bias/histogram", "net/dense_1/kernel/histogram"]
    );
    let kernel = server.json("/data/plugin/histograms/histograms?run=train&tag=net/dense/kernel/histogram");
    let kernel = kernel.as_array().unwrap();
    assert_eq!(kernel.len(), 3);
    for e in kernel {
        let count: f64 = e[2].as_array().unwrap().iter().map(|b| b[2].as_f64().unwrap()).sum();
        assert_eq!(count, 32.0);
    }

    // The Graphs tab: the Keras model as a conceptual graph, its layers as nodes.
    let info = server.json("/data/plugin/graphs/info");
    assert_eq!(info["train"]["tags"]["keras"]["conceptual_graph"], true, "{info}");
    let (status, graph) = server.get("/data/plugin/graphs/graph?run=train&tag=keras&conceptual=true").unwrap();
    assert_eq!(status, 200, "{graph}");
    for node in ["name: \"net/input_layer\"", "name: \"net/dense\"", "name: \"net/dense_1\"", "input: \"net/dense\""] {
        assert!(graph.contains(node), "the conceptual graph lacks {node}:\n{graph}");
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `log_dir` that cannot be made is an `Err` at the first write, naming the path: before
/// training with the graph written, at the first epoch's end without it.
#[test]
fn an_unwritable_log_dir_is_an_error_naming_it() {
    let dir = scratch("unwritable");
    // Under a regular file: no directory can be made there, even as root.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let log_dir = blocker.join("logs");
    let (x, y) = data(16, 0);
    for write_graph in [true, false] {
        let mut tensorboard = TensorBoard::new(&log_dir).write_graph(write_graph);
        let epochs: Rc<RefCell<usize>> = Rc::default();
        let count = epochs.clone();
        let mut counter = LambdaCallback::new().on_epoch_end(move |_, _| *count.borrow_mut() += 1);
        let err = model()
            .fit(&x, &y, FitArgs::default().epochs(3).verbose(0).callback(&mut counter).callback(&mut tensorboard))
            .unwrap_err()
            .to_string();
        let train = log_dir.join("train").display().to_string();
        assert!(err.contains(&train), "write_graph {write_graph}: `{err}` names {train}");
        assert_eq!(*epochs.borrow(), usize::from(!write_graph), "write_graph {write_graph}: the epochs run before the error");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each `fit` writes a file of its own in each run directory, as Keras's writers do.
#[test]
fn each_fit_writes_new_files() {
    let dir = scratch("twice");
    let (x, y) = data(16, 0);
    let mut model = model();
    let mut tensorboard = TensorBoard::new(&dir);
    for _ in 0..2 {
        model.fit(&x, &y, FitArgs::default().epochs(1).verbose(0).validation_split(0.25).callback(&mut tensorboard)).unwrap();
    }
    for run in ["train", "validation"] {
        let files: Vec<_> = std::fs::read_dir(dir.join(run)).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files.len(), 2, "{run}: {files:?}");
        for f in &files {
            let bytes = std::fs::read(dir.join(run).join(f)).unwrap();
            assert!(record_ends(&bytes).len() > 1, "{run}/{f:?}: the file version and the values");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
