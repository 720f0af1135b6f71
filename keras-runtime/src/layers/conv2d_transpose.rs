//! `Conv2DTranspose`: the adjoint of a 2-D convolution (what Keras calls a transposed
//! convolution), as one matrix product for the batch followed by col2im.

use super::{Backward, Forward, Layer};
use crate::activations::ActivationFn;
use crate::backend::{Backend, BiasAct, Gemm, Window2d};
use std::marker::PhantomData;

/// A transposed convolution from `IN = h * w * cin` to `OUT = oh * ow * FILTERS` floats per
/// sample, with activation `A` and a bias when `BIAS`. Its geometry is that of the convolution it
/// is the adjoint of: a window over the `(oh, ow, FILTERS)` output that produces the `(h, w)`
/// input (so `window.h, window.w` are the output's size and `window.oh, window.ow` the input's).
/// `KERNEL = kh * kw * FILTERS * cin`; `COLS = h * w * kh * kw * FILTERS`. Parameters: kernel
/// `(kh, kw, FILTERS, cin)` row-major (Keras's layout), then bias `(FILTERS,)`.
pub struct Conv2DTranspose<
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const FILTERS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> {
    window: Window2d,
    _act: PhantomData<A>,
}

impl<const IN: usize, const OUT: usize, const KERNEL: usize, const FILTERS: usize, const COLS: usize, A: ActivationFn, const BIAS: bool>
    Conv2DTranspose<IN, OUT, KERNEL, FILTERS, COLS, A, BIAS>
{
    /// Trainable floats.
    pub const PARAMS: usize = KERNEL + if BIAS { FILTERS } else { 0 };
    /// Per-sample scratch: the patch matrix, then the activation's input when its derivative
    /// needs it.
    pub const SCRATCH: usize = COLS + if A::KIND.needs_input() { OUT } else { 0 };

    /// The layer over `window` (whose sizes must agree with the const parameters).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.c == FILTERS && window.h * window.w * FILTERS == OUT);
        assert!(window.out_pixels() > 0 && IN.is_multiple_of(window.out_pixels()));
        assert!(window.kh * window.kw * FILTERS * (IN / window.out_pixels()) == KERNEL);
        assert!(window.out_pixels() * window.kh * window.kw * FILTERS == COLS);
        Conv2DTranspose { window, _act: PhantomData }
    }

    /// Input channels.
    const fn cin(&self) -> usize {
        IN / self.window.out_pixels()
    }
}

impl<
    B: Backend,
    const IN: usize,
    const OUT: usize,
    const KERNEL: usize,
    const FILTERS: usize,
    const COLS: usize,
    A: ActivationFn,
    const BIAS: bool,
> Layer<B, IN, OUT> for Conv2DTranspose<IN, OUT, KERNEL, FILTERS, COLS, A, BIAS>
{
    /// `y = act(conv_transpose(x, kernel) + bias)`.
    fn forward(&self, Forward { ctx, params, x, mut y, scratch, training, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let kernel = B::sub(params, 0..KERNEL);
        // Each input pixel spreads its channels over a patch of the output: x · kernelᵀ.
        dev.gemm(&Gemm::nt(batch * g.out_pixels(), g.patch_len(), self.cin()), x.view, kernel, B::reborrow(&mut cols));
        dev.col2im(g, batch, B::freeze(&cols), B::reborrow(&mut y.view));
        let bias = BIAS.then(|| B::sub(params, KERNEL..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(rest, batch * OUT).0);
        dev.bias_act(&BiasAct { rows: batch * g.h * g.w, cols: FILTERS, act: A::KIND }, y.view, bias, pre);
    }

    /// Gradients of kernel and bias into `grads`; `dx` (when wanted) gets the input gradient.
    /// `dy` is overwritten with the gradient before the activation, the scratch's patch matrix
    /// with the patches of that gradient.
    fn backward(&self, Backward { ctx, params, grads, x, y, scratch, mut dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g, cin) = (x.rows, &self.window, self.cin());
        let (rows, patch) = (batch * g.out_pixels(), g.patch_len());
        let (dkernel, dbias) = B::split_mut(grads, KERNEL);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&rest), 0..batch * OUT));
        let a = BiasAct { rows: batch * g.h * g.w, cols: FILTERS, act: A::KIND };
        dev.act_backward(&a, B::reborrow(&mut dy.view), y.view, pre, BIAS.then_some(dbias));
        dev.im2col(g, batch, B::freeze(&dy.view), B::reborrow(&mut cols));
        let cols = B::freeze(&cols);
        dev.gemm(&Gemm::tn(patch, cin, rows), cols, x.view, dkernel);
        if let Some(dx) = dx {
            dev.gemm(&Gemm::nn(rows, cin, patch), cols, B::sub(params, 0..KERNEL), dx.view);
        }
    }
}
