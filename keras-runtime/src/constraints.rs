//! Weight constraints: projections applied to a weight after each optimizer update, as Keras's
//! `MaxNorm`, `NonNeg`, `UnitNorm` and `MinMaxNorm`. In the DSL: `kernel_constraint = max_norm(3)`.
//!
//! Norms are taken over axis 0, Keras's default: for a Dense kernel `(inputs, units)`, the
//! weights into each unit; for a bias, the whole vector.

pub use crate::backend::ops::Constraint;
