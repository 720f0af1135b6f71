//! The functional API's merge layers (`Add`, `Multiply`, `Maximum`, ..) and the strided block
//! copy behind `Concatenate`.

use super::kernels::{Rows, for_chunks};
use crate::backend::ops::{CopyCols, MergeOp};

/// `y = op(xs[0], xs[1], ..)`, elementwise: inputs folded in from the left, in chunks split over
/// the thread pool when large (each element's arithmetic is the same either way).
pub fn merge(op: MergeOp, xs: &[&[f32]], y: &mut [f32]) {
    let n = y.len();
    let yr = Rows::new(y, 1);
    for_chunks(n, |r| {
        // SAFETY: chunks are disjoint.
        merge_chunk(op, xs, r.start, unsafe { yr.rows(&r) });
    });
}

/// [`merge`] of the elements from `at` on, into `y`.
fn merge_chunk(op: MergeOp, xs: &[&[f32]], at: usize, y: &mut [f32]) {
    let len = y.len();
    fn part(x: &[f32], at: usize, len: usize) -> &[f32] {
        &x[at..at + len]
    }
    let (first, rest) = xs.split_first().expect("a merge has inputs");
    let mut rest = rest.iter();
    // The first fold writes `y` from the first two inputs in one pass.
    match rest.next() {
        None => y.copy_from_slice(part(first, at, len)),
        Some(second) => {
            let triples = y.iter_mut().zip(part(first, at, len)).zip(part(second, at, len));
            match op {
                MergeOp::Add | MergeOp::Average => triples.for_each(|((y, a), b)| *y = a + b),
                MergeOp::Subtract => triples.for_each(|((y, a), b)| *y = a - b),
                MergeOp::Multiply => triples.for_each(|((y, a), b)| *y = a * b),
                MergeOp::Maximum => triples.for_each(|((y, a), b)| *y = maximum(*a, *b)),
                MergeOp::Minimum => triples.for_each(|((y, a), b)| *y = minimum(*a, *b)),
            }
        }
    }
    for x in rest {
        let pairs = y.iter_mut().zip(part(x, at, len));
        match op {
            MergeOp::Add | MergeOp::Average => pairs.for_each(|(a, b)| *a += b),
            MergeOp::Subtract => pairs.for_each(|(a, b)| *a -= b),
            MergeOp::Multiply => pairs.for_each(|(a, b)| *a *= b),
            MergeOp::Maximum => pairs.for_each(|(a, b)| *a = maximum(*a, *b)),
            MergeOp::Minimum => pairs.for_each(|(a, b)| *a = minimum(*a, *b)),
        }
    }
    if op == MergeOp::Average {
        let inv = 1.0 / xs.len() as f32;
        y.iter_mut().for_each(|v| *v *= inv);
    }
}

// NaN wins, as in Keras's `ops.maximum` / `ops.minimum` (f32::max would drop it).
#[inline(always)]
fn maximum(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() { b } else { a }
}

#[inline(always)]
fn minimum(a: f32, b: f32) -> f32 {
    if b < a || b.is_nan() { b } else { a }
}

/// The gradient of [`merge`] with respect to input `i`.
pub fn merge_backward(op: MergeOp, i: usize, xs: &[&[f32]], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    match op {
        MergeOp::Add => dx.copy_from_slice(dy),
        MergeOp::Average => {
            let inv = 1.0 / xs.len() as f32;
            dx.iter_mut().zip(dy).for_each(|(d, g)| *d = g * inv);
        }
        MergeOp::Subtract => {
            let sign = if i == 0 { 1.0 } else { -1.0 };
            dx.iter_mut().zip(dy).for_each(|(d, g)| *d = g * sign);
        }
        MergeOp::Multiply => {
            dx.copy_from_slice(dy);
            for (j, x) in xs.iter().enumerate() {
                if j != i {
                    dx.iter_mut().zip(x.iter()).for_each(|(d, v)| *d *= v);
                }
            }
        }
        MergeOp::Maximum | MergeOp::Minimum => {
            let x = xs[i];
            for k in 0..dx.len() {
                dx[k] = if x[k] == y[k] {
                    let ties = xs.iter().filter(|o| o[k] == y[k]).count();
                    dy[k] / ties as f32
                } else {
                    0.0
                };
            }
        }
    }
}

/// `dst[r, dst_off..dst_off + width] = src[r, src_off..src_off + width]` for `rows` rows.
pub fn copy_cols(c: &CopyCols, src: &[f32], dst: &mut [f32]) {
    let &CopyCols { rows, width, src_width, src_off, dst_width, dst_off } = c;
    for r in 0..rows {
        let s = r * src_width + src_off;
        let d = r * dst_width + dst_off;
        dst[d..d + width].copy_from_slice(&src[s..s + width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_their_gradients() {
        let (a, b) = ([1.0f32, -2.0, 3.0], [2.0f32, -2.0, 0.5]);
        let xs: [&[f32]; 2] = [&a, &b];
        let mut y = [0.0; 3];
        let mut dx = [0.0; 3];
        let dy = [1.0, 2.0, 4.0];
        merge(MergeOp::Maximum, &xs, &mut y);
        assert_eq!(y, [2.0, -2.0, 3.0]);
        merge_backward(MergeOp::Maximum, 0, &xs, &y, &dy, &mut dx);
        assert_eq!(dx, [0.0, 1.0, 4.0]);
        merge_backward(MergeOp::Maximum, 1, &xs, &y, &dy, &mut dx);
        assert_eq!(dx, [1.0, 1.0, 0.0]);
        merge(MergeOp::Subtract, &xs, &mut y);
        assert_eq!(y, [-1.0, 0.0, 2.5]);
        merge_backward(MergeOp::Subtract, 1, &xs, &y, &dy, &mut dx);
        assert_eq!(dx, [-1.0, -2.0, -4.0]);
        merge(MergeOp::Average, &xs, &mut y);
        assert_eq!(y, [1.5, -2.0, 1.75]);
        merge(MergeOp::Multiply, &xs, &mut y);
        assert_eq!(y, [2.0, 4.0, 1.5]);
        merge_backward(MergeOp::Multiply, 0, &xs, &y, &dy, &mut dx);
        assert_eq!(dx, [2.0, -4.0, 2.0]);
    }

    #[test]
    fn copies_blocks_of_columns() {
        let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = [0.0f32; 8];
        copy_cols(&CopyCols { rows: 2, width: 2, src_width: 3, src_off: 1, dst_width: 4, dst_off: 2 }, &src, &mut dst);
        assert_eq!(dst, [0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 5.0, 6.0]);
    }
}
