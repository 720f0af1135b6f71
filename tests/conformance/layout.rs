//! Data movement: axis permutations, repeats, zero padding and cropping, nearest and bilinear
//! upsampling, column blocks and the merge layers, forward and backward, each against plain loops
//! (exact for the kernels that only move values), at awkward shapes, with an empty batch, one
//! large enough for the CPU's threads, and NaN where Keras propagates it.

use crate::support::*;
use keras::backend::{Backend, Border2d, CopyCols, MAX_RANK, MergeOp, Permutation, Repeat, Upsample2d};

pub fn suite<B: Backend>(dev: &B) {
    permute(dev);
    repeat(dev);
    repeat_backward(dev);
    pad2d(dev);
    crop2d(dev);
    upsample2d(dev);
    upsample2d_nan(dev);
    upsample2d_backward(dev);
    copy_cols(dev);
    merge(dev);
    merge_backward(dev);
}

/// Floats either side of a kernel's output view, which the kernel must leave alone.
const FENCE: usize = 5;
/// What the fences hold.
const FENCE_VALUE: f32 = -31.0;
/// What an output view holds before a kernel that overwrites it runs.
const STALE: f32 = 1.0e30;

/// Runs `kernel` on a writable view holding `init` in the middle of a larger buffer, asserts it
/// wrote nothing outside the view, and returns the view's contents.
fn output_over<B: Backend>(dev: &B, what: &str, init: &[f32], kernel: impl FnOnce(B::ViewMut<'_>)) -> Vec<f32> {
    let len = init.len();
    let mut host = vec![FENCE_VALUE; len + 2 * FENCE];
    host[FENCE..FENCE + len].copy_from_slice(init);
    let mut buf = up(dev, &host);
    kernel(B::view_mut(&mut buf, FENCE..FENCE + len));
    let after = down(dev, &buf);
    let fences: Vec<f32> = after[..FENCE].iter().chain(&after[FENCE + len..]).copied().collect();
    same(&format!("{what}: the floats around the output"), &fences, &[FENCE_VALUE; 2 * FENCE]);
    after[FENCE..FENCE + len].to_vec()
}

/// [`output_over`] a view of `len` stale floats, for kernels that overwrite their output.
fn output<B: Backend>(dev: &B, what: &str, len: usize, kernel: impl FnOnce(B::ViewMut<'_>)) -> Vec<f32> {
    output_over(dev, what, &vec![STALE; len], kernel)
}

/// Asserts `<a1, b1> = <a2, b2>` in f64, within `rtol` of the larger sum of `|a_i b_i|`.
fn adjoint(what: &str, (a1, b1): (&[f32], &[f32]), (a2, b2): (&[f32], &[f32]), rtol: f64) {
    let dot = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).fold((0.0, 0.0), |(s, m), (&a, &b)| (s + a as f64 * b as f64, m + (a as f64 * b as f64).abs()))
    };
    let ((lhs, lhs_mag), (rhs, rhs_mag)) = (dot(a1, b1), dot(a2, b2));
    assert!((lhs - rhs).abs() <= rtol * lhs_mag.max(rhs_mag).max(1.0), "{what}: {lhs} on one side, {rhs} on the other");
}

/// A [`Permutation`] of samples of `shape`: output axis `i` is input axis `perm[i]`.
fn permutation(shape: &[usize], perm: &[usize]) -> Permutation {
    let mut p = Permutation { rank: shape.len(), shape: [0; MAX_RANK], perm: [0; MAX_RANK] };
    p.shape[..shape.len()].copy_from_slice(shape);
    p.perm[..perm.len()].copy_from_slice(perm);
    p
}

/// Every ordering of `0..r`.
fn orderings(r: usize) -> Vec<Vec<usize>> {
    if r == 0 {
        return vec![Vec::new()];
    }
    let shorter = orderings(r - 1);
    let mut all = Vec::new();
    for p in shorter {
        for at in 0..r {
            let mut q = p.clone();
            q.insert(at, r - 1);
            all.push(q);
        }
    }
    all
}

/// The reference permutation: output element `idx` (a multi-index over the permuted shape) is
/// input element `in_idx` with `in_idx[perm[a]] = idx[a]`.
fn permute_ref(shape: &[usize], perm: &[usize], batch: usize, x: &[f32]) -> Vec<f32> {
    let r = shape.len();
    let len: usize = shape.iter().product();
    let out_shape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
    let mut y = vec![0.0; batch * len];
    for n in 0..batch {
        for o in 0..len {
            let (mut idx, mut rest) = (vec![0; r], o);
            for a in (0..r).rev() {
                idx[a] = rest % out_shape[a];
                rest /= out_shape[a];
            }
            let mut in_idx = vec![0; r];
            for a in 0..r {
                in_idx[perm[a]] = idx[a];
            }
            let src = (0..r).fold(0, |s, a| s * shape[a] + in_idx[a]);
            y[n * len + o] = x[n * len + src];
        }
    }
    y
}

/// Every permutation of ranks 1 to 4 (and one of rank 5) at odd shapes moves each value (NaN and
/// infinities included) to its permuted place; the inverse permutation restores the input.
fn permute<B: Backend>(dev: &B) {
    let shapes: [&[usize]; 13] = [
        &[1],
        &[7],
        &[33],
        &[1, 1],
        &[3, 5],
        &[7, 33],
        &[2, 3, 4],
        &[5, 1, 7],
        &[3, 7, 2],
        &[2, 3, 4, 5],
        &[1, 7, 1, 3],
        &[3, 2, 5, 2],
        &[2, 1, 3, 2, 3],
    ];
    let mut cases: Vec<(usize, Vec<usize>, Vec<usize>)> = Vec::new();
    for shape in shapes {
        let perms = if shape.len() == 5 { vec![vec![4, 2, 0, 3, 1]] } else { orderings(shape.len()) };
        for perm in perms {
            for batch in [1, 7] {
                cases.push((batch, shape.to_vec(), perm.clone()));
            }
        }
    }
    // Empty, and large enough to be split over threads on the CPU.
    cases.push((0, vec![5, 7, 3], vec![2, 0, 1]));
    cases.push((33, vec![16, 16, 8], vec![2, 0, 1]));
    for (seed, (batch, shape, perm)) in cases.into_iter().enumerate() {
        let p = permutation(&shape, &perm);
        let mut x = signed(batch * p.len(), seed as u64);
        if x.len() > 1 {
            x[1] = f32::NAN;
            let at = x.len() - 1;
            x[at] = f32::INFINITY;
        }
        let what = format!("permute {shape:?} by {perm:?}, batch {batch}");
        let xb = up(dev, &x);
        let y = output(dev, &what, x.len(), |y| dev.permute(&p, batch, v::<B>(&xb), y));
        same(&what, &y, &permute_ref(&shape, &perm, batch, &x));
        let yb = up(dev, &y);
        let back = output(dev, &what, x.len(), |back| dev.permute(&p.inverse(), batch, v::<B>(&yb), back));
        same(&format!("{what}, then its inverse"), &back, &x);
    }
}

/// The repeats tried: samples (none, one, a few, enough for the CPU's threads), copies, width.
const REPEATS: [Repeat; 8] = [
    Repeat { batch: 0, times: 3, width: 5 },
    Repeat { batch: 1, times: 1, width: 1 },
    Repeat { batch: 1, times: 7, width: 33 },
    Repeat { batch: 7, times: 3, width: 5 },
    Repeat { batch: 7, times: 1, width: 33 },
    Repeat { batch: 33, times: 7, width: 1 },
    Repeat { batch: 33, times: 3, width: 7 },
    Repeat { batch: 33, times: 8, width: 256 },
];

/// `y[b, t, :] = x[b, :]` for every copy `t`, NaN and infinities included.
fn repeat<B: Backend>(dev: &B) {
    for (seed, r) in REPEATS.iter().enumerate() {
        let &Repeat { batch, times, width } = r;
        let mut x = signed(batch * width, seed as u64);
        if !x.is_empty() {
            x[0] = f32::NAN;
            let at = x.len() / 2;
            x[at] = f32::NEG_INFINITY;
        }
        let mut want = vec![0.0; batch * times * width];
        for b in 0..batch {
            for t in 0..times {
                for k in 0..width {
                    want[(b * times + t) * width + k] = x[b * width + k];
                }
            }
        }
        let what = format!("repeat {r:?}");
        let xb = up(dev, &x);
        same(&what, &output(dev, &what, want.len(), |y| dev.repeat(r, v::<B>(&xb), y)), &want);
    }
}

/// `dx[b, :] = Σ_t dy[b, t, :]`, a NaN in `dy` reaching its sample's column.
fn repeat_backward<B: Backend>(dev: &B) {
    for (seed, r) in REPEATS.iter().enumerate() {
        let &Repeat { batch, times, width } = r;
        let mut dy = signed(batch * times * width, 50 + seed as u64);
        if !dy.is_empty() {
            let at = dy.len() - 1;
            dy[at] = f32::NAN;
        }
        let mut want = vec![0.0f64; batch * width];
        for b in 0..batch {
            for t in 0..times {
                for k in 0..width {
                    want[b * width + k] += dy[(b * times + t) * width + k] as f64;
                }
            }
        }
        let what = format!("repeat_backward {r:?}");
        let db = up(dev, &dy);
        close(&what, &output(dev, &what, want.len(), |dx| dev.repeat_backward(r, v::<B>(&db), dx)), &want, rtol_for(times));
    }
}

/// The borders tried, each with its batches: none, even and uneven on every side, and a case
/// large enough for the CPU's threads.
fn borders() -> Vec<(usize, Border2d)> {
    let small = [
        Border2d { h: 1, w: 1, c: 1, top: 0, bottom: 0, left: 0, right: 0 },
        Border2d { h: 1, w: 1, c: 3, top: 1, bottom: 2, left: 3, right: 0 },
        Border2d { h: 5, w: 7, c: 3, top: 2, bottom: 1, left: 0, right: 3 },
        Border2d { h: 3, w: 2, c: 7, top: 0, bottom: 4, left: 1, right: 1 },
        Border2d { h: 7, w: 5, c: 1, top: 1, bottom: 1, left: 2, right: 2 },
    ];
    let mut cases: Vec<(usize, Border2d)> = small.iter().flat_map(|&g| [0, 1, 7].map(|batch| (batch, g))).collect();
    cases.push((33, Border2d { h: 16, w: 16, c: 8, top: 1, bottom: 1, left: 1, right: 1 }));
    cases
}

/// Where small pixel `(i, j)` of sample `n` lies in the large image (its first channel).
fn large_at(g: &Border2d, n: usize, i: usize, j: usize) -> usize {
    let (lh, lw) = (g.h + g.top + g.bottom, g.w + g.left + g.right);
    ((n * lh + g.top + i) * lw + g.left + j) * g.c
}

/// The small image lands in the middle of the large one (NaN and infinities included), zeros
/// around it; cropping the padded image gives the small one back.
fn pad2d<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in borders().into_iter().enumerate() {
        let large_len = batch * (g.h + g.top + g.bottom) * (g.w + g.left + g.right) * g.c;
        let mut small = signed(batch * g.h * g.w * g.c, seed as u64);
        if !small.is_empty() {
            small[0] = f32::INFINITY;
            let at = small.len() - 1;
            small[at] = f32::NAN;
        }
        let mut want = vec![0.0; large_len];
        for n in 0..batch {
            for i in 0..g.h {
                for j in 0..g.w {
                    for ch in 0..g.c {
                        want[large_at(&g, n, i, j) + ch] = small[((n * g.h + i) * g.w + j) * g.c + ch];
                    }
                }
            }
        }
        let what = format!("pad2d {g:?}, batch {batch}");
        let sb = up(dev, &small);
        let large = output(dev, &what, large_len, |large| dev.pad2d(&g, batch, v::<B>(&sb), large));
        same(&what, &large, &want);
        let lb = up(dev, &large);
        let back = output(dev, &what, small.len(), |back| dev.crop2d(&g, batch, v::<B>(&lb), back));
        same(&format!("{what}, then cropped"), &back, &small);
    }
}

/// The middle of the large image comes out (a NaN inside it too, none from the border).
fn crop2d<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in borders().into_iter().enumerate() {
        let mut large = signed(batch * (g.h + g.top + g.bottom) * (g.w + g.left + g.right) * g.c, 60 + seed as u64);
        if batch > 0 {
            large[large_at(&g, batch - 1, g.h - 1, 0)] = f32::NAN;
            if g.top > 0 || g.left > 0 {
                large[0] = f32::NAN;
            }
        }
        let mut want = vec![0.0; batch * g.h * g.w * g.c];
        for n in 0..batch {
            for i in 0..g.h {
                for j in 0..g.w {
                    for ch in 0..g.c {
                        want[((n * g.h + i) * g.w + j) * g.c + ch] = large[large_at(&g, n, i, j) + ch];
                    }
                }
            }
        }
        let what = format!("crop2d {g:?}, batch {batch}");
        let lb = up(dev, &large);
        same(&what, &output(dev, &what, want.len(), |small| dev.crop2d(&g, batch, v::<B>(&lb), small)), &want);
    }
}

/// The inputs each output reads along an axis of `n` inputs upsampled `scale` times, with their
/// nonzero weights. Nearest: input `o / scale`. Bilinear as `jax.image.resize`'s triangle kernel:
/// output `o` samples the input at `(o + 0.5) / scale - 0.5`, input `i` weighs
/// `max(0, 1 - |sample - i|)`, and the weights are normalized to sum to one (which clamps at the
/// edges).
fn axis_weights(n: usize, scale: usize, bilinear: bool) -> Vec<Vec<(usize, f64)>> {
    (0..n * scale)
        .map(|o| {
            if !bilinear {
                return vec![(o / scale, 1.0)];
            }
            let at = (o as f64 + 0.5) / scale as f64 - 0.5;
            let w: Vec<(usize, f64)> = (0..n).map(|i| (i, (1.0 - (at - i as f64).abs()).max(0.0))).filter(|&(_, w)| w > 0.0).collect();
            let total: f64 = w.iter().map(|&(_, w)| w).sum();
            w.into_iter().map(|(i, w)| (i, w / total)).collect()
        })
        .collect()
}

/// Calls `f(output, input, weight)` for every output float of `batch` upsampled samples and every
/// input float it reads with a nonzero weight.
fn upsample_terms(g: &Upsample2d, batch: usize, mut f: impl FnMut(usize, usize, f64)) {
    let (rows, cols) = (axis_weights(g.h, g.sh, g.bilinear), axis_weights(g.w, g.sw, g.bilinear));
    let (oh, ow) = (g.h * g.sh, g.w * g.sw);
    for n in 0..batch {
        for (oy, row) in rows.iter().enumerate() {
            for (ox, col) in cols.iter().enumerate() {
                for &(iy, wy) in row {
                    for &(ix, wx) in col {
                        for ch in 0..g.c {
                            f(((n * oh + oy) * ow + ox) * g.c + ch, ((n * g.h + iy) * g.w + ix) * g.c + ch, wy * wx);
                        }
                    }
                }
            }
        }
    }
}

/// The reference upsampling: each output the weighted sum of the inputs it reads.
fn upsample_ref(g: &Upsample2d, batch: usize, x: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0; batch * g.h * g.w * g.c * g.sh * g.sw];
    upsample_terms(g, batch, |o, i, w| y[o] += w * x[i] as f64);
    y
}

/// The upsamplings tried, each with its batches: factors 1 to 4, odd images, one large enough
/// for the CPU's threads.
fn upsamplings() -> Vec<(usize, Upsample2d)> {
    let mut cases = Vec::new();
    for bilinear in [false, true] {
        let shapes = [(1, 1, 1, 1, 1), (1, 1, 3, 2, 3), (5, 7, 3, 2, 2), (3, 2, 7, 3, 1), (2, 5, 1, 1, 3), (4, 3, 2, 4, 2)];
        for (h, w, c, sh, sw) in shapes {
            for batch in [0, 1, 7] {
                cases.push((batch, Upsample2d { h, w, c, sh, sw, bilinear }));
            }
        }
        cases.push((33, Upsample2d { h: 16, w: 16, c: 8, sh: 2, sw: 2, bilinear }));
    }
    cases
}

/// Nearest upsampling repeats each pixel over its block (exactly, NaN included); bilinear
/// interpolates with half-pixel centres and clamped edges, as `jax.image.resize`.
fn upsample2d<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in upsamplings().into_iter().enumerate() {
        let mut x = signed(batch * g.h * g.w * g.c, seed as u64);
        if !g.bilinear && !x.is_empty() {
            x[0] = f32::NAN;
            let at = x.len() - 1;
            x[at] = f32::NEG_INFINITY;
        }
        let what = format!("upsample2d {g:?}, batch {batch}");
        let xb = up(dev, &x);
        let got = output(dev, &what, x.len() * g.sh * g.sw, |y| dev.upsample2d(&g, batch, v::<B>(&xb), y));
        let want = upsample_ref(&g, batch, &x);
        if g.bilinear {
            close(&what, &got, &want, rtol_for(4));
        } else {
            same(&what, &got, &want.iter().map(|&w| w as f32).collect::<Vec<_>>());
        }
    }
}

/// Bilinear upsampling sends a NaN input to exactly the outputs that weigh it, and the backward
/// pass a NaN output gradient to exactly the inputs it weighs (even factors, the NaN away from
/// index 1 of an axis: the outputs that read a pixel with weight zero are left open).
fn upsample2d_nan<B: Backend>(dev: &B) {
    for (sh, sw) in [(2, 2), (4, 2)] {
        let (batch, g) = (2, Upsample2d { h: 5, w: 7, c: 2, sh, sw, bilinear: true });
        let mut x = signed(batch * g.h * g.w * g.c, 70);
        for (n, iy, ix, ch) in [(0, 0, 0, 0), (0, 3, 4, 1), (1, 4, 6, 0)] {
            x[((n * g.h + iy) * g.w + ix) * g.c + ch] = f32::NAN;
        }
        let what = format!("upsample2d {g:?} with NaN inputs");
        let xb = up(dev, &x);
        let got = output(dev, &what, x.len() * sh * sw, |y| dev.upsample2d(&g, batch, v::<B>(&xb), y));
        close(&what, &got, &upsample_ref(&g, batch, &x), rtol_for(4));
        let (ow, mut dy) = (g.w * sw, signed(x.len() * sh * sw, 71));
        // Output (3, 5), channel 1, of sample 0.
        dy[(3 * ow + 5) * g.c + 1] = f32::NAN;
        let mut want = vec![0.0f64; x.len()];
        upsample_terms(&g, batch, |o, i, w| want[i] += w * dy[o] as f64);
        let what = format!("upsample2d_backward {g:?} with a NaN gradient");
        let db = up(dev, &dy);
        let got = output(dev, &what, x.len(), |dx| dev.upsample2d_backward(&g, batch, v::<B>(&db), dx));
        close(&what, &got, &want, rtol_for(4 * sh * sw));
    }
}

/// Each input gets the weighted sum of the output gradients that read it, and the backward pass
/// is the adjoint of the forward one: `<up(x), dy> = <x, up^T(dy)>`.
fn upsample2d_backward<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in upsamplings().into_iter().enumerate() {
        let (in_len, out_len) = (batch * g.h * g.w * g.c, batch * g.h * g.w * g.c * g.sh * g.sw);
        let (x, dy) = (signed(in_len, 80 + seed as u64), signed(out_len, 180 + seed as u64));
        let mut want = vec![0.0f64; in_len];
        upsample_terms(&g, batch, |o, i, w| want[i] += w * dy[o] as f64);
        let what = format!("upsample2d_backward {g:?}, batch {batch}");
        let (xb, db) = (up(dev, &x), up(dev, &dy));
        let dx = output(dev, &what, in_len, |dx| dev.upsample2d_backward(&g, batch, v::<B>(&db), dx));
        close(&what, &dx, &want, rtol_for(4 * g.sh * g.sw));
        let y = output(dev, &what, out_len, |y| dev.upsample2d(&g, batch, v::<B>(&xb), y));
        adjoint(&what, (&y, &dy), (&x, &dx), rtol_for(4 * g.sh * g.sw));
    }
}

/// Only the block moves: `dst[r, dst_off + k] = src[r, src_off + k]` for `k < width` (a NaN in the
/// block too, none from outside it), every other float of `dst` left as it was.
fn copy_cols<B: Backend>(dev: &B) {
    let cases = [
        CopyCols { rows: 0, width: 2, src_width: 3, src_off: 1, dst_width: 4, dst_off: 2 },
        CopyCols { rows: 3, width: 0, src_width: 4, src_off: 1, dst_width: 5, dst_off: 2 },
        CopyCols { rows: 1, width: 1, src_width: 1, src_off: 0, dst_width: 1, dst_off: 0 },
        CopyCols { rows: 7, width: 3, src_width: 5, src_off: 2, dst_width: 8, dst_off: 0 },
        CopyCols { rows: 33, width: 7, src_width: 7, src_off: 0, dst_width: 20, dst_off: 13 },
        CopyCols { rows: 1000, width: 5, src_width: 12, src_off: 7, dst_width: 9, dst_off: 4 },
    ];
    for (seed, c) in cases.iter().enumerate() {
        let mut src = signed(c.rows * c.src_width, seed as u64);
        if c.rows > 0 && c.width > 0 {
            src[c.src_off] = f32::NAN;
            src[(c.rows - 1) * c.src_width + c.src_off + c.width - 1] = f32::INFINITY;
        }
        if c.rows > 0 && c.src_off > 0 {
            src[c.src_off - 1] = f32::NAN;
        }
        let dst = signed(c.rows * c.dst_width, 90 + seed as u64);
        let mut want = dst.clone();
        for r in 0..c.rows {
            for k in 0..c.width {
                want[r * c.dst_width + c.dst_off + k] = src[r * c.src_width + c.src_off + k];
            }
        }
        let what = format!("copy_cols {c:?}");
        let sb = up(dev, &src);
        same(&what, &output_over(dev, &what, &dst, |d| dev.copy_cols(c, v::<B>(&sb), d)), &want);
    }
}

/// Every merge, with the numbers of inputs it takes.
const MERGES: [(MergeOp, &[usize]); 6] = [
    (MergeOp::Add, &[2, 3]),
    (MergeOp::Subtract, &[2]),
    (MergeOp::Multiply, &[2, 3]),
    (MergeOp::Average, &[2, 3]),
    (MergeOp::Maximum, &[2, 3]),
    (MergeOp::Minimum, &[2, 3]),
];

/// Whether Keras propagates a NaN input of the merge to its output: every merge does
/// (`ops.maximum` and `ops.minimum` included, as JAX's).
fn propagates_nan(_op: MergeOp) -> bool {
    true
}

/// The reference merge of one element's inputs.
fn merge_ref(op: MergeOp, vals: &[f64]) -> f64 {
    match op {
        MergeOp::Add => vals.iter().sum(),
        MergeOp::Subtract => vals[0] - vals[1],
        MergeOp::Multiply => vals.iter().product(),
        MergeOp::Average => vals.iter().sum::<f64>() / vals.len() as f64,
        _ if vals.iter().any(|v| v.is_nan()) => f64::NAN,
        MergeOp::Maximum => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        MergeOp::Minimum => vals.iter().copied().fold(f64::INFINITY, f64::min),
    }
}

/// Every merge with 2 and 3 inputs (`Subtract`: 2) at every size, empty included; an infinity in
/// the first input, and for the merges that propagate it a NaN in the second.
fn merge<B: Backend>(dev: &B) {
    for (op, counts) in MERGES {
        for &count in counts {
            for n in [0].into_iter().chain(SIZES) {
                let mut xs: Vec<Vec<f32>> = (0..count).map(|i| signed(n, 10 * n as u64 + i as u64)).collect();
                if n > 1 {
                    xs[0][n - 1] = f32::INFINITY;
                    if propagates_nan(op) {
                        xs[1][0] = f32::NAN;
                    }
                }
                let want: Vec<f64> = (0..n).map(|k| merge_ref(op, &xs.iter().map(|x| x[k] as f64).collect::<Vec<_>>())).collect();
                let what = format!("merge {op:?} of {count} inputs of {n}");
                let bufs: Vec<B::Buffer> = xs.iter().map(|x| up(dev, x)).collect();
                let views: Vec<B::View<'_>> = bufs.iter().map(v::<B>).collect();
                close(&what, &output(dev, &what, n, |y| dev.merge(op, &views, y)), &want, rtol_for(count));
            }
        }
    }
}

/// The gradient of every merge for every input: `dy` for `Add`, `±dy` for `Subtract`, `dy / n`
/// for `Average`, `dy` times the other inputs for `Multiply` (a NaN in `dy` reaching every
/// input); for `Maximum` and `Minimum`, `dy / ties` to the inputs equal to `y`, 0 to the others,
/// with two- and three-way ties.
fn merge_backward<B: Backend>(dev: &B) {
    for (op, counts) in MERGES {
        let extreme = op == MergeOp::Maximum || op == MergeOp::Minimum;
        for &count in counts {
            for n in [0].into_iter().chain(SIZES) {
                let seed = 20 * n as u64;
                let mut xs: Vec<Vec<f32>> = (0..count)
                    .map(|i| {
                        let x = signed(n, seed + i as u64);
                        if extreme { x.iter().map(|v| (v * 2.0).round() / 2.0).collect() } else { x }
                    })
                    .collect();
                if extreme && n > 1 {
                    // Element 0: every input ties; element 1: the first two tie at the winning value.
                    let winner = if op == MergeOp::Maximum { 3.0 } else { -3.0 };
                    for x in xs.iter_mut() {
                        x[0] = 0.5;
                    }
                    (xs[0][1], xs[1][1]) = (winner, winner);
                }
                let y: Vec<f32> = (0..n).map(|k| merge_ref(op, &xs.iter().map(|x| x[k] as f64).collect::<Vec<_>>()) as f32).collect();
                let mut dy = signed(n, seed + 9);
                if n > 1 && propagates_nan(op) {
                    dy[0] = f32::NAN;
                }
                let bufs: Vec<B::Buffer> = xs.iter().map(|x| up(dev, x)).collect();
                let views: Vec<B::View<'_>> = bufs.iter().map(v::<B>).collect();
                let (yb, db) = (up(dev, &y), up(dev, &dy));
                for i in 0..count {
                    let want: Vec<f64> = (0..n)
                        .map(|k| {
                            let g = dy[k] as f64;
                            match op {
                                MergeOp::Add => g,
                                MergeOp::Subtract => {
                                    if i == 0 {
                                        g
                                    } else {
                                        -g
                                    }
                                }
                                MergeOp::Average => g / count as f64,
                                MergeOp::Multiply => (0..count).filter(|&j| j != i).fold(g, |p, j| p * xs[j][k] as f64),
                                MergeOp::Maximum | MergeOp::Minimum => {
                                    let ties = xs.iter().filter(|x| x[k] == y[k]).count();
                                    if xs[i][k] == y[k] { g / ties as f64 } else { 0.0 }
                                }
                            }
                        })
                        .collect();
                    let what = format!("merge_backward {op:?} of {count} inputs of {n}, input {i}");
                    let got = output(dev, &what, n, |dx| dev.merge_backward(op, i, &views, v::<B>(&yb), v::<B>(&db), dx));
                    close(&what, &got, &want, rtol_for(count));
                }
            }
        }
    }
}
