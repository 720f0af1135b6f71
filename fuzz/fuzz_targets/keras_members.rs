//! The members of a `.keras` archive, `config.json` and `model.weights.h5`, packed into an
//! archive with correct CRCs. Input: a little-endian u16 length of the config, the config, then
//! the HDF5 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((n, rest)) = data.split_first_chunk::<2>() {
        let split = usize::from(u16::from_le_bytes(*n)).min(rest.len());
        keras_fuzz::read_keras_file(&keras_fuzz::keras_archive(&rest[..split], &rest[split..]));
    }
});
