//! NumPy `.npz` archives (`read_npz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keras::datasets::read_npz_bytes(data.to_vec());
});
