//! Loss functions, with Keras 3's definitions: epsilon clipping at 1e-7, per-sample values
//! (mean over the last axis for most losses), and the batch loss `sum(w_i * loss_i) / N`
//! (Keras's `sum_over_batch_size`; `w_i` = 1 without sample weights).
//!
//! A loss of your own is a [`CustomLoss`]: the loss of one sample written over
//! [`Real`](crate::autodiff::Real) numbers, differentiated for you; [`check_gradient`] checks it.

use crate::{Error, Result};
use std::fmt;

mod custom;

pub use crate::backend::ops::{EPSILON, Loss, LossConfig};
pub use custom::{CustomLoss, GradientCheck, LossSpec, UserLoss, check_gradient, from_fn};

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

/// What `compile` accepts as a loss: a Keras name (`"mse"`), a [`Loss`], a [`LossConfig`], a
/// [`CustomLoss`] of yours, or a [`LossSpec`] (what [`from_fn`] makes).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a loss",
    label = "a loss is expected here",
    note = "a loss is a Keras name (\"mse\"), a `Loss`, a `LossConfig`, a type of yours implementing `keras::losses::CustomLoss`, or a closure over dual numbers given a name with `keras::losses::from_fn(\"name\", |y_true, y_pred| ...)`"
)]
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<LossSpec>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<LossSpec> {
        Ok(self.into())
    }
}

impl IntoLoss for LossConfig {
    fn into_loss(self) -> Result<LossSpec> {
        Ok(self.into())
    }
}

impl IntoLoss for LossSpec {
    fn into_loss(self) -> Result<LossSpec> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<LossSpec> {
        self.parse::<Loss>().map(LossSpec::from)
    }
}

impl<L: CustomLoss> IntoLoss for L {
    fn into_loss(self) -> Result<LossSpec> {
        let name = self.name();
        Ok(LossSpec::Custom(UserLoss::new(self, name)))
    }
}

/// What `compile` accepts as the loss: one loss, which a model with several outputs applies to
/// each of them (as Keras does); or, for a model with several outputs, one loss per output in
/// the model's order (`["sparse_categorical_crossentropy", "binary_crossentropy"]`, Keras's list),
/// or by output name (`[("digit", "sparse_categorical_crossentropy"), ("parity", "mse")]`,
/// Keras's dict).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a loss",
    label = "a loss is expected here",
    note = "a loss is a Keras name (\"mse\"), a `Loss`, a `LossConfig`, a type of yours implementing `keras::losses::CustomLoss`, or a closure over dual numbers given a name with `keras::losses::from_fn(\"name\", |y_true, y_pred| ...)`; a model with several outputs also takes one per output, `[\"mse\", \"mae\"]` or `[(\"size\", \"mse\"), ..]`"
)]
pub trait IntoLosses {
    /// The losses as given.
    fn into_losses(self) -> Result<Losses>;
}

/// Losses as `compile` was given them (see [`IntoLosses`]).
#[derive(Clone, Debug)]
pub enum Losses {
    /// One loss, for every output.
    One(LossSpec),
    /// One per output, in order.
    InOrder(Vec<LossSpec>),
    /// One per output, by the output's name.
    ByName(Vec<(String, LossSpec)>),
}

impl Losses {
    /// One loss per output of a model whose outputs are `outputs` (empty for a model with one
    /// output); a count or a name that does not fit is an error naming the outputs.
    pub fn per_output(self, outputs: &[&str]) -> Result<Vec<LossSpec>> {
        let n = outputs.len().max(1);
        let listed = || if outputs.is_empty() { "one output".to_string() } else { format!("{} outputs ({})", n, outputs.join(", ")) };
        match self {
            Losses::One(l) => Ok(vec![l; n]),
            Losses::InOrder(v) if v.len() == n => Ok(v),
            Losses::InOrder(v) => {
                Err(Error::Config(format!("{} losses given for a model with {}: give one per output", v.len(), listed())))
            }
            Losses::ByName(v) if outputs.is_empty() => {
                Err(Error::Config(format!("losses by output name ({}) for a model with one output: give one loss", v.len())))
            }
            Losses::ByName(v) => {
                if let Some((name, _)) = v.iter().find(|(name, _)| !outputs.contains(&name.as_str())) {
                    return Err(Error::Config(format!(
                        "a loss for output `{name}`, which the model does not have; its outputs are {}",
                        outputs.join(", ")
                    )));
                }
                outputs
                    .iter()
                    .map(|o| {
                        let mut found = v.iter().filter(|(name, _)| name == o);
                        match (found.next(), found.next()) {
                            (Some((_, l)), None) => Ok(l.clone()),
                            (Some(_), Some(_)) => Err(Error::Config(format!("output `{o}` is given two losses"))),
                            (None, _) => {
                                Err(Error::Config(format!("no loss for output `{o}`: name a loss for each of {}", outputs.join(", "))))
                            }
                        }
                    })
                    .collect()
            }
        }
    }
}

impl<L: IntoLoss> IntoLosses for L {
    fn into_losses(self) -> Result<Losses> {
        self.into_loss().map(Losses::One)
    }
}

impl<L: IntoLoss, const N: usize> IntoLosses for [L; N] {
    fn into_losses(self) -> Result<Losses> {
        self.into_iter().map(IntoLoss::into_loss).collect::<Result<_>>().map(Losses::InOrder)
    }
}

impl<L: IntoLoss> IntoLosses for Vec<L> {
    fn into_losses(self) -> Result<Losses> {
        self.into_iter().map(IntoLoss::into_loss).collect::<Result<_>>().map(Losses::InOrder)
    }
}

impl<L: IntoLoss, const N: usize> IntoLosses for [(&str, L); N] {
    fn into_losses(self) -> Result<Losses> {
        self.into_iter().map(|(name, l)| Ok((name.to_string(), l.into_loss()?))).collect::<Result<_>>().map(Losses::ByName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
