//! FTRL-proximal ("Follow The Regularized Leader").

use super::common::{IntoOptimizer, Optimizer, check, optimizer_config};
use super::state::build;
use crate::Result;
use crate::backend::Backend;
use crate::backend::ops::UpdateRule;

optimizer_config! {
    /// FTRL as Keras 3 defines it (learning rate 0.001), with L1, L2 and L2-shrinkage
    /// regularisation.
    pub struct Ftrl(learning_rate = 0.001, weight_decay = None) {
        /// How the per-coordinate rate falls with the accumulated squared gradients, `<= 0`;
        /// default -0.5.
        learning_rate_power: f32 = -0.5,
        /// Starting value of the accumulators, `>= 0`; default 0.1.
        initial_accumulator_value: f32 = 0.1,
        /// L1 regularisation, `>= 0`; default 0.
        l1_regularization_strength: f32 = 0.0,
        /// L2 regularisation, `>= 0`; default 0.
        l2_regularization_strength: f32 = 0.0,
        /// L2 shrinkage regularisation (on the weights, not the gradients), `>= 0`; default 0.
        l2_shrinkage_regularization_strength: f32 = 0.0,
        /// Keras's `beta`, added to the L2 term as `beta / (2 lr)`; default 0.
        beta: f32 = 0.0,
    }
}

impl IntoOptimizer for Ftrl {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        let inf = f32::INFINITY;
        check("Ftrl learning_rate_power", self.learning_rate_power, -inf, 0.0, false, true)?;
        check("Ftrl initial_accumulator_value", self.initial_accumulator_value, 0.0, inf, true, false)?;
        check("Ftrl l1_regularization_strength", self.l1_regularization_strength, 0.0, inf, true, false)?;
        check("Ftrl l2_regularization_strength", self.l2_regularization_strength, 0.0, inf, true, false)?;
        check("Ftrl l2_shrinkage_regularization_strength", self.l2_shrinkage_regularization_strength, 0.0, inf, true, false)?;
        check("Ftrl beta", self.beta, 0.0, inf, true, false)?;
        let rule = UpdateRule::Ftrl {
            lr_power: self.learning_rate_power,
            initial_accumulator_value: self.initial_accumulator_value,
            l1: self.l1_regularization_strength,
            l2: self.l2_regularization_strength,
            l2_shrinkage: self.l2_shrinkage_regularization_strength,
            beta: self.beta,
        };
        build("Ftrl", "ftrl", self.learning_rate, self.common, rule)
    }
}
