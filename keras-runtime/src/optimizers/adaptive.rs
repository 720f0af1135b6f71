//! The per-coordinate adaptive methods before Adam: RMSprop, Adagrad, Adadelta.

use super::common::{IntoOptimizer, Optimizer, check, optimizer_config};
use super::state::build;
use crate::Result;
use crate::backend::Backend;
use crate::backend::ops::UpdateRule;

optimizer_config! {
    /// RMSprop as Keras 3 defines it (learning rate 0.001), with optional momentum and the
    /// centered variant.
    pub struct RmsProp(learning_rate = 0.001, weight_decay = None) {
        /// Decay of the moving average of squared gradients, in `(0, 1)`; default 0.9.
        rho: f32 = 0.9,
        /// Momentum in `[0, 1]`; default 0.
        momentum: f32 = 0.0,
        /// Added under the root, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
        /// Normalise by the variance rather than the second moment; default false.
        centered: bool = false,
    }
}

impl IntoOptimizer for RmsProp {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("RmsProp rho", self.rho, 0.0, 1.0, false, false)?;
        check("RmsProp momentum", self.momentum, 0.0, 1.0, true, true)?;
        check("RmsProp epsilon", self.epsilon, 0.0, f32::INFINITY, false, false)?;
        let rule = UpdateRule::RmsProp { rho: self.rho, momentum: self.momentum, epsilon: self.epsilon, centered: self.centered };
        build("RmsProp", "rmsprop", self.learning_rate, self.common, rule)
    }
}

optimizer_config! {
    /// Adagrad as Keras 3 defines it (learning rate 0.001): `acc += g^2`,
    /// `w -= lr g / sqrt(acc + eps)`.
    pub struct Adagrad(learning_rate = 0.001, weight_decay = None) {
        /// Starting value of the accumulators, `>= 0`; default 0.1.
        initial_accumulator_value: f32 = 0.1,
        /// Added under the root, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
    }
}

impl IntoOptimizer for Adagrad {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Adagrad initial_accumulator_value", self.initial_accumulator_value, 0.0, f32::INFINITY, true, false)?;
        check("Adagrad epsilon", self.epsilon, 0.0, f32::INFINITY, false, false)?;
        let rule = UpdateRule::Adagrad { initial_accumulator_value: self.initial_accumulator_value, epsilon: self.epsilon };
        build("Adagrad", "adagrad", self.learning_rate, self.common, rule)
    }
}

optimizer_config! {
    /// Adadelta as Keras 3 defines it (learning rate 0.001, which Keras keeps as a factor on the
    /// Adadelta step).
    pub struct Adadelta(learning_rate = 0.001, weight_decay = None) {
        /// Decay of the moving averages, in `(0, 1)`; default 0.95.
        rho: f32 = 0.95,
        /// Added under the roots, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
    }
}

impl IntoOptimizer for Adadelta {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Adadelta rho", self.rho, 0.0, 1.0, false, false)?;
        check("Adadelta epsilon", self.epsilon, 0.0, f32::INFINITY, false, false)?;
        build("Adadelta", "adadelta", self.learning_rate, self.common, UpdateRule::Adadelta { rho: self.rho, epsilon: self.epsilon })
    }
}
