//! NumPy `.npy` files (`read_npy`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keras::datasets::read_npy_bytes(data);
});
