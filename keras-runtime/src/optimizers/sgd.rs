//! Stochastic gradient descent, with optional (Nesterov) momentum.

use super::common::{IntoOptimizer, Optimizer, check, optimizer_config};
use super::state::build;
use crate::Result;
use crate::backend::Backend;
use crate::backend::ops::UpdateRule;

optimizer_config! {
    /// SGD as Keras 3 defines it: learning rate 0.01, no momentum by default.
    pub struct Sgd(learning_rate = 0.01, weight_decay = None) {
        /// Momentum in `[0, 1]`; default 0.
        momentum: f32 = 0.0,
        /// Nesterov momentum; default false.
        nesterov: bool = false,
        /// Keras 2's time decay (dropped by Keras 3, still in many tutorials): step `t` uses
        /// `learning_rate / (1 + decay * t)`; default 0.
        decay: f32 = 0.0,
    }
}

impl IntoOptimizer for Sgd {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Sgd momentum", self.momentum, 0.0, 1.0, true, true)?;
        check("Sgd decay", self.decay, 0.0, f32::INFINITY, true, false)?;
        let rule = UpdateRule::Sgd { momentum: self.momentum, nesterov: self.nesterov, decay: self.decay };
        build("Sgd", "sgd", self.learning_rate, self.common, rule)
    }
}
