//! `Input(shape)`: the model's per-sample input shape (not a layer in Keras's summary).

/// `Input(shape)`.
pub const SIGNATURE: (&[&str], usize) = (&["shape"], 1);
