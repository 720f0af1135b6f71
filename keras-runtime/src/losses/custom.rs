//! The user's own losses: Keras's `def my_loss(y_true, y_pred)`, written once over [`Real`] and
//! differentiated by dual numbers.

use super::{Loss, LossConfig};
use crate::autodiff::{Dual, Real, Wide};
use crate::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// A loss written by the user: the loss of one sample, generic over the number type, so that
/// the runtime evaluates it with `f32` and differentiates it with [`Dual`] numbers: no gradient
/// to write. `compile` takes it wherever it takes a loss name.
///
/// `y_true` and `y_pred` hold one sample's values along the output's last axis (for an output
/// of shape `(steps, units)`, one step's `units` values); the batch loss is Keras's: the mean of
/// the per-sample losses, weighted by sample weights when `fit` has them.
///
/// ```
/// use keras_runtime::autodiff::Real;
/// use keras_runtime::losses::{CustomLoss, IntoLoss, check_gradient};
///
/// /// The pinball (quantile) loss: under-prediction costs `tau`, over-prediction `1 - tau`.
/// struct Pinball {
///     tau: f32,
/// }
///
/// impl CustomLoss for Pinball {
///     fn call<T: Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
///         let n = y_pred.len() as f32;
///         let sum: T = y_true.iter().zip(y_pred).map(|(&t, &p)| {
///             let e = t - p;
///             (e * self.tau).max(e * (self.tau - 1.0))
///         }).sum();
///         sum / n
///     }
/// }
///
/// # fn main() -> keras_runtime::Result<()> {
/// // In a test of yours: the gradient training uses against finite differences.
/// let check = check_gradient(&Pinball { tau: 0.9 }, &[1.0, 2.0], &[0.5, 2.5])?;
/// assert!(check.max_error < 1e-5, "{check:?}");
/// // `model.compile(Adam::default(), Pinball { tau: 0.9 }, ["mae"])` takes it as it is.
/// assert_eq!(Pinball { tau: 0.9 }.into_loss()?.name(), "pinball");
/// # Ok(())
/// # }
/// ```
pub trait CustomLoss: Send + Sync + 'static {
    /// The loss of one sample: `y_true` and `y_pred` have the output's last-axis length.
    fn call<T: Real>(&self, y_true: &[T], y_pred: &[T]) -> T;

    /// The loss of one sample and its gradient with respect to `y_pred`, written to `grad`.
    /// By default `call` is evaluated over dual numbers once per value of `y_pred` (a cost of
    /// `len` evaluations); a loss over a wide output, or one whose gradient is known in closed
    /// form, can write it here instead ([`check_gradient`] checks it).
    fn gradient(&self, y_true: &[f32], y_pred: &[f32], grad: &mut [f32]) -> f32 {
        dual_gradient(y_true, y_pred, grad, |t, p| self.call(t, p))
    }

    /// The loss's name, as `compile` reports it: the type's name in snake_case (`Pinball` is
    /// `pinball`), as Keras names a loss function by its `__name__`.
    fn name(&self) -> String {
        type_snake_name::<Self>()
    }
}

/// The gradient of `f(y_true, ·)` at `y_pred` by dual numbers, one evaluation per value.
fn dual_gradient(y_true: &[f32], y_pred: &[f32], grad: &mut [f32], f: impl Fn(&[Dual], &[Dual]) -> Dual) -> f32 {
    // Rows up to this width use the stack (no allocation per sample).
    const STACK: usize = 32;
    let (mut ts, mut ps) = ([Dual::default(); STACK], [Dual::default(); STACK]);
    let (mut th, mut ph);
    let (t, p): (&mut [Dual], &mut [Dual]) = if y_true.len() <= STACK && y_pred.len() <= STACK {
        (&mut ts[..y_true.len()], &mut ps[..y_pred.len()])
    } else {
        th = vec![Dual::default(); y_true.len()];
        ph = vec![Dual::default(); y_pred.len()];
        (&mut th, &mut ph)
    };
    for (d, &v) in t.iter_mut().zip(y_true) {
        *d = Dual::constant(v);
    }
    for (d, &v) in p.iter_mut().zip(y_pred) {
        *d = Dual::constant(v);
    }
    if p.is_empty() {
        return f(t, p).v;
    }
    let mut value = 0.0;
    for j in 0..p.len() {
        p[j].d = 1.0;
        let out = f(t, p);
        p[j].d = 0.0;
        grad[j] = out.d;
        value = out.v;
    }
    value
}

/// A type's name without its path and generic arguments, in snake_case.
fn type_snake_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let bare = full.split('<').next().unwrap_or(full);
    keras_naming::snake_case(bare.rsplit("::").next().unwrap_or(bare))
}

/// A user's loss with its type erased, as a compiled model holds it.
trait ErasedLoss: Send + Sync {
    fn value(&self, y_true: &[f32], y_pred: &[f32]) -> f32;
    fn gradient(&self, y_true: &[f32], y_pred: &[f32], grad: &mut [f32]) -> f32;
}

impl<L: CustomLoss> ErasedLoss for L {
    fn value(&self, y_true: &[f32], y_pred: &[f32]) -> f32 {
        self.call(y_true, y_pred)
    }
    fn gradient(&self, y_true: &[f32], y_pred: &[f32], grad: &mut [f32]) -> f32 {
        CustomLoss::gradient(self, y_true, y_pred, grad)
    }
}

/// A closure over dual numbers (see [`from_fn`]).
struct FnLoss<F>(F);

impl<F: Fn(&[Dual], &[Dual]) -> Dual + Send + Sync> ErasedLoss for FnLoss<F> {
    fn value(&self, y_true: &[f32], y_pred: &[f32]) -> f32 {
        let t: Vec<Dual> = y_true.iter().map(|&v| Dual::constant(v)).collect();
        let p: Vec<Dual> = y_pred.iter().map(|&v| Dual::constant(v)).collect();
        (self.0)(&t, &p).v
    }
    fn gradient(&self, y_true: &[f32], y_pred: &[f32], grad: &mut [f32]) -> f32 {
        dual_gradient(y_true, y_pred, grad, &self.0)
    }
}

/// A loss from a closure over [`Dual`] numbers, named `name`: the quick form of a
/// [`CustomLoss`] (which also runs at `f32` speed when only values are needed, and can be
/// checked by [`check_gradient`]).
///
/// ```
/// use keras_runtime::autodiff::{Dual, Real};
/// use keras_runtime::losses;
///
/// let squared_log = losses::from_fn("squared_log_error", |t: &[Dual], p: &[Dual]| {
///     let sum: Dual = t.iter().zip(p).map(|(&t, &p)| ((p + 1.0).ln() - (t + 1.0).ln()).square()).sum();
///     sum / p.len() as f32
/// });
/// assert_eq!(squared_log.name(), "squared_log_error");
/// ```
pub fn from_fn<F>(name: &str, f: F) -> LossSpec
where
    F: Fn(&[Dual], &[Dual]) -> Dual + Send + Sync + 'static,
{
    LossSpec::Custom(UserLoss { f: Arc::new(FnLoss(f)), name: name.to_string() })
}

/// A user's loss ([`CustomLoss`] or [`from_fn`]) as a compiled model holds it.
#[derive(Clone)]
pub struct UserLoss {
    f: Arc<dyn ErasedLoss>,
    name: String,
}

impl fmt::Debug for UserLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserLoss").field("name", &self.name).finish_non_exhaustive()
    }
}

impl UserLoss {
    pub(super) fn new<L: CustomLoss>(loss: L, name: String) -> Self {
        UserLoss { f: Arc::new(loss), name }
    }

    /// The loss's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A batch's loss on the host, as `ObjectiveOps::loss` computes Keras's: `rows` loss rows of
    /// `cols` values; adds `sum(w_i loss_i)` to `stats[0]` and `rows` to `stats[1]`, and writes
    /// the gradient of the batch loss `sum(w_i loss_i) / rows` into `grad`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch(
        &self,
        rows: usize,
        cols: usize,
        pred: &[f32],
        target: &[f32],
        weights: Option<&[f32]>,
        grad: Option<&mut [f32]>,
        stats: &mut [f32],
    ) {
        let per_sample = weights.map_or(1, |w| rows / w.len().max(1));
        let scale = 1.0 / rows as f32;
        let mut sum = 0.0f32;
        let mut grad = grad;
        for i in 0..rows {
            let (p, t) = (&pred[i * cols..(i + 1) * cols], &target[i * cols..(i + 1) * cols]);
            let w = weights.map_or(1.0, |w| w[i / per_sample]);
            let v = match grad.as_deref_mut() {
                Some(g) => {
                    let g = &mut g[i * cols..(i + 1) * cols];
                    let v = self.f.gradient(t, p, g);
                    g.iter_mut().for_each(|g| *g *= scale * w);
                    v
                }
                None => self.f.value(t, p),
            };
            sum += w * v;
        }
        stats[0] += sum;
        stats[1] += rows as f32;
    }
}

/// The loss `compile` trains with: one of Keras's, with its options, or the user's own.
#[derive(Clone, Debug)]
pub enum LossSpec {
    /// A Keras loss.
    Keras(LossConfig),
    /// A user's loss ([`CustomLoss`], [`from_fn`]).
    Custom(UserLoss),
}

impl LossSpec {
    /// The loss's name (`mean_squared_error`, or a custom loss's).
    pub fn name(&self) -> &str {
        match self {
            LossSpec::Keras(c) => c.kind().name(),
            LossSpec::Custom(u) => u.name(),
        }
    }

    /// The Keras loss and its options; `None` for a custom loss.
    pub fn keras(&self) -> Option<LossConfig> {
        match self {
            LossSpec::Keras(c) => Some(*c),
            LossSpec::Custom(_) => None,
        }
    }

    /// Whether targets are class indices (sparse categorical crossentropy; never a custom loss).
    pub fn sparse_targets(&self) -> bool {
        self.keras().is_some_and(|c| c.sparse_targets())
    }
}

impl From<Loss> for LossSpec {
    fn from(l: Loss) -> Self {
        LossSpec::Keras(l.into())
    }
}

impl From<LossConfig> for LossSpec {
    fn from(c: LossConfig) -> Self {
        LossSpec::Keras(c)
    }
}

impl fmt::Display for LossSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gradient compared with central finite differences (see [`check_gradient`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GradientCheck {
    /// The loss's gradient as training uses it (`CustomLoss::gradient`, f32).
    pub gradient: Vec<f32>,
    /// The central difference of `call` at f64 precision, per value of `y_pred`.
    pub numeric: Vec<f64>,
    /// The largest `|gradient - numeric| / max(1, |numeric|)`: an absolute error for small
    /// derivatives, a relative one for large.
    pub max_error: f64,
}

/// Checks a loss's gradient (by dual numbers or its own `gradient`) against central finite
/// differences of `call` evaluated at f64 precision, at one sample. Call it in a test of your
/// loss; keep `y_pred` away from kinks (where `abs` or `max` switch), where a finite
/// difference straddles both sides. Errors if the lengths differ or a value is not finite.
pub fn check_gradient<L: CustomLoss>(loss: &L, y_true: &[f32], y_pred: &[f32]) -> Result<GradientCheck> {
    if y_true.len() != y_pred.len() {
        return Err(Error::value("check_gradient y_true", format!("{} values, as many as y_pred", y_pred.len()), y_true.len()));
    }
    if let Some(v) = y_true.iter().chain(y_pred).find(|v| !v.is_finite()) {
        return Err(Error::value("check_gradient input", "finite values", v));
    }
    let mut gradient = vec![0.0; y_pred.len()];
    CustomLoss::gradient(loss, y_true, y_pred, &mut gradient);
    let t: Vec<Wide> = y_true.iter().map(|&v| Wide::from_f32(v)).collect();
    let mut p: Vec<Wide> = y_pred.iter().map(|&v| Wide::from_f32(v)).collect();
    let mut numeric = Vec::with_capacity(p.len());
    let mut max_error = 0.0f64;
    for j in 0..p.len() {
        let x = y_pred[j] as f64;
        let h = 1e-5 * x.abs().max(1.0);
        p[j] = Wide::new(x + h);
        let up = loss.call(&t, &p).get();
        p[j] = Wide::new(x - h);
        let down = loss.call(&t, &p).get();
        p[j] = Wide::new(x);
        let n = (up - down) / (2.0 * h);
        let error = (gradient[j] as f64 - n).abs() / n.abs().max(1.0);
        max_error = if error.is_nan() { f64::INFINITY } else { max_error.max(error) };
        numeric.push(n);
    }
    Ok(GradientCheck { gradient, numeric, max_error })
}
