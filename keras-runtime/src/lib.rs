#![warn(missing_docs)]
//! The runtime of keras-rs: backends and kernels, layers, losses, metrics, optimizers, and the
//! training workflow. Users depend on the `keras` crate, which re-exports this one together with
//! the `sequential!` and `functional!` macros.

pub mod activations;
pub mod applications;
pub mod autodiff;
pub mod backend;
pub mod callbacks;
pub mod constraints;
pub mod datasets;
pub mod distribution;
pub mod error;
pub mod initializers;
pub mod io;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod optimizers;
pub mod plot;
mod plot_model;
mod random;
pub mod regularizers;
pub mod summary;
pub mod train;
pub mod utils;

pub use backend::{Backend, Cpu};
pub use error::{Error, Result};
pub use losses::{Loss, LossConfig};
pub use metrics::Metric;
pub use model::Model;
pub use optimizers::{
    Adadelta, Adagrad, Adam, AdamW, Adamax, CosineDecay, ExponentialDecay, Ftrl, InverseTimeDecay, LearningRate, LearningRateSchedule,
    Lion, Nadam, PiecewiseConstantDecay, PolynomialDecay, RmsProp, Sgd,
};
pub use plot::Plot;
pub use train::{Callback, Compile, Compiled, Control, FitArgs, History, Inputs, Logs, Network};

/// Re-exported so generated code and users name one `ndarray`.
pub use ndarray;
