//! `Dense`: `y = act(x · kernel + bias)`.

use super::{Backward, Forward, Layer};
use crate::activations::ActivationFn;
use crate::backend::{Backend, BiasAct, Gemm, Linear};
use std::marker::PhantomData;

/// A densely connected layer from `IN` to `OUT` features with activation `A`, with a bias when
/// `BIAS`. Parameters: kernel `(IN, OUT)` row-major, then bias `(OUT,)`.
pub struct Dense<const IN: usize, const OUT: usize, A: ActivationFn, const BIAS: bool>(PhantomData<A>);

impl<const IN: usize, const OUT: usize, A: ActivationFn, const BIAS: bool> Dense<IN, OUT, A, BIAS> {
    /// Floats in the kernel.
    pub const KERNEL: usize = IN * OUT;
    /// Trainable floats.
    pub const PARAMS: usize = IN * OUT + if BIAS { OUT } else { 0 };
    /// Per-row scratch kept for backward: the activation's input, when its derivative needs it.
    pub const SCRATCH: usize = if A::KIND.needs_input() { OUT } else { 0 };

    /// The layer.
    pub const fn new() -> Self {
        Dense(PhantomData)
    }
}

impl<B: Backend, const IN: usize, const OUT: usize, A: ActivationFn, const BIAS: bool> Layer<B, IN, OUT> for Dense<IN, OUT, A, BIAS> {
    /// `y = act(x · kernel + bias)`.
    fn forward(&self, Forward { ctx, params, x, y, scratch, training, .. }: Forward<'_, B, IN, OUT>) {
        let rows = x.rows;
        let kernel = B::sub(params, 0..Self::KERNEL);
        let bias = BIAS.then(|| B::sub(params, Self::KERNEL..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(scratch, rows * OUT).0);
        ctx.device.linear(&Linear { rows, k: IN, n: OUT, act: A::KIND }, x.view, kernel, bias, y.view, pre);
    }

    /// Gradients of kernel and bias into `grads`; `dx` (when wanted) gets the input gradient.
    /// `dy` is overwritten with the gradient before the activation.
    fn backward(&self, Backward { ctx, params, grads, x, y, scratch, mut dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let rows = x.rows;
        let (dkernel, dbias) = B::split_mut(grads, Self::KERNEL);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&scratch), 0..rows * OUT));
        dev.act_backward(&BiasAct { rows, cols: OUT, act: A::KIND }, B::reborrow(&mut dy.view), y.view, pre, BIAS.then_some(dbias));
        let dz = B::freeze(&dy.view);
        dev.gemm(&Gemm::tn(IN, OUT, rows), x.view, dz, dkernel);
        if let Some(dx) = dx {
            dev.gemm(&Gemm::nt(rows, IN, OUT), dz, B::sub(params, 0..Self::KERNEL), dx.view);
        }
    }
}

impl<const IN: usize, const OUT: usize, A: ActivationFn, const BIAS: bool> Default for Dense<IN, OUT, A, BIAS> {
    fn default() -> Self {
        Self::new()
    }
}
