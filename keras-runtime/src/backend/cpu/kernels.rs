//! Elementwise, row-wise and reduction kernels of the CPU backend.
//!
//! Rows are spread over the thread pool when a matrix is large enough to pay for it; column
//! sums always add rows in order, so results do not depend on the thread count.

use super::pool;
use super::simd::{self, Simd, simd_fn};
use crate::activations::Activation;
use crate::losses::LossConfig;
use crate::optimizers::{Update, UpdateRule};
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
pub(super) fn mix(mut z: u64) -> u64 {
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

/// One optimizer step (see `Backend::update`).
pub fn update(u: &Update, w: &mut [f32], g: &[f32], state: &mut [Vec<f32>]) {
    let n = w.len();
    assert!(g.len() == n && state.len() <= 3 && state.iter().all(|s| s.len() == n), "optimizer state matches the arena");
    let wr = Rows::new(w, 1);
    let mut sr = [None; 3];
    for (r, s) in sr.iter_mut().zip(state.iter_mut()) {
        *r = Some(Rows::new(s, 1));
    }
    let pre = Pre { weight_decay: u.weight_decay, clipvalue: u.clipvalue };
    let rule = u.rule;
    for_chunks(n, |c| {
        // SAFETY: chunks are disjoint; each state buffer is a distinct allocation.
        let (w, s0, s1, s2) = unsafe { (wr.rows(&c), sr[0].map(|r| r.rows(&c)), sr[1].map(|r| r.rows(&c)), sr[2].map(|r| r.rows(&c))) };
        let g = &g[c.clone()];
        let one = "the rule's state buffer";
        match rule {
            UpdateRule::Sgd { lr, momentum, nesterov } => match s0 {
                None => sgd_plain(w, g, pre, lr),
                Some(m) => sgd_momentum(w, g, m, pre, lr, momentum, nesterov),
            },
            UpdateRule::Adam { alpha, beta_1, beta_2, epsilon, amsgrad } => {
                let (m, v) = (s0.expect(one), s1.expect(one));
                if amsgrad {
                    amsgrad_chunk(w, g, m, v, s2.expect(one), pre, alpha, beta_1, beta_2, epsilon)
                } else {
                    adam_chunk(w, g, m, v, pre, alpha, beta_1, beta_2, epsilon)
                }
            }
            UpdateRule::RmsProp { lr, rho, momentum, epsilon, centered } => {
                let v = s0.expect(one);
                let (mom, rest) = if momentum > 0.0 { (s1, s2) } else { (None, s1) };
                let avg = if centered { rest } else { None };
                match (mom, avg) {
                    (None, None) => rmsprop_plain(w, g, v, pre, lr, rho, epsilon),
                    (mom, avg) => rmsprop_full(w, g, v, mom, avg, pre, lr, rho, momentum, epsilon),
                }
            }
            UpdateRule::Adagrad { lr, epsilon } => adagrad_chunk(w, g, s0.expect(one), pre, lr, epsilon),
            UpdateRule::Adadelta { lr, rho, epsilon } => adadelta_chunk(w, g, s0.expect(one), s1.expect(one), pre, lr, rho, epsilon),
            UpdateRule::Adamax { lr, correction, beta_1, beta_2, epsilon } => {
                adamax_chunk(w, g, s0.expect(one), s1.expect(one), pre, lr, correction, beta_1, beta_2, epsilon)
            }
            UpdateRule::Nadam { .. } => nadam_chunk(w, g, s0.expect(one), s1.expect(one), pre, rule),
            UpdateRule::Lion { lr, beta_1, beta_2 } => lion_chunk(w, g, s0.expect(one), pre, lr, beta_1, beta_2),
            UpdateRule::Ftrl { .. } => ftrl_chunk(w, g, s0.expect(one), s1.expect(one), pre, rule),
        }
    });
}

/// What every rule does first, per element: weight decay of `w`, clipping of `g`.
#[derive(Clone, Copy)]
struct Pre {
    weight_decay: Option<(f32, f32)>,
    clipvalue: Option<f32>,
}

impl Pre {
    /// Decays `w` and returns the clipped gradient.
    #[inline(always)]
    fn apply(self, w: &mut f32, g: f32) -> f32 {
        if let Some((wd, lr)) = self.weight_decay {
            *w -= *w * wd * lr;
        }
        match self.clipvalue {
            Some(c) => g.clamp(-c, c),
            None => g,
        }
    }
}

simd_fn!(fn sgd_plain / sgd_plain_at(w: &mut [f32], g: &[f32], pre: Pre, lr: f32) => sgd_plain_impl);
simd_fn!(fn sgd_momentum / sgd_momentum_at(w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, mu: f32, nesterov: bool) => sgd_momentum_impl);
simd_fn!(fn adam_chunk / adam_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, alpha: f32, b1: f32, b2: f32, eps: f32) => adam_chunk_impl);
simd_fn!(fn amsgrad_chunk / amsgrad_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], vhat: &mut [f32], pre: Pre, alpha: f32, b1: f32, b2: f32, eps: f32) => amsgrad_chunk_impl);
simd_fn!(fn rmsprop_plain / rmsprop_plain_at(w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) => rmsprop_plain_impl);
simd_fn!(fn rmsprop_full / rmsprop_full_at(w: &mut [f32], g: &[f32], v: &mut [f32], mom: Option<&mut [f32]>, avg: Option<&mut [f32]>, pre: Pre, lr: f32, rho: f32, momentum: f32, eps: f32) => rmsprop_full_impl);
simd_fn!(fn adagrad_chunk / adagrad_chunk_at(w: &mut [f32], g: &[f32], acc: &mut [f32], pre: Pre, lr: f32, eps: f32) => adagrad_impl);
simd_fn!(fn adadelta_chunk / adadelta_chunk_at(w: &mut [f32], g: &[f32], ag: &mut [f32], ad: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) => adadelta_impl);
simd_fn!(fn adamax_chunk / adamax_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], u: &mut [f32], pre: Pre, lr: f32, c: f32, b1: f32, b2: f32, eps: f32) => adamax_impl);
simd_fn!(fn nadam_chunk / nadam_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, rule: UpdateRule) => nadam_impl);
simd_fn!(fn lion_chunk / lion_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], pre: Pre, lr: f32, b1: f32, b2: f32) => lion_impl);
simd_fn!(fn ftrl_chunk / ftrl_chunk_at(w: &mut [f32], g: &[f32], acc: &mut [f32], lin: &mut [f32], pre: Pre, rule: UpdateRule) => ftrl_impl);

// The optimizer loops are plain Rust: inside the `#[target_feature]` functions `simd_fn!`
// makes, the compiler vectorizes them for the level. Each follows the operation order of the
// Keras optimizer's `update_step`.
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
fn sgd_plain_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], pre: Pre, lr: f32) {
    for (w, &g) in w.iter_mut().zip(g) {
        let g = pre.apply(w, g);
        *w -= g * lr;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sgd_momentum_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, mu: f32, nesterov: bool) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *v = flush(*v * mu - g * lr);
        *w += if nesterov { *v * mu - g * lr } else { *v };
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_chunk_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    pre: Pre,
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
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
    pre: Pre,
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for ((((w, &g), m), v), h) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(vhat.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        *h = h.max(*v);
        *w -= (*m * alpha) / (h.sqrt() + eps);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rmsprop_plain_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) {
    let c = 1.0 - rho;
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *v = flush(rho * *v + c * (g * g));
        *w -= (lr * g) / (*v + eps).sqrt();
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rmsprop_full_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    v: &mut [f32],
    mut mom: Option<&mut [f32]>,
    mut avg: Option<&mut [f32]>,
    pre: Pre,
    lr: f32,
    rho: f32,
    momentum: f32,
    eps: f32,
) {
    let c = 1.0 - rho;
    for (i, (w, &g)) in w.iter_mut().zip(g).enumerate() {
        let g = pre.apply(w, g);
        v[i] = flush(rho * v[i] + c * (g * g));
        let denom = match avg.as_deref_mut() {
            Some(a) => {
                a[i] = flush(rho * a[i] + c * g);
                v[i] - a[i] * a[i] + eps
            }
            None => v[i] + eps,
        };
        let inc = (lr * g) / denom.sqrt();
        match mom.as_deref_mut() {
            Some(m) => {
                m[i] = flush(momentum * m[i] + inc);
                *w -= m[i];
            }
            None => *w -= inc,
        }
    }
}

#[inline(always)]
fn adagrad_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], acc: &mut [f32], pre: Pre, lr: f32, eps: f32) {
    for ((w, &g), a) in w.iter_mut().zip(g).zip(acc.iter_mut()) {
        let g = pre.apply(w, g);
        *a += g * g;
        *w -= (lr * g) / (*a + eps).sqrt();
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adadelta_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], ag: &mut [f32], ad: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) {
    let c = 1.0 - rho;
    for (((w, &g), ag), ad) in w.iter_mut().zip(g).zip(ag.iter_mut()).zip(ad.iter_mut()) {
        let g = pre.apply(w, g);
        *ag = flush(rho * *ag + c * (g * g));
        let d = -(((*ad + eps).sqrt() * g) / (*ag + eps).sqrt());
        *ad = flush(rho * *ad + c * (d * d));
        *w += lr * d;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adamax_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    u: &mut [f32],
    pre: Pre,
    lr: f32,
    c: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let c1 = 1.0 - b1;
    for (((w, &g), m), u) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(u.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *u = flush((b2 * *u).max(g.abs()));
        *w -= (lr * *m) / (c * (*u + eps));
    }
}

#[inline(always)]
fn nadam_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, rule: UpdateRule) {
    let UpdateRule::Nadam { lr, beta_1, beta_2, epsilon, u_next, one_minus_u, one_minus_product_next, one_minus_product, v_correction } =
        rule
    else {
        unreachable!("nadam_chunk takes the Nadam rule")
    };
    let (c1, c2) = (1.0 - beta_1, 1.0 - beta_2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        let m_hat = (u_next * *m) / one_minus_product_next + (one_minus_u * g) / one_minus_product;
        let v_hat = *v / v_correction;
        *w -= (m_hat * lr) / (v_hat.sqrt() + epsilon);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lion_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], m: &mut [f32], pre: Pre, lr: f32, b1: f32, b2: f32) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for ((w, &g), m) in w.iter_mut().zip(g).zip(m.iter_mut()) {
        let g = pre.apply(w, g);
        let c = *m * b1 + g * c1;
        // jnp.sign: 0 stays 0 (f32::signum would give 1).
        let sign = if c > 0.0 {
            1.0
        } else if c < 0.0 {
            -1.0
        } else {
            c
        };
        *w -= lr * sign;
        *m = flush(*m * b2 + g * c2);
    }
}

#[inline(always)]
fn ftrl_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], acc: &mut [f32], lin: &mut [f32], pre: Pre, rule: UpdateRule) {
    let UpdateRule::Ftrl { lr, lr_power, l1, l2, l2_shrinkage } = rule else { unreachable!("ftrl_chunk takes the Ftrl rule") };
    for (((w, &g), acc), lin) in w.iter_mut().zip(g).zip(acc.iter_mut()).zip(lin.iter_mut()) {
        let g = pre.apply(w, g);
        let grad_to_use = g + 2.0 * l2_shrinkage * *w;
        let new_acc = *acc + g * g;
        let new_pow = new_acc.powf(-lr_power);
        *lin += grad_to_use - ((new_pow - acc.powf(-lr_power)) / lr) * *w;
        let quadratic = new_pow / lr + 2.0 * l2;
        *w = (lin.clamp(-l1, l1) - *lin) / quadratic;
        *acc = new_acc;
    }
}

/// Per-column mean and biased variance of a row-major matrix with `cols` columns (two passes).
pub fn moments(x: &[f32], cols: usize, mean: &mut [f32], var: &mut [f32]) {
    let rows = x.len() / cols;
    mean.fill(0.0);
    for row in x.chunks_exact(cols) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in mean.iter_mut() {
        *m /= rows as f32;
    }
    var.fill(0.0);
    for row in x.chunks_exact(cols) {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
            *s += (v - m) * (v - m);
        }
    }
    for s in var.iter_mut() {
        *s /= rows as f32;
    }
}

/// Batch normalization (see `Backend::batch_norm`); `var` becomes `1 / sqrt(var + epsilon)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(
    x: &[f32],
    cols: usize,
    mean: &[f32],
    var: &mut [f32],
    epsilon: f32,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    y: &mut [f32],
) {
    for v in var.iter_mut() {
        *v = 1.0 / (*v + epsilon).sqrt();
    }
    // JAX's order: `inv = rsqrt(var + eps) * gamma`, `res = -mean * inv + beta`, `y = x * inv + res`.
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        for c in 0..cols {
            let scale = var[c] * gamma.map_or(1.0, |g| g[c]);
            yr[c] = xr[c] * scale + (-mean[c] * scale + beta.map_or(0.0, |b| b[c]));
        }
    }
}

/// The backward pass of batch normalization in training (see `Backend::batch_norm_backward`).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    x: &[f32],
    dy: &[f32],
    cols: usize,
    mean: &[f32],
    inv: &[f32],
    gamma: Option<&[f32]>,
    dgamma: Option<&mut [f32]>,
    dbeta: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
) {
    let n = (x.len() / cols) as f32;
    let (mut dgamma, mut dbeta, mut dx) = (dgamma, dbeta, dx);
    // Columns in blocks whose two sums live on the stack: rows are read contiguously and
    // nothing is allocated.
    const BLOCK: usize = 64;
    for c0 in (0..cols).step_by(BLOCK) {
        let c1 = (c0 + BLOCK).min(cols);
        let (mut sum_dy, mut sum_dy_xhat) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        for (xr, gr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)) {
            for c in c0..c1 {
                sum_dy[c - c0] += gr[c];
                sum_dy_xhat[c - c0] += gr[c] * ((xr[c] - mean[c]) * inv[c]);
            }
        }
        if let Some(dg) = dgamma.as_deref_mut() {
            dg[c0..c1].copy_from_slice(&sum_dy_xhat[..c1 - c0]);
        }
        if let Some(db) = dbeta.as_deref_mut() {
            db[c0..c1].copy_from_slice(&sum_dy[..c1 - c0]);
        }
        if let Some(dx) = dx.as_deref_mut() {
            for ((xr, gr), dr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
                for c in c0..c1 {
                    let g = gamma.map_or(1.0, |g| g[c]);
                    let xhat = (xr[c] - mean[c]) * inv[c];
                    dr[c] = g * inv[c] / n * (n * gr[c] - sum_dy[c - c0] - xhat * sum_dy_xhat[c - c0]);
                }
            }
        }
    }
}

/// Layer normalization (see `Backend::layer_norm`).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm(x: &[f32], cols: usize, gamma: Option<&[f32]>, beta: Option<&[f32]>, epsilon: f32, y: &mut [f32], stats: &mut [f32]) {
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

/// The backward pass of layer normalization (see `Backend::layer_norm_backward`).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward(
    x: &[f32],
    dy: &[f32],
    cols: usize,
    stats: &[f32],
    gamma: Option<&[f32]>,
    mut dgamma: Option<&mut [f32]>,
    mut dbeta: Option<&mut [f32]>,
    mut dx: Option<&mut [f32]>,
) {
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

    /// Every rule on an arena large enough to be split over threads gives what it gives on
    /// small slices run one after another; sums of squares agree with a plain sum.
    #[test]
    fn optimizer_updates_do_not_depend_on_chunking() {
        let n = 70_001;
        let g0: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5).collect();
        let w0: Vec<f32> = (0..n).map(|i| ((i * 13) % 29) as f32 * 0.1 - 1.4).collect();
        let rules = [
            UpdateRule::Sgd { lr: 0.1, momentum: 0.9, nesterov: true },
            UpdateRule::Adam { alpha: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: true },
            UpdateRule::RmsProp { lr: 0.01, rho: 0.9, momentum: 0.5, epsilon: 1e-7, centered: true },
            UpdateRule::Adagrad { lr: 0.01, epsilon: 1e-7 },
            UpdateRule::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7 },
            UpdateRule::Adamax { lr: 0.01, correction: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
            UpdateRule::Nadam {
                lr: 0.01,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                u_next: 0.45,
                one_minus_u: 0.55,
                one_minus_product_next: 0.8,
                one_minus_product: 0.6,
                v_correction: 0.001,
            },
            UpdateRule::Lion { lr: 0.01, beta_1: 0.9, beta_2: 0.99 },
            UpdateRule::Ftrl { lr: 0.1, lr_power: -0.5, l1: 0.01, l2: 0.0, l2_shrinkage: 0.01 },
        ];
        for rule in rules {
            let slots = match rule {
                UpdateRule::Sgd { .. } | UpdateRule::Adagrad { .. } | UpdateRule::Lion { .. } => 1,
                UpdateRule::Adam { .. } | UpdateRule::RmsProp { .. } => 3,
                _ => 2,
            };
            let u = Update { rule, weight_decay: Some((0.01, 0.1)), clipvalue: Some(0.3) };
            let (mut w, mut state) = (w0.clone(), vec![vec![0.1f32; n]; slots]);
            let (mut w2, mut state2) = (w0.clone(), vec![vec![0.1f32; n]; slots]);
            for _ in 0..3 {
                update(&u, &mut w, &g0, &mut state);
                for start in (0..n).step_by(1000) {
                    let end = (start + 1000).min(n);
                    let mut part: Vec<Vec<f32>> = state2.iter().map(|s| s[start..end].to_vec()).collect();
                    update(&u, &mut w2[start..end], &g0[start..end], &mut part);
                    for (s, p) in state2.iter_mut().zip(part) {
                        s[start..end].copy_from_slice(&p);
                    }
                }
            }
            assert_eq!(w, w2, "{rule:?}");
            assert_eq!(state, state2, "{rule:?}");
            assert!(w.iter().all(|v| v.is_finite()) && w != w0, "{rule:?}");
        }
        let plain: f64 = g0.iter().map(|&g| (g as f64) * (g as f64)).sum();
        assert!((sum_squares(&g0) as f64 - plain).abs() <= 1e-5 * plain);
        let mut s = g0.clone();
        scale(&mut s, 0.5);
        assert!(s.iter().zip(&g0).all(|(a, b)| *a == b * 0.5));
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
