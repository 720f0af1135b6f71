//! Elementwise, row-wise and reduction kernels of the CPU backend.
//!
//! Rows are spread over the thread pool when a matrix is large enough to pay for it; column
//! sums always add rows in order, so results do not depend on the thread count.

use super::pool;
use super::simd::{self, Simd, simd_fn};
use crate::activations::Activation;
use crate::losses::LossConfig;
use crate::metrics::AccuracyKind;
use std::ops::Range;

/// Matrices with fewer elements than this run on the calling thread.
const PARALLEL_MIN_ELEMS: usize = 1 << 15;

/// A mutable slice handed to pool tasks, which take disjoint row ranges of it.
#[derive(Clone, Copy)]
struct Rows {
    ptr: *mut f32,
    len: usize,
    cols: usize,
}
// SAFETY: tasks only touch disjoint row ranges (see `rows`).
unsafe impl Send for Rows {}
unsafe impl Sync for Rows {}

impl Rows {
    fn new(s: &mut [f32], cols: usize) -> Rows {
        Rows { ptr: s.as_mut_ptr(), len: s.len(), cols }
    }

    /// Rows `r` as a slice.
    ///
    /// # Safety
    /// No two live slices from this `Rows` may overlap.
    unsafe fn rows<'x>(&self, r: &Range<usize>) -> &'x mut [f32] {
        let (a, b) = (r.start * self.cols, r.end * self.cols);
        assert!(b <= self.len);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(a), b - a) }
    }
}

/// Runs `f` over row ranges covering `0..rows`, in parallel when the matrix is large.
fn for_rows(rows: usize, cols: usize, f: impl Fn(Range<usize>) + Sync) {
    let pool = pool::global();
    if rows * cols < PARALLEL_MIN_ELEMS || rows < 2 || pool.threads() == 1 {
        f(0..rows);
        return;
    }
    let tasks = pool.threads().min(rows);
    pool.run(tasks, &|t| f(rows * t / tasks..rows * (t + 1) / tasks));
}

/// `y = act(y + bias)` per row, saving `y + bias` in `pre` when given.
pub fn bias_act(y: &mut [f32], bias: Option<&[f32]>, pre: Option<&mut [f32]>, rows: usize, cols: usize, act: Activation) {
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
                    *v = a.apply(*v);
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

/// `g *= act'(x)` per row; `dbias` gets the column sums of the result.
#[allow(clippy::too_many_arguments)]
pub fn act_backward(g: &mut [f32], y: &[f32], pre: Option<&[f32]>, rows: usize, cols: usize, act: Activation, dbias: Option<&mut [f32]>) {
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
                    *g *= a.derivative(x, y);
                }
            }
            None => {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g *= a.derivative(0.0, y);
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
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Inverted dropout with a counter-based generator: element `i` is kept when the uniform number
/// drawn from `(seed, stream, i)` is at least `rate`.
pub fn dropout(x: &[f32], y: &mut [f32], mask: &mut [f32], rate: f32, seed: u64, stream: u64) {
    let keep = 1.0 - rate;
    let key = mix(seed ^ mix(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    for (i, ((y, m), &x)) in y.iter_mut().zip(mask.iter_mut()).zip(x).enumerate() {
        let u = (mix(key.wrapping_add(i as u64)) >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        let kept = u >= rate;
        *m = kept as u8 as f32;
        *y = if kept { x / keep } else { 0.0 };
    }
}

/// The backward pass of [`dropout`].
pub fn dropout_backward(g: &[f32], mask: &[f32], dx: &mut [f32], rate: f32) {
    let keep = 1.0 - rate;
    for ((dx, &m), &g) in dx.iter_mut().zip(mask).zip(g) {
        *dx = if m != 0.0 { g / keep } else { 0.0 };
    }
}

/// The batch loss (see `Backend::loss`): rows spread over the pool when the batch is large,
/// their partial sums added in task order.
#[allow(clippy::too_many_arguments)]
pub fn loss(
    loss: LossConfig,
    pred: &[f32],
    target: &[f32],
    weights: Option<&[f32]>,
    grad: Option<&mut [f32]>,
    rows: usize,
    cols: usize,
    stats: &mut [f32],
) {
    let tcols = if loss.sparse_targets() { 1 } else { cols };
    assert!(pred.len() >= rows * cols && target.len() >= rows * tcols);
    assert!(weights.is_none_or(|w| !w.is_empty() && rows.is_multiple_of(w.len())), "one weight per sample");
    let binary = loss.binary_targets(&target[..rows * tcols]);
    // A sample of a 3-D output has several loss rows, all with the sample's weight.
    let per_sample = weights.map_or(1, |w| rows / w.len().max(1));
    let scale = 1.0 / rows as f32;
    let gr = grad.map(|g| {
        assert!(g.len() >= rows * cols);
        Rows::new(&mut g[..rows * cols], cols)
    });
    let sum = sum_over_rows(rows, cols, |r| {
        let mut s = 0.0f32;
        // SAFETY: each task has its own row range.
        let mut g = gr.map(|g| unsafe { g.rows(&r) });
        for (k, i) in r.enumerate() {
            let (p, t) = (&pred[i * cols..(i + 1) * cols], &target[i * tcols..(i + 1) * tcols]);
            let g = g.as_deref_mut().map(|g| &mut g[k * cols..(k + 1) * cols]);
            match weights {
                None => s += loss.sample(p, t, g, scale, binary),
                Some(w) => {
                    let w = w[i / per_sample];
                    s += w * loss.sample(p, t, g, scale * w, binary);
                }
            }
        }
        s
    });
    let mean = sum / rows as f32;
    stats[0] += mean * rows as f32;
    stats[1] += rows as f32;
}

/// The most tasks [`sum_over_rows`] splits a matrix into.
const MAX_SUM_TASKS: usize = 64;

/// `f` over row ranges covering `0..rows` (in parallel when the matrix is large), and the sum
/// of its results in row order, so that the total does not depend on scheduling.
fn sum_over_rows(rows: usize, cols: usize, f: impl Fn(Range<usize>) -> f32 + Sync) -> f32 {
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

/// The batch accuracy (see `Backend::accuracy`).
pub fn accuracy(kind: AccuracyKind, pred: &[f32], target: &[f32], rows: usize, cols: usize, stats: &mut [f32]) {
    let tcols = if kind == AccuracyKind::Sparse { 1 } else { cols };
    let mut sum = 0.0f32;
    for r in 0..rows {
        sum += kind.sample(&pred[r * cols..(r + 1) * cols], &target[r * tcols..(r + 1) * tcols]);
    }
    stats[0] += sum;
    stats[1] += rows as f32;
}

/// Runs `f` over chunks of the arena in parallel when it is large.
fn for_chunks(n: usize, f: impl Fn(Range<usize>) + Sync) {
    let pool = pool::global();
    if n < PARALLEL_MIN_ELEMS || pool.threads() == 1 {
        f(0..n);
        return;
    }
    let tasks = pool.threads();
    // Chunk borders on multiples of 16 keep each task's vectors aligned to the arena.
    pool.run(tasks, &|t| f(((n * t / tasks) & !15)..if t + 1 == tasks { n } else { (n * (t + 1) / tasks) & !15 }));
}

/// SGD (see `Backend::sgd`).
pub fn sgd(w: &mut [f32], g: &[f32], velocity: Option<&mut [f32]>, lr: f32, momentum: f32, nesterov: bool) {
    let n = w.len();
    assert!(g.len() == n);
    let wr = Rows::new(w, 1);
    let vr = velocity.map(|v| {
        assert!(v.len() == n);
        Rows::new(v, 1)
    });
    for_chunks(n, |c| {
        // SAFETY: chunks are disjoint.
        let w = unsafe { wr.rows(&c) };
        let g = &g[c.clone()];
        match vr {
            None => sgd_plain(w, g, lr),
            Some(vr) => sgd_momentum(w, g, unsafe { vr.rows(&c) }, lr, momentum, nesterov),
        }
    });
}

simd_fn!(fn sgd_plain / sgd_plain_at(w: &mut [f32], g: &[f32], lr: f32) => sgd_plain_impl);
simd_fn!(fn sgd_momentum / sgd_momentum_at(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, mu: f32, nesterov: bool) => sgd_momentum_impl);
simd_fn!(fn adam_chunk / adam_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32) => adam_chunk_impl);
simd_fn!(fn amsgrad_chunk / amsgrad_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], vhat: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32) => amsgrad_chunk_impl);

// The optimizer loops are plain Rust: inside the `#[target_feature]` functions `simd_fn!`
// makes, the compiler vectorizes them for the level.
//
// Optimizer state that decays towards zero (the moments of a weight whose gradient stays zero,
// such as one fed by an always-black pixel) would become subnormal, and arithmetic on subnormal
// floats is a hundred times slower on x86. States are flushed to zero below the smallest normal
// float, as XLA's flush-to-zero mode does for Keras.

/// `x`, or 0 when `|x|` is subnormal.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}
#[inline(always)]
fn sgd_plain_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], lr: f32) {
    for (w, &g) in w.iter_mut().zip(g) {
        *w -= g * lr;
    }
}

#[inline(always)]
fn sgd_momentum_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, mu: f32, nesterov: bool) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = flush(*v * mu - g * lr);
        *w += if nesterov { *v * mu - g * lr } else { *v };
    }
}

/// Adam (see `Backend::adam`).
#[allow(clippy::too_many_arguments)]
pub fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], vhat: Option<&mut [f32]>, alpha: f32, b1: f32, b2: f32, eps: f32) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n);
    let (wr, mr, vr) = (Rows::new(w, 1), Rows::new(m, 1), Rows::new(v, 1));
    let hr = vhat.map(|h| {
        assert!(h.len() == n);
        Rows::new(h, 1)
    });
    for_chunks(n, |c| {
        // SAFETY: chunks are disjoint.
        let (w, m, v) = unsafe { (wr.rows(&c), mr.rows(&c), vr.rows(&c)) };
        let g = &g[c.clone()];
        match hr {
            None => adam_chunk(w, g, m, v, alpha, b1, b2, eps),
            Some(hr) => amsgrad_chunk(w, g, m, v, unsafe { hr.rows(&c) }, alpha, b1, b2, eps),
        }
    });
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_chunk_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], alpha: f32, b1: f32, b2: f32, eps: f32) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        *w -= (*m * alpha) / (v.sqrt() + eps);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn amsgrad_chunk_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vhat: &mut [f32],
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for ((((w, &g), m), v), h) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(vhat.iter_mut()) {
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        *h = h.max(*v);
        *w -= (*m * alpha) / (h.sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            bias_act(&mut y, Some(&bias), Some(&mut pre), rows, cols, act);
            for r in 0..rows {
                let z: Vec<f32> = (0..cols).map(|j| x[r * cols + j] + bias[j]).collect();
                let want: Vec<f32> = if act == Activation::Softmax {
                    let m = z.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f64> = z.iter().map(|v| ((v - m) as f64).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.iter().map(|v| (v / s) as f32).collect()
                } else {
                    z.iter().map(|&v| act.apply(v)).collect()
                };
                for j in 0..cols {
                    let (got, w) = (y[r * cols + j], want[j]);
                    assert!((got - w).abs() <= 2e-6 * w.abs().max(1e-3), "{act:?} at ({r},{j}): {got} vs {w}");
                    assert_eq!(pre[r * cols + j], z[j]);
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
            bias_act(&mut y, None, None, rows, cols, act);
            let g0: Vec<f32> = (0..rows * cols).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
            let mut g = g0.clone();
            let mut db = vec![0.0; cols];
            act_backward(&mut g, &y, Some(&x), rows, cols, act, Some(&mut db));
            for r in (0..rows).step_by(37) {
                let row = r * cols..(r + 1) * cols;
                let want: Vec<f32> = if act == Activation::Softmax {
                    let dot: f32 = g0[row.clone()].iter().zip(&y[row.clone()]).map(|(a, b)| a * b).sum();
                    y[row.clone()].iter().zip(&g0[row.clone()]).map(|(y, g)| y * (g - dot)).collect()
                } else {
                    row.clone().map(|i| g0[i] * act.derivative(x[i], y[i])).collect()
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

    #[test]
    fn batch_loss_matches_the_row_by_row_definition() {
        use crate::losses::Loss;
        // Large enough to be spread over the pool.
        let (rows, cols) = (4096, 12);
        let pred: Vec<f32> = (0..rows * cols).map(|i| ((i * 37) % 89) as f32 / 89.0 * 0.98 + 0.01).collect();
        let target: Vec<f32> = (0..rows * cols).map(|i| ((i * 11) % 5 == 0) as u8 as f32).collect();
        let weights: Vec<f32> = (0..rows / 2).map(|i| (i % 4) as f32 * 0.5).collect();
        for config in
            [Loss::BinaryCrossentropy.config(), Loss::Hinge.config(), Loss::huber(0.3), Loss::CategoricalCrossentropy.label_smoothing(0.1)]
        {
            for w in [None, Some(&weights[..])] {
                let mut grad = vec![0.0f32; rows * cols];
                let mut stats = [0.0f32; 2];
                loss(config, &pred, &target, w, Some(&mut grad), rows, cols, &mut stats);
                let binary = config.binary_targets(&target);
                let (mut want, mut g) = (0.0f64, vec![0.0f32; cols]);
                for r in 0..rows {
                    let wr = w.map_or(1.0, |w| w[r / 2]);
                    let row = r * cols..(r + 1) * cols;
                    let l = config.sample(&pred[row.clone()], &target[row.clone()], Some(&mut g), wr / rows as f32, binary);
                    want += (wr * l) as f64;
                    assert_eq!(g, grad[row], "{config:?} gradient of row {r}");
                }
                let got = (stats[0] / stats[1]) as f64;
                assert!((got - want / rows as f64).abs() <= 1e-5 * got.abs(), "{config:?}: {got} vs {}", want / rows as f64);
                assert_eq!(stats[1], rows as f32);
            }
        }
    }

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_scales() {
        let x = vec![1.0f32; 100_000];
        let (mut y, mut mask) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        dropout(&x, &mut y, &mut mask, 0.3, 42, 7);
        let kept = mask.iter().filter(|&&m| m == 1.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
        assert!(y.iter().zip(&mask).all(|(&y, &m)| if m == 1.0 { y == 1.0 / 0.7 } else { y == 0.0 }));
        let mut again = vec![0.0; x.len()];
        dropout(&x, &mut y, &mut again, 0.3, 42, 7);
        assert_eq!(mask, again, "same seed and stream, same mask");
        dropout(&x, &mut y, &mut again, 0.3, 42, 8);
        assert_ne!(mask, again, "another stream, another mask");
    }
}
