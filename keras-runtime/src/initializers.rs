//! Weight initializers, with Keras 3's definitions and defaults.

use crate::utils::Rng;

/// How a weight is filled when a model is created.
///
/// Fans follow Keras: for a kernel of shape `(.., in, out)` the receptive field is the product of
/// the leading dimensions, `fan_in = receptive * in`, `fan_out = receptive * out`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros (Keras's bias default).
    Zeros,
    /// All ones.
    Ones,
    /// Every element the same value.
    Constant(f32),
    /// Uniform in `[minval, maxval)`; Keras defaults -0.05, 0.05.
    RandomUniform {
        /// Lower bound.
        minval: f32,
        /// Upper bound.
        maxval: f32,
    },
    /// Normal; Keras defaults mean 0, stddev 0.05.
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
    },
    /// Normal, redrawn beyond two standard deviations; Keras defaults mean 0, stddev 0.05.
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation (before truncation).
        stddev: f32,
    },
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))` (Keras's kernel default).
    GlorotUniform,
    /// Truncated normal with variance `2 / (fan_in + fan_out)`.
    GlorotNormal,
    /// Truncated normal with variance `2 / fan_in`.
    HeNormal,
    /// Uniform in `±sqrt(6 / fan_in)`.
    HeUniform,
    /// Truncated normal with variance `1 / fan_in`.
    LecunNormal,
    /// Uniform in `±sqrt(3 / fan_in)`.
    LecunUniform,
}

/// The standard deviation of a unit normal truncated at ±2, which Keras divides by so that the
/// truncated draw has the variance asked for.
const TRUNCATED_STDDEV: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// The Keras names of the initializers that take no argument.
    pub const NAMES: &'static [(&'static str, Initializer)] = &[
        ("glorot_uniform", Initializer::GlorotUniform),
        ("glorot_normal", Initializer::GlorotNormal),
        ("he_normal", Initializer::HeNormal),
        ("he_uniform", Initializer::HeUniform),
        ("lecun_normal", Initializer::LecunNormal),
        ("lecun_uniform", Initializer::LecunUniform),
        ("zeros", Initializer::Zeros),
        ("ones", Initializer::Ones),
        ("random_uniform", Initializer::RandomUniform { minval: -0.05, maxval: 0.05 }),
        ("random_normal", Initializer::RandomNormal { mean: 0.0, stddev: 0.05 }),
        ("truncated_normal", Initializer::TruncatedNormal { mean: 0.0, stddev: 0.05 }),
    ];

    /// Fills `out` (a weight of `shape`) from `rng`.
    pub fn fill(&self, shape: &[usize], rng: &mut Rng, out: &mut [f32]) {
        let (fan_in, fan_out) = fans(shape);
        match *self {
            Initializer::Zeros => out.fill(0.0),
            Initializer::Ones => out.fill(1.0),
            Initializer::Constant(v) => out.fill(v),
            Initializer::RandomUniform { minval, maxval } => uniform(rng, out, minval as f64, maxval as f64),
            Initializer::RandomNormal { mean, stddev } => {
                out.iter_mut().for_each(|v| *v = (mean as f64 + stddev as f64 * rng.normal()) as f32)
            }
            Initializer::TruncatedNormal { mean, stddev } => truncated(rng, out, mean as f64, stddev as f64),
            Initializer::GlorotUniform => {
                let limit = (6.0 / (fan_in + fan_out)).sqrt();
                uniform(rng, out, -limit, limit)
            }
            Initializer::GlorotNormal => truncated(rng, out, 0.0, (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_STDDEV),
            Initializer::HeNormal => truncated(rng, out, 0.0, (2.0 / fan_in).sqrt() / TRUNCATED_STDDEV),
            Initializer::HeUniform => {
                let limit = (6.0 / fan_in).sqrt();
                uniform(rng, out, -limit, limit)
            }
            Initializer::LecunNormal => truncated(rng, out, 0.0, (1.0 / fan_in).sqrt() / TRUNCATED_STDDEV),
            Initializer::LecunUniform => {
                let limit = (3.0 / fan_in).sqrt();
                uniform(rng, out, -limit, limit)
            }
        }
    }
}

/// Keras's `compute_fans`.
fn fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [rest @ .., i, o] => {
            let receptive: usize = rest.iter().product();
            ((receptive * i) as f64, (receptive * o) as f64)
        }
    }
}

fn uniform(rng: &mut Rng, out: &mut [f32], lo: f64, hi: f64) {
    out.iter_mut().for_each(|v| *v = (lo + (hi - lo) * rng.uniform()) as f32);
}

fn truncated(rng: &mut Rng, out: &mut [f32], mean: f64, stddev: f64) {
    for v in out.iter_mut() {
        let z = loop {
            let z = rng.normal();
            if z.abs() <= 2.0 {
                break z;
            }
        };
        *v = (mean + stddev * z) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(init: Initializer, shape: &[usize]) -> (f64, f64, f64) {
        let n: usize = shape.iter().product();
        let mut v = vec![0.0; n];
        init.fill(shape, &mut Rng::new(11), &mut v);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let max = v.iter().map(|x| x.abs() as f64).fold(0.0, f64::max);
        (mean, var, max)
    }

    #[test]
    fn variances_and_bounds_follow_keras() {
        let shape = [400, 300];
        let (_, var, max) = stats(Initializer::GlorotUniform, &shape);
        let limit = (6.0f64 / 700.0).sqrt();
        assert!(max <= limit && (var - limit * limit / 3.0).abs() < 0.03 * var);
        let (_, var, _) = stats(Initializer::HeNormal, &shape);
        assert!((var - 2.0 / 400.0).abs() < 0.03 * var, "{var}");
        let (_, var, max) = stats(Initializer::TruncatedNormal { mean: 0.0, stddev: 0.05 }, &shape);
        assert!(max <= 0.1 + 1e-6 && var < 0.05 * 0.05);
        let (mean, _, _) = stats(Initializer::Constant(0.25), &[3]);
        assert_eq!(mean, 0.25);
        assert_eq!(fans(&[3, 3, 8, 16]), (72.0, 144.0));
    }
}
