//! The backend traits: the [`Device`] core, the op families with their default kernels, and
//! [`Backend`], all of them together (see the `backend` module's notes).

use super::cpu::{kernels, losses, merge, metrics, noise, optimizer, penalties, recurrent, shuffle, window};
use super::ops::*;
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
    /// A writable view as host memory, when the device's memory is the host's (the CPU): a
    /// data-parallel step all-reduces its gradients there instead of through a copy.
    fn host_slice_mut<'a>(&self, _v: Self::ViewMut<'a>) -> Option<&'a mut [f32]> {
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

    /// Host round trips so far: uploads, downloads, allocations, frees and waits. Work issued
    /// between two readings that made none is device work alone, which
    /// [`Device::begin_capture`] can record. Devices that do not record count nothing.
    fn round_trips(&self) -> u64 {
        0
    }
    /// Whether [`Device::begin_capture`] records (false by default: the CPU runs work as it is
    /// issued).
    fn records(&self) -> bool {
        false
    }
    /// Starts recording the device work issued from now on instead of running it (a CUDA
    /// graph); `Ok(false)` where the device does not record (the CPU runs work as it is issued)
    /// or recording is turned off. Until [`Device::end_capture`], round trips are refused.
    fn begin_capture(&self) -> Result<bool> {
        Ok(false)
    }
    /// Ends a recording. `Ok(None)` when it was broken by work that cannot be recorded (an
    /// upload, download, allocation, free or wait, or a kernel's failure): then none of the
    /// recorded work has run and the caller issues it again, unrecorded.
    fn end_capture(&self) -> Result<Option<Recording>> {
        Ok(None)
    }
    /// Runs a recording again, with the arguments it was recorded with (the buffers' contents
    /// are read as they are now). `Ok(false)`, running nothing, when a buffer of this device
    /// has been freed since the recording (its addresses may no longer be valid): record again.
    fn replay(&self, recording: &Recording) -> Result<bool> {
        let _ = recording;
        Ok(false)
    }
}

/// Device work recorded by [`Device::begin_capture`] .. [`Device::end_capture`] (on the GPU an
/// instantiated CUDA graph), run again by [`Device::replay`] on the device that recorded it.
pub struct Recording(Box<dyn std::any::Any + Send + Sync>);

impl Recording {
    /// Wraps a device's recording.
    pub fn new<T: std::any::Any + Send + Sync>(recording: T) -> Recording {
        Recording(Box::new(recording))
    }

    /// The device's recording, when it is a `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Recording {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recording")
    }
}

/// Bias and activation kernels: a dense layer's epilogue and its backward pass, and the
/// activation layers with arguments (`ReLU`, `LeakyReLU`, `ELU`, `PReLU`).
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
        kernels::bias_act(a, &mut yh, bias.as_deref(), pre_h.as_deref_mut());
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
        kernels::act_backward(a, &mut gh, &yh, pre.as_deref(), db.as_deref_mut());
        host::write(self, &gh, g);
        host::write_opt(self, db, dbias);
    }

    /// Keras's `ReLU(max_value, negative_slope, threshold)` (and `LeakyReLU`) over `r.len`
    /// values (see [`Relu`]).
    fn relu(&self, r: &Relu, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], y| kernels::relu(r, x, y));
    }

    /// `dx = dy * relu'(x)`, with JAX's values at the kinks (see [`ReluForm`]).
    fn relu_backward(&self, r: &Relu, x: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&dy)], dx, |[x, dy], dx| kernels::relu_backward(r, x, dy, dx));
    }

    /// Keras's `ELU(alpha)` over `e.len` values: `x > 0 ? x : alpha * expm1(x)`.
    fn elu(&self, e: &Elu, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], y| kernels::elu(e, x, y));
    }

    /// `dx = dy * (x > 0 ? 1 : alpha * exp(x))`.
    fn elu_backward(&self, e: &Elu, x: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&dy)], dx, |[x, dy], dx| kernels::elu_backward(e, x, dy, dx));
    }

    /// Keras's `PReLU` over `p.rows` samples: `x > 0 ? x : alpha[j] * x` (see [`Prelu`]).
    fn prelu(&self, p: &Prelu, x: Self::View<'_>, alpha: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&alpha)], y, |[x, alpha], y| kernels::prelu(p, x, alpha, y));
    }

    /// PReLU's input gradient, `dx = dy * (x > 0 ? 1 : x < 0 ? alpha[j] : 0)`.
    fn prelu_backward(&self, p: &Prelu, x: Self::View<'_>, alpha: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&alpha), Self::shorten(&dy)], dx, |[x, alpha, dy], dx| {
            kernels::prelu_backward(p, x, alpha, dy, dx)
        });
    }

    /// PReLU's alpha gradient (overwritten): `dalpha[j]` is the sum of `dy * min(x, 0)` over the
    /// samples, then the positions `j` scales, in that order on every backend.
    fn prelu_alpha_grad(&self, p: &Prelu, x: Self::View<'_>, dy: Self::View<'_>, dalpha: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&dy)], dalpha, |[x, dy], da| kernels::prelu_alpha_grad(p, x, dy, da));
    }
}

/// Normalization kernels: batch and layer normalization, and the preprocessing layers'
/// standardization and rescaling.
pub trait NormOps: Device {
    /// Per column of the `rows x cols` matrix `x`: the mean and the biased variance (two passes,
    /// as `jnp.var`).
    fn moments(&self, n: &Norm, x: Self::View<'_>, mean: Self::ViewMut<'_>, var: Self::ViewMut<'_>) {
        let x = host::read(self, x);
        let (mut m, mut v) = (host::read_mut(self, &mean), host::read_mut(self, &var));
        kernels::moments(n, &x, &mut m, &mut v);
        host::write(self, &m, mean);
        host::write(self, &v, var);
    }

    /// `moving = moving * momentum + value * (1 - momentum)`, elementwise.
    fn moving_average(&self, momentum: f32, moving: Self::ViewMut<'_>, value: Self::View<'_>) {
        let mut m = host::read_mut(self, &moving);
        kernels::moving_average(momentum, &mut m, &host::read(self, value));
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
        affine: Affine<Self::View<'_>>,
        y: Self::ViewMut<'_>,
    ) {
        let (x, mean) = (host::read(self, x), host::read(self, mean));
        let (gamma, beta) = (affine.gamma.map(|v| host::read(self, v)), affine.beta.map(|v| host::read(self, v)));
        let (mut v, mut yh) = (host::read_mut(self, &var), host::read_mut(self, &y));
        kernels::batch_norm(n, &x, &mean, &mut v, Affine { gamma: gamma.as_deref(), beta: beta.as_deref() }, &mut yh);
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
        stats: BatchStats<Self::View<'_>>,
        gamma: Option<Self::View<'_>>,
        grads: NormGrads<Self::ViewMut<'_>>,
    ) {
        let (x, dy) = (host::read(self, x), host::read(self, dy));
        let (mean, inv) = (host::read(self, stats.mean), host::read(self, stats.inv));
        let gamma = gamma.map(|g| host::read(self, g));
        let mut g = host::Grads::read(self, &grads);
        kernels::batch_norm_backward(n, &x, &dy, BatchStats { mean: &mean, inv: &inv }, gamma.as_deref(), g.as_mut());
        g.write(self, grads);
    }

    /// Layer normalization of each row of a `rows x cols` matrix, in JAX's order (see
    /// [`NormOps::batch_norm`]); `stats` receives each row's mean and `1 / sqrt(var + epsilon)`.
    fn layer_norm(&self, n: &Norm, x: Self::View<'_>, affine: Affine<Self::View<'_>>, y: Self::ViewMut<'_>, stats: Self::ViewMut<'_>) {
        let x = host::read(self, x);
        let (gamma, beta) = (affine.gamma.map(|v| host::read(self, v)), affine.beta.map(|v| host::read(self, v)));
        let (mut yh, mut st) = (host::read_mut(self, &y), host::read_mut(self, &stats));
        kernels::layer_norm(n, &x, Affine { gamma: gamma.as_deref(), beta: beta.as_deref() }, &mut yh, &mut st);
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
        grads: NormGrads<Self::ViewMut<'_>>,
    ) {
        let (x, dy, st) = (host::read(self, x), host::read(self, dy), host::read(self, stats));
        let gamma = gamma.map(|g| host::read(self, g));
        let mut g = host::Grads::read(self, &grads);
        kernels::layer_norm_backward(n, &x, &dy, &st, gamma.as_deref(), g.as_mut());
        g.write(self, grads);
    }

    /// `Normalization`: `y = (x - mean) / max(sqrt(var), epsilon)` per feature, or `mean + x *
    /// max(sqrt(var), epsilon)` inverted (see [`Standardize`]).
    fn standardize(&self, s: &Standardize, x: Self::View<'_>, mean: Self::View<'_>, var: Self::View<'_>, y: Self::ViewMut<'_>) {
        let inputs = [Self::shorten(&x), Self::shorten(&mean), Self::shorten(&var)];
        host::run(self, &inputs, y, |[x, mean, var], y| kernels::standardize(s, x, mean, var, y));
    }

    /// The input gradient of [`NormOps::standardize`]: `dx = dy / max(sqrt(var), epsilon)` (times
    /// it, inverted).
    fn standardize_backward(&self, s: &Standardize, var: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&var), Self::shorten(&dy)], dx, |[var, dy], dx| kernels::standardize_backward(s, var, dy, dx));
    }

    /// `y = x * scale + offset` over `r.len` values (`Rescaling`; its input gradient is the same
    /// map of `dy` with offset 0).
    fn rescale(&self, r: &Rescale, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], y| kernels::rescale(r, x, y));
    }
}

/// Sliding-window kernels: convolution by im2col, depthwise convolution, pooling.
pub trait WindowOps: Device {
    /// Unfolds `batch` NHWC samples into patch rows: `cols` gets `batch * oh * ow` rows of
    /// `kh * kw * c` values in kernel order `(i, j, channel)`, zero where a tap reads padding.
    fn im2col(&self, g: &Window2d, batch: usize, x: Self::View<'_>, cols: Self::ViewMut<'_>) {
        host::run(self, &[x], cols, |[x], out| window::im2col(g, batch, x, out));
    }

    /// The adjoint of [`WindowOps::im2col`]: `dx` (overwritten) gets, for every input value, the
    /// sum of the patch entries that copied it.
    fn col2im(&self, g: &Window2d, batch: usize, cols: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[cols], dx, |[cols], out| window::col2im(g, batch, cols, out));
    }

    /// A depthwise convolution over patch rows (as [`WindowOps::im2col`] lays them out):
    /// `y[r, ch * dm + m] = Σ_t cols[r, t * c + ch] · kernel[t, ch * dm + m]`; `y` overwritten.
    fn depthwise(&self, d: &Depthwise, cols: Self::View<'_>, kernel: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&cols), Self::shorten(&kernel)], y, |[cols, kernel], out| window::depthwise(d, cols, kernel, out));
    }

    /// The depthwise convolution of `batch` NHWC samples `x` over the windows of `g`, as
    /// [`WindowOps::im2col`] into `cols` then [`WindowOps::depthwise`] compute it, into `y`. A
    /// backend may read `x` directly and leave `cols` (scratch of `batch * oh * ow * kh * kw * c`
    /// floats) as it was: the CPU does, with the same sums.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_conv(
        &self,
        g: &Window2d,
        d: &Depthwise,
        batch: usize,
        x: Self::View<'_>,
        kernel: Self::View<'_>,
        mut cols: Self::ViewMut<'_>,
        y: Self::ViewMut<'_>,
    ) {
        self.im2col(g, batch, x, Self::reborrow(&mut cols));
        self.depthwise(d, Self::freeze(&cols), kernel, y);
    }

    /// The kernel gradient of [`WindowOps::depthwise`]: `dkernel[t, ch * dm + m]` (overwritten)
    /// `= Σ_r cols[r, t * c + ch] · dy[r, ch * dm + m]`.
    fn depthwise_kernel_grad(&self, d: &Depthwise, cols: Self::View<'_>, dy: Self::View<'_>, dkernel: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&cols), Self::shorten(&dy)], dkernel, |[cols, dy], out| {
            window::depthwise_kernel_grad(d, cols, dy, out)
        });
    }

    /// The patch gradient of [`WindowOps::depthwise`]: `dcols[r, t * c + ch]` (overwritten)
    /// `= Σ_m dy[r, ch * dm + m] · kernel[t, ch * dm + m]`.
    fn depthwise_input_grad(&self, d: &Depthwise, kernel: Self::View<'_>, dy: Self::View<'_>, dcols: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&kernel), Self::shorten(&dy)], dcols, |[kernel, dy], out| {
            window::depthwise_input_grad(d, kernel, dy, out)
        });
    }

    /// Pools `batch` NHWC samples `x` over the windows of `p` (per channel) into `y`; a max
    /// window holding a NaN gives NaN, as Keras's.
    fn pool2d(&self, p: &Pool2d, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| window::pool2d(p, batch, x, out));
    }

    /// The backward pass of [`WindowOps::pool2d`]: `dx` (overwritten) from the output gradient
    /// `dy`; a max window sends its gradient to its first input equal to the output (its first
    /// NaN, when the output is NaN).
    fn pool2d_backward(&self, p: &Pool2d, batch: usize, x: Self::View<'_>, y: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&x), Self::shorten(&y), Self::shorten(&dy)], dx, |[x, y, dy], out| {
            window::pool2d_backward(p, batch, x, y, dy, out)
        });
    }
}

/// Embedding lookups and the step kernels of the recurrent layers.
pub trait SequenceOps: Device {
    /// Embedding lookup: row `i` of `y` (rows of `dim`) is row `ids[i]` of `table`; the ids are
    /// integers (as f32) already checked to lie within the table.
    fn embedding(&self, dim: usize, ids: Self::View<'_>, table: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&ids), Self::shorten(&table)], y, |[ids, table], out| recurrent::embedding(dim, ids, table, out));
    }

    /// The backward pass of [`SequenceOps::embedding`]: `dtable` (overwritten) gets, per row,
    /// the sum of the rows of `dy` that looked it up, added in order.
    fn embedding_backward(&self, dim: usize, ids: Self::View<'_>, dy: Self::View<'_>, dtable: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&ids), Self::shorten(&dy)], dtable, |[ids, dy], out| {
            recurrent::embedding_backward(dim, ids, dy, out)
        });
    }

    /// Step `s` of a recurrent layer (see [`RnnStepIo`] and [`RnnCell`]).
    fn rnn_step(&self, s: &RnnStep, io: RnnStepIo<Self::View<'_>, Self::ViewMut<'_>>) {
        host::rnn_step(self, s, io);
    }

    /// The reset gate's product for [`CellKind::GruResetBefore`] at step `s`: `rh = r h` with
    /// `r = σ(x K_r + b_r + h R_r)`, from the input projection `xw`, `hu = h R` and the previous
    /// state `h`, the input of the step's second recurrent product.
    fn rnn_reset_state(&self, s: &RnnStep, xw: Self::View<'_>, hu: Self::View<'_>, h: Self::View<'_>, rh: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&xw), Self::shorten(&hu), Self::shorten(&h)], rh, |[xw, hu, h], out| {
            recurrent::rnn_reset_state(s, xw, hu, h, out)
        });
    }

    /// The backward pass of step `s` of [`SequenceOps::rnn_step`] (see [`RnnStepGrads`]). For
    /// [`CellKind::GruResetBefore`] the reset gate's part is left to
    /// [`SequenceOps::rnn_reset_state_backward`] (which also sums `dbias`).
    fn rnn_step_backward(&self, s: &RnnStep, g: RnnStepGrads<Self::View<'_>, Self::ViewMut<'_>>) {
        host::rnn_step_backward(self, s, g);
    }

    /// The second half of [`SequenceOps::rnn_step_backward`] for [`CellKind::GruResetBefore`]
    /// (see [`RnnResetGrads`]).
    fn rnn_reset_state_backward(&self, s: &RnnStep, g: RnnResetGrads<Self::View<'_>, Self::ViewMut<'_>>) {
        host::rnn_reset_state_backward(self, s, g);
    }

    /// `Bidirectional`'s merge of `fwd` and `bwd`. The backward output is read reversed in time
    /// (its step `s` saw input step `steps - 1 - s`), so `y`'s step `t` combines both directions
    /// at input step `t`: `2 * units` values side by side for [`MergeMode::Concat`], else `units`.
    fn merge_directions(&self, d: &Directions, fwd: Self::View<'_>, bwd: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&fwd), Self::shorten(&bwd)], y, |[fwd, bwd], out| recurrent::merge_directions(d, fwd, bwd, out));
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
        recurrent::merge_directions_backward(d, &dy, &fwd, &bwd, &mut df, &mut db);
        host::write(self, &df, dfwd);
        host::write(self, &db, dbwd);
    }
}

/// Data movement: permutations, repeats, borders, resizing, merges and column blocks.
pub trait LayoutOps: Device {
    /// Permutes the axes of each of `batch` samples `x` into `y`.
    fn permute(&self, p: &Permutation, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| shuffle::permute(p, batch, x, out));
    }

    /// `y[b, t, :] = x[b, :]` for `t < times` (`RepeatVector`).
    fn repeat(&self, r: &Repeat, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| shuffle::repeat(r, x, out));
    }

    /// The backward pass of [`LayoutOps::repeat`]: `dx[b, :] = Σ_t dy[b, t, :]`.
    fn repeat_backward(&self, r: &Repeat, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[dy], dx, |[dy], out| shuffle::repeat_backward(r, dy, out));
    }

    /// Each of `batch` small samples into the middle of a large one, zeros around it.
    fn pad2d(&self, g: &Border2d, batch: usize, small: Self::View<'_>, large: Self::ViewMut<'_>) {
        host::run(self, &[small], large, |[small], out| shuffle::pad2d(g, batch, small, out));
    }

    /// The middle of each of `batch` large samples into a small one.
    fn crop2d(&self, g: &Border2d, batch: usize, large: Self::View<'_>, small: Self::ViewMut<'_>) {
        host::run(self, &[large], small, |[large], out| shuffle::crop2d(g, batch, large, out));
    }

    /// Upsamples `batch` NHWC samples `x` into `y` (see [`Upsample2d`]).
    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>) {
        host::run(self, &[x], y, |[x], out| shuffle::upsample2d(g, batch, x, out));
    }

    /// The backward pass of [`LayoutOps::upsample2d`]: `dx` (overwritten) gets each input's share
    /// of the output gradient `dy`.
    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[dy], dx, |[dy], out| shuffle::upsample2d_backward(g, batch, dy, out));
    }

    /// The strided block copy of [`CopyCols`].
    fn copy_cols(&self, c: &CopyCols, src: Self::View<'_>, dst: Self::ViewMut<'_>) {
        host::run(self, &[src], dst, |[src], out| merge::copy_cols(c, src, out));
    }

    /// A merge layer's forward pass: `y = op(xs[0], xs[1], ..)` elementwise, all of one length.
    fn merge(&self, op: MergeOp, xs: &[Self::View<'_>], y: Self::ViewMut<'_>) {
        let xs: Vec<Vec<f32>> = xs.iter().map(|&x| host::read(self, x)).collect();
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let mut out = host::read_mut(self, &y);
        merge::merge(op, &refs, &mut out);
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
        merge::merge_backward(op, i, &refs, &y, &dy, &mut out);
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
        noise::dropout(d, stream, &x, &mut yh, &mut m);
        host::write(self, &yh, y);
        host::write(self, &m, mask);
    }

    /// The backward pass of [`RandomOps::dropout`]: `dx = mask ? g / (1 - rate) : 0`.
    fn dropout_backward(&self, d: &Draw, g: Self::View<'_>, mask: Self::View<'_>, dx: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&g), Self::shorten(&mask)], dx, |[g, mask], out| noise::dropout_backward(d, g, mask, out));
    }

    /// Gaussian noise of standard deviation `d.rate`, drawn afresh for every element as
    /// [`RandomOps::dropout`] draws: with `noise`, `noise = 1 + rate * n` and `y = x * noise`
    /// (`GaussianDropout`), else `y = x + rate * n` (`GaussianNoise`).
    fn gaussian_noise(&self, d: &Draw, stream: Self::View<'_>, x: Self::View<'_>, y: Self::ViewMut<'_>, noise: Option<Self::ViewMut<'_>>) {
        let (stream, x) = (RandomStream::decode(&host::read(self, stream)), host::read(self, x));
        let mut yh = host::read_mut(self, &y);
        let mut n = noise.as_ref().map(|n| host::read_mut(self, n));
        noise::gaussian_noise(d, stream, &x, &mut yh, n.as_deref_mut());
        host::write(self, &yh, y);
        host::write_opt(self, n, noise);
    }

    /// Advances a [`RandomStream`] buffer by one training step, so the next step draws anew.
    fn advance(&self, stream: Self::ViewMut<'_>) {
        let mut s = host::read_mut(self, &stream);
        noise::advance(&mut s);
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
        losses::loss(l, &pred, &target, weights.as_deref(), g.as_deref_mut(), &mut st);
        host::write_opt(self, g, grad);
        host::write(self, &st, stats);
    }

    /// Adds a batch to a metric's accumulators (`m.kind.stats_len(cols)` of them).
    fn metric(&self, m: &MetricBatch, pred: Self::View<'_>, target: Self::View<'_>, stats: Self::ViewMut<'_>) {
        host::run(self, &[Self::shorten(&pred), Self::shorten(&target)], stats, |[pred, target], out| {
            metrics::accumulate(m, pred, target, out)
        });
    }

    /// With `stats`, adds `scale` times the penalty of `w` to `stats[0]`; with `g`, adds the
    /// penalty's gradient `l1 sign(w) + 2 l2 w` to `g` (the sign of 0 is +1, as in Keras's JAX
    /// backend).
    fn regularize(&self, r: &Regularizer, w: Self::View<'_>, g: Option<Self::ViewMut<'_>>, scale: f32, stats: Option<Self::ViewMut<'_>>) {
        let w = host::read(self, w);
        let mut gh = g.as_ref().map(|g| host::read_mut(self, g));
        let mut st = stats.as_ref().map(|s| host::read_mut(self, s));
        penalties::regularize(r, &w, gh.as_deref_mut(), scale, st.as_deref_mut());
        host::write_opt(self, gh, g);
        host::write_opt(self, st, stats);
    }
}

/// The optimizer's step over the whole arena, and weight constraints.
pub trait OptimizerOps: Device {
    /// One optimizer step over a whole parameter arena (see [`Update`]): reads the step count
    /// and learning rate from the [`OptimizerStep`] buffer `step`, clips the gradients (by norm:
    /// scaled in place in `grads`, per weight tensor of `tensors` for [`Clip::Norm`]; by value:
    /// each element as the rule uses it, `grads` unchanged), decays the weights, applies the rule,
    /// and advances `step`. `state` holds the rule's buffers ([`UpdateRule::slots`]), each as long as
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
        optimizer::update(u, tensors, &mut p, &mut g, &mut s, &mut st);
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
        penalties::constrain(c, rows, &mut wh);
        host::write(self, &wh, w);
    }
}

/// A device that runs every keras-rs kernel: the core and all the op families. Implemented for
/// every type that implements them.
pub trait Backend: Device + DenseOps + NormOps + WindowOps + SequenceOps + LayoutOps + RandomOps + ObjectiveOps + OptimizerOps {}

impl<D> Backend for D where D: Device + DenseOps + NormOps + WindowOps + SequenceOps + LayoutOps + RandomOps + ObjectiveOps + OptimizerOps {}

/// The op families' default kernels: a kernel's tensors copied to the host, the CPU backend's
/// kernel run on the copies, the written tensors copied back. Slow, but any backend with a core
/// runs every layer through them. A failed transfer is recorded with [`Device::fail`] (the
/// kernel then computes on NaN), and surfaces at the next read, as a kernel error would.
mod host {
    use super::{Device, recurrent};
    use crate::backend::ops::{NormGrads, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo};

    /// A view's contents on the host.
    pub(super) fn read<D: Device>(dev: &D, v: D::View<'_>) -> Vec<f32> {
        let mut host = vec![f32::NAN; D::view_len(v)];
        if let Err(e) = dev.download(v, &mut host) {
            dev.fail(e);
        }
        host
    }

    /// A writable view's contents on the host (kernels that add to their output read it first).
    pub(super) fn read_mut<D: Device>(dev: &D, v: &D::ViewMut<'_>) -> Vec<f32> {
        read(dev, D::freeze(v))
    }

    /// Copies host data back into a view.
    pub(super) fn write<D: Device>(dev: &D, host: &[f32], v: D::ViewMut<'_>) {
        if let Err(e) = dev.upload(host, v) {
            dev.fail(e);
        }
    }

    /// [`write`] for an optional output.
    pub(super) fn write_opt<D: Device>(dev: &D, host: Option<Vec<f32>>, v: Option<D::ViewMut<'_>>) {
        if let (Some(h), Some(v)) = (host, v) {
            write(dev, &h, v);
        }
    }

    /// A kernel with `N` inputs and one output, on host copies.
    pub(super) fn run<D: Device, const N: usize>(
        dev: &D,
        inputs: &[D::View<'_>; N],
        out: D::ViewMut<'_>,
        f: impl FnOnce([&[f32]; N], &mut [f32]),
    ) {
        let hosts: [Vec<f32>; N] = std::array::from_fn(|i| read(dev, inputs[i]));
        let mut o = read_mut(dev, &out);
        f(std::array::from_fn(|i| hosts[i].as_slice()), &mut o);
        write(dev, &o, out);
    }

    /// Host copies of a normalization's gradients.
    pub(super) struct Grads {
        dgamma: Option<Vec<f32>>,
        dbeta: Option<Vec<f32>>,
        dx: Option<Vec<f32>>,
    }

    impl Grads {
        pub(super) fn read<D: Device>(dev: &D, g: &NormGrads<D::ViewMut<'_>>) -> Grads {
            let r = |v: &Option<D::ViewMut<'_>>| v.as_ref().map(|v| read_mut(dev, v));
            Grads { dgamma: r(&g.dgamma), dbeta: r(&g.dbeta), dx: r(&g.dx) }
        }

        pub(super) fn as_mut(&mut self) -> NormGrads<&mut [f32]> {
            NormGrads { dgamma: self.dgamma.as_deref_mut(), dbeta: self.dbeta.as_deref_mut(), dx: self.dx.as_deref_mut() }
        }

        pub(super) fn write<D: Device>(self, dev: &D, g: NormGrads<D::ViewMut<'_>>) {
            write_opt(dev, self.dgamma, g.dgamma);
            write_opt(dev, self.dbeta, g.dbeta);
            write_opt(dev, self.dx, g.dx);
        }
    }

    /// The default of `SequenceOps::rnn_step`.
    pub(super) fn rnn_step<D: Device>(dev: &D, s: &RnnStep, io: RnnStepIo<D::View<'_>, D::ViewMut<'_>>) {
        let xw = read(dev, io.xw);
        let (hu, rbias) = (io.hu.map(|v| read(dev, v)), io.rbias.map(|v| read(dev, v)));
        let prev = io.prev.map(|(h, p)| (read(dev, h), read(dev, p)));
        let (mut pre, mut post) = (read_mut(dev, &io.pre), read_mut(dev, &io.post));
        let (mut h, mut y) = (read_mut(dev, &io.h), read_mut(dev, &io.y));
        recurrent::rnn_step(
            s,
            RnnStepIo {
                xw: &xw,
                hu: hu.as_deref(),
                rbias: rbias.as_deref(),
                prev: prev.as_ref().map(|(h, p)| (h.as_slice(), p.as_slice())),
                pre: &mut pre,
                post: &mut post,
                h: &mut h,
                y: &mut y,
            },
        );
        write(dev, &pre, io.pre);
        write(dev, &post, io.post);
        write(dev, &h, io.h);
        write(dev, &y, io.y);
    }

    /// The default of `SequenceOps::rnn_step_backward`.
    pub(super) fn rnn_step_backward<D: Device>(dev: &D, s: &RnnStep, g: RnnStepGrads<D::View<'_>, D::ViewMut<'_>>) {
        let (dy, pre, post) = (read(dev, g.dy), read(dev, g.pre), read(dev, g.post));
        let prev = g.prev.map(|(h, p)| (read(dev, h), read(dev, p)));
        let (mut dh, mut dc) = (read_mut(dev, &g.dh), read_mut(dev, &g.dc));
        let (mut dxw, mut dhu, mut tmp) = (read_mut(dev, &g.dxw), read_mut(dev, &g.dhu), read_mut(dev, &g.tmp));
        let mut dbias = g.dbias.as_ref().map(|v| read_mut(dev, v));
        let mut drbias = g.drbias.as_ref().map(|v| read_mut(dev, v));
        recurrent::rnn_step_backward(
            s,
            RnnStepGrads {
                dy: &dy,
                pre: &pre,
                post: &post,
                prev: prev.as_ref().map(|(h, p)| (h.as_slice(), p.as_slice())),
                dh: &mut dh,
                dc: &mut dc,
                dxw: &mut dxw,
                dhu: &mut dhu,
                tmp: &mut tmp,
                dbias: dbias.as_deref_mut(),
                drbias: drbias.as_deref_mut(),
            },
        );
        write(dev, &dh, g.dh);
        write(dev, &dc, g.dc);
        write(dev, &dxw, g.dxw);
        write(dev, &dhu, g.dhu);
        write(dev, &tmp, g.tmp);
        write_opt(dev, dbias, g.dbias);
        write_opt(dev, drbias, g.drbias);
    }

    /// The default of `SequenceOps::rnn_reset_state_backward`.
    pub(super) fn rnn_reset_state_backward<D: Device>(dev: &D, s: &RnnStep, g: RnnResetGrads<D::View<'_>, D::ViewMut<'_>>) {
        let drh = g.drh.map(|v| read(dev, v));
        let (pre, post, h) = (read(dev, g.pre), read(dev, g.post), g.h.map(|v| read(dev, v)));
        let (mut dh, mut dxw, mut dhu) = (read_mut(dev, &g.dh), read_mut(dev, &g.dxw), read_mut(dev, &g.dhu));
        let mut dbias = g.dbias.as_ref().map(|v| read_mut(dev, v));
        recurrent::rnn_reset_state_backward(
            s,
            RnnResetGrads {
                drh: drh.as_deref(),
                pre: &pre,
                post: &post,
                h: h.as_deref(),
                dh: &mut dh,
                dxw: &mut dxw,
                dhu: &mut dhu,
                dbias: dbias.as_deref_mut(),
            },
        );
        write(dev, &dh, g.dh);
        write(dev, &dxw, g.dxw);
        write(dev, &dhu, g.dhu);
        write_opt(dev, dbias, g.dbias);
    }
}
