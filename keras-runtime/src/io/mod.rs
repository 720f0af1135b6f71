//! Files: weights and training state in the safetensors format, written atomically.

pub mod atomic;
pub mod weights;

pub use atomic::write_atomic;
