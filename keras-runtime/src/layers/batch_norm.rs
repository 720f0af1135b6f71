//! `BatchNormalization`: per-feature normalization with batch statistics in training and moving
//! statistics in inference.

use super::{Backward, Forward, Layer, RowsMut};
use crate::backend::{Affine, Backend, BatchStats, Norm, NormGrads};

/// Normalizes each of the `W` features (the last axis) over the batch and any other positions:
/// `y = gamma (x - mean) / sqrt(var + epsilon) + beta`. Training uses the batch's mean and biased
/// variance and moves the moving statistics towards them (`moving = moving * momentum + batch *
/// (1 - momentum)`); inference uses the moving statistics. In a data-parallel step the batch is
/// the global one: its statistics and the backward pass's sums are all-reduced.
///
/// Trainable parameters: `gamma` (when `SCALE`) then `beta` (when `CENTER`); state:
/// `moving_mean` then `moving_variance`.
#[derive(Clone, Copy, Debug)]
pub struct BatchNormalization<const W: usize, const CENTER: bool, const SCALE: bool> {
    momentum: f32,
    epsilon: f32,
}

impl<const W: usize, const CENTER: bool, const SCALE: bool> BatchNormalization<W, CENTER, SCALE> {
    /// Trainable floats.
    pub const PARAMS: usize = if SCALE { W } else { 0 } + if CENTER { W } else { 0 };
    /// Non-trainable floats: the moving mean and variance.
    pub const STATE: usize = 2 * W;
    /// Per-row scratch kept for backward; the batch mean and `1 / sqrt(var + epsilon)` use the
    /// first `2 W` floats.
    pub const SCRATCH: usize = 2 * W;

    /// The layer.
    pub const fn new(momentum: f32, epsilon: f32) -> Self {
        BatchNormalization { momentum, epsilon }
    }
}

/// A normalization's `gamma` (when `scale`) and `beta` (when `center`), `W` each, in that order
/// in its parameters.
pub(super) fn affine<B: Backend, const W: usize>(params: B::View<'_>, center: bool, scale: bool) -> Affine<B::View<'_>> {
    let gamma = scale.then(|| B::sub(params, 0..W));
    let at = if scale { W } else { 0 };
    Affine { gamma, beta: center.then(|| B::sub(params, at..at + W)) }
}

/// The gradients of [`affine`]'s parameters, and the input's.
pub(super) fn norm_grads<'a, B: Backend, const W: usize>(
    grads: B::ViewMut<'a>,
    center: bool,
    scale: bool,
    dx: Option<RowsMut<'a, B, W>>,
) -> NormGrads<B::ViewMut<'a>> {
    let (dgamma, rest) = if scale {
        let (a, b) = B::split_mut(grads, W);
        (Some(a), b)
    } else {
        (None, grads)
    };
    NormGrads { dgamma, dbeta: center.then(|| B::split_mut(rest, W).0), dx: dx.map(|d| d.view) }
}

impl<B: Backend, const W: usize, const CENTER: bool, const SCALE: bool> Layer<B, W, W> for BatchNormalization<W, CENTER, SCALE> {
    /// Normalizes `x` into `y`; in training also updates the moving statistics.
    fn forward(&self, Forward { ctx, params, mut state, x, y, scratch, training }: Forward<'_, B, W, W>) {
        let dev = ctx.device;
        let affine = affine::<B, W>(params, CENTER, SCALE);
        let n = Norm { rows: x.rows, cols: W, epsilon: self.epsilon };
        let stats = B::split_mut(scratch, 2 * W).0;
        if training {
            let (mut mean, mut inv) = B::split_mut(stats, W);
            // The batch variance goes to `inv` first, then becomes the inverse deviation.
            match ctx.shard {
                Some(shard) => crate::distribution::global_moments(shard, dev, &n, x.view, B::reborrow(&mut mean), B::reborrow(&mut inv)),
                None => dev.moments(&n, x.view, B::reborrow(&mut mean), B::reborrow(&mut inv)),
            }
            {
                let (moving_mean, moving_var) = B::split_mut(B::reborrow(&mut state), W);
                dev.moving_average(self.momentum, moving_mean, B::freeze(&mean));
                dev.moving_average(self.momentum, moving_var, B::freeze(&inv));
            }
            dev.batch_norm(&n, x.view, B::freeze(&mean), inv, affine, y.view);
        } else {
            let moving = B::freeze(&state);
            let (moving_mean, moving_var) = (B::sub(moving, 0..W), B::sub(moving, W..2 * W));
            let mut var = B::split_mut(stats, W).0;
            dev.copy(moving_var, B::reborrow(&mut var));
            dev.batch_norm(&n, x.view, moving_mean, var, affine, y.view);
        }
    }

    /// Gradients of `gamma`, `beta` and the input, through the batch statistics.
    fn backward(&self, Backward { ctx, params, grads, x, scratch, dy, dx, .. }: Backward<'_, B, W, W>) {
        let scratch = B::freeze(&scratch);
        let stats = BatchStats { mean: B::sub(scratch, 0..W), inv: B::sub(scratch, W..2 * W) };
        let gamma = affine::<B, W>(params, CENTER, SCALE).gamma;
        let n = Norm { rows: x.rows, cols: W, epsilon: self.epsilon };
        let grads = norm_grads::<B, W>(grads, CENTER, SCALE, dx);
        match ctx.shard {
            Some(shard) => {
                crate::distribution::global_batch_norm_backward(shard, ctx.device, &n, x.view, B::freeze(&dy.view), stats, gamma, grads)
            }
            None => ctx.device.batch_norm_backward(&n, x.view, B::freeze(&dy.view), stats, gamma, grads),
        }
    }
}
