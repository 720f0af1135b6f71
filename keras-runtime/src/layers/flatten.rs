//! `Flatten`: a sample's values as one row (row-major), unchanged.

use super::{Backward, Forward, Layer};
use crate::backend::Backend;

/// A layer that keeps each sample's `N` values as they are (row-major) and only changes the shape
/// the macro sees: `Reshape` and `ActivityRegularization` are this layer too.
pub type Reshape<const N: usize> = Flatten<N>;

/// Flattens samples of `N` values each; a copy forward, a copy back.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten<const N: usize>;

impl<const N: usize> Flatten<N> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer.
    pub const fn new() -> Self {
        Flatten
    }
}

impl<B: Backend, const N: usize> Layer<B, N, N> for Flatten<N> {
    /// `y = x`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, N, N>) {
        ctx.device.copy(x.view, y.view);
    }

    /// `dx = dy`.
    fn backward(&self, Backward { ctx, dy, dx, .. }: Backward<'_, B, N, N>) {
        dy.copy_to(ctx.device, dx);
    }
}
