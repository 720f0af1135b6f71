//! Custom layers of the user's own (`keras::layers::custom::CustomLayer`), as Keras's
//! subclassing guide writes them (`tests/fixtures/gen_custom_layers.py`), the models of their
//! fixtures, and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::initializers::Initializer;
use keras::layers::custom::{CustomLayer, Grads, Weight, Weights};
use keras::prelude::*;

/// The guide's `Linear(units)`: `y = x @ kernel + bias`, the output width `out = units`.
#[derive(Default)]
pub struct Linear;

impl<const IN: usize, const OUT: usize> CustomLayer<IN, OUT> for Linear {
    const WEIGHTS: &'static [Weight] =
        &[Weight::new("kernel", &[IN, OUT], Initializer::GlorotUniform), Weight::new("bias", &[OUT], Initializer::Zeros)];
    /// Any widths.
    const SHAPE: Result<(), &'static str> = Ok(());

    fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
        let (kernel, bias) = (w.get("kernel"), w.get("bias"));
        for (x, y) in x.chunks(IN).zip(y.chunks_mut(OUT)) {
            for (o, y) in y.iter_mut().enumerate() {
                *y = bias[o] + (0..IN).map(|i| x[i] * kernel[i * OUT + o]).sum::<f32>();
            }
        }
    }

    fn backward(&self, w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>) {
        for (x, dy) in x.chunks(IN).zip(dy.chunks(OUT)) {
            let dk = grads.get_mut("kernel");
            for i in 0..IN {
                for o in 0..OUT {
                    dk[i * OUT + o] += x[i] * dy[o];
                }
            }
            for (b, g) in grads.get_mut("bias").iter_mut().zip(dy) {
                *b += g;
            }
        }
        if let Some(dx) = dx {
            let kernel = w.get("kernel");
            for (dx, dy) in dx.chunks_mut(IN).zip(dy.chunks(OUT)) {
                for (i, dx) in dx.iter_mut().enumerate() {
                    *dx = (0..OUT).map(|o| kernel[i * OUT + o] * dy[o]).sum();
                }
            }
        }
    }
}

/// `y = x * gamma + beta`, one scale and shift per feature; keeps the width (the default rule).
#[derive(Default)]
pub struct Affine;

impl<const D: usize> CustomLayer<D, D> for Affine {
    const WEIGHTS: &'static [Weight] = &[Weight::new("gamma", &[D], Initializer::Ones), Weight::new("beta", &[D], Initializer::Zeros)];

    fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
        let (gamma, beta) = (w.get("gamma"), w.get("beta"));
        for (i, (y, x)) in y.iter_mut().zip(x).enumerate() {
            *y = x * gamma[i % D] + beta[i % D];
        }
    }

    fn backward(&self, w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>) {
        for (i, (&x, &g)) in x.iter().zip(dy).enumerate() {
            grads.get_mut("gamma")[i % D] += g * x;
            grads.get_mut("beta")[i % D] += g;
        }
        if let Some(dx) = dx {
            let gamma = w.get("gamma");
            for (i, (dx, &g)) in dx.iter_mut().zip(dy).enumerate() {
                *dx = g * gamma[i % D];
            }
        }
    }
}

/// `y = x * factor + offset`: a constructor argument (`Shift(2.0)`) and a non-trainable weight.
pub struct Shift {
    factor: f32,
}

impl Shift {
    pub fn new(factor: f32) -> Self {
        Shift { factor }
    }
}

impl<const D: usize> CustomLayer<D, D> for Shift {
    const WEIGHTS: &'static [Weight] = &[Weight::new("offset", &[D], Initializer::Constant(0.5)).non_trainable()];

    fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
        let offset = w.get("offset");
        for (i, (y, x)) in y.iter_mut().zip(x).enumerate() {
            *y = x * self.factor + offset[i % D];
        }
    }

    fn backward(&self, _w: &Weights<'_>, _x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, _grads: &mut Grads<'_>) {
        if let Some(dx) = dx {
            for (dx, g) in dx.iter_mut().zip(dy) {
                *dx = g * self.factor;
            }
        }
    }
}

/// `min(max(x, 0), 6)` of the user's: a name one slip from `ReLU`, so written with its path,
/// `self::ReLU6()` (a bare `ReLU6()` is reported as a typo of `ReLU`).
#[allow(clippy::upper_case_acronyms)]
#[derive(Default)]
pub struct ReLU6;

impl<const D: usize> CustomLayer<D, D> for ReLU6 {
    fn forward(&self, _w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
        for (y, x) in y.iter_mut().zip(x) {
            *y = x.clamp(0.0, 6.0);
        }
    }

    fn backward(&self, _w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, _grads: &mut Grads<'_>) {
        if let Some(dx) = dx {
            for ((dx, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
                *dx = if (0.0..6.0).contains(&x) { g } else { 0.0 };
            }
        }
    }
}

sequential! {
    /// A layer of one's own written with its path.
    pub struct Capped = Input(3) => Dense(4) => self::ReLU6() => Dense(1);
}

sequential! {
    pub struct CustomNet = Input(4) => Linear(out = 5) => Activation(tanh) => Affine() => Linear(out = 3) => Activation(softmax);
}
sequential! {
    pub struct CustomSteps = Input((3, 4)) => Affine() => Linear(out = 2) => Flatten() => Dense(3, softmax);
}

/// The fixtures on `device`.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<CustomNet<B>>(device, "D_layer_custom_linear", 1e-5);
    run_fixture_on::<CustomSteps<B>>(device, "D_layer_custom_steps", 1e-5);
}
