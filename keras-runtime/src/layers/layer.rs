//! The layer contract: the [`Layer`] trait, its [`Forward`] and [`Backward`] arguments, the rows
//! they carry, the [`Ctx`] of a pass and the keys of random layers' draws.

use crate::backend::Backend;
use crate::backend::ops::{Draw, RandomStream};
use crate::distribution::Shard;

/// What a layer's kernels need besides their tensors: the device, the model's [`RandomStream`]
/// buffer (its seed and training step, read by the random layers' kernels), and in a
/// data-parallel step the rank's share of the global batch.
pub struct Ctx<'a, B: Backend> {
    /// The device.
    pub device: &'a B,
    /// The model's random stream, [`RandomStream::LEN`] floats on the device.
    pub stream: &'a B::Buffer,
    /// In a data-parallel step: this rank's slice of the global batch, for the layers whose
    /// result depends on the whole batch (batch statistics) or a sample's place in it (random
    /// draws).
    pub shard: Option<&'a Shard>,
}

impl<B: Backend> Clone for Ctx<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for Ctx<'_, B> {}

impl<'a, B: Backend> Ctx<'a, B> {
    /// The context of a pass on one process.
    pub fn new(device: &'a B, stream: &'a B::Buffer) -> Self {
        Ctx { device, stream, shard: None }
    }

    /// Where this pass's first row lies in the global batch, for a layer whose input is `rows`
    /// rows (samples times the rows of each sample: a feature map's pixels, a sequence's
    /// steps): 0 outside data parallelism.
    pub fn first_row(&self, rows: usize) -> usize {
        self.shard.filter(|s| s.rows > 0).map_or(0, |s| s.first_row * (rows / s.rows))
    }

    /// The random stream as a view, for a random layer's kernel.
    pub fn stream(&self) -> B::View<'a> {
        B::view(self.stream, 0..RandomStream::LEN)
    }
}

/// A layer's forward pass over `x.rows` rows: reads `x` (and `params`), writes `y`; may update
/// its non-trainable `state` in training and keep what backward needs in `scratch`.
pub struct Forward<'a, B: Backend, const IN: usize, const OUT: usize> {
    /// The device and random stream.
    pub ctx: &'a Ctx<'a, B>,
    /// The layer's trainable parameters (Keras layout, in its order).
    pub params: B::View<'a>,
    /// The layer's non-trainable state (moving statistics).
    pub state: B::ViewMut<'a>,
    /// The input.
    pub x: Rows<'a, B, IN>,
    /// The output.
    pub y: RowsMut<'a, B, OUT>,
    /// The layer's scratch (`SCRATCH` floats per row).
    pub scratch: B::ViewMut<'a>,
    /// Training (dropout active, batch statistics) or inference.
    pub training: bool,
}

/// A layer's backward pass after a training forward pass on the same `x`: from the output
/// gradient `dy` (which it may overwrite), the gradients of its parameters into `grads`
/// (overwritten) and, when `dx` is given, the input gradient.
pub struct Backward<'a, B: Backend, const IN: usize, const OUT: usize> {
    /// The device and random stream.
    pub ctx: &'a Ctx<'a, B>,
    /// The layer's trainable parameters.
    pub params: B::View<'a>,
    /// Their gradients, overwritten.
    pub grads: B::ViewMut<'a>,
    /// The layer's non-trainable state.
    pub state: B::View<'a>,
    /// The forward pass's input.
    pub x: Rows<'a, B, IN>,
    /// The forward pass's output.
    pub y: Rows<'a, B, OUT>,
    /// The layer's scratch, as forward left it.
    pub scratch: B::ViewMut<'a>,
    /// The output gradient (the layer may overwrite it).
    pub dy: RowsMut<'a, B, OUT>,
    /// The input gradient, written when given (the first layer of a model gets none).
    pub dx: Option<RowsMut<'a, B, IN>>,
}

/// A layer from `IN` to `OUT` floats per row, on backend `B`.
pub trait Layer<B: Backend, const IN: usize, const OUT: usize> {
    /// The forward pass.
    fn forward(&self, f: Forward<'_, B, IN, OUT>);
    /// The backward pass.
    fn backward(&self, b: Backward<'_, B, IN, OUT>);
}

/// Where a random layer's draws come from: its position in the model (mixed with the model's
/// seed) or its own `seed=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrawKey {
    key: u64,
    fixed: bool,
}

impl DrawKey {
    /// Draws keyed by the layer's position `index`, mixed with the model's seed.
    pub const fn at(index: u64) -> DrawKey {
        DrawKey { key: index.wrapping_mul(0x9e37_79b9_7f4a_7c15), fixed: false }
    }

    /// Draws from the layer's own seed alone (Keras's `seed=`).
    pub const fn seeded(seed: u64) -> DrawKey {
        DrawKey { key: seed, fixed: true }
    }

    /// The kernels' descriptor of a draw over `rows` samples (`channels` for whole channels),
    /// the first of which is sample `first_row` of the batch and `per_row` draws each (its
    /// width, or `channels`).
    pub const fn draw(&self, rate: f32, rows: usize, channels: usize, first_row: usize, per_row: usize) -> Draw {
        Draw { rate, key: self.key, fixed: self.fixed, rows, channels, first: (first_row * per_row) as u64 }
    }
}

/// A read-only batch of rows of width `W`.
pub struct Rows<'a, B: Backend, const W: usize> {
    /// The data, `rows * W` floats.
    pub view: B::View<'a>,
    /// Number of rows.
    pub rows: usize,
}

impl<B: Backend, const W: usize> Clone for Rows<'_, B, W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend, const W: usize> Copy for Rows<'_, B, W> {}

impl<'a, B: Backend, const W: usize> Rows<'a, B, W> {
    /// The first `rows * W` floats of `view`.
    pub fn new(view: B::View<'a>, rows: usize) -> Self {
        Rows { view: B::sub(view, 0..rows * W), rows }
    }

    /// The same rows, for a shorter time.
    pub fn reborrow(&self) -> Rows<'_, B, W> {
        Rows { view: B::shorten(&self.view), rows: self.rows }
    }
}

/// A writable batch of rows of width `W`.
pub struct RowsMut<'a, B: Backend, const W: usize> {
    /// The data, `rows * W` floats.
    pub view: B::ViewMut<'a>,
    /// Number of rows.
    pub rows: usize,
}

impl<'a, B: Backend, const W: usize> RowsMut<'a, B, W> {
    /// The first `rows * W` floats of `view`.
    pub fn new(view: B::ViewMut<'a>, rows: usize) -> Self {
        RowsMut { view: B::split_mut(view, rows * W).0, rows }
    }

    /// A read-only view of the same rows.
    pub fn as_rows(&self) -> Rows<'_, B, W> {
        Rows { view: B::freeze(&self.view), rows: self.rows }
    }

    /// A shorter-lived writable view of the same rows.
    pub fn reborrow(&mut self) -> RowsMut<'_, B, W> {
        RowsMut { view: B::reborrow(&mut self.view), rows: self.rows }
    }

    /// The gradient `dy` copied into `dx`, when given: the backward pass of a layer that only
    /// moves values (a reshape, an inactive dropout).
    pub fn copy_to(&self, device: &B, dx: Option<RowsMut<'_, B, W>>) {
        if let Some(dx) = dx {
            device.copy(B::freeze(&self.view), dx.view);
        }
    }
}

/// Runs a layer's training forward pass, then its backward pass, on the CPU, for the layers'
/// unit tests: the output, the input gradient and the parameters' gradients.
#[cfg(test)]
pub(crate) fn run_on_cpu<L: Layer<crate::backend::Cpu, W, W>, const W: usize>(
    layer: &L,
    params: &[f32],
    x: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let device = crate::backend::Cpu::default();
    let stream = vec![0.0; RandomStream::LEN];
    let ctx = Ctx::new(&device, &stream);
    let rows = x.len() / W;
    let (mut y, mut dx, mut grads, mut dy) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()], vec![f32::NAN; params.len()], dy.to_vec());
    let (mut state, mut scratch) = (Vec::<f32>::new(), Vec::<f32>::new());
    layer.forward(Forward {
        ctx: &ctx,
        params,
        state: &mut state,
        x: Rows::new(x, rows),
        y: RowsMut::new(&mut y[..], rows),
        scratch: &mut scratch,
        training: true,
    });
    layer.backward(Backward {
        ctx: &ctx,
        params,
        grads: &mut grads,
        state: &[],
        x: Rows::new(x, rows),
        y: Rows::new(&y[..], rows),
        scratch: &mut scratch,
        dy: RowsMut::new(&mut dy[..], rows),
        dx: Some(RowsMut::new(&mut dx[..], rows)),
    });
    (y, dx, grads)
}
