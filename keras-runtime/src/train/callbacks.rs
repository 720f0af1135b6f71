//! Callbacks: code that `fit` calls at the start and end of training, epochs and batches.

use super::logs::Logs;
use crate::Result;
use ndarray::ArrayD;

/// What a callback may do to the training it observes.
pub trait Control {
    /// Ends training after the current batch (Keras's `model.stop_training = True`).
    fn stop_training(&mut self);
    /// The optimizer's learning rate.
    fn learning_rate(&self) -> f32;
    /// Replaces the optimizer's learning rate; an error when it comes from a schedule.
    fn set_learning_rate(&mut self, lr: f32) -> Result<()>;
    /// The model's weights, in Keras order.
    fn get_weights(&self) -> Result<Vec<ArrayD<f32>>>;
    /// Replaces the model's weights.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()>;
}

/// Hooks `fit` calls; every method does nothing by default. An error stops `fit` and is returned
/// by it.
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
    /// After each epoch, with the epoch's values (and the validation values, `val_*`).
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
    /// After the last epoch, with the last epoch's values.
    fn on_train_end(&mut self, _logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        Ok(())
    }
}

/// A callback made of a closure called at the end of each epoch (Keras's `LambdaCallback`
/// with `on_epoch_end`).
pub struct OnEpochEnd<F>(pub F);

impl<F: FnMut(usize, &Logs) -> Result<()>> Callback for OnEpochEnd<F> {
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _control: &mut dyn Control) -> Result<()> {
        (self.0)(epoch, logs)
    }
}
