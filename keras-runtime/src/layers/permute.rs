//! `Permute`: reorders the axes of each sample.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, MAX_RANK, Permutation};

/// Permutes the axes of samples of `N` floats; backward applies the inverse permutation.
#[derive(Clone, Copy, Debug)]
pub struct Permute<const N: usize> {
    forward: Permutation,
    backward: Permutation,
}

impl<const N: usize> Permute<N> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-sample scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer for `p` (whose sample size must be `N`, and `perm` a permutation of `0..rank`).
    pub const fn new(p: Permutation) -> Self {
        assert!(p.rank >= 1 && p.rank <= MAX_RANK && p.len() == N);
        let mut seen = [false; MAX_RANK];
        let mut i = 0;
        while i < p.rank {
            assert!(p.perm[i] < p.rank && !seen[p.perm[i]], "not a permutation");
            seen[p.perm[i]] = true;
            i += 1;
        }
        Permute { forward: p, backward: p.inverse() }
    }
}

impl<B: Backend, const N: usize> Layer<B, N, N> for Permute<N> {
    /// `y = transpose(x, perm)` per sample.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, N, N>) {
        ctx.device.permute(&self.forward, x.rows, x.view, y.view);
    }

    /// `dx = transpose(dy, inverse(perm))`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, N, N>) {
        if let Some(dx) = dx {
            ctx.device.permute(&self.backward, x.rows, B::freeze(&dy.view), dx.view);
        }
    }
}
