//! Sliding-window kernels over NHWC samples: im2col / col2im for convolutions, depthwise products
//! over patch rows or straight from the input, and pooling.
//! Large calls are split over the thread pool: by sample, by output row (im2col, the direct
//! depthwise convolution) or by patch row.

use super::pool;
use super::simd::{Simd, simd_fn};
use crate::backend::ops::{Depthwise, Pool2d, PoolKind, Window2d};

/// Work below this many floats per call stays on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// The work on one sample: `(n, input, output)`.
type SampleFn<'a> = dyn Fn(usize, &[f32], &mut [f32]) + Sync + 'a;

/// Runs `f(n, input, output)` for each sample `n` of `batch`, with its input
/// `x[n * in_len..][..in_len]` and its output `out[n * out_len..][..out_len]`, the only part it writes.
pub(super) fn per_sample(batch: usize, x: &[f32], in_len: usize, out: &mut [f32], out_len: usize, f: &SampleFn<'_>) {
    let (x, out) = (&x[..batch * in_len], &mut out[..batch * out_len]);
    let pool = pool::global();
    if batch < 2 || batch * (in_len + out_len) < PARALLEL_MIN || pool.threads() < 2 {
        for (n, (xs, os)) in x.chunks_exact(in_len.max(1)).zip(out.chunks_exact_mut(out_len.max(1))).enumerate() {
            f(n, xs, os);
        }
        return;
    }
    let tasks = pool.threads().min(batch);
    let per = batch.div_ceil(tasks);
    let base = SendPtr(out.as_mut_ptr());
    pool.run(tasks, &|t| {
        let base = &base;
        for n in (t * per)..((t + 1) * per).min(batch) {
            // SAFETY: each sample's output range is disjoint, and each sample belongs to one task.
            let os = unsafe { std::slice::from_raw_parts_mut(base.0.add(n * out_len), out_len) };
            f(n, &x[n * in_len..(n + 1) * in_len], os);
        }
    });
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only used to hand out disjoint ranges (see `per_sample`).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Calls `f(oy * ow + ox, tap, offset)` for every output pixel and every window tap `tap = i * kw + j`
/// that reads the input pixel at float `offset` (taps reading padding are skipped).
#[inline]
fn for_each_tap(g: &Window2d, mut f: impl FnMut(usize, usize, usize)) {
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for i in 0..g.kh {
                let Some(iy) = Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h) else { continue };
                for j in 0..g.kw {
                    let Some(ix) = Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w) else { continue };
                    f(oy * g.ow + ox, i * g.kw + j, (iy * g.w + ix) * g.c);
                }
            }
        }
    }
}

/// See `WindowOps::im2col`. One output row of patches per task (so one image is split over the
/// threads too), each value written once: copied, or zero where the tap reads padding.
pub fn im2col(g: &Window2d, batch: usize, x: &[f32], cols: &mut [f32]) {
    let (k, c) = (g.patch_len(), g.c);
    let row = g.ow * k;
    per_part(batch * g.oh, cols, row, batch * g.oh * row, &|r, out| {
        let (n, oy) = (r / g.oh, r % g.oh);
        let xs = &x[n * g.in_len()..][..g.in_len()];
        for (ox, patch) in out.chunks_exact_mut(k).enumerate() {
            for i in 0..g.kh {
                let taps = &mut patch[i * g.kw * c..][..g.kw * c];
                let Some(iy) = Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h) else {
                    taps.fill(0.0);
                    continue;
                };
                for (j, tap) in taps.chunks_exact_mut(c).enumerate() {
                    match Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w) {
                        Some(ix) => tap.copy_from_slice(&xs[(iy * g.w + ix) * c..][..c]),
                        None => tap.fill(0.0),
                    }
                }
            }
        }
    });
}

/// See `WindowOps::col2im`.
pub fn col2im(g: &Window2d, batch: usize, cols: &[f32], dx: &mut [f32]) {
    let (k, c) = (g.patch_len(), g.c);
    per_sample(batch, cols, g.out_pixels() * k, dx, g.in_len(), &|_, cs, out| {
        out.fill(0.0);
        for_each_tap(g, |p, t, dst| {
            for (d, s) in out[dst..dst + c].iter_mut().zip(&cs[p * k + t * c..][..c]) {
                *d += s;
            }
        });
    });
}

/// Runs `f(part, output)` for each of `parts` parts of `out` (`part_len` floats each), over the
/// thread pool when `work` (floats touched in all) pays for it.
fn per_part(parts: usize, out: &mut [f32], part_len: usize, work: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let out = &mut out[..parts * part_len];
    let pool = pool::global();
    if parts < 2 || work < PARALLEL_MIN || pool.threads() < 2 {
        for (p, os) in out.chunks_exact_mut(part_len.max(1)).enumerate() {
            f(p, os);
        }
        return;
    }
    let tasks = pool.threads().min(parts);
    let per = parts.div_ceil(tasks);
    let base = SendPtr(out.as_mut_ptr());
    pool.run(tasks, &|t| {
        let base = &base;
        for p in (t * per)..((t + 1) * per).min(parts) {
            // SAFETY: each part's output range is disjoint, and each part belongs to one task.
            f(p, unsafe { std::slice::from_raw_parts_mut(base.0.add(p * part_len), part_len) });
        }
    });
}

/// See `WindowOps::depthwise`.
pub fn depthwise(d: &Depthwise, cols: &[f32], kernel: &[f32], y: &mut [f32]) {
    let &Depthwise { rows, taps, c, dm } = d;
    let (k, n) = (taps * c, c * dm);
    per_sample(rows, cols, k, y, n, &|_, patch, out| {
        out.fill(0.0);
        for (xs, ks) in patch.chunks_exact(c).zip(kernel.chunks_exact(n)) {
            if dm == 1 {
                for ((o, x), w) in out.iter_mut().zip(xs).zip(ks) {
                    *o += x * w;
                }
            } else {
                for ((os, x), ws) in out.chunks_exact_mut(dm).zip(xs).zip(ks.chunks_exact(dm)) {
                    for (o, w) in os.iter_mut().zip(ws) {
                        *o += x * w;
                    }
                }
            }
        }
    });
}

/// See `WindowOps::depthwise_conv`: the depthwise convolution read straight from the input, one
/// output row per task, with the sums of [`depthwise`] (from 0, taps in kernel order, padding's
/// taps included as `0 * w`, each product rounded then added), so the results are the same bit
/// for bit.
pub fn depthwise_conv(g: &Window2d, batch: usize, dm: usize, x: &[f32], kernel: &[f32], y: &mut [f32]) {
    assert!(x.len() >= batch * g.in_len() && kernel.len() >= g.kh * g.kw * g.c * dm);
    let row = g.ow * g.c * dm;
    let work = batch * (g.in_len() + g.oh * row * g.kh * g.kw);
    per_part(batch * g.oh, y, row, work, &|r, out| {
        let (n, oy) = (r / g.oh, r % g.oh);
        depthwise_row(g, dm, oy, &x[n * g.in_len()..][..g.in_len()], kernel, out);
    });
}

/// The most window taps [`depthwise_row`] gathers on the stack (larger windows go tap by tap).
const MAX_TAPS: usize = 64;

/// A gathered tap on padding (it adds `0 * w`, as the patch matrix's zero does: NaN for an
/// infinite `w`).
const PADDING: usize = usize::MAX;

simd_fn!(fn depthwise_row / depthwise_row_at(g: &Window2d, dm: usize, oy: usize, x: &[f32], kernel: &[f32], out: &mut [f32]) => depthwise_row_impl);

/// Output row `oy` of one sample `x` (`ow * c * dm` floats).
#[inline(always)]
fn depthwise_row_impl<S: Simd>(s: S, g: &Window2d, dm: usize, oy: usize, x: &[f32], kernel: &[f32], out: &mut [f32]) {
    let (c, n) = (g.c, g.c * dm);
    assert!(x.len() >= g.in_len() && kernel.len() >= g.kh * g.kw * n && out.len() >= g.ow * n);
    let mut taps = [(0usize, 0usize); MAX_TAPS];
    let zero = s.splat(0.0);
    for ox in 0..g.ow {
        let o = &mut out[ox * n..][..n];
        if dm == 1 && g.kh * g.kw <= MAX_TAPS {
            // Every tap, in kernel order: (input offset or PADDING, kernel offset).
            let mut count = 0;
            for i in 0..g.kh {
                let iy = Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h);
                for j in 0..g.kw {
                    let at = match (iy, Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w)) {
                        (Some(iy), Some(ix)) => (iy * g.w + ix) * c,
                        _ => PADDING,
                    };
                    taps[count] = (at, (i * g.kw + j) * n);
                    count += 1;
                }
            }
            let mut k = 0;
            while k < c {
                let l = S::LANES.min(c - k);
                let mut acc = zero;
                for &(xo, ko) in &taps[..count] {
                    let xs = if xo == PADDING { None } else { Some(&x[xo + k..xo + c]) };
                    let ks = &kernel[ko + k..ko + n];
                    // SAFETY: `l <= c - k` floats from each slice's start: inside the sample (an
                    // input pixel's channels from `k`) and the kernel (a tap's channels from `k`).
                    unsafe {
                        let xv = xs.map_or(zero, |xs| if l == S::LANES { s.load(xs.as_ptr()) } else { s.load_part(xs.as_ptr(), l) });
                        let kv = if l == S::LANES { s.load(ks.as_ptr()) } else { s.load_part(ks.as_ptr(), l) };
                        acc = s.add(acc, s.mul(xv, kv));
                    }
                }
                // SAFETY: `l` floats from `k` lie inside `o` (`k + l <= c = n`).
                unsafe { if l == S::LANES { s.store(o[k..].as_mut_ptr(), acc) } else { s.store_part(o[k..].as_mut_ptr(), acc, l) } }
                k += l;
            }
            continue;
        }
        // A depth multiplier, or a very large window: tap by tap into the output.
        o.fill(0.0);
        for i in 0..g.kh {
            let iy = Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h);
            for j in 0..g.kw {
                let ks = &kernel[(i * g.kw + j) * n..][..n];
                let (Some(iy), Some(ix)) = (iy, Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w)) else {
                    for (o, w) in o.iter_mut().zip(ks) {
                        *o += 0.0 * w;
                    }
                    continue;
                };
                let xs = &x[(iy * g.w + ix) * c..][..c];
                for ((os, x), ws) in o.chunks_exact_mut(dm).zip(xs).zip(ks.chunks_exact(dm)) {
                    for (o, w) in os.iter_mut().zip(ws) {
                        *o += x * w;
                    }
                }
            }
        }
    }
}

/// See `WindowOps::depthwise_kernel_grad`.
pub fn depthwise_kernel_grad(d: &Depthwise, cols: &[f32], dy: &[f32], dkernel: &mut [f32]) {
    let &Depthwise { rows, taps, c, dm } = d;
    let (k, n) = (taps * c, c * dm);
    let (cols, dy) = (&cols[..rows * k], &dy[..rows * n]);
    // One part per tap: its slice of the kernel gradient sums over every row.
    per_part(taps, dkernel, n, rows * (k + n), &|t, dk| {
        dk.fill(0.0);
        for (patch, g) in cols.chunks_exact(k).zip(dy.chunks_exact(n)) {
            let xs = &patch[t * c..][..c];
            if dm == 1 {
                for ((d, x), g) in dk.iter_mut().zip(xs).zip(g) {
                    *d += x * g;
                }
            } else {
                for ((ds, x), gs) in dk.chunks_exact_mut(dm).zip(xs).zip(g.chunks_exact(dm)) {
                    for (d, g) in ds.iter_mut().zip(gs) {
                        *d += x * g;
                    }
                }
            }
        }
    });
}

/// See `WindowOps::depthwise_input_grad`.
pub fn depthwise_input_grad(d: &Depthwise, kernel: &[f32], dy: &[f32], dcols: &mut [f32]) {
    let &Depthwise { rows, taps, c, dm } = d;
    let (k, n) = (taps * c, c * dm);
    per_sample(rows, dy, n, dcols, k, &|_, g, out| {
        for (os, ks) in out.chunks_exact_mut(c).zip(kernel.chunks_exact(n)) {
            if dm == 1 {
                for ((o, g), w) in os.iter_mut().zip(g).zip(ks) {
                    *o = g * w;
                }
            } else {
                for ((o, gs), ws) in os.iter_mut().zip(g.chunks_exact(dm)).zip(ks.chunks_exact(dm)) {
                    *o = gs.iter().zip(ws).map(|(g, w)| g * w).sum();
                }
            }
        }
    });
}

/// Taps of each output pixel that read the input (the divisor of an average).
fn counts(g: &Window2d, p: usize) -> f32 {
    let (oy, ox) = (p / g.ow, p % g.ow);
    let rows = (0..g.kh).filter(|&i| Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h).is_some()).count();
    let cols = (0..g.kw).filter(|&j| Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w).is_some()).count();
    (rows * cols) as f32
}

/// See `WindowOps::pool2d`.
pub fn pool2d(p: &Pool2d, batch: usize, x: &[f32], y: &mut [f32]) {
    let (g, kind) = (&p.window, p.kind);
    let c = g.c;
    per_sample(batch, x, g.in_len(), y, g.out_pixels() * c, &|_, xs, out| match kind {
        PoolKind::Max => {
            out.fill(f32::NEG_INFINITY);
            for_each_tap(g, |p, _, src| {
                for (o, v) in out[p * c..][..c].iter_mut().zip(&xs[src..src + c]) {
                    // NaN wins, as in Keras (`lax.max`), where `f32::max` would drop it: `m`
                    // keeps a NaN `o` (it compiles to `maxps`, which returns its second operand
                    // when either is NaN), and a NaN `v` sets every bit of `o` (a NaN). Three
                    // SSE instructions (maxps, cmpunordps, orps) where `f32::max` takes five.
                    let m = if *v > *o { *v } else { *o };
                    *o = f32::from_bits(m.to_bits() | (v.is_nan() as u32).wrapping_neg());
                }
            });
        }
        PoolKind::Average => {
            out.fill(0.0);
            for_each_tap(g, |p, _, src| {
                for (o, v) in out[p * c..][..c].iter_mut().zip(&xs[src..src + c]) {
                    *o += v;
                }
            });
            for (p, o) in out.chunks_exact_mut(c).enumerate() {
                let inv = 1.0 / counts(g, p);
                o.iter_mut().for_each(|v| *v *= inv);
            }
        }
    });
}

/// See `WindowOps::pool2d_backward`.
pub fn pool2d_backward(p: &Pool2d, batch: usize, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (g, kind) = (&p.window, p.kind);
    let (c, in_len, out_len) = (g.c, g.in_len(), g.out_pixels() * g.c);
    let (y, dy) = (&y[..batch * out_len], &dy[..batch * out_len]);
    per_sample(batch, x, in_len, dx, in_len, &|n, xs, out| {
        let (ys, gs) = (&y[n * out_len..][..out_len], &dy[n * out_len..][..out_len]);
        out.fill(0.0);
        match kind {
            PoolKind::Max => {
                // Channels in groups of 64: `left` holds the gradient a window has not yet handed
                // to an input equal to its maximum (a NaN input, when the maximum is NaN), so the
                // first such input takes it all. Selects, not branches: which input holds the
                // maximum is data, not a pattern.
                let mut left = [0f32; 64];
                // Samples whose pooling gave a NaN take the slower comparison.
                let nan = ys.iter().fold(false, |n, y| n | y.is_nan());
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let o = (oy * g.ow + ox) * c;
                        for c0 in (0..c).step_by(64) {
                            let c1 = (c0 + 64).min(c);
                            let left = &mut left[..c1 - c0];
                            left.copy_from_slice(&gs[o + c0..o + c1]);
                            let yw = &ys[o + c0..o + c1];
                            for i in 0..g.kh {
                                let Some(iy) = Window2d::tap(oy, i, g.sh, g.dh, g.pt, g.h) else { continue };
                                for j in 0..g.kw {
                                    let Some(ix) = Window2d::tap(ox, j, g.sw, g.dw, g.pl, g.w) else { continue };
                                    let src = (iy * g.w + ix) * c;
                                    let (xw, dw) = (&xs[src + c0..src + c1], &mut out[src + c0..src + c1]);
                                    if nan {
                                        hand_out::<true>(dw, left, xw, yw);
                                    } else {
                                        hand_out::<false>(dw, left, xw, yw);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            PoolKind::Average => {
                for_each_tap(g, |p, _, src| {
                    let inv = 1.0 / counts(g, p);
                    for (d, s) in out[src..src + c].iter_mut().zip(&gs[p * c..][..c]) {
                        *d += s * inv;
                    }
                });
            }
        }
    });
}

/// One tap of a max window's backward pass over a group of channels: each input `x` equal to
/// the window's maximum `y` (with `NAN`, also a NaN input where the maximum is NaN) takes what
/// is `left` of the window's gradient, leaving 0, so the first such input takes it all.
#[inline(always)]
fn hand_out<const NAN: bool>(dw: &mut [f32], left: &mut [f32], xw: &[f32], yw: &[f32]) {
    for (((d, l), x), y) in dw.iter_mut().zip(left.iter_mut()).zip(xw).zip(yw) {
        let hit = (x == y) | (NAN & x.is_nan() & y.is_nan());
        *d += if hit { *l } else { 0.0 };
        *l = if hit { 0.0 } else { *l };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::simd::{Level, supported};

    /// `depthwise_conv` gives what `im2col` then `depthwise` give, bit for bit, at every SIMD
    /// level: strides, dilation, padding on every side, channel counts off the vector width, a
    /// depth multiplier, and a window too large for the gathered taps.
    #[test]
    fn depthwise_conv_is_im2col_then_depthwise() {
        let cases = [
            // (h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, dm)
            (7, 6, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1),
            (9, 8, 32, 3, 3, 2, 2, 1, 1, 0, 1, 1),
            (8, 8, 5, 3, 2, 1, 2, 2, 1, 2, 0, 1),
            (6, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 2),
            (12, 12, 17, 9, 9, 1, 1, 1, 1, 4, 4, 1),
        ];
        for (h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, dm) in cases {
            let span = |n: usize, k: usize, s: usize, d: usize, p: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
            let g = Window2d { h, w, c, oh: span(h, kh, sh, dh, pt), ow: span(w, kw, sw, dw, pl), kh, kw, sh, sw, dh, dw, pt, pl };
            let batch = 2;
            let x: Vec<f32> = (0..batch * g.in_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
            let mut kernel: Vec<f32> = (0..kh * kw * c * dm).map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0).collect();
            // An infinite weight: where its tap reads padding, `0 * inf` makes the output NaN.
            kernel[0] = f32::INFINITY;
            let d = Depthwise { rows: batch * g.out_pixels(), taps: kh * kw, c, dm };
            let mut cols = vec![0.0; batch * g.out_pixels() * g.patch_len()];
            im2col(&g, batch, &x, &mut cols);
            let mut want = vec![0.0; batch * g.out_pixels() * c * dm];
            depthwise(&d, &cols, &kernel, &mut want);
            for level in [Level::Avx512, Level::Avx2, Level::Scalar].into_iter().filter(|l| supported(*l)) {
                let mut got = vec![f32::NAN; want.len()];
                for (r, out) in got.chunks_exact_mut(g.ow * c * dm).enumerate() {
                    let (n, oy) = (r / g.oh, r % g.oh);
                    // SAFETY: this CPU supports `level`.
                    unsafe { depthwise_row_at(level, &g, dm, oy, &x[n * g.in_len()..][..g.in_len()], &kernel, out) };
                }
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?} dm {dm} at {level:?}");
            }
            let mut got = vec![f32::NAN; want.len()];
            depthwise_conv(&g, batch, dm, &x, &kernel, &mut got);
            assert!(want.iter().any(|v| v.is_nan()), "{g:?}: the infinite weight meets padding");
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{g:?} dm {dm}");
        }
    }
}
