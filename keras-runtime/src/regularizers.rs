//! Weight regularizers: a penalty added to the loss (and its gradient to the weights' gradient),
//! as Keras's `L1`, `L2` and `L1L2`. In the DSL: `kernel_regularizer = l2(0.01)`.
//!
//! [`Regularizer`] is `l1 * sum(|w|) + l2 * sum(w²)`, added to the loss of every batch (training
//! and evaluation, as Keras logs it); its gradient is `l1 sign(w) + 2 l2 w`, the sign of 0 being
//! +1 as in Keras's JAX backend (a zero-initialized bias moves on its first step).

pub use crate::backend::ops::Regularizer;
