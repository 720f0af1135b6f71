//! `Activation`: applies an activation function to its input.

use super::{Backward, Forward, Layer};
use crate::activations::ActivationFn;
use crate::backend::{Backend, BiasAct};
use std::marker::PhantomData;

/// `y = act(x)` over rows of width `W` (softmax acts along each row).
pub struct Activation<const W: usize, A: ActivationFn>(PhantomData<A>);

impl<const W: usize, A: ActivationFn> Activation<W, A> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: the input, when the derivative needs it.
    pub const SCRATCH: usize = if A::KIND.needs_input() { W } else { 0 };

    /// The layer.
    pub const fn new() -> Self {
        Activation(PhantomData)
    }
}

impl<B: Backend, const W: usize, A: ActivationFn> Layer<B, W, W> for Activation<W, A> {
    /// `y = act(x)`.
    fn forward(&self, Forward { ctx, x, mut y, scratch, training, .. }: Forward<'_, B, W, W>) {
        let rows = x.rows;
        ctx.device.copy(x.view, B::reborrow(&mut y.view));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(scratch, rows * W).0);
        ctx.device.bias_act(&BiasAct { rows, cols: W, act: A::KIND }, y.view, None, pre);
    }

    /// `dx = dy * act'(x)`.
    fn backward(&self, Backward { ctx, x, y, scratch, dy, dx, .. }: Backward<'_, B, W, W>) {
        let Some(mut dx) = dx else { return };
        let rows = x.rows;
        ctx.device.copy(B::freeze(&dy.view), B::reborrow(&mut dx.view));
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&scratch), 0..rows * W));
        ctx.device.act_backward(&BiasAct { rows, cols: W, act: A::KIND }, dx.view, y.view, pre, None);
    }
}

impl<const W: usize, A: ActivationFn> Default for Activation<W, A> {
    fn default() -> Self {
        Self::new()
    }
}
