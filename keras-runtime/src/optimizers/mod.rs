//! Optimizers: Keras 3's update rules over the whole parameter arena, one kernel per step.
//!
//! A configuration ([`Sgd`], [`Adam`]) is what the user writes; `compile` turns it into an
//! [`Optimizer`] for the model's backend, whose state buffers are allocated on the first step.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::backend::Backend;
use crate::{Error, Result};

/// An optimizer bound to a backend, holding its state (momentum, moments, iteration count).
pub trait Optimizer<B: Backend>: Send {
    /// The Keras name (`sgd`, `adam`).
    fn name(&self) -> &'static str;
    /// The current learning rate.
    fn learning_rate(&self) -> f32;
    /// Replaces the learning rate (for schedules and callbacks).
    fn set_learning_rate(&mut self, lr: f32);
    /// Updates applied so far (Keras's `optimizer.iterations`).
    fn iterations(&self) -> u64;
    /// One update of every parameter from its gradient.
    fn apply(&mut self, device: &B, params: B::ViewMut<'_>, grads: B::View<'_>) -> Result<()>;
}

/// What `compile` accepts as an optimizer: a configuration ([`Sgd`], [`Adam`]) or a Keras name
/// (`"sgd"`, `"adam"`) for the defaults.
pub trait IntoOptimizer {
    /// The optimizer, or an error that names the bad setting.
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        match self {
            "sgd" => Sgd::default().into_optimizer(),
            "adam" => Adam::default().into_optimizer(),
            other => Err(Error::Unknown { kind: "optimizer", name: other.to_string(), expected: "sgd, adam".to_string() }),
        }
    }
}

/// Checks that `value` is finite and within `range` (inclusive bounds where `closed`).
pub(crate) fn check(what: &str, value: f32, lo: f32, hi: f32, lo_closed: bool, hi_closed: bool) -> Result<()> {
    let ok = value.is_finite() && (if lo_closed { value >= lo } else { value > lo }) && (if hi_closed { value <= hi } else { value < hi });
    if ok {
        return Ok(());
    }
    let range = format!(
        "{}{lo}, {}{}",
        if lo_closed { "[" } else { "(" },
        if hi.is_infinite() { "inf".to_string() } else { hi.to_string() },
        if hi_closed { "]" } else { ")" }
    );
    Err(Error::value(what, format!("a finite number in {range}"), value))
}
