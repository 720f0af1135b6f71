//! `Flatten`: a sample's values as one row (row-major), unchanged.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

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

    /// `y = x`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, N>,
        y: RowsMut<'_, B, N>,
        _scratch: B::ViewMut<'_>,
        _training: bool,
    ) {
        ctx.device.copy(x.view, y.view);
    }

    /// `dx = dy`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        _grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        _x: Rows<'_, B, N>,
        _y: Rows<'_, B, N>,
        _scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, N>,
        dx: Option<RowsMut<'_, B, N>>,
    ) {
        if let Some(dx) = dx {
            ctx.device.copy(B::freeze(&dy.view), dx.view);
        }
    }
}
