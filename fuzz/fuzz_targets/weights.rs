//! Safetensors weights (`load_weights`) into a small fixed model.
#![no_main]

use keras::prelude::*;
use keras_fuzz::Normalized;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut model = Normalized::new(&Cpu::default());
    let _ = keras::io::weights::load_weights_from_bytes(&mut model, data, "fuzz.safetensors".as_ref());
});
