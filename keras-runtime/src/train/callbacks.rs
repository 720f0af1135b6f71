//! The callback interface: code that `fit` (or a user's own loop) calls at the start and end of
//! training, epochs and batches. The standard callbacks are in [`crate::callbacks`].

use super::logs::Logs;
use crate::Result;
use ndarray::ArrayD;
use std::path::Path;

/// What a callback may do to the training it observes. `fit` passes the compiled model; a
/// user's own loop passes it too (`Compiled` implements this trait).
pub trait Control {
    /// Ends training after the current batch (Keras's `model.stop_training = True`).
    fn stop_training(&mut self);
    /// The optimizer's current learning rate.
    fn learning_rate(&self) -> f32;
    /// Replaces the optimizer's learning rate; an error where it cannot be set (a schedule
    /// drives it).
    fn set_learning_rate(&mut self, lr: f32) -> Result<()>;
    /// The model's weights, in Keras order.
    fn get_weights(&self) -> Result<Vec<ArrayD<f32>>>;
    /// Replaces the model's weights.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()>;
    /// Saves the model's weights to a safetensors file, atomically (see
    /// [`crate::Network::save_weights`]).
    fn save_weights(&self, path: &Path) -> Result<()>;
    /// Saves the training state after `epoch` completed epochs (see [`crate::Compiled::save_state`]).
    fn save_state(&self, path: &Path, epoch: usize) -> Result<()>;
    /// Restores a training state and returns its epoch (see [`crate::Compiled::load_state`]).
    fn load_state(&mut self, path: &Path) -> Result<usize>;
    /// Makes `fit` start at `epoch` (0-based) instead of its `initial_epoch`; only takes effect
    /// when called from [`Callback::on_train_begin`] (Keras's `model._initial_epoch`, set by
    /// `BackupAndRestore`).
    fn set_initial_epoch(&mut self, epoch: usize);
    /// Updates the optimizer has applied (Keras's `optimizer.iterations`), across `fit`s.
    fn iterations(&self) -> u64;
    /// Each weight's path as Keras 3 names its variable (`variable.path`), in the order of
    /// [`Control::get_weights`]: `dense/kernel` in a functional model, and under the model's
    /// name, `mlp/dense/kernel`, in a Sequential one (whose layers Keras builds in the model's
    /// scope).
    fn weight_paths(&self) -> Vec<String>;
    /// The model's Keras config as JSON, as Keras's `model.to_json()` writes it (the
    /// `config.json` of a `.keras` file).
    fn to_json(&self) -> String;
    /// Whether this process writes files and draws progress: rank 0 of a data-parallel job
    /// (see [`crate::distribution`]), or the only process.
    fn is_chief(&self) -> bool {
        true
    }
    /// Rank 0's `value` on every rank of a data-parallel job (`value` itself outside one): for a
    /// decision that rests on what only rank 0 can see, such as a file.
    fn chief_decides(&mut self, value: bool) -> bool {
        value
    }
}

/// Hooks called during training; every method does nothing by default. An error stops `fit`
/// and is returned by it.
///
/// The epoch's logs are passed mutably to [`Callback::on_epoch_end`], as Keras passes its dict:
/// what a callback adds there (`learning_rate`) appears in the progress line and the history.
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
    /// Before each epoch (0-based).
    fn on_epoch_begin(&mut self, _epoch: usize, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
    /// After each training batch (0-based within the epoch), with the epoch's running values.
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
    /// Whether [`Callback::on_train_batch_end`] reads its logs (true unless a callback says
    /// otherwise). The loss and metrics accumulate on the device; `fit` reads them back after
    /// every batch only when the progress bar or a callback needs them.
    fn wants_batch_logs(&self) -> bool {
        true
    }
    /// After each epoch, with the epoch's values (and the validation values, `val_*`).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &mut Logs, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
    /// After the last epoch, with the last epoch's values.
    fn on_train_end(&mut self, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
}
