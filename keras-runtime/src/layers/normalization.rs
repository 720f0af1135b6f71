//! `Normalization`: standardization by per-feature statistics, adapted to a data set or given.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Standardize};

/// Keras's `backend.epsilon()`: the smallest deviation `Normalization` divides by.
const EPSILON: f32 = 1e-7;

/// `y = (x - mean) / max(sqrt(variance), 1e-7)`, or with `INVERT`, `y = mean + x * max(sqrt(variance),
/// 1e-7)`, in training and inference alike, over rows of width `W` that each hold `FEATURES`
/// statistics (the kept axes of Keras's `axis`, flattened) with `W / FEATURES` consecutive values
/// per statistic.
///
/// Its state is `mean` then `variance` (`FEATURES` each): Keras's non-trainable weights `mean`,
/// `variance` and `count` of a layer to be adapted (`count`, which Keras 3 keeps for old files and
/// leaves at 0, follows them), or the model's constants for a layer given its statistics. The
/// input gradient is `dy / max(sqrt(variance), 1e-7)`; nothing is trained.
#[derive(Clone, Copy, Debug, Default)]
pub struct Normalization<const W: usize, const FEATURES: usize, const INVERT: bool>;

impl<const W: usize, const FEATURES: usize, const INVERT: bool> Normalization<W, FEATURES, INVERT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer (`W` must be a multiple of `FEATURES`).
    pub const fn new() -> Self {
        assert!(FEATURES > 0 && W.is_multiple_of(FEATURES));
        Normalization
    }

    const fn standardize(rows: usize) -> Standardize {
        Standardize { len: rows * W, features: FEATURES, inner: W / FEATURES, epsilon: EPSILON, invert: INVERT }
    }
}

impl<B: Backend, const W: usize, const FEATURES: usize, const INVERT: bool> Layer<B, W, W> for Normalization<W, FEATURES, INVERT> {
    /// Standardizes (or with `INVERT` restores) `x` into `y`.
    fn forward(&self, Forward { ctx, state, x, y, .. }: Forward<'_, B, W, W>) {
        let state = B::freeze(&state);
        let (mean, var) = (B::sub(state, 0..FEATURES), B::sub(state, FEATURES..2 * FEATURES));
        ctx.device.standardize(&Self::standardize(x.rows), x.view, mean, var, y.view);
    }

    /// `dx = dy / max(sqrt(variance), 1e-7)` (times it, with `INVERT`).
    fn backward(&self, Backward { ctx, state, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        if let Some(dx) = dx {
            let var = B::sub(state, FEATURES..2 * FEATURES);
            ctx.device.standardize_backward(&Self::standardize(x.rows), var, B::freeze(&dy.view), dx.view);
        }
    }
}
