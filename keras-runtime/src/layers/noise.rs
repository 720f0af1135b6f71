//! Noise layers, active in training only: `GaussianNoise`, `GaussianDropout`, `SpatialDropout2D`.
//! Their draws derive from the model's seed and the layer's position (as `Dropout`'s do), or from
//! the layer's own `seed`, and the training step.

use super::{Backward, DrawKey, Forward, Layer};
use crate::backend::Backend;

/// Adds zero-mean Gaussian noise of standard deviation `stddev` to each input in training;
/// the identity in inference.
#[derive(Clone, Copy, Debug)]
pub struct GaussianNoise<const W: usize> {
    stddev: f32,
    key: DrawKey,
}

impl<const W: usize> GaussianNoise<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: none, the noise does not affect the gradient.
    pub const SCRATCH: usize = 0;

    /// A layer whose noise derives from the model's seed and the layer's position.
    pub const fn new(stddev: f32, index: u64) -> Self {
        GaussianNoise { stddev, key: DrawKey::at(index) }
    }

    /// A layer whose noise derives from its own seed alone (Keras's `seed=`).
    pub const fn seeded(stddev: f32, seed: u64) -> Self {
        GaussianNoise { stddev, key: DrawKey::seeded(seed) }
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for GaussianNoise<W> {
    /// `y = x + stddev * n` in training, `y = x` otherwise.
    fn forward(&self, Forward { ctx, x, y, training, .. }: Forward<'_, B, W, W>) {
        if training && self.stddev > 0.0 {
            ctx.device.gaussian_noise(&self.key.draw(self.stddev, x.rows, 0, ctx.first_row(x.rows), W), ctx.stream(), x.view, y.view, None);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = dy`.
    fn backward(&self, Backward { ctx, dy, dx, .. }: Backward<'_, B, W, W>) {
        dy.copy_to(ctx.device, dx);
    }
}

/// Multiplies each input by Gaussian noise of mean 1 and standard deviation
/// `sqrt(rate / (1 - rate))` in training; the identity in inference.
#[derive(Clone, Copy, Debug)]
pub struct GaussianDropout<const W: usize> {
    rate: f32,
    key: DrawKey,
}

impl<const W: usize> GaussianDropout<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: the noise each input was multiplied by.
    pub const SCRATCH: usize = W;

    /// A layer whose noise derives from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        GaussianDropout { rate, key: DrawKey::at(index) }
    }

    /// A layer whose noise derives from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        GaussianDropout { rate, key: DrawKey::seeded(seed) }
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for GaussianDropout<W> {
    /// `y = x * noise` in training, `y = x` otherwise.
    fn forward(&self, Forward { ctx, x, y, scratch, training, .. }: Forward<'_, B, W, W>) {
        if training && self.rate > 0.0 {
            let noise = B::split_mut(scratch, x.rows * W).0;
            let stddev = (self.rate / (1.0 - self.rate)).sqrt();
            ctx.device.gaussian_noise(
                &self.key.draw(stddev, x.rows, 0, ctx.first_row(x.rows), W),
                ctx.stream(),
                x.view,
                y.view,
                Some(noise),
            );
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = dy * noise`, with the noise of the forward pass.
    fn backward(&self, Backward { ctx, x, scratch, dy, dx, .. }: Backward<'_, B, W, W>) {
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
    key: DrawKey,
}

impl<const N: usize, const C: usize> SpatialDropout2D<N, C> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward: the channel mask.
    pub const SCRATCH: usize = C;

    /// A layer whose masks derive from the model's seed and the layer's position.
    pub const fn new(rate: f32, index: u64) -> Self {
        assert!(N.is_multiple_of(C));
        SpatialDropout2D { rate, key: DrawKey::at(index) }
    }

    /// A layer whose masks derive from its own seed alone (Keras's `seed=`).
    pub const fn seeded(rate: f32, seed: u64) -> Self {
        assert!(N.is_multiple_of(C));
        SpatialDropout2D { rate, key: DrawKey::seeded(seed) }
    }
}

impl<B: Backend, const N: usize, const C: usize> Layer<B, N, N> for SpatialDropout2D<N, C> {
    /// `y = mask[channel] * x / (1 - rate)` in training, `y = x` otherwise.
    fn forward(&self, Forward { ctx, x, y, scratch, training, .. }: Forward<'_, B, N, N>) {
        if training && self.rate > 0.0 {
            let mask = B::split_mut(scratch, x.rows * C).0;
            ctx.device.dropout(&self.key.draw(self.rate, x.rows, C, ctx.first_row(x.rows), C), ctx.stream(), x.view, y.view, mask);
        } else {
            ctx.device.copy(x.view, y.view);
        }
    }

    /// `dx = mask[channel] * dy / (1 - rate)`, with the mask of the forward pass.
    fn backward(&self, Backward { ctx, x, scratch, dy, dx, .. }: Backward<'_, B, N, N>) {
        let Some(dx) = dx else { return };
        if self.rate > 0.0 {
            let mask = B::sub(B::freeze(&scratch), 0..x.rows * C);
            ctx.device.dropout_backward(&self.key.draw(self.rate, x.rows, C, ctx.first_row(x.rows), C), B::freeze(&dy.view), mask, dx.view);
        } else {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}
