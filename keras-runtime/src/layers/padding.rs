//! `ZeroPadding2D` and `Cropping2D`: each the other's backward pass.

use super::{Rows, RowsMut};
use crate::backend::{Backend, Border2d};
use crate::model::Ctx;

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

    /// `y = pad(x)`.
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
        ctx.device.pad2d(&self.border, x.rows, x.view, y.view);
    }

    /// `dx = crop(dy)`.
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

    /// `y = crop(x)`.
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
        ctx.device.crop2d(&self.border, x.rows, x.view, y.view);
    }

    /// `dx = pad(dy)`: zero where the crop cut.
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
            ctx.device.pad2d(&self.border, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}
