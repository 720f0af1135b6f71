//! `Rescaling`: every value scaled and shifted, `x * scale + offset`.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Rescale};

/// `y = x * scale + offset` over rows of width `W`, in training and inference alike (Keras's
/// preprocessing layer, `Rescaling(1 / 255)` for pixels). The input gradient is `dy * scale`.
#[derive(Clone, Copy, Debug)]
pub struct Rescaling<const W: usize> {
    scale: f32,
    offset: f32,
}

impl<const W: usize> Rescaling<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer.
    pub const fn new(scale: f32, offset: f32) -> Self {
        Rescaling { scale, offset }
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for Rescaling<W> {
    /// `y = x * scale + offset`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, W, W>) {
        ctx.device.rescale(&Rescale { len: x.rows * W, scale: self.scale, offset: self.offset }, x.view, y.view);
    }

    /// `dx = dy * scale`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        if let Some(dx) = dx {
            ctx.device.rescale(&Rescale { len: x.rows * W, scale: self.scale, offset: 0.0 }, B::freeze(&dy.view), dx.view);
        }
    }
}
