//! `Bidirectional`: a recurrent layer run over the sequence in both directions, the two outputs
//! merged.

use super::{Recurrent, Rows, RowsMut};
use crate::backend::{Backend, MergeMode};
use crate::model::Ctx;

/// Two [`Recurrent`] layers of the same sizes, the second reading the sequence the other way
/// (`HALF` output floats each per sample), merged by `merge` into `OUT` floats: `2 * HALF` for
/// [`MergeMode::Concat`], else `HALF`. Parameters: the forward layer's, then the backward
/// layer's (Keras's order).
pub struct Bidirectional<
    const T: usize,
    const F: usize,
    const U: usize,
    const GATES: usize,
    const BIAS: usize,
    const IN: usize,
    const HALF: usize,
    const OUT: usize,
> {
    forward: Recurrent<T, F, U, GATES, BIAS, IN, HALF>,
    backward: Recurrent<T, F, U, GATES, BIAS, IN, HALF>,
    merge: MergeMode,
}

impl<
    const T: usize,
    const F: usize,
    const U: usize,
    const GATES: usize,
    const BIAS: usize,
    const IN: usize,
    const HALF: usize,
    const OUT: usize,
> Bidirectional<T, F, U, GATES, BIAS, IN, HALF, OUT>
{
    const INNER: usize = Recurrent::<T, F, U, GATES, BIAS, IN, HALF>::PARAMS;
    const INNER_SCRATCH: usize = Recurrent::<T, F, U, GATES, BIAS, IN, HALF>::SCRATCH;
    /// Trainable floats.
    pub const PARAMS: usize = 2 * Self::INNER;
    /// Per-sample scratch: each direction's own scratch, output and output gradient, and the
    /// backward direction's input gradient.
    pub const SCRATCH: usize = 2 * Self::INNER_SCRATCH + 4 * HALF + IN;

    /// The two directions (the second with `go_backwards` flipped) and how to merge them.
    pub const fn new(
        forward: Recurrent<T, F, U, GATES, BIAS, IN, HALF>,
        backward: Recurrent<T, F, U, GATES, BIAS, IN, HALF>,
        merge: MergeMode,
    ) -> Self {
        assert!(OUT == if matches!(merge, MergeMode::Concat) { 2 * HALF } else { HALF });
        Bidirectional { forward, backward, merge }
    }

    /// Steps in each direction's output: `T` with `return_sequences`, else 1.
    const fn steps() -> usize {
        HALF / U
    }

    /// Runs both directions and merges them.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        mut state: B::ViewMut<'_>,
        x: Rows<'_, B, IN>,
        y: RowsMut<'_, B, OUT>,
        scratch: B::ViewMut<'_>,
        training: bool,
    ) {
        let n = x.rows;
        let (mut sf, rest) = B::split_mut(scratch, n * Self::INNER_SCRATCH);
        let (mut sb, rest) = B::split_mut(rest, n * Self::INNER_SCRATCH);
        let (mut yf, rest) = B::split_mut(rest, n * HALF);
        let mut yb = B::split_mut(rest, n * HALF).0;
        let (pf, pb) = (B::sub(params, 0..Self::INNER), B::sub(params, Self::INNER..Self::PARAMS));
        self.forward.forward(ctx, pf, B::reborrow(&mut state), x, RowsMut::new(B::reborrow(&mut yf), n), B::reborrow(&mut sf), training);
        self.backward.forward(ctx, pb, B::reborrow(&mut state), x, RowsMut::new(B::reborrow(&mut yb), n), B::reborrow(&mut sb), training);
        ctx.device.merge_directions(self.merge, n, Self::steps(), U, B::freeze(&yf), B::freeze(&yb), y.view);
    }

    /// Splits the output gradient between the directions and runs back through both; their
    /// input gradients add up.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        grads: B::ViewMut<'_>,
        state: B::View<'_>,
        x: Rows<'_, B, IN>,
        _y: Rows<'_, B, OUT>,
        scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, OUT>,
        dx: Option<RowsMut<'_, B, IN>>,
    ) {
        let dev = ctx.device;
        let n = x.rows;
        let (mut sf, rest) = B::split_mut(scratch, n * Self::INNER_SCRATCH);
        let (mut sb, rest) = B::split_mut(rest, n * Self::INNER_SCRATCH);
        let (yf, rest) = B::split_mut(rest, n * HALF);
        let (yb, rest) = B::split_mut(rest, n * HALF);
        let (mut dyf, rest) = B::split_mut(rest, n * HALF);
        let (mut dyb, rest) = B::split_mut(rest, n * HALF);
        let mut dxb = B::split_mut(rest, n * IN).0;
        let (yf, yb) = (Rows::<B, HALF>::new(B::freeze(&yf), n), Rows::<B, HALF>::new(B::freeze(&yb), n));
        let (pf, pb) = (B::sub(params, 0..Self::INNER), B::sub(params, Self::INNER..Self::PARAMS));
        let (gf, gb) = B::split_mut(grads, Self::INNER);
        dev.merge_directions_backward(
            self.merge,
            n,
            Self::steps(),
            U,
            B::freeze(&dy.view),
            yf.view,
            yb.view,
            B::reborrow(&mut dyf),
            B::reborrow(&mut dyb),
        );
        let mut dx = dx;
        self.forward.backward(
            ctx,
            pf,
            gf,
            state,
            x,
            yf,
            B::reborrow(&mut sf),
            RowsMut::new(B::reborrow(&mut dyf), n),
            dx.as_mut().map(|d| d.reborrow()),
        );
        let dxb_rows = dx.is_some().then(|| RowsMut::<B, IN>::new(B::reborrow(&mut dxb), n));
        self.backward.backward(ctx, pb, gb, state, x, yb, B::reborrow(&mut sb), RowsMut::new(B::reborrow(&mut dyb), n), dxb_rows);
        if let Some(dx) = dx {
            dev.add(B::sub(B::freeze(&dxb), 0..n * IN), dx.view);
        }
    }
}
