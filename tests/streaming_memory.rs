//! Training on more data than memory: `fit_dataset` over a generated dataset of 4.2 GB of
//! inputs (2,000 batches of 1,024 samples of 512 features; 128 batches, 0.27 GB, in debug
//! builds) keeps the process's peak resident memory under 64 MB (it is about 15 MB), and
//! learns. Alone in its test binary, so that the peak is this test's.

use keras::datasets::{DataBatch, Dataset};
use keras::ndarray::{Array2, ArrayD, IxDyn};
use keras::prelude::*;

const FEATURES: usize = 512;
const ROWS: usize = 1024;

sequential! {
    struct Wide = Dense(16, in = 512, relu) => Dense(1);
}

/// Batches computed from their index: inputs from a hash, targets a fixed function of them.
struct Generated {
    batches: usize,
}

impl Dataset for Generated {
    fn len(&self) -> usize {
        self.batches
    }
    fn get(&mut self, index: usize) -> keras::Result<DataBatch> {
        let mut state = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let x = Array2::from_shape_simple_fn((ROWS, FEATURES), || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        });
        let y: Vec<f32> = x.rows().into_iter().map(|r| r[0] * 2.0 - r[1] + r[2] * 0.5).collect();
        Ok(DataBatch::new(x, ArrayD::from_shape_vec(IxDyn(&[ROWS, 1]), y).unwrap()))
    }
}

/// The process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kb / 1024.0
}

#[test]
fn training_on_gigabytes_stays_in_bounded_memory() {
    let batches = if cfg!(debug_assertions) { 128 } else { 2000 };
    let gb = (batches * ROWS * FEATURES * 4) as f64 / 1e9;
    keras::utils::set_random_seed(1);
    let mut model = Wide::new(&Cpu::default()).compile(Adam::new(0.01), "mse", ["mae"]).unwrap();
    let t0 = std::time::Instant::now();
    let h = model.fit_dataset(&mut Generated { batches }, FitArgs::default().epochs(1).verbose(0)).unwrap();
    let peak = peak_rss_mb();
    eprintln!(
        "{gb:.2} GB of inputs in {batches} batches: {:.1} s, peak RSS {peak:.0} MB, loss {}",
        t0.elapsed().as_secs_f64(),
        h.loss()[0]
    );
    assert!(peak < 64.0, "peak RSS {peak:.0} MB for {gb:.2} GB streamed");
    let logs = model.evaluate_dataset(&mut Generated { batches: 4 }).unwrap();
    assert!(logs["mae"] < 0.2, "it learns the function: mae {}", logs["mae"]);
}
