//! The CPU backend: buffers are `Vec<f32>`, views are slices, kernels use AVX-512, AVX2+FMA or
//! scalar code as the machine allows (detected at run time, never `target-cpu=native`), and large
//! kernels spread over a thread pool. It overrides every kernel of every op family; each module
//! here holds the math of one family.

pub mod activation;
pub mod gemm;
pub mod kernels;
pub mod losses;
pub mod merge;
pub mod metrics;
pub mod noise;
pub mod optimizer;
pub mod penalties;
pub mod pool;
pub mod recurrent;
pub mod shuffle;
pub(crate) mod simd;
pub mod window;

use super::device::{DenseOps, Device, LayoutOps, NormOps, ObjectiveOps, OptimizerOps, RandomOps, SequenceOps, WindowOps};
use super::ops::*;
use crate::error::{Error, Result};
use gemm::{MatMut, MatRef};
use std::ops::Range;

pub use pool::set_num_threads;

thread_local! {
    /// The CPU's sticky kernel failure (see [`Device::fail`]), per calling thread: kernels run
    /// on the thread that launches them (helped by the pool) and are read back there.
    static FAILURE: std::cell::Cell<Option<Error>> = const { std::cell::Cell::new(None) };
    /// Whether `FAILURE` holds an error: what a read checks.
    static FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
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

impl Device for Cpu {
    type Buffer = Vec<f32>;
    type View<'a> = &'a [f32];
    type ViewMut<'a> = &'a mut [f32];
    type Indices = Vec<usize>;

    #[inline]
    fn describe(&self) -> String {
        format!("cpu ({:?}, {} threads)", self.simd_level(), self.threads()).to_lowercase()
    }

    #[inline]
    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    #[inline]
    fn len(buf: &Vec<f32>) -> usize {
        buf.len()
    }

    #[inline]
    fn view(buf: &Vec<f32>, range: Range<usize>) -> &[f32] {
        &buf[range]
    }

    #[inline]
    fn view_mut(buf: &mut Vec<f32>, range: Range<usize>) -> &mut [f32] {
        &mut buf[range]
    }

    #[inline]
    fn view_len(v: &[f32]) -> usize {
        v.len()
    }

    #[inline]
    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a> {
        &v[range]
    }

    #[inline]
    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        v.split_at_mut(mid)
    }

    #[inline]
    fn reborrow<'s>(v: &'s mut &mut [f32]) -> &'s mut [f32] {
        v
    }

    #[inline]
    fn freeze<'s>(v: &'s &mut [f32]) -> &'s [f32] {
        v
    }

    #[inline]
    fn shorten<'s>(v: &'s &[f32]) -> &'s [f32] {
        v
    }

    #[inline]
    fn host_view<'a>(&self, data: &'a [f32]) -> Option<&'a [f32]> {
        Some(data)
    }

    fn host_slice_mut<'a>(&self, v: Self::ViewMut<'a>) -> Option<&'a mut [f32]> {
        Some(v)
    }

    #[inline]
    fn upload(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }

    #[inline]
    fn download(&self, src: &[f32], dst: &mut [f32]) -> Result<()> {
        self.sync()?;
        dst.copy_from_slice(src);
        Ok(())
    }

    #[inline]
    fn sync(&self) -> Result<()> {
        if !FAILED.get() {
            return Ok(());
        }
        FAILED.set(false);
        match FAILURE.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The CPU's own kernels cannot fail; a failure reported by other code (a kernel written
    /// over the CPU's views) is kept until the calling thread's next read, as on any device.
    fn fail(&self, error: Error) {
        let first = FAILURE.take().unwrap_or(error);
        FAILURE.set(Some(first));
        FAILED.set(true);
    }

    #[inline]
    fn copy(&self, src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }

    #[inline]
    fn fill(&self, dst: &mut [f32], value: f32) {
        dst.fill(value);
    }

    #[inline]
    fn gemm(&self, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
        let &Gemm { m, n, k, ta, tb, accumulate } = g;
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

    #[inline]
    fn add(&self, src: &[f32], dst: &mut [f32]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    }

    #[inline]
    fn scale(&self, v: &mut [f32], factor: f32) {
        kernels::scale(v, factor);
    }

    #[inline]
    fn multiply(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        noise::multiply(a, b, out);
    }

    #[inline]
    fn alloc_indices(&self, len: usize) -> Result<Vec<usize>> {
        Ok(vec![0; len])
    }

    #[inline]
    fn upload_indices(&self, src: &[usize], dst: &mut Vec<usize>) -> Result<()> {
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }

    #[inline]
    fn gather_rows(&self, src: &[f32], row_len: usize, indices: &Vec<usize>, range: Range<usize>, dst: &mut [f32]) {
        for (d, &r) in dst.chunks_exact_mut(row_len).zip(&indices[range]) {
            d.copy_from_slice(&src[r * row_len..(r + 1) * row_len]);
        }
    }
}

impl DenseOps for Cpu {
    #[inline]
    fn linear(&self, l: &Linear, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], pre: Option<&mut [f32]>) {
        let (x, w) = (MatRef::row_major(x, l.rows, l.k), MatRef::row_major(w, l.k, l.n));
        match pre {
            Some(pre) => {
                gemm::gemm(x, w, MatMut::row_major(&mut *y, l.rows, l.n), false);
                kernels::bias_act(&BiasAct { rows: l.rows, cols: l.n, act: l.act }, y, bias, Some(pre));
            }
            None => gemm::gemm_epilogue(x, w, MatMut::row_major(y, l.rows, l.n), gemm::Epilogue { bias, act: l.act }),
        }
    }

    #[inline]
    fn bias_act(&self, a: &BiasAct, y: &mut [f32], bias: Option<&[f32]>, pre: Option<&mut [f32]>) {
        kernels::bias_act(a, y, bias, pre);
    }

    #[inline]
    fn act_backward(&self, a: &BiasAct, g: &mut [f32], y: &[f32], pre: Option<&[f32]>, dbias: Option<&mut [f32]>) {
        kernels::act_backward(a, g, y, pre, dbias);
    }

    #[inline]
    fn relu(&self, r: &Relu, x: &[f32], y: &mut [f32]) {
        kernels::relu(r, x, y);
    }

    #[inline]
    fn relu_backward(&self, r: &Relu, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        kernels::relu_backward(r, x, dy, dx);
    }

    #[inline]
    fn elu(&self, e: &Elu, x: &[f32], y: &mut [f32]) {
        kernels::elu(e, x, y);
    }

    #[inline]
    fn elu_backward(&self, e: &Elu, x: &[f32], dy: &[f32], dx: &mut [f32]) {
        kernels::elu_backward(e, x, dy, dx);
    }

    #[inline]
    fn prelu(&self, p: &Prelu, x: &[f32], alpha: &[f32], y: &mut [f32]) {
        kernels::prelu(p, x, alpha, y);
    }

    #[inline]
    fn prelu_backward(&self, p: &Prelu, x: &[f32], alpha: &[f32], dy: &[f32], dx: &mut [f32]) {
        kernels::prelu_backward(p, x, alpha, dy, dx);
    }

    #[inline]
    fn prelu_alpha_grad(&self, p: &Prelu, x: &[f32], dy: &[f32], dalpha: &mut [f32]) {
        kernels::prelu_alpha_grad(p, x, dy, dalpha);
    }
}

impl NormOps for Cpu {
    #[inline]
    fn moments(&self, n: &Norm, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
        kernels::moments(n, x, mean, var);
    }

    #[inline]
    fn moving_average(&self, momentum: f32, moving: &mut [f32], value: &[f32]) {
        kernels::moving_average(momentum, moving, value);
    }

    #[inline]
    fn batch_norm(&self, n: &Norm, x: &[f32], mean: &[f32], var: &mut [f32], affine: Affine<&[f32]>, y: &mut [f32]) {
        kernels::batch_norm(n, x, mean, var, affine, y);
    }

    #[inline]
    fn batch_norm_backward(
        &self,
        n: &Norm,
        x: &[f32],
        dy: &[f32],
        stats: BatchStats<&[f32]>,
        gamma: Option<&[f32]>,
        grads: NormGrads<&mut [f32]>,
    ) {
        kernels::batch_norm_backward(n, x, dy, stats, gamma, grads);
    }

    #[inline]
    fn layer_norm(&self, n: &Norm, x: &[f32], affine: Affine<&[f32]>, y: &mut [f32], stats: &mut [f32]) {
        kernels::layer_norm(n, x, affine, y, stats);
    }

    #[inline]
    fn layer_norm_backward(&self, n: &Norm, x: &[f32], dy: &[f32], stats: &[f32], gamma: Option<&[f32]>, grads: NormGrads<&mut [f32]>) {
        kernels::layer_norm_backward(n, x, dy, stats, gamma, grads);
    }

    #[inline]
    fn standardize(&self, s: &Standardize, x: &[f32], mean: &[f32], var: &[f32], y: &mut [f32]) {
        kernels::standardize(s, x, mean, var, y);
    }

    #[inline]
    fn standardize_backward(&self, s: &Standardize, var: &[f32], dy: &[f32], dx: &mut [f32]) {
        kernels::standardize_backward(s, var, dy, dx);
    }

    #[inline]
    fn rescale(&self, r: &Rescale, x: &[f32], y: &mut [f32]) {
        kernels::rescale(r, x, y);
    }
}

impl WindowOps for Cpu {
    #[inline]
    fn im2col(&self, g: &Window2d, batch: usize, x: &[f32], cols: &mut [f32]) {
        window::im2col(g, batch, x, cols);
    }

    #[inline]
    fn col2im(&self, g: &Window2d, batch: usize, cols: &[f32], dx: &mut [f32]) {
        window::col2im(g, batch, cols, dx);
    }

    #[inline]
    fn depthwise(&self, d: &Depthwise, cols: &[f32], kernel: &[f32], y: &mut [f32]) {
        window::depthwise(d, cols, kernel, y);
    }

    #[inline]
    fn depthwise_conv(&self, g: &Window2d, d: &Depthwise, batch: usize, x: &[f32], kernel: &[f32], _cols: &mut [f32], y: &mut [f32]) {
        window::depthwise_conv(g, batch, d.dm, x, kernel, y);
    }

    #[inline]
    fn depthwise_kernel_grad(&self, d: &Depthwise, cols: &[f32], dy: &[f32], dkernel: &mut [f32]) {
        window::depthwise_kernel_grad(d, cols, dy, dkernel);
    }

    #[inline]
    fn depthwise_input_grad(&self, d: &Depthwise, kernel: &[f32], dy: &[f32], dcols: &mut [f32]) {
        window::depthwise_input_grad(d, kernel, dy, dcols);
    }

    #[inline]
    fn pool2d(&self, p: &Pool2d, batch: usize, x: &[f32], y: &mut [f32]) {
        window::pool2d(p, batch, x, y);
    }

    #[inline]
    fn pool2d_backward(&self, p: &Pool2d, batch: usize, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        window::pool2d_backward(p, batch, x, y, dy, dx);
    }
}

impl SequenceOps for Cpu {
    #[inline]
    fn embedding(&self, dim: usize, ids: &[f32], table: &[f32], y: &mut [f32]) {
        recurrent::embedding(dim, ids, table, y);
    }

    #[inline]
    fn embedding_backward(&self, dim: usize, ids: &[f32], dy: &[f32], dtable: &mut [f32]) {
        recurrent::embedding_backward(dim, ids, dy, dtable);
    }

    #[inline]
    fn rnn_step(&self, s: &RnnStep, io: RnnStepIo<&[f32], &mut [f32]>) {
        recurrent::rnn_step(s, io);
    }

    #[inline]
    fn rnn_reset_state(&self, s: &RnnStep, xw: &[f32], hu: &[f32], h: &[f32], rh: &mut [f32]) {
        recurrent::rnn_reset_state(s, xw, hu, h, rh);
    }

    #[inline]
    fn rnn_step_backward(&self, s: &RnnStep, g: RnnStepGrads<&[f32], &mut [f32]>) {
        recurrent::rnn_step_backward(s, g);
    }

    #[inline]
    fn rnn_reset_state_backward(&self, s: &RnnStep, g: RnnResetGrads<&[f32], &mut [f32]>) {
        recurrent::rnn_reset_state_backward(s, g);
    }

    #[inline]
    fn merge_directions(&self, d: &Directions, fwd: &[f32], bwd: &[f32], y: &mut [f32]) {
        recurrent::merge_directions(d, fwd, bwd, y);
    }

    #[inline]
    fn merge_directions_backward(&self, d: &Directions, dy: &[f32], fwd: &[f32], bwd: &[f32], dfwd: &mut [f32], dbwd: &mut [f32]) {
        recurrent::merge_directions_backward(d, dy, fwd, bwd, dfwd, dbwd);
    }
}

impl LayoutOps for Cpu {
    #[inline]
    fn permute(&self, p: &Permutation, batch: usize, x: &[f32], y: &mut [f32]) {
        shuffle::permute(p, batch, x, y);
    }

    #[inline]
    fn repeat(&self, r: &Repeat, x: &[f32], y: &mut [f32]) {
        shuffle::repeat(r, x, y);
    }

    #[inline]
    fn repeat_backward(&self, r: &Repeat, dy: &[f32], dx: &mut [f32]) {
        shuffle::repeat_backward(r, dy, dx);
    }

    #[inline]
    fn pad2d(&self, g: &Border2d, batch: usize, small: &[f32], large: &mut [f32]) {
        shuffle::pad2d(g, batch, small, large);
    }

    #[inline]
    fn crop2d(&self, g: &Border2d, batch: usize, large: &[f32], small: &mut [f32]) {
        shuffle::crop2d(g, batch, large, small);
    }

    #[inline]
    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: &[f32], y: &mut [f32]) {
        shuffle::upsample2d(g, batch, x, y);
    }

    #[inline]
    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: &[f32], dx: &mut [f32]) {
        shuffle::upsample2d_backward(g, batch, dy, dx);
    }

    #[inline]
    fn copy_cols(&self, c: &CopyCols, src: &[f32], dst: &mut [f32]) {
        merge::copy_cols(c, src, dst);
    }

    #[inline]
    fn merge(&self, op: MergeOp, xs: &[&[f32]], y: &mut [f32]) {
        merge::merge(op, xs, y);
    }

    #[inline]
    fn merge_backward(&self, op: MergeOp, i: usize, xs: &[&[f32]], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        merge::merge_backward(op, i, xs, y, dy, dx);
    }
}

impl RandomOps for Cpu {
    #[inline]
    fn dropout(&self, d: &Draw, stream: &[f32], x: &[f32], y: &mut [f32], mask: &mut [f32]) {
        noise::dropout(d, RandomStream::decode(stream), x, y, mask);
    }

    #[inline]
    fn dropout_backward(&self, d: &Draw, g: &[f32], mask: &[f32], dx: &mut [f32]) {
        noise::dropout_backward(d, g, mask, dx);
    }

    #[inline]
    fn gaussian_noise(&self, d: &Draw, stream: &[f32], x: &[f32], y: &mut [f32], noise: Option<&mut [f32]>) {
        noise::gaussian_noise(d, RandomStream::decode(stream), x, y, noise);
    }

    #[inline]
    fn advance(&self, stream: &mut [f32]) {
        noise::advance(stream);
    }
}

impl ObjectiveOps for Cpu {
    #[inline]
    fn loss(&self, l: &LossBatch, pred: &[f32], target: &[f32], weights: Option<&[f32]>, grad: Option<&mut [f32]>, stats: &mut [f32]) {
        losses::loss(l, pred, target, weights, grad, stats);
    }

    #[inline]
    fn metric(&self, m: &MetricBatch, pred: &[f32], target: &[f32], stats: &mut [f32]) {
        metrics::accumulate(m, pred, target, stats);
    }

    #[inline]
    fn regularize(&self, r: &Regularizer, w: &[f32], g: Option<&mut [f32]>, scale: f32, stats: Option<&mut [f32]>) {
        penalties::regularize(r, w, g, scale, stats);
    }
}

impl OptimizerOps for Cpu {
    #[inline]
    fn update(&self, u: &Update, tensors: &[Segment], params: &mut [f32], grads: &mut [f32], state: &mut [Vec<f32>], step: &mut [f32]) {
        optimizer::update(u, tensors, params, grads, state, step);
    }

    #[inline]
    fn constrain(&self, c: &Constraint, rows: usize, w: &mut [f32]) {
        penalties::constrain(c, rows, w);
    }
}
