//! Loss functions, with Keras 3's definitions (epsilon clipping at 1e-7, mean over the last axis,
//! then over the batch).

use crate::{Error, Result};
use std::fmt;

/// Keras's fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a log.
pub const EPSILON: f32 = 1e-7;

/// A loss function: `compile(optimizer, Loss::MeanSquaredError, ..)` or by Keras name,
/// `compile(optimizer, "mse", ..)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// Mean of `(y - p)^2` over the last axis.
    MeanSquaredError,
    /// `-(y log p + (1 - y) log(1 - p))`, mean over the last axis; `p` are probabilities.
    BinaryCrossentropy,
    /// `-sum(y log p)` over the last axis; `y` one-hot (or soft) targets, `p` probabilities.
    CategoricalCrossentropy,
    /// Categorical crossentropy with integer class targets.
    SparseCategoricalCrossentropy,
}

impl Loss {
    /// Keras names and aliases.
    pub const NAMES: &'static [(&'static str, Loss)] = &[
        ("mean_squared_error", Loss::MeanSquaredError),
        ("mse", Loss::MeanSquaredError),
        ("binary_crossentropy", Loss::BinaryCrossentropy),
        ("categorical_crossentropy", Loss::CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", Loss::SparseCategoricalCrossentropy),
    ];

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        }
    }

    /// Whether targets are class indices (one per sample) rather than arrays shaped like the output.
    pub fn sparse_targets(self) -> bool {
        self == Loss::SparseCategoricalCrossentropy
    }

    /// The per-sample loss and its gradient with respect to `pred` (one sample, last axis),
    /// written to `grad` scaled by `scale`. `target` holds the class index for sparse losses.
    /// This is the reference definition; the CPU backend calls it row by row.
    pub fn sample(self, pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32) -> f32 {
        let n = pred.len() as f32;
        match self {
            Loss::MeanSquaredError => {
                let mut s = 0.0f32;
                for (&p, &t) in pred.iter().zip(target) {
                    s += (t - p) * (t - p);
                }
                if let Some(g) = grad {
                    let k = 2.0 * scale / n;
                    for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                        *g = k * (p - t);
                    }
                }
                s / n
            }
            Loss::BinaryCrossentropy => {
                let mut s = 0.0f32;
                for (&p, &t) in pred.iter().zip(target) {
                    let pc = p.clamp(EPSILON, 1.0 - EPSILON);
                    s += t * pc.ln() + (1.0 - t) * (1.0 - pc).ln();
                }
                if let Some(g) = grad {
                    let k = scale / n;
                    for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                        *g = if (EPSILON..=1.0 - EPSILON).contains(&p) { k * ((1.0 - t) / (1.0 - p) - t / p) } else { 0.0 };
                    }
                }
                -s / n
            }
            Loss::CategoricalCrossentropy => categorical(pred, |j| target[j], grad, scale),
            Loss::SparseCategoricalCrossentropy => {
                let class = target[0] as usize;
                categorical(pred, |j| if j == class { 1.0 } else { 0.0 }, grad, scale)
            }
        }
    }
}

/// `-sum(t log clip(p / sum p))` and its gradient through the normalisation and the clip.
fn categorical(pred: &[f32], target: impl Fn(usize) -> f32, grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let sum: f32 = pred.iter().sum();
    let mut loss = 0.0f32;
    for (j, &p) in pred.iter().enumerate() {
        let t = target(j);
        if t != 0.0 {
            loss -= t * (p / sum).clamp(EPSILON, 1.0 - EPSILON).ln();
        }
    }
    if let Some(g) = grad {
        // dL/dq_j = -t_j / q_j inside the clip range, 0 outside; dL/dp = (dL/dq - sum(dL/dq * q)) / S.
        let mut dot = 0.0f32;
        for (j, (g, &p)) in g.iter_mut().zip(pred).enumerate() {
            let q = p / sum;
            let t = target(j);
            *g = if t != 0.0 && (EPSILON..=1.0 - EPSILON).contains(&q) { -t / q } else { 0.0 };
            dot += *g * q;
        }
        for g in g.iter_mut() {
            *g = (*g - dot) / sum * scale;
        }
    }
    loss
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Loss::NAMES.iter().find(|(n, _)| *n == s).map(|&(_, l)| l).ok_or_else(|| Error::Unknown {
            kind: "loss",
            name: s.to_string(),
            expected: Loss::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

/// What `compile` accepts as a loss: a [`Loss`] or its Keras name.
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences() {
        let pred = [0.2f32, 0.5, 0.3];
        let cases: [(Loss, [f32; 3]); 4] = [
            (Loss::MeanSquaredError, [0.0, 1.0, 0.5]),
            (Loss::BinaryCrossentropy, [0.0, 1.0, 1.0]),
            (Loss::CategoricalCrossentropy, [0.0, 1.0, 0.0]),
            (Loss::SparseCategoricalCrossentropy, [2.0, 0.0, 0.0]),
        ];
        for (loss, target) in cases {
            let mut g = [0.0f32; 3];
            loss.sample(&pred, &target, Some(&mut g), 1.0);
            for j in 0..3 {
                let h = 1e-3f32;
                let mut p1 = pred;
                p1[j] += h;
                let mut p0 = pred;
                p0[j] -= h;
                let numeric = (loss.sample(&p1, &target, None, 1.0) - loss.sample(&p0, &target, None, 1.0)) / (2.0 * h);
                assert!((numeric - g[j]).abs() < 2e-3 * (1.0 + g[j].abs()), "{loss} d/dp{j}: {numeric} vs {}", g[j]);
            }
        }
    }

    #[test]
    fn names_parse_and_unknown_names_list_the_valid_ones() {
        assert_eq!("mse".parse::<Loss>().unwrap(), Loss::MeanSquaredError);
        let e = "cross_entropy".parse::<Loss>().unwrap_err().to_string();
        assert!(e.contains("unknown loss `cross_entropy`") && e.contains("sparse_categorical_crossentropy"), "{e}");
    }
}
