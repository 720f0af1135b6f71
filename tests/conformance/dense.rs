//! `DenseOps`: a dense layer's product with its bias and activation, the activation alone, and
//! the activation's backward pass with the bias gradient, for every Keras activation.

use crate::support::*;
use keras::activations::Activation;
use keras::backend::{Backend, BiasAct, Elu, Linear, Prelu, Relu, ReluForm};

pub fn suite<B: Backend>(dev: &B) {
    linear(dev);
    bias_act(dev);
    act_backward(dev);
    nan_propagates(dev);
    relu_at_the_kinks(dev);
    relu_layer(dev);
    elu_layer(dev);
    prelu_layer(dev);
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
/// NaN, `±inf` gives the reference's value (saturated, infinite, or NaN where Keras's formula
/// makes one, as `inf / inf` in softsign), and the finite values beside them in the same row are
/// what they are without them; for softmax a NaN or an infinity makes its row NaN, other rows
/// untouched. Rows narrower than a vector, a vector wide and with a tail (the CPU's narrow, full
/// and partial paths); in place and with a bias and `pre`; then through the fused product
/// (`linear`), where a NaN in a row of `x` makes that row of `y` NaN; then the backward pass.
fn nan_propagates<B: Backend>(dev: &B) {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    for cols in [3, 8, 21] {
        let rows = 4;
        let mut y0 = inputs(rows * cols, 8);
        // Row 0 a NaN, row 1 both infinities, row 2 all three, row 3 none.
        y0[1] = nan;
        (y0[cols], y0[cols + cols - 1]) = (inf, -inf);
        (y0[2 * cols], y0[2 * cols + 1], y0[2 * cols + 2]) = (-inf, nan, inf);
        let b = data(cols, 9, -0.5, 0.5);
        for act in cases() {
            let what = format!("bias_act {rows}x{cols} {act:?} of NaN and infinities");
            let z: Vec<f64> = y0.iter().map(|&v| v as f64).collect();
            let want = activate(act, &z, cols);
            assert!(want[1].is_nan() && want[2 * cols + 1].is_nan(), "{what}: the reference keeps NaN");
            let mut y = up(dev, &y0);
            dev.bias_act(&BiasAct { rows, cols, act }, vm::<B>(&mut y), None, None);
            close(&what, &down(dev, &y), &want, 2e-6);
            // With a bias and the pre-activation kept (the training path).
            let z: Vec<f64> = y0.iter().enumerate().map(|(i, &v)| (v + b[i % cols]) as f64).collect();
            let (mut y, bb, mut pre) = (up(dev, &y0), up(dev, &b), dev.alloc(rows * cols).unwrap());
            dev.bias_act(&BiasAct { rows, cols, act }, vm::<B>(&mut y), Some(v::<B>(&bb)), Some(vm::<B>(&mut pre)));
            close(&format!("{what}, with bias"), &down(dev, &y), &activate(act, &z, cols), 2e-6);
            close(&format!("{what}, with bias: pre"), &down(dev, &pre), &z, 1e-7);
            act_backward_of_nan(dev, act, rows, cols, &y0);
        }
    }
    // Through the product: x's row 0 holds a NaN, row 1 a +inf (so y's row 1 is ±inf by w's
    // signs), the others are finite; one row alone (the CPU's matrix-vector path), a few, many.
    for (rows, k, n) in [(1, 33, 40), (2, 20, 17), (5, 20, 17), (130, 70, 40)] {
        let (mut x, w, b) = (signed(rows * k, 11), data(k * n, 12, -0.3, 0.3), signed(n, 13));
        x[k / 2] = nan;
        if rows > 1 {
            x[k + k / 3] = inf;
        }
        let z: Vec<f64> = (0..rows * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k).map(|l| x[i * k + l] as f64 * w[l * n + j] as f64).sum::<f64>() + b[j] as f64
            })
            .collect();
        assert!(z[..n].iter().all(|v| v.is_nan()));
        let (xb, wb, bb) = (up(dev, &x), up(dev, &w), up(dev, &b));
        for act in cases() {
            let what = format!("linear {rows}x{k}x{n} {act:?} with a NaN and an infinity in x");
            let mut y = dev.alloc(rows * n).unwrap();
            dev.linear(&Linear { rows, k, n, act }, v::<B>(&xb), v::<B>(&wb), Some(v::<B>(&bb)), vm::<B>(&mut y), None);
            close(&what, &down(dev, &y), &activate(act, &z, n), 4.0 * rtol_for(k));
        }
    }
}

/// The gradient of an activation at `x`, given the output gradient `g`, where `x` is NaN: JAX's
/// (Keras's backend's) rules. relu, relu6 and hard_sigmoid have custom derivatives that select
/// `g` only where `x` is inside their linear piece (`x > 0` fails for NaN), so they give 0;
/// leaky_relu's `where(x >= 0, x, slope x)` takes the `slope x` branch; linear passes `g`; every
/// other derivative reads `x` (or the NaN output) and is NaN.
fn grad_at_nan(act: Activation, g: f64) -> f64 {
    match act {
        Activation::Linear => g,
        Activation::Relu | Activation::Relu6 | Activation::HardSigmoid => 0.0,
        Activation::LeakyRelu => 0.2 * g,
        _ => f64::NAN,
    }
}

/// `act_backward` over rows of `x` holding NaN and infinities (as [`nan_propagates`] builds
/// them): no panic, NaN entries get [`grad_at_nan`] (softmax: a row holding NaN or an infinity
/// is NaN), and the finite entries of the same rows get their usual gradient. The infinite
/// entries are left unchecked: the derivatives' limits there differ by formula (the `inf * 0`
/// of one is the 0 of another).
fn act_backward_of_nan<B: Backend>(dev: &B, act: Activation, rows: usize, cols: usize, x: &[f32]) {
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let y = activate(act, &xd, cols);
    let g0 = signed(rows * cols, 10);
    let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let (mut g, yb, xb) = (up(dev, &g0), up(dev, &y32), up(dev, x));
    dev.act_backward(&BiasAct { rows, cols, act }, vm::<B>(&mut g), v::<B>(&yb), Some(v::<B>(&xb)), None);
    let got = down(dev, &g);
    let (mut checked, mut want) = (Vec::new(), Vec::new());
    for (i, (&xi, &gi)) in xd.iter().zip(&g0).enumerate() {
        let gi = gi as f64;
        let w = if act == Activation::Softmax {
            let r = i / cols * cols;
            let dot: f64 = (0..cols).map(|j| g0[r + j] as f64 * y[r + j]).sum();
            y[i] * (gi - dot)
        } else if xi.is_nan() {
            grad_at_nan(act, gi)
        } else if xi.is_infinite() {
            continue;
        } else {
            let h = 1e-6;
            gi * (reference(act, xi + h) - reference(act, xi - h)) / (2.0 * h)
        };
        checked.push(got[i]);
        want.push(w);
    }
    close(&format!("act_backward {rows}x{cols} {act:?} of NaN and infinities"), &checked, &want, 1e-5);
}

/// The activation layers' ReLU and its input gradient (for `dy = 1`) over `x`, from a buffer one
/// longer whose last value must stay as it was.
fn relu_run<B: Backend>(dev: &B, r: &Relu, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = x.len();
    let (xb, dyb) = (up(dev, x), up(dev, dy));
    let (mut yb, mut dxb) = (up(dev, &vec![7.0; n + 1]), up(dev, &vec![7.0; n + 1]));
    dev.relu(&Relu { len: n, ..*r }, v::<B>(&xb), B::view_mut(&mut yb, 0..n));
    dev.relu_backward(&Relu { len: n, ..*r }, v::<B>(&xb), v::<B>(&dyb), B::view_mut(&mut dxb, 0..n));
    let (y, dx) = (down(dev, &yb), down(dev, &dxb));
    assert_eq!((y[n], dx[n]), (7.0, 7.0), "relu {r:?} wrote past its {n} values");
    (y[..n].to_vec(), dx[..n].to_vec())
}

/// ReLU's values and gradients where Keras's expressions have kinks, against what Keras 3.15.1
/// and `jax.grad` give (KERAS_BACKEND=jax, JAX 0.10.2): for each row, `layer =
/// keras.layers.ReLU(max_value=.., negative_slope=.., threshold=..)` (or `LeakyReLU`), `layer(x)`
/// and `jax.grad(lambda x: jnp.sum(layer(x)))(x)` on float32 `x` (`/tmp/actwork/kinks.py`). Among
/// them: relu'(0) = 0, leaky_relu'(0) = 1, 0.5 at `x == max_value` (`clip`'s tie) but 0 at 6 for
/// relu6, 0 at `x == threshold`, and a NaN made 0 by `where(x > threshold, x, 0)` when there is a
/// threshold and no slope.
fn relu_at_the_kinks<B: Backend>(dev: &B) {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    type Case<'a> = (f32, f32, f32, &'a [f32], &'a [f64], &'a [f64]);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        // ReLU()
        (inf, 0.0, 0.0, &[0.0, -0.0, 1.0, -1.0, nan], &[0.0, 0.0, 1.0, 0.0, f64::NAN], &[0.0, 0.0, 1.0, 0.0, 0.0]),
        // ReLU(max_value=6)
        (6.0, 0.0, 0.0, &[0.0, 6.0, 5.0, 7.0, nan], &[0.0, 6.0, 5.0, 6.0, f64::NAN], &[0.0, 0.0, 1.0, 0.0, 0.0]),
        // ReLU(max_value=4)
        (4.0, 0.0, 0.0, &[0.0, 4.0, 3.0, 5.0, nan], &[0.0, 4.0, 3.0, 4.0, f64::NAN], &[0.0, 0.5, 1.0, 0.0, 0.0]),
        // ReLU(negative_slope=0.3), LeakyReLU(0.3)
        (inf, 0.3, 0.0, &[0.0, -1.0, 2.0, nan], &[0.0, -0.30000001192092896, 2.0, f64::NAN], &[1.0, 0.30000001192092896, 1.0, 0.30000001192092896]),
        // ReLU(negative_slope=0.3, max_value=4)
        (4.0, 0.3, 0.0, &[0.0, 4.0, -1.0, 2.0, 5.0, nan], &[0.0, 4.0, -0.30000001192092896, 2.0, 4.0, f64::NAN], &[0.0, 0.5, 0.30000001192092896, 1.0, 0.0, 0.0]),
        // ReLU(threshold=1.5)
        (inf, 0.0, 1.5, &[0.0, 1.0, 1.5, 2.0, -1.0, nan], &[0.0, 0.0, 0.0, 2.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
        // ReLU(threshold=1.5, negative_slope=0.3)
        (inf, 0.3, 1.5, &[0.0, 1.0, 1.5, 2.0, -1.0, nan], &[-0.45000001788139343, -0.15000000596046448, 0.0, 2.0, -0.75, f64::NAN], &[0.30000001192092896, 0.30000001192092896, 0.0, 1.0, 0.30000001192092896, 0.0]),
        // ReLU(threshold=1.5, negative_slope=0.3, max_value=4)
        (4.0, 0.3, 1.5, &[0.0, 1.0, 1.5, 2.0, 4.0, 5.0, -1.0, nan], &[-0.45000001788139343, -0.15000000596046448, 0.0, 2.0, 4.0, 4.0, -0.75, f64::NAN], &[0.30000001192092896, 0.30000001192092896, 0.0, 1.0, 0.5, 0.0, 0.30000001192092896, 0.0]),
        // ReLU(threshold=1.5, max_value=4)
        (4.0, 0.0, 1.5, &[0.0, 1.5, 2.0, 4.0, 5.0, nan], &[0.0, 0.0, 2.0, 4.0, 4.0, 0.0], &[0.0, 0.0, 1.0, 0.5, 0.0, 0.0]),
        // ReLU(max_value=0)
        (0.0, 0.0, 0.0, &[0.0, 1.0, -1.0], &[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0]),
        // ReLU(threshold=2, max_value=1)
        (1.0, 0.0, 2.0, &[0.5, 1.0, 2.0, 3.0], &[0.0, 0.0, 0.0, 1.0], &[0.0, 0.0, 0.0, 0.0]),
    ];
    for &(m, s, t, x, y_keras, g_jax) in cases {
        let r = Relu::new(x.len(), m, s, t);
        let (y, dx) = relu_run(dev, &r, x, &vec![1.0; x.len()]);
        close(&format!("relu {r:?} against Keras"), &y, y_keras, 1e-7);
        close(&format!("relu_backward {r:?} against jax.grad"), &dx, g_jax, 1e-7);
    }
    // LeakyReLU(negative_slope=0): jax.nn.leaky_relu's form, gradient 1 at 0.
    let r = Relu { form: ReluForm::Leaky, ..Relu::new(4, inf, 0.0, 0.0) };
    let (y, dx) = relu_run(dev, &r, &[0.0, -1.0, 2.0, nan], &[1.0; 4]);
    close("LeakyReLU(0) against Keras", &y, &[0.0, 0.0, 2.0, f64::NAN], 1e-7);
    close("LeakyReLU(0)'s gradient against jax.grad", &dx, &[1.0, 0.0, 1.0, 0.0], 1e-7);
    assert_eq!(Relu::new(1, inf, 0.3, 0.0).form, ReluForm::Leaky);
    assert_eq!(Relu::new(1, 6.0, 0.3, 0.0).form, ReluForm::Relu6);
    assert_eq!(Relu::new(1, 6.0, 0.0, 1.0).form, ReluForm::Clip);
    assert_eq!(Relu::new(1, inf, 0.0, 0.0).form, ReluForm::Clip);
}

/// Keras's relu expression for these arguments, in f64, and JAX's derivative of it.
fn relu_reference(r: &Relu, x: f64) -> (f64, f64) {
    let (m, s, t) = (r.max_value as f64, r.negative_slope as f64, r.threshold as f64);
    let relu = |v: f64| if v.is_nan() { v } else { v.max(0.0) };
    match r.form {
        ReluForm::Leaky => (if x >= 0.0 { x } else { s * x }, if x >= 0.0 { 1.0 } else { s }),
        ReluForm::Relu6 => (if x.is_nan() { x } else { x.clamp(0.0, 6.0) }, if x > 0.0 && x < 6.0 { 1.0 } else { 0.0 }),
        ReluForm::Clip => {
            let pos = if t != 0.0 { if x > t { x } else { 0.0 } } else { relu(x) };
            let clipped = if m.is_finite() && pos > m { m } else { pos };
            let y = if s != 0.0 { clipped - s * relu(t - x) } else { clipped };
            let dpos = if x > t { 1.0 } else { 0.0 };
            let dclip = if !m.is_finite() || pos < m {
                1.0
            } else if pos == m {
                0.5
            } else {
                0.0
            };
            (y, dpos * dclip + if t - x > 0.0 { s } else { 0.0 })
        }
    }
}

/// ReLU at every size for every form, with NaN, infinities, zeros of both signs, the threshold
/// and the maximum among the inputs, against [`relu_reference`]; the input gradient for random
/// `dy`.
fn relu_layer<B: Backend>(dev: &B) {
    let inf = f32::INFINITY;
    for len in SIZES {
        for (m, s, t) in [
            (inf, 0.0, 0.0),
            (6.0, 0.0, 0.0),
            (4.0, 0.0, 0.0),
            (inf, 0.2, 0.0),
            (3.0, 0.25, 0.0),
            (inf, 0.0, 1.5),
            (2.5, 0.1, 0.5),
            (1.0, 0.0, 2.0),
        ] {
            let mut x = data(len, 41, -8.0, 8.0);
            let specials = [f32::NAN, 0.0, -0.0, t, m, 6.0, inf, -inf, t + 0.5, -t];
            for (i, v) in specials.into_iter().enumerate().filter(|&(i, _)| i * 3 < len) {
                x[i * 3] = v;
            }
            let dy = signed(len, 43);
            let r = Relu::new(len, m, s, t);
            let (y, dx) = relu_run(dev, &r, &x, &dy);
            let want: Vec<(f64, f64)> = x.iter().map(|&v| relu_reference(&r, v as f64)).collect();
            close(&format!("relu {r:?}"), &y, &want.iter().map(|w| w.0).collect::<Vec<_>>(), 1e-6);
            let dx_want: Vec<f64> = want.iter().zip(&dy).map(|(w, &d)| d as f64 * w.1).collect();
            close(&format!("relu_backward {r:?}"), &dx, &dx_want, 1e-6);
        }
    }
}

/// ELU against `x > 0 ? x : alpha * expm1(x)` in f64 and its derivative `alpha * exp(x)` below
/// 0 (`alpha` at 0, as `jax.grad` gives: Keras 3.15.1, `keras.layers.ELU(alpha=0.7)` at
/// `[0, -1, 2, -1e-8, nan]` gives `[0, -0.44248437881469727, 2, -6.999999691004177e-09, nan]`
/// and the gradient `[0.7, 0.2575156092643738, 1, 0.7, nan]`), NaN and infinities carried.
fn elu_layer<B: Backend>(dev: &B) {
    let run = |e: &Elu, x: &[f32], dy: &[f32]| {
        let n = x.len();
        let (xb, dyb) = (up(dev, x), up(dev, dy));
        let (mut yb, mut dxb) = (up(dev, &vec![7.0; n + 1]), up(dev, &vec![7.0; n + 1]));
        dev.elu(e, v::<B>(&xb), B::view_mut(&mut yb, 0..n));
        dev.elu_backward(e, v::<B>(&xb), v::<B>(&dyb), B::view_mut(&mut dxb, 0..n));
        let (y, dx) = (down(dev, &yb), down(dev, &dxb));
        assert_eq!((y[n], dx[n]), (7.0, 7.0), "elu wrote past its {n} values");
        (y[..n].to_vec(), dx[..n].to_vec())
    };
    let (y, dx) = run(&Elu { len: 5, alpha: 0.7 }, &[0.0, -1.0, 2.0, -1e-8, f32::NAN], &[1.0; 5]);
    close("ELU(0.7) against Keras", &y, &[0.0, -0.44248437881469727, 2.0, -6.999999691004177e-09, f64::NAN], 1e-7);
    close("ELU(0.7)'s gradient against jax.grad", &dx, &[0.699999988079071, 0.2575156092643738, 1.0, 0.699999988079071, f64::NAN], 1e-7);
    for len in SIZES {
        for alpha in [1.0f32, 0.3, 2.5] {
            let mut x = data(len, 47, -10.0, 4.0);
            for (i, v) in [f32::NAN, 0.0, f32::NEG_INFINITY, f32::INFINITY, -1e-8].into_iter().enumerate().filter(|&(i, _)| i * 3 < len) {
                x[i * 3] = v;
            }
            let dy = signed(len, 53);
            let (y, dx) = run(&Elu { len, alpha }, &x, &dy);
            let a = alpha as f64;
            let want: Vec<f64> = x.iter().map(|&v| if v > 0.0 { v as f64 } else { a * (v as f64).exp_m1() }).collect();
            let dx_want: Vec<f64> = x.iter().zip(&dy).map(|(&v, &d)| d as f64 * if v > 0.0 { 1.0 } else { a * (v as f64).exp() }).collect();
            close(&format!("elu of {len} by {alpha}"), &y, &want, 1e-6);
            close(&format!("elu_backward of {len} by {alpha}"), &dx, &dx_want, 1e-6);
        }
    }
}

/// PReLU over samples of several shapes, with and without shared axes (Keras's 1-based axes),
/// against a reference that unravels each position over the sample's shape and ravels it over
/// alpha's (the shape with the shared axes set to 1): the output, the input gradient (0 at
/// `x == 0`, as `jax.grad` of `relu(x) - alpha * relu(-x)` gives), and the alpha gradient
/// `sum dy * min(x, 0)` over the batch and the shared positions, overwritten, NaN carried into
/// the alpha of the position that holds it.
fn prelu_layer<B: Backend>(dev: &B) {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[1000], &[], 1),
        (&[7], &[1], 33),
        (&[3, 4, 5], &[], 7),
        (&[3, 4, 5], &[1, 2], 7),
        (&[3, 4, 5], &[2], 1),
        (&[3, 4, 5], &[1, 3], 7),
        (&[3, 4, 5], &[1, 2, 3], 7),
        (&[2, 1, 3], &[2], 7),
        (&[2, 1, 3], &[1], 1),
        (&[2, 3, 2, 2], &[1, 3], 7),
    ];
    for &(shape, shared_axes, rows) in cases {
        let p = Prelu::new(rows, shape, shared_axes);
        let param_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if shared_axes.contains(&(i + 1)) { 1 } else { d }).collect();
        let (width, alphas) = (shape.iter().product::<usize>(), param_shape.iter().product::<usize>());
        assert_eq!((p.width, p.alphas), (width, alphas), "Prelu::new({shape:?}, {shared_axes:?})");
        let alpha_of = |pos: usize| {
            let (mut q, mut a, mut stride) = (pos, 0, 1);
            for (&d, &pd) in shape.iter().zip(&param_shape).rev() {
                let c = q % d;
                q /= d;
                a += if pd == 1 { 0 } else { c * stride };
                stride *= pd;
            }
            a
        };
        let n = rows * width;
        let mut x = data(n, 59, -3.0, 3.0);
        for i in (0..n).step_by(5) {
            x[i] = 0.0;
        }
        if n > 3 {
            x[n - 2] = f32::NAN;
        }
        let (alpha, dy) = (data(alphas, 61, -1.0, 1.0), signed(n, 67));
        let (xb, ab, dyb) = (up(dev, &x), up(dev, &alpha), up(dev, &dy));
        let (mut yb, mut dxb, mut dab) = (up(dev, &vec![7.0; n + 1]), up(dev, &vec![7.0; n + 1]), up(dev, &vec![7.0; alphas + 1]));
        dev.prelu(&p, v::<B>(&xb), v::<B>(&ab), B::view_mut(&mut yb, 0..n));
        dev.prelu_backward(&p, v::<B>(&xb), v::<B>(&ab), v::<B>(&dyb), B::view_mut(&mut dxb, 0..n));
        dev.prelu_alpha_grad(&p, v::<B>(&xb), v::<B>(&dyb), B::view_mut(&mut dab, 0..alphas));
        let (y, dx, da) = (down(dev, &yb), down(dev, &dxb), down(dev, &dab));
        let what = format!("prelu of {rows} x {shape:?} shared on {shared_axes:?}");
        assert_eq!((y[n], dx[n], da[alphas]), (7.0, 7.0, 7.0), "{what}: wrote past its outputs");
        let (mut y_want, mut dx_want, mut da_want) = (vec![0.0; n], vec![0.0; n], vec![0.0f64; alphas]);
        for i in 0..n {
            let (xv, d, a) = (x[i] as f64, dy[i] as f64, alpha[alpha_of(i % width)] as f64);
            y_want[i] = xv.max(0.0) - a * (-xv).max(0.0) + if xv.is_nan() { f64::NAN } else { 0.0 };
            dx_want[i] = d * if xv > 0.0 {
                1.0
            } else if xv < 0.0 {
                a
            } else {
                0.0
            };
            da_want[alpha_of(i % width)] += d * if xv.is_nan() { xv } else { xv.min(0.0) };
        }
        close(&format!("{what}: y"), &y[..n], &y_want, 1e-6);
        close(&format!("{what}: dx"), &dx[..n], &dx_want, 1e-6);
        close(&format!("{what}: dalpha"), &da[..alphas], &da_want, rtol_for(n / alphas.max(1)));
        if n > 3 {
            assert!(da[alpha_of((n - 2) % width)].is_nan(), "{what}: the NaN's alpha gradient is {}", da[alpha_of((n - 2) % width)]);
        }
    }
}
