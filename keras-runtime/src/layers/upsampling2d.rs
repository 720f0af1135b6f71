//! `UpSampling2D`: nearest or bilinear upsampling of NHWC samples.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Upsample2d};

/// Upsamples NHWC samples of `IN` floats into `OUT` floats.
#[derive(Clone, Copy, Debug)]
pub struct UpSampling2D<const IN: usize, const OUT: usize> {
    geometry: Upsample2d,
}

impl<const IN: usize, const OUT: usize> UpSampling2D<IN, OUT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer over `geometry` (whose sizes must agree with `IN` and `OUT`).
    pub const fn new(geometry: Upsample2d) -> Self {
        assert!(geometry.in_len() == IN && geometry.out_len() == OUT);
        UpSampling2D { geometry }
    }
}

impl<B: Backend, const IN: usize, const OUT: usize> Layer<B, IN, OUT> for UpSampling2D<IN, OUT> {
    /// `y = upsample(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, IN, OUT>) {
        ctx.device.upsample2d(&self.geometry, x.rows, x.view, y.view);
    }

    /// `dx`: each input gets the output gradient it contributed to, by its weight.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        if let Some(dx) = dx {
            ctx.device.upsample2d_backward(&self.geometry, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}
