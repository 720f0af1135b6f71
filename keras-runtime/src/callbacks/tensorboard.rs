//! The [`TensorBoard`] callback: training logs as TensorBoard reads them.

mod event_file;

use super::{Callback, Control};
use crate::train::Logs;
use crate::{Error, Result};
use event_file::{EventFile, Tensor, Value, histogram_buckets};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How often [`TensorBoard`] writes the losses and metrics (Keras's `update_freq`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateFreq {
    /// After each epoch only (Keras's `"epoch"`, the default).
    #[default]
    Epoch,
    /// After every batch too (Keras's `"batch"`), as `batch_loss`, `batch_accuracy`, ...
    Batch,
    /// After every `n`th batch too (Keras's integer `update_freq`).
    Batches(usize),
}

/// Writes logs for TensorBoard (Keras's `TensorBoard` callback): `tensorboard --logdir logs`
/// then shows the losses and metrics, the weights' histograms and the model's graph.
///
/// Files and names are Keras 3's. Under `log_dir`, `train/` and `validation/` each get an event
/// file per `fit` (`events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2`, as TensorFlow names them):
///
/// - after each epoch, `epoch_loss`, `epoch_accuracy`, ... and `epoch_learning_rate` in `train/`
///   and the validation values (`val_loss` as `epoch_loss`) in `validation/`, at step `epoch`
///   (0-based); with validation, `evaluation_loss_vs_iterations`, ... in `validation/` at the
///   optimizer's iteration count; with [`TensorBoard::write_steps_per_second`],
///   `epoch_steps_per_second`;
/// - with [`UpdateFreq::Batch`] or [`UpdateFreq::Batches`], `batch_loss`, ... (the epoch's running
///   values, as Keras logs them) at step = batches trained in this `fit` (from 1), and
///   `batch_steps_per_second` when asked;
/// - every `histogram_freq` epochs, a histogram of each weight, tagged by its Keras path as
///   Keras tags it: `<model>/dense/kernel/histogram` in a Sequential model,
///   `dense/kernel/histogram` in a functional one;
/// - with `write_graph` (the default), the model's Keras config (`model.to_json()`) as Keras
///   writes it, tag `keras`, which TensorBoard's Graphs tab draws as the model's conceptual graph.
///
/// Scalars and histograms are TensorFlow 2's summaries (`tf.summary.scalar`,
/// `tf.summary.histogram`: tensors with plugin `scalars` and `histograms`, 30 buckets).
/// Events are flushed to disk at the end of each epoch and of training; every record is written
/// whole, so a run killed mid-write leaves files whose complete records all read back. The
/// directories and files are made at the first write; one that cannot be made (an unwritable
/// `log_dir`) makes `fit` return an [`Error::Io`] naming it.
///
/// ```
/// use keras_runtime::FitArgs;
/// use keras_runtime::callbacks::{TensorBoard, UpdateFreq};
/// let mut tensorboard = TensorBoard::new("logs/fit").histogram_freq(1).update_freq(UpdateFreq::Batch);
/// let args = FitArgs::default().epochs(5).validation_split(0.2).callback(&mut tensorboard);
/// # drop(args);
/// ```
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    write_graph: bool,
    write_steps_per_second: bool,
    update_freq: UpdateFreq,
    train: Option<EventFile>,
    validation: Option<EventFile>,
    /// Batches trained in this `fit`, the step of batch summaries (Keras's `_global_train_batch`).
    global_train_batch: u64,
    /// Whether this process writes (rank 0 of a data-parallel job, or the only process).
    chief: bool,
    /// When the current epoch began, and the optimizer's iteration count then.
    epoch_start: (Instant, u64),
    /// When the current batch began (the end of the one before, or the epoch's start).
    batch_start: Instant,
}

impl Default for TensorBoard {
    /// Keras's defaults: `log_dir` `logs`, no histograms, the graph written, epoch updates.
    fn default() -> Self {
        TensorBoard::new("logs")
    }
}

impl TensorBoard {
    /// Writes under `log_dir`, with Keras's other defaults.
    pub fn new(log_dir: impl AsRef<Path>) -> Self {
        TensorBoard {
            log_dir: log_dir.as_ref().to_path_buf(),
            histogram_freq: 0,
            write_graph: true,
            write_steps_per_second: false,
            update_freq: UpdateFreq::Epoch,
            train: None,
            validation: None,
            global_train_batch: 0,
            chief: true,
            epoch_start: (Instant::now(), 0),
            batch_start: Instant::now(),
        }
    }

    /// Writes a histogram of every weight every `freq` epochs, from the first (default 0: never).
    pub fn histogram_freq(mut self, freq: usize) -> Self {
        self.histogram_freq = freq;
        self
    }

    /// Whether to write the model's graph (default true).
    pub fn write_graph(mut self, write: bool) -> Self {
        self.write_graph = write;
        self
    }

    /// Whether to log training steps per second, per epoch and (with batch updates) per batch
    /// (default false).
    pub fn write_steps_per_second(mut self, write: bool) -> Self {
        self.write_steps_per_second = write;
        self
    }

    /// How often to write losses and metrics (default [`UpdateFreq::Epoch`]).
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// The directory the logs go to.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Writes batch summaries every this many batches; `None` for epoch updates only.
    fn batch_period(&self) -> Option<u64> {
        match self.update_freq {
            UpdateFreq::Epoch => None,
            UpdateFreq::Batch => Some(1),
            UpdateFreq::Batches(n) => Some(n as u64),
        }
    }

    /// The writer of `train/` (`validation` false) or `validation/`, its file made at first use.
    fn writer(&mut self, validation: bool) -> Result<&mut EventFile> {
        let (slot, dir) = if validation { (&mut self.validation, "validation") } else { (&mut self.train, "train") };
        let file = match slot.take() {
            Some(file) => file,
            None => EventFile::create(&self.log_dir.join(dir))?,
        };
        Ok(slot.insert(file))
    }

    /// Writes a scalar summary.
    fn scalar(&mut self, validation: bool, tag: &str, value: f32, step: u64) -> Result<()> {
        let value = Value { tag, plugin: "scalars", content: b"", tensor: Tensor::Scalar(value) };
        self.writer(validation)?.write(step as i64, &value)
    }

    /// Flushes both files (those that exist).
    fn flush(&mut self) -> Result<()> {
        for file in [&mut self.train, &mut self.validation].into_iter().flatten() {
            file.flush()?;
        }
        Ok(())
    }
}

impl Callback for TensorBoard {
    fn wants_batch_logs(&self) -> bool {
        self.update_freq != UpdateFreq::Epoch
    }

    fn on_train_begin(&mut self, control: &mut dyn Control) -> Result<()> {
        if self.update_freq == UpdateFreq::Batches(0) {
            return Err(Error::value("TensorBoard update_freq", "UpdateFreq::Batches(n) with n >= 1", "UpdateFreq::Batches(0)"));
        }
        // Each `fit` writes files of its own, as Keras's `set_model` makes new writers.
        self.train = None;
        self.validation = None;
        self.global_train_batch = 0;
        self.epoch_start = (Instant::now(), control.iterations());
        // In a data-parallel job rank 0 writes the logs (every rank logs the same values).
        self.chief = control.is_chief();
        if self.write_graph && self.chief {
            let json = control.to_json();
            // Keras's `keras_model_summary("keras", model, step=0)`: plugin `graph_keras_model`,
            // content version "1".
            let value = Value { tag: "keras", plugin: "graph_keras_model", content: b"1", tensor: Tensor::Text(&json) };
            self.writer(false)?.write(0, &value)?;
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, _epoch: usize, control: &mut dyn Control) -> Result<()> {
        let now = Instant::now();
        self.epoch_start = (now, control.iterations());
        self.batch_start = now;
        Ok(())
    }

    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        self.global_train_batch += 1;
        if !self.chief {
            return Ok(());
        }
        let Some(period) = self.batch_period() else { return Ok(()) };
        let now = Instant::now();
        let seconds = now.duration_since(self.batch_start).as_secs_f64();
        self.batch_start = now;
        if !self.global_train_batch.is_multiple_of(period) {
            return Ok(());
        }
        let step = self.global_train_batch;
        if self.write_steps_per_second {
            self.scalar(false, "batch_steps_per_second", (1.0 / seconds) as f32, step)?;
        }
        for (name, value) in logs.iter() {
            self.scalar(false, &format!("batch_{name}"), value, step)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        if !self.chief {
            return Ok(());
        }
        let step = epoch as u64;
        let iterations = control.iterations();
        // Keras's `on_test_end` during `fit`: the validation values against the optimizer's
        // iterations, named as `evaluate` logs them.
        for (name, value) in logs.iter().filter(|(n, _)| n.starts_with("val_")) {
            self.scalar(true, &format!("evaluation_{}_vs_iterations", &name[4..]), value, iterations)?;
        }
        for (name, value) in logs.iter().filter(|(n, _)| !n.starts_with("val_") && *n != "learning_rate") {
            self.scalar(false, &format!("epoch_{name}"), value, step)?;
        }
        self.scalar(false, "epoch_learning_rate", control.learning_rate(), step)?;
        if self.write_steps_per_second {
            let (start, start_iterations) = self.epoch_start;
            let per_second = iterations.saturating_sub(start_iterations) as f64 / start.elapsed().as_secs_f64();
            self.scalar(false, "epoch_steps_per_second", per_second as f32, step)?;
        }
        for (name, value) in logs.iter().filter(|(n, _)| n.starts_with("val_")) {
            self.scalar(true, &format!("epoch_{}", &name[4..]), value, step)?;
        }
        if self.histogram_freq > 0 && epoch.is_multiple_of(self.histogram_freq) {
            let weights = control.get_weights()?;
            for (path, weight) in control.weight_paths().iter().zip(&weights) {
                let data: Vec<f32> = weight.iter().copied().collect();
                // tf.summary.histogram's default of 30 buckets.
                let buckets = histogram_buckets(&data, 30);
                let tag = format!("{path}/histogram");
                let value = Value { tag: &tag, plugin: "histograms", content: b"", tensor: Tensor::Buckets(&buckets) };
                self.writer(false)?.write(step as i64, &value)?;
            }
        }
        self.flush()
    }

    fn on_train_end(&mut self, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        self.flush()?;
        self.train = None;
        self.validation = None;
        Ok(())
    }
}
