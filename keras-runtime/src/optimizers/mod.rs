//! Optimizers: Keras 3's update rules over the whole parameter arena, one kernel per step.
//!
//! A configuration ([`Sgd`], [`Adam`], [`RmsProp`], ...) is what the user writes; `compile`
//! turns it into an [`Optimizer`] for the model's backend, whose state buffers are allocated on
//! the first step. Every configuration has Keras's defaults, takes a number or a schedule
//! ([`schedules`]) as its learning rate, and has the options every Keras optimizer has:
//! `weight_decay`, `clipnorm`, `clipvalue` and `global_clipnorm`.

mod adam;
mod adaptive;
pub(crate) mod common;
mod ftrl;
mod lion;
pub mod schedules;
mod sgd;
mod state;

pub use crate::backend::ops::{Clip, Schedule, Update, UpdateRule};
pub use adam::{Adam, AdamW, Adamax, Nadam};
pub use adaptive::{Adadelta, Adagrad, RmsProp};
pub use common::{Common, IntoOptimizer, Optimizer};
pub use ftrl::Ftrl;
pub use lion::Lion;
pub use schedules::{
    CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRate, LearningRateSchedule, PiecewiseConstantDecay, PolynomialDecay,
};
pub use sgd::Sgd;

use crate::backend::Backend;
use crate::{Error, Result};

/// The names `IntoOptimizer for &str` knows.
const NAMES: &str = "sgd, rmsprop, adagrad, adadelta, adam, adamw, adamax, nadam, lion, ftrl";

impl IntoOptimizer for &str {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        match self {
            "sgd" => Sgd::default().into_optimizer(),
            "rmsprop" => RmsProp::default().into_optimizer(),
            "adagrad" => Adagrad::default().into_optimizer(),
            "adadelta" => Adadelta::default().into_optimizer(),
            "adam" => Adam::default().into_optimizer(),
            "adamw" => AdamW::default().into_optimizer(),
            "adamax" => Adamax::default().into_optimizer(),
            "nadam" => Nadam::default().into_optimizer(),
            "lion" => Lion::default().into_optimizer(),
            "ftrl" => Ftrl::default().into_optimizer(),
            other => Err(Error::Unknown { kind: "optimizer", name: other.to_string(), expected: NAMES.to_string() }),
        }
    }
}
