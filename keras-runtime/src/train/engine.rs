//! The model operations the (non-generic) training loop drives a compiled model through.

use super::callbacks::Control;
use super::data::Table;
use super::logs::Logs;
use crate::Result;

/// Which samples of a table make a batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Batch {
    /// Consecutive samples.
    Range(usize, usize),
    /// The samples at positions `a..b` of the epoch's order ([`Engine::set_order`]).
    Shuffled(usize, usize),
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        match *self {
            Batch::Range(a, b) | Batch::Shuffled(a, b) => b - a,
        }
    }
}

/// The model operations the (non-generic) training loop needs.
pub(crate) trait Engine: Control {
    /// In a data-parallel job, tells every rank whether this one failed (`failed`): `Err` when
    /// another rank did. `Ok` outside a job.
    fn agree(&mut self, failed: Option<&crate::Error>) -> Result<()>;
    /// In a data-parallel job, checks that every rank was given the same `data`.
    fn check_same(&mut self, what: &str, data: &[&[f32]]) -> Result<()>;
    /// Holds a table on the device until [`Engine::release`], so that batches are read from
    /// there (a device that reads host memory reads it in place and holds nothing).
    fn hold(&mut self, t: &Table<'_>) -> Result<()>;
    /// Drops every held table.
    fn release(&mut self);
    /// Sets the order [`Batch::Shuffled`] batches take their samples in (once per epoch).
    fn set_order(&mut self, order: &[usize]) -> Result<()>;
    /// Runs one training step on a batch and accumulates loss and metrics; `w` holds a weight
    /// per sample of the whole table.
    fn train_batch(&mut self, x: &Table<'_>, y: &Table<'_>, w: Option<&Table<'_>>, batch: Batch) -> Result<()>;
    /// Accumulates loss and metrics of a batch in inference mode.
    fn test_batch(&mut self, x: &Table<'_>, y: &Table<'_>, w: Option<&Table<'_>>, batch: Batch) -> Result<()>;

    /// Zeroes the loss and metric accumulators.
    fn reset_metrics(&mut self) -> Result<()>;
    /// Writes the accumulated values into `logs` (names prefixed `val_` when `validation`).
    fn write_logs(&mut self, logs: &mut Logs, validation: bool) -> Result<()>;
    /// Whether a callback asked to stop; clears the request.
    fn take_stop_request(&mut self) -> bool;
    /// The epoch a callback asked `fit` to start at; clears the request.
    fn take_initial_epoch(&mut self) -> Option<usize>;
    /// The seed of this `fit`'s shuffling, and whether it was restored from a training state
    /// (then `fit` replays the shuffles of the epochs before its initial epoch).
    fn begin_shuffle(&mut self) -> (u64, bool);
    /// Checks `x` and `y` against the model and loss.
    fn check_data(&self, x: &Table<'_>, y: &Table<'_>) -> Result<()>;
}
