//! `Dense`: `y = act(x · kernel + bias)`.

use super::{Rows, RowsMut};
use crate::activations::ActivationFn;
use crate::backend::{Backend, Transpose};
use crate::model::Ctx;
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

    /// `y = act(x · kernel + bias)`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, IN>,
        y: RowsMut<'_, B, OUT>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        let rows = x.rows;
        let kernel = B::sub(params, 0..Self::KERNEL);
        let bias = BIAS.then(|| B::sub(params, Self::KERNEL..Self::PARAMS));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(scratch, rows * OUT).0);
        ctx.device.linear(rows, IN, OUT, x.view, kernel, bias, A::KIND, y.view, pre);
    }

    /// Gradients of kernel and bias into `grads`; `dx` (when wanted) gets the input gradient.
    /// `dy` is overwritten with the gradient before the activation.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, IN>,
        y: Rows<'_, B, OUT>,
        scratch: B::ViewMut<'_>,
        mut dy: RowsMut<'_, B, OUT>,
        dx: Option<RowsMut<'_, B, IN>>,
    ) {
        let dev = ctx.device;
        let rows = x.rows;
        let (dkernel, dbias) = B::split_mut(grads, Self::KERNEL);
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&scratch), 0..rows * OUT));
        dev.act_backward(B::reborrow(&mut dy.view), y.view, pre, rows, OUT, A::KIND, BIAS.then_some(dbias));
        let dz = B::freeze(&dy.view);
        dev.matmul(IN, OUT, rows, x.view, Transpose::Yes, dz, Transpose::No, dkernel, false);
        if let Some(dx) = dx {
            let kernel = B::sub(params, 0..Self::KERNEL);
            dev.matmul(rows, IN, OUT, dz, Transpose::No, kernel, Transpose::Yes, dx.view, false);
        }
    }
}

impl<const IN: usize, const OUT: usize, A: ActivationFn, const BIAS: bool> Default for Dense<IN, OUT, A, BIAS> {
    fn default() -> Self {
        Self::new()
    }
}
