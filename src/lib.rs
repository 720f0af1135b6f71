#![warn(missing_docs)]
#![doc = include_str!("../README.md")]

pub use keras_macros::{application, functional, sequential};
pub use keras_runtime::*;

// The macros name `::keras::..`: inside this crate too (`applications`).
extern crate self as keras;

pub mod applications;

/// Everything a model definition and its training need: `use keras::prelude::*;`.
pub mod prelude {
    pub use keras_macros::{application, functional, sequential};
    pub use keras_runtime::{
        Adadelta, Adagrad, Adam, AdamW, Adamax, Backend, Compile, Compiled, CosineDecay, Cpu, ExponentialDecay, FitArgs, Ftrl,
        InverseTimeDecay, Lion, Loss, Metric, Model, Nadam, Network, PiecewiseConstantDecay, PolynomialDecay, RmsProp, Sgd,
    };
    // The traits again, unnamed: their methods stay in scope when a model of the user's takes
    // one of their names (`struct Network = ..` shadows the glob-imported `Network`).
    pub use keras_runtime::{Backend as _, Compile as _, Model as _, Network as _};
    // The backend's layers, for their methods on a concrete device (`Cpu::default().describe()`).
    pub use keras_runtime::backend::{
        DenseOps as _, Device as _, LayoutOps as _, NormOps as _, ObjectiveOps as _, OptimizerOps as _, RandomOps as _, SequenceOps as _,
        WindowOps as _,
    };
}
