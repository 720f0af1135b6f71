//! `Bidirectional`: a recurrent layer run over the sequence in both directions, the two outputs
//! merged.

use super::{Backward, Forward, Layer, Recurrent, Rows, RowsMut};
use crate::backend::{Backend, Directions, MergeMode};

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

    /// The merge of `batch` samples' outputs (`T` steps each with `return_sequences`, else 1).
    const fn directions(&self, batch: usize) -> Directions {
        Directions { mode: self.merge, batch, steps: HALF / U, units: U }
    }
}

impl<
    B: Backend,
    const T: usize,
    const F: usize,
    const U: usize,
    const GATES: usize,
    const BIAS: usize,
    const IN: usize,
    const HALF: usize,
    const OUT: usize,
> Layer<B, IN, OUT> for Bidirectional<T, F, U, GATES, BIAS, IN, HALF, OUT>
{
    /// Runs both directions and merges them.
    fn forward(&self, Forward { ctx, params, mut state, x, y, scratch, training }: Forward<'_, B, IN, OUT>) {
        let n = x.rows;
        let (mut sf, rest) = B::split_mut(scratch, n * Self::INNER_SCRATCH);
        let (mut sb, rest) = B::split_mut(rest, n * Self::INNER_SCRATCH);
        let (mut yf, rest) = B::split_mut(rest, n * HALF);
        let mut yb = B::split_mut(rest, n * HALF).0;
        let (pf, pb) = (B::sub(params, 0..Self::INNER), B::sub(params, Self::INNER..Self::PARAMS));
        for (layer, params, y, scratch) in [(&self.forward, pf, &mut yf, &mut sf), (&self.backward, pb, &mut yb, &mut sb)] {
            layer.forward(Forward {
                ctx,
                params: B::shorten(&params),
                state: B::reborrow(&mut state),
                x: x.reborrow(),
                y: RowsMut::new(B::reborrow(y), n),
                scratch: B::reborrow(scratch),
                training,
            });
        }
        ctx.device.merge_directions(&self.directions(n), B::freeze(&yf), B::freeze(&yb), y.view);
    }

    /// Splits the output gradient between the directions and runs back through both; their
    /// input gradients add up.
    fn backward(&self, Backward { ctx, params, grads, state, x, scratch, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
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
        let (mut gf, mut gb) = B::split_mut(grads, Self::INNER);
        let d = self.directions(n);
        ctx.device.merge_directions_backward(&d, B::freeze(&dy.view), yf.view, yb.view, B::reborrow(&mut dyf), B::reborrow(&mut dyb));
        // The forward direction writes the input gradient, the backward one its own, added after.
        let mut dx = dx;
        let want_dx = dx.is_some();
        let directions =
            [(&self.forward, pf, &mut gf, yf, &mut sf, &mut dyf, true), (&self.backward, pb, &mut gb, yb, &mut sb, &mut dyb, false)];
        for (layer, params, grads, y, scratch, dy, first) in directions {
            let dx = match (first, dx.as_mut()) {
                (true, d) => d.map(|d| d.reborrow()),
                (false, _) => want_dx.then(|| RowsMut::<B, IN>::new(B::reborrow(&mut dxb), n)),
            };
            layer.backward(Backward {
                ctx,
                params: B::shorten(&params),
                grads: B::reborrow(grads),
                state: B::shorten(&state),
                x: x.reborrow(),
                y: y.reborrow(),
                scratch: B::reborrow(scratch),
                dy: RowsMut::new(B::reborrow(dy), n),
                dx,
            });
        }
        if let Some(dx) = dx {
            ctx.device.add(B::sub(B::freeze(&dxb), 0..n * IN), dx.view);
        }
    }
}
