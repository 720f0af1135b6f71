//! The functional API's merge layers (`Add`, `Multiply`, `Maximum`, ..) and the strided block
//! copy behind `Concatenate`.

use crate::backend::ops::{CopyCols, MergeOp};

/// `y = op(xs[0], xs[1], ..)`, elementwise.
pub fn merge(op: MergeOp, xs: &[&[f32]], y: &mut [f32]) {
    let (first, rest) = xs.split_first().expect("a merge has inputs");
    y.copy_from_slice(first);
    for x in rest {
        let pairs = y.iter_mut().zip(x.iter());
        match op {
            MergeOp::Add | MergeOp::Average => pairs.for_each(|(a, b)| *a += b),
            MergeOp::Subtract => pairs.for_each(|(a, b)| *a -= b),
            MergeOp::Multiply => pairs.for_each(|(a, b)| *a *= b),
            // NaN wins, as in Keras's `ops.maximum` / `ops.minimum` (f32::max would drop it).
            MergeOp::Maximum => pairs.for_each(|(a, b)| *a = if *b > *a || b.is_nan() { *b } else { *a }),
            MergeOp::Minimum => pairs.for_each(|(a, b)| *a = if *b < *a || b.is_nan() { *b } else { *a }),
        }
    }
    if op == MergeOp::Average {
        let inv = 1.0 / xs.len() as f32;
        y.iter_mut().for_each(|v| *v *= inv);
    }
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
