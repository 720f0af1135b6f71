//! `Embedding`: integer ids to rows of a trainable table.

use super::{Backward, Forward, Layer};
use crate::backend::Backend;

/// Looks up each id (one per row, an integer stored as f32 and checked to lie in
/// `[0, VOCAB)` before it gets here) in a `VOCAB x DIM` table. Parameters: `embeddings`
/// `(VOCAB, DIM)` row-major.
#[derive(Clone, Copy, Debug, Default)]
pub struct Embedding<const VOCAB: usize, const DIM: usize>;

impl<const VOCAB: usize, const DIM: usize> Embedding<VOCAB, DIM> {
    /// Trainable floats.
    pub const PARAMS: usize = VOCAB * DIM;
    /// Per-row scratch kept for backward.
    pub const SCRATCH: usize = 0;

    /// The layer.
    pub const fn new() -> Self {
        Embedding
    }
}

impl<B: Backend, const VOCAB: usize, const DIM: usize> Layer<B, 1, DIM> for Embedding<VOCAB, DIM> {
    /// `y[i] = embeddings[x[i]]`.
    fn forward(&self, Forward { ctx, params, x, y, .. }: Forward<'_, B, 1, DIM>) {
        ctx.device.embedding(DIM, x.view, params, y.view);
    }

    /// The table's gradient: each row of `dy` added into the row its id looked up. Ids have no
    /// gradient (`dx` is never asked for: an Embedding reads a model input).
    fn backward(&self, Backward { ctx, grads, x, dy, .. }: Backward<'_, B, 1, DIM>) {
        ctx.device.embedding_backward(DIM, x.view, B::freeze(&dy.view), grads);
    }
}
