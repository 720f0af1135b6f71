//! `NormOps`: batch statistics, moving averages, batch and layer normalization and their
//! backward passes, with and without the scale and offset; standardization by given statistics
//! and its backward pass; rescaling.

use crate::support::*;
use keras::backend::{Affine, Backend, BatchStats, Norm, NormGrads, Rescale, Standardize};

pub fn suite<B: Backend>(dev: &B) {
    moments_and_moving_average(dev);
    batch_norm(dev);
    layer_norm(dev);
    nan_propagates(dev);
    standardize(dev);
    rescale(dev);
}

/// The shapes tried: rows of samples (times positions) by features.
const SHAPES: [(usize, usize); 6] = [(1, 1), (7, 1), (1, 7), (33, 7), (7, 33), (1000, 3)];

/// Per column of a `rows x cols` matrix: the mean and the biased variance.
fn column_moments(x: &[f32], rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mean: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| x[r * cols + c] as f64).sum::<f64>() / rows as f64).collect();
    let var = (0..cols).map(|c| (0..rows).map(|r| (x[r * cols + c] as f64 - mean[c]).powi(2)).sum::<f64>() / rows as f64).collect();
    (mean, var)
}

/// The normalized values and their gradients, as `normalize` over `n` values sharing statistics:
/// `y = gamma x̂ + beta`, `dx = inv / n (n g - Σ g - x̂ Σ g x̂)` with `g = dy gamma`.
struct Normalized {
    y: Vec<f64>,
    dx: Vec<f64>,
    dgamma: Vec<f64>,
    dbeta: Vec<f64>,
}

/// The reference for a `rows x cols` matrix whose statistics are per row (layer normalization) or
/// per column (batch normalization); gamma and beta are per column.
fn normalize(x: &[f32], dy: &[f32], gamma: Option<&[f32]>, beta: Option<&[f32]>, eps: f64, cols: usize, per_row: bool) -> Normalized {
    let rows = x.len() / cols;
    let (groups, features) = (if per_row { rows } else { cols }, cols);
    let group = |i: usize| if per_row { i / cols } else { i % cols };
    let feature = |i: usize| i % cols;
    let n = x.len() / groups;
    let (mut mean, mut var) = (vec![0.0f64; groups], vec![0.0f64; groups]);
    for (i, &v) in x.iter().enumerate() {
        mean[group(i)] += v as f64 / n as f64;
    }
    for (i, &v) in x.iter().enumerate() {
        var[group(i)] += (v as f64 - mean[group(i)]).powi(2) / n as f64;
    }
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let gam = |i: usize| gamma.map_or(1.0, |g| g[feature(i)] as f64);
    let xhat: Vec<f64> = x.iter().enumerate().map(|(i, &v)| (v as f64 - mean[group(i)]) * inv[group(i)]).collect();
    let y = xhat.iter().enumerate().map(|(i, h)| h * gam(i) + beta.map_or(0.0, |b| b[feature(i)] as f64)).collect();
    let (mut sum_g, mut sum_gx) = (vec![0.0f64; groups], vec![0.0f64; groups]);
    let (mut dgamma, mut dbeta) = (vec![0.0f64; features], vec![0.0f64; features]);
    for i in 0..x.len() {
        let g = dy[i] as f64 * gam(i);
        sum_g[group(i)] += g;
        sum_gx[group(i)] += g * xhat[i];
        dgamma[feature(i)] += dy[i] as f64 * xhat[i];
        dbeta[feature(i)] += dy[i] as f64;
    }
    let nf = n as f64;
    let dx = (0..x.len())
        .map(|i| {
            let k = group(i);
            inv[k] / nf * (nf * dy[i] as f64 * gam(i) - sum_g[k] - xhat[i] * sum_gx[k])
        })
        .collect();
    Normalized { y, dx, dgamma, dbeta }
}

/// Column means and biased variances; the moving average towards a value.
fn moments_and_moving_average<B: Backend>(dev: &B) {
    for (rows, cols) in SHAPES {
        let x = data(rows * cols, 1, -2.0, 3.0);
        let (mean, var) = column_moments(&x, rows, cols);
        let (xb, mut mb, mut vb) = (up(dev, &x), dev.alloc(cols).unwrap(), dev.alloc(cols).unwrap());
        dev.moments(&Norm { rows, cols, epsilon: 1e-3 }, v::<B>(&xb), vm::<B>(&mut mb), vm::<B>(&mut vb));
        close(&format!("moments {rows}x{cols} mean"), &down(dev, &mb), &mean, rtol_for(rows));
        close(&format!("moments {rows}x{cols} variance"), &down(dev, &vb), &var, 4.0 * rtol_for(rows));
        let (moving, value) = (signed(cols, 2), signed(cols, 3));
        let (mut movb, valb) = (up(dev, &moving), up(dev, &value));
        dev.moving_average(0.99, vm::<B>(&mut movb), v::<B>(&valb));
        let want: Vec<f64> = moving.iter().zip(&value).map(|(&m, &v)| m as f64 * 0.99 + v as f64 * 0.01).collect();
        close(&format!("moving_average of {cols}"), &down(dev, &movb), &want, 1e-7);
    }
}

/// Batch normalization with the batch's statistics (`var` becomes `1 / sqrt(var + eps)`), and its
/// backward pass through them; every combination of scale and offset; also with given (moving)
/// statistics.
fn batch_norm<B: Backend>(dev: &B) {
    for (rows, cols) in SHAPES {
        for (scale, center) in [(true, true), (true, false), (false, true), (false, false)] {
            let eps = 1e-3;
            let n = Norm { rows, cols, epsilon: eps };
            let (x, dy) = (data(rows * cols, 4, -2.0, 3.0), signed(rows * cols, 5));
            let (gamma, beta) = (data(cols, 6, 0.5, 1.5), signed(cols, 7));
            let r = normalize(&x, &dy, scale.then_some(&gamma[..]), center.then_some(&beta[..]), eps as f64, cols, false);
            let var = column_moments(&x, rows, cols).1;
            let what = format!("batch_norm {rows}x{cols} scale={scale} center={center}");
            let (xb, gb, bb, dyb) = (up(dev, &x), up(dev, &gamma), up(dev, &beta), up(dev, &dy));
            let (mut mb, mut vb, mut yb) = (dev.alloc(cols).unwrap(), dev.alloc(cols).unwrap(), dev.alloc(rows * cols).unwrap());
            dev.moments(&n, v::<B>(&xb), vm::<B>(&mut mb), vm::<B>(&mut vb));
            let affine = || Affine { gamma: scale.then(|| v::<B>(&gb)), beta: center.then(|| v::<B>(&bb)) };
            dev.batch_norm(&n, v::<B>(&xb), v::<B>(&mb), vm::<B>(&mut vb), affine(), vm::<B>(&mut yb));
            close(&what, &down(dev, &yb), &r.y, 8.0 * rtol_for(rows));
            let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps as f64).sqrt()).collect();
            close(&format!("{what}: var becomes 1 / sqrt(var + eps)"), &down(dev, &vb), &inv, 8.0 * rtol_for(rows));
            let (mut dg, mut db, mut dx) = (dev.alloc(cols).unwrap(), dev.alloc(cols).unwrap(), dev.alloc(rows * cols).unwrap());
            dev.batch_norm_backward(
                &n,
                v::<B>(&xb),
                v::<B>(&dyb),
                BatchStats { mean: v::<B>(&mb), inv: v::<B>(&vb) },
                scale.then(|| v::<B>(&gb)),
                NormGrads { dgamma: scale.then(|| vm::<B>(&mut dg)), dbeta: center.then(|| vm::<B>(&mut db)), dx: Some(vm::<B>(&mut dx)) },
            );
            close(&format!("{what} dx"), &down(dev, &dx), &r.dx, 16.0 * rtol_for(rows));
            if scale {
                close(&format!("{what} dgamma"), &down(dev, &dg), &r.dgamma, 8.0 * rtol_for(rows));
            }
            if center {
                close(&format!("{what} dbeta"), &down(dev, &db), &r.dbeta, 8.0 * rtol_for(rows));
            }
            // Inference: the moving statistics given, `var` turned into the inverse deviation.
            let (moving_mean, moving_var) = (signed(cols, 8), data(cols, 9, 0.5, 2.0));
            let (mmb, mut mvb, mut yb) = (up(dev, &moving_mean), up(dev, &moving_var), dev.alloc(rows * cols).unwrap());
            dev.batch_norm(&n, v::<B>(&xb), v::<B>(&mmb), vm::<B>(&mut mvb), affine(), vm::<B>(&mut yb));
            let want: Vec<f64> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = i % cols;
                    let h = (v as f64 - moving_mean[c] as f64) / (moving_var[c] as f64 + eps as f64).sqrt();
                    h * if scale { gamma[c] as f64 } else { 1.0 } + if center { beta[c] as f64 } else { 0.0 }
                })
                .collect();
            close(&format!("{what} with moving statistics"), &down(dev, &yb), &want, 1e-6);
        }
    }
}

/// Layer normalization of each row, its statistics kept per row, and its backward pass.
fn layer_norm<B: Backend>(dev: &B) {
    for (rows, cols) in SHAPES {
        for (scale, center) in [(true, true), (false, true), (true, false)] {
            let eps = 1e-3;
            let n = Norm { rows, cols, epsilon: eps };
            let (x, dy) = (data(rows * cols, 10, -2.0, 3.0), signed(rows * cols, 11));
            let (gamma, beta) = (data(cols, 12, 0.5, 1.5), signed(cols, 13));
            let r = normalize(&x, &dy, scale.then_some(&gamma[..]), center.then_some(&beta[..]), eps as f64, cols, true);
            let what = format!("layer_norm {rows}x{cols} scale={scale} center={center}");
            let (xb, gb, bb, dyb) = (up(dev, &x), up(dev, &gamma), up(dev, &beta), up(dev, &dy));
            let (mut yb, mut st) = (dev.alloc(rows * cols).unwrap(), dev.alloc(2 * rows).unwrap());
            let affine = Affine { gamma: scale.then(|| v::<B>(&gb)), beta: center.then(|| v::<B>(&bb)) };
            dev.layer_norm(&n, v::<B>(&xb), affine, vm::<B>(&mut yb), vm::<B>(&mut st));
            close(&what, &down(dev, &yb), &r.y, 8.0 * rtol_for(cols));
            let stats = down(dev, &st);
            for (row, s) in stats.chunks(2).enumerate() {
                let xr = &x[row * cols..(row + 1) * cols];
                let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
                let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
                close(&format!("{what} row {row} statistics"), s, &[mean, 1.0 / (var + eps as f64).sqrt()], 8.0 * rtol_for(cols));
            }
            let (mut dg, mut db, mut dx) = (dev.alloc(cols).unwrap(), dev.alloc(cols).unwrap(), dev.alloc(rows * cols).unwrap());
            dev.layer_norm_backward(
                &n,
                v::<B>(&xb),
                v::<B>(&dyb),
                v::<B>(&st),
                scale.then(|| v::<B>(&gb)),
                NormGrads { dgamma: scale.then(|| vm::<B>(&mut dg)), dbeta: center.then(|| vm::<B>(&mut db)), dx: Some(vm::<B>(&mut dx)) },
            );
            close(&format!("{what} dx"), &down(dev, &dx), &r.dx, 16.0 * rtol_for(cols));
            if scale {
                close(&format!("{what} dgamma"), &down(dev, &dg), &r.dgamma, 8.0 * rtol_for(rows));
            }
            if center {
                close(&format!("{what} dbeta"), &down(dev, &db), &r.dbeta, 8.0 * rtol_for(rows));
            }
        }
    }
}

/// A NaN in a column makes that column's statistics and outputs NaN (batch normalization), or
/// that row's (layer normalization), and nothing else.
fn nan_propagates<B: Backend>(dev: &B) {
    let (rows, cols) = (5, 4);
    let mut x = signed(rows * cols, 14);
    x[2 * cols + 1] = f32::NAN;
    let n = Norm { rows, cols, epsilon: 1e-3 };
    let xb = up(dev, &x);
    let (mut mb, mut vb, mut yb) = (dev.alloc(cols).unwrap(), dev.alloc(cols).unwrap(), dev.alloc(rows * cols).unwrap());
    dev.moments(&n, v::<B>(&xb), vm::<B>(&mut mb), vm::<B>(&mut vb));
    dev.batch_norm(&n, v::<B>(&xb), v::<B>(&mb), vm::<B>(&mut vb), Affine { gamma: None, beta: None }, vm::<B>(&mut yb));
    for (i, y) in down(dev, &yb).iter().enumerate() {
        assert_eq!(y.is_nan(), i % cols == 1, "batch_norm: element {i} is {y}");
    }
    let mut st = dev.alloc(2 * rows).unwrap();
    dev.layer_norm(&n, v::<B>(&xb), Affine { gamma: None, beta: None }, vm::<B>(&mut yb), vm::<B>(&mut st));
    for (i, y) in down(dev, &yb).iter().enumerate() {
        assert_eq!(y.is_nan(), i / cols == 2, "layer_norm: element {i} is {y}");
    }
}

/// `Normalization`'s standardization and its inverse by per-feature statistics, and their input
/// gradients: one feature (axis None), features on the last axis (`inner` 1), features with
/// values after them; a zero variance divides by epsilon (a value at its mean becomes 0), a NaN
/// or negative variance gives NaN for its feature alone; only the first `len` values are written.
fn standardize<B: Backend>(dev: &B) {
    const EPS: f32 = 1e-7;
    for (features, inner, samples) in [(1, 1, 1), (1, 7, 3), (7, 1, 5), (3, 4, 2), (33, 1, 31), (5, 2, 100)] {
        let len = samples * features * inner;
        let mean = data(features, 16, -2.0, 2.0);
        let mut var = data(features, 17, 0.0, 4.0);
        let mut x = data(len, 18, -3.0, 3.0);
        let dy = signed(len, 19);
        if features > 2 {
            var[0] = 0.0;
            var[1] = f32::NAN;
            var[2] = -1.0;
            x[0] = mean[0];
        }
        for invert in [false, true] {
            let s = Standardize { len, features, inner, epsilon: EPS, invert };
            let what = format!("standardize of {len} ({features} features, {inner} inner, invert={invert})");
            let (xb, mb, vb, dyb) = (up(dev, &x), up(dev, &mean), up(dev, &var), up(dev, &dy));
            let (mut yb, mut dxb) = (up(dev, &vec![7.0; len + 1]), up(dev, &vec![7.0; len + 1]));
            dev.standardize(&s, v::<B>(&xb), v::<B>(&mb), v::<B>(&vb), B::view_mut(&mut yb, 0..len));
            dev.standardize_backward(&s, v::<B>(&vb), v::<B>(&dyb), B::view_mut(&mut dxb, 0..len));
            let dev_of = |i: usize| {
                let c = (i / inner) % features;
                let d = (var[c] as f64).sqrt();
                (c, if d < EPS as f64 { EPS as f64 } else { d })
            };
            let (mut y, mut dx) = (Vec::new(), Vec::new());
            for i in 0..len {
                let (c, d) = dev_of(i);
                let (m, v) = (mean[c] as f64, x[i] as f64);
                y.push(if invert { m + v * d } else { (v - m) / d });
                dx.push(if invert { dy[i] as f64 * d } else { dy[i] as f64 / d });
            }
            y.push(7.0);
            dx.push(7.0);
            let got = down(dev, &yb);
            if features > 2 && !invert {
                assert_eq!(got[0], 0.0, "{what}: a value at the mean of a constant feature");
            }
            close(&what, &got, &y, 1e-6);
            close(&format!("{what} dx"), &down(dev, &dxb), &dx, 1e-6);
        }
    }
}

/// `y = x * scale + offset` at every size, with and without an offset, NaN and infinities carried
/// through; only the first `len` values are written.
fn rescale<B: Backend>(dev: &B) {
    for len in SIZES {
        for (scale, offset) in [(1.0 / 255.0, 0.0), (-2.5, 0.75), (0.0, -1.0)] {
            let mut x = data(len, 15, -300.0, 300.0);
            x[len / 2] = f32::NAN;
            if len > 2 {
                x[1] = f32::INFINITY;
            }
            let r = Rescale { len, scale, offset };
            let (xb, mut yb) = (up(dev, &x), up(dev, &vec![7.0; len + 1]));
            dev.rescale(&r, v::<B>(&xb), B::view_mut(&mut yb, 0..len));
            let want: Vec<f64> = x.iter().map(|&v| v as f64 * scale as f64 + offset as f64).chain([7.0]).collect();
            close(&format!("rescale of {len} by {scale}, {offset}"), &down(dev, &yb), &want, 1e-6);
        }
    }
}
