//! Adam, with optional AMSGrad.

use super::{IntoOptimizer, Optimizer, check};
use crate::Result;
use crate::backend::Backend;

/// Adam as Keras 3 defines it (epsilon 1e-7 outside the square root, bias correction folded
/// into the step size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Step size; Keras default 0.001.
    pub learning_rate: f32,
    /// Decay of the first moment; default 0.9.
    pub beta_1: f32,
    /// Decay of the second moment; default 0.999.
    pub beta_2: f32,
    /// Added to the root of the second moment; default 1e-7.
    pub epsilon: f32,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }
    }
}

impl Adam {
    /// Adam with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: f32) -> Self {
        Adam { learning_rate, ..Self::default() }
    }

    /// Sets `beta_1`.
    pub fn beta_1(self, beta_1: f32) -> Self {
        Adam { beta_1, ..self }
    }

    /// Sets `beta_2`.
    pub fn beta_2(self, beta_2: f32) -> Self {
        Adam { beta_2, ..self }
    }

    /// Sets `epsilon`.
    pub fn epsilon(self, epsilon: f32) -> Self {
        Adam { epsilon, ..self }
    }

    /// Uses AMSGrad.
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        Adam { amsgrad, ..self }
    }
}

/// First moments, second moments, and AMSGrad's running maximum of the second.
type Moments<B> = (<B as Backend>::Buffer, <B as Backend>::Buffer, Option<<B as Backend>::Buffer>);

struct AdamState<B: Backend> {
    config: Adam,
    moments: Option<Moments<B>>,
    iterations: u64,
}

impl IntoOptimizer for Adam {
    fn into_optimizer<B: Backend>(self) -> Result<Box<dyn Optimizer<B>>> {
        check("Adam learning_rate", self.learning_rate, 0.0, f32::INFINITY, true, false)?;
        check("Adam beta_1", self.beta_1, 0.0, 1.0, true, false)?;
        check("Adam beta_2", self.beta_2, 0.0, 1.0, true, false)?;
        check("Adam epsilon", self.epsilon, 0.0, f32::INFINITY, false, false)?;
        Ok(Box::new(AdamState::<B> { config: self, moments: None, iterations: 0 }))
    }
}

impl<B: Backend> Optimizer<B> for AdamState<B> {
    fn name(&self) -> &'static str {
        "adam"
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
        let Adam { learning_rate, beta_1, beta_2, epsilon, amsgrad } = self.config;
        if self.moments.is_none() {
            let vhat = if amsgrad { Some(device.alloc(n)?) } else { None };
            self.moments = Some((device.alloc(n)?, device.alloc(n)?, vhat));
        }
        let (m, v, vhat) = self.moments.as_mut().expect("moments allocated above");
        // Keras computes the bias correction in float32 from the 1-based step.
        let t = (self.iterations + 1) as f32;
        let alpha = learning_rate * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
        device.adam(
            params,
            grads,
            B::view_mut(m, 0..n),
            B::view_mut(v, 0..n),
            vhat.as_mut().map(|h| B::view_mut(h, 0..n)),
            alpha,
            beta_1,
            beta_2,
            epsilon,
        );
        self.iterations += 1;
        Ok(())
    }
}
