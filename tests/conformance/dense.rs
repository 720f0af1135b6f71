//! `DenseOps`: a dense layer's product with its bias and activation, the activation alone, and
//! the activation's backward pass with the bias gradient, for every Keras activation.

use crate::support::*;
use keras::activations::Activation;
use keras::backend::{Backend, BiasAct, Linear};

pub fn suite<B: Backend>(dev: &B) {
    linear(dev);
    bias_act(dev);
    act_backward(dev);
    nan_propagates(dev);
}

/// `erf` in f64: its Maclaurin series below 3 (exact to about 1e-13 there), beyond it
/// Abramowitz and Stegun 7.1.26 (within 1.5e-7 of a value within 2.3e-5 of ±1).
fn erf(x: f64) -> f64 {
    if x.abs() < 3.0 {
        let (mut term, mut sum, x2) = (x, x, x * x);
        for n in 1..200 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        return sum * 2.0 / std::f64::consts::PI.sqrt();
    }
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (1.0 - poly * (-x * x).exp()).copysign(x)
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Keras 3's activation at `x` (softmax is row-wise, see [`activate`]).
fn reference(act: Activation, x: f64) -> f64 {
    const ALPHA: f64 = 1.673_263_242_354_377_3;
    const SCALE: f64 = 1.050_700_987_355_480_5;
    match act {
        Activation::Linear | Activation::Softmax => x,
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        Activation::Selu => SCALE * if x > 0.0 { x } else { ALPHA * x.exp_m1() },
        Activation::Softplus => softplus(x),
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Swish => x * sigmoid(x),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::LeakyRelu => {
            if x >= 0.0 {
                x
            } else {
                0.2 * x
            }
        }
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Activation::Exponential => x.exp(),
        Activation::Mish => x * softplus(x).tanh(),
    }
}

/// The activation over rows of `cols`, in f64.
fn activate(act: Activation, z: &[f64], cols: usize) -> Vec<f64> {
    if act != Activation::Softmax {
        return z.iter().map(|&v| reference(act, v)).collect();
    }
    z.chunks(cols)
        .flat_map(|row| {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect()
}

/// Every activation.
fn cases() -> impl Iterator<Item = Activation> {
    Activation::NAMES.iter().map(|&(_, a)| a)
}

/// Inputs in `[-4, 4)` nudged off the activations' kinks (0, ±3, 6).
fn inputs(n: usize, seed: u64) -> Vec<f32> {
    data(n, seed, -4.0, 4.0).into_iter().map(|x| if (x.fract()).abs() < 1e-3 { x + 0.01 } else { x }).collect()
}

/// `y = act(x · w + bias)` and its pre-activation, against f64, at odd shapes, with and without
/// bias, every activation.
fn linear<B: Backend>(dev: &B) {
    for (rows, k, n) in [(1, 1, 1), (7, 33, 1), (33, 7, 10), (1, 50, 33), (1000, 20, 7), (130, 70, 40)] {
        for act in cases() {
            for with_bias in [true, false] {
                let (x, w, b) = (signed(rows * k, 1), data(k * n, 2, -0.3, 0.3), signed(n, 3));
                let z: Vec<f64> = (0..rows * n)
                    .map(|ij| {
                        let (i, j) = (ij / n, ij % n);
                        (0..k).map(|l| x[i * k + l] as f64 * w[l * n + j] as f64).sum::<f64>() + if with_bias { b[j] as f64 } else { 0.0 }
                    })
                    .collect();
                let want = activate(act, &z, n);
                let (xb, wb, bb) = (up(dev, &x), up(dev, &w), up(dev, &b));
                let l = Linear { rows, k, n, act };
                let what = format!("linear {rows}x{k}x{n} {act:?} bias={with_bias}");
                let mut y = dev.alloc(rows * n).unwrap();
                dev.linear(&l, v::<B>(&xb), v::<B>(&wb), with_bias.then(|| v::<B>(&bb)), vm::<B>(&mut y), None);
                close(&what, &down(dev, &y), &want, 4.0 * rtol_for(k));
                let (mut y, mut pre) = (dev.alloc(rows * n).unwrap(), dev.alloc(rows * n).unwrap());
                dev.linear(&l, v::<B>(&xb), v::<B>(&wb), with_bias.then(|| v::<B>(&bb)), vm::<B>(&mut y), Some(vm::<B>(&mut pre)));
                close(&format!("{what} (pre kept)"), &down(dev, &y), &want, 4.0 * rtol_for(k));
                close(&format!("{what} pre"), &down(dev, &pre), &z, rtol_for(k));
            }
        }
    }
}

/// `y = act(y + bias)` in place, the sum kept in `pre`.
fn bias_act<B: Backend>(dev: &B) {
    for (rows, cols) in [(1, 1), (1, 7), (7, 1), (33, 7), (7, 33), (1000, 3), (9, 1000)] {
        for act in cases() {
            let (y0, b) = (inputs(rows * cols, 4), data(cols, 5, -0.5, 0.5));
            let z: Vec<f64> = y0.iter().enumerate().map(|(i, &v)| (v + b[i % cols]) as f64).collect();
            let (mut y, bb, mut pre) = (up(dev, &y0), up(dev, &b), dev.alloc(rows * cols).unwrap());
            dev.bias_act(&BiasAct { rows, cols, act }, vm::<B>(&mut y), Some(v::<B>(&bb)), Some(vm::<B>(&mut pre)));
            close(&format!("bias_act {rows}x{cols} {act:?}"), &down(dev, &y), &activate(act, &z, cols), 2e-6);
            close(&format!("bias_act {rows}x{cols} {act:?} pre"), &down(dev, &pre), &z, 1e-7);
            let mut y = up(dev, &y0);
            dev.bias_act(&BiasAct { rows, cols, act }, vm::<B>(&mut y), None, None);
            let z: Vec<f64> = y0.iter().map(|&v| v as f64).collect();
            close(&format!("bias_act {rows}x{cols} {act:?} without bias"), &down(dev, &y), &activate(act, &z, cols), 2e-6);
        }
    }
}

/// `g *= act'(x)` from the output (and input where needed), the bias gradient the column sums;
/// the reference derivative is a central difference of the f64 activation (softmax: its
/// Jacobian-vector product).
fn act_backward<B: Backend>(dev: &B) {
    for (rows, cols) in [(1, 1), (7, 1), (1, 33), (33, 7), (1000, 5), (7, 300)] {
        for act in cases() {
            let x = inputs(rows * cols, 6);
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let y = activate(act, &xd, cols);
            let g0 = signed(rows * cols, 7);
            let want: Vec<f64> = if act == Activation::Softmax {
                (0..rows * cols)
                    .map(|i| {
                        let r = i / cols * cols;
                        let dot: f64 = (0..cols).map(|j| g0[r + j] as f64 * y[r + j]).sum();
                        y[i] * (g0[i] as f64 - dot)
                    })
                    .collect()
            } else {
                let h = 1e-6;
                (0..rows * cols).map(|i| g0[i] as f64 * (reference(act, xd[i] + h) - reference(act, xd[i] - h)) / (2.0 * h)).collect()
            };
            let sums: Vec<f64> = (0..cols).map(|j| (0..rows).map(|r| want[r * cols + j]).sum()).collect();
            let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            let (mut g, yb, xb, mut db) = (up(dev, &g0), up(dev, &y32), up(dev, &x), dev.alloc(cols).unwrap());
            let a = BiasAct { rows, cols, act };
            dev.act_backward(&a, vm::<B>(&mut g), v::<B>(&yb), Some(v::<B>(&xb)), Some(vm::<B>(&mut db)));
            close(&format!("act_backward {rows}x{cols} {act:?}"), &down(dev, &g), &want, 1e-5);
            close(&format!("act_backward {rows}x{cols} {act:?} dbias"), &down(dev, &db), &sums, 4.0 * rtol_for(rows));
        }
    }
}

/// NaN and infinities through every activation, as Keras's definitions carry them: NaN stays
/// NaN; `+inf` saturates or stays infinite.
fn nan_propagates<B: Backend>(dev: &B) {
    for act in cases() {
        let cols = 3;
        let y0 = [f32::NAN, 0.5, -0.5, f32::INFINITY, 0.25, -1.0];
        let mut y = up(dev, &y0);
        dev.bias_act(&BiasAct { rows: 2, cols, act }, vm::<B>(&mut y), None, None);
        let got = down(dev, &y);
        if act == Activation::Softmax {
            assert!(got[..3].iter().all(|v| v.is_nan()), "softmax: a NaN makes its row NaN, got {got:?}");
            assert!(got[3].is_nan() || got[3] == 1.0, "softmax of an infinite logit: {got:?}");
            continue;
        }
        assert!(got[0].is_nan(), "{act:?}(NaN) is {}, Keras gives NaN", got[0]);
        let want = reference(act, f64::INFINITY);
        assert!(got[3] as f64 == want || (want.is_nan() && got[3].is_nan()), "{act:?}(inf) is {}, the reference {want}", got[3]);
    }
}
