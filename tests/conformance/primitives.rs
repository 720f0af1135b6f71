//! The core: buffers and views, transfers, the sticky error, the matrix product, the elementwise
//! primitives and the row gather.

use crate::support::*;
use keras::backend::{Backend, Gemm, Transpose};

pub fn suite<B: Backend>(dev: &B) {
    buffers_and_views(dev);
    elementwise(dev);
    gemm(dev);
    gather(dev);
    errors(dev);
}

/// A new buffer is zero-filled; transfers round-trip exactly (NaN and infinities included);
/// views address the ranges they name.
fn buffers_and_views<B: Backend>(dev: &B) {
    assert!(!dev.describe().is_empty());
    for n in [0, 1, 7, 33, 1000] {
        let buf = dev.alloc(n).unwrap();
        assert_eq!(B::len(&buf), n);
        same("alloc", &down(dev, &buf), &vec![0.0; n]);
        let mut host = signed(n, n as u64);
        if n > 2 {
            (host[0], host[1], host[2]) = (f32::NAN, f32::INFINITY, f32::NEG_INFINITY);
        }
        let buf = up(dev, &host);
        same(&format!("upload/download of {n}"), &down(dev, &buf), &host);
        if n >= 7 {
            let view = B::sub(B::view(&buf, 1..n), 2..5);
            assert_eq!(B::view_len(view), 3);
            let mut out = vec![0.0; 3];
            dev.download(view, &mut out).unwrap();
            same("a sub-view", &out, &host[3..6]);
        }
    }
    let mut buf = up(dev, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    {
        let (mut a, b) = B::split_mut(vm::<B>(&mut buf), 2);
        dev.fill(B::reborrow(&mut a), 7.0);
        dev.copy(B::freeze(&a), B::split_mut(b, 2).0);
    }
    same("split, fill and copy", &down(dev, &buf), &[7.0, 7.0, 7.0, 7.0, 5.0]);
    let copy = up(dev, &down(dev, &buf));
    let mut empty = dev.alloc(0).unwrap();
    dev.copy(B::view(&copy, 0..0), vm::<B>(&mut empty));
    dev.fill(vm::<B>(&mut empty), 1.0);
}

/// `add`, `scale`, `multiply` and `fill` at every size, NaN and infinities propagating.
fn elementwise<B: Backend>(dev: &B) {
    for n in SIZES {
        let mut a = signed(n, 1);
        let b = signed(n, 2);
        a[0] = f32::NAN;
        if n > 1 {
            a[n - 1] = f32::INFINITY;
        }
        let (ab, bb) = (up(dev, &a), up(dev, &b));
        let mut sum = up(dev, &b);
        dev.add(v::<B>(&ab), vm::<B>(&mut sum));
        same(&format!("add of {n}"), &down(dev, &sum), &a.iter().zip(&b).map(|(a, b)| b + a).collect::<Vec<_>>());
        let mut prod = dev.alloc(n).unwrap();
        dev.multiply(v::<B>(&ab), v::<B>(&bb), vm::<B>(&mut prod));
        same(&format!("multiply of {n}"), &down(dev, &prod), &a.iter().zip(&b).map(|(a, b)| a * b).collect::<Vec<_>>());
        let mut scaled = up(dev, &a);
        dev.scale(vm::<B>(&mut scaled), -0.375);
        same(&format!("scale of {n}"), &down(dev, &scaled), &a.iter().map(|a| a * -0.375).collect::<Vec<_>>());
        dev.fill(vm::<B>(&mut scaled), f32::NAN);
        assert!(down(dev, &scaled).iter().all(|x| x.is_nan()), "fill with NaN");
    }
}

/// `C (+)= op(A) op(B)` for every transpose, overwrite and accumulate, at odd shapes; an inner
/// dimension of 0 gives zeros (or leaves `C` when accumulating); NaN in a row of `A` reaches that
/// row of `C` only.
fn gemm<B: Backend>(dev: &B) {
    let shapes = [(1, 1, 1), (1, 7, 33), (7, 1, 33), (33, 7, 1), (7, 33, 7), (33, 33, 33), (70, 130, 300), (0, 5, 3), (5, 0, 3), (4, 5, 0)];
    for (m, n, k) in shapes {
        for (ta, tb) in [
            (Transpose::No, Transpose::No),
            (Transpose::Yes, Transpose::No),
            (Transpose::No, Transpose::Yes),
            (Transpose::Yes, Transpose::Yes),
        ] {
            for accumulate in [false, true] {
                let (a, b, c0) = (signed(m * k, 3), signed(k * n, 4), signed(m * n, 5));
                let at = |i: usize, l: usize| if ta == Transpose::No { a[i * k + l] } else { a[l * m + i] } as f64;
                let bt = |l: usize, j: usize| if tb == Transpose::No { b[l * n + j] } else { b[j * k + l] } as f64;
                let want: Vec<f64> = (0..m * n)
                    .map(|ij| {
                        let (i, j) = (ij / n, ij % n);
                        let s: f64 = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
                        if accumulate { c0[ij] as f64 + s } else { s }
                    })
                    .collect();
                let (ab, bb, mut cb) = (up(dev, &a), up(dev, &b), up(dev, &c0));
                dev.gemm(&Gemm { m, n, k, ta, tb, accumulate }, v::<B>(&ab), v::<B>(&bb), vm::<B>(&mut cb));
                close(&format!("gemm {m}x{n}x{k} {ta:?} {tb:?} accumulate={accumulate}"), &down(dev, &cb), &want, rtol_for(k));
            }
        }
    }
    let (m, n, k) = (5, 6, 40);
    let mut a = signed(m * k, 6);
    a[2 * k + 11] = f32::NAN;
    let (ab, bb, mut cb) = (up(dev, &a), up(dev, &signed(k * n, 7)), dev.alloc(m * n).unwrap());
    dev.gemm(&Gemm::nn(m, n, k), v::<B>(&ab), v::<B>(&bb), vm::<B>(&mut cb));
    let c = down(dev, &cb);
    for (i, row) in c.chunks(n).enumerate() {
        assert!(row.iter().all(|x| x.is_nan() == (i == 2)), "NaN in row 2 of A: row {i} of C is {row:?}");
    }
}

/// Rows of a data set gathered by an uploaded order, from any position of the order.
fn gather<B: Backend>(dev: &B) {
    for row_len in [1, 7, 33] {
        let rows = 50;
        let src = signed(rows * row_len, row_len as u64);
        let order: Vec<usize> = (0..rows).map(|i| (i * 17 + 3) % rows).collect();
        let mut idx = dev.alloc_indices(rows).unwrap();
        dev.upload_indices(&order, &mut idx).unwrap();
        let sb = up(dev, &src);
        for (a, b) in [(0, 1), (5, 12), (10, 50), (49, 50), (20, 20)] {
            let mut dst = dev.alloc((b - a) * row_len).unwrap();
            dev.gather_rows(v::<B>(&sb), row_len, &idx, a..b, vm::<B>(&mut dst));
            let want: Vec<f32> = order[a..b].iter().flat_map(|&r| src[r * row_len..(r + 1) * row_len].to_vec()).collect();
            same(&format!("gather rows {a}..{b} of width {row_len}"), &down(dev, &dst), &want);
        }
    }
}

/// A kernel failure is returned by the next read (sync or download), once, the first one kept.
fn errors<B: Backend>(dev: &B) {
    dev.sync().unwrap();
    dev.fail(keras::Error::Config("first".to_string()));
    dev.fail(keras::Error::Config("second".to_string()));
    let buf = up(dev, &[1.0]);
    let mut host = [0.0];
    let e = dev.download(B::view(&buf, 0..1), &mut host).unwrap_err().to_string();
    assert!(e.contains("first"), "{e}");
    dev.download(B::view(&buf, 0..1), &mut host).unwrap();
    dev.fail(keras::Error::Config("third".to_string()));
    assert!(dev.sync().unwrap_err().to_string().contains("third"));
    dev.sync().unwrap();
}
