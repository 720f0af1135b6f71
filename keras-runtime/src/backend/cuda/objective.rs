//! [`ObjectiveOps`] on the device (`kernels/objective.cu`): the loss and its gradient, the
//! metrics' accumulators and the weight penalties, each summed on the device into its `stats`
//! (nothing is read back: the progress line reads the accumulators when it needs them).
//!
//! Sums run in a fixed order (per-row values into the scratch area, then one block adds them),
//! so two runs give the same bits; AUC's histograms count with atomics, exactly (whole numbers).

use super::kernels::OBJECTIVE;
use super::{Cuda, CudaView, CudaViewMut, DevicePtr, GpuDevice, KernelArg, LaunchConfig, MAX_BLOCKS, THREADS, at};
use crate::backend::ops::{Average, Loss, LossBatch, MetricBatch, MetricKind, Regularizer};
use crate::backend::{Device, ObjectiveOps};
use crate::error::Error;

// The kernels read these descriptors by value with the layouts `objective.cu` mirrors.
const _: () = {
    assert!(size_of::<LossBatch>() == 48 && std::mem::offset_of!(LossBatch, rows) == 32);
    assert!(size_of::<MetricBatch>() == 40 && std::mem::offset_of!(MetricBatch, rows) == 24);
    assert!(size_of::<Regularizer>() == 8);
};

/// Rows at least this wide get a block each; narrower rows a thread each.
const BLOCK_ROW_MIN: usize = 64;

/// Threads per block for a row-wise kernel over rows of `cols`: whole warps, at most 256.
fn row_threads(cols: usize) -> u32 {
    cols.div_ceil(32).clamp(1, 8) as u32 * 32
}

/// One block of [`THREADS`] threads: the final sums.
const ONE_BLOCK: LaunchConfig = LaunchConfig::linear(1, THREADS);

impl<D: GpuDevice> ObjectiveOps for Cuda<D> {
    fn loss(
        &self,
        l: &LossBatch,
        pred: CudaView<'_>,
        target: CudaView<'_>,
        weights: Option<CudaView<'_>>,
        grad: Option<CudaViewMut<'_>>,
        stats: CudaViewMut<'_>,
    ) {
        let (rows, cols) = (l.rows, l.cols);
        let tcols = if l.loss.sparse_targets() { 1 } else { cols };
        let mut checks = vec![(pred.len, rows * cols), (target.len, rows * tcols), (stats.len, 2)];
        checks.extend(grad.as_ref().map(|g| (g.len, rows * cols)));
        if !self.check("loss", &checks) {
            return;
        }
        if cols > u32::MAX as usize {
            self.fail(Error::shape("loss", format!("rows of at most {} values", u32::MAX), cols));
            return;
        }
        let per_sample = match weights {
            Some(w) if w.len == 0 || !rows.is_multiple_of(w.len) => {
                self.fail(Error::shape("loss weights", format!("a divisor of the {rows} loss rows"), w.len));
                return;
            }
            Some(w) => (rows / w.len).max(1) as u64,
            None => 1,
        };
        // Per-row losses, then the hinge losses' flag.
        let Some(scratch) = self.scratch(rows + 1) else { return };
        let (losses, flag) = (scratch.ptr(), at(scratch.ptr(), rows));
        let binary = if matches!(l.loss.kind(), Loss::Hinge | Loss::SquaredHinge) {
            let n = (rows * tcols) as u64;
            self.launch_with(
                &OBJECTIVE,
                "loss_binary_targets",
                ONE_BLOCK,
                &[KernelArg::new(&target.ptr), KernelArg::new(&n), KernelArg::new(&flag)],
            );
            flag
        } else {
            0
        };
        let (weights, grad) = (weights.map_or(0, |w| w.ptr), grad.map_or(0, |g| g.ptr));
        let per_block = u32::from(cols >= BLOCK_ROW_MIN);
        let args = [
            KernelArg::new(l),
            KernelArg::new(&pred.ptr),
            KernelArg::new(&target.ptr),
            KernelArg::new(&weights),
            KernelArg::new(&per_sample),
            KernelArg::new(&grad),
            KernelArg::new(&losses),
            KernelArg::new(&binary),
            KernelArg::new(&per_block),
        ];
        if per_block == 1 {
            if rows > 0 {
                self.launch_with(&OBJECTIVE, "loss_rows", LaunchConfig::linear(rows.min(65535) as u32, row_threads(cols)), &args);
            }
        } else {
            self.launch(&OBJECTIVE, "loss_rows", rows, &args);
        }
        self.total(losses, rows, true, stats);
    }

    fn metric(&self, m: &MetricBatch, pred: CudaView<'_>, target: CudaView<'_>, stats: CudaViewMut<'_>) {
        let (rows, cols) = (m.rows, m.cols);
        let tcols = if m.kind.sparse_targets() { 1 } else { cols };
        if !self.check("metric", &[(pred.len, rows * cols), (target.len, rows * tcols), (stats.len, m.kind.stats_len(cols))]) {
            return;
        }
        let (pred, target, st) = (pred.ptr, target.ptr, stats.ptr);
        match m.kind {
            MetricKind::Precision { .. } | MetricKind::Recall { .. } => {
                let args = [KernelArg::new(m), KernelArg::new(&pred), KernelArg::new(&target), KernelArg::new(&st)];
                self.launch_with(&OBJECTIVE, "metric_counts", ONE_BLOCK, &args);
            }
            MetricKind::Auc { num_thresholds: 0 } => {}
            MetricKind::Auc { .. } => {
                let args = [KernelArg::new(m), KernelArg::new(&pred), KernelArg::new(&target), KernelArg::new(&st)];
                self.launch(&OBJECTIVE, "auc_bins", rows * cols, &args);
                self.launch_with(&OBJECTIVE, "auc_counts", ONE_BLOCK, &[KernelArg::new(m), KernelArg::new(&st)]);
            }
            MetricKind::F1 { average, argmax, .. } => {
                // Row maxima, then (micro) the per-class partial sums.
                let Some(scratch) = self.scratch(rows + 4 * cols) else { return };
                let (maxes, partial) = (scratch.ptr(), at(scratch.ptr(), rows));
                if argmax {
                    self.launch(&OBJECTIVE, "f1_row_max", rows, &[KernelArg::new(m), KernelArg::new(&pred), KernelArg::new(&maxes)]);
                }
                let micro = average == Average::Micro;
                let (out, accumulate) = if micro { (partial, 0u32) } else { (st, 1u32) };
                let args = [
                    KernelArg::new(m),
                    KernelArg::new(&pred),
                    KernelArg::new(&target),
                    KernelArg::new(&maxes),
                    KernelArg::new(&out),
                    KernelArg::new(&accumulate),
                ];
                self.launch(&OBJECTIVE, "f1_counts", cols, &args);
                if micro {
                    let args = [KernelArg::new(m), KernelArg::new(&partial), KernelArg::new(&st)];
                    self.launch_with(&OBJECTIVE, "f1_micro", LaunchConfig::linear(1, 32), &args);
                }
            }
            MetricKind::R2 => {
                let args = [KernelArg::new(m), KernelArg::new(&pred), KernelArg::new(&target), KernelArg::new(&st)];
                self.launch(&OBJECTIVE, "r2_sums", cols, &args);
            }
            _ => {
                let Some(scratch) = self.scratch(rows) else { return };
                let values = scratch.ptr();
                let args = [KernelArg::new(m), KernelArg::new(&pred), KernelArg::new(&target), KernelArg::new(&values)];
                self.launch(&OBJECTIVE, "metric_rows", rows, &args);
                self.total(values, rows, false, stats);
            }
        }
    }

    fn regularize(&self, r: &Regularizer, w: CudaView<'_>, g: Option<CudaViewMut<'_>>, scale: f32, stats: Option<CudaViewMut<'_>>) {
        let n = w.len;
        let mut checks = vec![];
        checks.extend(g.as_ref().map(|g| (g.len, n)));
        checks.extend(stats.as_ref().map(|s| (s.len, 1)));
        if !self.check("regularize", &checks) {
            return;
        }
        let n64 = n as u64;
        if let Some(st) = stats {
            // Per-block partial sums, then one block adds them in order.
            let blocks = n.div_ceil(THREADS as usize).clamp(1, MAX_BLOCKS);
            let Some(scratch) = self.scratch(2 * blocks) else { return };
            let (partial, blocks64) = (scratch.ptr(), blocks as u64);
            let args = [KernelArg::new(&w.ptr), KernelArg::new(&n64), KernelArg::new(&partial)];
            self.launch_with(&OBJECTIVE, "penalty_partials", LaunchConfig::linear(blocks as u32, THREADS), &args);
            let args =
                [KernelArg::new(r), KernelArg::new(&partial), KernelArg::new(&blocks64), KernelArg::new(&scale), KernelArg::new(&st.ptr)];
            self.launch_with(&OBJECTIVE, "penalty_total", ONE_BLOCK, &args);
        }
        if let Some(g) = g {
            self.launch(
                &OBJECTIVE,
                "penalty_grad",
                n,
                &[KernelArg::new(r), KernelArg::new(&w.ptr), KernelArg::new(&g.ptr), KernelArg::new(&n64)],
            );
        }
    }
}

impl<D: GpuDevice> Cuda<D> {
    /// Adds `n` per-row values at `values` (device scratch) to a running mean's accumulators:
    /// `stats[0] += mean * n` (`mean`: the batch loss) or the sum, `stats[1] += n`.
    fn total(&self, values: DevicePtr, n: usize, mean: bool, stats: CudaViewMut<'_>) {
        let (n, mean) = (n as u64, u32::from(mean));
        let args = [KernelArg::new(&values), KernelArg::new(&n), KernelArg::new(&mean), KernelArg::new(&stats.ptr)];
        self.launch_with(&OBJECTIVE, "objective_total", ONE_BLOCK, &args);
    }
}

#[cfg(test)]
mod tests {
    //! What the conformance suite does not reach: rows wide enough for a block each (partial
    //! warps, more columns than threads), class indices out of range or NaN, ties and NaN in
    //! the categorical hinge's maximum; each against the CPU backend.
    use crate::backend::cuda::Cuda;
    use crate::backend::ops::{Loss, LossBatch, LossConfig, MetricBatch, MetricKind};
    use crate::backend::{Backend, Cpu, Device};

    /// Deterministic values in `[lo, hi)`.
    fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                lo + (hi - lo) * ((x >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    fn put<B: Device>(dev: &B, v: &[f32]) -> B::Buffer {
        let mut b = dev.alloc(v.len()).unwrap();
        dev.upload(v, B::view_mut(&mut b, 0..v.len())).unwrap();
        b
    }

    fn get<B: Device>(dev: &B, b: &B::Buffer) -> Vec<f32> {
        let mut out = vec![0.0; B::len(b)];
        dev.download(B::view(b, 0..B::len(b)), &mut out).unwrap();
        out
    }

    /// The loss's stats and gradient on a backend.
    fn run_loss<B: Backend>(dev: &B, l: &LossBatch, pred: &[f32], target: &[f32], weights: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
        let (p, t) = (put(dev, pred), put(dev, target));
        let w = weights.map(|w| put(dev, w));
        let mut g = put(dev, &vec![f32::NAN; pred.len()]);
        let mut st = put(dev, &[0.5, 1.0]);
        let n = pred.len();
        let wv = w.as_ref().map(|w| B::view(w, 0..B::len(w)));
        dev.loss(l, B::view(&p, 0..n), B::view(&t, 0..target.len()), wv, Some(B::view_mut(&mut g, 0..n)), B::view_mut(&mut st, 0..2));
        (get(dev, &st), get(dev, &g))
    }

    /// Equal within `rtol` relative to the largest finite magnitude of `want` (summation orders
    /// differ, and a gradient like `softmax * sum(t) - t` cancels), or both NaN.
    fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f32, |m, w| if w.is_finite() { m.max(w.abs()) } else { m });
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= rtol * w.abs().max(scale).max(1e-30);
            assert!(ok, "{what}: element {i}: got {g}, want {w}");
        }
    }

    fn configs() -> Vec<LossConfig> {
        use Loss::*;
        vec![
            MeanSquaredError.config(),
            MeanAbsoluteError.config(),
            MeanAbsolutePercentageError.config(),
            MeanSquaredLogarithmicError.config(),
            BinaryCrossentropy.config(),
            BinaryCrossentropy.from_logits(true).label_smoothing(0.2),
            BinaryFocalCrossentropy.config(),
            BinaryFocalCrossentropy.from_logits(true).apply_class_balancing(true).label_smoothing(0.1),
            CategoricalCrossentropy.config(),
            CategoricalCrossentropy.label_smoothing(0.1),
            CategoricalCrossentropy.from_logits(true).label_smoothing(0.2),
            SparseCategoricalCrossentropy.config(),
            SparseCategoricalCrossentropy.from_logits(true),
            Loss::huber(0.5),
            LogCosh.config(),
            KlDivergence.config(),
            Poisson.config(),
            Hinge.config(),
            SquaredHinge.config(),
            CategoricalHinge.config(),
            CosineSimilarity.config(),
        ]
    }

    /// Targets for a loss: class indices (some out of range or NaN) for sparse losses, 0 or 1
    /// for the hinge losses (binary batches), else uniform in [0, 1).
    fn targets(config: &LossConfig, rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        if config.sparse_targets() {
            let odd = [-1.0, cols as f32, 1e30, f32::NAN, 2.7, -0.5];
            return (0..rows).map(|r| if r % 3 == 1 { odd[(r / 3) % odd.len()] } else { ((r * 7) % cols) as f32 }).collect();
        }
        let u = data(rows * cols, seed, 0.0, 1.0);
        match config.kind() {
            Loss::Hinge | Loss::SquaredHinge | Loss::CategoricalCrossentropy => u.iter().map(|&u| (u < 0.3) as u8 as f32).collect(),
            _ => u,
        }
    }

    #[test]
    fn losses_match_the_cpu_on_wide_and_narrow_rows() {
        let gpu = Cuda::emulated();
        for config in configs() {
            for (rows, cols) in [(1, 64), (5, 100), (3, 300), (2, 1025), (20, 3)] {
                let logits = config.from_logits || matches!(config.kind(), Loss::MeanSquaredError | Loss::Huber | Loss::LogCosh);
                let pred = if logits { data(rows * cols, 3, -3.0, 3.0) } else { data(rows * cols, 3, 0.02, 0.98) };
                let target = targets(&config, rows, cols, 5);
                let weights: Vec<f32> = data(rows, 9, 0.0, 2.0);
                for w in [None, Some(&weights[..])] {
                    let l = LossBatch { loss: config, rows, cols };
                    let what = format!("{config:?} on {rows} x {cols}, weighted: {}", w.is_some());
                    let (cpu_st, cpu_g) = run_loss(&Cpu::new(), &l, &pred, &target, w);
                    let (gpu_st, gpu_g) = run_loss(&gpu, &l, &pred, &target, w);
                    assert_close(&format!("{what}: stats"), &gpu_st, &cpu_st, 1e-5);
                    assert_close(&format!("{what}: gradient"), &gpu_g, &cpu_g, 1e-5);
                }
            }
        }
    }

    #[test]
    fn categorical_hinge_ties_and_nan_pick_the_first_maximum() {
        let gpu = Cuda::emulated();
        for cols in [5, 70, 300] {
            let rows = 4;
            let mut pred = data(rows * cols, 1, -1.0, 1.0);
            let target = vec![0.0f32; rows * cols];
            // Row 0: the maximum twice; row 1: a NaN after a larger value; row 2: two NaNs.
            pred[3] = 5.0;
            pred[cols - 1] = 5.0;
            pred[cols + 1] = 4.0;
            pred[cols + cols - 2] = f32::NAN;
            pred[2 * cols + 2] = f32::NAN;
            pred[2 * cols + cols - 1] = f32::NAN;
            let l = LossBatch { loss: Loss::CategoricalHinge.config(), rows, cols };
            let (cpu_st, cpu_g) = run_loss(&Cpu::new(), &l, &pred, &target, None);
            let (gpu_st, gpu_g) = run_loss(&gpu, &l, &pred, &target, None);
            assert!(cpu_st[0].is_nan() && gpu_st[0].is_nan(), "{cols}: {cpu_st:?} {gpu_st:?}");
            assert_close(&format!("categorical hinge gradient, {cols} columns"), &gpu_g, &cpu_g, 1e-5);
        }
    }

    #[test]
    fn sparse_metrics_with_odd_class_indices_match_the_cpu() {
        let gpu = Cuda::emulated();
        let (rows, cols) = (12, 4);
        let pred = data(rows * cols, 2, 0.0, 1.0);
        let target: Vec<f32> = [0.0, 3.0, -1.0, 4.0, 1e30, f32::NAN, 2.7, -0.5, 1.0, 2.0, 3.0, 0.0].to_vec();
        for kind in [MetricKind::Sparse, MetricKind::TopK { k: 1, sparse: true }, MetricKind::TopK { k: 3, sparse: true }] {
            let m = MetricBatch { kind, rows, cols };
            assert_eq!(metric(&gpu, &m, &pred, &target), metric(&Cpu::new(), &m, &pred, &target), "{kind:?}");
        }
    }

    fn metric<B: Backend>(dev: &B, m: &MetricBatch, pred: &[f32], target: &[f32]) -> Vec<f32> {
        let (p, t) = (put(dev, pred), put(dev, target));
        let mut st = put(dev, &[0.25, 2.0]);
        dev.metric(m, B::view(&p, 0..pred.len()), B::view(&t, 0..target.len()), B::view_mut(&mut st, 0..2));
        get(dev, &st)
    }
}
