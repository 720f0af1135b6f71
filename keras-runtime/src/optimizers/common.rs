//! What every optimizer shares: the [`Optimizer`] a configuration becomes, [`IntoOptimizer`],
//! the [`Common`] options, the range check, and the macro that defines a configuration.

use crate::backend::Backend;
use crate::model::WeightSpec;
use crate::{Error, Result};

/// An optimizer bound to a backend, holding its state (momentum, moments, iteration count).
pub trait Optimizer<B: Backend>: Send {
    /// The Keras name (`sgd`, `adam`, `rmsprop`, ...).
    fn name(&self) -> &'static str;
    /// The learning rate: the number set, or a schedule's value at [`Optimizer::iterations`]
    /// (before SGD's legacy `decay`, which divides it at each step, as Keras 2's `lr` was).
    fn learning_rate(&self) -> f32;
    /// Replaces the learning rate (also in the device's step buffer); an error when it comes from
    /// a schedule (as in Keras).
    fn set_learning_rate(&mut self, device: &B, lr: f32) -> Result<()>;
    /// Updates applied so far (Keras's `optimizer.iterations`).
    fn iterations(&self) -> u64;
    /// One update of every trainable parameter from its gradient. `weights` locates the weight
    /// tensors in the arenas (for `clipnorm`); clipping may scale `grads` in place.
    fn apply(&mut self, device: &B, params: B::ViewMut<'_>, grads: B::ViewMut<'_>, weights: &[WeightSpec]) -> Result<()> {
        self.prepare(device, B::view_len(B::freeze(&grads)), weights)?;
        self.launch(device, params, grads)?;
        self.count_step();
        Ok(())
    }
    /// [`Optimizer::apply`] in three parts, so that a training step's device work can be
    /// recorded and replayed: the host's part before the step (state buffers made at the first
    /// step, for `n` trainable parameters; a rate the device cannot compute written for this
    /// step), done outside any recording.
    fn prepare(&mut self, device: &B, n: usize, weights: &[WeightSpec]) -> Result<()>;
    /// The update's device work alone (after [`Optimizer::prepare`]): no host round trip.
    fn launch(&mut self, device: &B, params: B::ViewMut<'_>, grads: B::ViewMut<'_>) -> Result<()>;
    /// Counts a step whose update has run (launched, or replayed from a recording).
    fn count_step(&mut self);
    /// The optimizer's variables by Keras name: `iterations`, then each state buffer over the
    /// whole arena (`momentum`, `velocity`, ...); state appears once the first step made it.
    fn variables(&self, device: &B) -> Result<Vec<(String, Vec<f32>)>>;
    /// Restores variables that [`Optimizer::variables`] returned.
    fn set_variables(&mut self, device: &B, variables: &[(String, Vec<f32>)]) -> Result<()>;
}

/// What `compile` accepts as an optimizer: a configuration (`Sgd`, `Adam`, ...) or a Keras
/// name (`"sgd"`, `"adam"`, ...) for the defaults.
pub trait IntoOptimizer {
    /// The optimizer, or an error that names the bad setting.
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>>;
}

/// The options every Keras optimizer has. At most one of the three clipping options may be set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Common {
    /// Decoupled weight decay: before each update, `w -= w * weight_decay * learning_rate`.
    pub weight_decay: Option<f32>,
    /// Clips each weight tensor's gradient to this L2 norm.
    pub clipnorm: Option<f32>,
    /// Clips each gradient element to `[-clipvalue, clipvalue]`.
    pub clipvalue: Option<f32>,
    /// Clips all gradients together to this global L2 norm.
    pub global_clipnorm: Option<f32>,
}

impl Common {
    pub(crate) fn check(&self, optimizer: &str) -> Result<()> {
        if let Some(wd) = self.weight_decay {
            check(&format!("{optimizer} weight_decay"), wd, 0.0, f32::INFINITY, true, false)?;
        }
        let clips = [("clipnorm", self.clipnorm), ("clipvalue", self.clipvalue), ("global_clipnorm", self.global_clipnorm)];
        let set: Vec<String> = clips.iter().filter_map(|(n, v)| v.map(|v| format!("{n} = {v}"))).collect();
        if set.len() > 1 {
            return Err(Error::Config(format!(
                "{optimizer}: only one of clipnorm, clipvalue and global_clipnorm can be set, found {}",
                set.join(" and ")
            )));
        }
        for (name, v) in clips {
            if let Some(v) = v {
                check(&format!("{optimizer} {name}"), v, 0.0, f32::INFINITY, false, false)?;
            }
        }
        Ok(())
    }
}

/// Defines an optimizer configuration: the struct with its learning rate, its own settings
/// (each with a builder method of the same name) and the [`Common`] options.
macro_rules! optimizer_config {
    (
        $(#[$m:meta])*
        pub struct $name:ident (learning_rate = $lr:expr, weight_decay = $wd:expr) {
            $( $(#[$fm:meta])* $field:ident : $ty:ty = $default:expr, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name {
            /// The step size: a number or a schedule.
            pub learning_rate: $crate::optimizers::LearningRate,
            $( $(#[$fm])* pub $field: $ty, )*
            /// Weight decay and gradient clipping.
            pub common: $crate::optimizers::Common,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    learning_rate: $crate::optimizers::LearningRate::Constant($lr),
                    $( $field: $default, )*
                    common: $crate::optimizers::Common { weight_decay: $wd, ..Default::default() },
                }
            }
        }

        impl $name {
            /// This optimizer with the given learning rate (a number or a schedule) and Keras's
            /// defaults for everything else.
            pub fn new(learning_rate: impl Into<$crate::optimizers::LearningRate>) -> Self {
                $name { learning_rate: learning_rate.into(), ..Self::default() }
            }

            $(
                $(#[$fm])*
                pub fn $field(self, $field: $ty) -> Self {
                    $name { $field, ..self }
                }
            )*

            /// Sets the weight decay: before each update, `w -= w * weight_decay * learning_rate`.
            pub fn weight_decay(mut self, weight_decay: f32) -> Self {
                self.common.weight_decay = Some(weight_decay);
                self
            }

            /// Clips each weight tensor's gradient to this L2 norm.
            pub fn clipnorm(mut self, clipnorm: f32) -> Self {
                self.common.clipnorm = Some(clipnorm);
                self
            }

            /// Clips each gradient element to `[-clipvalue, clipvalue]`.
            pub fn clipvalue(mut self, clipvalue: f32) -> Self {
                self.common.clipvalue = Some(clipvalue);
                self
            }

            /// Clips all gradients together to this global L2 norm.
            pub fn global_clipnorm(mut self, global_clipnorm: f32) -> Self {
                self.common.global_clipnorm = Some(global_clipnorm);
                self
            }
        }
    };
}
pub(crate) use optimizer_config;

/// Checks that `value` is finite and within `range` (inclusive bounds where `closed`).
pub(crate) fn check(what: &str, value: f32, lo: f32, hi: f32, lo_closed: bool, hi_closed: bool) -> Result<()> {
    let ok = value.is_finite() && (if lo_closed { value >= lo } else { value > lo }) && (if hi_closed { value <= hi } else { value < hi });
    if ok {
        return Ok(());
    }
    let range = format!(
        "{}{lo}, {}{}",
        if lo_closed { "[" } else { "(" },
        if hi.is_infinite() { "inf".to_string() } else { hi.to_string() },
        if hi_closed { "]" } else { ")" }
    );
    Err(Error::value(what, format!("a finite number in {range}"), value))
}
