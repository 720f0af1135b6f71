//! Backends: where buffers live and kernels run.
//!
//! A [`Backend`] owns f32 buffers and runs the kernels that layers, losses, metrics and optimizers
//! are made of. Layers are written once against this trait; [`Cpu`] implements it with SIMD
//! kernels and a thread pool. Views ([`Backend::View`], [`Backend::ViewMut`]) are ranges of a
//! buffer; on the CPU they are plain slices.

pub mod cpu;

pub use cpu::Cpu;

use crate::Result;
use crate::activations::Activation;
use crate::constraints::Constraint;
use crate::losses::LossConfig;
use crate::metrics::MetricKind;
use crate::optimizers::Update;
use crate::regularizers::Regularizer;
use std::fmt;
use std::ops::Range;

/// Operand layout of a matrix product: whether an operand is read transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// As stored (row-major).
    No,
    /// Transposed.
    Yes,
}

/// The geometry of a 2-D sliding window over NHWC samples: a convolution's receptive field or a
/// pooling window. Window tap `(i, j)` of output pixel `(oy, ox)` reads input pixel
/// `(oy * sh + i * dh - pt, ox * sw + j * dw - pl)`; taps outside the input read padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Padding rows above the input.
    pub pt: usize,
    /// Padding columns left of the input.
    pub pl: usize,
}

impl Window2d {
    /// The input row (or column) that tap `k` of output `o` reads, if inside the input of size `n`.
    #[inline]
    pub fn tap(o: usize, k: usize, stride: usize, dilation: usize, pad: usize, n: usize) -> Option<usize> {
        (o * stride + k * dilation).checked_sub(pad).filter(|&i| i < n)
    }

    /// Floats per input sample.
    pub const fn in_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Values in one patch row of [`Backend::im2col`]: `kh * kw * c`.
    pub const fn patch_len(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output pixels per sample.
    pub const fn out_pixels(&self) -> usize {
        self.oh * self.ow
    }
}

/// How a pooling window reduces its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (padding never wins).
    Max,
    /// The mean over the taps inside the input (padding is not counted, as in Keras).
    Average,
}

/// The most axes a sample may have for [`Backend::permute`].
pub const MAX_RANK: usize = 8;

/// A permutation of the axes of a sample (`Permute`): output axis `i` is input axis `perm[i]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permutation {
    /// Number of axes.
    pub rank: usize,
    /// The input sample's shape (the first `rank` entries).
    pub shape: [usize; MAX_RANK],
    /// Which input axis each output axis is (the first `rank` entries).
    pub perm: [usize; MAX_RANK],
}

impl Permutation {
    /// Floats per sample.
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.rank {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    /// Whether a sample is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The permutation that undoes this one (over the output shape): the backward pass.
    pub const fn inverse(&self) -> Permutation {
        let mut inv = Permutation { rank: self.rank, shape: [0; MAX_RANK], perm: [0; MAX_RANK] };
        let mut i = 0;
        while i < self.rank {
            inv.shape[i] = self.shape[self.perm[i]];
            inv.perm[self.perm[i]] = i;
            i += 1;
        }
        inv
    }
}

/// A smaller NHWC image inside a larger one: `ZeroPadding2D` writes the small into the large with
/// zeros around it, `Cropping2D` reads the small out of the large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Border2d {
    /// Height of the small image.
    pub h: usize,
    /// Width of the small image.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Rows of the large image above the small one.
    pub top: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns left of it.
    pub left: usize,
    /// Columns right of it.
    pub right: usize,
}

impl Border2d {
    /// Floats per small sample.
    pub const fn small_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Floats per large sample.
    pub const fn large_len(&self) -> usize {
        (self.h + self.top + self.bottom) * (self.w + self.left + self.right) * self.c
    }
}

/// `UpSampling2D`'s geometry: NHWC samples of `h x w x c` scaled by `(sh, sw)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample2d {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Vertical factor.
    pub sh: usize,
    /// Horizontal factor.
    pub sw: usize,
    /// Bilinear interpolation (half-pixel centres, edges clamped, as `jax.image.resize`) instead
    /// of repeating the nearest pixel.
    pub bilinear: bool,
}

impl Upsample2d {
    /// Floats per input sample.
    pub const fn in_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Floats per output sample.
    pub const fn out_len(&self) -> usize {
        self.in_len() * self.sh * self.sw
    }
}

/// The cell of a recurrent layer, with Keras 3's gate layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// `SimpleRNN`: `h = act(x K + h R + b)`.
    Simple,
    /// `LSTM`, gate blocks `i, f, c, o`: `c = σ(f) c + σ(i) act(c̃)`, `h = σ(o) act(c)`.
    Lstm,
    /// `GRU` with `reset_after = true`, gate blocks `z, r, h`, bias `(2, 3u)` (input bias, then
    /// recurrent bias): `h̃ = act(x K_h + b_h + r (h R_h + b'_h))`, `h = z h + (1 - z) h̃`.
    Gru,
    /// `GRU` with `reset_after = false` (Keras 2's layout), bias `(3u,)`: the reset gate scales
    /// the state before the recurrent kernel, `h̃ = act(x K_h + b_h + (r h) R_h)`.
    GruResetBefore,
}

/// The geometry of a recurrent layer over samples of `timesteps x features`, for the step
/// kernels. Step `s` reads time `t = s` (or `timesteps - 1 - s` with `go_backwards`).
///
/// The kernels keep per step and sample `stored()` pre-activations and as many activations
/// (the step's `pre` and `post`, block-major: block `k` holds `batch x units` values): SimpleRNN `[a]`; LSTM `[i, f, c̃, o, c]` (the cell
/// state's activation in the last `post` block); GRU `[z, r, h̃, h R_h + b'_h]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnCell {
    /// The cell.
    pub kind: CellKind,
    /// Steps per sample.
    pub timesteps: usize,
    /// Units (the state's width).
    pub units: usize,
    /// The activation (`tanh` by default).
    pub activation: Activation,
    /// The gates' activation (`sigmoid` by default; unused by SimpleRNN).
    pub recurrent_activation: Activation,
    /// Whether the output holds every step's state (else the last one).
    pub return_sequences: bool,
    /// Whether the sequence is processed from its end.
    pub go_backwards: bool,
}

impl RnnCell {
    /// Gate blocks in the kernels: 1, 4 or 3.
    pub const fn gates(&self) -> usize {
        match self.kind {
            CellKind::Simple => 1,
            CellKind::Lstm => 4,
            CellKind::Gru | CellKind::GruResetBefore => 3,
        }
    }

    /// Floats per step and sample in `pre` (and in `post`).
    pub const fn stored(&self) -> usize {
        self.units
            * match self.kind {
                CellKind::Simple => 1,
                CellKind::Lstm => 5,
                CellKind::Gru | CellKind::GruResetBefore => 4,
            }
    }

    /// The input time step read at step `s`.
    pub const fn time(&self, s: usize) -> usize {
        if self.go_backwards { self.timesteps - 1 - s } else { s }
    }
}

/// How `Bidirectional` combines its forward and backward outputs (Keras's `merge_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// Forward then backward values, side by side (Keras's default).
    Concat,
    /// Their sum.
    Sum,
    /// Their product.
    Mul,
    /// Their mean.
    Ave,
}

/// How a merge layer of the functional API combines its inputs, elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOp {
    /// Their sum (`Add`).
    Add,
    /// The first minus the second (`Subtract`, two inputs).
    Subtract,
    /// Their product (`Multiply`).
    Multiply,
    /// Their mean (`Average`).
    Average,
    /// Their maximum (`Maximum`).
    Maximum,
    /// Their minimum (`Minimum`).
    Minimum,
}

/// A device that holds buffers and runs the keras-rs kernels.
///
/// Matrices are row-major; `rows x cols` arguments give their logical shape.
pub trait Backend: Clone + Send + Sync + fmt::Debug + 'static {
    /// A buffer of f32 on the device.
    type Buffer: Send + Sync + fmt::Debug;
    /// A read-only range of a buffer.
    type View<'a>: Copy;
    /// A writable range of a buffer.
    type ViewMut<'a>;

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
    /// Host memory as a view, when the device can read host memory in place (the CPU can); the
    /// training loop then skips the copy.
    fn host_view<'a>(&self, data: &'a [f32]) -> Option<Self::View<'a>>;
    /// Copies host data into a view of the same length.
    fn upload(&self, src: &[f32], dst: Self::ViewMut<'_>) -> Result<()>;
    /// Copies rows `rows` of the host matrix `src` (rows of `row_len` floats) into `dst`, in order.
    fn gather_rows(&self, src: &[f32], row_len: usize, rows: &[usize], dst: Self::ViewMut<'_>) -> Result<()>;
    /// Copies a view into host memory of the same length.
    fn download(&self, src: Self::View<'_>, dst: &mut [f32]) -> Result<()>;
    /// Copies one view into another of the same length.
    fn copy(&self, src: Self::View<'_>, dst: Self::ViewMut<'_>);
    /// Sets every element to `value`.
    fn fill(&self, dst: Self::ViewMut<'_>, value: f32);

    /// `C (+)= op(A) · op(B)`, `C` is `m x n`, the inner dimension `k`; `op` transposes per `ta`/`tb`
    /// (`A` is stored `m x k`, or `k x m` when transposed; likewise `B`).
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: Self::View<'_>,
        ta: Transpose,
        b: Self::View<'_>,
        tb: Transpose,
        c: Self::ViewMut<'_>,
        accumulate: bool,
    );

    /// A dense layer's forward pass: `y = act(x · w + bias)` for `x` of `rows x k` and `w` of
    /// `k x n` (row-major); when `pre` is given it receives `x · w + bias`. Backends fuse the bias
    /// and activation into the product where they can.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &self,
        rows: usize,
        k: usize,
        n: usize,
        x: Self::View<'_>,
        w: Self::View<'_>,
        bias: Option<Self::View<'_>>,
        act: Activation,
        y: Self::ViewMut<'_>,
        pre: Option<Self::ViewMut<'_>>,
    );

    /// In place on a `rows x cols` matrix: `y = act(y + bias)`; when `pre` is given it receives
    /// `y + bias` (the activation's input, for the backward pass).
    #[allow(clippy::too_many_arguments)]
    fn bias_act(
        &self,
        y: Self::ViewMut<'_>,
        bias: Option<Self::View<'_>>,
        pre: Option<Self::ViewMut<'_>>,
        rows: usize,
        cols: usize,
        act: Activation,
    );

    /// In place: `g = g * act'(x)` given the activation's output `y` (and input `pre` where the
    /// activation needs it); when `dbias` is given it receives the column sums of the result.
    #[allow(clippy::too_many_arguments)]
    fn act_backward(
        &self,
        g: Self::ViewMut<'_>,
        y: Self::View<'_>,
        pre: Option<Self::View<'_>>,
        rows: usize,
        cols: usize,
        act: Activation,
        dbias: Option<Self::ViewMut<'_>>,
    );

    /// Per column of the `rows x cols` matrix `x`: the mean and the biased variance (two passes,
    /// as `jnp.var`).
    fn moments(&self, x: Self::View<'_>, rows: usize, cols: usize, mean: Self::ViewMut<'_>, var: Self::ViewMut<'_>);

    /// `moving = moving * momentum + value * (1 - momentum)`, elementwise.
    fn moving_average(&self, moving: Self::ViewMut<'_>, value: Self::View<'_>, momentum: f32);

    /// Batch normalization of a `rows x cols` matrix, as JAX computes it: `inv = 1 / sqrt(var +
    /// epsilon)`, then `y = x * (inv * gamma) + (beta - mean * inv * gamma)`. `var` is
    /// overwritten with `inv` (before `gamma`), which the backward pass reads.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm(
        &self,
        x: Self::View<'_>,
        rows: usize,
        cols: usize,
        mean: Self::View<'_>,
        var: Self::ViewMut<'_>,
        epsilon: f32,
        gamma: Option<Self::View<'_>>,
        beta: Option<Self::View<'_>>,
        y: Self::ViewMut<'_>,
    );

    /// The backward pass of [`Backend::batch_norm`] in training (statistics from the batch):
    /// `dgamma = Σ dy x̂`, `dbeta = Σ dy`, `dx = inv / n (n g - Σ g - x̂ Σ g x̂)` with `g = dy gamma`
    /// and `x̂ = (x - mean) inv`, sums over rows.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        &self,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        rows: usize,
        cols: usize,
        mean: Self::View<'_>,
        inv: Self::View<'_>,
        gamma: Option<Self::View<'_>>,
        dgamma: Option<Self::ViewMut<'_>>,
        dbeta: Option<Self::ViewMut<'_>>,
        dx: Option<Self::ViewMut<'_>>,
    );

    /// Layer normalization of each row of a `rows x cols` matrix, in JAX's order (see
    /// [`Backend::batch_norm`]); `stats` receives each row's mean and `1 / sqrt(var + epsilon)`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm(
        &self,
        x: Self::View<'_>,
        rows: usize,
        cols: usize,
        gamma: Option<Self::View<'_>>,
        beta: Option<Self::View<'_>>,
        epsilon: f32,
        y: Self::ViewMut<'_>,
        stats: Self::ViewMut<'_>,
    );

    /// The backward pass of [`Backend::layer_norm`]: `dgamma = Σ_rows dy x̂`, `dbeta = Σ_rows dy`,
    /// and per row `dx = inv / n (n g - Σ g - x̂ Σ g x̂)` with `g = dy gamma`, `n = cols`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        &self,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        rows: usize,
        cols: usize,
        stats: Self::View<'_>,
        gamma: Option<Self::View<'_>>,
        dgamma: Option<Self::ViewMut<'_>>,
        dbeta: Option<Self::ViewMut<'_>>,
        dx: Option<Self::ViewMut<'_>>,
    );

    /// Unfolds `batch` NHWC samples into patch rows: `cols` gets `batch * oh * ow` rows of
    /// `kh * kw * c` values in kernel order `(i, j, channel)`, zero where a tap reads padding.
    fn im2col(&self, g: &Window2d, batch: usize, x: Self::View<'_>, cols: Self::ViewMut<'_>);

    /// The adjoint of [`Backend::im2col`]: `dx` (overwritten) gets, for every input value, the
    /// sum of the patch entries that copied it.
    fn col2im(&self, g: &Window2d, batch: usize, cols: Self::View<'_>, dx: Self::ViewMut<'_>);

    /// A depthwise convolution over patch rows (as [`Backend::im2col`] lays them out): for each of
    /// `rows` rows of `taps * c` values, `y[r, ch * dm + m] = Σ_t cols[r, t * c + ch] ·
    /// kernel[t, ch * dm + m]`; `kernel` is `(taps, c, dm)` row-major (Keras's `(kh, kw, c, dm)`)
    /// and `y` (overwritten) has `rows` rows of `c * dm`.
    #[allow(clippy::too_many_arguments)]
    fn depthwise(&self, rows: usize, taps: usize, c: usize, dm: usize, cols: Self::View<'_>, kernel: Self::View<'_>, y: Self::ViewMut<'_>);

    /// The kernel gradient of [`Backend::depthwise`]: `dkernel[t, ch * dm + m]` (overwritten)
    /// `= Σ_r cols[r, t * c + ch] · dy[r, ch * dm + m]`.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_kernel_grad(
        &self,
        rows: usize,
        taps: usize,
        c: usize,
        dm: usize,
        cols: Self::View<'_>,
        dy: Self::View<'_>,
        dkernel: Self::ViewMut<'_>,
    );

    /// The patch gradient of [`Backend::depthwise`]: `dcols[r, t * c + ch]` (overwritten)
    /// `= Σ_m dy[r, ch * dm + m] · kernel[t, ch * dm + m]`.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_input_grad(
        &self,
        rows: usize,
        taps: usize,
        c: usize,
        dm: usize,
        kernel: Self::View<'_>,
        dy: Self::View<'_>,
        dcols: Self::ViewMut<'_>,
    );

    /// Pools `batch` NHWC samples `x` over the windows of `g` (per channel) into `y`.
    fn pool2d(&self, g: &Window2d, kind: PoolKind, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>);

    /// The backward pass of [`Backend::pool2d`]: `dx` (overwritten) from the output gradient `dy`;
    /// a max window sends its gradient to its first input equal to the output.
    #[allow(clippy::too_many_arguments)]
    fn pool2d_backward(
        &self,
        g: &Window2d,
        kind: PoolKind,
        batch: usize,
        x: Self::View<'_>,
        y: Self::View<'_>,
        dy: Self::View<'_>,
        dx: Self::ViewMut<'_>,
    );

    /// Embedding lookup: row `i` of `y` (rows of `dim`) is row `ids[i]` of `table`; the ids are
    /// integers (as f32) already checked to lie within the table.
    fn embedding(&self, ids: Self::View<'_>, dim: usize, table: Self::View<'_>, y: Self::ViewMut<'_>);

    /// The backward pass of [`Backend::embedding`]: `dtable` (overwritten) gets, per row, the
    /// sum of the rows of `dy` that looked it up, added in order.
    fn embedding_backward(&self, ids: Self::View<'_>, dim: usize, dy: Self::View<'_>, dtable: Self::ViewMut<'_>);

    /// Step `s` of a recurrent layer over `batch` samples. Reads the input projection of time
    /// `cell.time(s)` (rows `n * timesteps + t` of `xw`, `batch * timesteps x gates * units`,
    /// input bias included), adds `hu` (`h R` of the previous state, `batch x gates * units`;
    /// `None` at the first step, where the state is zero; for [`CellKind::GruResetBefore`] `h R`
    /// then `(r h) R`, `2 x batch x gates * units`) and the GRU's recurrent bias `rbias`,
    /// and writes the step's pre-activations and activations into `pre` and `post` (`batch x
    /// cell.stored()`), the new state into `h` (`batch x units`) and the layer's output `y`
    /// (`batch x timesteps x units` with `return_sequences`, else `batch x units`, written at the
    /// last step). `prev` is the previous step's state and `pre` (for the GRU's state and the
    /// LSTM's cell state).
    #[allow(clippy::too_many_arguments)]
    fn rnn_step(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        xw: Self::View<'_>,
        hu: Option<Self::View<'_>>,
        rbias: Option<Self::View<'_>>,
        prev: Option<(Self::View<'_>, Self::View<'_>)>,
        pre: Self::ViewMut<'_>,
        post: Self::ViewMut<'_>,
        h: Self::ViewMut<'_>,
        y: Self::ViewMut<'_>,
    );

    /// The reset gate's product for [`CellKind::GruResetBefore`] at step `s`: `rh = r h` with
    /// `r = σ(x K_r + b_r + h R_r)`, from the input projection `xw`, `hu = h R` and the previous
    /// state `h` (each `batch` rows), the input of the step's second recurrent product.
    #[allow(clippy::too_many_arguments)]
    fn rnn_reset_state(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        xw: Self::View<'_>,
        hu: Self::View<'_>,
        h: Self::View<'_>,
        rh: Self::ViewMut<'_>,
    );

    /// The second half of [`Backend::rnn_step_backward`] for [`CellKind::GruResetBefore`]: from
    /// `drh`, the gradient of `r h` (`None` at the first step), the reset gate's gradient into its
    /// blocks of `dxw` and `dhu` (the first of the two `batch x gates * units` matrices), `r drh`
    /// added to `dh`, and the input projection's row sums into `dbias`.
    #[allow(clippy::too_many_arguments)]
    fn rnn_reset_state_backward(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        drh: Option<Self::View<'_>>,
        pre: Self::View<'_>,
        post: Self::View<'_>,
        h: Option<Self::View<'_>>,
        dh: Self::ViewMut<'_>,
        dxw: Self::ViewMut<'_>,
        dhu: Self::ViewMut<'_>,
        dbias: Option<Self::ViewMut<'_>>,
    );

    /// The backward pass of step `s` of [`Backend::rnn_step`]. `dh` holds the gradient of the
    /// step's state from later steps; the kernel adds the output gradient `dy` of step `s`,
    /// and leaves in `dh` the part of the previous state's gradient that does not pass through
    /// the recurrent kernel (`z dh` for the GRU, zero otherwise); likewise `dc` for the LSTM's cell
    /// state. It writes the gradient of the input projection into rows `n * timesteps + t` of
    /// `dxw`, that of `h R` (plus recurrent bias) into `dhu`, and adds their column sums into
    /// `dbias` and `drbias` when given; `tmp` (`batch x gates * units`) is its working space. For [`CellKind::GruResetBefore`] `dhu` holds the
    /// gradients of `h R` and of `(r h) R`, and the reset gate's part is left to
    /// [`Backend::rnn_reset_state_backward`] (which also sums `dbias`).
    #[allow(clippy::too_many_arguments)]
    fn rnn_step_backward(
        &self,
        cell: &RnnCell,
        s: usize,
        batch: usize,
        dy: Self::View<'_>,
        pre: Self::View<'_>,
        post: Self::View<'_>,
        prev: Option<(Self::View<'_>, Self::View<'_>)>,
        dh: Self::ViewMut<'_>,
        dc: Self::ViewMut<'_>,
        dxw: Self::ViewMut<'_>,
        dhu: Self::ViewMut<'_>,
        tmp: Self::ViewMut<'_>,
        dbias: Option<Self::ViewMut<'_>>,
        drbias: Option<Self::ViewMut<'_>>,
    );

    /// `Bidirectional`'s merge of `fwd` and `bwd`, each `batch x steps x units` (`steps` is 1
    /// without `return_sequences`). The backward output is read reversed in time (its step `s`
    /// saw input step `steps - 1 - s`), so `y`'s step `t` combines both directions at input step
    /// `t`: `2 * units` values side by side for [`MergeMode::Concat`], else `units`.
    #[allow(clippy::too_many_arguments)]
    fn merge_directions(
        &self,
        mode: MergeMode,
        batch: usize,
        steps: usize,
        units: usize,
        fwd: Self::View<'_>,
        bwd: Self::View<'_>,
        y: Self::ViewMut<'_>,
    );

    /// The backward pass of [`Backend::merge_directions`]: `dfwd` and `dbwd` (overwritten) from
    /// `dy`.
    #[allow(clippy::too_many_arguments)]
    fn merge_directions_backward(
        &self,
        mode: MergeMode,
        batch: usize,
        steps: usize,
        units: usize,
        dy: Self::View<'_>,
        fwd: Self::View<'_>,
        bwd: Self::View<'_>,
        dfwd: Self::ViewMut<'_>,
        dbwd: Self::ViewMut<'_>,
    );

    /// A merge layer's forward pass: `y = op(xs[0], xs[1], ..)` elementwise, all of one length.
    fn merge(&self, op: MergeOp, xs: &[Self::View<'_>], y: Self::ViewMut<'_>);

    /// The backward pass of [`Backend::merge`] for input `i`: `dx` (overwritten) from `dy`. For
    /// `Maximum` and `Minimum` the gradient goes to the inputs equal to `y`, split evenly
    /// between ties.
    #[allow(clippy::too_many_arguments)]
    fn merge_backward(&self, op: MergeOp, i: usize, xs: &[Self::View<'_>], y: Self::View<'_>, dy: Self::View<'_>, dx: Self::ViewMut<'_>);

    /// A strided block copy over `rows` rows: `dst[r * dst_width + dst_off + c] = src[r *
    /// src_width + src_off + c]` for `c < width` (`Concatenate` and its backward; splitting a
    /// batch into a model's inputs).
    #[allow(clippy::too_many_arguments)]
    fn copy_cols(
        &self,
        rows: usize,
        width: usize,
        src: Self::View<'_>,
        src_width: usize,
        src_off: usize,
        dst: Self::ViewMut<'_>,
        dst_width: usize,
        dst_off: usize,
    );

    /// In place: `dst += src`, elementwise.
    fn add(&self, src: Self::View<'_>, dst: Self::ViewMut<'_>);

    /// Inverted dropout: `mask` gets 1 where an element is kept (probability `1 - rate`), 0
    /// elsewhere, from a counter-based generator keyed by `seed` and `stream`; `y = mask ? x / (1 - rate) : 0`.
    fn dropout(&self, x: Self::View<'_>, y: Self::ViewMut<'_>, mask: Self::ViewMut<'_>, rate: f32, seed: u64, stream: u64);

    /// The backward pass of [`Backend::dropout`]: `dx = mask ? g / (1 - rate) : 0`.
    fn dropout_backward(&self, g: Self::View<'_>, mask: Self::View<'_>, dx: Self::ViewMut<'_>, rate: f32);

    /// Zeroes each of the `channels` channels of each of `rows` samples (of `positions x
    /// channels` values) with probability `rate`, the same counter-based draw as
    /// [`Backend::dropout`] over the `rows * channels` (sample, channel) pairs: `mask` (`rows *
    /// channels`) gets 1 for a kept channel, `y = mask ? x / (1 - rate) : 0` (`SpatialDropout2D`).
    #[allow(clippy::too_many_arguments)]
    fn spatial_dropout(
        &self,
        x: Self::View<'_>,
        y: Self::ViewMut<'_>,
        mask: Self::ViewMut<'_>,
        rows: usize,
        channels: usize,
        rate: f32,
        seed: u64,
        stream: u64,
    );

    /// The backward pass of [`Backend::spatial_dropout`]: `dx = mask ? g / (1 - rate) : 0`, the
    /// mask of each (sample, channel) over its positions.
    fn spatial_dropout_backward(
        &self,
        g: Self::View<'_>,
        mask: Self::View<'_>,
        dx: Self::ViewMut<'_>,
        rows: usize,
        channels: usize,
        rate: f32,
    );

    /// Gaussian noise from a counter-based generator keyed by `seed` and `stream`: with `noise`,
    /// `noise = 1 + stddev * n` and `y = x * noise` (`GaussianDropout`), else `y = x + stddev * n`
    /// (`GaussianNoise`), `n` standard normal and drawn afresh for every element.
    fn gaussian_noise(
        &self,
        x: Self::View<'_>,
        y: Self::ViewMut<'_>,
        noise: Option<Self::ViewMut<'_>>,
        stddev: f32,
        seed: u64,
        stream: u64,
    );

    /// Elementwise `out = a * b`.
    fn multiply(&self, a: Self::View<'_>, b: Self::View<'_>, out: Self::ViewMut<'_>);

    /// Permutes the axes of each of `batch` samples `x` into `y`.
    fn permute(&self, p: &Permutation, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>);

    /// `y[b, t, :] = x[b, :]` for `t < times`: each sample's row of `width` repeated (`RepeatVector`).
    fn repeat(&self, batch: usize, times: usize, width: usize, x: Self::View<'_>, y: Self::ViewMut<'_>);

    /// The backward pass of [`Backend::repeat`]: `dx[b, :] = Σ_t dy[b, t, :]`.
    fn repeat_backward(&self, batch: usize, times: usize, width: usize, dy: Self::View<'_>, dx: Self::ViewMut<'_>);

    /// Each of `batch` small samples into the middle of a large one, zeros around it.
    fn pad2d(&self, g: &Border2d, batch: usize, small: Self::View<'_>, large: Self::ViewMut<'_>);

    /// The middle of each of `batch` large samples into a small one.
    fn crop2d(&self, g: &Border2d, batch: usize, large: Self::View<'_>, small: Self::ViewMut<'_>);

    /// Upsamples `batch` NHWC samples `x` into `y` (see [`Upsample2d`]).
    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: Self::View<'_>, y: Self::ViewMut<'_>);

    /// The backward pass of [`Backend::upsample2d`]: `dx` (overwritten) gets each input's share of
    /// the output gradient `dy`.
    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: Self::View<'_>, dx: Self::ViewMut<'_>);

    /// The loss of a batch of `rows` samples whose outputs have `cols` values each; `target` has
    /// `cols` values per sample (one class index for sparse losses). With `weights` (one per
    /// sample, `rows` a multiple of their count for outputs with more than one loss row per
    /// sample) the batch loss is Keras's `sum(w_i * loss_i) / rows`, else the mean. Adds the batch
    /// loss times `rows` to `stats[0]` and `rows` to `stats[1]` (Keras's running mean), and writes
    /// the gradient of the batch loss with respect to `pred` into `grad`.
    #[allow(clippy::too_many_arguments)]
    fn loss(
        &self,
        loss: LossConfig,
        pred: Self::View<'_>,
        target: Self::View<'_>,
        weights: Option<Self::View<'_>>,
        grad: Option<Self::ViewMut<'_>>,
        rows: usize,
        cols: usize,
        stats: Self::ViewMut<'_>,
    );

    /// Adds a batch of `rows` samples to a metric's accumulators (`kind.stats_len(cols)` of
    /// them; see [`MetricKind::accumulate`] for what each holds).
    fn metric(&self, kind: MetricKind, pred: Self::View<'_>, target: Self::View<'_>, rows: usize, cols: usize, stats: Self::ViewMut<'_>);

    /// With `stats`, adds `scale` times the penalty of `w` to `stats[0]`; with `g`, adds the
    /// penalty's gradient to `g` (see [`Regularizer`]).
    fn regularize(&self, reg: Regularizer, w: Self::View<'_>, g: Option<Self::ViewMut<'_>>, scale: f32, stats: Option<Self::ViewMut<'_>>);

    /// Projects the weight `w` of `shape` in place (see [`Constraint`]).
    fn constrain(&self, constraint: Constraint, w: Self::ViewMut<'_>, shape: &[usize]);

    /// One optimizer step over a whole parameter arena: weight decay and value clipping as
    /// `update` says, then its rule. `state` holds the rule's buffers, each as long as `params`
    /// (see [`UpdateRule`](crate::optimizers::UpdateRule) for which, in which order).
    fn update(&self, update: &Update, params: Self::ViewMut<'_>, grads: Self::View<'_>, state: &mut [Self::Buffer]);

    /// The sum of the squares of a view (for gradient norms).
    fn sum_squares(&self, v: Self::View<'_>) -> Result<f32>;

    /// In place: `v *= factor`.
    fn scale(&self, v: Self::ViewMut<'_>, factor: f32);
}
