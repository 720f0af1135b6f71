//! `UpSampling2D`: nearest or bilinear upsampling of NHWC samples.

use super::{Rows, RowsMut};
use crate::backend::{Backend, Upsample2d};
use crate::model::Ctx;

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

    /// `y = upsample(x)`.
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
        ctx.device.upsample2d(&self.geometry, x.rows, x.view, y.view);
    }

    /// `dx`: each input gets the output gradient it contributed to, by its weight.
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
            ctx.device.upsample2d_backward(&self.geometry, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}
