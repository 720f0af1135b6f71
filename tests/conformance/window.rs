//! Sliding-window kernels: im2col and its adjoint col2im, the depthwise product and its two
//! gradients, the depthwise convolution straight from the input, pooling and its backward pass, each against plain loops over the window geometry
//! (Keras's `same` and `valid` padding, explicit padding heavier at the top, strides, dilations,
//! windows larger than the image, an empty batch and one large enough for the CPU's threads).

use crate::support::*;
use keras::backend::{Backend, Depthwise, Pool2d, PoolKind, Window2d};

pub fn suite<B: Backend>(dev: &B) {
    im2col(dev);
    col2im(dev);
    depthwise(dev);
    depthwise_conv(dev);
    depthwise_kernel_grad(dev);
    depthwise_input_grad(dev);
    pool2d(dev);
    pool2d_backward(dev);
}

/// Floats either side of a kernel's output view, which the kernel must leave alone.
const FENCE: usize = 5;
/// What the fences hold.
const FENCE_VALUE: f32 = -31.0;
/// What an output view holds before the kernel runs (every kernel here overwrites its output).
const STALE: f32 = 1.0e30;

/// Runs `kernel` on a writable view of `len` stale floats in the middle of a larger buffer,
/// asserts it wrote nothing outside the view, and returns the view's contents.
fn output<B: Backend>(dev: &B, what: &str, len: usize, kernel: impl FnOnce(B::ViewMut<'_>)) -> Vec<f32> {
    let mut host = vec![FENCE_VALUE; len + 2 * FENCE];
    host[FENCE..FENCE + len].fill(STALE);
    let mut buf = up(dev, &host);
    kernel(B::view_mut(&mut buf, FENCE..FENCE + len));
    let after = down(dev, &buf);
    let fences: Vec<f32> = after[..FENCE].iter().chain(&after[FENCE + len..]).copied().collect();
    same(&format!("{what}: the floats around the output"), &fences, &[FENCE_VALUE; 2 * FENCE]);
    after[FENCE..FENCE + len].to_vec()
}

/// A window over `h x w x c` samples with window `k`, strides `s` and dilations `d` (rows,
/// columns); `same` pads as Keras's `padding="same"` (output `ceil(n / s)`, the odd padding row
/// or column at the bottom or right), else `valid` (no padding).
fn keras_window(h: usize, w: usize, c: usize, k: (usize, usize), s: (usize, usize), d: (usize, usize), same: bool) -> Window2d {
    let axis = |n: usize, k: usize, s: usize, d: usize| {
        let span = (k - 1) * d + 1;
        if same {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + span).saturating_sub(n);
            (out, total / 2)
        } else {
            ((n - span) / s + 1, 0)
        }
    };
    let ((oh, pt), (ow, pl)) = (axis(h, k.0, s.0, d.0), axis(w, k.1, s.1, d.1));
    Window2d { h, w, c, oh, ow, kh: k.0, kw: k.1, sh: s.0, sw: s.1, dh: d.0, dw: d.1, pt, pl }
}

/// The geometries every window kernel is tried on, each with its batch. Every window reads at
/// least one input pixel (pooling needs it).
fn cases() -> Vec<(usize, Window2d)> {
    vec![
        (1, keras_window(1, 1, 1, (1, 1), (1, 1), (1, 1), false)),
        // A 3x3 window over a 1x1 image: one tap inside, eight in padding.
        (2, keras_window(1, 1, 3, (3, 3), (1, 1), (1, 1), true)),
        (7, keras_window(5, 7, 3, (3, 3), (1, 1), (1, 1), true)),
        // Padding 1/1 rows, 0/1 columns.
        (7, keras_window(5, 7, 3, (3, 2), (2, 3), (1, 1), true)),
        // Padding 1/2 rows, 2/2 columns, dilated.
        (3, keras_window(6, 5, 7, (3, 3), (2, 2), (2, 2), true)),
        // Padding 1/1 rows, 0/1 columns, stride 3.
        (2, keras_window(7, 8, 3, (3, 3), (3, 3), (1, 1), true)),
        (4, keras_window(7, 9, 1, (2, 3), (3, 2), (2, 1), false)),
        // Stride 3 over 7: the last input row and column are never read.
        (1, keras_window(7, 7, 3, (2, 2), (3, 3), (1, 1), false)),
        // Explicit padding: 2 rows above and none below, 1 column left and 1 right.
        (5, Window2d { h: 5, w: 4, c: 2, oh: 5, ow: 3, kh: 3, kw: 2, sh: 1, sw: 2, dh: 1, dw: 1, pt: 2, pl: 1 }),
        // Large enough to be split over threads on the CPU.
        (33, keras_window(16, 16, 8, (3, 3), (1, 1), (1, 1), true)),
        (0, keras_window(5, 7, 3, (3, 3), (1, 1), (1, 1), true)),
    ]
}

/// The input pixels (`iy * w + ix`) read by the taps of output pixel `(oy, ox)`, in tap order
/// `i * kw + j`; `None` where a tap reads padding.
fn window_taps(g: &Window2d, oy: usize, ox: usize) -> Vec<Option<usize>> {
    let mut taps = Vec::new();
    for i in 0..g.kh {
        for j in 0..g.kw {
            let iy = (oy * g.sh + i * g.dh) as isize - g.pt as isize;
            let ix = (ox * g.sw + j * g.dw) as isize - g.pl as isize;
            let inside = iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w;
            taps.push(inside.then(|| iy as usize * g.w + ix as usize));
        }
    }
    taps
}

/// The reference im2col: patch row `(n, oy, ox)` holds, tap after tap, the `c` channels of the
/// pixel the tap reads, zeros for padding.
fn im2col_ref(g: &Window2d, batch: usize, x: &[f32]) -> Vec<f32> {
    let (pixels, patch) = (g.h * g.w, g.kh * g.kw * g.c);
    let mut cols = vec![0.0; batch * g.oh * g.ow * patch];
    for n in 0..batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = (n * g.oh + oy) * g.ow + ox;
                for (t, src) in window_taps(g, oy, ox).into_iter().enumerate() {
                    if let Some(s) = src {
                        for ch in 0..g.c {
                            cols[row * patch + t * g.c + ch] = x[(n * pixels + s) * g.c + ch];
                        }
                    }
                }
            }
        }
    }
    cols
}

/// The reference col2im: every patch entry added to the input value it was copied from.
fn col2im_ref(g: &Window2d, batch: usize, cols: &[f32]) -> Vec<f64> {
    let (pixels, patch) = (g.h * g.w, g.kh * g.kw * g.c);
    let mut dx = vec![0.0; batch * pixels * g.c];
    for n in 0..batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = (n * g.oh + oy) * g.ow + ox;
                for (t, src) in window_taps(g, oy, ox).into_iter().enumerate() {
                    if let Some(s) = src {
                        for ch in 0..g.c {
                            dx[(n * pixels + s) * g.c + ch] += cols[row * patch + t * g.c + ch] as f64;
                        }
                    }
                }
            }
        }
    }
    dx
}

/// `Σ a_i b_i` and `Σ |a_i b_i|` in f64.
fn dot(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(s, m), (&a, &b)| (s + a as f64 * b as f64, m + (a as f64 * b as f64).abs()))
}

/// im2col copies each tap's pixel (NaN and infinities included) and zeros for padding, at every
/// geometry.
fn im2col<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in cases().into_iter().enumerate() {
        let mut x = signed(batch * g.h * g.w * g.c, seed as u64);
        if !x.is_empty() {
            let n = x.len();
            (x[n / 2], x[n - 1]) = (f32::NAN, f32::NEG_INFINITY);
        }
        let what = format!("im2col, batch {batch}, {g:?}");
        let xb = up(dev, &x);
        let got = output(dev, &what, batch * g.oh * g.ow * g.kh * g.kw * g.c, |cols| dev.im2col(&g, batch, v::<B>(&xb), cols));
        same(&what, &got, &im2col_ref(&g, batch, &x));
    }
}

/// col2im sums the patch entries that copied each input value, and is the adjoint of im2col:
/// `<im2col(x), c> = <x, col2im(c)>`.
fn col2im<B: Backend>(dev: &B) {
    for (seed, (batch, g)) in cases().into_iter().enumerate() {
        let (in_len, cols_len) = (batch * g.h * g.w * g.c, batch * g.oh * g.ow * g.kh * g.kw * g.c);
        let (x, c) = (signed(in_len, 100 + seed as u64), signed(cols_len, 200 + seed as u64));
        let what = format!("col2im, batch {batch}, {g:?}");
        let (xb, cb) = (up(dev, &x), up(dev, &c));
        let dx = output(dev, &what, in_len, |dx| dev.col2im(&g, batch, v::<B>(&cb), dx));
        close(&what, &dx, &col2im_ref(&g, batch, &c), rtol_for(g.kh * g.kw));
        let cols = output(dev, &what, cols_len, |cols| dev.im2col(&g, batch, v::<B>(&xb), cols));
        let ((lhs, lhs_mag), (rhs, rhs_mag)) = (dot(&cols, &c), dot(&x, &dx));
        let tol = rtol_for(g.kh * g.kw) * lhs_mag.max(rhs_mag).max(1.0);
        assert!((lhs - rhs).abs() <= tol, "{what}: <im2col(x), c> = {lhs} but <x, col2im(c)> = {rhs}");
    }
}

/// The depthwise products tried: patch rows (none, one, a few, many, enough for the CPU's
/// threads), taps, channels and depth multipliers.
const DEPTHWISE: [Depthwise; 7] = [
    Depthwise { rows: 0, taps: 9, c: 3, dm: 2 },
    Depthwise { rows: 1, taps: 1, c: 1, dm: 1 },
    Depthwise { rows: 7, taps: 9, c: 3, dm: 1 },
    Depthwise { rows: 7, taps: 9, c: 3, dm: 2 },
    Depthwise { rows: 33, taps: 4, c: 7, dm: 3 },
    Depthwise { rows: 1000, taps: 9, c: 1, dm: 1 },
    Depthwise { rows: 2000, taps: 9, c: 8, dm: 2 },
];

/// A depthwise product's patch rows, kernel and output gradient.
fn depthwise_data(d: &Depthwise, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let &Depthwise { rows, taps, c, dm } = d;
    (signed(rows * taps * c, seed), signed(taps * c * dm, seed + 1), signed(rows * c * dm, seed + 2))
}

/// `y[r, ch * dm + m] = Σ_t cols[r, t * c + ch] · kernel[t, ch * dm + m]`.
fn depthwise<B: Backend>(dev: &B) {
    for (seed, d) in DEPTHWISE.iter().enumerate() {
        let &Depthwise { rows, taps, c, dm } = d;
        let (cols, kernel, _) = depthwise_data(d, 10 * seed as u64);
        let mut want = vec![0.0f64; rows * c * dm];
        for r in 0..rows {
            for ch in 0..c {
                for m in 0..dm {
                    for t in 0..taps {
                        want[r * c * dm + ch * dm + m] += cols[r * taps * c + t * c + ch] as f64 * kernel[t * c * dm + ch * dm + m] as f64;
                    }
                }
            }
        }
        let (cb, kb) = (up(dev, &cols), up(dev, &kernel));
        let what = format!("depthwise {d:?}");
        let got = output(dev, &what, rows * c * dm, |y| dev.depthwise(d, v::<B>(&cb), v::<B>(&kb), y));
        close(&what, &got, &want, rtol_for(taps));
    }
}

/// The depthwise convolution of the input (`depthwise_conv`, which may skip the patch matrix) is
/// the depthwise product of its im2col, at every geometry, with depth multipliers 1 and 2 (channel
/// counts off the SIMD widths, a window with more taps than the CPU gathers at once).
fn depthwise_conv<B: Backend>(dev: &B) {
    let mut geometries = cases();
    geometries.push((2, keras_window(12, 11, 19, (9, 9), (1, 1), (1, 1), true)));
    geometries.push((2, keras_window(9, 9, 35, (3, 3), (2, 2), (1, 1), true)));
    for (seed, (batch, g)) in geometries.into_iter().enumerate() {
        for dm in [1, 2] {
            let (taps, c) = (g.kh * g.kw, g.c);
            let rows = batch * g.oh * g.ow;
            let x = signed(batch * g.h * g.w * c, 300 + seed as u64);
            let kernel = signed(taps * c * dm, 400 + seed as u64);
            let cols = im2col_ref(&g, batch, &x);
            let mut want = vec![0.0f64; rows * c * dm];
            for r in 0..rows {
                for ch in 0..c {
                    for m in 0..dm {
                        for t in 0..taps {
                            want[r * c * dm + ch * dm + m] +=
                                cols[r * taps * c + t * c + ch] as f64 * kernel[t * c * dm + ch * dm + m] as f64;
                        }
                    }
                }
            }
            let d = Depthwise { rows, taps, c, dm };
            let what = format!("depthwise_conv, batch {batch}, dm {dm}, {g:?}");
            let (xb, kb) = (up(dev, &x), up(dev, &kernel));
            let mut scratch = up(dev, &vec![0.0; rows * taps * c]);
            let got = output(dev, &what, rows * c * dm, |y| {
                let scratch = B::view_mut(&mut scratch, 0..rows * taps * c);
                dev.depthwise_conv(&g, &d, batch, v::<B>(&xb), v::<B>(&kb), scratch, y)
            });
            close(&what, &got, &want, rtol_for(taps));
        }
    }
}

/// `dkernel[t, ch * dm + m] = Σ_r cols[r, t * c + ch] · dy[r, ch * dm + m]` (zeros for no rows).
fn depthwise_kernel_grad<B: Backend>(dev: &B) {
    for (seed, d) in DEPTHWISE.iter().enumerate() {
        let &Depthwise { rows, taps, c, dm } = d;
        let (cols, _, dy) = depthwise_data(d, 10 * seed as u64);
        let mut want = vec![0.0f64; taps * c * dm];
        for t in 0..taps {
            for ch in 0..c {
                for m in 0..dm {
                    for r in 0..rows {
                        want[t * c * dm + ch * dm + m] += cols[r * taps * c + t * c + ch] as f64 * dy[r * c * dm + ch * dm + m] as f64;
                    }
                }
            }
        }
        let (cb, db) = (up(dev, &cols), up(dev, &dy));
        let what = format!("depthwise_kernel_grad {d:?}");
        let got = output(dev, &what, taps * c * dm, |dk| dev.depthwise_kernel_grad(d, v::<B>(&cb), v::<B>(&db), dk));
        close(&what, &got, &want, rtol_for(rows));
    }
}

/// `dcols[r, t * c + ch] = Σ_m dy[r, ch * dm + m] · kernel[t, ch * dm + m]`.
fn depthwise_input_grad<B: Backend>(dev: &B) {
    for (seed, d) in DEPTHWISE.iter().enumerate() {
        let &Depthwise { rows, taps, c, dm } = d;
        let (_, kernel, dy) = depthwise_data(d, 10 * seed as u64);
        let mut want = vec![0.0f64; rows * taps * c];
        for r in 0..rows {
            for t in 0..taps {
                for ch in 0..c {
                    for m in 0..dm {
                        want[r * taps * c + t * c + ch] += dy[r * c * dm + ch * dm + m] as f64 * kernel[t * c * dm + ch * dm + m] as f64;
                    }
                }
            }
        }
        let (kb, db) = (up(dev, &kernel), up(dev, &dy));
        let what = format!("depthwise_input_grad {d:?}");
        let got = output(dev, &what, rows * taps * c, |dc| dev.depthwise_input_grad(d, v::<B>(&kb), v::<B>(&db), dc));
        close(&what, &got, &want, rtol_for(dm));
    }
}

/// The input pixels a pooling window reads (padding left out; there must be one).
fn inside(g: &Window2d, oy: usize, ox: usize) -> Vec<usize> {
    let src: Vec<usize> = window_taps(g, oy, ox).into_iter().flatten().collect();
    assert!(!src.is_empty(), "a test case with a window that reads only padding: {g:?}");
    src
}

/// The reference pooling: the largest value of the pixels a window reads (NaN when one is NaN,
/// as Keras's `lax.max`), or their mean.
fn pool_ref(p: &Pool2d, batch: usize, x: &[f32]) -> Vec<f64> {
    let g = &p.window;
    let mut y = vec![0.0; batch * g.oh * g.ow * g.c];
    for n in 0..batch {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let src = inside(g, oy, ox);
                for ch in 0..g.c {
                    let vals: Vec<f64> = src.iter().map(|&s| x[(n * g.h * g.w + s) * g.c + ch] as f64).collect();
                    y[((n * g.oh + oy) * g.ow + ox) * g.c + ch] = match p.kind {
                        PoolKind::Max => vals.iter().copied().fold(f64::NEG_INFINITY, |m, v| if v.is_nan() || v > m { v } else { m }),
                        PoolKind::Average => vals.iter().sum::<f64>() / vals.len() as f64,
                    };
                }
            }
        }
    }
    y
}

/// A pooling test's input: for max pooling negative values (so padding read as 0 would win)
/// with many ties, a `+inf`, a NaN and a `-inf` (where the input is long enough to hold them
/// apart); for average pooling values of both signs and a NaN.
fn pool_input(kind: PoolKind, len: usize, seed: u64) -> Vec<f32> {
    let mut x = match kind {
        PoolKind::Max => data(len, seed, -2.0, -1.0).iter().map(|v| (v * 4.0).round() / 4.0).collect(),
        PoolKind::Average => signed(len, seed),
    };
    if len > 0 {
        x[len / 2] = if kind == PoolKind::Max { f32::INFINITY } else { f32::NAN };
    }
    if kind == PoolKind::Max && len >= 4 {
        (x[len * 3 / 4], x[len / 4]) = (f32::NAN, f32::NEG_INFINITY);
    }
    x
}

/// Max pooling never picks padding and gives NaN for exactly the windows that read a NaN (as
/// Keras's, where `f32::max` and `fmaxf` would drop it); average pooling divides by the taps
/// inside the input (not the padding) and propagates NaN to exactly the windows that read it.
fn pool2d<B: Backend>(dev: &B) {
    for kind in [PoolKind::Max, PoolKind::Average] {
        for (seed, (batch, window)) in cases().into_iter().enumerate() {
            let p = Pool2d { window, kind };
            let x = pool_input(kind, batch * window.h * window.w * window.c, seed as u64);
            let what = format!("pool2d {kind:?}, batch {batch}, {window:?}");
            let xb = up(dev, &x);
            let got = output(dev, &what, batch * window.oh * window.ow * window.c, |y| dev.pool2d(&p, batch, v::<B>(&xb), y));
            let want = pool_ref(&p, batch, &x);
            match kind {
                PoolKind::Max => same(&what, &got, &want.iter().map(|&w| w as f32).collect::<Vec<_>>()),
                PoolKind::Average => close(&what, &got, &want, rtol_for(window.kh * window.kw)),
            }
        }
    }
}

/// Max pooling's gradient goes to the first input (in window order) equal to the output, ties
/// and all, or to the first NaN of a window whose output is NaN; average pooling's is spread
/// evenly over the taps inside the input (a NaN in the output gradient reaching exactly those);
/// overlapping windows add up.
fn pool2d_backward<B: Backend>(dev: &B) {
    for kind in [PoolKind::Max, PoolKind::Average] {
        for (seed, (batch, g)) in cases().into_iter().enumerate() {
            let p = Pool2d { window: g, kind };
            let x = pool_input(kind, batch * g.h * g.w * g.c, 300 + seed as u64);
            let y: Vec<f32> = pool_ref(&p, batch, &x).iter().map(|&v| v as f32).collect();
            let mut dy = signed(y.len(), 400 + seed as u64);
            if kind == PoolKind::Average && !dy.is_empty() {
                dy[0] = f32::NAN;
            }
            let mut want = vec![0.0f64; x.len()];
            for n in 0..batch {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let src = inside(&g, oy, ox);
                        for ch in 0..g.c {
                            let o = ((n * g.oh + oy) * g.ow + ox) * g.c + ch;
                            let at = |s: usize| (n * g.h * g.w + s) * g.c + ch;
                            match kind {
                                PoolKind::Max => {
                                    let hit = |s: usize| x[at(s)] == y[o] || (x[at(s)].is_nan() && y[o].is_nan());
                                    let first = src.iter().find(|&&s| hit(s)).expect("the maximum is one of the window's inputs");
                                    want[at(*first)] += dy[o] as f64;
                                }
                                PoolKind::Average => {
                                    for &s in &src {
                                        want[at(s)] += dy[o] as f64 / src.len() as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let what = format!("pool2d_backward {kind:?}, batch {batch}, {g:?}");
            let (xb, yb, db) = (up(dev, &x), up(dev, &y), up(dev, &dy));
            let got = output(dev, &what, x.len(), |dx| dev.pool2d_backward(&p, batch, v::<B>(&xb), v::<B>(&yb), v::<B>(&db), dx));
            close(&what, &got, &want, rtol_for(g.kh * g.kw));
        }
    }
}
