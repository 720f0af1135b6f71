//! Noise layers, active in training only: `GaussianNoise`, `GaussianDropout`, `SpatialDropout2D`.
//! Their draws derive from the model's seed and the layer's position (as `Dropout`'s do), or from
//! the layer's own `seed`, and the training step.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

/// Where a noise layer's draws come from.
#[derive(Clone, Copy, Debug)]
struct Key {
    key: u64,
    /// The layer's own seed: the model's seed plays no part.
    fixed: bool,
}

impl Key {
    const fn at(index: u64) -> Key {
        Key { key: index.wrapping_mul(0x9e37_79b9_7f4a_7c15), fixed: false }
    }

    const fn seeded(seed: u64) -> Key {
        Key { key: seed, fixed: true }
    }

    fn seed<B: Backend>(&self, ctx: &Ctx<'_, B>) -> u64 {
        if self.fixed { self.key } else { ctx.seed ^ self.key }
    }
}

/// Adds zero-mean Gaussian noise of standard deviation `stddev` to each input in training;
/// the identity in inference.
#[derive(Clone, Copy, Debug)]
pub struct GaussianNoise<const W: usize> {
    stddev: f32,
    key: Key,
}

impl<const W: usize> GaussianNoise<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: none, the noise does not affect the gradient.
    pub const SCRATCH: usize = 0;

    /// A layer whose noise derives from the model's seed and the layer's position.
    pub const fn new(stddev: f32, index: u64) -> Self {
        GaussianNoise { stddev, key: Key::at(index) }
    }

    /// A layer whose noise derives from its own seed alone (Keras's `seed=`).
    pub const fn seeded(stddev: f32, seed: u64) -> Self {
        GaussianNoise { stddev, key: Key::seeded(seed) }
    }

    /// `y = x + stddev * n` in training, `y = x` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, W>,
        y: RowsMut<'_, B, W>,
        _scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        if training && self.stddev > 0.0 {
            ctx.device.gaussian_noise(x.view, y.view, None, self.stddev, self.key.seed(ctx), ctx.step);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = dy`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        _x: Rows<'_, B, W>,
        _y: Rows<'_, B, W>,
        _scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, W>,
        dx: Option<RowsMut<'_, B, W>>,
    ) {
        if let Some(dx) = dx {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}

/// Multiplies each input by Gaussian noise of mean 1 and standard deviation
/// `sqrt(rate / (1 - rate))` in training; the identity in inference.
#[derive(Clone, Copy, Debug)]
pub struct GaussianDropout<const W: usize> {
    rate: f32,
    key: Key,
}

impl<const W: usize> GaussianDropout<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: the noise each input was multiplied by.
    pub const SCRATCH: usize = W;

    /// A layer whose noise derives from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        GaussianDropout { rate, key: Key::at(index) }
    }

    /// A layer whose noise derives from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        GaussianDropout { rate, key: Key::seeded(seed) }
    }

    /// `y = x * noise` in training, `y = x` otherwise.
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
        if training && self.rate > 0.0 {
            let noise = B::split_mut(scratch, x.rows * W).0;
            let stddev = (self.rate / (1.0 - self.rate)).sqrt();
            ctx.device.gaussian_noise(x.view, y.view, Some(noise), stddev, self.key.seed(ctx), ctx.step);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = dy * noise`, with the noise of the forward pass.
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
        if self.rate > 0.0 {
            ctx.device.multiply(B::freeze(&dy.view), B::sub(B::freeze(&scratch), 0..x.rows * W), dx.view);
        } else {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}

/// Drops whole channels of NHWC samples of `N` floats with `C` channels in training (each
/// (sample, channel) with probability `rate`, the kept ones scaled by `1 / (1 - rate)`); the
/// identity in inference.
#[derive(Clone, Copy, Debug)]
pub struct SpatialDropout2D<const N: usize, const C: usize> {
    rate: f32,
    key: Key,
}

impl<const N: usize, const C: usize> SpatialDropout2D<N, C> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward: the channel mask.
    pub const SCRATCH: usize = C;

    /// A layer whose masks derive from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        assert!(N.is_multiple_of(C));
        SpatialDropout2D { rate, key: Key::at(index) }
    }

    /// A layer whose masks derive from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        assert!(N.is_multiple_of(C));
        SpatialDropout2D { rate, key: Key::seeded(seed) }
    }

    /// `y = mask[channel] * x / (1 - rate)` in training, `y = x` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, N>,
        y: RowsMut<'_, B, N>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        if training && self.rate > 0.0 {
            let mask = B::split_mut(scratch, x.rows * C).0;
            ctx.device.spatial_dropout(x.view, y.view, mask, x.rows, C, self.rate, self.key.seed(ctx), ctx.step);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = mask[channel] * dy / (1 - rate)`, with the mask of the forward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, N>,
        _y: Rows<'_, B, N>,
        scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, N>,
        dx: Option<RowsMut<'_, B, N>>,
    ) {
        let Some(dx) = dx else { return };
        if self.rate > 0.0 {
            let mask = B::sub(B::freeze(&scratch), 0..x.rows * C);
            ctx.device.spatial_dropout_backward(B::freeze(&dy.view), mask, dx.view, x.rows, C, self.rate);
        } else {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}
