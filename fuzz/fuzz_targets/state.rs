//! Training state (`Compiled::load_state`), which reads a file: each input is written to a
//! scratch file first.
#![no_main]

use keras::prelude::*;
use keras_fuzz::Normalized;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

static SCRATCH: LazyLock<PathBuf> =
    LazyLock::new(|| std::env::temp_dir().join(format!("keras-fuzz-state-{}.safetensors", std::process::id())));

fuzz_target!(|data: &[u8]| {
    let mut model = Normalized::new(&Cpu::default()).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).expect("compiles");
    std::fs::write(&*SCRATCH, data).expect("scratch file");
    let _ = model.load_state(&*SCRATCH);
});
