//! `LayerNormalization`: each row normalized over its features.

use super::batch_norm::{affine, norm_grads};
use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Norm};

/// Normalizes each row over its `W` features (the last axis), in training and inference alike:
/// `y = gamma (x - mean) / sqrt(var + epsilon) + beta`, with the row's mean and biased variance.
/// Trainable parameters: `gamma` (when `SCALE`) then `beta` (when `CENTER`).
#[derive(Clone, Copy, Debug)]
pub struct LayerNormalization<const W: usize, const CENTER: bool, const SCALE: bool> {
    epsilon: f32,
}

impl<const W: usize, const CENTER: bool, const SCALE: bool> LayerNormalization<W, CENTER, SCALE> {
    /// Trainable floats.
    pub const PARAMS: usize = if SCALE { W } else { 0 } + if CENTER { W } else { 0 };
    /// Per-row scratch kept for backward: the row's mean and `1 / sqrt(var + epsilon)`.
    pub const SCRATCH: usize = 2;

    /// The layer.
    pub const fn new(epsilon: f32) -> Self {
        LayerNormalization { epsilon }
    }
}

impl<B: Backend, const W: usize, const CENTER: bool, const SCALE: bool> Layer<B, W, W> for LayerNormalization<W, CENTER, SCALE> {
    /// Normalizes each row of `x` into `y`.
    fn forward(&self, Forward { ctx, params, x, y, scratch, .. }: Forward<'_, B, W, W>) {
        let stats = B::split_mut(scratch, 2 * x.rows).0;
        let n = Norm { rows: x.rows, cols: W, epsilon: self.epsilon };
        ctx.device.layer_norm(&n, x.view, affine::<B, W>(params, CENTER, SCALE), y.view, stats);
    }

    /// Gradients of `gamma`, `beta` and the input.
    fn backward(&self, Backward { ctx, params, grads, x, scratch, dy, dx, .. }: Backward<'_, B, W, W>) {
        let stats = B::sub(B::freeze(&scratch), 0..2 * x.rows);
        let gamma = affine::<B, W>(params, CENTER, SCALE).gamma;
        let n = Norm { rows: x.rows, cols: W, epsilon: self.epsilon };
        ctx.device.layer_norm_backward(&n, x.view, B::freeze(&dy.view), stats, gamma, norm_grads::<B, W>(grads, CENTER, SCALE, dx));
    }
}
