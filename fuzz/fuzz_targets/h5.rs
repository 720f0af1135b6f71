//! Legacy `.h5` model files and Keras 3 `.weights.h5` files (the HDF5 reader).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keras_fuzz::read_keras_file(data));
