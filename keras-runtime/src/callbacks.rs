//! The standard callbacks of Keras: [`EarlyStopping`], [`ReduceLROnPlateau`],
//! [`LearningRateScheduler`], [`TerminateOnNaN`], [`CSVLogger`], [`LambdaCallback`],
//! [`ModelCheckpoint`], [`BackupAndRestore`] and [`TensorBoard`].
//!
//! Pass them to `fit` (`FitArgs::default().callback(&mut early_stopping)`), or drive them from
//! your own loop: every hook takes the compiled model as its [`Control`].
//!
//! ```
//! use keras_runtime::FitArgs;
//! use keras_runtime::callbacks::{EarlyStopping, ReduceLROnPlateau};
//! let mut stop = EarlyStopping::new().monitor("val_loss").patience(3).restore_best_weights(true);
//! let mut slow_down = ReduceLROnPlateau::new().factor(0.5).patience(2);
//! let args = FitArgs::default().epochs(100).validation_split(0.2).callback(&mut stop).callback(&mut slow_down);
//! # drop(args);
//! ```

pub use crate::train::{Callback, Control};
pub use tensorboard::{TensorBoard, UpdateFreq};

mod tensorboard;

use crate::train::Logs;
use crate::{Error, Result};
use ndarray::ArrayD;
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which way a monitored value improves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Inferred from the name: losses and errors go down, accuracies, AUC, precision, recall,
    /// F1 and R² go up.
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Whether lower values of the logged quantity `name` are better, as Keras infers it from the
/// metric; `None` for a name whose direction is not known.
fn lower_is_better(name: &str) -> Option<bool> {
    let base = name.strip_prefix("val_").unwrap_or(name);
    const UP: [&str; 6] = ["accuracy", "auc", "precision", "recall", "f1_score", "r2_score"];
    const DOWN: [&str; 21] = [
        "loss",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "root_mean_squared_error",
        "mse",
        "mae",
        "mape",
        "msle",
        "rmse",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "poisson",
        "log_cosh",
        "logcosh",
    ];
    if DOWN.contains(&base) {
        Some(true)
    } else if UP.iter().any(|u| base == *u || base.ends_with(&format!("_{u}"))) {
        Some(false)
    } else {
        None
    }
}

/// The monitored quantity of [`EarlyStopping`] and [`ReduceLROnPlateau`] (Keras's
/// `MonitorCallback`): its name, its direction and the smallest change that counts.
#[derive(Clone, Debug)]
struct Monitor {
    name: Cow<'static, str>,
    mode: Mode,
    min_delta: f64,
}

impl Monitor {
    /// Whether lower is better, or the error Keras raises for an unknown direction.
    fn lower_is_better(&self, owner: &str) -> Result<bool> {
        match self.mode {
            Mode::Min => Ok(true),
            Mode::Max => Ok(false),
            Mode::Auto => lower_is_better(&self.name).ok_or_else(|| {
                Error::Config(format!(
                    "{owner} monitors `{}`, whose direction cannot be inferred: pass `.mode(Mode::Max)` to keep the highest \
                     value or `.mode(Mode::Min)` to keep the lowest",
                    self.name
                ))
            }),
        }
    }

    /// The monitored value in `logs`, or an error naming the values that are there.
    fn value(&self, logs: &Logs, owner: &str) -> Result<f64> {
        logs.get(&self.name).map(f64::from).ok_or_else(|| {
            let have: Vec<&str> = logs.iter().map(|(n, _)| n).collect();
            Error::Config(format!("{owner} monitors `{}`, which is not logged (logged: {})", self.name, have.join(", ")))
        })
    }

    /// Whether `current` beats `reference` by more than `min_delta` (always, without a reference).
    fn is_improvement(&self, lower: bool, current: f64, reference: Option<f64>) -> bool {
        match reference {
            None => true,
            Some(r) if lower => current - self.min_delta < r,
            Some(r) => current - self.min_delta > r,
        }
    }

    /// Keras stores `-|min_delta|` for quantities that go down.
    fn signed(&mut self, lower: bool) {
        self.min_delta = if lower { -self.min_delta.abs() } else { self.min_delta.abs() };
    }
}

/// Stops training when a monitored quantity has stopped improving (Keras's `EarlyStopping`).
///
/// Defaults as in Keras: monitor `val_loss`, `min_delta` 0, `patience` 0, mode auto, no
/// baseline, weights not restored.
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    verbose: u8,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    wait: usize,
    stopped_epoch: usize,
    best: Option<f64>,
    best_weights: Option<Vec<ArrayD<f32>>>,
    best_epoch: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: Monitor { name: Cow::Borrowed("val_loss"), mode: Mode::Auto, min_delta: 0.0 },
            patience: 0,
            verbose: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            stopped_epoch: 0,
            best: None,
            best_weights: None,
            best_epoch: 0,
        }
    }
}

impl EarlyStopping {
    /// Early stopping with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The logged quantity to watch (default `val_loss`).
    pub fn monitor(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.monitor.name = name.into();
        self
    }
    /// The smallest change that counts as an improvement (default 0).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }
    /// Epochs without improvement after which training stops (default 0).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// 1 prints a line when stopping and when restoring weights (default 0).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
    /// Whether the quantity should go down or up (default inferred from its name).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// A value the quantity must beat for the patience counter to reset.
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }
    /// Restores the weights of the best epoch when training ends (default false).
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
    /// Epochs to wait before watching starts (default 0).
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }
    /// The epoch (0-based) at which training was stopped, if it was.
    pub fn stopped_epoch(&self) -> Option<usize> {
        (self.stopped_epoch > 0).then_some(self.stopped_epoch)
    }
    /// The epoch (0-based) with the best value seen.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
    /// The best value seen.
    pub fn best(&self) -> Option<f64> {
        self.best
    }
}

impl Callback for EarlyStopping {
    fn wants_batch_logs(&self) -> bool {
        false
    }

    fn on_train_begin(&mut self, _control: &mut dyn Control) -> Result<()> {
        let lower = self.monitor.lower_is_better("EarlyStopping")?;
        self.monitor.signed(lower);
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best = None;
        self.best_weights = None;
        self.best_epoch = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        let current = self.monitor.value(logs, "EarlyStopping")?;
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        let lower = self.monitor.lower_is_better("EarlyStopping")?;
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(control.get_weights()?);
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.is_improvement(lower, current, self.best) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(control.get_weights()?);
            }
            if self.baseline.is_none() || self.monitor.is_improvement(lower, current, self.baseline) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            control.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, control: &mut dyn Control) -> Result<()> {
        if self.stopped_epoch > 0 && self.verbose > 0 {
            println!("Epoch {}: early stopping", self.stopped_epoch + 1);
        }
        if self.restore_best_weights
            && let Some(w) = &self.best_weights
        {
            if self.verbose > 0 {
                println!("Restoring model weights from the end of the best epoch: {}.", self.best_epoch + 1);
            }
            control.set_weights(w)?;
        }
        Ok(())
    }
}

/// Lowers the learning rate when a monitored quantity has stopped improving (Keras's
/// `ReduceLROnPlateau`); adds `learning_rate` to each epoch's logs.
///
/// Defaults as in Keras: monitor `val_loss`, `factor` 0.1, `patience` 10, `min_delta` 1e-4,
/// `cooldown` 0, `min_lr` 0.
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    verbose: u8,
    cooldown: usize,
    min_lr: f64,
    cooldown_counter: usize,
    wait: usize,
    best: Option<f64>,
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau {
            monitor: Monitor { name: Cow::Borrowed("val_loss"), mode: Mode::Auto, min_delta: 1e-4 },
            factor: 0.1,
            patience: 10,
            verbose: 0,
            cooldown: 0,
            min_lr: 0.0,
            cooldown_counter: 0,
            wait: 0,
            best: None,
        }
    }
}

impl ReduceLROnPlateau {
    /// The callback with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The logged quantity to watch (default `val_loss`).
    pub fn monitor(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.monitor.name = name.into();
        self
    }
    /// The factor the learning rate is multiplied by, in (0, 1) (default 0.1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    /// Epochs without improvement before the rate is lowered (default 10).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// 1 prints a line each time the rate is lowered (default 0).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
    /// Whether the quantity should go down or up (default inferred from its name).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// The smallest change that counts as an improvement (default 1e-4).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }
    /// Epochs to wait after lowering the rate before watching again (default 0).
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }
    /// The lowest learning rate (default 0).
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
}

impl Callback for ReduceLROnPlateau {
    fn wants_batch_logs(&self) -> bool {
        false
    }

    fn on_train_begin(&mut self, control: &mut dyn Control) -> Result<()> {
        // An optimizer whose rate a schedule drives cannot be lowered: say so before training,
        // not at the first plateau (setting the rate it has changes nothing).
        control.set_learning_rate(control.learning_rate()).map_err(|e| Error::Config(format!("ReduceLROnPlateau: {e}")))?;
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::value("ReduceLROnPlateau factor", "a number in (0, 1)", self.factor));
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::value("ReduceLROnPlateau min_lr", "a finite number >= 0", self.min_lr));
        }
        let lower = self.monitor.lower_is_better("ReduceLROnPlateau")?;
        self.monitor.signed(lower);
        self.best = None;
        self.cooldown_counter = 0;
        self.wait = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        logs.set("learning_rate", control.learning_rate());
        let current = self.monitor.value(logs, "ReduceLROnPlateau")?;
        let lower = self.monitor.lower_is_better("ReduceLROnPlateau")?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.is_improvement(lower, current, self.best) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = f64::from(control.learning_rate());
                if old > f64::from(self.min_lr as f32) {
                    let new = (old * self.factor).max(self.min_lr);
                    control.set_learning_rate(new as f32)?;
                    if self.verbose > 0 {
                        println!("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.", epoch + 1, py_float(new));
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Sets the learning rate at the start of each epoch from a function of the epoch (0-based) and
/// the current rate (Keras's `LearningRateScheduler`); adds `learning_rate` to each epoch's logs.
pub struct LearningRateScheduler<F> {
    schedule: F,
    verbose: u8,
}

impl<F: FnMut(usize, f32) -> f32> LearningRateScheduler<F> {
    /// A scheduler calling `schedule(epoch, current_rate)`.
    pub fn new(schedule: F) -> Self {
        LearningRateScheduler { schedule, verbose: 0 }
    }
    /// 1 prints the rate set at each epoch (default 0).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
}

impl<F: FnMut(usize, f32) -> f32> Callback for LearningRateScheduler<F> {
    fn on_epoch_begin(&mut self, epoch: usize, control: &mut dyn Control) -> Result<()> {
        let lr = (self.schedule)(epoch, control.learning_rate());
        control
            .set_learning_rate(lr)
            .map_err(|e| Error::Config(format!("LearningRateScheduler: the schedule returned {lr} at epoch {epoch}: {e}")))?;
        if self.verbose > 0 {
            println!("\nEpoch {}: LearningRateScheduler setting learning rate to {}.", epoch + 1, py_float32(lr));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        logs.set("learning_rate", control.learning_rate());
        Ok(())
    }
}

/// Stops training at the first batch whose loss is NaN or infinite (Keras's `TerminateOnNaN`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNaN {
    raise_error: bool,
}

impl TerminateOnNaN {
    /// Stops training and prints a line.
    pub fn new() -> Self {
        Self::default()
    }
    /// Instead of stopping quietly, makes `fit` return an error.
    pub fn raise_error(mut self, raise: bool) -> Self {
        self.raise_error = raise;
        self
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, control: &mut dyn Control) -> Result<()> {
        match logs.get("loss") {
            Some(loss) if !loss.is_finite() => {
                if self.raise_error {
                    return Err(Error::Config(format!(
                        "NaN or Inf loss encountered at batch {batch}. Loss value: {}. Terminating training immediately.",
                        py_float(f64::from(loss))
                    )));
                }
                println!("Batch {batch}: Invalid loss, terminating training");
                control.stop_training();
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Streams each epoch's logs to a CSV file (Keras's `CSVLogger`): an `epoch` column, then the
/// logged names sorted (with `val_` columns even before validation values exist).
pub struct CSVLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    keys: Option<Vec<String>>,
    write_header: bool,
}

impl CSVLogger {
    /// A logger writing to `path` (replacing it when training starts).
    pub fn new(path: impl AsRef<Path>) -> Self {
        CSVLogger { path: path.as_ref().to_path_buf(), separator: ',', append: false, file: None, keys: None, write_header: true }
    }
    /// The column separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }
    /// Appends to an existing file instead of replacing it (for resumed training).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.path.display().to_string(), source }
    }
}

impl Callback for CSVLogger {
    fn wants_batch_logs(&self) -> bool {
        false
    }

    fn on_train_begin(&mut self, control: &mut dyn Control) -> Result<()> {
        // In a data-parallel job rank 0 writes the file (every rank logs the same values).
        self.file = None;
        if !control.is_chief() {
            return Ok(());
        }
        self.write_header = true;
        if self.append {
            self.write_header = std::fs::read_to_string(&self.path).map(|t| t.lines().next().is_none_or(str::is_empty)).unwrap_or(true);
        }
        let file = OpenOptions::new().create(true).write(true).append(self.append).truncate(!self.append).open(&self.path);
        self.file = Some(file.map_err(|e| self.io(e))?);
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        if !control.is_chief() {
            return Ok(());
        }
        let keys = self.keys.get_or_insert_with(|| {
            let mut keys: Vec<String> = logs.iter().map(|(n, _)| n.to_string()).collect();
            if !keys.iter().any(|k| k.starts_with("val_")) {
                let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(val);
            }
            keys
        });
        let sep = self.separator.to_string();
        let mut text = String::new();
        if std::mem::take(&mut self.write_header) {
            text += &format!("epoch{sep}{}\r\n", keys.join(&sep));
        }
        let values: Vec<String> = keys.iter().map(|k| logs.get(k).map_or("NA".to_string(), |v| py_float(f64::from(v)))).collect();
        text += &format!("{epoch}{sep}{}\r\n", values.join(&sep));
        let file = self.file.as_mut().ok_or_else(|| Error::Config("CSVLogger: on_epoch_end before on_train_begin".to_string()))?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.flush());
        written.map_err(|e| self.io(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

/// Saves the model's weights at the end of each epoch, or every `n` batches with
/// [`ModelCheckpoint::save_freq`] (Keras's `ModelCheckpoint` with `save_weights_only=True`), to a
/// safetensors file written atomically.
///
/// The path may hold Python format fields filled from the epoch (1-based, as Keras counts), the
/// batch (1-based within the epoch, for saves every `n` batches) and the logs:
/// `"ckpt/weights.{epoch:02d}-{val_loss:.2f}.safetensors"`. Fields are `{name}`, `{name:0Nd}`
/// (integers) and `{name:.Nf}` (fixed point); an unknown name is an error.
///
/// Defaults as in Keras: monitor `val_loss`, mode auto, every epoch saved, silent. With
/// `save_best_only`, a save whose monitored value is not logged (`val_loss` within an epoch)
/// happens, with a warning, as in Keras.
///
/// ```
/// use keras_runtime::callbacks::ModelCheckpoint;
/// let mut best = ModelCheckpoint::new("best.safetensors").monitor("val_accuracy").save_best_only(true);
/// let mut often = ModelCheckpoint::new("ckpt/{epoch}-{batch}.safetensors").save_freq(500);
/// # drop((best, often));
/// ```
pub struct ModelCheckpoint {
    filepath: String,
    monitor: Monitor,
    save_best_only: bool,
    verbose: u8,
    best: Option<f64>,
    save_freq: SaveFreq,
    /// The epoch under way (for saves within it).
    epoch: usize,
    /// The last batch seen and the batches seen since the last save (`SaveFreq::Batches`).
    last_batch: Option<usize>,
    since_save: usize,
}

/// When [`ModelCheckpoint`] saves: at the end of every epoch (Keras's `save_freq="epoch"`, the
/// default), or after every `n` training batches counted across epochs (`save_freq=n`; the
/// filepath may then name `{batch}`, and the monitored value is the epoch's running value,
/// as Keras's batch logs hold it). `ModelCheckpoint::save_freq(100)` takes a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFreq {
    /// At the end of each epoch.
    Epoch,
    /// After every `n` training batches.
    Batches(usize),
}

impl From<usize> for SaveFreq {
    fn from(n: usize) -> Self {
        SaveFreq::Batches(n)
    }
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a path, possibly with format fields).
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: Monitor { name: Cow::Borrowed("val_loss"), mode: Mode::Auto, min_delta: 0.0 },
            save_best_only: false,
            verbose: 0,
            best: None,
            save_freq: SaveFreq::Epoch,
            epoch: 0,
            last_batch: None,
            since_save: 0,
        }
    }

    /// When to save: [`SaveFreq::Epoch`] (default) or every `n` batches (`.save_freq(500)`).
    pub fn save_freq(mut self, freq: impl Into<SaveFreq>) -> Self {
        self.save_freq = freq.into();
        self
    }

    /// The logged quantity that decides what is best (default `val_loss`).
    pub fn monitor(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.monitor.name = name.into();
        self
    }

    /// Whether lower or higher values of the monitored quantity are better (default: inferred).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Saves only when the monitored quantity improves on the best seen (default false).
    pub fn save_best_only(mut self, save_best_only: bool) -> Self {
        self.save_best_only = save_best_only;
        self
    }

    /// The value to beat before the first save (default: none, the first epoch is an improvement).
    pub fn initial_value_threshold(mut self, threshold: f64) -> Self {
        self.best = Some(threshold);
        self
    }

    /// 0 = silent (default), 1 = a message for each save (or skipped save).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// The best value of the monitored quantity so far (with `save_best_only`).
    pub fn best(&self) -> Option<f64> {
        self.best
    }

    /// Whether to save after `epoch` (0-based), with Keras's messages.
    fn should_save(&mut self, epoch: usize, logs: &Logs, filepath: &str) -> Result<bool> {
        if !self.save_best_only {
            if self.verbose > 0 {
                println!("\nEpoch {}: saving model to {filepath}", epoch + 1);
            }
            return Ok(true);
        }
        let Some(current) = logs.get(&self.monitor.name).map(f64::from) else {
            // As Keras 3.15: a warning, and the save.
            eprintln!("ModelCheckpoint: can save best model only with {} available", self.monitor.name);
            return Ok(true);
        };
        let lower = self.monitor.lower_is_better("ModelCheckpoint")?;
        let best = self.best.map_or_else(|| "None".to_string(), |b| format!("{b:.5}"));
        if self.monitor.is_improvement(lower, current, self.best) {
            if self.verbose > 0 {
                println!("\nEpoch {}: {} improved from {best} to {current:.5}, saving model to {filepath}", epoch + 1, self.monitor.name);
            }
            self.best = Some(current);
            Ok(true)
        } else {
            if self.verbose > 0 {
                println!("\nEpoch {}: {} did not improve from {best}", epoch + 1, self.monitor.name);
            }
            Ok(false)
        }
    }
}

impl ModelCheckpoint {
    /// Whether `batch` (0-based within the epoch) completes `n` batches since the last save,
    /// as Keras counts them across epochs.
    fn batch_due(&mut self, batch: usize, n: usize) -> bool {
        let added = match self.last_batch {
            Some(last) if batch > last => batch - last,
            _ => batch + 1,
        };
        self.last_batch = Some(batch);
        self.since_save += added;
        if self.since_save >= n {
            self.since_save = 0;
            true
        } else {
            false
        }
    }
}

impl Callback for ModelCheckpoint {
    fn wants_batch_logs(&self) -> bool {
        matches!(self.save_freq, SaveFreq::Batches(_))
    }

    fn on_train_begin(&mut self, _control: &mut dyn Control) -> Result<()> {
        if self.save_freq == SaveFreq::Batches(0) {
            return Err(Error::value("ModelCheckpoint save_freq", "SaveFreq::Epoch or a number of batches >= 1", 0));
        }
        if self.save_best_only {
            self.monitor.lower_is_better("ModelCheckpoint")?;
        }
        // (The batch count runs on across `fit` calls, as Keras's does.)
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, _control: &mut dyn Control) -> Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, control: &mut dyn Control) -> Result<()> {
        let SaveFreq::Batches(n) = self.save_freq else { return Ok(()) };
        if !self.batch_due(batch, n) {
            return Ok(());
        }
        let filepath = format_path_at(&self.filepath, self.epoch + 1, Some(batch + 1), logs)?;
        if self.should_save(self.epoch, logs, &filepath)? && control.is_chief() {
            control.save_weights(Path::new(&filepath))?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        if self.save_freq != SaveFreq::Epoch {
            return Ok(());
        }
        let filepath = format_path(&self.filepath, epoch + 1, logs)?;
        // Every rank decides alike (the logs are the job's); rank 0 writes.
        if self.should_save(epoch, logs, &filepath)? && control.is_chief() {
            // (Missing directories are made by the atomic write.)
            control.save_weights(Path::new(&filepath))?;
        }
        Ok(())
    }
}

/// Fills the Python format fields of a checkpoint path (`{epoch:02d}`, `{val_loss:.2f}`) from the
/// 1-based `epoch` and the epoch's logs, as Keras's `filepath.format(epoch=..., **logs)`.
pub fn format_path(template: &str, epoch: usize, logs: &Logs) -> Result<String> {
    format_path_at(template, epoch, None, logs)
}

/// [`format_path`] with the 1-based `batch` for a save within an epoch (`{batch}`).
fn format_path_at(template: &str, epoch: usize, batch: Option<usize>, logs: &Logs) -> Result<String> {
    let bad = |what: String| {
        Error::value(
            format!("ModelCheckpoint filepath `{template}`"),
            "Python format fields such as {epoch:02d} or {val_loss:.4f} naming `epoch` or a logged value",
            what,
        )
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            out.push(c as char);
            rest = &after[1..];
            continue;
        }
        if c == b'}' {
            return Err(bad("a single `}`".to_string()));
        }
        let end = after.find('}').ok_or_else(|| bad("an unclosed `{`".to_string()))?;
        let field = &after[..end];
        let (name, spec) = field.split_once(':').unwrap_or((field, ""));
        enum Value {
            Int(usize),
            Float(f64),
        }
        let value = if name == "epoch" {
            Value::Int(epoch)
        } else if let (Some(b), "batch") = (batch, name) {
            Value::Int(b)
        } else if let Some(v) = logs.get(name) {
            Value::Float(f64::from(v))
        } else {
            let fields = if batch.is_some() { &["epoch", "batch"][..] } else { &["epoch"][..] };
            let have: Vec<&str> = fields.iter().copied().chain(logs.iter().map(|(n, _)| n)).collect();
            return Err(bad(format!("unknown field `{name}` (known: {})", have.join(", "))));
        };
        let zero = spec.starts_with('0');
        let spec_rest = spec.trim_start_matches('0');
        let (kind, body) = match spec_rest.chars().last() {
            Some(k @ ('d' | 'f')) => (Some(k), &spec_rest[..spec_rest.len() - 1]),
            _ => (None, spec_rest),
        };
        let (width, precision) = body.split_once('.').map_or((body, None), |(w, p)| (w, Some(p)));
        let parse = |s: &str| -> Result<Option<usize>> {
            if s.is_empty() { Ok(None) } else { s.parse().map(Some).map_err(|_| bad(format!("the format spec `{spec}` of `{name}`"))) }
        };
        let width = parse(width)?.unwrap_or(0);
        let precision = match precision {
            Some(p) => Some(parse(p)?.ok_or_else(|| bad(format!("the format spec `{spec}` of `{name}`")))?),
            None => None,
        };
        let text = match (kind, &value, precision) {
            (None, Value::Int(n), None) | (Some('d'), Value::Int(n), None) => n.to_string(),
            (None, Value::Float(v), None) => py_float(*v),
            (Some('f'), Value::Int(n), p) => format!("{:.*}", p.unwrap_or(6), *n as f64),
            (Some('f'), Value::Float(v), p) => format!("{:.*}", p.unwrap_or(6), v),
            _ => return Err(bad(format!("the format spec `{spec}`, which does not apply to `{name}`"))),
        };
        let pad = width.saturating_sub(text.chars().count());
        if zero {
            // Python puts zero padding after the sign.
            let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |d| ("-", d));
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Backs up the training state at the end of each epoch and resumes from it after an
/// interruption (Keras's `BackupAndRestore` with `save_freq="epoch"`).
///
/// At the end of each epoch it saves the weights, the optimizer's variables and the epoch to
/// `{backup_dir}/training_state.safetensors` (atomically: an interruption mid-save leaves the
/// previous backup). When training begins and a backup exists, it restores it and `fit`
/// continues after the saved epoch. When `fit` completes, the backup is deleted (Keras's
/// `delete_checkpoint=True`). Run with `shuffle(false)` for a resumed run to end with the same
/// weights as an uninterrupted one: the shuffling order is not part of the backup.
///
/// ```
/// use keras_runtime::callbacks::BackupAndRestore;
/// let mut backup = BackupAndRestore::new("/tmp/backup");
/// # drop(backup);
/// ```
pub struct BackupAndRestore {
    backup_dir: PathBuf,
    delete_checkpoint: bool,
}

impl BackupAndRestore {
    /// Backs up into `backup_dir` (created when needed).
    pub fn new(backup_dir: impl AsRef<Path>) -> Self {
        BackupAndRestore { backup_dir: backup_dir.as_ref().to_path_buf(), delete_checkpoint: true }
    }

    /// Whether to delete the backup when training completes (default true).
    pub fn delete_checkpoint(mut self, delete: bool) -> Self {
        self.delete_checkpoint = delete;
        self
    }

    /// The backup file.
    pub fn backup_path(&self) -> PathBuf {
        self.backup_dir.join("training_state.safetensors")
    }
}

impl Callback for BackupAndRestore {
    fn wants_batch_logs(&self) -> bool {
        false
    }

    fn on_train_begin(&mut self, control: &mut dyn Control) -> Result<()> {
        let path = self.backup_path();
        // In a data-parallel job rank 0 sees whether a backup exists, and every rank restores
        // it (the backup directory is on a file system every rank reads).
        if control.chief_decides(path.exists()) {
            let epoch = control.load_state(&path)?;
            control.set_initial_epoch(epoch);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, _logs: &mut Logs, control: &mut dyn Control) -> Result<()> {
        if !control.is_chief() {
            return Ok(());
        }
        control.save_state(&self.backup_path(), epoch + 1)
    }

    fn on_train_end(&mut self, _logs: &Logs, control: &mut dyn Control) -> Result<()> {
        if self.delete_checkpoint && control.is_chief() {
            let path = self.backup_path();
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: path.display().to_string(), source }),
            }
            // The directory goes too when nothing else is in it (Keras removes it).
            let _ = std::fs::remove_dir(&self.backup_dir);
        }
        Ok(())
    }
}

/// A float as Python's `str` writes it (`0.5`, `1e-05`, `nan`), as Keras's files and messages
/// show values.
/// An `f32` as Python's `str` writes the number it stands for: its shortest decimal (`0.001`,
/// where widening to `f64` would show `0.0010000000474974513`).
fn py_float32(v: f32) -> String {
    py_float(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
}

fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("`{:e}` writes an exponent");
        let exp: i32 = exp.parse().expect("integer exponent");
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let s = v.to_string();
    if s.contains('.') { s } else { s + ".0" }
}

type EpochHook<'a> = Box<dyn FnMut(usize, &Logs) + 'a>;
type BatchHook<'a> = Box<dyn FnMut(usize, &Logs) + 'a>;
type TrainHook<'a> = Box<dyn FnMut(&Logs) + 'a>;

/// A callback made of closures (Keras's `LambdaCallback`):
/// `LambdaCallback::new().on_epoch_end(|epoch, logs| println!("{epoch}: {logs}"))`. The closures
/// may borrow from their surroundings for as long as the callback lives:
///
/// ```
/// use keras_runtime::callbacks::LambdaCallback;
/// let mut losses = Vec::new();
/// let mut record = LambdaCallback::new().on_epoch_end(|_, logs| losses.push(logs.loss()));
/// # drop(record);
/// ```
#[derive(Default)]
pub struct LambdaCallback<'a> {
    train_begin: Option<Box<dyn FnMut() + 'a>>,
    epoch_begin: Option<Box<dyn FnMut(usize) + 'a>>,
    batch_end: Option<BatchHook<'a>>,
    epoch_end: Option<EpochHook<'a>>,
    train_end: Option<TrainHook<'a>>,
}

impl<'a> LambdaCallback<'a> {
    /// A callback that does nothing until given closures.
    pub fn new() -> Self {
        Self::default()
    }
    /// Called before the first epoch.
    pub fn on_train_begin(mut self, f: impl FnMut() + 'a) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }
    /// Called with the epoch (0-based) before each epoch.
    pub fn on_epoch_begin(mut self, f: impl FnMut(usize) + 'a) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }
    /// Called with the batch index and the epoch's running values after each training batch.
    pub fn on_batch_end(mut self, f: impl FnMut(usize, &Logs) + 'a) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
    /// Called with the epoch and its values after each epoch.
    pub fn on_epoch_end(mut self, f: impl FnMut(usize, &Logs) + 'a) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }
    /// Called with the last epoch's values when training ends.
    pub fn on_train_end(mut self, f: impl FnMut(&Logs) + 'a) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback<'_> {
    fn wants_batch_logs(&self) -> bool {
        self.batch_end.is_some()
    }

    fn on_train_begin(&mut self, _control: &mut dyn Control) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f();
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, epoch: usize, _control: &mut dyn Control) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch);
        }
        Ok(())
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        if let Some(f) = &mut self.batch_end {
            f(batch, logs);
        }
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _control: &mut dyn Control) -> Result<()> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, logs);
        }
        Ok(())
    }
    fn on_train_end(&mut self, logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(logs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        assert_eq!(py_float32(0.001), "0.001");
        assert_eq!(py_float32(1e-5), "1e-05");
        assert_eq!(py_float(f64::from(0.001f32)), "0.0010000000474974513");
        assert_eq!(py_float(0.5), "0.5");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1.5e-7), "1.5e-07");
        assert_eq!(py_float(f64::from(0.3f32)), "0.30000001192092896");
        assert_eq!(py_float(f64::NAN), "nan");
        assert_eq!(py_float(1e20), "1e+20");
    }

    #[test]
    fn checkpoint_paths_format_as_python() {
        let mut logs = Logs::new();
        logs.set("val_loss", 0.41234f32);
        logs.set("loss", -1.5f32);
        assert_eq!(format_path("w.{epoch:02d}-{val_loss:.2f}.st", 3, &logs).unwrap(), "w.03-0.41.st");
        assert_eq!(format_path("w{epoch}_{loss:08.3f}{{x}}", 12, &logs).unwrap(), "w12_-001.500{x}");
        assert_eq!(format_path("{epoch:4d}|{epoch:.1f}", 7, &logs).unwrap(), "   7|7.0");
        assert_eq!(format_path("{loss}", 1, &logs).unwrap(), "-1.5");
        let err = format_path("w.{val_acc:.2f}", 1, &logs).unwrap_err().to_string();
        assert!(err.contains("unknown field `val_acc`") && err.contains("val_loss"), "{err}");
        assert!(format_path("w.{loss:02d}", 1, &logs).is_err());
        assert!(format_path("w.{epoch", 1, &logs).is_err());
        assert!(format_path("w.}", 1, &logs).is_err());
    }

    #[test]
    fn directions_follow_keras() {
        assert_eq!(lower_is_better("val_loss"), Some(true));
        assert_eq!(lower_is_better("val_accuracy"), Some(false));
        assert_eq!(lower_is_better("sparse_categorical_accuracy"), Some(false));
        assert_eq!(lower_is_better("auc"), Some(false));
        assert_eq!(lower_is_better("val_mae"), Some(true));
        assert_eq!(lower_is_better("my_thing"), None);
    }
}
