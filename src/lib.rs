#![warn(missing_docs)]
#![doc = include_str!("../README.md")]

pub use keras_macros::sequential;
pub use keras_runtime::*;

/// Everything a model definition and its training need: `use keras::prelude::*;`.
pub mod prelude {
    pub use keras_macros::sequential;
    pub use keras_runtime::{Adam, Backend, Compile, Cpu, FitArgs, Loss, Metric, Model, Network, Sgd};
}
