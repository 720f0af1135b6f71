//! Stochastic gradient descent, with optional (Nesterov) momentum.

use super::{IntoOptimizer, Optimizer, check};
use crate::Result;
use crate::backend::Backend;

/// SGD as Keras 3 defines it: learning rate 0.01, no momentum by default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Step size.
    pub learning_rate: f32,
    /// Momentum in `[0, 1]`.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { learning_rate: 0.01, momentum: 0.0, nesterov: false }
    }
}

impl Sgd {
    /// SGD with this learning rate.
    pub fn new(learning_rate: f32) -> Self {
        Sgd { learning_rate, ..Self::default() }
    }

    /// Sets the momentum.
    pub fn momentum(self, momentum: f32) -> Self {
        Sgd { momentum, ..self }
    }

    /// Uses Nesterov momentum.
    pub fn nesterov(self, nesterov: bool) -> Self {
        Sgd { nesterov, ..self }
    }
}

struct SgdState<B: Backend> {
    config: Sgd,
    velocity: Option<B::Buffer>,
    iterations: u64,
}

impl IntoOptimizer for Sgd {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Sgd learning_rate", self.learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("Sgd momentum", self.momentum, 0.0, 1.0, true, true)?;
        Ok(Box::new(SgdState::<B> { config: self, velocity: None, iterations: 0 }))
    }
}

impl<B: Backend> Optimizer<B> for SgdState<B> {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn learning_rate(&self) -> f32 {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.config.learning_rate = lr;
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn apply(&mut self, device: &B, params: B::ViewMut<'_>, grads: B::View<'_>) -> Result<()> {
        let n = B::view_len(grads);
        let Sgd { learning_rate, momentum, nesterov } = self.config;
        let velocity = if momentum != 0.0 {
            if self.velocity.is_none() {
                self.velocity = Some(device.alloc(n)?);
            }
            self.velocity.as_mut().map(|v| B::view_mut(v, 0..n))
        } else {
            None
        };
        device.sgd(params, grads, velocity, learning_rate, momentum, nesterov);
        self.iterations += 1;
        Ok(())
    }
}
