//! `LayerNormalization`: each row normalized over its features.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

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

    fn gamma_beta<'a, B: Backend>(params: B::View<'a>) -> (Option<B::View<'a>>, Option<B::View<'a>>) {
        let gamma = SCALE.then(|| B::sub(params, 0..W));
        let at = if SCALE { W } else { 0 };
        (gamma, CENTER.then(|| B::sub(params, at..at + W)))
    }

    /// Normalizes each row of `x` into `y`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, W>,
        y: RowsMut<'_, B, W>,
        scratch: B::ViewMut<'_>,
        _training: bool,
    ) {
        let (gamma, beta) = Self::gamma_beta::<B>(params);
        let stats = B::split_mut(scratch, 2 * x.rows).0;
        ctx.device.layer_norm(x.view, x.rows, W, gamma, beta, self.epsilon, y.view, stats);
    }

    /// Gradients of `gamma`, `beta` and the input.
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
        let scratch = B::freeze(&scratch);
        let (gamma, _) = Self::gamma_beta::<B>(params);
        let (dgamma, rest) = if SCALE {
            let (a, b) = B::split_mut(grads, W);
            (Some(a), b)
        } else {
            (None, grads)
        };
        let dbeta = CENTER.then(|| B::split_mut(rest, W).0);
        let stats = B::sub(scratch, 0..2 * x.rows);
        ctx.device.layer_norm_backward(x.view, B::freeze(&dy.view), x.rows, W, stats, gamma, dgamma, dbeta, dx.map(|d| d.view));
    }
}
