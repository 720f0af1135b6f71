//! `Conv2D` (and `Conv1D`, a `Conv2D` of height 1): a convolution over NHWC samples, as im2col +
//! one matrix product for the batch.

use super::{Backward, Forward, Layer};
use crate::activations::ActivationFn;
use crate::backend::{Backend, BiasAct, Gemm, Linear, Window2d};
use std::marker::PhantomData;

/// A 2-D convolution from `IN = h * w * c` to `OUT = oh * ow * FILTERS` floats per sample, with
/// activation `A` and a bias when `BIAS`; `KERNEL = kh * kw * c * FILTERS`, and `COLS = oh * ow *
/// kh * kw * c` is the size of a sample's patch matrix. The geometry is in the value. Parameters:
/// kernel `(kh, kw, c, FILTERS)` row-major (Keras's layout), then bias `(FILTERS,)`.
pub struct Conv2D<
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
    Conv2D<IN, OUT, KERNEL, FILTERS, COLS, A, BIAS>
{
    /// Trainable floats.
    pub const PARAMS: usize = KERNEL + if BIAS { FILTERS } else { 0 };
    /// Per-sample scratch: the patch matrix (reused for its gradient in backward; unused by a
    /// 1x1 window at stride 1 without padding, whose patch matrix is its input), then the
    /// activation's input when its derivative needs it.
    pub const SCRATCH: usize = COLS + if A::KIND.needs_input() { OUT } else { 0 };

    /// A 1x1 window at stride 1 without padding: the patch matrix is the input itself, so
    /// `forward` and `backward` skip im2col and col2im.
    const fn pointwise(g: &Window2d) -> bool {
        g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.oh == g.h && g.ow == g.w
    }

    /// The layer over `window` (whose sizes must agree with the const parameters).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.h * window.w * window.c == IN && window.oh * window.ow * FILTERS == OUT);
        assert!(window.kh * window.kw * window.c * FILTERS == KERNEL && window.oh * window.ow * window.kh * window.kw * window.c == COLS);
        Conv2D { window, _act: PhantomData }
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
> Layer<B, IN, OUT> for Conv2D<IN, OUT, KERNEL, FILTERS, COLS, A, BIAS>
{
    /// `y = act(conv(x, kernel) + bias)`.
    fn forward(&self, Forward { ctx, params, x, y, scratch, training, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let kernel = B::sub(params, 0..KERNEL);
        let bias = BIAS.then(|| B::sub(params, KERNEL..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(rest, batch * OUT).0);
        let l = Linear { rows: batch * g.out_pixels(), k: g.patch_len(), n: FILTERS, act: A::KIND };
        if Self::pointwise(g) {
            dev.linear(&l, x.view, kernel, bias, y.view, pre);
        } else {
            dev.im2col(g, batch, x.view, B::reborrow(&mut cols));
            dev.linear(&l, B::freeze(&cols), kernel, bias, y.view, pre);
        }
    }

    /// Gradients of kernel and bias into `grads`; `dx` (when wanted) gets the input gradient.
    /// `dy` is overwritten with the gradient before the activation, the scratch's patch matrix
    /// with its own gradient.
    fn backward(&self, Backward { ctx, params, grads, x, y, scratch, mut dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (batch, g) = (x.rows, &self.window);
        let (pixels, patch) = (batch * g.out_pixels(), g.patch_len());
        let (dkernel, dbias) = B::split_mut(grads, KERNEL);
        let (mut cols, rest) = B::split_mut(scratch, batch * COLS);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&rest), 0..batch * OUT));
        dev.act_backward(
            &BiasAct { rows: pixels, cols: FILTERS, act: A::KIND },
            B::reborrow(&mut dy.view),
            y.view,
            pre,
            BIAS.then_some(dbias),
        );
        let dz = B::freeze(&dy.view);
        let kernel = B::sub(params, 0..KERNEL);
        if Self::pointwise(g) {
            dev.gemm(&Gemm::tn(patch, FILTERS, pixels), x.view, dz, dkernel);
            if let Some(dx) = dx {
                dev.gemm(&Gemm::nt(pixels, patch, FILTERS), dz, kernel, dx.view);
            }
            return;
        }
        dev.gemm(&Gemm::tn(patch, FILTERS, pixels), B::freeze(&cols), dz, dkernel);
        if let Some(dx) = dx {
            dev.gemm(&Gemm::nt(pixels, patch, FILTERS), dz, kernel, B::reborrow(&mut cols));
            dev.col2im(g, batch, B::freeze(&cols), dx.view);
        }
    }
}
