//! Files: weights and training state in the safetensors format, written atomically, and
//! Keras model files (`.keras`, `.h5`) imported into and exported from a generated model.

pub mod atomic;
pub mod img;
pub mod keras_file;
pub mod weights;

pub use atomic::write_atomic;
