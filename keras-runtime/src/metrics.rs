//! Metrics, as Keras 3 logs them: stateful values over an epoch.
//!
//! Each metric keeps a few float32 accumulators (Keras's metric variables: a total and a count,
//! true and false positives, a histogram of thresholds) that the backend adds each batch to;
//! the logged value is computed from them, so an epoch's `precision` is the precision of the
//! whole epoch and not a mean of per-batch precisions.

use crate::losses::Loss;

pub use crate::backend::ops::{Average, MetricKind};
use crate::{Error, Result};
use std::fmt;

/// A metric named in `compile`: `[Metric::Accuracy]`, `["accuracy", "auc"]`, or a configured
/// one such as `Metric::Precision { threshold: 0.7 }`.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Fraction of samples whose target class (one-hot) is among the `k` largest outputs
    /// (`"top_k_categorical_accuracy"`: k = 5).
    TopKCategoricalAccuracy {
        /// How many of the largest outputs count.
        k: usize,
    },
    /// As [`Metric::TopKCategoricalAccuracy`] with class-index targets.
    SparseTopKCategoricalAccuracy {
        /// How many of the largest outputs count.
        k: usize,
    },
    /// True positives over predicted positives, an output counting as positive above
    /// `threshold` (`"precision"`: 0.5).
    Precision {
        /// The decision threshold.
        threshold: f32,
    },
    /// True positives over actual positives (`"recall"`: threshold 0.5).
    Recall {
        /// The decision threshold.
        threshold: f32,
    },
    /// Area under the ROC curve, from `num_thresholds` evenly spaced thresholds and the
    /// mid-point rule, as Keras's `AUC()` (`"auc"`: 200 thresholds).
    Auc {
        /// Number of thresholds (at least 2).
        num_thresholds: usize,
    },
    /// The F1 score (`"f1_score"`: macro average, the largest output of each sample counting
    /// as its prediction). Keras's default `average=None` logs one score per class, which a
    /// scalar log cannot hold: choose an [`Average`].
    F1Score {
        /// How the per-class scores are combined.
        average: Average,
        /// The decision threshold in (0, 1]; `None` predicts the largest output of each sample.
        threshold: Option<f32>,
    },
    /// Mean of the per-sample mean squared error.
    MeanSquaredError,
    /// Mean of the per-sample mean absolute error.
    MeanAbsoluteError,
    /// Square root of the mean squared error over the epoch.
    RootMeanSquaredError,
    /// The coefficient of determination, averaged uniformly over the outputs.
    R2Score,
}

impl Metric {
    /// Keras names and aliases.
    pub const NAMES: &'static [(&'static str, Metric)] = &[
        ("accuracy", Metric::Accuracy),
        ("acc", Metric::Accuracy),
        ("binary_accuracy", Metric::BinaryAccuracy),
        ("categorical_accuracy", Metric::CategoricalAccuracy),
        ("sparse_categorical_accuracy", Metric::SparseCategoricalAccuracy),
        ("top_k_categorical_accuracy", Metric::TopKCategoricalAccuracy { k: 5 }),
        ("sparse_top_k_categorical_accuracy", Metric::SparseTopKCategoricalAccuracy { k: 5 }),
        ("precision", Metric::Precision { threshold: 0.5 }),
        ("recall", Metric::Recall { threshold: 0.5 }),
        ("auc", Metric::Auc { num_thresholds: 200 }),
        ("f1_score", Metric::F1Score { average: Average::Macro, threshold: None }),
        ("mean_squared_error", Metric::MeanSquaredError),
        ("mse", Metric::MeanSquaredError),
        ("mean_absolute_error", Metric::MeanAbsoluteError),
        ("mae", Metric::MeanAbsoluteError),
        ("root_mean_squared_error", Metric::RootMeanSquaredError),
        ("r2_score", Metric::R2Score),
    ];

    /// The name under which the metric is logged (`accuracy`, `val_accuracy`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Metric::Precision { .. } => "precision",
            Metric::Recall { .. } => "recall",
            Metric::Auc { .. } => "auc",
            Metric::F1Score { .. } => "f1_score",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::MeanAbsoluteError => "mean_absolute_error",
            Metric::RootMeanSquaredError => "root_mean_squared_error",
            Metric::R2Score => "r2_score",
        }
    }

    /// Resolves the metric for a model whose output's last axis is `output_width`, trained with
    /// `loss`; an error if it cannot apply or a setting is out of range.
    pub fn resolve(self, loss: Loss, output_width: usize) -> Result<MetricKind> {
        let sparse = loss.sparse_targets();
        let name = self.name();
        let cannot = |why: &str| {
            Err(Error::Config(format!(
                "metric `{name}` cannot apply to a model with output width {output_width} trained with `{loss}`: {why}"
            )))
        };
        let dense_targets = "its targets must have the shape of the output, but this loss takes class indices";
        let threshold = |t: f32, lo_open: bool| {
            let ok = t.is_finite() && t <= 1.0 && if lo_open { t > 0.0 } else { t >= 0.0 };
            if ok {
                Ok(())
            } else {
                Err(Error::value(format!("{name} threshold"), if lo_open { "a number in (0, 1]" } else { "a number in [0, 1]" }, t))
            }
        };
        match self {
            Metric::Accuracy => Ok(if output_width == 1 {
                MetricKind::Binary
            } else if sparse {
                MetricKind::Sparse
            } else {
                MetricKind::Categorical
            }),
            Metric::SparseCategoricalAccuracy | Metric::SparseTopKCategoricalAccuracy { .. } if !sparse => {
                cannot("it needs integer class targets (a sparse loss)")
            }
            Metric::CategoricalAccuracy | Metric::TopKCategoricalAccuracy { .. } if !sparse && output_width <= 1 => {
                cannot("it needs at least two output classes")
            }
            Metric::SparseCategoricalAccuracy | Metric::SparseTopKCategoricalAccuracy { .. } => match self {
                Metric::SparseTopKCategoricalAccuracy { k: 0 } => Err(Error::value(format!("{name} k"), "at least 1", 0)),
                Metric::SparseTopKCategoricalAccuracy { k } => Ok(MetricKind::TopK { k, sparse: true }),
                _ => Ok(MetricKind::Sparse),
            },
            _ if sparse => cannot(dense_targets),
            Metric::BinaryAccuracy => Ok(MetricKind::Binary),
            Metric::CategoricalAccuracy => Ok(MetricKind::Categorical),
            Metric::TopKCategoricalAccuracy { k: 0 } => Err(Error::value(format!("{name} k"), "at least 1", 0)),
            Metric::TopKCategoricalAccuracy { k } => Ok(MetricKind::TopK { k, sparse: false }),
            Metric::Precision { threshold: t } => threshold(t, false).map(|()| MetricKind::Precision { threshold: t }),
            Metric::Recall { threshold: t } => threshold(t, false).map(|()| MetricKind::Recall { threshold: t }),
            Metric::Auc { num_thresholds } if num_thresholds < 2 => Err(Error::value("auc num_thresholds", "at least 2", num_thresholds)),
            Metric::Auc { num_thresholds } => Ok(MetricKind::Auc { num_thresholds }),
            Metric::F1Score { average, threshold: t } => {
                if let Some(t) = t {
                    threshold(t, true)?;
                }
                Ok(MetricKind::F1 { average, argmax: t.is_none(), threshold: t.unwrap_or(0.0) })
            }
            Metric::MeanSquaredError => Ok(MetricKind::Mse),
            Metric::MeanAbsoluteError => Ok(MetricKind::Mae),
            Metric::RootMeanSquaredError => Ok(MetricKind::Rmse),
            Metric::R2Score => Ok(MetricKind::R2),
        }
    }
}

impl MetricKind {
    /// The logged value from the accumulators (`stats_len(cols)` of them).
    pub fn result(self, stats: &[f32], cols: usize) -> f32 {
        let div = |a: f32, b: f32| if b == 0.0 { 0.0 } else { a / b };
        const EPS: f32 = 1e-7;
        match self {
            MetricKind::Precision { .. } | MetricKind::Recall { .. } => div(stats[0], stats[0] + stats[1]),
            MetricKind::Rmse => (stats[0] / stats[1]).sqrt(),
            MetricKind::Auc { num_thresholds: t } => {
                let (tp, fp, tn, fnn) = (&stats[..t], &stats[t..2 * t], &stats[2 * t..3 * t], &stats[3 * t..4 * t]);
                let recall: Vec<f32> = (0..t).map(|i| div(tp[i], tp[i] + fnn[i])).collect();
                let fpr: Vec<f32> = (0..t).map(|i| div(fp[i], fp[i] + tn[i])).collect();
                (0..t - 1).map(|i| (fpr[i] - fpr[i + 1]) * ((recall[i] + recall[i + 1]) / 2.0)).sum()
            }
            MetricKind::F1 { average, .. } => {
                let n = if average == Average::Micro { 1 } else { cols };
                let (tp, fp, fnn, w) = (&stats[..n], &stats[n..2 * n], &stats[2 * n..3 * n], &stats[3 * n..4 * n]);
                let f1: Vec<f32> = (0..n)
                    .map(|i| {
                        let p = tp[i] / (tp[i] + fp[i] + EPS);
                        let r = tp[i] / (tp[i] + fnn[i] + EPS);
                        (p * r) / ((p + r) + EPS) * 2.0
                    })
                    .collect();
                if average == Average::Weighted {
                    let total = w.iter().sum::<f32>() + EPS;
                    f1.iter().zip(w).map(|(f, w)| f * (w / total)).sum()
                } else {
                    f1.iter().sum::<f32>() / n as f32
                }
            }
            MetricKind::R2 => {
                let (sum, sq, mse, count) = (&stats[..cols], &stats[cols..2 * cols], &stats[2 * cols..3 * cols], &stats[3 * cols..]);
                let scores = (0..cols).map(|i| {
                    let mean = sum[i] / count[i];
                    let total = sq[i] - sum[i] * mean;
                    let raw = 1.0 - mse[i] / total;
                    if raw.is_infinite() { 0.0 } else { raw }
                });
                scores.sum::<f32>() / cols as f32
            }
            _ => stats[0] / stats[1],
        }
    }
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

    fn loss(name: &str) -> Loss {
        name.parse().unwrap()
    }

    #[test]
    fn accuracy_resolves_as_keras_does() {
        assert_eq!(Metric::Accuracy.resolve(loss("binary_crossentropy"), 1).unwrap(), MetricKind::Binary);
        assert_eq!(Metric::Accuracy.resolve(loss("mse"), 1).unwrap(), MetricKind::Binary);
        assert_eq!(Metric::Accuracy.resolve(loss("sparse_categorical_crossentropy"), 10).unwrap(), MetricKind::Sparse);
        assert_eq!(Metric::Accuracy.resolve(loss("categorical_crossentropy"), 3).unwrap(), MetricKind::Categorical);
        let e = Metric::SparseCategoricalAccuracy.resolve(loss("categorical_crossentropy"), 3).unwrap_err();
        assert!(e.to_string().contains("needs integer class targets"), "{e}");
        let e = Metric::Auc { num_thresholds: 200 }.resolve(loss("sparse_categorical_crossentropy"), 3).unwrap_err();
        assert!(e.to_string().contains("takes class indices"), "{e}");
        let e = Metric::Precision { threshold: 1.5 }.resolve(loss("binary_crossentropy"), 1).unwrap_err();
        assert_eq!(e.to_string(), "precision threshold: expected a number in [0, 1], found 1.5");
    }
}
