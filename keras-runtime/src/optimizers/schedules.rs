//! Learning-rate schedules: Keras 3's `keras.optimizers.schedules`, evaluated in f32 at the
//! optimizer's 0-based iteration count, as Keras evaluates them.
//!
//! ```
//! use keras_runtime::optimizers::{ExponentialDecay, Sgd};
//! let sgd = Sgd::new(ExponentialDecay::new(0.1, 100, 0.96).staircase(true));
//! ```

use super::check;
use crate::{Error, Result};
use std::fmt;

/// A learning rate that depends on the step. Implement it for a schedule of your own.
pub trait LearningRateSchedule: fmt::Debug + Send + Sync {
    /// The learning rate at 0-based step `step`.
    fn learning_rate(&self, step: u64) -> f32;
    /// Checks the settings (at `compile`); an error names the bad one.
    fn check(&self) -> Result<()> {
        Ok(())
    }
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
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
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
        let mut step_f = step as f32;
        let mut decay_steps = self.decay_steps as f32;
        if self.cycle {
            let multiplier = if step == 0 { 1.0 } else { (step_f / decay_steps).ceil() };
            decay_steps *= multiplier;
        } else {
            step_f = step_f.min(decay_steps);
        }
        let p = step_f / decay_steps;
        (self.initial_learning_rate - self.end_learning_rate) * (1.0 - p).powf(self.power) + self.end_learning_rate
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
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate / (1.0 + self.decay_rate * p)
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

    fn decay(&self, step: f32, decay_steps: f32, from: f32) -> f32 {
        let completed = step / decay_steps;
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * completed).cos());
        let decayed = (1.0 - self.alpha) * cosine + self.alpha;
        from * decayed
    }
}

impl LearningRateSchedule for CosineDecay {
    fn learning_rate(&self, step: u64) -> f32 {
        let decay_steps = self.decay_steps as f32;
        let step = step as f32;
        match self.warmup_target {
            None => self.decay(step.min(decay_steps), decay_steps, self.initial_learning_rate),
            Some(target) => {
                let warmup_steps = self.warmup_steps as f32;
                let step = step.min(decay_steps + warmup_steps);
                if step < warmup_steps {
                    (target - self.initial_learning_rate) * (step / warmup_steps) + self.initial_learning_rate
                } else {
                    self.decay(step - warmup_steps, decay_steps, target)
                }
            }
        }
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
