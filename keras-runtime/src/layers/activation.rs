//! `Activation`: applies an activation function to its input.

use super::{Rows, RowsMut};
use crate::activations::ActivationFn;
use crate::backend::Backend;
use crate::model::Ctx;
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

    /// `y = act(x)`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, W>,
        mut y: RowsMut<'_, B, W>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        let dev = ctx.device;
        let rows = x.rows;
        dev.copy(x.view, B::reborrow(&mut y.view));
        let pre = (training && A::KIND.needs_input()).then(|| B::split_mut(scratch, rows * W).0);
        dev.bias_act(y.view, None, pre, rows, W, A::KIND);
    }

    /// `dx = dy * act'(x)`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, W>,
        y: Rows<'_, B, W>,
        scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, W>,
        dx: Option<RowsMut<'_, B, W>>,
    ) {
        let Some(mut dx) = dx else { return };
        let dev = ctx.device;
        let rows = x.rows;
        dev.copy(B::freeze(&dy.view), B::reborrow(&mut dx.view));
        let pre = A::KIND.needs_input().then(|| B::sub(B::freeze(&scratch), 0..rows * W));
        dev.act_backward(dx.view, y.view, pre, rows, W, A::KIND, None);
    }
}

impl<const W: usize, A: ActivationFn> Default for Activation<W, A> {
    fn default() -> Self {
        Self::new()
    }
}
