//! Op descriptors: every value a kernel receives besides its tensors, as plain data.
//!
//! This module is a leaf: it depends on nothing else in the crate, and everything else (the
//! backends, the layers, the user-facing modules `activations`, `losses`, `metrics`,
//! `regularizers`, `constraints` and `optimizers`) depends on it. Descriptors are `#[repr(C)]`
//! (enums `#[repr(u32)]`, or `#[repr(C, u32)]` where a variant carries data), so that a GPU
//! kernel can take one whole as an argument; sizes are `usize` (64 bits, as `size_t` is on every
//! device we target). The user-facing modules re-export them and add names, parsing and
//! validation; the math of each kernel lives with its backend (`backend::cpu` for the CPU).

/// Operand layout of a matrix product: whether an operand is read transposed.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// As stored (row-major).
    No,
    /// Transposed.
    Yes,
}

/// A matrix product `C (+)= op(A) · op(B)` of row-major matrices: `C` is `m x n`, the inner
/// dimension `k`; `A` is stored `m x k` (`k x m` when `ta` transposes it), `B` `k x n` (`n x k`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// How `A` is read.
    pub ta: Transpose,
    /// How `B` is read.
    pub tb: Transpose,
    /// Add to `C` instead of overwriting it.
    pub accumulate: bool,
}

impl Gemm {
    /// `C = A · B` with `A` `m x k` and `B` `k x n`, both as stored.
    pub const fn nn(m: usize, n: usize, k: usize) -> Gemm {
        Gemm { m, n, k, ta: Transpose::No, tb: Transpose::No, accumulate: false }
    }

    /// `C = A · Bᵀ` (`B` stored `n x k`): a product with a layer's kernel in the backward pass.
    pub const fn nt(m: usize, n: usize, k: usize) -> Gemm {
        Gemm { m, n, k, ta: Transpose::No, tb: Transpose::Yes, accumulate: false }
    }

    /// `C = Aᵀ · B` (`A` stored `k x m`): a kernel's gradient from inputs and output gradients.
    pub const fn tn(m: usize, n: usize, k: usize) -> Gemm {
        Gemm { m, n, k, ta: Transpose::Yes, tb: Transpose::No, accumulate: false }
    }

    /// The same product, added to `C`.
    pub const fn accumulate(self) -> Gemm {
        Gemm { accumulate: true, ..self }
    }
}

/// An activation function, as Keras 3 defines it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `x`.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `e^x / sum(e^x)` over the last axis.
    Softmax,
    /// `x` for `x > 0`, else `e^x - 1` (alpha 1).
    Elu,
    /// `scale * elu(x, alpha)` with Keras's self-normalizing constants.
    Selu,
    /// `log(1 + e^x)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x * sigmoid(x)`; Keras's `swish` and `silu`.
    Swish,
    /// `0.5 x (1 + erf(x / sqrt 2))` (exact form, Keras's default).
    Gelu,
    /// `x` for `x >= 0`, else `0.2 x` (the `leaky_relu` activation's slope).
    LeakyRelu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `e^x`.
    Exponential,
    /// `x * tanh(softplus(x))`.
    Mish,
}

impl Activation {
    /// Every activation with its Keras name (`swish` and `silu` both name [`Activation::Swish`]).
    pub const NAMES: &'static [(&'static str, Activation)] = &[
        ("linear", Activation::Linear),
        ("relu", Activation::Relu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("softmax", Activation::Softmax),
        ("elu", Activation::Elu),
        ("selu", Activation::Selu),
        ("softplus", Activation::Softplus),
        ("softsign", Activation::Softsign),
        ("swish", Activation::Swish),
        ("silu", Activation::Swish),
        ("gelu", Activation::Gelu),
        ("leaky_relu", Activation::LeakyRelu),
        ("relu6", Activation::Relu6),
        ("hard_sigmoid", Activation::HardSigmoid),
        ("exponential", Activation::Exponential),
        ("mish", Activation::Mish),
    ];

    /// The activation with this Keras name.
    pub fn from_name(name: &str) -> Option<Activation> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, a)| a)
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, a)| *a == self).map_or("linear", |(n, _)| n)
    }

    /// Whether the derivative needs the input `x` (it cannot be recovered from the output `y`).
    pub const fn needs_input(self) -> bool {
        matches!(self, Activation::Elu | Activation::Selu | Activation::Swish | Activation::Gelu | Activation::Mish)
    }
}

/// A dense layer's product with its bias and activation fused: `y = act(x · w + bias)` for `x`
/// of `rows x k` and `w` of `k x n`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Rows of `x` and `y`.
    pub rows: usize,
    /// The inner dimension (columns of `x`).
    pub k: usize,
    /// Columns of `w` and `y`.
    pub n: usize,
    /// The activation.
    pub act: Activation,
}

/// A bias and an activation over the rows of a `rows x cols` matrix (and their backward pass).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BiasAct {
    /// Rows.
    pub rows: usize,
    /// Columns (the bias's length; softmax normalizes each row of them).
    pub cols: usize,
    /// The activation.
    pub act: Activation,
}

/// Which of Keras 3's expressions an activation layer's ReLU follows ([`Relu::new`] picks it as
/// `keras.activations.relu` does); they agree in value but not in their gradient at the kinks.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReluForm {
    /// `relu(x)` or `where(x > threshold, x, 0)`, clipped to `max_value`, minus
    /// `negative_slope * relu(threshold - x)`: gradient 0 at `x == threshold`, 0.5 at
    /// `x == max_value` (JAX's `clip` splits a tie).
    Clip,
    /// `jax.nn.leaky_relu`, `where(x >= 0, x, negative_slope * x)`: gradient 1 at `x == 0`.
    Leaky,
    /// `jax.nn.relu6` (`max_value == 6`, no threshold): gradient 0 at 0 and at 6.
    Relu6,
}

/// Keras's `ReLU(max_value, negative_slope, threshold)` and `LeakyReLU(negative_slope)` over
/// `len` values: `y = min(x, max_value)` where `x > threshold`, else
/// `negative_slope * (x - threshold)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relu {
    /// Values.
    pub len: usize,
    /// The largest output (`f32::INFINITY` for none).
    pub max_value: f32,
    /// The slope below the threshold.
    pub negative_slope: f32,
    /// Where the linear piece starts.
    pub threshold: f32,
    /// Keras's expression for these arguments.
    pub form: ReluForm,
}

impl Relu {
    /// The op over `len` values, in the form `keras.activations.relu` computes for these
    /// arguments: `leaky_relu` with a slope and neither a maximum nor a threshold, `relu6` for a
    /// maximum of 6 without a threshold, the clipped expression otherwise.
    pub const fn new(len: usize, max_value: f32, negative_slope: f32, threshold: f32) -> Relu {
        let form = if negative_slope != 0.0 && max_value == f32::INFINITY && threshold == 0.0 {
            ReluForm::Leaky
        } else if threshold == 0.0 && max_value == 6.0 {
            ReluForm::Relu6
        } else {
            ReluForm::Clip
        };
        Relu { len, max_value, negative_slope, threshold, form }
    }
}

/// Keras's `ELU(alpha)` over `len` values: `y = x` where `x > 0`, else `alpha * expm1(x)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu {
    /// Values.
    pub len: usize,
    /// The scale of the negative part.
    pub alpha: f32,
}

/// The most groups of axes a [`Prelu`] describes.
pub const PRELU_GROUPS: usize = 8;

/// Keras's `PReLU` over `rows` samples of `width` values: `y = x` where `x > 0`, else
/// `alpha[j] * x`, `j` the element of the alpha tensor (the sample's shape with the shared axes
/// set to 1) that the position maps to. The sample's shape is given as `groups` groups of
/// adjacent axes (outermost first), each shared or not, of `sizes[g]` positions together.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prelu {
    /// Samples.
    pub rows: usize,
    /// Values per sample.
    pub width: usize,
    /// Alpha values (`width` divided by the shared groups' sizes).
    pub alphas: usize,
    /// Groups of axes in use, at most [`PRELU_GROUPS`].
    pub groups: usize,
    /// Each group's size (the product of its axes), outermost first; 1 past `groups`.
    pub sizes: [usize; PRELU_GROUPS],
    /// Bit `g` set: group `g` is shared (one alpha for all its positions).
    pub shared: usize,
}

impl Prelu {
    /// The geometry of a sample of `shape` (Keras's per-sample input shape, no batch axis) with
    /// Keras's 1-based `shared_axes`, for `rows` samples: axes of size 1 are dropped and adjacent
    /// axes both shared or both not are merged into one group.
    ///
    /// # Panics
    ///
    /// When a shared axis is 0 or past the shape, or the shape needs more than
    /// [`PRELU_GROUPS`] groups (the generated code passes shapes the macro has checked).
    pub fn new(rows: usize, shape: &[usize], shared_axes: &[usize]) -> Prelu {
        for &a in shared_axes {
            assert!(a >= 1 && a <= shape.len(), "PReLU: shared axis {a} is not an axis of a sample of shape {shape:?}");
        }
        let mut p = Prelu { rows, width: shape.iter().product(), alphas: 1, groups: 0, sizes: [1; PRELU_GROUPS], shared: 0 };
        let mut last: Option<bool> = None;
        for (i, &size) in shape.iter().enumerate() {
            let shared = shared_axes.contains(&(i + 1));
            if !shared {
                p.alphas *= size;
            }
            if size == 1 {
                continue;
            }
            if last == Some(shared) {
                p.sizes[p.groups - 1] *= size;
            } else {
                assert!(
                    p.groups < PRELU_GROUPS,
                    "PReLU: a sample of shape {shape:?} shared on {shared_axes:?} has too many groups of axes"
                );
                p.sizes[p.groups] = size;
                if shared {
                    p.shared |= 1 << p.groups;
                }
                p.groups += 1;
                last = Some(shared);
            }
        }
        p
    }

    /// The alpha element position `p` of a sample (`p < width`) uses.
    pub const fn alpha_of(&self, p: usize) -> usize {
        let (mut q, mut a, mut stride, mut g) = (p, 0, 1, self.groups);
        while g > 0 {
            g -= 1;
            let size = self.sizes[g];
            if self.shared & (1 << g) == 0 {
                a += (q % size) * stride;
                stride *= size;
            }
            q /= size;
        }
        a
    }

    /// The position of the `k`-th value of a sample that alpha element `j` scales: `k` counts
    /// the shared positions in increasing order of position.
    pub const fn position(&self, j: usize, k: usize) -> usize {
        let (mut j, mut k, mut p, mut stride, mut g) = (j, k, 0, 1, self.groups);
        while g > 0 {
            g -= 1;
            let size = self.sizes[g];
            let c = if self.shared & (1 << g) == 0 {
                let c = j % size;
                j /= size;
                c
            } else {
                let c = k % size;
                k /= size;
                c
            };
            p += c * stride;
            stride *= size;
        }
        p
    }
}

/// A normalization over a `rows x cols` matrix: batch normalization's statistics are per column
/// (over rows), layer normalization's per row (over columns).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Added to the variance under the root.
    pub epsilon: f32,
}

/// `Normalization`'s standardization of `len` values by per-feature statistics `mean` and
/// `variance` (`features` each): value `i` belongs to feature `(i / inner) % features` (the kept
/// axes of a sample flattened, `inner` values after them). `y = (x - mean) / max(sqrt(var),
/// epsilon)`, or with `invert`, `y = mean + x * max(sqrt(var), epsilon)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standardize {
    /// Values.
    pub len: usize,
    /// Statistics (each of `mean` and `variance` holds this many).
    pub features: usize,
    /// Consecutive values that share a feature.
    pub inner: usize,
    /// The smallest deviation divided by (Keras's `backend.epsilon()`, 1e-7).
    pub epsilon: f32,
    /// Undo the standardization instead (Keras's `invert=True`).
    pub invert: bool,
}

/// `Rescaling`'s affine map of `len` values, `y = x * scale + offset` (its backward pass is the
/// same map with offset 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rescale {
    /// Values.
    pub len: usize,
    /// The factor.
    pub scale: f32,
    /// Added after the product.
    pub offset: f32,
}

/// The geometry of a 2-D sliding window over NHWC samples: a convolution's receptive field or a
/// pooling window. Window tap `(i, j)` of output pixel `(oy, ox)` reads input pixel
/// `(oy * sh + i * dh - pt, ox * sw + j * dw - pl)`; taps outside the input read padding.
#[repr(C)]
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

    /// Values in one patch row of an im2col unfolding: `kh * kw * c`.
    pub const fn patch_len(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output pixels per sample.
    pub const fn out_pixels(&self) -> usize {
        self.oh * self.ow
    }
}

/// How a pooling window reduces its values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The largest value (padding never wins); NaN when the window holds one, as Keras's.
    Max,
    /// The mean over the taps inside the input (padding is not counted, as in Keras).
    Average,
}

/// A pooling layer's window and reduction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// The windows.
    pub window: Window2d,
    /// How each window is reduced.
    pub kind: PoolKind,
}

/// A depthwise convolution over im2col patch rows: `rows` rows of `taps * c` values in, `rows`
/// rows of `c * dm` out; the kernel is `(taps, c, dm)` row-major (Keras's `(kh, kw, c, dm)`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise {
    /// Patch rows (samples times output pixels).
    pub rows: usize,
    /// Window taps per patch (`kh * kw`).
    pub taps: usize,
    /// Input channels.
    pub c: usize,
    /// Outputs per input channel (`depth_multiplier`).
    pub dm: usize,
}

/// The most axes a sample may have for a [`Permutation`].
pub const MAX_RANK: usize = 8;

/// A permutation of the axes of a sample (`Permute`): output axis `i` is input axis `perm[i]`.
#[repr(C)]
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
#[repr(C)]
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
#[repr(C)]
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

/// `RepeatVector`'s copies: each of `batch` rows of `width` values repeated `times` times.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repeat {
    /// Samples.
    pub batch: usize,
    /// Copies per sample.
    pub times: usize,
    /// Floats per sample.
    pub width: usize,
}

/// A strided block copy over `rows` rows: for `c < width`,
/// `dst[r * dst_width + dst_off + c] = src[r * src_width + src_off + c]` (`Concatenate` and its
/// backward; splitting a batch into a model's inputs).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyCols {
    /// Rows.
    pub rows: usize,
    /// Floats copied per row.
    pub width: usize,
    /// Floats per source row.
    pub src_width: usize,
    /// Where the copied block starts in a source row.
    pub src_off: usize,
    /// Floats per destination row.
    pub dst_width: usize,
    /// Where the block lands in a destination row.
    pub dst_off: usize,
}

/// The cell of a recurrent layer, with Keras 3's gate layouts.
#[repr(u32)]
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
/// (the step's `pre` and `post`, block-major: block `k` holds `batch x units` values):
/// SimpleRNN `[a]`; LSTM `[i, f, c̃, o, c]` (the cell state's activation in the last `post`
/// block); GRU `[z, r, h̃, h R_h + b'_h]`.
#[repr(C)]
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

/// Step `s` of a recurrent layer over `batch` samples.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnStep {
    /// The cell.
    pub cell: RnnCell,
    /// The step (0-based, in processing order).
    pub s: usize,
    /// Samples.
    pub batch: usize,
}

/// How `Bidirectional` combines its forward and backward outputs (Keras's `merge_mode`).
#[repr(u32)]
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

/// `Bidirectional`'s merge of its two directions, each `batch x steps x units` (`steps` is 1
/// without `return_sequences`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Directions {
    /// How the two are combined.
    pub mode: MergeMode,
    /// Samples.
    pub batch: usize,
    /// Steps per sample in the outputs.
    pub steps: usize,
    /// Units per direction.
    pub units: usize,
}

/// How a merge layer of the functional API combines its inputs, elementwise.
#[repr(u32)]
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

/// A random draw of a layer in training: `Dropout`, `SpatialDropout2D`, `GaussianNoise`,
/// `GaussianDropout`. Element `i` draws from `(seed, step, i)` alone, where `seed` is `key`
/// (with `fixed`, Keras's `seed=`) or `key` mixed with the model's seed, and `step` is the
/// model's training step; both are read from the model's [`RandomStream`] buffer on the device.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Dropout's drop probability, or the noise's standard deviation.
    pub rate: f32,
    /// The layer's key.
    pub key: u64,
    /// Whether `key` is the seed on its own (the model's seed plays no part).
    pub fixed: bool,
    /// Samples in the batch (read with `channels`).
    pub rows: usize,
    /// Dropout: 0 draws one mask value per element; otherwise each of the `rows` samples holds
    /// positions of `channels` values, and one draw keeps or drops a channel at every position
    /// (`SpatialDropout2D`).
    pub channels: usize,
    /// The counter of the first draw: draw `i` is element `first + i` of the layer's sequence
    /// for the step (nonzero on a rank whose rows start inside a data-parallel batch).
    pub first: u64,
}

/// Where a model's random draws come from: a buffer of [`RandomStream::LEN`] floats on the
/// device holding the model's seed and its training step, each a `u64` as two `u32` bit patterns
/// (low word first). Kernels read it, a kernel advances the step, so a captured step replays
/// with fresh draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomStream {
    /// The model's seed.
    pub seed: u64,
    /// Training steps taken.
    pub step: u64,
}

impl RandomStream {
    /// Floats in the buffer.
    pub const LEN: usize = 4;
    /// Slot of the seed's low word (the high word follows).
    pub const SEED: usize = 0;
    /// Slot of the step's low word (the high word follows).
    pub const STEP: usize = 2;

    /// The buffer's contents.
    pub fn encode(&self) -> [f32; 4] {
        let [a, b] = encode_u64(self.seed);
        let [c, d] = encode_u64(self.step);
        [a, b, c, d]
    }

    /// The values in a buffer's contents.
    pub fn decode(buf: &[f32]) -> RandomStream {
        RandomStream { seed: decode_u64(&buf[Self::SEED..]), step: decode_u64(&buf[Self::STEP..]) }
    }
}

/// A `u64` as two `u32` bit patterns in f32 slots, low word first (how device step buffers hold
/// counters: an f32 would count exactly only to 2^24).
pub fn encode_u64(v: u64) -> [f32; 2] {
    [f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)]
}

/// The `u64` of [`encode_u64`], from the first two slots of `slots`.
pub fn decode_u64(slots: &[f32]) -> u64 {
    slots[0].to_bits() as u64 | ((slots[1].to_bits() as u64) << 32)
}

/// Keras's fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a log.
pub const EPSILON: f32 = 1e-7;

/// A loss function: `compile(optimizer, Loss::MeanSquaredError, ..)` or by Keras name, alias or
/// class name, `compile(optimizer, "mse", ..)`. Options go through [`LossConfig`]:
/// `Loss::BinaryCrossentropy.from_logits(true).label_smoothing(0.1)`, `Loss::huber(2.0)`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// Mean of `(y - p)^2` over the last axis.
    MeanSquaredError,
    /// Mean of `|y - p|` over the last axis.
    MeanAbsoluteError,
    /// `100 * mean(|y - p| / max(|y|, eps))` over the last axis.
    MeanAbsolutePercentageError,
    /// Mean of `(log(max(p, eps) + 1) - log(max(y, eps) + 1))^2` over the last axis.
    MeanSquaredLogarithmicError,
    /// `-(y log p + (1 - y) log(1 - p))`, mean over the last axis; `p` are probabilities
    /// (logits with `from_logits`).
    BinaryCrossentropy,
    /// Binary crossentropy scaled by `(1 - p_t)^gamma` (and by `alpha` with class balancing).
    BinaryFocalCrossentropy,
    /// `-sum(y log p)` over the last axis; `y` one-hot (or soft) targets, `p` probabilities
    /// (logits with `from_logits`).
    CategoricalCrossentropy,
    /// Categorical crossentropy with integer class targets.
    SparseCategoricalCrossentropy,
    /// `0.5 e^2` where `|e| <= delta`, else `delta (|e| - 0.5 delta)`, mean over the last axis.
    Huber,
    /// Mean of `log(cosh(p - y))` over the last axis.
    LogCosh,
    /// `sum(y log(y / p))` over the last axis, both clipped to `[eps, 1]`.
    KlDivergence,
    /// Mean of `p - y log(p + eps)` over the last axis.
    Poisson,
    /// Mean of `max(1 - y p, 0)`; targets in {0, 1} are mapped to {-1, 1}.
    Hinge,
    /// Mean of `max(1 - y p, 0)^2`; targets in {0, 1} are mapped to {-1, 1}.
    SquaredHinge,
    /// `max(max((1 - y) p) - sum(y p) + 1, 0)` over the last axis.
    CategoricalHinge,
    /// `-sum(l2_normalize(y) * l2_normalize(p))` over the last axis.
    CosineSimilarity,
}

impl Loss {
    /// Whether targets are class indices (one per sample) rather than arrays shaped like the
    /// output.
    pub fn sparse_targets(self) -> bool {
        self == Loss::SparseCategoricalCrossentropy
    }
}

/// A loss with its options (Keras's loss `get_config()`); every field starts at Keras's default.
/// Options a loss does not have are rejected by `compile` (see `LossConfig::validate`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossConfig {
    pub(crate) kind: Loss,
    pub(crate) from_logits: bool,
    pub(crate) label_smoothing: f32,
    pub(crate) delta: f32,
    pub(crate) apply_class_balancing: bool,
    pub(crate) alpha: f32,
    pub(crate) gamma: f32,
}

impl LossConfig {
    /// The loss function.
    pub fn kind(&self) -> Loss {
        self.kind
    }

    /// Whether targets are class indices (see [`Loss::sparse_targets`]).
    pub fn sparse_targets(&self) -> bool {
        self.kind.sparse_targets()
    }
}

impl From<Loss> for LossConfig {
    fn from(kind: Loss) -> Self {
        LossConfig { kind, from_logits: false, label_smoothing: 0.0, delta: 1.0, apply_class_balancing: false, alpha: 0.25, gamma: 2.0 }
    }
}

/// A loss over a batch: `rows` loss rows (samples times the positions the loss maps over) whose
/// outputs have `cols` values each.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossBatch {
    /// The loss.
    pub loss: LossConfig,
    /// Loss rows.
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
}

/// How an F1 score combines the per-class scores.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Average {
    /// One score from the counts of all classes together.
    Micro,
    /// The unweighted mean of the per-class scores.
    Macro,
    /// The mean of the per-class scores weighted by each class's number of true labels.
    Weighted,
}

/// A metric resolved against the model and loss: what the backend accumulates.
#[repr(C, u32)]
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum MetricKind {
    /// `mean(y == (p > threshold))` over the last axis.
    Binary,
    /// `argmax y == argmax p`.
    Categorical,
    /// `y == argmax p`, `y` a class index.
    Sparse,
    /// The target class is among the `k` largest outputs; `sparse` for class-index targets.
    TopK {
        /// How many of the largest outputs count.
        k: usize,
        /// Whether targets are class indices.
        sparse: bool,
    },
    /// `[true positives, false positives]` above `threshold`.
    Precision {
        /// The decision threshold.
        threshold: f32,
    },
    /// `[true positives, false negatives]` above `threshold`.
    Recall {
        /// The decision threshold.
        threshold: f32,
    },
    /// True/false positives/negatives at `num_thresholds` thresholds.
    Auc {
        /// Number of thresholds.
        num_thresholds: usize,
    },
    /// Per-class (or, for micro, total) true positives, false positives, false negatives and
    /// true-label counts.
    F1 {
        /// How the per-class scores are combined.
        average: Average,
        /// Whether each sample's largest output is its prediction (Keras's `threshold=None`);
        /// else the outputs above `threshold` are.
        argmax: bool,
        /// The decision threshold, when not `argmax`.
        threshold: f32,
    },
    /// Mean of per-sample mean squared errors.
    Mse,
    /// Mean of per-sample mean absolute errors.
    Mae,
    /// Mean of per-sample mean squared errors, rooted at the end.
    Rmse,
    /// Per-output sums of `y`, `y²`, squared residuals and counts.
    R2,
}

impl MetricKind {
    /// Number of accumulators for an output of `cols` values per sample.
    pub fn stats_len(self, cols: usize) -> usize {
        match self {
            // True/false positives/negatives, then two histograms used while adding a batch.
            MetricKind::Auc { num_thresholds } => 6 * num_thresholds,
            MetricKind::F1 { average: Average::Micro, .. } => 4,
            MetricKind::F1 { .. } => 4 * cols,
            MetricKind::R2 => 4 * cols,
            _ => 2,
        }
    }

    /// Whether the targets are one class index per sample.
    pub fn sparse_targets(self) -> bool {
        matches!(self, MetricKind::Sparse | MetricKind::TopK { sparse: true, .. })
    }
}

/// A metric over a batch of `rows` samples of `cols` outputs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricBatch {
    /// The metric.
    pub kind: MetricKind,
    /// Samples (loss rows).
    pub rows: usize,
    /// Outputs per sample.
    pub cols: usize,
}

/// `l1 * sum(|w|) + l2 * sum(w²)`, a weight's penalty (Keras's `L1`, `L2` and `L1L2`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    /// Factor of the sum of absolute values.
    pub l1: f32,
    /// Factor of the sum of squares.
    pub l2: f32,
}

impl Regularizer {
    /// This regularizer with both factors multiplied by `factor`.
    pub fn scaled(self, factor: f32) -> Regularizer {
        Regularizer { l1: self.l1 * factor, l2: self.l2 * factor }
    }
}

/// A projection of a weight tensor after each update (Keras's `MaxNorm`, `NonNeg`, `UnitNorm`,
/// `MinMaxNorm`); norms are over axis 0, Keras's default.
#[repr(C, u32)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Constraint {
    /// Rescales each unit's weights whose norm exceeds `max_value` to that norm.
    MaxNorm {
        /// The largest norm allowed.
        max_value: f32,
    },
    /// Sets negative weights to zero.
    NonNeg,
    /// Rescales each unit's weights to norm 1.
    UnitNorm,
    /// Moves each unit's norm towards `[min_value, max_value]` by `rate` (1 = all the way).
    MinMaxNorm {
        /// The smallest norm.
        min_value: f32,
        /// The largest norm.
        max_value: f32,
        /// How far to move towards the range (0 to 1).
        rate: f32,
    },
}

/// An optimizer's update rule and hyper-parameters (Keras 3's `update_step`s). The per-step
/// values (the step count, the learning rate, bias corrections, Nadam's momentum product) are
/// not here: the update kernel computes them from the optimizer's [`OptimizerStep`] buffer. The
/// state buffers a backend receives are listed per rule, in order.
#[repr(C, u32)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    /// Without momentum (no state): `w -= g lr`. With momentum (state: `m`): `m = mu m - g lr`,
    /// then `w += m`, or with Nesterov `w += mu m - g lr`. Keras 2's `decay` divides the rate by
    /// `1 + decay * iterations`.
    Sgd {
        /// Momentum; 0 for none.
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// Keras 2's learning-rate decay per step; 0 for none.
        decay: f32,
    },
    /// State `m`, `v` (and `vhat` for AMSGrad): `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`,
    /// `w -= m alpha / (sqrt(v) + eps)` with `alpha = lr sqrt(1 - b2^t) / (1 - b1^t)` (AMSGrad:
    /// `vhat = max(vhat, v)` in place of `v`).
    Adam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the root.
        epsilon: f32,
        /// Keep the running maximum of `v`.
        amsgrad: bool,
    },
    /// State `v`, then `mom` when `momentum > 0`, then `avg` when centered:
    /// `v = rho v + (1 - rho) g^2`; centered: `avg = rho avg + (1 - rho) g`, `d = v - avg^2 + eps`,
    /// else `d = v + eps`; `inc = lr g / sqrt(d)`; `mom = momentum mom + inc; w -= mom`, or `w -= inc`.
    RmsProp {
        /// Decay of the averages.
        rho: f32,
        /// Momentum; 0 for none.
        momentum: f32,
        /// Added to the denominator.
        epsilon: f32,
        /// Subtract the squared mean gradient.
        centered: bool,
    },
    /// State `acc` (starting at `initial_accumulator_value`): `acc += g^2`,
    /// `w -= lr g / sqrt(acc + eps)`.
    Adagrad {
        /// The accumulator's starting value.
        initial_accumulator_value: f32,
        /// Added under the root.
        epsilon: f32,
    },
    /// State `ag`, `ad`: `ag = rho ag + (1 - rho) g^2`, `d = -sqrt(ad + eps) g / sqrt(ag + eps)`,
    /// `ad = rho ad + (1 - rho) d^2`, `w += lr d`.
    Adadelta {
        /// Decay of the averages.
        rho: f32,
        /// Added under the roots.
        epsilon: f32,
    },
    /// State `m`, `u`: `m += (g - m)(1 - b1)`, `u = max(b2 u, |g|)`,
    /// `w -= lr m / ((1 - b1^t) (u + eps))`.
    Adamax {
        /// First-moment decay.
        beta_1: f32,
        /// Decay of the infinity norm.
        beta_2: f32,
        /// Added to the norm.
        epsilon: f32,
    },
    /// State `m`, `v`: Adam's moments, then with the momentum schedule
    /// `u_t = b1 (1 - 0.5 * 0.96^t)` and its running product `P_t`:
    /// `mhat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)`, `vhat = v / (1 - b2^t)`,
    /// `w -= mhat lr / (sqrt(vhat) + eps)`.
    Nadam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the root.
        epsilon: f32,
    },
    /// State `m`: `w -= lr sign(b1 m + (1 - b1) g)`, `m = b2 m + (1 - b2) g`.
    Lion {
        /// Interpolation for the update's sign.
        beta_1: f32,
        /// Decay of the momentum.
        beta_2: f32,
    },
    /// State `acc` (starting at `initial_accumulator_value`), `lin`: FTRL-proximal as Keras's
    /// `Ftrl.update_step`, its L2 term `l2 + beta / (2 lr)`.
    Ftrl {
        /// The learning rate power (`<= 0`).
        lr_power: f32,
        /// The accumulator's starting value.
        initial_accumulator_value: f32,
        /// L1 regularisation.
        l1: f32,
        /// L2 regularisation.
        l2: f32,
        /// L2 shrinkage regularisation.
        l2_shrinkage: f32,
        /// Keras's `beta`.
        beta: f32,
    },
}

impl UpdateRule {
    /// The state buffers, by Keras name, with their initial value, in the order the update kernel
    /// takes them.
    pub fn slots(&self) -> &'static [(&'static str, StateInit)] {
        use StateInit::{Initial, Zero};
        match *self {
            UpdateRule::Sgd { momentum, .. } if momentum != 0.0 => &[("momentum", Zero)],
            UpdateRule::Sgd { .. } => &[],
            UpdateRule::Adam { amsgrad: true, .. } => &[("momentum", Zero), ("velocity", Zero), ("velocity_hat", Zero)],
            UpdateRule::Adam { .. } | UpdateRule::Nadam { .. } => &[("momentum", Zero), ("velocity", Zero)],
            UpdateRule::RmsProp { momentum, centered, .. } => match (momentum > 0.0, centered) {
                (false, false) => &[("velocity", Zero)],
                (true, false) => &[("velocity", Zero), ("momentum", Zero)],
                (false, true) => &[("velocity", Zero), ("average_gradient", Zero)],
                (true, true) => &[("velocity", Zero), ("momentum", Zero), ("average_gradient", Zero)],
            },
            UpdateRule::Adagrad { .. } => &[("accumulator", Initial)],
            UpdateRule::Adadelta { .. } => &[("accumulated_grad", Zero), ("accumulated_delta_var", Zero)],
            UpdateRule::Adamax { .. } => &[("momentum", Zero), ("norm", Zero)],
            UpdateRule::Lion { .. } => &[("momentum", Zero)],
            UpdateRule::Ftrl { .. } => &[("accumulator", Initial), ("linear", Zero)],
        }
    }

    /// The value a state buffer starts at.
    pub fn initial_value(&self, init: StateInit) -> f32 {
        match (init, *self) {
            (
                StateInit::Initial,
                UpdateRule::Adagrad { initial_accumulator_value, .. } | UpdateRule::Ftrl { initial_accumulator_value, .. },
            ) => initial_accumulator_value,
            _ => 0.0,
        }
    }
}

/// How an optimizer's state buffer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateInit {
    /// At zero.
    Zero,
    /// At the rule's `initial_accumulator_value`.
    Initial,
}

/// The most boundaries a [`Schedule::Piecewise`] holds; a longer piecewise schedule is
/// evaluated on the host.
pub const MAX_PIECES: usize = 16;

/// A learning-rate schedule the update kernel evaluates at the step count it reads from the
/// device (Keras 3's `keras.optimizers.schedules`, in f32 as Keras evaluates them).
#[repr(C, u32)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The rate in the step buffer's [`OptimizerStep::LEARNING_RATE`] slot, written by the host
    /// (a number, or a schedule the host evaluates).
    Constant,
    /// `initial * rate ^ (step / decay_steps)`, the exponent floored with `staircase`.
    Exponential {
        /// The rate at step 0.
        initial: f32,
        /// Steps per period.
        decay_steps: u64,
        /// The factor per period.
        rate: f32,
        /// Whole periods only.
        staircase: bool,
    },
    /// `values[i]` for steps in `(boundaries[i - 1], boundaries[i]]`.
    Piecewise {
        /// Boundaries in use.
        count: usize,
        /// Increasing steps (the first `count`).
        boundaries: [u64; MAX_PIECES],
        /// One more value than boundaries.
        values: [f32; MAX_PIECES + 1],
    },
    /// From `initial` to `end` along `(1 - step / decay_steps) ^ power`, optionally cycling.
    Polynomial {
        /// The rate at step 0.
        initial: f32,
        /// Steps to the end rate.
        decay_steps: u64,
        /// The end rate.
        end: f32,
        /// The power.
        power: f32,
        /// Restart after each period.
        cycle: bool,
    },
    /// `initial / (1 + rate * step / decay_steps)`, the quotient floored with `staircase`.
    InverseTime {
        /// The rate at step 0.
        initial: f32,
        /// Steps per period.
        decay_steps: u64,
        /// The decay per period.
        rate: f32,
        /// Whole periods only.
        staircase: bool,
    },
    /// Cosine decay to `alpha` times the start over `decay_steps`, after a linear warm-up from
    /// `initial` to `warmup_target` over `warmup_steps` when `warmup`.
    Cosine {
        /// The rate at step 0.
        initial: f32,
        /// Steps of the decay.
        decay_steps: u64,
        /// The final fraction.
        alpha: f32,
        /// Whether there is a warm-up.
        warmup: bool,
        /// The rate the warm-up reaches.
        warmup_target: f32,
        /// Steps of the warm-up.
        warmup_steps: u64,
    },
}

/// Keras's gradient clipping, applied by the update kernel before the rule.
#[repr(C, u32)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// No clipping.
    None,
    /// Each gradient element clipped to `[-c, c]`.
    Value(f32),
    /// Each weight tensor's gradient scaled to at most this L2 norm.
    Norm(f32),
    /// All gradients scaled together to at most this global L2 norm (a non-finite norm makes
    /// every gradient NaN, as in Keras).
    GlobalNorm(f32),
}

/// One optimizer step over a whole parameter arena: clipping, Keras's decoupled weight decay
/// (`w -= w * weight_decay * lr`), then the rule, at the learning rate of `schedule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The rule.
    pub rule: UpdateRule,
    /// Where this step's learning rate comes from.
    pub schedule: Schedule,
    /// The weight decay; 0 for none.
    pub weight_decay: f32,
    /// Gradient clipping.
    pub clip: Clip,
}

/// One weight tensor within an arena: `len` floats from `offset` (for per-tensor clipping).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The first float.
    pub offset: usize,
    /// Floats.
    pub len: usize,
}

/// An optimizer's per-step values, in a small buffer on the device ([`OptimizerStep::LEN`]
/// floats) that the update kernel reads and advances: the step count (`iterations`, a `u64` as
/// two `u32` bit patterns, low word first), the learning rate the host set (for
/// [`Schedule::Constant`]), and Nadam's running product of its momentum schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerStep {
    /// Updates applied so far.
    pub iterations: u64,
    /// The rate set by the host.
    pub learning_rate: f32,
    /// Nadam's `u_product` (1 before the first step).
    pub u_product: f32,
}

impl OptimizerStep {
    /// Floats in the buffer.
    pub const LEN: usize = 4;
    /// Slot of the step count's low word (the high word follows).
    pub const ITERATIONS: usize = 0;
    /// Slot of the host's learning rate.
    pub const LEARNING_RATE: usize = 2;
    /// Slot of Nadam's momentum product.
    pub const U_PRODUCT: usize = 3;

    /// The buffer's contents.
    pub fn encode(&self) -> [f32; 4] {
        let [a, b] = encode_u64(self.iterations);
        [a, b, self.learning_rate, self.u_product]
    }

    /// The values in a buffer's contents.
    pub fn decode(buf: &[f32]) -> OptimizerStep {
        OptimizerStep {
            iterations: decode_u64(&buf[Self::ITERATIONS..]),
            learning_rate: buf[Self::LEARNING_RATE],
            u_product: buf[Self::U_PRODUCT],
        }
    }
}

// Views of one kernel that travel together, generic over the device's view types: `V` a
// read-only view, `M` a writable one (`&[f32]` and `&mut [f32]` on the CPU).

/// A layer's scale and offset (`gamma`, `beta`), each optional.
#[derive(Clone, Copy)]
pub struct Affine<V> {
    /// The scale, one per normalized feature.
    pub gamma: Option<V>,
    /// The offset.
    pub beta: Option<V>,
}

/// The gradients a normalization's backward pass writes (overwritten), each when wanted.
pub struct NormGrads<M> {
    /// Of the scale.
    pub dgamma: Option<M>,
    /// Of the offset.
    pub dbeta: Option<M>,
    /// Of the input.
    pub dx: Option<M>,
}

/// Batch normalization's statistics kept for the backward pass: per column, the mean and
/// `1 / sqrt(var + epsilon)`.
#[derive(Clone, Copy)]
pub struct BatchStats<V> {
    /// The batch's mean.
    pub mean: V,
    /// The inverse standard deviation.
    pub inv: V,
}

/// The tensors of [`SequenceOps::rnn_step`](crate::backend::SequenceOps::rnn_step).
pub struct RnnStepIo<V, M> {
    /// The input projections of every step, `batch * timesteps x gates * units` (rows
    /// `n * timesteps + t`), the input bias included.
    pub xw: V,
    /// `h R` of the previous state, `batch x gates * units` (for [`CellKind::GruResetBefore`]
    /// `h R` then `(r h) R`); `None` at the first step, where the state is zero.
    pub hu: Option<V>,
    /// The GRU's recurrent bias.
    pub rbias: Option<V>,
    /// The previous step's state and `pre` (for the GRU's state and the LSTM's cell state).
    pub prev: Option<(V, V)>,
    /// This step's pre-activations (`batch x cell.stored()`), written.
    pub pre: M,
    /// This step's activations, written.
    pub post: M,
    /// The new state (`batch x units`), written.
    pub h: M,
    /// The layer's output (`batch x timesteps x units` with `return_sequences`, else `batch x
    /// units`, written at the last step).
    pub y: M,
}

/// The tensors of [`SequenceOps::rnn_step_backward`](crate::backend::SequenceOps::rnn_step_backward).
pub struct RnnStepGrads<V, M> {
    /// The layer's output gradient.
    pub dy: V,
    /// The step's pre-activations.
    pub pre: V,
    /// The step's activations.
    pub post: V,
    /// The previous step's state and `pre`.
    pub prev: Option<(V, V)>,
    /// The state's gradient from later steps; left holding the part of the previous state's
    /// gradient that does not pass through the recurrent kernel (`z dh` for the GRU, else zero).
    pub dh: M,
    /// Likewise for the LSTM's cell state.
    pub dc: M,
    /// The input projections' gradients (rows `n * timesteps + t` written).
    pub dxw: M,
    /// The gradient of `h R` plus recurrent bias (for [`CellKind::GruResetBefore`] also of
    /// `(r h) R`).
    pub dhu: M,
    /// Working space, `batch x gates * units`.
    pub tmp: M,
    /// The input bias's gradient, added to.
    pub dbias: Option<M>,
    /// The recurrent bias's gradient, added to.
    pub drbias: Option<M>,
}

/// The tensors of [`SequenceOps::rnn_reset_state_backward`](crate::backend::SequenceOps::rnn_reset_state_backward).
pub struct RnnResetGrads<V, M> {
    /// The gradient of `r h` (`None` at the first step).
    pub drh: Option<V>,
    /// The step's pre-activations.
    pub pre: V,
    /// The step's activations.
    pub post: V,
    /// The previous state.
    pub h: Option<V>,
    /// The state's gradient: `r drh` is added.
    pub dh: M,
    /// The input projections' gradients: the reset gate's block is written.
    pub dxw: M,
    /// The gradient of `h R`: the reset gate's block is written.
    pub dhu: M,
    /// The input bias's gradient: the input projections' row sums are added.
    pub dbias: Option<M>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_f32_slots() {
        for v in [0u64, 1, 1 << 24, (1 << 24) + 1, u32::MAX as u64 + 7, u64::MAX] {
            assert_eq!(decode_u64(&encode_u64(v)), v);
        }
        let s = RandomStream { seed: 0xdead_beef_0123_4567, step: 12_345_678_901 };
        assert_eq!(RandomStream::decode(&s.encode()), s);
        let o = OptimizerStep { iterations: 1 << 40, learning_rate: 0.01, u_product: 0.5 };
        assert_eq!(OptimizerStep::decode(&o.encode()), o);
    }
}
