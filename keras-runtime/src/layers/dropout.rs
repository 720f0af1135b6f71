//! `Dropout`: inverted dropout in training, identity in inference.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

/// Zeroes each input with probability `rate` during training and scales the rest by
/// `1 / (1 - rate)`; passes inputs through unchanged in inference.
#[derive(Clone, Copy, Debug)]
pub struct Dropout<const W: usize> {
    rate: f32,
    key: u64,
    fixed: bool,
}

impl<const W: usize> Dropout<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: the keep mask.
    pub const SCRATCH: usize = W;

    /// A dropout layer whose masks derive from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        Dropout { rate, key: index.wrapping_mul(0x9e37_79b9_7f4a_7c15), fixed: false }
    }

    /// A dropout layer whose masks derive from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        Dropout { rate, key: seed, fixed: true }
    }

    /// The drop probability.
    pub const fn rate(&self) -> f32 {
        self.rate
    }

    /// `y = mask * x / (1 - rate)` in training, `y = x` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, W>,
        y: RowsMut<'_, B, W>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        let dev = ctx.device;
        if training && self.rate > 0.0 {
            let mask = B::split_mut(scratch, x.rows * W).0;
            let seed = if self.fixed { self.key } else { ctx.seed ^ self.key };
            dev.dropout(x.view, y.view, mask, self.rate, seed, ctx.step);
        } else {
            dev.copy(x.view, y.view);
        }
    }

    /// `dx = mask * dy / (1 - rate)`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, W>,
        _y: Rows<'_, B, W>,
        scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, W>,
        dx: Option<RowsMut<'_, B, W>>,
    ) {
        let Some(dx) = dx else { return };
        let dev = ctx.device;
        if self.rate > 0.0 {
            dev.dropout_backward(B::freeze(&dy.view), B::sub(B::freeze(&scratch), 0..x.rows * W), dx.view, self.rate);
        } else {
            dev.copy(B::freeze(&dy.view), dx.view);
        }
    }
}
