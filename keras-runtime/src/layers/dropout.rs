//! `Dropout`: inverted dropout in training, identity in inference.

use super::{Backward, DrawKey, Forward, Layer};
use crate::backend::Backend;

/// Zeroes each input with probability `rate` during training and scales the rest by
/// `1 / (1 - rate)`; passes inputs through unchanged in inference.
#[derive(Clone, Copy, Debug)]
pub struct Dropout<const W: usize> {
    rate: f32,
    key: DrawKey,
}

impl<const W: usize> Dropout<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: the keep mask.
    pub const SCRATCH: usize = W;

    /// A dropout layer whose masks derive from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        Dropout { rate, key: DrawKey::at(index) }
    }

    /// A dropout layer whose masks derive from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        Dropout { rate, key: DrawKey::seeded(seed) }
    }

    /// The drop probability.
    pub const fn rate(&self) -> f32 {
        self.rate
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for Dropout<W> {
    /// `y = mask * x / (1 - rate)` in training, `y = x` otherwise.
    fn forward(&self, Forward { ctx, x, y, scratch, training, .. }: Forward<'_, B, W, W>) {
        if training && self.rate > 0.0 {
            let mask = B::split_mut(scratch, x.rows * W).0;
            ctx.device.dropout(&self.key.draw(self.rate, x.rows, 0, ctx.first_row(x.rows), W), ctx.stream(), x.view, y.view, mask);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = mask * dy / (1 - rate)`.
    fn backward(&self, Backward { ctx, x, scratch, dy, dx, .. }: Backward<'_, B, W, W>) {
        let Some(dx) = dx else { return };
        if self.rate > 0.0 {
            let mask = B::sub(B::freeze(&scratch), 0..x.rows * W);
            ctx.device.dropout_backward(&self.key.draw(self.rate, x.rows, 0, ctx.first_row(x.rows), W), B::freeze(&dy.view), mask, dx.view);
        } else {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}
