//! Elementwise, row-wise and reduction kernels of the CPU backend.
//!
//! Rows are spread over the thread pool when a matrix is large enough to pay for it; column
//! sums always add rows in order, so results do not depend on the thread count.

use super::activation;
use super::pool;
use super::simd::{self, Simd, simd_fn};
use crate::backend::ops::{Activation, Affine, BatchStats, BiasAct, Elu, Norm, NormGrads, Prelu, Relu, ReluForm, Rescale, Standardize};
use std::ops::Range;

/// Matrices with fewer elements than this run on the calling thread.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// A mutable slice handed to pool tasks, which take disjoint row ranges of it.
#[derive(Clone, Copy)]
pub(super) struct Rows {
    ptr: *mut f32,
    len: usize,
    cols: usize,
}
// SAFETY: tasks only touch disjoint row ranges (see `rows`).
unsafe impl Send for Rows {}
unsafe impl Sync for Rows {}

impl Rows {
    pub(super) fn new(s: &mut [f32], cols: usize) -> Rows {
        Rows { ptr: s.as_mut_ptr(), len: s.len(), cols }
    }

    /// Rows `r` as a slice.
    ///
    /// # Safety
    /// No two live slices from this `Rows` may overlap.
    pub(super) unsafe fn rows<'x>(&self, r: &Range<usize>) -> &'x mut [f32] {
        let (a, b) = (r.start * self.cols, r.end * self.cols);
        assert!(b <= self.len);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(a), b - a) }
    }
}

/// Runs `f` over row ranges covering `0..rows`, in parallel when the matrix is large.
pub(super) fn for_rows(rows: usize, cols: usize, f: impl Fn(Range<usize>) + Sync) {
    let pool = pool::global();
    if rows * cols < PARALLEL_MIN_ELEMS || rows < 2 || pool.threads() == 1 {
        f(0..rows);
        return;
    }
    let tasks = pool.threads().min(rows);
    pool.run(tasks, &|t| f(rows * t / tasks..rows * (t + 1) / tasks));
}

/// `y = act(y + bias)` per row, saving `y + bias` in `pre` when given.
pub fn bias_act(a: &BiasAct, y: &mut [f32], bias: Option<&[f32]>, pre: Option<&mut [f32]>) {
    let &BiasAct { rows, cols, act } = a;
    assert!(y.len() >= rows * cols && bias.is_none_or(|b| b.len() == cols));
    let yr = Rows::new(&mut y[..rows * cols], cols);
    let pr = pre.map(|p| {
        assert!(p.len() >= rows * cols);
        Rows::new(&mut p[..rows * cols], cols)
    });
    for_rows(rows, cols, |r| {
        // SAFETY: each task has its own row range.
        let (y, pre) = unsafe { (yr.rows(&r), pr.map(|p| p.rows(&r))) };
        bias_act_rows(y, bias, pre, cols, act);
    });
}

simd_fn! {
    /// [`bias_act`] on whole rows, on one thread.
    fn bias_act_rows / bias_act_rows_at(y: &mut [f32], bias: Option<&[f32]>, pre: Option<&mut [f32]>, cols: usize, act: Activation) => bias_act_rows_impl
}

#[inline(always)]
fn bias_act_rows_impl<S: Simd>(s: S, y: &mut [f32], bias: Option<&[f32]>, mut pre: Option<&mut [f32]>, cols: usize, act: Activation) {
    // Rows narrower than a vector: add the bias row by row, then run the activation over the
    // matrix as one flat array, so that each vector holds several rows (an exp's latency per row
    // would otherwise dominate tiny layers).
    let narrow = cols < S::LANES && act != Activation::Softmax;
    let row_act = if narrow { Activation::Linear } else { act };
    for (i, row) in y.chunks_exact_mut(cols).enumerate() {
        let pre_row: *mut f32 = match pre.as_deref_mut() {
            Some(p) => p[i * cols..(i + 1) * cols].as_mut_ptr(),
            None => std::ptr::null_mut(),
        };
        let bp: *const f32 = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        let yp = row.as_mut_ptr();
        // One pass: add the bias, keep the sum, apply the activation.
        let mut j = 0;
        // SAFETY: every step stays within the row (and the bias and pre rows, when not null).
        unsafe {
            while j + S::LANES <= cols {
                bias_act_step(s, yp, bp, pre_row, j, S::LANES, row_act);
                j += S::LANES;
            }
            if S::LANES > 1 && j < cols {
                bias_act_step(s, yp, bp, pre_row, j, cols - j, row_act);
            }
        }
        match act {
            Activation::Softmax => {}
            a if !vectorized(a) => {
                for v in row.iter_mut() {
                    *v = activation::apply(a, *v);
                }
            }
            _ => {}
        }
    }
    if act == Activation::Softmax {
        softmax_rows(s, y, cols);
    }
    if narrow && vectorized(act) && act != Activation::Linear {
        let (p, n) = (y.as_mut_ptr(), y.len());
        let mut j = 0;
        // SAFETY: steps stay within y.
        unsafe {
            while j < n {
                bias_act_step(s, p, std::ptr::null(), std::ptr::null_mut(), j, S::LANES.min(n - j), act);
                j += S::LANES;
            }
        }
    }
}

/// Whether the activation has a SIMD kernel (the others use the scalar definitions).
pub fn vectorized(act: Activation) -> bool {
    matches!(act, Activation::Linear | Activation::Relu | Activation::Sigmoid | Activation::Tanh | Activation::Exponential)
}

/// Lanes `j..j + n` of [`bias_act_rows_impl`]; `b` and `pre` may be null.
///
/// # Safety
/// The non-null pointers must be valid for `j + n` floats.
#[inline(always)]
unsafe fn bias_act_step<S: Simd>(s: S, y: *mut f32, b: *const f32, pre: *mut f32, j: usize, n: usize, act: Activation) {
    unsafe {
        let full = n == S::LANES;
        let y = y.add(j);
        let mut v = if full { s.load(y) } else { s.load_part(y, n) };
        if !b.is_null() {
            let b = b.add(j);
            v = s.add(v, if full { s.load(b) } else { s.load_part(b, n) });
        }
        if !pre.is_null() {
            let p = pre.add(j);
            if full { s.store(p, v) } else { s.store_part(p, v, n) }
        }
        let out = simd::activate(s, v, act);
        if full { s.store(y, out) } else { s.store_part(y, out, n) }
    }
}

/// `y = e^(y - max) / sum` per row, JAX's stable softmax: the exponentials run over the whole
/// matrix at once, so that narrow rows share vectors.
#[inline(always)]
fn softmax_rows<S: Simd>(s: S, y: &mut [f32], cols: usize) {
    for row in y.chunks_exact_mut(cols) {
        let mut max = f32::NEG_INFINITY;
        for &v in row.iter() {
            max = max.max(v);
        }
        for v in row.iter_mut() {
            *v -= max;
        }
    }
    let (p, n) = (y.as_mut_ptr(), y.len());
    let mut j = 0;
    // SAFETY: indices stay below n.
    unsafe {
        while j + S::LANES <= n {
            s.store(p.add(j), simd::exp(s, s.load(p.add(j))));
            j += S::LANES;
        }
        if S::LANES > 1 && j < n {
            s.store_part(p.add(j), simd::exp(s, s.load_part(p.add(j), n - j)), n - j);
        }
    }
    for row in y.chunks_exact_mut(cols) {
        let mut sum = 0.0f32;
        for &v in row.iter() {
            sum += v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Keras's ReLU at `x` in `r`'s form (see [`ReluForm`]), step by step as Keras computes it:
/// `relu(x)` keeps NaN, `where(x > threshold, x, 0)` makes it 0 (so a NaN becomes 0 with a
/// threshold and no slope, as in Keras), the clip keeps it, the slope's part brings it back.
#[inline]
pub fn relu_value(r: &Relu, x: f32) -> f32 {
    let &Relu { max_value, negative_slope: s, threshold: t, form, .. } = r;
    if form == ReluForm::Leaky {
        return if x >= 0.0 { x } else { s * x };
    }
    let mut p = if t != 0.0 {
        if x > t { x } else { 0.0 }
    } else if x < 0.0 {
        0.0
    } else {
        x
    };
    if p > max_value {
        p = max_value;
    }
    if s != 0.0 {
        let n = t - x;
        p -= s * if n < 0.0 { 0.0 } else { n };
    }
    p
}

/// The derivative of [`relu_value`] as JAX's autodiff takes it: 1 where `threshold < x <
/// max_value`, `negative_slope` where `x < threshold`, 0 at `x == threshold` (relu's jvp) and
/// past `max_value`; at `x == max_value` 0.5 (`clip`'s tie) or 0 in the relu6 form; the leaky
/// form 1 for `x >= 0`. At NaN: the slope in the leaky form, else 0.
#[inline]
pub fn relu_derivative(r: &Relu, x: f32) -> f32 {
    let &Relu { max_value, negative_slope: s, threshold: t, form, .. } = r;
    if form == ReluForm::Leaky {
        return if x >= 0.0 { 1.0 } else { s };
    }
    if x > t {
        if x < max_value || max_value == f32::INFINITY {
            1.0
        } else if x == max_value && form == ReluForm::Clip {
            0.5
        } else {
            0.0
        }
    } else if x < t {
        s
    } else {
        0.0
    }
}

/// `y = relu(x)` over `r.len` values (see `DenseOps::relu`).
pub fn relu(r: &Relu, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y[..r.len].iter_mut().zip(&x[..r.len]) {
        *y = relu_value(r, x);
    }
}

/// `dx = dy * relu'(x)` over `r.len` values.
pub fn relu_backward(r: &Relu, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &x), &dy) in dx[..r.len].iter_mut().zip(&x[..r.len]).zip(&dy[..r.len]) {
        *dx = dy * relu_derivative(r, x);
    }
}

/// `y = x > 0 ? x : alpha * expm1(x)` over `e.len` values (`jax.nn.elu`; NaN kept).
pub fn elu(e: &Elu, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y[..e.len].iter_mut().zip(&x[..e.len]) {
        *y = if x > 0.0 { x } else { e.alpha * libm::expm1f(x) };
    }
}

/// `dx = dy * (x > 0 ? 1 : alpha * exp(x))` over `e.len` values (`alpha` at 0, as JAX).
pub fn elu_backward(e: &Elu, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((dx, &x), &dy) in dx[..e.len].iter_mut().zip(&x[..e.len]).zip(&dy[..e.len]) {
        *dx = dy * if x > 0.0 { 1.0 } else { e.alpha * libm::expf(x) };
    }
}

/// `y = x > 0 ? x : alpha[j] * x` per sample (see [`Prelu`]; NaN kept).
pub fn prelu(p: &Prelu, x: &[f32], alpha: &[f32], y: &mut [f32]) {
    let n = p.rows * p.width;
    for (i, (y, &x)) in y[..n].iter_mut().zip(&x[..n]).enumerate() {
        *y = if x > 0.0 { x } else { alpha[p.alpha_of(i % p.width)] * x };
    }
}

/// `dx = dy * (x > 0 ? 1 : x < 0 ? alpha[j] : 0)` (JAX's: both relus' derivatives are 0 at 0).
pub fn prelu_backward(p: &Prelu, x: &[f32], alpha: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = p.rows * p.width;
    for (i, ((dx, &x), &dy)) in dx[..n].iter_mut().zip(&x[..n]).zip(&dy[..n]).enumerate() {
        let d = if x > 0.0 {
            1.0
        } else if x < 0.0 {
            alpha[p.alpha_of(i % p.width)]
        } else {
            0.0
        };
        *dx = dy * d;
    }
}

/// `dalpha[j] = sum of dy * min(x, 0)` over the samples, then the positions `j` scales, in
/// increasing order (the CUDA kernel sums in the same order, one thread per `j`); NaN kept.
pub fn prelu_alpha_grad(p: &Prelu, x: &[f32], dy: &[f32], dalpha: &mut [f32]) {
    let shared = p.width.checked_div(p.alphas).unwrap_or(0);
    for (j, da) in dalpha[..p.alphas].iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for r in 0..p.rows {
            for k in 0..shared {
                let i = r * p.width + p.position(j, k);
                acc += dy[i] * if x[i] >= 0.0 { 0.0 } else { x[i] };
            }
        }
        *da = acc;
    }
}

/// `g *= act'(x)` per row; `dbias` gets the column sums of the result.
pub fn act_backward(a: &BiasAct, g: &mut [f32], y: &[f32], pre: Option<&[f32]>, dbias: Option<&mut [f32]>) {
    let &BiasAct { rows, cols, act } = a;
    assert!(g.len() >= rows * cols && y.len() >= rows * cols);
    assert!(!act.needs_input() || pre.is_some_and(|p| p.len() >= rows * cols));
    let gr = Rows::new(&mut g[..rows * cols], cols);
    if act != Activation::Linear {
        for_rows(rows, cols, |r| {
            // SAFETY: each task has its own row range.
            let g = unsafe { gr.rows(&r) };
            let at = r.start * cols..r.end * cols;
            act_backward_rows(g, &y[at.clone()], pre.map(|p| &p[at]), cols, act);
        });
    }
    if let Some(db) = dbias {
        assert_eq!(db.len(), cols);
        // SAFETY: no task is running; this is the only view of g.
        let g = unsafe { gr.rows(&(0..rows)) };
        column_sums(g, rows, cols, db);
    }
}

simd_fn! {
    /// [`act_backward`]'s elementwise part on whole rows, on one thread.
    fn act_backward_rows / act_backward_rows_at(g: &mut [f32], y: &[f32], pre: Option<&[f32]>, cols: usize, act: Activation) => act_backward_rows_impl
}

#[inline(always)]
fn act_backward_rows_impl<S: Simd>(s: S, g: &mut [f32], y: &[f32], pre: Option<&[f32]>, cols: usize, act: Activation) {
    match act {
        Activation::Linear => {}
        Activation::Relu | Activation::Sigmoid | Activation::Tanh | Activation::Exponential => {
            let n = g.len().min(y.len());
            let (gp, yp) = (g.as_mut_ptr(), y.as_ptr());
            let mut i = 0;
            // SAFETY: indices stay below n.
            unsafe {
                while i + S::LANES <= n {
                    s.store(gp.add(i), grad_vec(s, s.load(gp.add(i)), s.load(yp.add(i)), act));
                    i += S::LANES;
                }
                if S::LANES > 1 && i < n {
                    let r = n - i;
                    s.store_part(gp.add(i), grad_vec(s, s.load_part(gp.add(i), r), s.load_part(yp.add(i), r), act), r);
                }
            }
        }
        Activation::Softmax => {
            for (g, y) in g.chunks_exact_mut(cols).zip(y.chunks_exact(cols)) {
                let mut dot = 0.0f32;
                for (g, y) in g.iter().zip(y) {
                    dot += g * y;
                }
                for (g, &y) in g.iter_mut().zip(y) {
                    *g = y * (*g - dot);
                }
            }
        }
        a => match pre {
            Some(x) => {
                for ((g, &y), &x) in g.iter_mut().zip(y).zip(x) {
                    *g *= activation::derivative(a, x, y);
                }
            }
            None => {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g *= activation::derivative(a, 0.0, y);
                }
            }
        },
    }
}

/// `g * act'` from the output `y`, for the activations whose derivative `y` determines.
#[inline(always)]
fn grad_vec<S: Simd>(s: S, g: S::V, y: S::V, act: Activation) -> S::V {
    let (zero, one) = (s.splat(0.0), s.splat(1.0));
    match act {
        Activation::Relu => s.select(s.gt(y, zero), g, zero),
        Activation::Sigmoid => s.mul(g, s.mul(y, s.sub(one, y))),
        Activation::Tanh => s.mul(g, s.sub(one, s.mul(y, y))),
        Activation::Exponential => s.mul(g, y),
        _ => g,
    }
}

/// `out[j] = sum_r m[r][j]`, rows added in order; column blocks spread over the pool.
pub fn column_sums(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    if cols < 16 {
        // Narrower than a vector: plain adds, in the same row order.
        out.fill(0.0);
        for row in m[..rows * cols].chunks_exact(cols) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
        return;
    }
    let pool = pool::global();
    let blocks = if rows * cols < PARALLEL_MIN_ELEMS || cols < 64 { 1 } else { pool.threads().min(cols / 32) };
    let outr = Rows::new(out, 1);
    let sum_block = |b: usize| {
        let c = (cols * b / blocks) & !15..if b + 1 == blocks { cols } else { (cols * (b + 1) / blocks) & !15 };
        // SAFETY: blocks cover disjoint column ranges of out.
        let o = unsafe { outr.rows(&c) };
        column_sums_block(m, cols, rows, c.start, o);
    };
    if blocks == 1 {
        sum_block(0);
    } else {
        pool.run(blocks, &sum_block);
    }
}

simd_fn! {
    /// `out[j] = sum_r m[r * stride + start + j]` for `j < out.len()`.
    fn column_sums_block / column_sums_block_at(m: &[f32], stride: usize, rows: usize, start: usize, out: &mut [f32]) => column_sums_block_impl
}

#[inline(always)]
fn column_sums_block_impl<S: Simd>(s: S, m: &[f32], stride: usize, rows: usize, start: usize, out: &mut [f32]) {
    out.fill(0.0);
    let n = out.len();
    let op = out.as_mut_ptr();
    for r in 0..rows {
        let row = m[r * stride + start..r * stride + start + n].as_ptr();
        let mut j = 0;
        // SAFETY: indices stay below n, within out and the row.
        unsafe {
            while j + S::LANES <= n {
                s.store(op.add(j), s.add(s.load(op.add(j)), s.load(row.add(j))));
                j += S::LANES;
            }
            if S::LANES > 1 && j < n {
                s.store_part(op.add(j), s.add(s.load_part(op.add(j), n - j), s.load_part(row.add(j), n - j)), n - j);
            }
        }
    }
}

/// Whether any value is NaN or infinite; large arrays are scanned by every thread of the pool.
pub fn any_non_finite(v: &[f32]) -> bool {
    let pool = pool::global();
    let tasks = if v.len() >= 1 << 20 { pool.threads() } else { 1 };
    if tasks == 1 {
        return v.chunks(1 << 16).any(any_non_finite_block);
    }
    let found = std::sync::atomic::AtomicBool::new(false);
    pool.run(tasks, &|t| {
        let part = &v[v.len() * t / tasks..v.len() * (t + 1) / tasks];
        if part.chunks(1 << 16).any(any_non_finite_block) {
            found.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    found.into_inner()
}

simd_fn! {
    /// [`any_non_finite`] on one block, without early exit so that it vectorizes.
    fn any_non_finite_block / any_non_finite_block_at(v: &[f32]) -> bool => any_non_finite_impl
}

#[inline(always)]
fn any_non_finite_impl<S: Simd>(_s: S, v: &[f32]) -> bool {
    // An exponent of all ones is an infinity or a NaN.
    v.iter().fold(0u32, |acc, x| acc | ((x.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32) != 0
}

/// A 64-bit mix (SplitMix64's finaliser).
#[inline(always)]
pub(super) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The most tasks [`sum_over_rows`] splits a matrix into.
const MAX_SUM_TASKS: usize = 64;

/// `f` over row ranges covering `0..rows` (in parallel when the matrix is large), and the sum
/// of its results in row order, so that the total does not depend on scheduling.
pub(super) fn sum_over_rows(rows: usize, cols: usize, f: impl Fn(Range<usize>) -> f32 + Sync) -> f32 {
    let pool = pool::global();
    if rows * cols < PARALLEL_MIN_ELEMS || rows < 2 || pool.threads() == 1 {
        return f(0..rows);
    }
    let tasks = pool.threads().min(rows).min(MAX_SUM_TASKS);
    let partial: [std::sync::atomic::AtomicU32; MAX_SUM_TASKS] = std::array::from_fn(|_| std::sync::atomic::AtomicU32::new(0));
    pool.run(tasks, &|t| {
        let s = f(rows * t / tasks..rows * (t + 1) / tasks);
        partial[t].store(s.to_bits(), std::sync::atomic::Ordering::Relaxed);
    });
    partial[..tasks].iter().map(|p| f32::from_bits(p.load(std::sync::atomic::Ordering::Relaxed))).sum()
}

/// Runs `f` over chunks of the arena in parallel when it is large.
pub(super) fn for_chunks(n: usize, f: impl Fn(Range<usize>) + Sync) {
    let pool = pool::global();
    if n < PARALLEL_MIN_ELEMS || pool.threads() == 1 {
        f(0..n);
        return;
    }
    let tasks = pool.threads();
    // Chunk borders on multiples of 16 keep each task's vectors aligned to the arena.
    pool.run(tasks, &|t| f(((n * t / tasks) & !15)..if t + 1 == tasks { n } else { (n * (t + 1) / tasks) & !15 }));
}

/// `v *= factor` (see `Backend::scale`).
pub fn scale(v: &mut [f32], factor: f32) {
    let vr = Rows::new(v, 1);
    for_chunks(vr.len, |c| {
        // SAFETY: chunks are disjoint.
        scale_chunk(unsafe { vr.rows(&c) }, factor);
    });
}

/// The sum of squares, accumulated in blocks in a fixed order (the result does not depend on
/// the thread count).
pub fn sum_squares(v: &[f32]) -> f32 {
    v.chunks(1 << 12).map(sum_squares_block).sum()
}

simd_fn!(fn scale_chunk / scale_chunk_at(v: &mut [f32], factor: f32) => scale_impl);
simd_fn!(fn sum_squares_block / sum_squares_block_at(v: &[f32]) -> f32 => sum_squares_impl);

#[inline(always)]
fn scale_impl<S: Simd>(_s: S, v: &mut [f32], factor: f32) {
    for v in v.iter_mut() {
        *v *= factor;
    }
}

#[inline(always)]
fn sum_squares_impl<S: Simd>(_s: S, v: &[f32]) -> f32 {
    // Sixteen partial sums let the compiler keep them in vector lanes.
    let mut acc = [0.0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x * x;
    }
    acc.iter().sum()
}

/// Per-column mean and biased variance of a `rows x cols` row-major matrix (two passes).
pub fn moments(n: &Norm, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
    let (rows, cols) = (n.rows, n.cols);
    let x = &x[..rows * cols];
    let (mp, vp) = (Rows::new(&mut mean[..cols], 1), Rows::new(&mut var[..cols], 1));
    per_column_block(rows, cols, &|c0, c1| {
        // SAFETY: column blocks are disjoint.
        let (m, v) = unsafe { (mp.rows(&(c0..c1)), vp.rows(&(c0..c1))) };
        moments_block(x, cols, c0, m, v);
    });
}

/// Runs `f(c0, c1)` over blocks of the `cols` columns of a `rows x cols` matrix, split over the
/// thread pool when the matrix is large: each column's work (a pass over the rows, in row
/// order) is the same whatever the split, so the results do not depend on the thread count.
fn per_column_block(rows: usize, cols: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let pool = pool::global();
    // Blocks of whole 16-float vectors (one cache line per row).
    let blocks = cols.div_ceil(16);
    if rows * cols < PARALLEL_MIN_ELEMS || pool.threads() == 1 || blocks < 2 {
        f(0, cols);
        return;
    }
    let tasks = pool.threads().min(blocks);
    pool.run(tasks, &|t| {
        let (b0, b1) = (blocks * t / tasks, blocks * (t + 1) / tasks);
        if b0 < b1 {
            f(b0 * 16, (b1 * 16).min(cols));
        }
    });
}

simd_fn!(fn moments_block / moments_block_at(x: &[f32], cols: usize, c0: usize, mean: &mut [f32], var: &mut [f32]) => moments_impl);

/// Loads `n <= LANES` floats from `p`: a whole vector, or the first `n` lanes (the rest zero).
#[inline(always)]
unsafe fn load_n<S: Simd>(s: S, p: *const f32, n: usize) -> S::V {
    // SAFETY: the caller vouches for `n` floats at `p`.
    unsafe { if n == S::LANES { s.load(p) } else { s.load_part(p, n) } }
}

/// Stores the first `n <= LANES` lanes of `v` at `p`.
#[inline(always)]
unsafe fn store_n<S: Simd>(s: S, p: *mut f32, v: S::V, n: usize) {
    // SAFETY: the caller vouches for `n` floats at `p`.
    unsafe { if n == S::LANES { s.store(p, v) } else { s.store_part(p, v, n) } }
}

/// Mean and biased variance of columns `c0..c0 + mean.len()` (two passes, rows in order).
#[inline(always)]
fn moments_impl<S: Simd>(s: S, x: &[f32], cols: usize, c0: usize, mean: &mut [f32], var: &mut [f32]) {
    let (w, rows) = (mean.len(), x.len() / cols.max(1));
    assert!(var.len() == w && c0 + w <= cols && x.len() == rows * cols);
    // The plain loops divide by the row count (not multiply by its inverse): so does this.
    let count = rows as f32;
    let mut k = 0;
    while k < w {
        let l = S::LANES.min(w - k);
        // SAFETY: `l` floats from column `c0 + k` of each row, and from `k` of `mean` and `var`.
        unsafe {
            let mut m = s.splat(0.0);
            for r in 0..rows {
                m = s.add(m, load_n(s, x.as_ptr().add(r * cols + c0 + k), l));
            }
            m = s.div(m, s.splat(count));
            store_n(s, mean.as_mut_ptr().add(k), m, l);
            let mut v = s.splat(0.0);
            for r in 0..rows {
                let d = s.sub(load_n(s, x.as_ptr().add(r * cols + c0 + k), l), m);
                v = s.add(v, s.mul(d, d));
            }
            store_n(s, var.as_mut_ptr().add(k), s.div(v, s.splat(count)), l);
        }
        k += l;
    }
}

/// `moving = moving * momentum + value * (1 - momentum)`.
pub fn moving_average(momentum: f32, moving: &mut [f32], value: &[f32]) {
    for (m, &v) in moving.iter_mut().zip(value) {
        *m = *m * momentum + v * (1.0 - momentum);
    }
}

/// `max(sqrt(var), epsilon)`, as Keras computes it; NaN stays NaN (`jnp.maximum` propagates it).
fn deviation(var: f32, epsilon: f32) -> f32 {
    let d = var.sqrt();
    if d < epsilon { epsilon } else { d }
}

/// `Normalization`'s forward pass (see `NormOps::standardize`).
pub fn standardize(s: &Standardize, x: &[f32], mean: &[f32], var: &[f32], y: &mut [f32]) {
    let &Standardize { len, features, inner, epsilon, invert } = s;
    for (i, (y, &x)) in y[..len].iter_mut().zip(&x[..len]).enumerate() {
        let c = (i / inner) % features;
        let d = deviation(var[c], epsilon);
        *y = if invert { mean[c] + x * d } else { (x - mean[c]) / d };
    }
}

/// `Normalization`'s input gradient (see `NormOps::standardize_backward`).
pub fn standardize_backward(s: &Standardize, var: &[f32], dy: &[f32], dx: &mut [f32]) {
    let &Standardize { len, features, inner, epsilon, invert } = s;
    for (i, (dx, &g)) in dx[..len].iter_mut().zip(&dy[..len]).enumerate() {
        let d = deviation(var[(i / inner) % features], epsilon);
        *dx = if invert { g * d } else { g / d };
    }
}

/// `y = x * scale + offset` (see `NormOps::rescale`).
pub fn rescale(r: &Rescale, x: &[f32], y: &mut [f32]) {
    let &Rescale { len, scale, offset } = r;
    for (y, &x) in y[..len].iter_mut().zip(&x[..len]) {
        *y = x * scale + offset;
    }
}

/// Batch normalization (see `NormOps::batch_norm`); `var` becomes `1 / sqrt(var + epsilon)`.
pub fn batch_norm(n: &Norm, x: &[f32], mean: &[f32], var: &mut [f32], affine: Affine<&[f32]>, y: &mut [f32]) {
    let &Norm { rows, cols, epsilon } = n;
    let (x, mean, var, y) = (&x[..rows * cols], &mean[..cols], &mut var[..cols], &mut y[..rows * cols]);
    let affine = Affine { gamma: affine.gamma.map(|g| &g[..cols]), beta: affine.beta.map(|b| &b[..cols]) };
    for v in var.iter_mut() {
        *v = 1.0 / (*v + epsilon).sqrt();
    }
    let (var, yr) = (&*var, Rows::new(y, cols));
    for_rows(rows, cols, |r| {
        // SAFETY: row ranges are disjoint.
        batch_norm_rows(&x[r.start * cols..r.end * cols], mean, var, affine, unsafe { yr.rows(&r) });
    });
}

simd_fn!(fn batch_norm_rows / batch_norm_rows_at(x: &[f32], mean: &[f32], inv: &[f32], affine: Affine<&[f32]>, y: &mut [f32]) => batch_norm_impl);

/// JAX's order: `inv = rsqrt(var + eps) * gamma`, `res = -mean * inv + beta`, `y = x * inv + res`.
#[inline(always)]
fn batch_norm_impl<S: Simd>(s: S, x: &[f32], mean: &[f32], inv: &[f32], affine: Affine<&[f32]>, y: &mut [f32]) {
    let cols = mean.len();
    let Affine { gamma, beta } = affine;
    assert!(inv.len() >= cols && gamma.is_none_or(|g| g.len() >= cols) && beta.is_none_or(|b| b.len() >= cols));
    assert!(x.len() == y.len() && x.len().is_multiple_of(cols.max(1)));
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let mut k = 0;
        while k < cols {
            let l = S::LANES.min(cols - k);
            // SAFETY: `l` floats from `k` of a row and of the per-column vectors.
            unsafe {
                let one = s.splat(1.0);
                let scale = s.mul(load_n(s, inv.as_ptr().add(k), l), gamma.map_or(one, |g| load_n(s, g.as_ptr().add(k), l)));
                // `-0 - mean` is `-mean` (for a zero mean too).
                let neg_mean = s.sub(s.splat(-0.0), load_n(s, mean.as_ptr().add(k), l));
                let res = s.add(s.mul(neg_mean, scale), beta.map_or(s.splat(0.0), |b| load_n(s, b.as_ptr().add(k), l)));
                store_n(s, yr.as_mut_ptr().add(k), s.add(s.mul(load_n(s, xr.as_ptr().add(k), l), scale), res), l);
            }
            k += l;
        }
    }
}

/// The backward pass of batch normalization in training (see `NormOps::batch_norm_backward`).
pub fn batch_norm_backward(
    nm: &Norm,
    x: &[f32],
    dy: &[f32],
    stats: BatchStats<&[f32]>,
    gamma: Option<&[f32]>,
    grads: NormGrads<&mut [f32]>,
) {
    let (rows, cols) = (nm.rows, nm.cols);
    let (x, dy) = (&x[..rows * cols], &dy[..rows * cols]);
    let stats = BatchStats { mean: &stats.mean[..cols], inv: &stats.inv[..cols] };
    let gamma = gamma.map(|g| &g[..cols]);
    let NormGrads { dgamma, dbeta, dx } = grads;
    let dgamma = dgamma.map(|g| Rows::new(&mut g[..cols], 1));
    let dbeta = dbeta.map(|b| Rows::new(&mut b[..cols], 1));
    let dx = dx.map(|d| Rows::new(&mut d[..rows * cols], 1));
    per_column_block(rows, cols, &|c0, c1| {
        // Columns in blocks whose two sums live on the stack: nothing is allocated.
        const BLOCK: usize = 64;
        for b0 in (c0..c1).step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(c1);
            let (mut sum_dy, mut sum_dy_xhat) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
            let (sum_dy, sum_dy_xhat) = (&mut sum_dy[..b1 - b0], &mut sum_dy_xhat[..b1 - b0]);
            batch_norm_sums(x, dy, cols, b0, stats, sum_dy, sum_dy_xhat);
            // SAFETY: column blocks are disjoint, so are these ranges of `dgamma` and `dbeta`.
            if let Some(dg) = dgamma {
                unsafe { dg.rows(&(b0..b1)) }.copy_from_slice(sum_dy_xhat);
            }
            if let Some(db) = dbeta {
                unsafe { db.rows(&(b0..b1)) }.copy_from_slice(sum_dy);
            }
            if let Some(dx) = dx {
                batch_norm_dx(x, dy, cols, b0, stats, gamma, sum_dy, sum_dy_xhat, dx);
            }
        }
    });
}

simd_fn!(fn batch_norm_sums / batch_norm_sums_at(x: &[f32], dy: &[f32], cols: usize, c0: usize, stats: BatchStats<&[f32]>, sum_dy: &mut [f32], sum_dy_xhat: &mut [f32]) => batch_norm_sums_impl);

/// `Σ dy` and `Σ dy · x̂` over the rows (in order) of columns `c0..c0 + sum_dy.len()`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn batch_norm_sums_impl<S: Simd>(
    s: S,
    x: &[f32],
    dy: &[f32],
    cols: usize,
    c0: usize,
    stats: BatchStats<&[f32]>,
    sum_dy: &mut [f32],
    sum_dy_xhat: &mut [f32],
) {
    let (w, rows) = (sum_dy.len(), x.len() / cols.max(1));
    let BatchStats { mean, inv } = stats;
    assert!(sum_dy_xhat.len() == w && c0 + w <= cols && x.len() == rows * cols && dy.len() == x.len());
    assert!(mean.len() >= c0 + w && inv.len() >= c0 + w);
    let mut k = 0;
    while k < w {
        let l = S::LANES.min(w - k);
        let c = c0 + k;
        // SAFETY: `l` floats from column `c` of each row and of the statistics, from `k` of the sums.
        unsafe {
            let (m, iv) = (load_n(s, mean.as_ptr().add(c), l), load_n(s, inv.as_ptr().add(c), l));
            let (mut sd, mut sx) = (s.splat(0.0), s.splat(0.0));
            for r in 0..rows {
                let g = load_n(s, dy.as_ptr().add(r * cols + c), l);
                let xhat = s.mul(s.sub(load_n(s, x.as_ptr().add(r * cols + c), l), m), iv);
                sd = s.add(sd, g);
                sx = s.add(sx, s.mul(g, xhat));
            }
            store_n(s, sum_dy.as_mut_ptr().add(k), sd, l);
            store_n(s, sum_dy_xhat.as_mut_ptr().add(k), sx, l);
        }
        k += l;
    }
}

// `dx` is the whole `rows x cols` gradient; a call writes columns `c0..c0 + sum_dy.len()` of it
// only, so calls on disjoint column blocks may run at once.
simd_fn!(fn batch_norm_dx / batch_norm_dx_at(x: &[f32], dy: &[f32], cols: usize, c0: usize, stats: BatchStats<&[f32]>, gamma: Option<&[f32]>, sum_dy: &[f32], sum_dy_xhat: &[f32], dx: Rows) => batch_norm_dx_impl);

/// `dx = γ · inv / n · (n · dy − Σ dy − x̂ · Σ dy · x̂)` for columns `c0..c0 + sum_dy.len()` of
/// every row of the `cols`-wide matrix at `dx`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn batch_norm_dx_impl<S: Simd>(
    s: S,
    x: &[f32],
    dy: &[f32],
    cols: usize,
    c0: usize,
    stats: BatchStats<&[f32]>,
    gamma: Option<&[f32]>,
    sum_dy: &[f32],
    sum_dy_xhat: &[f32],
    dx: Rows,
) {
    let (w, rows) = (sum_dy.len(), x.len() / cols.max(1));
    assert!(dx.len >= rows * cols && c0 + w <= cols && x.len() == rows * cols && dy.len() == x.len());
    let BatchStats { mean, inv } = stats;
    assert!(sum_dy_xhat.len() >= w && mean.len() >= c0 + w && inv.len() >= c0 + w && gamma.is_none_or(|g| g.len() >= c0 + w));
    let n = s.splat(rows as f32);
    let mut k = 0;
    while k < w {
        let l = S::LANES.min(w - k);
        let c = c0 + k;
        // SAFETY: `l` floats from column `c` of each row (of `x`, `dy` and `dx`, all `rows x cols`)
        // and of the per-column vectors; no other call writes these columns of `dx` meanwhile
        // (see `batch_norm_backward`).
        unsafe {
            let (m, iv) = (load_n(s, mean.as_ptr().add(c), l), load_n(s, inv.as_ptr().add(c), l));
            let g = gamma.map_or(s.splat(1.0), |g| load_n(s, g.as_ptr().add(c), l));
            let (sd, sx) = (load_n(s, sum_dy.as_ptr().add(k), l), load_n(s, sum_dy_xhat.as_ptr().add(k), l));
            let coef = s.div(s.mul(g, iv), n);
            for r in 0..rows {
                let at = r * cols + c;
                let xhat = s.mul(s.sub(load_n(s, x.as_ptr().add(at), l), m), iv);
                let t = s.sub(s.sub(s.mul(n, load_n(s, dy.as_ptr().add(at), l)), sd), s.mul(xhat, sx));
                store_n(s, dx.ptr.add(at), s.mul(coef, t), l);
            }
        }
        k += l;
    }
}

/// Layer normalization (see `NormOps::layer_norm`).
pub fn layer_norm(nm: &Norm, x: &[f32], affine: Affine<&[f32]>, y: &mut [f32], stats: &mut [f32]) {
    let &Norm { rows, cols, epsilon } = nm;
    let Affine { gamma, beta } = affine;
    let (x, y, stats) = (&x[..rows * cols], &mut y[..rows * cols], &mut stats[..2 * rows]);
    let n = cols as f32;
    for ((xr, yr), st) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)).zip(stats.chunks_exact_mut(2)) {
        let mean = xr.iter().sum::<f32>() / n;
        let var = xr.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + epsilon).sqrt();
        for c in 0..cols {
            let scale = inv * gamma.map_or(1.0, |g| g[c]);
            yr[c] = xr[c] * scale + (-mean * scale + beta.map_or(0.0, |b| b[c]));
        }
        st[0] = mean;
        st[1] = inv;
    }
}

/// The backward pass of layer normalization (see `NormOps::layer_norm_backward`).
pub fn layer_norm_backward(nm: &Norm, x: &[f32], dy: &[f32], stats: &[f32], gamma: Option<&[f32]>, grads: NormGrads<&mut [f32]>) {
    let (rows, cols) = (nm.rows, nm.cols);
    let (x, dy, stats) = (&x[..rows * cols], &dy[..rows * cols], &stats[..2 * rows]);
    let NormGrads { mut dgamma, mut dbeta, mut dx } = grads;
    let n = cols as f32;
    if let Some(dg) = dgamma.as_deref_mut() {
        dg[..cols].fill(0.0);
    }
    if let Some(db) = dbeta.as_deref_mut() {
        db[..cols].fill(0.0);
    }
    for (r, ((xr, gr), st)) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(stats.chunks_exact(2)).enumerate() {
        let (mean, inv) = (st[0], st[1]);
        let (mut sum_g, mut sum_g_xhat) = (0.0f32, 0.0f32);
        for c in 0..cols {
            let xhat = (xr[c] - mean) * inv;
            let g = gr[c] * gamma.map_or(1.0, |g| g[c]);
            sum_g += g;
            sum_g_xhat += g * xhat;
            if let Some(dg) = dgamma.as_deref_mut() {
                dg[c] += gr[c] * xhat;
            }
            if let Some(db) = dbeta.as_deref_mut() {
                db[c] += gr[c];
            }
        }
        if let Some(dx) = dx.as_deref_mut() {
            let dr = &mut dx[r * cols..(r + 1) * cols];
            for c in 0..cols {
                let xhat = (xr[c] - mean) * inv;
                let g = gr[c] * gamma.map_or(1.0, |g| g[c]);
                dr[c] = inv / n * (n * g - sum_g - xhat * sum_g_xhat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batch-normalization kernels as plain loops (what they were before they were
    /// vectorized and split over threads): the kernels must give the same bits.
    mod plain {
        pub fn moments(rows: usize, cols: usize, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
            let (mut mean, mut var) = (vec![0.0f32; cols], vec![0.0f32; cols]);
            for row in x.chunks_exact(cols) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            mean.iter_mut().for_each(|m| *m /= rows as f32);
            for row in x.chunks_exact(cols) {
                for ((s, &v), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
                    *s += (v - m) * (v - m);
                }
            }
            var.iter_mut().for_each(|s| *s /= rows as f32);
            (mean, var)
        }

        pub fn batch_norm(cols: usize, x: &[f32], mean: &[f32], inv: &[f32], gamma: Option<&[f32]>, beta: Option<&[f32]>) -> Vec<f32> {
            let mut y = vec![0.0f32; x.len()];
            for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
                for c in 0..cols {
                    let scale = inv[c] * gamma.map_or(1.0, |g| g[c]);
                    yr[c] = xr[c] * scale + (-mean[c] * scale + beta.map_or(0.0, |b| b[c]));
                }
            }
            y
        }

        pub fn backward(
            rows: usize,
            cols: usize,
            x: &[f32],
            dy: &[f32],
            mean: &[f32],
            inv: &[f32],
            gamma: Option<&[f32]>,
        ) -> [Vec<f32>; 3] {
            let (mut sum_dy, mut sum_dy_xhat) = (vec![0.0f32; cols], vec![0.0f32; cols]);
            for (xr, gr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)) {
                for c in 0..cols {
                    sum_dy[c] += gr[c];
                    sum_dy_xhat[c] += gr[c] * ((xr[c] - mean[c]) * inv[c]);
                }
            }
            let n = rows as f32;
            let mut dx = vec![0.0f32; x.len()];
            for ((xr, gr), dr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
                for c in 0..cols {
                    let g = gamma.map_or(1.0, |g| g[c]);
                    let xhat = (xr[c] - mean[c]) * inv[c];
                    dr[c] = g * inv[c] / n * (n * gr[c] - sum_dy[c] - xhat * sum_dy_xhat[c]);
                }
            }
            [sum_dy_xhat, sum_dy, dx]
        }
    }

    /// Batch normalization's statistics, forward and backward give the plain loops' bits, on one
    /// thread and split over the pool, with and without scale and offset, at column counts on
    /// and off the vector widths.
    #[test]
    fn batch_norm_kernels_are_the_plain_loops() {
        for (rows, cols) in [(3, 5), (40, 16), (37, 70), (2000, 19), (600, 256), (150, 1000)] {
            // Column 0 all zeros, with offset -0: the signs of zero must match too.
            let x: Vec<f32> = (0..rows * cols).map(|i| if i % cols == 0 { 0.0 } else { ((i * 37 % 101) as f32 - 50.0) / 13.0 }).collect();
            let dy: Vec<f32> = (0..rows * cols).map(|i| ((i * 53 % 89) as f32 - 44.0) / 29.0).collect();
            let gamma: Vec<f32> = (0..cols).map(|c| 0.5 + c as f32 / cols as f32).collect();
            let beta: Vec<f32> = (0..cols).map(|c| if c == 0 { -0.0 } else { c as f32 / 7.0 - 1.0 }).collect();
            let n = Norm { rows, cols, epsilon: 1e-3 };
            let (mut mean, mut var) = (vec![0.0; cols], vec![0.0; cols]);
            moments(&n, &x, &mut mean, &mut var);
            let (pm, pv) = plain::moments(rows, cols, &x);
            assert_eq!((&mean, &var), (&pm, &pv), "moments {rows}x{cols}");
            for (g, b) in [(Some(&gamma[..]), Some(&beta[..])), (None, None), (None, Some(&beta[..]))] {
                let mut inv = var.clone();
                let mut y = vec![0.0; rows * cols];
                batch_norm(&n, &x, &mean, &mut inv, Affine { gamma: g, beta: b }, &mut y);
                let want = plain::batch_norm(cols, &x, &mean, &inv, g, b);
                assert!(y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "batch_norm {rows}x{cols}");
                let (mut dg, mut db, mut dx) = (vec![0.0; cols], vec![0.0; cols], vec![0.0; rows * cols]);
                let stats = BatchStats { mean: &mean[..], inv: &inv[..] };
                batch_norm_backward(&n, &x, &dy, stats, g, NormGrads { dgamma: Some(&mut dg), dbeta: Some(&mut db), dx: Some(&mut dx) });
                assert_eq!([dg, db, dx], plain::backward(rows, cols, &x, &dy, &mean, &inv, g), "backward {rows}x{cols}");
            }
        }
        // Each SIMD level alone, on one block of columns.
        let (rows, cols) = (9, 37);
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
        let (pm, pv) = plain::moments(rows, cols, &x);
        for level in [simd::Level::Avx512, simd::Level::Avx2, simd::Level::Scalar].into_iter().filter(|l| simd::supported(*l)) {
            let (mut mean, mut var) = (vec![0.0; cols], vec![0.0; cols]);
            // SAFETY: this CPU supports `level`.
            unsafe { moments_block_at(level, &x, cols, 0, &mut mean, &mut var) };
            assert_eq!((&mean, &var), (&pm, &pv), "moments at {level:?}");
        }
    }

    #[test]
    fn bias_act_matches_scalar_definitions() {
        for (rows, cols) in [(70, 37), (9, 3)] {
            bias_act_case(rows, cols);
        }
    }

    fn bias_act_case(rows: usize, cols: usize) {
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 37) % 101) as f32 * 0.13 - 6.5).collect();
        let bias: Vec<f32> = (0..cols).map(|j| j as f32 * 0.01 - 0.2).collect();
        for &(_, act) in Activation::NAMES {
            let mut y = x.clone();
            let mut pre = vec![0.0; rows * cols];
            bias_act(&BiasAct { rows, cols, act }, &mut y, Some(&bias), Some(&mut pre));
            for r in 0..rows {
                let z: Vec<f32> = (0..cols).map(|j| x[r * cols + j] + bias[j]).collect();
                let want: Vec<f32> = if act == Activation::Softmax {
                    let m = z.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f64> = z.iter().map(|v| ((v - m) as f64).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.iter().map(|v| (v / s) as f32).collect()
                } else {
                    z.iter().map(|&v| activation::apply(act, v)).collect()
                };
                for j in 0..cols {
                    let (got, w) = (y[r * cols + j], want[j]);
                    assert!((got - w).abs() <= 2e-6 * w.abs().max(1e-3), "{act:?} at ({r},{j}): {got} vs {w}");
                    assert_eq!(pre[r * cols + j], z[j]);
                }
            }
        }
    }

    /// NaN and infinities through every activation at every SIMD level this CPU has, in rows
    /// narrower than a vector, one vector wide, and with a tail: NaN stays NaN, an infinity gives
    /// the scalar definition's value (whose Keras values `activation`'s tests pin), and every
    /// other value is bit for bit what it is in a row without them; softmax makes a row with a
    /// NaN or an infinity NaN and leaves the others alone. The backward pass over the same rows
    /// gives NaN entries the scalar derivative's gradient (JAX's) and the rest their usual one.
    #[test]
    fn nan_and_infinities_at_every_level() {
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        for level in [simd::Level::Scalar, simd::Level::Avx2, simd::Level::Avx512] {
            if !simd::supported(level) {
                continue;
            }
            for cols in [3, 8, 16, 37] {
                let rows = 3;
                let clean: Vec<f32> = (0..rows * cols).map(|i| ((i * 37) % 101) as f32 * 0.13 - 6.5).collect();
                let mut x = clean.clone();
                // Row 0 a NaN, row 1 both infinities, row 2 none.
                (x[1], x[cols], x[2 * cols - 1]) = (nan, inf, -inf);
                for &(_, act) in Activation::NAMES {
                    let what = format!("{level:?} {act:?} over rows of {cols}");
                    let (mut y, mut yc) = (x.clone(), clean.clone());
                    // SAFETY: this CPU supports `level`.
                    unsafe {
                        bias_act_rows_at(level, &mut y, None, None, cols, act);
                        bias_act_rows_at(level, &mut yc, None, None, cols, act);
                    }
                    for (i, (&got, &x)) in y.iter().zip(&x).enumerate() {
                        let want = if act == Activation::Softmax {
                            if i < 2 * cols { nan } else { yc[i] }
                        } else if x.is_infinite() {
                            activation::apply(act, x)
                        } else {
                            yc[i]
                        };
                        let want = if x.is_nan() { nan } else { want };
                        assert!(same(got, want), "{what}: element {i} (x = {x}) is {got}, expected {want}");
                    }
                    let g0: Vec<f32> = (0..rows * cols).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
                    let (mut g, mut gc) = (g0.clone(), g0.clone());
                    // SAFETY: this CPU supports `level`.
                    unsafe {
                        act_backward_rows_at(level, &mut g, &y, Some(&x), cols, act);
                        act_backward_rows_at(level, &mut gc, &yc, Some(&clean), cols, act);
                    }
                    for (i, (&got, &x)) in g.iter().zip(&x).enumerate() {
                        let want = if act == Activation::Softmax {
                            if i < 2 * cols { nan } else { gc[i] }
                        } else if x.is_nan() {
                            g0[i] * activation::derivative(act, x, y[i])
                        } else if x.is_infinite() {
                            continue;
                        } else {
                            gc[i]
                        };
                        assert!(same(got, want), "{what}, backward: element {i} (x = {x}) is {got}, expected {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn act_backward_and_bias_gradient() {
        let (rows, cols) = (300, 130);
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 29) % 97) as f32 * 0.07 - 3.3).collect();
        for &(_, act) in Activation::NAMES {
            let mut y = x.clone();
            bias_act(&BiasAct { rows, cols, act }, &mut y, None, None);
            let g0: Vec<f32> = (0..rows * cols).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
            let mut g = g0.clone();
            let mut db = vec![0.0; cols];
            act_backward(&BiasAct { rows, cols, act }, &mut g, &y, Some(&x), Some(&mut db));
            for r in (0..rows).step_by(37) {
                let row = r * cols..(r + 1) * cols;
                let want: Vec<f32> = if act == Activation::Softmax {
                    let dot: f32 = g0[row.clone()].iter().zip(&y[row.clone()]).map(|(a, b)| a * b).sum();
                    y[row.clone()].iter().zip(&g0[row.clone()]).map(|(y, g)| y * (g - dot)).collect()
                } else {
                    row.clone().map(|i| g0[i] * activation::derivative(act, x[i], y[i])).collect()
                };
                for (j, w) in want.iter().enumerate() {
                    assert!((g[r * cols + j] - w).abs() <= 1e-5 * w.abs().max(1e-2), "{act:?}");
                }
            }
            for j in 0..cols {
                let s: f32 = (0..rows).map(|r| g[r * cols + j]).sum();
                assert!((db[j] - s).abs() <= 1e-4 * s.abs().max(1.0), "{act:?} dbias[{j}] {} vs {s}", db[j]);
            }
        }
    }
}
