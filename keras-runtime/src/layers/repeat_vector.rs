//! `RepeatVector`: `(None, IN) -> (None, n, IN)`.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

/// Repeats each sample's `IN` values `OUT / IN` times.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepeatVector<const IN: usize, const OUT: usize>;

impl<const IN: usize, const OUT: usize> RepeatVector<IN, OUT> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;
    const TIMES: usize = OUT / IN;

    /// The layer (`OUT` must be a multiple of `IN`).
    pub const fn new() -> Self {
        assert!(IN > 0 && OUT.is_multiple_of(IN));
        RepeatVector
    }

    /// `y[t] = x` for every `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, IN>,
        y: RowsMut<'_, B, OUT>,
        _scratch: B::ViewMut<'_>,
        _training: bool,
    ) {
        ctx.device.repeat(x.rows, Self::TIMES, IN, x.view, y.view);
    }

    /// `dx = Σ_t dy[t]`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, IN>,
        _y: Rows<'_, B, OUT>,
        _scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, OUT>,
        dx: Option<RowsMut<'_, B, IN>>,
    ) {
        if let Some(dx) = dx {
            ctx.device.repeat_backward(x.rows, Self::TIMES, IN, B::freeze(&dy.view), dx.view);
        }
    }
}
