//! [`SequenceOps`] on the device (`kernels/sequence.cu`): embedding lookups and their backward
//! pass, the gate arithmetic of one step of a recurrent layer and its backward pass, and
//! `Bidirectional`'s merge, one thread per output value. A step runs as a few launches, one per
//! phase of the CPU backend's `backend/cpu/recurrent.rs` whose inputs an earlier phase writes,
//! with the elementwise activations fused into them; a softmax activation (row-wise over each
//! sample's units) runs the dense module's softmax kernels over the block in between, as the CPU
//! runs its dense kernels. The embedding's backward pass gathers each table value's rows in
//! sample order and the bias gradients add their samples in order, as the CPU does, so those
//! agree with it bit for bit (no atomics); the activations are within rounding of the CPU's, as
//! for the dense layers.

use super::kernels::SEQUENCE;
use super::{Cuda, CudaView, CudaViewMut, DevicePtr, GpuDevice, KernelArg, at};
use crate::backend::ops::{Activation, BiasAct, CellKind, Directions, MergeMode, RnnCell, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo};
use crate::backend::{DenseOps, Device, SequenceOps};
use crate::error::Error;
use std::marker::PhantomData;

// The kernels take these descriptors whole; their C mirrors in sequence.cu assert the same sizes.
const _: () = assert!(size_of::<RnnCell>() == 40 && size_of::<RnnStep>() == 56 && size_of::<Directions>() == 32);

/// The address of an optional view, or null.
fn opt(ptr: Option<DevicePtr>) -> DevicePtr {
    ptr.unwrap_or(0)
}

/// A writable view of `len` floats at `ptr` (a block of a view the caller holds).
fn block_mut<'a>(ptr: DevicePtr, len: usize) -> CudaViewMut<'a> {
    CudaViewMut { ptr, len, _buffer: PhantomData }
}

/// A read-only view of `len` floats at `ptr` (a block of a view the caller holds).
fn block<'a>(ptr: DevicePtr, len: usize) -> CudaView<'a> {
    CudaView { ptr, len, _buffer: PhantomData }
}

/// Products the recurrent kernel gives a step per sample: `h R`, and `(r h) R` too with the reset
/// gate before the product.
fn products(cell: &RnnCell) -> usize {
    if cell.kind == CellKind::GruResetBefore { 2 } else { 1 }
}

impl<D: GpuDevice> Cuda<D> {
    /// Checks that step `st.s` is one of the cell's.
    fn rnn_step_exists(&self, what: &str, st: &RnnStep) -> bool {
        if st.s >= st.cell.timesteps {
            self.fail(Error::value(what, format!("a step below {}", st.cell.timesteps), st.s));
            return false;
        }
        true
    }

    /// Launches a step kernel taking `(step, pointers..)` over `n` values.
    fn rnn_launch(&self, kernel: &str, st: &RnnStep, ptrs: &[DevicePtr], n: usize) {
        let mut args = vec![KernelArg::new(st)];
        args.extend(ptrs.iter().map(KernelArg::new));
        self.launch(&SEQUENCE, kernel, n, &args);
    }

    /// Where `act` is softmax, applies it to the rows of `units` of `blocks` blocks of the step's
    /// `batch x units` values from `y`, which hold the pre-activations (the step kernels apply
    /// the identity for softmax).
    fn rnn_softmax(&self, act: Activation, st: &RnnStep, y: DevicePtr, blocks: usize) {
        if act == Activation::Softmax {
            let (rows, cols) = (blocks * st.batch, st.cell.units);
            DenseOps::bias_act(self, &BiasAct { rows, cols, act }, block_mut(y, rows * cols), None, None);
        }
    }

    /// Where `act` is softmax, takes the gradients `g` of `blocks` blocks of the step's
    /// `batch x units` values through it, given its output `y` (the step kernels pass them
    /// through unchanged for softmax).
    fn rnn_softmax_backward(&self, act: Activation, st: &RnnStep, g: DevicePtr, y: DevicePtr, blocks: usize) {
        if act == Activation::Softmax {
            let (rows, cols) = (blocks * st.batch, st.cell.units);
            DenseOps::act_backward(self, &BiasAct { rows, cols, act }, block_mut(g, rows * cols), block(y, rows * cols), None, None);
        }
    }
}

impl<D: GpuDevice> SequenceOps for Cuda<D> {
    fn embedding(&self, dim: usize, ids: CudaView<'_>, table: CudaView<'_>, y: CudaViewMut<'_>) {
        let count = ids.len;
        if dim == 0 || !self.check("embedding", &[(y.len, count * dim)]) {
            return;
        }
        let (d, c, vocab) = (dim as u64, count as u64, (table.len / dim) as u64);
        let args = [
            KernelArg::new(&d),
            KernelArg::new(&c),
            KernelArg::new(&vocab),
            KernelArg::new(&ids.ptr),
            KernelArg::new(&table.ptr),
            KernelArg::new(&y.ptr),
        ];
        self.launch(&SEQUENCE, "embedding", count * dim, &args);
    }

    fn embedding_backward(&self, dim: usize, ids: CudaView<'_>, dy: CudaView<'_>, dtable: CudaViewMut<'_>) {
        let count = ids.len;
        if !self.check("embedding backward", &[(dy.len, count * dim)]) {
            return;
        }
        if dim == 0 {
            self.fill(dtable, 0.0);
            return;
        }
        let (d, c, len) = (dim as u64, count as u64, dtable.len as u64);
        let args = [
            KernelArg::new(&d),
            KernelArg::new(&c),
            KernelArg::new(&len),
            KernelArg::new(&ids.ptr),
            KernelArg::new(&dy.ptr),
            KernelArg::new(&dtable.ptr),
        ];
        // One warp per table row (whole warps: the kernel's lanes share a row).
        self.launch(&SEQUENCE, "embedding_backward", dtable.len.div_ceil(dim) * 32, &args);
    }

    fn rnn_step(&self, st: &RnnStep, io: RnnStepIo<CudaView<'_>, CudaViewMut<'_>>) {
        let (cell, batch) = (&st.cell, st.batch);
        let (u, gu, nu, stored) = (cell.units, cell.gates() * cell.units, batch * cell.units, batch * cell.stored());
        let (act, ract) = (cell.activation, cell.recurrent_activation);
        let RnnStepIo { xw, hu, rbias, prev, pre, post, h, y } = io;
        let mut checks = vec![(xw.len, batch * cell.timesteps * gu), (pre.len, stored), (post.len, stored), (h.len, nu)];
        checks.extend(hu.map(|v| (v.len, products(cell) * batch * gu)));
        checks.extend(rbias.map(|v| (v.len, gu)));
        match (cell.kind, prev) {
            (CellKind::Lstm, Some((_, p))) => checks.push((p.len, stored)),
            (CellKind::Gru | CellKind::GruResetBefore, Some((h, _))) => checks.push((h.len, nu)),
            _ => {}
        }
        if cell.return_sequences {
            checks.push((y.len, batch * cell.timesteps * u));
        } else if st.s + 1 == cell.timesteps {
            checks.push((y.len, nu));
        }
        if !self.rnn_step_exists("rnn_step", st) || !self.check("rnn_step", &checks) {
            return;
        }
        let (hu, rbias) = (opt(hu.map(|v| v.ptr)), opt(rbias.map(|v| v.ptr)));
        let (prev_h, prev_pre) = prev.map_or((0, 0), |(h, p)| (h.ptr, p.ptr));
        let block = |k: usize| at(post.ptr, k * nu);
        // The gates whose input is `x K + h R (+ b)` alone: all but the GRU's candidate.
        let plain = if cell.kind == CellKind::Simple || cell.kind == CellKind::Lstm { cell.gates() } else { 2 };
        self.rnn_launch("rnn_gates", st, &[xw.ptr, hu, rbias, pre.ptr, post.ptr], plain * nu);
        match cell.kind {
            CellKind::Simple => self.rnn_softmax(act, st, block(0), 1),
            CellKind::Lstm => {
                self.rnn_softmax(ract, st, block(0), 2);
                self.rnn_softmax(act, st, block(2), 1);
                self.rnn_softmax(ract, st, block(3), 1);
                self.rnn_launch("rnn_lstm_state", st, &[prev_pre, pre.ptr, post.ptr], nu);
                self.rnn_softmax(act, st, block(4), 1);
            }
            CellKind::Gru | CellKind::GruResetBefore => {
                self.rnn_softmax(ract, st, block(0), 2);
                self.rnn_launch("rnn_gru_candidate", st, &[xw.ptr, hu, rbias, pre.ptr, post.ptr], nu);
                self.rnn_softmax(act, st, block(2), 1);
            }
        }
        self.rnn_launch("rnn_output", st, &[prev_h, post.ptr, h.ptr, y.ptr], nu);
    }

    fn rnn_reset_state(&self, st: &RnnStep, xw: CudaView<'_>, hu: CudaView<'_>, h: CudaView<'_>, rh: CudaViewMut<'_>) {
        let (cell, batch) = (&st.cell, st.batch);
        let (gu, nu) = (cell.gates() * cell.units, batch * cell.units);
        let checks = [(xw.len, batch * cell.timesteps * gu), (hu.len, batch * gu), (h.len, nu), (rh.len, nu)];
        if !self.rnn_step_exists("rnn_reset_state", st) || !self.check("rnn_reset_state", &checks) {
            return;
        }
        self.rnn_launch("rnn_reset_state", st, &[xw.ptr, hu.ptr, h.ptr, rh.ptr], nu);
        if cell.recurrent_activation == Activation::Softmax {
            // The kernel left the pre-activations: the gate, then its product with the state.
            self.rnn_softmax(cell.recurrent_activation, st, rh.ptr, 1);
            self.multiply(block(rh.ptr, nu), h, block_mut(rh.ptr, nu));
        }
    }

    fn rnn_step_backward(&self, st: &RnnStep, g: RnnStepGrads<CudaView<'_>, CudaViewMut<'_>>) {
        let (cell, batch) = (&st.cell, st.batch);
        let (u, gu, nu, stored) = (cell.units, cell.gates() * cell.units, batch * cell.units, batch * cell.stored());
        let (act, ract) = (cell.activation, cell.recurrent_activation);
        let RnnStepGrads { dy, pre, post, prev, dh, dc, dxw, dhu, tmp, dbias, drbias } = g;
        let reset_before = cell.kind == CellKind::GruResetBefore;
        // The input bias's gradient is `rnn_reset_state_backward`'s with the reset gate before.
        let dbias = if reset_before { None } else { dbias };
        let mut checks = vec![
            (pre.len, stored),
            (post.len, stored),
            (dh.len, nu),
            (dxw.len, batch * cell.timesteps * gu),
            (dhu.len, products(cell) * batch * gu),
            (tmp.len, batch * gu),
        ];
        if cell.return_sequences {
            checks.push((dy.len, batch * cell.timesteps * u));
        } else if st.s + 1 == cell.timesteps {
            checks.push((dy.len, nu));
        }
        match (cell.kind, prev) {
            (CellKind::Lstm, Some((_, p))) => checks.push((p.len, stored)),
            (CellKind::Gru | CellKind::GruResetBefore, Some((h, _))) => checks.push((h.len, nu)),
            _ => {}
        }
        if cell.kind == CellKind::Lstm {
            checks.push((dc.len, nu));
        }
        checks.extend(dbias.iter().chain(&drbias).map(|b| (b.len, gu)));
        if !self.rnn_step_exists("rnn_step_backward", st) || !self.check("rnn_step_backward", &checks) {
            return;
        }
        let (prev_h, prev_pre) = prev.map_or((0, 0), |(h, p)| (h.ptr, p.ptr));
        let (t, y) = (|k: usize| at(tmp.ptr, k * nu), |k: usize| at(post.ptr, k * nu));
        self.rnn_launch("rnn_state_grads", st, &[dy.ptr, pre.ptr, post.ptr, prev_h, dh.ptr, tmp.ptr], nu);
        match cell.kind {
            CellKind::Simple => self.rnn_softmax_backward(act, st, t(0), y(0), 1),
            CellKind::Lstm => {
                self.rnn_softmax_backward(act, st, t(2), y(4), 1);
                self.rnn_softmax_backward(ract, st, t(3), y(3), 1);
                self.rnn_launch("rnn_lstm_cell_grads", st, &[pre.ptr, post.ptr, prev_pre, dc.ptr, tmp.ptr], nu);
                self.rnn_softmax_backward(ract, st, t(0), y(0), 2);
                self.rnn_softmax_backward(act, st, t(2), y(2), 1);
            }
            CellKind::Gru | CellKind::GruResetBefore => {
                self.rnn_softmax_backward(act, st, t(2), y(2), 1);
                self.rnn_softmax_backward(ract, st, t(0), y(0), 1);
                if !reset_before {
                    self.rnn_launch("rnn_gru_reset_grads", st, &[pre.ptr, post.ptr, tmp.ptr], nu);
                    self.rnn_softmax_backward(ract, st, t(1), y(1), 1);
                }
            }
        }
        self.rnn_launch("rnn_grad_rows", st, &[tmp.ptr, post.ptr, dxw.ptr, dhu.ptr], batch * gu);
        if dbias.is_some() || drbias.is_some() {
            let (dbias, drbias) = (opt(dbias.map(|b| b.ptr)), opt(drbias.map(|b| b.ptr)));
            self.rnn_launch("rnn_bias_grads", st, &[dxw.ptr, dhu.ptr, dbias, drbias], gu);
        }
    }

    fn rnn_reset_state_backward(&self, st: &RnnStep, g: RnnResetGrads<CudaView<'_>, CudaViewMut<'_>>) {
        let (cell, batch) = (&st.cell, st.batch);
        let (gu, nu) = (cell.gates() * cell.units, batch * cell.units);
        let RnnResetGrads { drh, pre, post, h, dh, dxw, dhu, dbias } = g;
        let mut checks =
            vec![(pre.len, 2 * nu), (post.len, 2 * nu), (dh.len, nu), (dxw.len, batch * cell.timesteps * gu), (dhu.len, batch * gu)];
        // The kernel reads the state's gradient and the state only together.
        if let (Some(drh), Some(h)) = (drh, h) {
            checks.extend([(drh.len, nu), (h.len, nu)]);
        }
        checks.extend(dbias.as_ref().map(|b| (b.len, gu)));
        if !self.rnn_step_exists("rnn_reset_state_backward", st) || !self.check("rnn_reset_state_backward", &checks) {
            return;
        }
        let (drh, h) = (opt(drh.map(|v| v.ptr)), opt(h.map(|v| v.ptr)));
        self.rnn_launch("rnn_reset_state_backward", st, &[drh, pre.ptr, post.ptr, h, dh.ptr, dxw.ptr, dhu.ptr], nu);
        if let Some(dbias) = dbias {
            self.rnn_launch("rnn_bias_grads", st, &[dxw.ptr, 0, dbias.ptr, 0], gu);
        }
    }

    fn merge_directions(&self, d: &Directions, fwd: CudaView<'_>, bwd: CudaView<'_>, y: CudaViewMut<'_>) {
        let width = if d.mode == MergeMode::Concat { 2 * d.units } else { d.units };
        let (len, n) = (d.batch * d.steps * d.units, d.batch * d.steps * width);
        if self.check("merge_directions", &[(fwd.len, len), (bwd.len, len), (y.len, n)]) {
            let args = [KernelArg::new(d), KernelArg::new(&fwd.ptr), KernelArg::new(&bwd.ptr), KernelArg::new(&y.ptr)];
            self.launch(&SEQUENCE, "merge_directions", n, &args);
        }
    }

    fn merge_directions_backward(
        &self,
        d: &Directions,
        dy: CudaView<'_>,
        fwd: CudaView<'_>,
        bwd: CudaView<'_>,
        dfwd: CudaViewMut<'_>,
        dbwd: CudaViewMut<'_>,
    ) {
        let width = if d.mode == MergeMode::Concat { 2 * d.units } else { d.units };
        let len = d.batch * d.steps * d.units;
        let mut checks = vec![(dy.len, d.batch * d.steps * width), (dfwd.len, len), (dbwd.len, len)];
        // Only the product reads the directions' outputs.
        if d.mode == MergeMode::Mul {
            checks.extend([(fwd.len, len), (bwd.len, len)]);
        }
        if self.check("merge_directions backward", &checks) {
            let args = [
                KernelArg::new(d),
                KernelArg::new(&dy.ptr),
                KernelArg::new(&fwd.ptr),
                KernelArg::new(&bwd.ptr),
                KernelArg::new(&dfwd.ptr),
                KernelArg::new(&dbwd.ptr),
            ];
            self.launch(&SEQUENCE, "merge_directions_backward", len, &args);
        }
    }
}
