//! CSV files of numbers (`from_csv`); the first byte says whether the first line is a header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&flag, rest)) = data.split_first() {
        let _ = keras::datasets::from_csv_reader(rest, flag & 1 == 1);
    }
});
