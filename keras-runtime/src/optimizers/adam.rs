//! Adam and its relatives: AdamW, Adamax, Nadam.

use super::common::{IntoOptimizer, Optimizer, check, optimizer_config};
use super::state::build;
use crate::Result;
use crate::backend::Backend;
use crate::backend::ops::UpdateRule;

/// Checks `beta_1`, `beta_2` in `[0, 1)` and `epsilon > 0`.
fn check_betas(optimizer: &str, beta_1: f32, beta_2: f32, epsilon: f32) -> Result<()> {
    check(&format!("{optimizer} beta_1"), beta_1, 0.0, 1.0, true, false)?;
    check(&format!("{optimizer} beta_2"), beta_2, 0.0, 1.0, true, false)?;
    check(&format!("{optimizer} epsilon"), epsilon, 0.0, f32::INFINITY, false, false)
}

optimizer_config! {
    /// Adam as Keras 3 defines it (learning rate 0.001, epsilon 1e-7 outside the square root,
    /// bias correction folded into the step size), with optional AMSGrad.
    pub struct Adam(learning_rate = 0.001, weight_decay = None) {
        /// Decay of the first moment, in `[0, 1)`; default 0.9.
        beta_1: f32 = 0.9,
        /// Decay of the second moment, in `[0, 1)`; default 0.999.
        beta_2: f32 = 0.999,
        /// Added to the root of the second moment, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
        /// Use the running maximum of the second moment (AMSGrad); default false.
        amsgrad: bool = false,
    }
}

impl IntoOptimizer for Adam {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check_betas("Adam", self.beta_1, self.beta_2, self.epsilon)?;
        let rule = UpdateRule::Adam { beta_1: self.beta_1, beta_2: self.beta_2, epsilon: self.epsilon, amsgrad: self.amsgrad };
        build("Adam", "adam", self.learning_rate, self.common, rule)
    }
}

optimizer_config! {
    /// AdamW as Keras 3 defines it: Adam with decoupled weight decay, 0.004 by default.
    pub struct AdamW(learning_rate = 0.001, weight_decay = Some(0.004)) {
        /// Decay of the first moment, in `[0, 1)`; default 0.9.
        beta_1: f32 = 0.9,
        /// Decay of the second moment, in `[0, 1)`; default 0.999.
        beta_2: f32 = 0.999,
        /// Added to the root of the second moment, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
        /// Use the running maximum of the second moment (AMSGrad); default false.
        amsgrad: bool = false,
    }
}

impl IntoOptimizer for AdamW {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check_betas("AdamW", self.beta_1, self.beta_2, self.epsilon)?;
        let rule = UpdateRule::Adam { beta_1: self.beta_1, beta_2: self.beta_2, epsilon: self.epsilon, amsgrad: self.amsgrad };
        build("AdamW", "adamw", self.learning_rate, self.common, rule)
    }
}

optimizer_config! {
    /// Adamax as Keras 3 defines it (learning rate 0.001): Adam with the infinity norm in place
    /// of the second moment.
    pub struct Adamax(learning_rate = 0.001, weight_decay = None) {
        /// Decay of the first moment, in `[0, 1)`; default 0.9.
        beta_1: f32 = 0.9,
        /// Decay of the infinity norm, in `[0, 1)`; default 0.999.
        beta_2: f32 = 0.999,
        /// Added to the norm, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
    }
}

impl IntoOptimizer for Adamax {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check_betas("Adamax", self.beta_1, self.beta_2, self.epsilon)?;
        let rule = UpdateRule::Adamax { beta_1: self.beta_1, beta_2: self.beta_2, epsilon: self.epsilon };
        build("Adamax", "adamax", self.learning_rate, self.common, rule)
    }
}

optimizer_config! {
    /// Nadam as Keras 3 defines it (learning rate 0.001): Adam with Nesterov momentum and
    /// Dozat's momentum schedule `u_t = b1 (1 - 0.5 * 0.96^t)`.
    pub struct Nadam(learning_rate = 0.001, weight_decay = None) {
        /// Decay of the first moment, in `[0, 1)`; default 0.9.
        beta_1: f32 = 0.9,
        /// Decay of the second moment, in `[0, 1)`; default 0.999.
        beta_2: f32 = 0.999,
        /// Added to the root of the second moment, `> 0`; default 1e-7.
        epsilon: f32 = 1e-7,
    }
}

impl IntoOptimizer for Nadam {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check_betas("Nadam", self.beta_1, self.beta_2, self.epsilon)?;
        let rule = UpdateRule::Nadam { beta_1: self.beta_1, beta_2: self.beta_2, epsilon: self.epsilon };
        build("Nadam", "nadam", self.learning_rate, self.common, rule)
    }
}
