//! Files: Keras model files imported into a generated model.

pub mod keras_file;
