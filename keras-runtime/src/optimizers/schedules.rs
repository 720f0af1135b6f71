//! Learning-rate schedules: Keras 3's `keras.optimizers.schedules`, evaluated in f32 at the
//! optimizer's 0-based iteration count, as Keras evaluates them.
//!
//! ```
//! use keras_runtime::optimizers::{ExponentialDecay, Sgd};
//! let sgd = Sgd::new(ExponentialDecay::new(0.1, 100, 0.96).staircase(true));
//! ```

use super::common::check;
use crate::backend::cpu::optimizer::schedule_rate;
use crate::backend::ops::{MAX_PIECES, Schedule};
use crate::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// A learning rate: a number, or a schedule evaluated at each step.
#[derive(Clone, Debug)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f32),
    /// A rate that depends on the step (this module).
    Schedule(Arc<dyn LearningRateSchedule>),
}

impl LearningRate {
    /// The rate at 0-based step `step`.
    pub fn at(&self, step: u64) -> f32 {
        match self {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Schedule(s) => s.learning_rate(step),
        }
    }

    pub(crate) fn check(&self, optimizer: &str) -> Result<()> {
        match self {
            LearningRate::Constant(lr) => check(&format!("{optimizer} learning_rate"), *lr, 0.0, f32::INFINITY, true, false),
            LearningRate::Schedule(s) => s.check(),
        }
    }
}

impl From<f32> for LearningRate {
    fn from(lr: f32) -> Self {
        LearningRate::Constant(lr)
    }
}

impl From<f64> for LearningRate {
    fn from(lr: f64) -> Self {
        LearningRate::Constant(lr as f32)
    }
}

impl<S: LearningRateSchedule + 'static> From<S> for LearningRate {
    fn from(s: S) -> Self {
        LearningRate::Schedule(Arc::new(s))
    }
}

/// A learning rate that depends on the step. Implement it for a schedule of your own: the host
/// then evaluates it before each step and writes the rate to the device. The built-in schedules
/// also describe themselves as a [`Schedule`], which the update kernel evaluates on the device.
pub trait LearningRateSchedule: fmt::Debug + Send + Sync {
    /// The learning rate at 0-based step `step`.
    fn learning_rate(&self, step: u64) -> f32;
    /// Checks the settings (at `compile`); an error names the bad one.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// The schedule as the update kernel evaluates it, if it can (`None`: the host evaluates it).
    fn descriptor(&self) -> Option<Schedule> {
        None
    }
}

/// A built-in schedule's rate, as the update kernel computes it.
fn rate(s: &impl LearningRateSchedule, step: u64) -> f32 {
    schedule_rate(&s.descriptor().expect("a built-in schedule has a descriptor"), step).expect("not the constant schedule")
}

/// Checks a schedule's `decay_steps`.
fn check_steps(schedule: &str, decay_steps: u64) -> Result<()> {
    if decay_steps == 0 {
        return Err(Error::value(format!("{schedule} decay_steps"), "a whole number > 0", 0));
    }
    Ok(())
}

/// `initial_learning_rate * decay_rate ^ (step / decay_steps)`, the exponent floored with
/// `staircase`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps per decay period (`> 0`).
    pub decay_steps: u64,
    /// The factor per period.
    pub decay_rate: f32,
    /// Decay in whole periods.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// The schedule, without `staircase`.
    pub fn new(initial_learning_rate: f32, decay_steps: u64, decay_rate: f32) -> Self {
        ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase: false }
    }

    /// Decays in whole periods.
    pub fn staircase(self, staircase: bool) -> Self {
        ExponentialDecay { staircase, ..self }
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        rate(self, step)
    }

    fn descriptor(&self) -> Option<Schedule> {
        let (initial, decay_steps, rate, staircase) = (self.initial_learning_rate, self.decay_steps, self.decay_rate, self.staircase);
        Some(Schedule::Exponential { initial, decay_steps, rate, staircase })
    }

    fn check(&self) -> Result<()> {
        check_steps("ExponentialDecay", self.decay_steps)?;
        check("ExponentialDecay initial_learning_rate", self.initial_learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("ExponentialDecay decay_rate", self.decay_rate, 0.0, f32::INFINITY, true, false)
    }
}

/// `values[0]` up to and including step `boundaries[0]`, `values[i]` for steps in
/// `(boundaries[i - 1], boundaries[i]]`, the last value after the last boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct PiecewiseConstantDecay {
    /// Increasing steps where the rate changes.
    pub boundaries: Vec<u64>,
    /// One more value than boundaries.
    pub values: Vec<f32>,
}

impl PiecewiseConstantDecay {
    /// The schedule.
    pub fn new(boundaries: impl Into<Vec<u64>>, values: impl Into<Vec<f32>>) -> Self {
        PiecewiseConstantDecay { boundaries: boundaries.into(), values: values.into() }
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let i = self.boundaries.iter().take_while(|&&b| step > b).count();
        self.values[i]
    }

    /// The kernel's form holds up to [`MAX_PIECES`] boundaries; a longer schedule is evaluated
    /// on the host.
    fn descriptor(&self) -> Option<Schedule> {
        let count = self.boundaries.len();
        if count > MAX_PIECES || self.values.len() != count + 1 {
            return None;
        }
        let (mut boundaries, mut values) = ([0; MAX_PIECES], [0.0; MAX_PIECES + 1]);
        boundaries[..count].copy_from_slice(&self.boundaries);
        values[..=count].copy_from_slice(&self.values);
        Some(Schedule::Piecewise { count, boundaries, values })
    }

    fn check(&self) -> Result<()> {
        if self.values.len() != self.boundaries.len() + 1 {
            return Err(Error::shape(
                "PiecewiseConstantDecay values",
                format!("{} values (one more than the boundaries)", self.boundaries.len() + 1),
                self.values.len(),
            ));
        }
        if let Some(w) = self.boundaries.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::value("PiecewiseConstantDecay boundaries", "increasing steps", format!("{} then {}", w[0], w[1])));
        }
        for &v in &self.values {
            check("PiecewiseConstantDecay values", v, 0.0, f32::INFINITY, true, false)?;
        }
        Ok(())
    }
}

/// From `initial_learning_rate` to `end_learning_rate` over `decay_steps` along
/// `(1 - step / decay_steps) ^ power`; with `cycle` the period grows to the next multiple of
/// `decay_steps` instead of holding the end rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolynomialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps to reach the end rate (`> 0`).
    pub decay_steps: u64,
    /// The final rate; default 1e-4.
    pub end_learning_rate: f32,
    /// The polynomial's power; default 1.
    pub power: f32,
    /// Restart the decay after `decay_steps`.
    pub cycle: bool,
}

impl PolynomialDecay {
    /// The schedule with Keras's defaults (end rate 1e-4, power 1, no cycle).
    pub fn new(initial_learning_rate: f32, decay_steps: u64) -> Self {
        PolynomialDecay { initial_learning_rate, decay_steps, end_learning_rate: 1e-4, power: 1.0, cycle: false }
    }

    /// Sets the end rate.
    pub fn end_learning_rate(self, end_learning_rate: f32) -> Self {
        PolynomialDecay { end_learning_rate, ..self }
    }

    /// Sets the power.
    pub fn power(self, power: f32) -> Self {
        PolynomialDecay { power, ..self }
    }

    /// Restarts the decay after each period.
    pub fn cycle(self, cycle: bool) -> Self {
        PolynomialDecay { cycle, ..self }
    }
}

impl LearningRateSchedule for PolynomialDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        rate(self, step)
    }

    fn descriptor(&self) -> Option<Schedule> {
        let (initial, decay_steps, end, power, cycle) =
            (self.initial_learning_rate, self.decay_steps, self.end_learning_rate, self.power, self.cycle);
        Some(Schedule::Polynomial { initial, decay_steps, end, power, cycle })
    }

    fn check(&self) -> Result<()> {
        check_steps("PolynomialDecay", self.decay_steps)?;
        check("PolynomialDecay initial_learning_rate", self.initial_learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("PolynomialDecay end_learning_rate", self.end_learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("PolynomialDecay power", self.power, 0.0, f32::INFINITY, true, false)
    }
}

/// `initial_learning_rate / (1 + decay_rate * step / decay_steps)`, the quotient floored with
/// `staircase`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InverseTimeDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps per decay period (`> 0`).
    pub decay_steps: u64,
    /// The decay per period.
    pub decay_rate: f32,
    /// Decay in whole periods.
    pub staircase: bool,
}

impl InverseTimeDecay {
    /// The schedule, without `staircase`.
    pub fn new(initial_learning_rate: f32, decay_steps: u64, decay_rate: f32) -> Self {
        InverseTimeDecay { initial_learning_rate, decay_steps, decay_rate, staircase: false }
    }

    /// Decays in whole periods.
    pub fn staircase(self, staircase: bool) -> Self {
        InverseTimeDecay { staircase, ..self }
    }
}

impl LearningRateSchedule for InverseTimeDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        rate(self, step)
    }

    fn descriptor(&self) -> Option<Schedule> {
        let (initial, decay_steps, rate, staircase) = (self.initial_learning_rate, self.decay_steps, self.decay_rate, self.staircase);
        Some(Schedule::InverseTime { initial, decay_steps, rate, staircase })
    }

    fn check(&self) -> Result<()> {
        check_steps("InverseTimeDecay", self.decay_steps)?;
        check("InverseTimeDecay initial_learning_rate", self.initial_learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("InverseTimeDecay decay_rate", self.decay_rate, 0.0, f32::INFINITY, true, false)
    }
}

/// Cosine decay from the rate to `alpha` times it over `decay_steps`, optionally after a linear
/// warm-up from `initial_learning_rate` to `warmup_target` over `warmup_steps` (the decay then
/// starts from `warmup_target`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps of the cosine decay (`> 0`).
    pub decay_steps: u64,
    /// The final rate as a fraction of the decay's starting rate; default 0.
    pub alpha: f32,
    /// The rate the warm-up reaches; `None` for no warm-up.
    pub warmup_target: Option<f32>,
    /// Steps of the warm-up; default 0.
    pub warmup_steps: u64,
}

impl CosineDecay {
    /// The schedule without warm-up, decaying to 0.
    pub fn new(initial_learning_rate: f32, decay_steps: u64) -> Self {
        CosineDecay { initial_learning_rate, decay_steps, alpha: 0.0, warmup_target: None, warmup_steps: 0 }
    }

    /// Sets the final fraction `alpha`.
    pub fn alpha(self, alpha: f32) -> Self {
        CosineDecay { alpha, ..self }
    }

    /// Adds a linear warm-up to `target` over `steps` steps.
    pub fn warmup(self, target: f32, steps: u64) -> Self {
        CosineDecay { warmup_target: Some(target), warmup_steps: steps, ..self }
    }
}

impl LearningRateSchedule for CosineDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        rate(self, step)
    }

    fn descriptor(&self) -> Option<Schedule> {
        Some(Schedule::Cosine {
            initial: self.initial_learning_rate,
            decay_steps: self.decay_steps,
            alpha: self.alpha,
            warmup: self.warmup_target.is_some(),
            warmup_target: self.warmup_target.unwrap_or(0.0),
            warmup_steps: self.warmup_steps,
        })
    }

    fn check(&self) -> Result<()> {
        check_steps("CosineDecay", self.decay_steps)?;
        check("CosineDecay initial_learning_rate", self.initial_learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("CosineDecay alpha", self.alpha, 0.0, 1.0, true, true)?;
        if let Some(t) = self.warmup_target {
            check("CosineDecay warmup_target", t, 0.0, f32::INFINITY, true, false)?;
        }
        Ok(())
    }
}
