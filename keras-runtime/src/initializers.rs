//! Weight initializers, with Keras 3's definitions and defaults.

use crate::random::Rng;

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
    /// A random orthogonal matrix times `gain` (Keras's recurrent-kernel default, gain 1): the
    /// weight seen as `(prod(shape[..-1]), shape[-1])` has orthonormal rows or columns, whichever
    /// are fewer.
    Orthogonal {
        /// The factor on the orthogonal matrix.
        gain: f32,
    },
    /// An LSTM bias with `unit_forget_bias`: the forget gate's block (the second of four) all
    /// ones, the other blocks from the inner initializer, as Keras builds it.
    UnitForgetBias(&'static Initializer),
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
        ("orthogonal", Initializer::Orthogonal { gain: 1.0 }),
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
            Initializer::Orthogonal { gain } => orthogonal(shape, rng, out, gain as f64),
            Initializer::UnitForgetBias(inner) => {
                let u = out.len() / 4;
                inner.fill(&[u], rng, &mut out[..u]);
                out[u..2 * u].fill(1.0);
                inner.fill(&[2 * u], rng, &mut out[2 * u..]);
            }
        }
    }
}

/// Keras's `Orthogonal`: the Q of a normal matrix's QR decomposition (signs fixed so that R's
/// diagonal is positive, which Gram-Schmidt gives), transposed when the weight is wide.
fn orthogonal(shape: &[usize], rng: &mut Rng, out: &mut [f32], gain: f64) {
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let rows = out.len() / cols;
    let (m, k) = (rows.max(cols), rows.min(cols));
    // k columns of length m, column-major.
    let mut q: Vec<f64> = (0..m * k).map(|_| rng.normal()).collect();
    for j in 0..k {
        for i in 0..j {
            let dot: f64 = (0..m).map(|r| q[i * m + r] * q[j * m + r]).sum();
            for r in 0..m {
                q[j * m + r] -= dot * q[i * m + r];
            }
        }
        let norm = (0..m).map(|r| q[j * m + r] * q[j * m + r]).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        for r in 0..m {
            q[j * m + r] /= norm;
        }
    }
    for r in 0..rows {
        for c in 0..cols {
            // Tall weight: element (r, c) is row r of column c; wide: row c of column r.
            let v = if rows >= cols { q[c * m + r] } else { q[r * m + c] };
            out[r * cols + c] = (gain * v) as f32;
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

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        for (r, c) in [(5, 20), (20, 5), (6, 6)] {
            let mut w = vec![0.0f32; r * c];
            Initializer::Orthogonal { gain: 1.0 }.fill(&[r, c], &mut Rng::new(4), &mut w);
            let (outer, inner, stride_o, stride_i) = if r <= c { (r, c, c, 1) } else { (c, r, 1, c) };
            for a in 0..outer {
                for b in 0..outer {
                    let dot: f32 = (0..inner).map(|k| w[a * stride_o + k * stride_i] * w[b * stride_o + k * stride_i]).sum();
                    assert!((dot - (a == b) as u8 as f32).abs() < 1e-5, "{r}x{c}: ({a}, {b}) = {dot}");
                }
            }
        }
        let mut b = vec![0.0f32; 8];
        Initializer::UnitForgetBias(&Initializer::Zeros).fill(&[8], &mut Rng::new(1), &mut b);
        assert_eq!(b, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
