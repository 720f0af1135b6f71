//! `RepeatVector`: `(None, IN) -> (None, n, IN)`.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Repeat};

/// Repeats each sample's `IN` values `OUT / IN` times.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepeatVector<const IN: usize, const OUT: usize>;

impl<const IN: usize, const OUT: usize> RepeatVector<IN, OUT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer (`OUT` must be a multiple of `IN`).
    pub const fn new() -> Self {
        assert!(IN > 0 && OUT.is_multiple_of(IN));
        RepeatVector
    }

    const fn repeat(batch: usize) -> Repeat {
        Repeat { batch, times: OUT / IN, width: IN }
    }
}

impl<B: Backend, const IN: usize, const OUT: usize> Layer<B, IN, OUT> for RepeatVector<IN, OUT> {
    /// `y[t] = x` for every `t`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, IN, OUT>) {
        ctx.device.repeat(&Self::repeat(x.rows), x.view, y.view);
    }

    /// `dx = Σ_t dy[t]`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        if let Some(dx) = dx {
            ctx.device.repeat_backward(&Self::repeat(x.rows), B::freeze(&dy.view), dx.view);
        }
    }
}
