//! `BatchNormalization`: per-feature normalization with batch statistics in training and moving
//! statistics in inference.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

/// Normalizes each of the `W` features (the last axis) over the batch and any other positions:
/// `y = gamma (x - mean) / sqrt(var + epsilon) + beta`. Training uses the batch's mean and biased
/// variance and moves the moving statistics towards them (`moving = moving * momentum + batch *
/// (1 - momentum)`); inference uses the moving statistics.
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

    fn gamma_beta<'a, B: Backend>(params: B::View<'a>) -> (Option<B::View<'a>>, Option<B::View<'a>>) {
        let gamma = SCALE.then(|| B::sub(params, 0..W));
        let at = if SCALE { W } else { 0 };
        let beta = CENTER.then(|| B::sub(params, at..at + W));
        (gamma, beta)
    }

    /// Normalizes `x` into `y`; in training also updates the moving statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        mut state: B::ViewMut<'_>,
        x: Rows<'_, B, W>,
        y: RowsMut<'_, B, W>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        let dev = ctx.device;
        let (gamma, beta) = Self::gamma_beta::<B>(params);
        if training {
            let stats = B::split_mut(scratch, 2 * W).0;
            let (mut mean, mut inv) = B::split_mut(stats, W);
            // The batch variance goes to `inv` first, then becomes the inverse deviation.
            dev.moments(x.view, x.rows, W, B::reborrow(&mut mean), B::reborrow(&mut inv));
            {
                let (moving_mean, moving_var) = B::split_mut(B::reborrow(&mut state), W);
                dev.moving_average(moving_mean, B::freeze(&mean), self.momentum);
                dev.moving_average(moving_var, B::freeze(&inv), self.momentum);
            }
            dev.batch_norm(x.view, x.rows, W, B::freeze(&mean), B::reborrow(&mut inv), self.epsilon, gamma, beta, y.view);
        } else {
            let moving = B::freeze(&state);
            let (moving_mean, moving_var) = (B::sub(moving, 0..W), B::sub(moving, W..2 * W));
            let stats = B::split_mut(scratch, 2 * W).0;
            let (mut var, _) = B::split_mut(stats, W);
            dev.copy(moving_var, B::reborrow(&mut var));
            dev.batch_norm(x.view, x.rows, W, moving_mean, var, self.epsilon, gamma, beta, y.view);
        }
    }

    /// Gradients of `gamma`, `beta` and the input, through the batch statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, W>,
        _y: Rows<'_, B, W>,
        scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, W>,
        dx: Option<RowsMut<'_, B, W>>,
    ) {
        let (gamma, _) = Self::gamma_beta::<B>(params);
        let scratch = B::freeze(&scratch);
        let (mean, inv) = (B::sub(scratch, 0..W), B::sub(scratch, W..2 * W));
        let (dgamma, rest) = if SCALE {
            let (a, b) = B::split_mut(grads, W);
            (Some(a), b)
        } else {
            (None, grads)
        };
        let dbeta = CENTER.then(|| B::split_mut(rest, W).0);
        ctx.device.batch_norm_backward(x.view, B::freeze(&dy.view), x.rows, W, mean, inv, gamma, dgamma, dbeta, dx.map(|d| d.view));
    }
}
