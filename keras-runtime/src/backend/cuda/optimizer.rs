//! [`OptimizerOps`] on the device (`kernels/optimizer.cu`): the optimizer step over the whole
//! parameter arena in one launch, and the weight constraints.
//!
//! A step never reads the device from the host. The update kernel reads the step count, the
//! host's rate and Nadam's momentum product from the [`OptimizerStep`] buffer and evaluates the
//! schedule and the rule's scalars there (once per block); a one-thread kernel queued after it
//! advances the buffer. Clipping by norm runs before it on the device: sums of squares per piece
//! of each weight tensor into the scratch area, then (per-tensor clipping) the tensors scaled in
//! place, or (global clipping) the update kernel adds all the pieces up itself. The table of
//! weight tensors travels by value in those kernels' arguments, in batches, so nothing is
//! uploaded during a step and a captured step replays as it ran.

use super::kernels::OPTIMIZER;
use super::{Cuda, CudaBuffer, CudaViewMut, DevicePtr, GpuDevice, KernelArg, LaunchConfig};
use crate::backend::ops::{Clip, Constraint, MAX_PIECES, OptimizerStep, Schedule, Segment, Update};
use crate::backend::{Device, OptimizerOps};
use crate::error::Error;

/// Floats of a weight tensor whose sum of squares one block computes for clipping by norm.
const PIECE: usize = 8192;
/// Weight tensors per clipping launch: their table ([`Pieces`]) is a kernel argument of 1.5 KiB,
/// well within CUDA's 4 KiB of parameters.
const BATCH: usize = 64;
/// Threads per block of the clipping kernels (a multiple of 32: they sum over the block).
const THREADS: u32 = 256;

/// The weight tensors of one clipping launch (`struct Pieces` in optimizer.cu): per tensor its
/// offset, its length, and the index of its first piece's sum in the scratch area.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Pieces {
    count: u64,
    piece: u64,
    tensors: [[u64; 3]; BATCH],
}

/// The pieces of a tensor of `len` floats.
fn pieces(len: usize) -> usize {
    len.div_ceil(PIECE)
}

impl<D: GpuDevice> OptimizerOps for Cuda<D> {
    fn update(
        &self,
        u: &Update,
        tensors: &[Segment],
        params: CudaViewMut<'_>,
        grads: CudaViewMut<'_>,
        state: &mut [CudaBuffer<D>],
        step: CudaViewMut<'_>,
    ) {
        let n = params.len;
        if !valid_update(self, u, tensors, n, grads.len, state, step.len) {
            return;
        }
        let mut slots: [DevicePtr; 3] = [0; 3];
        for (slot, buf) in slots.iter_mut().zip(state.iter()) {
            *slot = buf.ptr;
        }
        // Clipping by norm: the sums of squares of every piece, then each tensor scaled (the
        // update kernel scales by the global norm itself). The scratch area stays held until the
        // update kernel that reads it is queued.
        let total: usize = tensors.iter().map(|t| pieces(t.len)).sum();
        let scratch = if matches!(u.clip, Clip::Norm(_) | Clip::GlobalNorm(_)) && total > 0 {
            let Some(scratch) = self.scratch(total) else { return };
            let mut table = Pieces { count: 0, piece: PIECE as u64, tensors: [[0; 3]; BATCH] };
            let mut first = 0;
            for t in tensors.iter().filter(|t| t.len > 0) {
                table.tensors[table.count as usize] = [t.offset as u64, t.len as u64, first as u64];
                table.count += 1;
                first += pieces(t.len);
                if table.count as usize == BATCH {
                    clip_batch(self, u.clip, &table, grads.ptr, scratch.ptr());
                    table.count = 0;
                }
            }
            if table.count > 0 {
                clip_batch(self, u.clip, &table, grads.ptr, scratch.ptr());
            }
            Some(scratch)
        } else {
            None
        };
        let partials = scratch.as_ref().map_or(0, |s| s.ptr());
        let (count, n64) = (if matches!(u.clip, Clip::GlobalNorm(_)) { total as u64 } else { 0 }, n as u64);
        let args = [
            KernelArg::new(u),
            KernelArg::new(&params.ptr),
            KernelArg::new(&grads.ptr),
            KernelArg::new(&slots[0]),
            KernelArg::new(&slots[1]),
            KernelArg::new(&slots[2]),
            KernelArg::new(&step.ptr),
            KernelArg::new(&partials),
            KernelArg::new(&count),
            KernelArg::new(&n64),
        ];
        self.launch(&OPTIMIZER, "optimizer_update", n, &args);
        drop(scratch);
        // After every element has read the step's values.
        self.launch_with(&OPTIMIZER, "optimizer_advance", LaunchConfig::linear(1, 32), &[KernelArg::new(u), KernelArg::new(&step.ptr)]);
    }

    fn constrain(&self, c: &Constraint, rows: usize, w: CudaViewMut<'_>) {
        if let Constraint::NonNeg = c {
            let n = w.len as u64;
            self.launch(&OPTIMIZER, "non_neg", w.len, &[KernelArg::new(&w.ptr), KernelArg::new(&n)]);
            return;
        }
        let rows = rows.max(1);
        let cols = w.len / rows;
        let (rows64, cols64) = (rows as u64, cols as u64);
        let args = [KernelArg::new(c), KernelArg::new(&w.ptr), KernelArg::new(&rows64), KernelArg::new(&cols64)];
        self.launch(&OPTIMIZER, "constrain_columns", cols, &args);
    }
}

/// Queues the clipping kernels for one batch of weight tensors: their pieces' sums of squares
/// into `partials`, then under [`Clip::Norm`] each tensor's gradient scaled in place.
fn clip_batch<D: GpuDevice>(dev: &Cuda<D>, clip: Clip, table: &Pieces, grads: DevicePtr, partials: DevicePtr) {
    let live = &table.tensors[..table.count as usize];
    let widest = live.iter().map(|t| pieces(t[1] as usize)).max().unwrap_or(1) as u32;
    let config = LaunchConfig { grid: [widest, table.count as u32, 1], block: [THREADS, 1, 1], shared_bytes: 0 };
    dev.launch_with(&OPTIMIZER, "clip_partials", config, &[KernelArg::new(table), KernelArg::new(&grads), KernelArg::new(&partials)]);
    if let Clip::Norm(limit) = clip {
        let args = [KernelArg::new(table), KernelArg::new(&limit), KernelArg::new(&partials), KernelArg::new(&grads)];
        dev.launch_with(&OPTIMIZER, "clip_scale", config, &args);
    }
}

/// Checks what the update kernels will touch (the CPU backend asserts the same); records a
/// failure and returns false otherwise.
fn valid_update<D: GpuDevice>(
    dev: &Cuda<D>,
    u: &Update,
    tensors: &[Segment],
    n: usize,
    grads: usize,
    state: &[CudaBuffer<D>],
    step: usize,
) -> bool {
    let what = "optimizer update";
    let slots = u.rule.slots().len();
    if grads != n {
        dev.fail(Error::shape(format!("{what}: gradients"), n, grads));
        return false;
    }
    if state.len() < slots || state.len() > 3 {
        dev.fail(Error::shape(format!("{what}: state buffers of {:?}", u.rule), slots, state.len()));
        return false;
    }
    if let Some(b) = state.iter().find(|b| b.len != n) {
        dev.fail(Error::shape(format!("{what}: a state buffer"), n, b.len));
        return false;
    }
    if let Some(t) = tensors.iter().find(|t| t.offset.checked_add(t.len).is_none_or(|end| end > n)) {
        dev.fail(Error::shape(format!("{what}: a weight tensor"), format!("within {n} floats"), format!("{t:?}")));
        return false;
    }
    if let Schedule::Piecewise { count, .. } = u.schedule
        && count > MAX_PIECES
    {
        dev.fail(Error::value(format!("{what}: piecewise boundaries"), format!("at most {MAX_PIECES}"), count));
        return false;
    }
    dev.check(what, &[(step, OptimizerStep::LEN)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::EmuDevice;
    use std::mem::{offset_of, size_of};

    /// The descriptors have the layout optimizer.cu declares (its `static_assert`s pin the same
    /// sizes on the CUDA side).
    #[test]
    fn descriptors_match_the_kernels_layout() {
        use crate::backend::ops::UpdateRule;
        assert_eq!(size_of::<UpdateRule>(), 28);
        assert_eq!(size_of::<Schedule>(), 216);
        assert_eq!(size_of::<Clip>(), 8);
        assert_eq!(size_of::<Constraint>(), 16);
        assert_eq!(size_of::<Update>(), 264);
        assert_eq!(offset_of!(Update, rule), 0);
        assert_eq!(offset_of!(Update, schedule), 32);
        assert_eq!(offset_of!(Update, weight_decay), 248);
        assert_eq!(offset_of!(Update, clip), 252);
        assert_eq!(size_of::<Pieces>(), 16 + BATCH * 24);
    }

    /// Clipping by norm over more weight tensors than one launch's table holds (empty ones, one
    /// of several pieces), on the emulator, against the CPU backend's step: weights, gradients
    /// (scaled in place), state and the step buffer after two steps.
    #[test]
    fn clipping_by_norm_over_many_tensors_matches_the_cpu() {
        use crate::backend::cpu::optimizer::update as cpu_update;
        use crate::backend::ops::UpdateRule;
        let dev = Cuda::emulated();
        let n = 2 * PIECE + 3000;
        let mut tensors = vec![Segment { offset: 0, len: 2 * PIECE + 100 }];
        let mut offset = tensors[0].len;
        for k in 0..2 * BATCH + 5 {
            let len = if k % 7 == 3 { 0 } else { (k * 13) % 40 + 1 }.min(n - offset);
            tensors.push(Segment { offset, len });
            offset += len;
        }
        tensors.push(Segment { offset, len: n - offset });
        let wave =
            |i: usize, k: usize| (((i * 7919 + k * 104_729) % 2001) as f32 / 1000.0 - 1.0) * if i.is_multiple_of(97) { 3.0 } else { 0.05 };
        let rule = UpdateRule::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false };
        for clip in [Clip::Norm(0.5), Clip::GlobalNorm(1.0), Clip::GlobalNorm(1e3)] {
            let u = Update { rule, schedule: Schedule::Constant, weight_decay: 0.0, clip };
            let mut w: Vec<f32> = (0..n).map(|i| wave(i, 99)).collect();
            let mut state = vec![vec![0.0f32; n]; 2];
            let mut step = OptimizerStep { iterations: 0, learning_rate: 0.01, u_product: 1.0 }.encode().to_vec();
            let buffer = |v: &[f32]| {
                let mut b = dev.alloc(v.len()).unwrap();
                dev.upload(v, Cuda::view_mut(&mut b, 0..v.len())).unwrap();
                b
            };
            let host = |b: &CudaBuffer<EmuDevice>| {
                let mut v = vec![0.0; b.len];
                dev.download(Cuda::view(b, 0..b.len), &mut v).unwrap();
                v
            };
            let (mut dw, mut ds, mut dstep) = (buffer(&w), vec![buffer(&state[0]), buffer(&state[1])], buffer(&step));
            for k in 0..2 {
                let mut g: Vec<f32> = (0..n).map(|i| wave(i, k)).collect();
                let mut dg = buffer(&g);
                cpu_update(&u, &tensors, &mut w, &mut g, &mut state, &mut step);
                let (vw, vg, vs) = (Cuda::view_mut(&mut dw, 0..n), Cuda::view_mut(&mut dg, 0..n), Cuda::view_mut(&mut dstep, 0..4));
                dev.update(&u, &tensors, vw, vg, &mut ds, vs);
                let close = |what: &str, got: &[f32], want: &[f32]| {
                    for (i, (a, b)) in got.iter().zip(want).enumerate() {
                        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-2), "{clip:?} step {k}: {what}[{i}] is {a}, the CPU's {b}");
                    }
                };
                close("gradient", &host(&dg), &g);
                close("weight", &host(&dw), &w);
                close("momentum", &host(&ds[0]), &state[0]);
                close("velocity", &host(&ds[1]), &state[1]);
                assert_eq!(host(&dstep), step, "{clip:?} step {k}: the step buffer");
            }
        }
    }
}
