//! Kernels that move values without arithmetic on them (or, for upsampling, with fixed weights):
//! axis permutation, repetition, zero padding and cropping, upsampling. Samples are independent,
//! so large batches are split over the thread pool.

use super::window::per_sample;
use crate::backend::ops::{Border2d, MAX_RANK, Permutation, Repeat, Upsample2d};

/// See `LayoutOps::permute`.
pub fn permute(p: &Permutation, batch: usize, x: &[f32], y: &mut [f32]) {
    let (n, r) = (p.len(), p.rank);
    // `step[i]`: how far in the input one step along output axis `i` moves.
    let mut in_stride = [0usize; MAX_RANK];
    let mut s = 1;
    for a in (0..r).rev() {
        in_stride[a] = s;
        s *= p.shape[a];
    }
    let (mut out_shape, mut step) = ([0usize; MAX_RANK], [0usize; MAX_RANK]);
    for i in 0..r {
        out_shape[i] = p.shape[p.perm[i]];
        step[i] = in_stride[p.perm[i]];
    }
    let last = r - 1;
    let (len, stride) = (out_shape[last], step[last]);
    per_sample(batch, x, n, y, n, &|_, xs, ys| {
        let mut idx = [0usize; MAX_RANK];
        let mut src = 0;
        for run in ys.chunks_exact_mut(len) {
            for (k, o) in run.iter_mut().enumerate() {
                *o = xs[src + k * stride];
            }
            // The next index over the outer output axes, as an odometer.
            for a in (0..last).rev() {
                idx[a] += 1;
                src += step[a];
                if idx[a] < out_shape[a] {
                    break;
                }
                src -= step[a] * out_shape[a];
                idx[a] = 0;
            }
        }
    });
}

/// See `LayoutOps::repeat`.
pub fn repeat(r: &Repeat, x: &[f32], y: &mut [f32]) {
    let &Repeat { batch, times, width } = r;
    per_sample(batch, x, width, y, times * width, &|_, xs, ys| {
        for row in ys.chunks_exact_mut(width) {
            row.copy_from_slice(xs);
        }
    });
}

/// See `LayoutOps::repeat_backward`.
pub fn repeat_backward(r: &Repeat, dy: &[f32], dx: &mut [f32]) {
    let &Repeat { batch, times, width } = r;
    per_sample(batch, dy, times * width, dx, width, &|_, gs, out| {
        out.copy_from_slice(&gs[..width]);
        for row in gs.chunks_exact(width).skip(1) {
            for (o, g) in out.iter_mut().zip(row) {
                *o += g;
            }
        }
    });
}

/// See `LayoutOps::pad2d`.
pub fn pad2d(g: &Border2d, batch: usize, small: &[f32], large: &mut [f32]) {
    let (row, wide) = (g.w * g.c, (g.w + g.left + g.right) * g.c);
    per_sample(batch, small, g.small_len(), large, g.large_len(), &|_, s, l| {
        l.fill(0.0);
        for (i, src) in s.chunks_exact(row).enumerate() {
            l[(g.top + i) * wide + g.left * g.c..][..row].copy_from_slice(src);
        }
    });
}

/// See `LayoutOps::crop2d`.
pub fn crop2d(g: &Border2d, batch: usize, large: &[f32], small: &mut [f32]) {
    let (row, wide) = (g.w * g.c, (g.w + g.left + g.right) * g.c);
    per_sample(batch, large, g.large_len(), small, g.small_len(), &|_, l, s| {
        for (i, dst) in s.chunks_exact_mut(row).enumerate() {
            dst.copy_from_slice(&l[(g.top + i) * wide + g.left * g.c..][..row]);
        }
    });
}

/// The two input indices output index `o` interpolates between along an axis of `n` inputs
/// scaled by `scale`, and the second one's weight: half-pixel centres, clamped at the edges.
#[inline]
fn linear_taps(o: usize, scale: usize, n: usize) -> (usize, usize, f32) {
    let src = ((o as f32 + 0.5) / scale as f32 - 0.5).max(0.0);
    let i0 = (src as usize).min(n - 1);
    (i0, (i0 + 1).min(n - 1), src - i0 as f32)
}

/// See `LayoutOps::upsample2d`.
pub fn upsample2d(g: &Upsample2d, batch: usize, x: &[f32], y: &mut [f32]) {
    let (c, ow) = (g.c, g.w * g.sw);
    per_sample(batch, x, g.in_len(), y, g.out_len(), &|_, xs, ys| {
        if g.bilinear {
            for (oy, out_row) in ys.chunks_exact_mut(ow * c).enumerate() {
                let (y0, y1, ty) = linear_taps(oy, g.sh, g.h);
                for (ox, o) in out_row.chunks_exact_mut(c).enumerate() {
                    let (x0, x1, tx) = linear_taps(ox, g.sw, g.w);
                    let at = |iy: usize, ix: usize| &xs[(iy * g.w + ix) * c..][..c];
                    let (a, b, d, e) = (at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1));
                    for k in 0..c {
                        let top = a[k] * (1.0 - tx) + b[k] * tx;
                        let bottom = d[k] * (1.0 - tx) + e[k] * tx;
                        o[k] = top * (1.0 - ty) + bottom * ty;
                    }
                }
            }
        } else {
            // One output row per input row, then copies of it.
            for (iy, rows) in ys.chunks_exact_mut(g.sh * ow * c).enumerate() {
                let (first, rest) = rows.split_at_mut(ow * c);
                for (ox, o) in first.chunks_exact_mut(c).enumerate() {
                    o.copy_from_slice(&xs[(iy * g.w + ox / g.sw) * c..][..c]);
                }
                for r in rest.chunks_exact_mut(ow * c) {
                    r.copy_from_slice(first);
                }
            }
        }
    });
}

/// See `LayoutOps::upsample2d_backward`.
pub fn upsample2d_backward(g: &Upsample2d, batch: usize, dy: &[f32], dx: &mut [f32]) {
    let (c, ow) = (g.c, g.w * g.sw);
    per_sample(batch, dy, g.out_len(), dx, g.in_len(), &|_, gs, out| {
        out.fill(0.0);
        for (oy, grad_row) in gs.chunks_exact(ow * c).enumerate() {
            let (y0, y1, ty) = if g.bilinear { linear_taps(oy, g.sh, g.h) } else { (oy / g.sh, oy / g.sh, 0.0) };
            for (ox, gv) in grad_row.chunks_exact(c).enumerate() {
                let (x0, x1, tx) = if g.bilinear { linear_taps(ox, g.sw, g.w) } else { (ox / g.sw, ox / g.sw, 0.0) };
                for (iy, wy) in [(y0, 1.0 - ty), (y1, ty)] {
                    for (ix, wx) in [(x0, 1.0 - tx), (x1, tx)] {
                        let w = wy * wx;
                        if w != 0.0 {
                            for (d, &v) in out[(iy * g.w + ix) * c..][..c].iter_mut().zip(gv) {
                                *d += w * v;
                            }
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_moves_each_value_to_its_permuted_index() {
        // A sample of shape (2, 3, 4) to (4, 2, 3): output [k, i, j] = input [i, j, k].
        let mut p = Permutation { rank: 3, shape: [0; MAX_RANK], perm: [0; MAX_RANK] };
        p.shape[..3].copy_from_slice(&[2, 3, 4]);
        p.perm[..3].copy_from_slice(&[2, 0, 1]);
        let x: Vec<f32> = (0..48).map(|v| v as f32).collect();
        let mut y = vec![0.0; 48];
        permute(&p, 2, &x, &mut y);
        for b in 0..2 {
            for (i, j, k) in (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| (i, j, k)))) {
                assert_eq!(y[b * 24 + (k * 2 + i) * 3 + j], x[b * 24 + (i * 3 + j) * 4 + k]);
            }
        }
        let mut back = vec![0.0; 48];
        permute(&p.inverse(), 2, &y, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn padding_and_cropping_are_adjoint() {
        let g = Border2d { h: 2, w: 3, c: 2, top: 1, bottom: 2, left: 0, right: 1 };
        let small: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let mut large = vec![7.0; g.large_len()];
        pad2d(&g, 1, &small, &mut large);
        assert_eq!(large.iter().filter(|&&v| v == 0.0).count(), g.large_len() - 12);
        assert_eq!(&large[8..14], &small[..6]);
        let mut back = vec![0.0; 12];
        crop2d(&g, 1, &large, &mut back);
        assert_eq!(back, small);
    }

    #[test]
    fn upsampling_backward_is_the_adjoint_of_forward() {
        for bilinear in [false, true] {
            let g = Upsample2d { h: 3, w: 2, c: 2, sh: 2, sw: 3, bilinear };
            let x: Vec<f32> = (0..g.in_len()).map(|v| (v as f32 * 0.37).sin()).collect();
            let dy: Vec<f32> = (0..g.out_len()).map(|v| (v as f32 * 0.71).cos()).collect();
            let (mut y, mut dx) = (vec![0.0; g.out_len()], vec![0.0; g.in_len()]);
            upsample2d(&g, 1, &x, &mut y);
            upsample2d_backward(&g, 1, &dy, &mut dx);
            // <up(x), dy> == <x, up^T(dy)>
            let a: f32 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
            let b: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((a - b).abs() < 1e-4, "bilinear {bilinear}: {a} vs {b}");
        }
    }
}
