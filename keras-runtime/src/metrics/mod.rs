//! Metrics, as Keras 3 logs them: stateful values over an epoch.
//!
//! Each metric keeps a few float32 accumulators (Keras's metric variables: a total and a count,
//! true and false positives, a histogram of thresholds) that the backend adds each batch to;
//! the logged value is computed from them, so an epoch's `precision` is the precision of the
//! whole epoch and not a mean of per-batch precisions.

use crate::losses::LossSpec;

pub use crate::backend::ops::{Average, MetricKind};
use crate::{Error, Result};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

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
    pub fn resolve(self, loss: &LossSpec, output_width: usize) -> Result<MetricKind> {
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

/// A user's metric function: the value of one sample from its `y_true` and `y_pred` (the
/// output's last axis), averaged over the epoch's samples as Keras averages a metric function.
type MetricFn = dyn Fn(&[f32], &[f32]) -> f32 + Send + Sync;

/// A metric for `compile`: one of Keras's, by name or value, or a function of yours with the
/// name it is logged under. Lists that mix them convert each entry:
/// `["mae".into(), metrics::custom("within_one", within_one)]`.
#[derive(Clone)]
pub struct MetricSpec {
    what: What,
    name: Cow<'static, str>,
    /// The output it is computed on, in a model with several ([`on`]).
    output: Option<String>,
}

#[derive(Clone)]
enum What {
    /// A Keras name, resolved by `compile`.
    Name,
    Keras(Metric),
    Custom(Arc<MetricFn>),
}

impl fmt::Debug for MetricSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            What::Name => write!(f, "MetricSpec({:?})", self.name),
            What::Keras(m) => write!(f, "MetricSpec({m:?})"),
            What::Custom(_) => write!(f, "MetricSpec(custom {:?})", self.name),
        }
    }
}

impl MetricSpec {
    /// The name the metric is logged under (`accuracy`, `val_accuracy`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Keras metric this names: `Ok(None)` for a custom one, an error for an unknown name.
    pub fn keras(&self) -> Result<Option<Metric>> {
        match &self.what {
            What::Name => self.name.parse().map(Some),
            What::Keras(m) => Ok(Some(*m)),
            What::Custom(_) => Ok(None),
        }
    }

    /// What a compiled model computes for this metric, for an output `output_width` wide
    /// trained with `loss`.
    pub(crate) fn resolve(&self, loss: &LossSpec, output_width: usize) -> Result<ResolvedMetric> {
        Ok(match (&self.what, self.keras()?) {
            (What::Custom(f), _) => ResolvedMetric::Custom(f.clone()),
            (_, Some(m)) => ResolvedMetric::Keras(m.resolve(loss, output_width)?),
            (_, None) => unreachable!("only a custom metric has no Keras metric"),
        })
    }

    /// The name as a log key, borrowed when static (a steady `train_on_batch` allocates
    /// nothing for Keras's metrics).
    pub(crate) fn key(&self) -> Cow<'static, str> {
        self.name.clone()
    }

    /// The output it is computed on, for a model with several outputs (see [`on`]).
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

/// A metric as a compiled model computes it.
#[derive(Clone)]
pub(crate) enum ResolvedMetric {
    /// On the device, by the backend's metric kernels.
    Keras(MetricKind),
    /// On the host: the user's function summed over samples, `[total, count]`.
    Custom(Arc<MetricFn>),
}

impl ResolvedMetric {
    /// Accumulators the metric keeps for an output `cols` wide.
    pub(crate) fn stats_len(&self, cols: usize) -> usize {
        match self {
            ResolvedMetric::Keras(k) => k.stats_len(cols),
            ResolvedMetric::Custom(_) => 2,
        }
    }

    /// The logged value from the accumulators.
    pub(crate) fn result(&self, stats: &[f32], cols: usize) -> f32 {
        match self {
            ResolvedMetric::Keras(k) => k.result(stats, cols),
            ResolvedMetric::Custom(_) => stats[0] / stats[1],
        }
    }
}

/// Adds a batch of `rows` samples (each `cols` values of `pred`; `target`'s rows are as wide
/// as the loss takes them: one class index for a sparse loss) to a custom metric's
/// `[total, count]`.
pub(crate) fn accumulate_custom(f: &MetricFn, rows: usize, cols: usize, pred: &[f32], target: &[f32], stats: &mut [f32]) {
    let tcols = target.len() / rows.max(1);
    let total: f32 = (0..rows).map(|i| f(&target[i * tcols..(i + 1) * tcols], &pred[i * cols..(i + 1) * cols])).sum();
    stats[0] += total;
    stats[1] += rows as f32;
}

/// A metric of your own, logged under `name`: `f(y_true, y_pred)` of one sample (the output's
/// last axis; with a sparse loss `y_true` is the one class index, as Keras passes it),
/// averaged over the epoch's samples, as Keras averages a metric function.
///
/// ```
/// use keras_runtime::metrics;
///
/// let within_one = metrics::custom("within_one", |t: &[f32], p: &[f32]| {
///     t.iter().zip(p).filter(|(t, p)| (*t - *p).abs() <= 1.0).count() as f32 / p.len() as f32
/// });
/// assert_eq!(within_one.name(), "within_one");
/// ```
pub fn custom<F>(name: &str, f: F) -> MetricSpec
where
    F: Fn(&[f32], &[f32]) -> f32 + Send + Sync + 'static,
{
    MetricSpec { what: What::Custom(Arc::new(f)), name: Cow::Owned(name.to_string()), output: None }
}

impl From<Metric> for MetricSpec {
    fn from(m: Metric) -> Self {
        MetricSpec { what: What::Keras(m), name: Cow::Borrowed(m.name()), output: None }
    }
}

impl From<&str> for MetricSpec {
    /// A Keras metric by name, logged under that name (resolved by `compile`).
    fn from(name: &str) -> Self {
        // The aliases' static names keep logging allocation-free.
        let name = match Metric::NAMES.iter().find(|(n, _)| *n == name) {
            Some((n, _)) => Cow::Borrowed(*n),
            None => Cow::Owned(name.to_string()),
        };
        MetricSpec { what: What::Name, name, output: None }
    }
}

/// What `compile` accepts as a metric: a [`Metric`] or its Keras name (as in Keras, a metric
/// named by a string is logged under that string: `"acc"` logs `acc`, `val_acc`), a function
/// `fn(y_true: &[f32], y_pred: &[f32]) -> f32` of yours (logged under its name), a
/// `("name", closure)` pair, or a [`MetricSpec`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a metric",
    label = "a metric is expected here",
    note = "a metric is a Keras name (\"accuracy\"), a `Metric`, a function `fn(&[f32], &[f32]) -> f32`, a `(\"name\", closure)` pair, or `keras::metrics::custom(\"name\", closure)`"
)]
pub trait IntoMetric {
    /// The metric and the name it is logged under; an error for a closure without a name.
    fn into_metric(self) -> Result<MetricSpec>;
}

impl IntoMetric for MetricSpec {
    fn into_metric(self) -> Result<MetricSpec> {
        Ok(self)
    }
}

impl IntoMetric for Metric {
    fn into_metric(self) -> Result<MetricSpec> {
        Ok(self.into())
    }
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<MetricSpec> {
        let spec = MetricSpec::from(self);
        spec.keras()?;
        Ok(spec)
    }
}

impl<F> IntoMetric for F
where
    F: Fn(&[f32], &[f32]) -> f32 + Send + Sync + 'static,
{
    /// A function item is logged under its name; a closure, or functions coerced to one
    /// function-pointer type (`[f, g]`), has none.
    fn into_metric(self) -> Result<MetricSpec> {
        let full = std::any::type_name::<F>();
        if full.contains("{{closure}}") || full.starts_with("fn(") || full.starts_with("for<") || !full.contains("::") {
            return Err(Error::Config(
                "a closure (or a list of functions, which Rust turns into function pointers) passed as a metric has no name to log it under: give it one, as `(\"my_metric\", closure)` or `metrics::custom(\"my_metric\", closure)`".into(),
            ));
        }
        Ok(custom(full.rsplit("::").next().unwrap_or(full), self))
    }
}

impl<F> IntoMetric for (&str, F)
where
    F: Fn(&[f32], &[f32]) -> f32 + Send + Sync + 'static,
{
    fn into_metric(self) -> Result<MetricSpec> {
        Ok(custom(self.0, self.1))
    }
}

/// A metric of one output of a model with several, named by the output (Keras's
/// `metrics={"digit": ["accuracy"]}`): logged as `digit_accuracy`, `val_digit_accuracy`.
///
/// ```ignore
/// let model = Net::new(&Cpu::default()).compile(
///     Adam::default(),
///     ["sparse_categorical_crossentropy", "binary_crossentropy"],
///     [metrics::on("digit", "accuracy"), metrics::on("parity", "accuracy")],
/// )?;
/// ```
pub fn on<M: IntoMetric>(output: &str, metric: M) -> OnOutput<M> {
    OnOutput { output: output.to_string(), metric }
}

/// A metric of one named output: see [`on`].
pub struct OnOutput<M> {
    output: String,
    metric: M,
}

impl<M: IntoMetric> IntoMetric for OnOutput<M> {
    fn into_metric(self) -> Result<MetricSpec> {
        let mut spec = self.metric.into_metric()?;
        spec.output = Some(self.output);
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(name: &str) -> &'static LossSpec {
        Box::leak(Box::new(name.parse::<crate::losses::Loss>().unwrap().into()))
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
