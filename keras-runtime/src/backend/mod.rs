//! Backends: where buffers live and kernels run.
//!
//! A backend is layered:
//!
//! - [`Device`], the core every backend writes: buffers and views of them, transfers, a matrix
//!   product, a few elementwise primitives and the row gather that batches a data set.
//! - Op families, each a trait with a default body for every kernel: [`DenseOps`],
//!   [`NormOps`], [`WindowOps`], [`SequenceOps`], [`LayoutOps`], [`RandomOps`],
//!   [`ObjectiveOps`], [`OptimizerOps`]. A default either composes core operations on the
//!   device (`linear` is a product then `bias_act`) or runs the CPU backend's kernel on host
//!   copies of its tensors (download, compute, upload; see `host`). So a new backend trains a
//!   model as soon as its core exists, and overrides kernels one by one for speed.
//! - [`Backend`], every family together: what layers, models and the training loop ask for. It
//!   is implemented for every type that implements the core and the families.
//!
//! Kernels receive plain-data descriptors from the leaf module [`ops`] (a window, a recurrent
//! step, a loss, an update rule), not long argument lists; views of the same kernel that travel
//! together come as small structs ([`Affine`], [`NormGrads`], [`RnnStepIo`], ...).
//!
//! **Errors.** Kernels return nothing: a device runs them asynchronously. A kernel's failure (a
//! launch error, a fault, a failed transfer inside a default) is *sticky*: the backend records
//! the first one ([`Device::fail`]) and returns it from the next [`Device::download`] or
//! [`Device::sync`], which is where the training loop reads results back (logs, predictions,
//! weights). The CPU backend's kernels cannot fail.

pub mod cpu;
mod host;
pub mod ops;

pub use cpu::Cpu;
pub use ops::*;

use crate::error::{Error, Result};
use std::fmt;
use std::ops::Range;

/// The core of a backend: buffers of f32 on the device, views of them, transfers, a matrix
/// product and a few primitives. Everything else has defaults built from these.
///
/// Matrices are row-major. A view is a range of one buffer; on the CPU views are slices.
pub trait Device: Clone + Send + Sync + fmt::Debug + 'static {
    /// A buffer of f32 on the device.
    type Buffer: Send + Sync + fmt::Debug;
    /// A read-only range of a buffer.
    type View<'a>: Copy;
    /// A writable range of a buffer.
    type ViewMut<'a>;
    /// A buffer of row indices on the device (a shuffled epoch's order).
    type Indices: Send + Sync + fmt::Debug;

    /// A short description of the device (`cpu (avx512, 2 threads)`).
    fn describe(&self) -> String;
    /// A zero-filled buffer of `len` floats.
    fn alloc(&self, len: usize) -> Result<Self::Buffer>;
    /// The length of a buffer.
    fn len(buf: &Self::Buffer) -> usize;
    /// A view of part of a buffer.
    fn view(buf: &Self::Buffer, range: Range<usize>) -> Self::View<'_>;
    /// A writable view of part of a buffer.
    fn view_mut(buf: &mut Self::Buffer, range: Range<usize>) -> Self::ViewMut<'_>;
    /// The length of a view.
    fn view_len(v: Self::View<'_>) -> usize;
    /// A sub-range of a view.
    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a>;
    /// Splits a writable view at `mid`.
    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>);
    /// A shorter-lived writable view of the same range.
    fn reborrow<'s>(v: &'s mut Self::ViewMut<'_>) -> Self::ViewMut<'s>;
    /// A read-only view of a writable view.
    fn freeze<'s>(v: &'s Self::ViewMut<'_>) -> Self::View<'s>;
    /// A shorter-lived copy of a read-only view (views are invariant in their lifetime, so a
    /// longer-lived one is narrowed this way to sit beside shorter ones).
    fn shorten<'s>(v: &'s Self::View<'_>) -> Self::View<'s>;
    /// Host memory as a view, when the device reads host memory in place (the CPU does); the
    /// training loop then uses a data set where it lies instead of copying it to the device.
    fn host_view<'a>(&self, _data: &'a [f32]) -> Option<Self::View<'a>> {
        None
    }

    /// Copies host data into a view of the same length.
    fn upload(&self, src: &[f32], dst: Self::ViewMut<'_>) -> Result<()>;
    /// Copies a view into host memory of the same length, after every kernel launched before
    /// it; returns a kernel error recorded since the last read (see the module's notes).
    fn download(&self, src: Self::View<'_>, dst: &mut [f32]) -> Result<()>;
    /// Waits for every kernel launched so far; returns a kernel error recorded since the last
    /// read.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Records a kernel's failure, to be returned by the next [`Device::download`] or
    /// [`Device::sync`] (the first failure wins).
    fn fail(&self, error: Error);

    /// Copies one view into another of the same length.
    fn copy(&self, src: Self::View<'_>, dst: Self::ViewMut<'_>);
    /// Sets every element to `value`.
    fn fill(&self, dst: Self::ViewMut<'_>, value: f32);
    /// The matrix product `g` describes: `c (+)= op(a) · op(b)`.
    fn gemm(&self, g: &Gemm, a: Self::View<'_>, b: Self::View<'_>, c: Self::ViewMut<'_>);
    /// In place: `dst += src`, elementwise.
    fn add(&self, src: Self::View<'_>, dst: Self::ViewMut<'_>);
    /// In place: `v *= factor`.
    fn scale(&self, v: Self::ViewMut<'_>, factor: f32);
    /// Elementwise `out = a * b`.
    fn multiply(&self, a: Self::View<'_>, b: Self::View<'_>, out: Self::ViewMut<'_>);

    /// A buffer for `len` row indices.
    fn alloc_indices(&self, len: usize) -> Result<Self::Indices>;
    /// Copies host indices into the start of an index buffer.
    fn upload_indices(&self, src: &[usize], dst: &mut Self::Indices) -> Result<()>;
    /// Copies rows `indices[range]` of `src` (rows of `row_len` floats) into `dst`, in order:
    /// one shuffled batch of a data set held on the device.
    fn gather_rows(&self, src: Self::View<'_>, row_len: usize, indices: &Self::Indices, range: Range<usize>, dst: Self::ViewMut<'_>);
}

/// A layer's scale and offset (`gamma`, `beta`), each optional.
pub struct Affine<'a, D: Device> {
    /// The scale, one per normalized feature.
    pub gamma: Option<D::View<'a>>,
    /// The offset.
    pub beta: Option<D::View<'a>>,
}

/// The gradients a normalization's backward pass writes (overwritten), each when wanted.
pub struct NormGrads<'a, D: Device> {
    /// Of the scale.
    pub dgamma: Option<D::ViewMut<'a>>,
    /// Of the offset.
    pub dbeta: Option<D::ViewMut<'a>>,
    /// Of the input.
    pub dx: Option<D::ViewMut<'a>>,
}

/// Batch normalization's statistics kept for the backward pass: per column, the mean and
/// `1 / sqrt(var + epsilon)`.
pub struct BatchStats<'a, D: Device> {
    /// The batch's mean.
    pub mean: D::View<'a>,
    /// The inverse standard deviation.
    pub inv: D::View<'a>,
}

/// Bias and activation kernels: a dense layer's epilogue and its backward pass.
pub trait DenseOps: Device {
    /// A dense layer's forward pass `y = act(x · w + bias)` (see [`Linear`]); when `pre` is given
    /// it receives `x · w + bias`. Backends fuse the bias and activation into the product where
    /// they can; the default is [`Device::gemm`] then [`DenseOps::bias_act`].
    fn linear(
        &self,
        l: &Linear,
        x: Self::View<'_>,
        w: Self::View<'_>,
        bias: Option<Self::View<'_>>,
        mut y: Self::ViewMut<'_>,
        pre: Option<Self::ViewMut<'_>>,
    ) {
        self.gemm(&Gemm::nn(l.rows, l.n, l.k), x, w, Self::reborrow(&mut y));
        self.bias_act(&BiasAct { rows: l.rows, cols: l.n, act: l.act }, y, bias, pre);
    }

    /// In place on a `rows x cols` matrix: `y = act(y + bias)`; when `pre` is given it receives
    /// `y + bias` (the activation's input, for the backward pass).
    fn bias_act(&self, a: &BiasAct, y: Self::ViewMut<'_>, bias: Option<Self::View<'_>>, pre: Option<Self::ViewMut<'_>>) {
        let mut yh = host::read_mut(self, &y);
        let bias = bias.map(|b| host::read(self, b));
        let mut pre_h = pre.as_ref().map(|p| host::read_mut(self, p));
        cpu::kernels::bias_act(a, &mut yh, bias.as_deref(), pre_h.as_deref_mut());
        host::write(self, &yh, y);
        host::write_opt(self, pre_h, pre);
    }

    /// In place: `g = g * act'(x)` given the activation's output `y` (and input `pre` where the
    /// activation needs it); when `dbias` is given it receives the column sums of the result.
    fn act_backward(
        &self,
        a: &BiasAct,
        g: Self::ViewMut<'_>,
        y: Self::View<'_>,
        pre: Option<Self::View<'_>>,
        dbias: Option<Self::ViewMut<'_>>,
    ) {
        let mut gh = host::read_mut(self, &g);
        let (yh, pre) = (host::read(self, y), pre.map(|p| host::read(self, p)));
        let mut db = dbias.as_ref().map(|d| host::read_mut(self, d));
        cpu::kernels::act_backward(a, &mut gh, &yh, pre.as_deref(), db.as_deref_mut());
        host::write(self, &gh, g);
        host::write_opt(self, db, dbias);
    }
}

/// Normalization kernels: batch and layer normalization.
pub trait NormOps: Device {
    /// Per column of the `rows x cols` matrix `x`: the mean and the biased variance (two passes,
    /// as `jnp.var`).
    fn moments(&self, n: &Norm, x: Self::View<'_>, mean: Self::ViewMut<'_>, var: Self::ViewMut<'_>) {
        let x = host::read(self, x);
        let (mut m, mut v) = (host::read_mut(self, &mean), host::read_mut(self, &var));
        cpu::kernels::moments(n, &x, &mut m, &mut v);
        host::write(self, &m, mean);
        host::write(self, &v, var);
    }

    /// `moving = moving * momentum + value * (1 - momentum)`, elementwise.
    fn moving_average(&self, momentum: f32, moving: Self::ViewMut<'_>, value: Self::View<'_>) {
        let mut m = host::read_mut(self, &moving);
        cpu::kernels::moving_average(momentum, &mut m, &host::read(self, value));
        host::write(self, &m, moving);
    }

    /// Batch normalization of a `rows x cols` matrix, as JAX computes it: `inv = 1 / sqrt(var +
    /// epsilon)`, then `y = x * (inv * gamma) + (beta - mean * inv * gamma)`. `var` is
    /// overwritten with `inv` (before `gamma`), which the backward pass reads.
    fn batch_norm(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        mean: Self::View<'_>,
        var: Self::ViewMut<'_>,
        affine: Affine<'_, Self>,
        y: Self::ViewMut<'_>,
    ) {
        let (x, mean) = (host::read(self, x), host::read(self, mean));
        let (gamma, beta) = (affine.gamma.map(|v| host::read(self, v)), affine.beta.map(|v| host::read(self, v)));
        let (mut v, mut yh) = (host::read_mut(self, &var), host::read_mut(self, &y));
        cpu::kernels::batch_norm(n, &x, &mean, &mut v, Affine { gamma: gamma.as_deref(), beta: beta.as_deref() }, &mut yh);
        host::write(self, &v, var);
        host::write(self, &yh, y);
    }

    /// The backward pass of [`NormOps::batch_norm`] in training (statistics from the batch):
    /// `dgamma = Σ dy x̂`, `dbeta = Σ dy`, `dx = inv / n (n g - Σ g - x̂ Σ g x̂)` with `g = dy gamma`
    /// and `x̂ = (x - mean) inv`, sums over rows.
    fn batch_norm_backward(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        stats: BatchStats<'_, Self>,
        gamma: Option<Self::View<'_>>,
        grads: NormGrads<'_, Self>,
    ) {
        let (x, dy) = (host::read(self, x), host::read(self, dy));
        let (mean, inv) = (host::read(self, stats.mean), host::read(self, stats.inv));
        let gamma = gamma.map(|g| host::read(self, g));
        let mut g = host::Grads::read(self, &grads);
        cpu::kernels::batch_norm_backward(n, &x, &dy, BatchStats { mean: &mean, inv: &inv }, gamma.as_deref(), g.as_mut());
        g.write(self, grads);
    }

    /// Layer normalization of each row of a `rows x cols` matrix, in JAX's order (see
    /// [`NormOps::batch_norm`]); `stats` receives each row's mean and `1 / sqrt(var + epsilon)`.
    fn layer_norm(&self, n: &Norm, x: Self::View<'_>, affine: Affine<'_, Self>, y: Self::ViewMut<'_>, stats: Self::ViewMut<'_>) {
        let x = host::read(self, x);
        let (gamma, beta) = (affine.gamma.map(|v| host::read(self, v)), affine.beta.map(|v| host::read(self, v)));
        let (mut yh, mut st) = (host::read_mut(self, &y), host::read_mut(self, &stats));
        cpu::kernels::layer_norm(n, &x, Affine { gamma: gamma.as_deref(), beta: beta.as_deref() }, &mut yh, &mut st);
        host::write(self, &yh, y);
        host::write(self, &st, stats);
    }

    /// The backward pass of [`NormOps::layer_norm`]: `dgamma = Σ_rows dy x̂`, `dbeta = Σ_rows dy`,
    /// and per row `dx = inv / n (n g - Σ g - x̂ Σ g x̂)` with `g = dy gamma`, `n = cols`.
    fn layer_norm_backward(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        stats: Self::View<'_>,
        gamma: Option<Self::View<'_>>,
        grads: NormGrads<'_, Self>,
    ) {
        let (x, dy, st) = (host::read(self, x), host::read(self, dy), host::read(self, stats));
        let gamma = gamma.map(|g| host::read(self, g));
        let mut g = host::Grads::read(self, &grads);
        cpu::kernels::layer_norm_backward(n, &x, &dy, &st, gamma.as_deref(), g.as_mut());
        g.write(self, grads);
    }
}

/// Sliding-window kernels: convolution by im2col, depthwise convolution, pooling.
pub trait WindowOps: Device {
    /// Unfolds `batch` NHWC samples into patch rows: `cols` gets `batch * oh * ow` rows of
    /// `kh * kw * c` values in kernel order `(i, j, channel)`, zero where a tap reads padding.
    fn im2col(&self, g: &Window2d, batch: usize, x: Self::View<'_>, cols: Self::ViewMut<'_>) {
        host::run(self, &[x], cols, |[x], out| cpu::window::im2col(g, batch, x, out));
    }

    /// The adjoint of [`WindowOps::im2col`]: `dx` (overwritten) gets, for every input value, the
    /// sum of the patch entries that copied it.
    fn col2im(&self, g: &Window2d, batch: usize, cols: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[cols], dx, |[cols], out| cpu::window::col2im(g, batch, cols, out));
    }

    /// A depthwise convolution over patch rows (as [`WindowOps::im2col`] lays them out):
    /// `y[r, ch * dm + m] = Σ_t cols[r, t * c + ch] · kernel[t, ch * dm + m]`; `y` overwritten.
    fn depthwise(&self, d: &Depthwise, cols: Self::View<'_>, kernel: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&cols), Self::shorten(&kernel)], y, |[cols, kernel], out| {
            cpu::window::depthwise(d, cols, kernel, out)
        });
    }

    /// The kernel gradient of [`WindowOps::depthwise`]: `dkernel[t, ch * dm + m]` (overwritten)
    /// `= Σ_r cols[r, t * c + ch] · dy[r, ch * dm + m]`.
    fn depthwise_kernel_grad(&self, d: &Depthwise, cols: Self::View<'_>, dy: Self::View<'_>, dkernel: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&cols), Self::shorten(&dy)], dkernel, |[cols, dy], out| {
            cpu::window::depthwise_kernel_grad(d, cols, dy, out)
        });
    }

    /// The patch gradient of [`WindowOps::depthwise`]: `dcols[r, t * c + ch]` (overwritten)
    /// `= Σ_m dy[r, ch * dm + m] · kernel[t, ch * dm + m]`.
    fn depthwise_input_grad(&self, d: &Depthwise, kernel: Self::View<'_>, dy: Self::View<'_>, dcols: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&kernel), Self::shorten(&dy)], dcols, |[kernel, dy], out| {
            cpu::window::depthwise_input_grad(d, kernel, dy, out)
        });
    }

    /// Pools `batch` NHWC samples `x` over the windows of `p` (per channel) into `y`.
    fn pool2d(&self, p: &Pool2d, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| cpu::window::pool2d(p, batch, x, out));
    }

    /// The backward pass of [`WindowOps::pool2d`]: `dx` (overwritten) from the output gradient
    /// `dy`; a max window sends its gradient to its first input equal to the output.
    fn pool2d_backward(&self, p: &Pool2d, batch: usize, x: Self::View<'_>, y: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&y), Self::shorten(&dy)], dx, |[x, y, dy], out| {
            cpu::window::pool2d_backward(p, batch, x, y, dy, out)
        });
    }
}

/// The tensors of [`SequenceOps::rnn_step`].
pub struct RnnStepIo<'a, D: Device> {
    /// The input projections of every step, `batch * timesteps x gates * units` (rows
    /// `n * timesteps + t`), the input bias included.
    pub xw: D::View<'a>,
    /// `h R` of the previous state, `batch x gates * units` (for [`CellKind::GruResetBefore`]
    /// `h R` then `(r h) R`); `None` at the first step, where the state is zero.
    pub hu: Option<D::View<'a>>,
    /// The GRU's recurrent bias.
    pub rbias: Option<D::View<'a>>,
    /// The previous step's state and `pre` (for the GRU's state and the LSTM's cell state).
    pub prev: Option<(D::View<'a>, D::View<'a>)>,
    /// This step's pre-activations (`batch x cell.stored()`), written.
    pub pre: D::ViewMut<'a>,
    /// This step's activations, written.
    pub post: D::ViewMut<'a>,
    /// The new state (`batch x units`), written.
    pub h: D::ViewMut<'a>,
    /// The layer's output (`batch x timesteps x units` with `return_sequences`, else `batch x
    /// units`, written at the last step).
    pub y: D::ViewMut<'a>,
}

/// The tensors of [`SequenceOps::rnn_step_backward`].
pub struct RnnStepGrads<'a, D: Device> {
    /// The layer's output gradient.
    pub dy: D::View<'a>,
    /// The step's pre-activations.
    pub pre: D::View<'a>,
    /// The step's activations.
    pub post: D::View<'a>,
    /// The previous step's state and `pre`.
    pub prev: Option<(D::View<'a>, D::View<'a>)>,
    /// The state's gradient from later steps; left holding the part of the previous state's
    /// gradient that does not pass through the recurrent kernel (`z dh` for the GRU, else zero).
    pub dh: D::ViewMut<'a>,
    /// Likewise for the LSTM's cell state.
    pub dc: D::ViewMut<'a>,
    /// The input projections' gradients (rows `n * timesteps + t` written).
    pub dxw: D::ViewMut<'a>,
    /// The gradient of `h R` plus recurrent bias (for [`CellKind::GruResetBefore`] also of
    /// `(r h) R`).
    pub dhu: D::ViewMut<'a>,
    /// Working space, `batch x gates * units`.
    pub tmp: D::ViewMut<'a>,
    /// The input bias's gradient, added to.
    pub dbias: Option<D::ViewMut<'a>>,
    /// The recurrent bias's gradient, added to.
    pub drbias: Option<D::ViewMut<'a>>,
}

/// The tensors of [`SequenceOps::rnn_reset_state_backward`].
pub struct RnnResetGrads<'a, D: Device> {
    /// The gradient of `r h` (`None` at the first step).
    pub drh: Option<D::View<'a>>,
    /// The step's pre-activations.
    pub pre: D::View<'a>,
    /// The step's activations.
    pub post: D::View<'a>,
    /// The previous state.
    pub h: Option<D::View<'a>>,
    /// The state's gradient: `r drh` is added.
    pub dh: D::ViewMut<'a>,
    /// The input projections' gradients: the reset gate's block is written.
    pub dxw: D::ViewMut<'a>,
    /// The gradient of `h R`: the reset gate's block is written.
    pub dhu: D::ViewMut<'a>,
    /// The input bias's gradient: the input projections' row sums are added.
    pub dbias: Option<D::ViewMut<'a>>,
}

/// Embedding lookups and the step kernels of the recurrent layers.
pub trait SequenceOps: Device {
    /// Embedding lookup: row `i` of `y` (rows of `dim`) is row `ids[i]` of `table`; the ids are
    /// integers (as f32) already checked to lie within the table.
    fn embedding(&self, dim: usize, ids: Self::View<'_>, table: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&ids), Self::shorten(&table)], y, |[ids, table], out| {
            cpu::recurrent::embedding(dim, ids, table, out)
        });
    }

    /// The backward pass of [`SequenceOps::embedding`]: `dtable` (overwritten) gets, per row,
    /// the sum of the rows of `dy` that looked it up, added in order.
    fn embedding_backward(&self, dim: usize, ids: Self::View<'_>, dy: Self::View<'_>, dtable: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&ids), Self::shorten(&dy)], dtable, |[ids, dy], out| {
            cpu::recurrent::embedding_backward(dim, ids, dy, out)
        });
    }

    /// Step `s` of a recurrent layer (see [`RnnStepIo`] and [`RnnCell`]).
    fn rnn_step(&self, s: &RnnStep, io: RnnStepIo<'_, Self>) {
        host::rnn_step(self, s, io);
    }

    /// The reset gate's product for [`CellKind::GruResetBefore`] at step `s`: `rh = r h` with
    /// `r = σ(x K_r + b_r + h R_r)`, from the input projection `xw`, `hu = h R` and the previous
    /// state `h`, the input of the step's second recurrent product.
    fn rnn_reset_state(&self, s: &RnnStep, xw: Self::View<'_>, hu: Self::View<'_>, h: Self::View<'_>, rh: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&xw), Self::shorten(&hu), Self::shorten(&h)], rh, |[xw, hu, h], out| {
            cpu::recurrent::rnn_reset_state(s, xw, hu, h, out)
        });
    }

    /// The backward pass of step `s` of [`SequenceOps::rnn_step`] (see [`RnnStepGrads`]). For
    /// [`CellKind::GruResetBefore`] the reset gate's part is left to
    /// [`SequenceOps::rnn_reset_state_backward`] (which also sums `dbias`).
    fn rnn_step_backward(&self, s: &RnnStep, g: RnnStepGrads<'_, Self>) {
        host::rnn_step_backward(self, s, g);
    }

    /// The second half of [`SequenceOps::rnn_step_backward`] for [`CellKind::GruResetBefore`]
    /// (see [`RnnResetGrads`]).
    fn rnn_reset_state_backward(&self, s: &RnnStep, g: RnnResetGrads<'_, Self>) {
        host::rnn_reset_state_backward(self, s, g);
    }

    /// `Bidirectional`'s merge of `fwd` and `bwd`. The backward output is read reversed in time
    /// (its step `s` saw input step `steps - 1 - s`), so `y`'s step `t` combines both directions
    /// at input step `t`: `2 * units` values side by side for [`MergeMode::Concat`], else `units`.
    fn merge_directions(&self, d: &Directions, fwd: Self::View<'_>, bwd: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&fwd), Self::shorten(&bwd)], y, |[fwd, bwd], out| {
            cpu::recurrent::merge_directions(d, fwd, bwd, out)
        });
    }

    /// The backward pass of [`SequenceOps::merge_directions`]: `dfwd` and `dbwd` (overwritten)
    /// from `dy`.
    fn merge_directions_backward(
        &self,
        d: &Directions,
        dy: Self::View<'_>,
        fwd: Self::View<'_>,
        bwd: Self::View<'_>,
        dfwd: Self::ViewMut<'_>,
        dbwd: Self::ViewMut<'_>,
    ) {
        let (dy, fwd, bwd) = (host::read(self, dy), host::read(self, fwd), host::read(self, bwd));
        let (mut df, mut db) = (host::read_mut(self, &dfwd), host::read_mut(self, &dbwd));
        cpu::recurrent::merge_directions_backward(d, &dy, &fwd, &bwd, &mut df, &mut db);
        host::write(self, &df, dfwd);
        host::write(self, &db, dbwd);
    }
}

/// Data movement: permutations, repeats, borders, resizing, merges and column blocks.
pub trait LayoutOps: Device {
    /// Permutes the axes of each of `batch` samples `x` into `y`.
    fn permute(&self, p: &Permutation, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| cpu::shuffle::permute(p, batch, x, out));
    }

    /// `y[b, t, :] = x[b, :]` for `t < times` (`RepeatVector`).
    fn repeat(&self, r: &Repeat, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| cpu::shuffle::repeat(r, x, out));
    }

    /// The backward pass of [`LayoutOps::repeat`]: `dx[b, :] = Σ_t dy[b, t, :]`.
    fn repeat_backward(&self, r: &Repeat, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[dy], dx, |[dy], out| cpu::shuffle::repeat_backward(r, dy, out));
    }

    /// Each of `batch` small samples into the middle of a large one, zeros around it.
    fn pad2d(&self, g: &Border2d, batch: usize, small: Self::View<'_>, large: Self::ViewMut<'_>) {
        host::run(self, &[small], large, |[small], out| cpu::shuffle::pad2d(g, batch, small, out));
    }

    /// The middle of each of `batch` large samples into a small one.
    fn crop2d(&self, g: &Border2d, batch: usize, large: Self::View<'_>, small: Self::ViewMut<'_>) {
        host::run(self, &[large], small, |[large], out| cpu::shuffle::crop2d(g, batch, large, out));
    }

    /// Upsamples `batch` NHWC samples `x` into `y` (see [`Upsample2d`]).
    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| cpu::shuffle::upsample2d(g, batch, x, out));
    }

    /// The backward pass of [`LayoutOps::upsample2d`]: `dx` (overwritten) gets each input's share
    /// of the output gradient `dy`.
    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[dy], dx, |[dy], out| cpu::shuffle::upsample2d_backward(g, batch, dy, out));
    }

    /// The strided block copy of [`CopyCols`].
    fn copy_cols(&self, c: &CopyCols, src: Self::View<'_>, dst: Self::ViewMut<'_>) {
        host::run(self, &[src], dst, |[src], out| cpu::merge::copy_cols(c, src, out));
    }

    /// A merge layer's forward pass: `y = op(xs[0], xs[1], ..)` elementwise, all of one length.
    fn merge(&self, op: MergeOp, xs: &[Self::View<'_>], y: Self::ViewMut<'_>) {
        let xs: Vec<Vec<f32>> = xs.iter().map(|&x| host::read(self, x)).collect();
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let mut out = host::read_mut(self, &y);
        cpu::merge::merge(op, &refs, &mut out);
        host::write(self, &out, y);
    }

    /// The backward pass of [`LayoutOps::merge`] for input `i`: `dx` (overwritten) from `dy`. For
    /// `Maximum` and `Minimum` the gradient goes to the inputs equal to `y`, split evenly
    /// between ties.
    fn merge_backward(&self, op: MergeOp, i: usize, xs: &[Self::View<'_>], y: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        let xs: Vec<Vec<f32>> = xs.iter().map(|&x| host::read(self, x)).collect();
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let (y, dy) = (host::read(self, y), host::read(self, dy));
        let mut out = host::read_mut(self, &dx);
        cpu::merge::merge_backward(op, i, &refs, &y, &dy, &mut out);
        host::write(self, &out, dx);
    }
}

/// Random draws in training: dropout and Gaussian noise, keyed by the model's [`RandomStream`]
/// buffer, which they read on the device.
pub trait RandomOps: Device {
    /// Inverted dropout with `d.rate`: `mask` gets 1 where a value is kept (probability
    /// `1 - rate`), 0 elsewhere, from a counter-based generator keyed by the layer and the
    /// `stream`; `y = mask ? x / (1 - rate) : 0`. With `d.channels`, one draw per (sample,
    /// channel) over `rows * channels` mask values (`SpatialDropout2D`), `x` holding `rows`
    /// samples of positions of `channels` values.
    fn dropout(&self, d: &Draw, stream: Self::View<'_>, x: Self::View<'_>, y: Self::ViewMut<'_>, mask: Self::ViewMut<'_>) {
        let (stream, x) = (RandomStream::decode(&host::read(self, stream)), host::read(self, x));
        let (mut yh, mut m) = (host::read_mut(self, &y), host::read_mut(self, &mask));
        cpu::noise::dropout(d, stream, &x, &mut yh, &mut m);
        host::write(self, &yh, y);
        host::write(self, &m, mask);
    }

    /// The backward pass of [`RandomOps::dropout`]: `dx = mask ? g / (1 - rate) : 0`.
    fn dropout_backward(&self, d: &Draw, g: Self::View<'_>, mask: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&g), Self::shorten(&mask)], dx, |[g, mask], out| cpu::noise::dropout_backward(d, g, mask, out));
    }

    /// Gaussian noise of standard deviation `d.rate`, drawn afresh for every element as
    /// [`RandomOps::dropout`] draws: with `noise`, `noise = 1 + rate * n` and `y = x * noise`
    /// (`GaussianDropout`), else `y = x + rate * n` (`GaussianNoise`).
    fn gaussian_noise(&self, d: &Draw, stream: Self::View<'_>, x: Self::View<'_>, y: Self::ViewMut<'_>, noise: Option<Self::ViewMut<'_>>) {
        let (stream, x) = (RandomStream::decode(&host::read(self, stream)), host::read(self, x));
        let mut yh = host::read_mut(self, &y);
        let mut n = noise.as_ref().map(|n| host::read_mut(self, n));
        cpu::noise::gaussian_noise(d, stream, &x, &mut yh, n.as_deref_mut());
        host::write(self, &yh, y);
        host::write_opt(self, n, noise);
    }

    /// Advances a [`RandomStream`] buffer by one training step, so the next step draws anew.
    fn advance(&self, stream: Self::ViewMut<'_>) {
        let mut s = host::read_mut(self, &stream);
        cpu::noise::advance(&mut s);
        host::write(self, &s, stream);
    }
}

/// What the loss and metrics need: the loss and its gradient, metric accumulators, penalties.
pub trait ObjectiveOps: Device {
    /// The loss of a batch (see [`LossBatch`]); `target` has `cols` values per row (one class
    /// index for sparse losses). With `weights` (one per sample, `rows` a multiple of their count
    /// for outputs with more than one loss row per sample) the batch loss is Keras's
    /// `sum(w_i * loss_i) / rows`, else the mean. Adds the batch loss times `rows` to `stats[0]`
    /// and `rows` to `stats[1]` (Keras's running mean), and writes the gradient of the batch loss
    /// with respect to `pred` into `grad`.
    fn loss(
        &self,
        l: &LossBatch,
        pred: Self::View<'_>,
        target: Self::View<'_>,
        weights: Option<Self::View<'_>>,
        grad: Option<Self::ViewMut<'_>>,
        stats: Self::ViewMut<'_>,
    ) {
        let (pred, target, weights) = (host::read(self, pred), host::read(self, target), weights.map(|w| host::read(self, w)));
        let mut g = grad.as_ref().map(|g| host::read_mut(self, g));
        let mut st = host::read_mut(self, &stats);
        cpu::losses::loss(l, &pred, &target, weights.as_deref(), g.as_deref_mut(), &mut st);
        host::write_opt(self, g, grad);
        host::write(self, &st, stats);
    }

    /// Adds a batch to a metric's accumulators (`m.kind.stats_len(cols)` of them).
    fn metric(&self, m: &MetricBatch, pred: Self::View<'_>, target: Self::View<'_>, stats: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&pred), Self::shorten(&target)], stats, |[pred, target], out| {
            cpu::metrics::accumulate(m, pred, target, out)
        });
    }

    /// With `stats`, adds `scale` times the penalty of `w` to `stats[0]`; with `g`, adds the
    /// penalty's gradient `l1 sign(w) + 2 l2 w` to `g` (the sign of 0 is +1, as in Keras's JAX
    /// backend).
    fn regularize(&self, r: &Regularizer, w: Self::View<'_>, g: Option<Self::ViewMut<'_>>, scale: f32, stats: Option<Self::ViewMut<'_>>) {
        let w = host::read(self, w);
        let mut gh = g.as_ref().map(|g| host::read_mut(self, g));
        let mut st = stats.as_ref().map(|s| host::read_mut(self, s));
        cpu::penalties::regularize(r, &w, gh.as_deref_mut(), scale, st.as_deref_mut());
        host::write_opt(self, gh, g);
        host::write_opt(self, st, stats);
    }
}

/// The optimizer's step over the whole arena, and weight constraints.
pub trait OptimizerOps: Device {
    /// One optimizer step over a whole parameter arena (see [`Update`]): reads the step count
    /// and learning rate from the [`OptimizerStep`] buffer `step`, clips `grads` (in place; per
    /// weight tensor of `tensors` for [`Clip::Norm`]), decays the weights, applies the rule, and
    /// advances `step`. `state` holds the rule's buffers ([`UpdateRule::slots`]), each as long as
    /// `params`.
    fn update(
        &self,
        u: &Update,
        tensors: &[Segment],
        params: Self::ViewMut<'_>,
        grads: Self::ViewMut<'_>,
        state: &mut [Self::Buffer],
        step: Self::ViewMut<'_>,
    ) {
        let (mut p, mut g, mut st) = (host::read_mut(self, &params), host::read_mut(self, &grads), host::read_mut(self, &step));
        let mut s: Vec<Vec<f32>> = state.iter().map(|b| host::read(self, Self::view(b, 0..Self::len(b)))).collect();
        cpu::optimizer::update(u, tensors, &mut p, &mut g, &mut s, &mut st);
        host::write(self, &p, params);
        host::write(self, &g, grads);
        host::write(self, &st, step);
        for (b, h) in state.iter_mut().zip(&s) {
            let n = Self::len(b);
            host::write(self, h, Self::view_mut(b, 0..n));
        }
    }

    /// Projects a weight of `rows` rows (its first axis) in place (see [`Constraint`]).
    fn constrain(&self, c: &Constraint, rows: usize, w: Self::ViewMut<'_>) {
        let mut wh = host::read_mut(self, &w);
        cpu::penalties::constrain(c, rows, &mut wh);
        host::write(self, &wh, w);
    }
}

/// A device that runs every keras-rs kernel: the core and all the op families. Implemented for
/// every type that implements them.
pub trait Backend: Device + DenseOps + NormOps + WindowOps + SequenceOps + LayoutOps + RandomOps + ObjectiveOps + OptimizerOps {}

impl<D> Backend for D where D: Device + DenseOps + NormOps + WindowOps + SequenceOps + LayoutOps + RandomOps + ObjectiveOps + OptimizerOps {}
