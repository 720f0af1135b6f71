//! IDX dataset files; the first byte says whether the rest is gzipped.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&flag, rest)) = data.split_first() {
        let _ = keras::datasets::idx::from_reader(rest, flag & 1 == 1);
    }
});
