//! `DepthwiseConv2D` and `SeparableConv2D`: each input channel convolved with its own
//! `depth_multiplier` filters (im2col, then a per-channel product over the patch rows), followed
//! for the separable form by a pointwise (1 x 1) convolution, one matrix product for the batch.

use super::{Backward, Forward, Layer};
use crate::activations::ActivationFn;
use crate::backend::{Backend, BiasAct, Depthwise, Gemm, Linear, Window2d};
use std::marker::PhantomData;

/// A depthwise convolution from `IN = h * w * c` to `OUT = oh * ow * CHANNELS` floats per sample
/// (`CHANNELS = c * depth_multiplier`), with activation `A` and a bias when `BIAS`;
/// `KERNEL = kh * kw * CHANNELS`, and `COLS = oh * ow * kh * kw * c` is the size of a sample's
/// patch matrix. Parameters: kernel `(kh, kw, c, depth_multiplier)` row-major (Keras's layout),
/// then bias `(CHANNELS,)`.
pub struct DepthwiseConv2D<
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const CHANNELS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> {
    window: Window2d,
    _act: PhantomData<A>,
}

impl<const IN: usize, const OUT: usize, const KERNEL: usize, const CHANNELS: usize, const COLS: usize, A: ActivationFn, const BIAS: bool>
    DepthwiseConv2D<IN, OUT, KERNEL, CHANNELS, COLS, A, BIAS>
{
    /// Trainable floats.
    pub const PARAMS: usize = KERNEL + if BIAS { CHANNELS } else { 0 };
    /// Per-sample scratch: the patch matrix (reused for its gradient in backward), then the
    /// activation's input when its derivative needs it.
    pub const SCRATCH: usize = COLS + if A::KIND.needs_input() { OUT } else { 0 };

    /// The layer over `window` (whose sizes must agree with the const parameters).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.h * window.w * window.c == IN && window.oh * window.ow * CHANNELS == OUT);
        assert!(CHANNELS.is_multiple_of(window.c) && window.kh * window.kw * CHANNELS == KERNEL);
        assert!(window.oh * window.ow * window.kh * window.kw * window.c == COLS);
        DepthwiseConv2D { window, _act: PhantomData }
    }
}

impl<
    B: Backend,
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const CHANNELS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> Layer<B, IN, OUT> for DepthwiseConv2D<IN, OUT, KERNEL, CHANNELS, COLS, A, BIAS>
{
    /// `y = act(depthwise(x, kernel) + bias)`.
    fn forward(&self, Forward { ctx, params, x, mut y, scratch, training, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let d = depthwise(g, batch, CHANNELS);
        let kernel = B::sub(params, 0..KERNEL);
        if training {
            // `backward` reads the patch matrix.
            dev.im2col(g, batch, x.view, B::reborrow(&mut cols));
            dev.depthwise(&d, B::freeze(&cols), kernel, B::reborrow(&mut y.view));
        } else {
            dev.depthwise_conv(g, &d, batch, x.view, kernel, cols, B::reborrow(&mut y.view));
        }
        let bias = BIAS.then(|| B::sub(params, KERNEL..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(rest, batch * OUT).0);
        dev.bias_act(&BiasAct { rows: d.rows, cols: CHANNELS, act: A::KIND }, y.view, bias, pre);
    }

    /// Gradients of kernel and bias into `grads`; `dx` (when wanted) gets the input gradient.
    /// `dy` is overwritten with the gradient before the activation, the scratch's patch matrix
    /// with its own gradient.
    fn backward(&self, Backward { ctx, params, grads, x, y, scratch, mut dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let d = depthwise(g, batch, CHANNELS);
        let (dkernel, dbias) = B::split_mut(grads, KERNEL);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&rest), 0..batch * OUT));
        let a = BiasAct { rows: d.rows, cols: CHANNELS, act: A::KIND };
        dev.act_backward(&a, B::reborrow(&mut dy.view), y.view, pre, BIAS.then_some(dbias));
        let dz = B::freeze(&dy.view);
        dev.depthwise_kernel_grad(&d, B::freeze(&cols), dz, dkernel);
        if let Some(dx) = dx {
            dev.depthwise_input_grad(&d, B::sub(params, 0..KERNEL), dz, B::reborrow(&mut cols));
            dev.col2im(g, batch, B::freeze(&cols), dx.view);
        }
    }
}

/// A depthwise-separable convolution from `IN = h * w * c` to `OUT = oh * ow * FILTERS` floats
/// per sample: a depthwise convolution to `INNER = c * depth_multiplier` channels (no bias), then
/// a pointwise one to `FILTERS`, with a bias when `BIAS` and activation `A`. `DEPTHWISE = kh * kw
/// * INNER`; `COLS = oh * ow * kh * kw * c` is the size of a sample's patch matrix. Parameters, as
/// Keras orders them: depthwise kernel `(kh, kw, c, depth_multiplier)`, pointwise kernel
/// `(1, 1, INNER, FILTERS)`, bias `(FILTERS,)`.
pub struct SeparableConv2D<
    const IN: usize,
    const OUT: usize,
    const DEPTHWISE: usize,
    const INNER: usize,
    const FILTERS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> {
    window: Window2d,
    _act: PhantomData<A>,
}

impl<
    const IN: usize,
    const OUT: usize,
    const DEPTHWISE: usize,
    const INNER: usize,
    const FILTERS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> SeparableConv2D<IN, OUT, DEPTHWISE, INNER, FILTERS, COLS, A, BIAS>
{
    const POINTWISE: usize = INNER * FILTERS;
    /// Floats per sample between the two convolutions.
    const MID: usize = OUT / FILTERS * INNER;
    /// Trainable floats.
    pub const PARAMS: usize = DEPTHWISE + Self::POINTWISE + if BIAS { FILTERS } else { 0 };
    /// Per-sample scratch: the patch matrix, the depthwise output (both reused for their gradients
    /// in backward), then the activation's input when its derivative needs it.
    pub const SCRATCH: usize = COLS + Self::MID + if A::KIND.needs_input() { OUT } else { 0 };

    /// The layer over `window` (whose sizes must agree with the const parameters).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.h * window.w * window.c == IN && window.oh * window.ow * FILTERS == OUT);
        assert!(INNER.is_multiple_of(window.c) && window.kh * window.kw * INNER == DEPTHWISE);
        assert!(window.oh * window.ow * window.kh * window.kw * window.c == COLS);
        SeparableConv2D { window, _act: PhantomData }
    }
}

impl<
    B: Backend,
    const IN: usize,
    const OUT: usize,
    const DEPTHWISE: usize,
    const INNER: usize,
    const FILTERS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> Layer<B, IN, OUT> for SeparableConv2D<IN, OUT, DEPTHWISE, INNER, FILTERS, COLS, A, BIAS>
{
    /// `y = act(pointwise(depthwise(x)) + bias)`.
    fn forward(&self, Forward { ctx, params, x, y, scratch, training, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let d = depthwise(g, batch, INNER);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let (mut mid, rest) = B::split_mut(rest, batch * Self::MID);
        let kernel = B::sub(params, 0..DEPTHWISE);
        if training {
            // `backward` reads the patch matrix.
            dev.im2col(g, batch, x.view, B::reborrow(&mut cols));
            dev.depthwise(&d, B::freeze(&cols), kernel, B::reborrow(&mut mid));
        } else {
            dev.depthwise_conv(g, &d, batch, x.view, kernel, cols, B::reborrow(&mut mid));
        }
        let pointwise = B::sub(params, DEPTHWISE..DEPTHWISE + Self::POINTWISE);
        let bias = BIAS.then(|| B::sub(params, DEPTHWISE + Self::POINTWISE..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(rest, batch * OUT).0);
        dev.linear(&Linear { rows: d.rows, k: INNER, n: FILTERS, act: A::KIND }, B::freeze(&mid), pointwise, bias, y.view, pre);
    }

    /// Gradients of both kernels and the bias into `grads`; `dx` (when wanted) gets the input
    /// gradient. `dy` is overwritten with the gradient before the activation, the scratch with
    /// the gradients of what forward left there.
    fn backward(&self, Backward { ctx, params, grads, x, y, scratch, mut dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let d = depthwise(g, batch, INNER);
        let rows = d.rows;
        let (ddepthwise, rest) = B::split_mut(grads, DEPTHWISE);
        let (dpointwise, dbias) = B::split_mut(rest, Self::POINTWISE);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let (mut mid, rest) = B::split_mut(rest, batch * Self::MID);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&rest), 0..batch * OUT));
        dev.act_backward(&BiasAct { rows, cols: FILTERS, act: A::KIND }, B::reborrow(&mut dy.view), y.view, pre, BIAS.then_some(dbias));
        let dz = B::freeze(&dy.view);
        dev.gemm(&Gemm::tn(INNER, FILTERS, rows), B::freeze(&mid), dz, dpointwise);
        // The depthwise output is not needed any more: its gradient takes its place.
        let pointwise = B::sub(params, DEPTHWISE..DEPTHWISE + Self::POINTWISE);
        dev.gemm(&Gemm::nt(rows, INNER, FILTERS), dz, pointwise, B::reborrow(&mut mid));
        let dmid = B::freeze(&mid);
        dev.depthwise_kernel_grad(&d, B::freeze(&cols), dmid, ddepthwise);
        if let Some(dx) = dx {
            dev.depthwise_input_grad(&d, B::sub(params, 0..DEPTHWISE), dmid, B::reborrow(&mut cols));
            dev.col2im(g, batch, B::freeze(&cols), dx.view);
        }
    }
}

/// The depthwise product of `batch` samples' patch rows over `window`, to `channels` outputs.
fn depthwise(window: &Window2d, batch: usize, channels: usize) -> Depthwise {
    Depthwise { rows: batch * window.out_pixels(), taps: window.kh * window.kw, c: window.c, dm: channels / window.c }
}
