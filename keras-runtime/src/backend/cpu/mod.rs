//! The CPU backend: buffers are `Vec<f32>`, views are slices, kernels use AVX-512, AVX2+FMA or
//! scalar code as the machine allows (detected at run time, never `target-cpu=native`), and large
//! kernels spread over a thread pool.

pub mod gemm;
pub mod kernels;
mod merge;
mod noise;
pub mod pool;
pub mod recurrent;
mod shuffle;
pub(crate) mod simd;
mod window;

use super::{Backend, Border2d, MergeMode, MergeOp, Permutation, PoolKind, RnnCell, Transpose, Upsample2d, Window2d};
use crate::Result;
use crate::activations::Activation;
use crate::constraints::Constraint;
use crate::losses::LossConfig;
use crate::metrics::MetricKind;
use crate::optimizers::Update;
use crate::regularizers::Regularizer;
use gemm::{MatMut, MatRef};
use std::ops::Range;

pub use pool::set_num_threads;
pub use simd::Level as SimdLevel;

/// The CPU backend. `Cpu::default()` uses every core (or `KERAS_NUM_THREADS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    _private: (),
}

impl Cpu {
    /// The CPU backend (the same as `Cpu::default()`).
    pub const fn new() -> Cpu {
        Cpu { _private: () }
    }

    /// The instruction set the kernels use on this machine.
    pub fn simd_level(&self) -> SimdLevel {
        simd::level()
    }

    /// The number of threads kernels use.
    pub fn threads(&self) -> usize {
        pool::global().threads()
    }
}

impl Backend for Cpu {
    type Buffer = Vec<f32>;
    type View<'a> = &'a [f32];
    type ViewMut<'a> = &'a mut [f32];

    fn describe(&self) -> String {
        format!("cpu ({:?}, {} threads)", self.simd_level(), self.threads()).to_lowercase()
    }

    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn len(buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn view(buf: &Vec<f32>, range: Range<usize>) -> &[f32] {
        &buf[range]
    }

    fn view_mut(buf: &mut Vec<f32>, range: Range<usize>) -> &mut [f32] {
        &mut buf[range]
    }

    fn view_len(v: &[f32]) -> usize {
        v.len()
    }

    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a> {
        &v[range]
    }

    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        v.split_at_mut(mid)
    }

    fn reborrow<'s>(v: &'s mut &mut [f32]) -> &'s mut [f32] {
        v
    }

    fn freeze<'s>(v: &'s &mut [f32]) -> &'s [f32] {
        v
    }

    fn host_view<'a>(&self, data: &'a [f32]) -> Option<&'a [f32]> {
        Some(data)
    }

    fn upload(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }

    fn gather_rows(&self, src: &[f32], row_len: usize, rows: &[usize], dst: &mut [f32]) -> Result<()> {
        for (d, &r) in dst.chunks_exact_mut(row_len).zip(rows) {
            d.copy_from_slice(&src[r * row_len..(r + 1) * row_len]);
        }
        Ok(())
    }

    fn download(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }

    fn copy(&self, src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }

    fn fill(&self, dst: &mut [f32], value: f32) {
        dst.fill(value);
    }

    fn matmul(&self, m: usize, n: usize, k: usize, a: &[f32], ta: Transpose, b: &[f32], tb: Transpose, c: &mut [f32], accumulate: bool) {
        let a = match ta {
            Transpose::No => MatRef::row_major(a, m, k),
            Transpose::Yes => MatRef::row_major(a, k, m).t(),
        };
        let b = match tb {
            Transpose::No => MatRef::row_major(b, k, n),
            Transpose::Yes => MatRef::row_major(b, n, k).t(),
        };
        gemm::gemm(a, b, MatMut::row_major(c, m, n), accumulate);
    }

    fn linear(
        &self,
        rows: usize,
        k: usize,
        n: usize,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
        y: &mut [f32],
        pre: Option<&mut [f32]>,
    ) {
        let (x, w) = (MatRef::row_major(x, rows, k), MatRef::row_major(w, k, n));
        match pre {
            Some(pre) => {
                gemm::gemm(x, w, MatMut::row_major(&mut *y, rows, n), false);
                kernels::bias_act(y, bias, Some(pre), rows, n, act);
            }
            None => gemm::gemm_epilogue(x, w, MatMut::row_major(y, rows, n), gemm::Epilogue { bias, act }),
        }
    }

    fn bias_act(&self, y: &mut [f32], bias: Option<&[f32]>, pre: Option<&mut [f32]>, rows: usize, cols: usize, act: Activation) {
        kernels::bias_act(y, bias, pre, rows, cols, act);
    }

    fn act_backward(
        &self,
        g: &mut [f32],
        y: &[f32],
        pre: Option<&[f32]>,
        rows: usize,
        cols: usize,
        act: Activation,
        dbias: Option<&mut [f32]>,
    ) {
        kernels::act_backward(g, y, pre, rows, cols, act, dbias);
    }

    fn moments(&self, x: &[f32], rows: usize, cols: usize, mean: &mut [f32], var: &mut [f32]) {
        kernels::moments(&x[..rows * cols], cols, &mut mean[..cols], &mut var[..cols]);
    }

    fn moving_average(&self, moving: &mut [f32], value: &[f32], momentum: f32) {
        for (m, &v) in moving.iter_mut().zip(value) {
            *m = *m * momentum + v * (1.0 - momentum);
        }
    }

    fn batch_norm(
        &self,
        x: &[f32],
        rows: usize,
        cols: usize,
        mean: &[f32],
        var: &mut [f32],
        epsilon: f32,
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        y: &mut [f32],
    ) {
        kernels::batch_norm(&x[..rows * cols], cols, mean, &mut var[..cols], epsilon, gamma, beta, &mut y[..rows * cols]);
    }

    fn batch_norm_backward(
        &self,
        x: &[f32],
        dy: &[f32],
        rows: usize,
        cols: usize,
        mean: &[f32],
        inv: &[f32],
        gamma: Option<&[f32]>,
        dgamma: Option<&mut [f32]>,
        dbeta: Option<&mut [f32]>,
        dx: Option<&mut [f32]>,
    ) {
        kernels::batch_norm_backward(&x[..rows * cols], &dy[..rows * cols], cols, mean, inv, gamma, dgamma, dbeta, dx);
    }

    fn layer_norm(
        &self,
        x: &[f32],
        rows: usize,
        cols: usize,
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        epsilon: f32,
        y: &mut [f32],
        stats: &mut [f32],
    ) {
        kernels::layer_norm(&x[..rows * cols], cols, gamma, beta, epsilon, &mut y[..rows * cols], &mut stats[..2 * rows]);
    }

    fn layer_norm_backward(
        &self,
        x: &[f32],
        dy: &[f32],
        rows: usize,
        cols: usize,
        stats: &[f32],
        gamma: Option<&[f32]>,
        dgamma: Option<&mut [f32]>,
        dbeta: Option<&mut [f32]>,
        dx: Option<&mut [f32]>,
    ) {
        kernels::layer_norm_backward(&x[..rows * cols], &dy[..rows * cols], cols, &stats[..2 * rows], gamma, dgamma, dbeta, dx);
    }

    fn im2col(&self, g: &Window2d, batch: usize, x: &[f32], cols: &mut [f32]) {
        window::im2col(g, batch, x, cols);
    }

    fn col2im(&self, g: &Window2d, batch: usize, cols: &[f32], dx: &mut [f32]) {
        window::col2im(g, batch, cols, dx);
    }

    fn depthwise(&self, rows: usize, taps: usize, c: usize, dm: usize, cols: &[f32], kernel: &[f32], y: &mut [f32]) {
        window::depthwise(rows, taps, c, dm, cols, kernel, y);
    }

    fn depthwise_kernel_grad(&self, rows: usize, taps: usize, c: usize, dm: usize, cols: &[f32], dy: &[f32], dkernel: &mut [f32]) {
        window::depthwise_kernel_grad(rows, taps, c, dm, cols, dy, dkernel);
    }

    fn depthwise_input_grad(&self, rows: usize, taps: usize, c: usize, dm: usize, kernel: &[f32], dy: &[f32], dcols: &mut [f32]) {
        window::depthwise_input_grad(rows, taps, c, dm, kernel, dy, dcols);
    }

    fn pool2d(&self, g: &Window2d, kind: PoolKind, batch: usize, x: &[f32], y: &mut [f32]) {
        window::pool2d(g, kind, batch, x, y);
    }

    fn pool2d_backward(&self, g: &Window2d, kind: PoolKind, batch: usize, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        window::pool2d_backward(g, kind, batch, x, y, dy, dx);
    }

    fn embedding(&self, ids: &[f32], dim: usize, table: &[f32], y: &mut [f32]) {
        recurrent::embedding(ids, dim, table, y);
    }

    fn embedding_backward(&self, ids: &[f32], dim: usize, dy: &[f32], dtable: &mut [f32]) {
        recurrent::embedding_backward(ids, dim, dy, dtable);
    }

    fn rnn_step(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        xw: &[f32],
        hu: Option<&[f32]>,
        rbias: Option<&[f32]>,
        prev: Option<(&[f32], &[f32])>,
        pre: &mut [f32],
        post: &mut [f32],
        h: &mut [f32],
        y: &mut [f32],
    ) {
        recurrent::rnn_step(cell, s, batch, xw, hu, rbias, prev, pre, post, h, y);
    }

    fn merge_directions(&self, mode: MergeMode, batch: usize, steps: usize, units: usize, fwd: &[f32], bwd: &[f32], y: &mut [f32]) {
        recurrent::merge_directions(mode, batch, steps, units, fwd, bwd, y);
    }

    fn merge_directions_backward(
        &self,
        mode: MergeMode,
        batch: usize,
        steps: usize,
        units: usize,
        dy: &[f32],
        fwd: &[f32],
        bwd: &[f32],
        dfwd: &mut [f32],
        dbwd: &mut [f32],
    ) {
        recurrent::merge_directions_backward(mode, batch, steps, units, dy, fwd, bwd, dfwd, dbwd);
    }

    fn merge(&self, op: MergeOp, xs: &[&[f32]], y: &mut [f32]) {
        merge::merge(op, xs, y);
    }

    fn merge_backward(&self, op: MergeOp, i: usize, xs: &[&[f32]], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        merge::merge_backward(op, i, xs, y, dy, dx);
    }

    fn copy_cols(
        &self,
        rows: usize,
        width: usize,
        src: &[f32],
        src_width: usize,
        src_off: usize,
        dst: &mut [f32],
        dst_width: usize,
        dst_off: usize,
    ) {
        merge::copy_cols(rows, width, src, src_width, src_off, dst, dst_width, dst_off);
    }

    fn add(&self, src: &[f32], dst: &mut [f32]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    }

    fn rnn_reset_state(&self, cell: &RnnCell, s: usize, batch: usize, xw: &[f32], hu: &[f32], h: &[f32], rh: &mut [f32]) {
        recurrent::rnn_reset_state(cell, s, batch, xw, hu, h, rh);
    }

    fn rnn_reset_state_backward(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        drh: Option<&[f32]>,
        pre: &[f32],
        post: &[f32],
        h: Option<&[f32]>,
        dh: &mut [f32],
        dxw: &mut [f32],
        dhu: &mut [f32],
        dbias: Option<&mut [f32]>,
    ) {
        recurrent::rnn_reset_state_backward(cell, s, batch, drh, pre, post, h, dh, dxw, dhu, dbias);
    }

    fn rnn_step_backward(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        dy: &[f32],
        pre: &[f32],
        post: &[f32],
        prev: Option<(&[f32], &[f32])>,
        dh: &mut [f32],
        dc: &mut [f32],
        dxw: &mut [f32],
        dhu: &mut [f32],
        tmp: &mut [f32],
        dbias: Option<&mut [f32]>,
        drbias: Option<&mut [f32]>,
    ) {
        recurrent::rnn_step_backward(cell, s, batch, dy, pre, post, prev, dh, dc, dxw, dhu, tmp, dbias, drbias);
    }

    fn dropout(&self, x: &[f32], y: &mut [f32], mask: &mut [f32], rate: f32, seed: u64, stream: u64) {
        kernels::dropout(x, y, mask, rate, seed, stream);
    }

    fn dropout_backward(&self, g: &[f32], mask: &[f32], dx: &mut [f32], rate: f32) {
        kernels::dropout_backward(g, mask, dx, rate);
    }

    fn spatial_dropout(&self, x: &[f32], y: &mut [f32], mask: &mut [f32], rows: usize, channels: usize, rate: f32, seed: u64, stream: u64) {
        noise::spatial_dropout(x, y, mask, rows, channels, rate, seed, stream);
    }

    fn spatial_dropout_backward(&self, g: &[f32], mask: &[f32], dx: &mut [f32], rows: usize, channels: usize, rate: f32) {
        noise::spatial_dropout_backward(g, mask, dx, rows, channels, rate);
    }

    fn gaussian_noise(&self, x: &[f32], y: &mut [f32], noise: Option<&mut [f32]>, stddev: f32, seed: u64, stream: u64) {
        noise::gaussian_noise(x, y, noise, stddev, seed, stream);
    }

    fn multiply(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        noise::multiply(a, b, out);
    }

    fn permute(&self, p: &Permutation, batch: usize, x: &[f32], y: &mut [f32]) {
        shuffle::permute(p, batch, x, y);
    }

    fn repeat(&self, batch: usize, times: usize, width: usize, x: &[f32], y: &mut [f32]) {
        shuffle::repeat(batch, times, width, x, y);
    }

    fn repeat_backward(&self, batch: usize, times: usize, width: usize, dy: &[f32], dx: &mut [f32]) {
        shuffle::repeat_backward(batch, times, width, dy, dx);
    }

    fn pad2d(&self, g: &Border2d, batch: usize, small: &[f32], large: &mut [f32]) {
        shuffle::pad2d(g, batch, small, large);
    }

    fn crop2d(&self, g: &Border2d, batch: usize, large: &[f32], small: &mut [f32]) {
        shuffle::crop2d(g, batch, large, small);
    }

    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: &[f32], y: &mut [f32]) {
        shuffle::upsample2d(g, batch, x, y);
    }

    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: &[f32], dx: &mut [f32]) {
        shuffle::upsample2d_backward(g, batch, dy, dx);
    }

    fn loss(
        &self,
        loss: LossConfig,
        pred: &[f32],
        target: &[f32],
        weights: Option<&[f32]>,
        grad: Option<&mut [f32]>,
        rows: usize,
        cols: usize,
        stats: &mut [f32],
    ) {
        kernels::loss(loss, pred, target, weights, grad, rows, cols, stats);
    }

    fn regularize(&self, reg: Regularizer, w: &[f32], g: Option<&mut [f32]>, scale: f32, stats: Option<&mut [f32]>) {
        if let Some(stats) = stats {
            stats[0] += scale * reg.penalty(w);
        }
        if let Some(g) = g {
            reg.add_gradient(w, g);
        }
    }

    fn constrain(&self, constraint: Constraint, w: &mut [f32], shape: &[usize]) {
        constraint.apply(w, shape);
    }

    fn metric(&self, kind: MetricKind, pred: &[f32], target: &[f32], rows: usize, cols: usize, stats: &mut [f32]) {
        kind.accumulate(pred, target, rows, cols, stats);
    }

    fn update(&self, update: &Update, params: &mut [f32], grads: &[f32], state: &mut [Vec<f32>]) {
        kernels::update(update, params, grads, state);
    }

    fn sum_squares(&self, v: &[f32]) -> Result<f32> {
        Ok(kernels::sum_squares(v))
    }

    fn scale(&self, v: &mut [f32], factor: f32) {
        kernels::scale(v, factor);
    }
}
