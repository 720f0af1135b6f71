//! `Embedding`: integer ids to rows of a trainable table.

use super::{Rows, RowsMut};
use crate::backend::Backend;
use crate::model::Ctx;

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

    /// `y[i] = embeddings[x[i]]`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        params: B::View<'_>,
        _state: B::ViewMut<'_>,
        x: Rows<'_, B, 1>,
        y: RowsMut<'_, B, DIM>,
        _scratch: B::ViewMut<'_>,
        _training: bool,
    ) {
        ctx.device.embedding(x.view, DIM, params, y.view);
    }

    /// The table's gradient: each row of `dy` added into the row its id looked up. Ids have no
    /// gradient (`dx` is never asked for: Embedding comes first).
    #[allow(clippy::too_many_arguments)]
    pub fn backward<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        _params: B::View<'_>,
        grads: B::ViewMut<'_>,
        _state: B::View<'_>,
        x: Rows<'_, B, 1>,
        _y: Rows<'_, B, DIM>,
        _scratch: B::ViewMut<'_>,
        dy: RowsMut<'_, B, DIM>,
        _dx: Option<RowsMut<'_, B, 1>>,
    ) {
        ctx.device.embedding_backward(x.view, DIM, B::freeze(&dy.view), grads);
    }
}
