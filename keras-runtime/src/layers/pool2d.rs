//! `MaxPooling2D`, `AveragePooling2D` and their global forms: a window reduction per channel.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Pool2d, PoolKind, Window2d};

/// Pools samples of `IN = h * w * c` floats into `OUT = oh * ow * c` over the windows of its
/// geometry, taking the maximum when `MAX`, else the average. The global poolings are the window
/// that covers the whole input.
#[derive(Clone, Copy, Debug)]
pub struct Pool2D<const IN: usize, const OUT: usize, const MAX: bool> {
    pool: Pool2d,
}

impl<const IN: usize, const OUT: usize, const MAX: bool> Pool2D<IN, OUT, MAX> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer over `window` (whose sizes must agree with `IN` and `OUT`).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.h * window.w * window.c == IN && window.oh * window.ow * window.c == OUT);
        Pool2D { pool: Pool2d { window, kind: if MAX { PoolKind::Max } else { PoolKind::Average } } }
    }
}

impl<B: Backend, const IN: usize, const OUT: usize, const MAX: bool> Layer<B, IN, OUT> for Pool2D<IN, OUT, MAX> {
    /// `y = pool(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, IN, OUT>) {
        ctx.device.pool2d(&self.pool, x.rows, x.view, y.view);
    }

    /// `dx` from `dy`: to each window's maximum, or spread evenly over the window.
    fn backward(&self, Backward { ctx, x, y, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        if let Some(dx) = dx {
            ctx.device.pool2d_backward(&self.pool, x.rows, x.view, y.view, B::freeze(&dy.view), dx.view);
        }
    }
}
