//! `MaxPooling2D`, `AveragePooling2D` and their global forms: a window reduction per channel.

use super::{Rows, RowsMut};
use crate::backend::{Backend, PoolKind, Window2d};
use crate::model::Ctx;

/// Pools samples of `IN = h * w * c` floats into `OUT = oh * ow * c` over the windows of its
/// geometry, taking the maximum when `MAX`, else the average. The global poolings are the window
/// that covers the whole input.
#[derive(Clone, Copy, Debug)]
pub struct Pool2D<const IN: usize, const OUT: usize, const MAX: bool> {
    window: Window2d,
}

impl<const IN: usize, const OUT: usize, const MAX: bool> Pool2D<IN, OUT, MAX> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;
    const KIND: PoolKind = if MAX { PoolKind::Max } else { PoolKind::Average };

    /// The layer over `window` (whose sizes must agree with `IN` and `OUT`).
    pub const fn new(window: Window2d) -> Self {
        assert!(window.h * window.w * window.c == IN && window.oh * window.ow * window.c == OUT);
        Pool2D { window }
    }

    /// `y = pool(x)`.
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
        ctx.device.pool2d(&self.window, Self::KIND, x.rows, x.view, y.view);
    }

    /// `dx` from `dy`: to each window's maximum, or spread evenly over the window.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, IN>,
        y: Rows<'_, B, OUT>,
        _scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, OUT>,
        dx: Option<RowsMut<'_, B, IN>>,
    ) {
        if let Some(dx) = dx {
            ctx.device.pool2d_backward(&self.window, Self::KIND, x.rows, x.view, y.view, B::freeze(&dy.view), dx.view);
        }
    }
}
