//! Loss functions, with Keras 3's definitions: epsilon clipping at 1e-7, per-sample values
//! (mean over the last axis for most losses), and the batch loss `sum(w_i * loss_i) / N`
//! (Keras's `sum_over_batch_size`; `w_i` = 1 without sample weights).

use crate::{Error, Result};
use std::fmt;

/// Keras's fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a log.
pub const EPSILON: f32 = 1e-7;

/// A loss function: `compile(optimizer, Loss::MeanSquaredError, ..)` or by Keras name, alias or
/// class name, `compile(optimizer, "mse", ..)`. Options go through [`LossConfig`]:
/// `Loss::BinaryCrossentropy.from_logits(true).label_smoothing(0.1)`, `Loss::huber(2.0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// Mean of `(y - p)^2` over the last axis.
    MeanSquaredError,
    /// Mean of `|y - p|` over the last axis.
    MeanAbsoluteError,
    /// `100 * mean(|y - p| / max(|y|, eps))` over the last axis.
    MeanAbsolutePercentageError,
    /// Mean of `(log(max(p, eps) + 1) - log(max(y, eps) + 1))^2` over the last axis.
    MeanSquaredLogarithmicError,
    /// `-(y log p + (1 - y) log(1 - p))`, mean over the last axis; `p` are probabilities
    /// (logits with `from_logits`).
    BinaryCrossentropy,
    /// Binary crossentropy scaled by `(1 - p_t)^gamma` (and by `alpha` with class balancing).
    BinaryFocalCrossentropy,
    /// `-sum(y log p)` over the last axis; `y` one-hot (or soft) targets, `p` probabilities
    /// (logits with `from_logits`).
    CategoricalCrossentropy,
    /// Categorical crossentropy with integer class targets.
    SparseCategoricalCrossentropy,
    /// `0.5 e^2` where `|e| <= delta`, else `delta (|e| - 0.5 delta)`, mean over the last axis.
    Huber,
    /// Mean of `log(cosh(p - y))` over the last axis.
    LogCosh,
    /// `sum(y log(y / p))` over the last axis, both clipped to `[eps, 1]`.
    KlDivergence,
    /// Mean of `p - y log(p + eps)` over the last axis.
    Poisson,
    /// Mean of `max(1 - y p, 0)`; targets in {0, 1} are mapped to {-1, 1}.
    Hinge,
    /// Mean of `max(1 - y p, 0)^2`; targets in {0, 1} are mapped to {-1, 1}.
    SquaredHinge,
    /// `max(max((1 - y) p) - sum(y p) + 1, 0)` over the last axis.
    CategoricalHinge,
    /// `-sum(l2_normalize(y) * l2_normalize(p))` over the last axis.
    CosineSimilarity,
}

impl Loss {
    /// Keras names and aliases.
    pub const NAMES: &'static [(&'static str, Loss)] = &[
        ("mean_squared_error", Loss::MeanSquaredError),
        ("mse", Loss::MeanSquaredError),
        ("MSE", Loss::MeanSquaredError),
        ("mean_absolute_error", Loss::MeanAbsoluteError),
        ("mae", Loss::MeanAbsoluteError),
        ("MAE", Loss::MeanAbsoluteError),
        ("mean_absolute_percentage_error", Loss::MeanAbsolutePercentageError),
        ("mape", Loss::MeanAbsolutePercentageError),
        ("MAPE", Loss::MeanAbsolutePercentageError),
        ("mean_squared_logarithmic_error", Loss::MeanSquaredLogarithmicError),
        ("msle", Loss::MeanSquaredLogarithmicError),
        ("MSLE", Loss::MeanSquaredLogarithmicError),
        ("binary_crossentropy", Loss::BinaryCrossentropy),
        ("bce", Loss::BinaryCrossentropy),
        ("BCE", Loss::BinaryCrossentropy),
        ("binary_focal_crossentropy", Loss::BinaryFocalCrossentropy),
        ("categorical_crossentropy", Loss::CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", Loss::SparseCategoricalCrossentropy),
        ("huber", Loss::Huber),
        ("huber_loss", Loss::Huber),
        ("log_cosh", Loss::LogCosh),
        ("logcosh", Loss::LogCosh),
        ("kl_divergence", Loss::KlDivergence),
        ("kld", Loss::KlDivergence),
        ("KLD", Loss::KlDivergence),
        ("kullback_leibler_divergence", Loss::KlDivergence),
        ("poisson", Loss::Poisson),
        ("hinge", Loss::Hinge),
        ("squared_hinge", Loss::SquaredHinge),
        ("categorical_hinge", Loss::CategoricalHinge),
        ("cosine_similarity", Loss::CosineSimilarity),
    ];

    /// Keras's class names, which Keras also accepts where it takes a loss name.
    pub const CLASS_NAMES: &'static [(&'static str, Loss)] = &[
        ("MeanSquaredError", Loss::MeanSquaredError),
        ("MeanAbsoluteError", Loss::MeanAbsoluteError),
        ("MeanAbsolutePercentageError", Loss::MeanAbsolutePercentageError),
        ("MeanSquaredLogarithmicError", Loss::MeanSquaredLogarithmicError),
        ("BinaryCrossentropy", Loss::BinaryCrossentropy),
        ("BinaryFocalCrossentropy", Loss::BinaryFocalCrossentropy),
        ("CategoricalCrossentropy", Loss::CategoricalCrossentropy),
        ("SparseCategoricalCrossentropy", Loss::SparseCategoricalCrossentropy),
        ("Huber", Loss::Huber),
        ("LogCosh", Loss::LogCosh),
        ("KLDivergence", Loss::KlDivergence),
        ("Poisson", Loss::Poisson),
        ("Hinge", Loss::Hinge),
        ("SquaredHinge", Loss::SquaredHinge),
        ("CategoricalHinge", Loss::CategoricalHinge),
        ("CosineSimilarity", Loss::CosineSimilarity),
    ];

    /// The Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Loss::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::BinaryFocalCrossentropy => "binary_focal_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::Huber => "huber",
            Loss::LogCosh => "log_cosh",
            Loss::KlDivergence => "kl_divergence",
            Loss::Poisson => "poisson",
            Loss::Hinge => "hinge",
            Loss::SquaredHinge => "squared_hinge",
            Loss::CategoricalHinge => "categorical_hinge",
            Loss::CosineSimilarity => "cosine_similarity",
        }
    }

    /// Whether targets are class indices (one per sample) rather than arrays shaped like the output.
    pub fn sparse_targets(self) -> bool {
        self == Loss::SparseCategoricalCrossentropy
    }

    /// Huber loss with this `delta` (Keras's default is 1).
    pub fn huber(delta: f32) -> LossConfig {
        LossConfig::from(Loss::Huber).delta(delta)
    }

    /// This loss with `from_logits` set: predictions are logits (crossentropies only).
    pub fn from_logits(self, from_logits: bool) -> LossConfig {
        LossConfig::from(self).from_logits(from_logits)
    }

    /// This loss with label smoothing (binary, focal and categorical crossentropy).
    pub fn label_smoothing(self, label_smoothing: f32) -> LossConfig {
        LossConfig::from(self).label_smoothing(label_smoothing)
    }

    /// This loss with its default options.
    pub fn config(self) -> LossConfig {
        LossConfig::from(self)
    }
}

/// A loss with its options (Keras's loss `get_config()`); every field starts at Keras's default.
/// Options a loss does not have are rejected by `compile`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossConfig {
    kind: Loss,
    from_logits: bool,
    label_smoothing: f32,
    delta: f32,
    apply_class_balancing: bool,
    alpha: f32,
    gamma: f32,
}

impl From<Loss> for LossConfig {
    fn from(kind: Loss) -> Self {
        LossConfig { kind, from_logits: false, label_smoothing: 0.0, delta: 1.0, apply_class_balancing: false, alpha: 0.25, gamma: 2.0 }
    }
}

impl LossConfig {
    /// Predictions are logits, not probabilities (binary, focal, categorical and sparse
    /// categorical crossentropy; default false).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Targets become `y (1 - s) + s / 2` (binary, focal) or `y (1 - s) + s / classes`
    /// (categorical); `s` in `[0, 1]`, default 0.
    pub fn label_smoothing(mut self, label_smoothing: f32) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// Huber's threshold between the quadratic and linear parts (default 1, must be > 0).
    pub fn delta(mut self, delta: f32) -> Self {
        self.delta = delta;
        self
    }

    /// Focal crossentropy weighs positives by `alpha` and negatives by `1 - alpha` (default false).
    pub fn apply_class_balancing(mut self, apply: bool) -> Self {
        self.apply_class_balancing = apply;
        self
    }

    /// Focal crossentropy's class balance (default 0.25, in `[0, 1]`).
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Focal crossentropy's focusing exponent (default 2, at least 0).
    pub fn gamma(mut self, gamma: f32) -> Self {
        self.gamma = gamma;
        self
    }

    /// The loss function.
    pub fn kind(&self) -> Loss {
        self.kind
    }

    /// Whether targets are class indices (see [`Loss::sparse_targets`]).
    pub fn sparse_targets(&self) -> bool {
        self.kind.sparse_targets()
    }

    /// Checks the options against the loss: each in its range, and only options the loss has.
    pub fn validate(&self) -> Result<()> {
        use Loss::*;
        let name = self.kind.name();
        let has_logits =
            matches!(self.kind, BinaryCrossentropy | BinaryFocalCrossentropy | CategoricalCrossentropy | SparseCategoricalCrossentropy);
        let has_smoothing = matches!(self.kind, BinaryCrossentropy | BinaryFocalCrossentropy | CategoricalCrossentropy);
        let focal = self.kind == BinaryFocalCrossentropy;
        let unsupported = |option: &str, value: &dyn fmt::Display| {
            Err(Error::value(format!("{name} option `{option}`"), format!("no `{option}` (only the losses that have it take it)"), value))
        };
        if self.from_logits && !has_logits {
            return unsupported("from_logits", &self.from_logits);
        }
        if self.label_smoothing != 0.0 && !has_smoothing {
            return unsupported("label_smoothing", &self.label_smoothing);
        }
        if self.delta != 1.0 && self.kind != Huber {
            return unsupported("delta", &self.delta);
        }
        if !focal && self.apply_class_balancing {
            return unsupported("apply_class_balancing", &self.apply_class_balancing);
        }
        if !focal && self.alpha != 0.25 {
            return unsupported("alpha", &self.alpha);
        }
        if !focal && self.gamma != 2.0 {
            return unsupported("gamma", &self.gamma);
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::value(format!("{name} label_smoothing"), "a value in [0, 1]", self.label_smoothing));
        }
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(Error::value("huber delta", "a finite value > 0", self.delta));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::value(format!("{name} alpha"), "a value in [0, 1]", self.alpha));
        }
        if !(self.gamma >= 0.0 && self.gamma.is_finite()) {
            return Err(Error::value(format!("{name} gamma"), "a finite value >= 0", self.gamma));
        }
        Ok(())
    }

    /// Whether every value of a batch's targets is 0 or 1: the hinge losses then map them to
    /// -1 and 1, as Keras decides per batch.
    pub fn binary_targets(&self, target: &[f32]) -> bool {
        matches!(self.kind, Loss::Hinge | Loss::SquaredHinge) && target.iter().all(|&t| t == 0.0 || t == 1.0)
    }

    /// The per-sample loss and its gradient with respect to `pred` (one sample, last axis),
    /// written to `grad` scaled by `scale`. `target` holds the class index for sparse losses;
    /// `binary_targets` is [`LossConfig::binary_targets`] of the whole batch. This is the
    /// reference definition; the CPU backend calls it row by row.
    pub fn sample(&self, pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32, binary_targets: bool) -> f32 {
        let n = pred.len() as f32;
        // Most losses are a mean over the last axis of an elementwise term.
        let k = scale / n;
        let s = self.label_smoothing;
        match self.kind {
            Loss::MeanSquaredError => elementwise(pred, target, grad, |p, t| ((t - p) * (t - p), k * 2.0 * (p - t))) / n,
            Loss::MeanAbsoluteError => elementwise(pred, target, grad, |p, t| ((t - p).abs(), k * sign(p - t))) / n,
            Loss::MeanAbsolutePercentageError => {
                let sum = elementwise(pred, target, grad, |p, t| {
                    let d = t.abs().max(EPSILON);
                    (((t - p) / d).abs(), k * 100.0 * sign(p - t) / d)
                });
                100.0 * (sum / n)
            }
            Loss::MeanSquaredLogarithmicError => {
                elementwise(pred, target, grad, |p, t| {
                    let pm = p.max(EPSILON) + 1.0;
                    let d = pm.ln() - (t.max(EPSILON) + 1.0).ln();
                    (d * d, if p > EPSILON { k * 2.0 * d / pm } else { 0.0 })
                }) / n
            }
            Loss::BinaryCrossentropy if self.from_logits => {
                elementwise(pred, target, grad, |z, t| {
                    let t = t * (1.0 - s) + 0.5 * s;
                    (-t * log_sigmoid(z) - (1.0 - t) * log_sigmoid(-z), k * (sigmoid(z) - t))
                }) / n
            }
            Loss::BinaryCrossentropy => {
                elementwise(pred, target, grad, |p, t| {
                    let t = t * (1.0 - s) + 0.5 * s;
                    (bce(p, t), k * bce_grad(p, t))
                }) / n
            }
            Loss::BinaryFocalCrossentropy => {
                let (logits, balance, alpha, gamma) = (self.from_logits, self.apply_class_balancing, self.alpha, self.gamma);
                elementwise(pred, target, grad, |z, t| {
                    let t = t * (1.0 - s) + 0.5 * s;
                    let p = if logits { sigmoid(z) } else { z };
                    let b = bce(p, t);
                    let pt = t * p + (1.0 - t) * (1.0 - p);
                    let f = (1.0 - pt).powf(gamma);
                    let w = if balance { t * alpha + (1.0 - t) * (1.0 - alpha) } else { 1.0 };
                    // d(1 - p_t)/dp = 1 - 2t.
                    let df = if gamma == 0.0 { 0.0 } else { gamma * (1.0 - pt).powf(gamma - 1.0) * (1.0 - 2.0 * t) };
                    let mut g = w * (df * b + f * bce_grad(p, t));
                    if logits {
                        g *= p * (1.0 - p);
                    }
                    (w * (f * b), k * g)
                }) / n
            }
            Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy => {
                let class = if self.kind.sparse_targets() { Some(target[0] as usize) } else { None };
                let target = |j: usize| match class {
                    Some(c) => (j == c) as u8 as f32,
                    None if s != 0.0 => target[j] * (1.0 - s) + s / n,
                    None => target[j],
                };
                if self.from_logits { log_softmax_crossentropy(pred, target, grad, scale) } else { categorical(pred, target, grad, scale) }
            }
            Loss::Huber => {
                let d = self.delta;
                elementwise(pred, target, grad, |p, t| {
                    let e = p - t;
                    if e.abs() <= d { (0.5 * (e * e), k * e) } else { (d * e.abs() - 0.5 * (d * d), k * d * sign(e)) }
                }) / n
            }
            Loss::LogCosh => {
                let log2 = std::f32::consts::LN_2;
                elementwise(pred, target, grad, |p, t| {
                    let x = p - t;
                    (x + softplus(x * -2.0) - log2, k * (1.0 - 2.0 * sigmoid(-2.0 * x)))
                }) / n
            }
            Loss::KlDivergence => elementwise(pred, target, grad, |p, t| {
                let (tc, pc) = (t.clamp(EPSILON, 1.0), p.clamp(EPSILON, 1.0));
                (tc * (tc / pc).ln(), if p > EPSILON && p < 1.0 { -scale * tc / pc } else { 0.0 })
            }),
            Loss::Poisson => elementwise(pred, target, grad, |p, t| (p - t * (p + EPSILON).ln(), k * (1.0 - t / (p + EPSILON)))) / n,
            Loss::Hinge => {
                elementwise(pred, target, grad, |p, t| {
                    let t = if binary_targets { 2.0 * t - 1.0 } else { t };
                    let m = 1.0 - t * p;
                    (m.max(0.0), if m > 0.0 { -k * t } else { 0.0 })
                }) / n
            }
            Loss::SquaredHinge => {
                elementwise(pred, target, grad, |p, t| {
                    let t = if binary_targets { 2.0 * t - 1.0 } else { t };
                    let m = (1.0 - t * p).max(0.0);
                    (m * m, -k * 2.0 * m * t)
                }) / n
            }
            Loss::CategoricalHinge => categorical_hinge(pred, target, grad, scale),
            Loss::CosineSimilarity => cosine_similarity(pred, target, grad, scale),
        }
    }
}

/// `sum_j term(p_j, t_j).0`, writing `term(p_j, t_j).1` (the scaled derivative) to `grad`.
#[inline(always)]
fn elementwise(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, term: impl Fn(f32, f32) -> (f32, f32)) -> f32 {
    let mut sum = 0.0f32;
    match grad {
        Some(g) => {
            for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                let (v, d) = term(p, t);
                sum += v;
                *g = d;
            }
        }
        None => {
            for (&p, &t) in pred.iter().zip(target) {
                sum += term(p, t).0;
            }
        }
    }
    sum
}

/// JAX's `sign` (0 at 0), the derivative of `|x|`.
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `log(1 + e^x)` without overflow (JAX's `logaddexp(x, 0)`).
fn softplus(x: f32) -> f32 {
    x.max(0.0) + libm::log1pf((-x.abs()).exp())
}

/// `log(sigmoid(x)) = -softplus(-x)`.
fn log_sigmoid(x: f32) -> f32 {
    -softplus(-x)
}

/// Binary crossentropy of a probability, clipped to `[EPSILON, 1 - EPSILON]`.
fn bce(p: f32, t: f32) -> f32 {
    let pc = p.clamp(EPSILON, 1.0 - EPSILON);
    -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln())
}

/// `d bce / dp`: zero outside the clip range.
fn bce_grad(p: f32, t: f32) -> f32 {
    if (EPSILON..=1.0 - EPSILON).contains(&p) { (1.0 - t) / (1.0 - p) - t / p } else { 0.0 }
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

/// `-sum(t log_softmax(z))` and its gradient `softmax(z) sum(t) - t`.
fn log_softmax_crossentropy(z: &[f32], target: impl Fn(usize) -> f32, grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for &v in z {
        sum += (v - max).exp();
    }
    let log_sum = sum.ln();
    let (mut loss, mut tsum) = (0.0f32, 0.0f32);
    for (j, &v) in z.iter().enumerate() {
        let t = target(j);
        loss -= t * (v - max - log_sum);
        tsum += t;
    }
    if let Some(g) = grad {
        for (j, (g, &v)) in g.iter_mut().zip(z).enumerate() {
            *g = ((v - max).exp() / sum * tsum - target(j)) * scale;
        }
    }
    loss
}

/// `max(max((1 - t) p) - sum(t p) + 1, 0)`; the gradient flows to the first maximum.
fn categorical_hinge(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let (mut pos, mut neg, mut at) = (0.0f32, f32::NEG_INFINITY, 0);
    for (j, (&p, &t)) in pred.iter().zip(target).enumerate() {
        pos += t * p;
        let v = (1.0 - t) * p;
        if v > neg {
            neg = v;
            at = j;
        }
    }
    let loss = (neg - pos + 1.0).max(0.0);
    if let Some(g) = grad {
        for (j, (g, &t)) in g.iter_mut().zip(target).enumerate() {
            *g = if loss > 0.0 { (if j == at { 1.0 - t } else { 0.0 } - t) * scale } else { 0.0 };
        }
    }
    loss
}

/// `x * min(1 / |x|, 1 / EPSILON)`'s inverse norm, as Keras's `normalize`.
fn inv_norm(x: &[f32]) -> f32 {
    let mut sq = 0.0f32;
    for &v in x {
        sq += v * v;
    }
    (1.0 / sq.sqrt()).min(1.0 / EPSILON)
}

/// `-sum(normalize(t) * normalize(p))` and its gradient.
fn cosine_similarity(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let (ip, it) = (inv_norm(pred), inv_norm(target));
    let mut dot = 0.0f32;
    for (&p, &t) in pred.iter().zip(target) {
        dot += (t * it) * (p * ip);
    }
    if let Some(g) = grad {
        // Inside the epsilon floor the norm is a constant; otherwise d(p / |p|) projects out p.
        let clamped = ip >= 1.0 / EPSILON;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            let tn = t * it;
            *g = if clamped { -tn * ip } else { -(tn - dot * (p * ip)) * ip } * scale;
        }
    }
    -dot
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for LossConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Loss::NAMES.iter().chain(Loss::CLASS_NAMES).find(|(n, _)| *n == s).map(|&(_, l)| l).ok_or_else(|| Error::Unknown {
            kind: "loss",
            name: s.to_string(),
            expected: Loss::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

/// What `compile` accepts as a loss: a [`Loss`], a [`LossConfig`] or a Keras name.
pub trait IntoLoss {
    /// The loss with its options, or an error for an unknown name.
    fn into_loss(self) -> Result<LossConfig>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<LossConfig> {
        Ok(self.into())
    }
}

impl IntoLoss for LossConfig {
    fn into_loss(self) -> Result<LossConfig> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<LossConfig> {
        self.parse::<Loss>().map(LossConfig::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences() {
        let pred = [0.2f32, 0.5, 0.3];
        let cases: Vec<(LossConfig, [f32; 3])> = vec![
            (Loss::MeanSquaredError.config(), [0.0, 1.0, 0.5]),
            (Loss::MeanAbsoluteError.config(), [0.0, 1.0, 0.5]),
            (Loss::MeanAbsolutePercentageError.config(), [0.1, 1.0, -0.5]),
            (Loss::MeanSquaredLogarithmicError.config(), [0.0, 1.0, 0.5]),
            (Loss::BinaryCrossentropy.config(), [0.0, 1.0, 1.0]),
            (Loss::BinaryCrossentropy.from_logits(true).label_smoothing(0.2), [0.0, 1.0, 1.0]),
            (Loss::BinaryFocalCrossentropy.config(), [0.0, 1.0, 1.0]),
            (Loss::BinaryFocalCrossentropy.from_logits(true).apply_class_balancing(true).label_smoothing(0.1), [0.0, 1.0, 1.0]),
            (Loss::CategoricalCrossentropy.config(), [0.0, 1.0, 0.0]),
            (Loss::CategoricalCrossentropy.label_smoothing(0.1).from_logits(true), [0.0, 1.0, 0.0]),
            (Loss::SparseCategoricalCrossentropy.config(), [2.0, 0.0, 0.0]),
            (Loss::SparseCategoricalCrossentropy.from_logits(true), [2.0, 0.0, 0.0]),
            (Loss::huber(0.25), [0.0, 1.0, 0.4]),
            (Loss::LogCosh.config(), [0.0, 1.0, 0.5]),
            (Loss::KlDivergence.config(), [0.1, 0.6, 0.3]),
            (Loss::Poisson.config(), [0.0, 1.0, 2.0]),
            (Loss::Hinge.config(), [0.0, 1.0, 1.0]),
            (Loss::SquaredHinge.config(), [0.0, 1.0, 1.0]),
            (Loss::CategoricalHinge.config(), [0.0, 1.0, 0.0]),
            (Loss::CosineSimilarity.config(), [0.1, 1.0, -0.5]),
        ];
        for (loss, target) in cases {
            loss.validate().unwrap();
            let binary = loss.binary_targets(&target);
            let mut g = [0.0f32; 3];
            loss.sample(&pred, &target, Some(&mut g), 1.0, binary);
            for j in 0..3 {
                let h = 1e-3f32;
                let mut p1 = pred;
                p1[j] += h;
                let mut p0 = pred;
                p0[j] -= h;
                let numeric = (loss.sample(&p1, &target, None, 1.0, binary) - loss.sample(&p0, &target, None, 1.0, binary)) / (2.0 * h);
                assert!((numeric - g[j]).abs() < 2e-3 * (1.0 + g[j].abs()), "{loss:?} d/dp{j}: {numeric} vs {}", g[j]);
            }
        }
    }

    #[test]
    fn names_parse_and_unknown_names_list_the_valid_ones() {
        assert_eq!("mse".parse::<Loss>().unwrap(), Loss::MeanSquaredError);
        assert_eq!("kld".parse::<Loss>().unwrap(), Loss::KlDivergence);
        assert_eq!("logcosh".parse::<Loss>().unwrap(), Loss::LogCosh);
        assert_eq!("KLDivergence".parse::<Loss>().unwrap(), Loss::KlDivergence);
        for &(name, loss) in Loss::NAMES.iter().chain(Loss::CLASS_NAMES) {
            assert_eq!(name.parse::<Loss>().unwrap(), loss);
        }
        let e = "cross_entropy".parse::<Loss>().unwrap_err().to_string();
        assert!(e.contains("unknown loss `cross_entropy`") && e.contains("sparse_categorical_crossentropy"), "{e}");
    }

    #[test]
    fn options_are_validated() {
        let e = Loss::BinaryCrossentropy.label_smoothing(1.5).validate().unwrap_err().to_string();
        assert!(e.contains("[0, 1]") && e.contains("1.5"), "{e}");
        let e = Loss::huber(0.0).validate().unwrap_err().to_string();
        assert!(e.contains("> 0") && e.contains("found 0"), "{e}");
        let e = Loss::MeanSquaredError.from_logits(true).validate().unwrap_err().to_string();
        assert!(e.contains("from_logits"), "{e}");
        assert!(Loss::BinaryFocalCrossentropy.config().gamma(-1.0).validate().is_err());
        assert!(Loss::BinaryFocalCrossentropy.config().alpha(2.0).validate().is_err());
        Loss::BinaryFocalCrossentropy.config().alpha(0.5).gamma(0.0).validate().unwrap();
    }
}
