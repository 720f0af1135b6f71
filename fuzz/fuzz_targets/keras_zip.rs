//! Keras 3 `.keras` archives (zip of config.json and model.weights.h5).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| keras_fuzz::read_keras_file(data));
