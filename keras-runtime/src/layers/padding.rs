//! `ZeroPadding2D` and `Cropping2D`: each the other's backward pass.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Border2d};

/// Pads NHWC samples of `IN` floats with zero rows and columns into `OUT` floats.
#[derive(Clone, Copy, Debug)]
pub struct ZeroPadding2D<const IN: usize, const OUT: usize> {
    border: Border2d,
}

impl<const IN: usize, const OUT: usize> ZeroPadding2D<IN, OUT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer over `border` (the input is its small image).
    pub const fn new(border: Border2d) -> Self {
        assert!(border.small_len() == IN && border.large_len() == OUT);
        ZeroPadding2D { border }
    }
}

impl<B: Backend, const IN: usize, const OUT: usize> Layer<B, IN, OUT> for ZeroPadding2D<IN, OUT> {
    /// `y = pad(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, IN, OUT>) {
        ctx.device.pad2d(&self.border, x.rows, x.view, y.view);
    }

    /// `dx = crop(dy)`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        if let Some(dx) = dx {
            ctx.device.crop2d(&self.border, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}

/// Crops rows and columns off NHWC samples of `IN` floats, leaving `OUT` floats.
#[derive(Clone, Copy, Debug)]
pub struct Cropping2D<const IN: usize, const OUT: usize> {
    border: Border2d,
}

impl<const IN: usize, const OUT: usize> Cropping2D<IN, OUT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer over `border` (the output is its small image).
    pub const fn new(border: Border2d) -> Self {
        assert!(border.large_len() == IN && border.small_len() == OUT);
        Cropping2D { border }
    }
}

impl<B: Backend, const IN: usize, const OUT: usize> Layer<B, IN, OUT> for Cropping2D<IN, OUT> {
    /// `y = crop(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, IN, OUT>) {
        ctx.device.crop2d(&self.border, x.rows, x.view, y.view);
    }

    /// `dx = pad(dy)`: zero where the crop cut.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        if let Some(dx) = dx {
            ctx.device.pad2d(&self.border, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}
