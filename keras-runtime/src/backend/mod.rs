//! Backends: where buffers live and kernels run.
//!
//! A backend is layered:
//!
//! - [`Device`], the core every backend writes: buffers and views of them, transfers, a matrix
//!   product, a few elementwise primitives and the row gather that batches a data set.
//! - Op families, each a trait with a default body for every kernel: [`DenseOps`],
//!   [`NormOps`], [`WindowOps`], [`SequenceOps`], [`LayoutOps`], [`RandomOps`],
//!   [`ObjectiveOps`], [`OptimizerOps`]. A default either composes core operations on the
//!   device (`linear` is a product then `bias_act`) or runs the CPU backend's kernel on host
//!   copies of its tensors (download, compute, upload; see `host`). So a new backend trains a
//!   model as soon as its core exists, and overrides kernels one by one for speed.
//! - [`Backend`], every family together: what layers, models and the training loop ask for. It
//!   is implemented for every type that implements the core and the families.
//!
//! Kernels receive plain-data descriptors from the leaf module [`ops`] (a window, a recurrent
//! step, a loss, an update rule), not long argument lists; views of the same kernel that travel
//! together come as small structs ([`Affine`], [`NormGrads`], [`RnnStepIo`], ...).
//!
//! **Errors.** Kernels return nothing: a device runs them asynchronously. A kernel's failure (a
//! launch error, a fault, a failed transfer inside a default) is *sticky*: the backend records
//! the first one ([`Device::fail`]) and returns it from the next [`Device::download`] or
//! [`Device::sync`], which is where the training loop reads results back (logs, predictions,
//! weights). The CPU backend's kernels cannot fail.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
pub mod ops;

pub use cpu::Cpu;
pub use device::{Backend, DenseOps, Device, LayoutOps, NormOps, ObjectiveOps, OptimizerOps, RandomOps, Recording, SequenceOps, WindowOps};
pub use ops::*;
