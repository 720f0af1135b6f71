//! Lion: the sign of an interpolated momentum.

use super::common::{IntoOptimizer, Optimizer, check, optimizer_config};
use super::state::build;
use crate::Result;
use crate::backend::Backend;
use crate::backend::ops::UpdateRule;

optimizer_config! {
    /// Lion as Keras 3 defines it (learning rate 0.001): `w -= lr sign(b1 m + (1 - b1) g)`,
    /// then `m = b2 m + (1 - b2) g`.
    pub struct Lion(learning_rate = 0.001, weight_decay = None) {
        /// Interpolation for the update's sign, in `(0, 1]`; default 0.9.
        beta_1: f32 = 0.9,
        /// Decay of the momentum, in `[0, 1]`; default 0.99.
        beta_2: f32 = 0.99,
    }
}

impl IntoOptimizer for Lion {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Lion beta_1", self.beta_1, 0.0, 1.0, false, true)?;
        check("Lion beta_2", self.beta_2, 0.0, 1.0, true, true)?;
        build("Lion", "lion", self.learning_rate, self.common, UpdateRule::Lion { beta_1: self.beta_1, beta_2: self.beta_2 })
    }
}
