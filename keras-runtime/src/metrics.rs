//! Metrics, as Keras 3 logs them: stateful means over an epoch.

use crate::losses::Loss;
use crate::{Error, Result};
use std::fmt;

/// A metric named in `compile`: `[Metric::Accuracy]` or `["accuracy"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Metric {
    /// Keras's `"accuracy"`: binary, categorical or sparse categorical accuracy, picked as Keras
    /// picks it from the output width and the loss.
    Accuracy,
    /// Fraction of outputs on the right side of 0.5.
    BinaryAccuracy,
    /// Fraction of samples whose largest output is the target's largest entry.
    CategoricalAccuracy,
    /// Fraction of samples whose largest output is the target class index.
    SparseCategoricalAccuracy,
}

/// Which accuracy a metric computes, once resolved against the model and loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccuracyKind {
    /// `mean(y == (p > 0.5))` over the last axis.
    Binary,
    /// `argmax y == argmax p`.
    Categorical,
    /// `y == argmax p`, `y` a class index.
    Sparse,
}

impl Metric {
    /// Keras names and aliases.
    pub const NAMES: &'static [(&'static str, Metric)] = &[
        ("accuracy", Metric::Accuracy),
        ("acc", Metric::Accuracy),
        ("binary_accuracy", Metric::BinaryAccuracy),
        ("categorical_accuracy", Metric::CategoricalAccuracy),
        ("sparse_categorical_accuracy", Metric::SparseCategoricalAccuracy),
    ];

    /// The name under which the metric is logged (`accuracy`, `val_accuracy`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
        }
    }

    /// Resolves the metric for a model whose output's last axis is `output_width`, trained with
    /// `loss`; an error if it cannot apply.
    pub fn resolve(self, loss: Loss, output_width: usize) -> Result<AccuracyKind> {
        let sparse = loss.sparse_targets();
        match self {
            Metric::Accuracy => Ok(if output_width == 1 {
                AccuracyKind::Binary
            } else if sparse {
                AccuracyKind::Sparse
            } else {
                AccuracyKind::Categorical
            }),
            Metric::BinaryAccuracy if !sparse => Ok(AccuracyKind::Binary),
            Metric::CategoricalAccuracy if !sparse && output_width > 1 => Ok(AccuracyKind::Categorical),
            Metric::SparseCategoricalAccuracy if sparse => Ok(AccuracyKind::Sparse),
            _ => Err(Error::Config(format!(
                "metric `{}` cannot apply to a model with output width {output_width} trained with `{loss}`: {}",
                self.name(),
                match self {
                    Metric::SparseCategoricalAccuracy => "it needs integer class targets (a sparse loss)",
                    Metric::CategoricalAccuracy if output_width <= 1 => "it needs at least two output classes",
                    _ => "its targets must have the shape of the output, but this loss takes class indices",
                }
            ))),
        }
    }
}

impl AccuracyKind {
    /// The metric value for one sample (last axis); `target` holds the class index for `Sparse`.
    /// Ties in argmax go to the first maximum, as in NumPy and JAX.
    pub fn sample(self, pred: &[f32], target: &[f32]) -> f32 {
        match self {
            AccuracyKind::Binary => {
                let hits = pred.iter().zip(target).filter(|&(&p, &t)| t == if p > 0.5 { 1.0 } else { 0.0 }).count();
                hits as f32 / pred.len() as f32
            }
            AccuracyKind::Categorical => (argmax(pred) == argmax(target)) as u8 as f32,
            AccuracyKind::Sparse => (argmax(pred) as f32 == target[0]) as u8 as f32,
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Metric::NAMES.iter().find(|(n, _)| *n == s).map(|&(_, m)| m).ok_or_else(|| Error::Unknown {
            kind: "metric",
            name: s.to_string(),
            expected: Metric::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

/// What `compile` accepts as a metric: a [`Metric`] or its Keras name. As in Keras, a metric
/// named by a string is logged under that string (`"acc"` logs `acc`, `val_acc`).
pub trait IntoMetric {
    /// The metric and the name it is logged under, or an error for an unknown name.
    fn into_metric(self) -> Result<(Metric, &'static str)>;
}

impl IntoMetric for Metric {
    fn into_metric(self) -> Result<(Metric, &'static str)> {
        Ok((self, self.name()))
    }
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<(Metric, &'static str)> {
        let m: Metric = self.parse()?;
        let name = Metric::NAMES.iter().find(|(n, _)| *n == self).map_or(m.name(), |(n, _)| n);
        Ok((m, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_resolves_as_keras_does() {
        assert_eq!(Metric::Accuracy.resolve(Loss::BinaryCrossentropy, 1).unwrap(), AccuracyKind::Binary);
        assert_eq!(Metric::Accuracy.resolve(Loss::MeanSquaredError, 1).unwrap(), AccuracyKind::Binary);
        assert_eq!(Metric::Accuracy.resolve(Loss::SparseCategoricalCrossentropy, 10).unwrap(), AccuracyKind::Sparse);
        assert_eq!(Metric::Accuracy.resolve(Loss::CategoricalCrossentropy, 3).unwrap(), AccuracyKind::Categorical);
        let e = Metric::SparseCategoricalAccuracy.resolve(Loss::CategoricalCrossentropy, 3).unwrap_err();
        assert!(e.to_string().contains("needs integer class targets"), "{e}");
    }

    #[test]
    fn sample_values() {
        assert_eq!(AccuracyKind::Binary.sample(&[0.7, 0.2], &[1.0, 1.0]), 0.5);
        assert_eq!(AccuracyKind::Categorical.sample(&[0.1, 0.6, 0.3], &[0.0, 1.0, 0.0]), 1.0);
        assert_eq!(AccuracyKind::Sparse.sample(&[0.5, 0.5, 0.0], &[1.0]), 0.0);
    }
}
