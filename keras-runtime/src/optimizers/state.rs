//! The one [`Optimizer`] implementation: Keras's `BaseOptimizer.apply` (clip the gradients,
//! evaluate the learning rate, weight decay, the update, `iterations += 1`) around a [`Rule`].

use super::{Common, LearningRate, Optimizer, UpdateRule};
use crate::backend::Backend;
use crate::model::{Arena, WeightSpec};
use crate::optimizers::Update;
use crate::{Error, Result};

/// An optimizer's own hyper-parameters (validated), from which each step's [`UpdateRule`] is made.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule {
    Sgd { momentum: f32, nesterov: bool, decay: f32 },
    Adam { beta_1: f32, beta_2: f32, epsilon: f32, amsgrad: bool },
    RmsProp { rho: f32, momentum: f32, epsilon: f32, centered: bool },
    Adagrad { initial_accumulator_value: f32, epsilon: f32 },
    Adadelta { rho: f32, epsilon: f32 },
    Adamax { beta_1: f32, beta_2: f32, epsilon: f32 },
    Nadam { beta_1: f32, beta_2: f32, epsilon: f32 },
    Lion { beta_1: f32, beta_2: f32 },
    Ftrl { lr_power: f32, initial_accumulator_value: f32, l1: f32, l2: f32, l2_shrinkage: f32, beta: f32 },
}

impl Rule {
    /// The state buffers, by Keras name, with their initial value, in the order the backend's
    /// kernel takes them.
    fn slots(&self) -> Vec<(&'static str, f32)> {
        match *self {
            Rule::Sgd { momentum, .. } => {
                if momentum != 0.0 {
                    vec![("momentum", 0.0)]
                } else {
                    vec![]
                }
            }
            Rule::Adam { amsgrad, .. } => {
                let mut s = vec![("momentum", 0.0), ("velocity", 0.0)];
                if amsgrad {
                    s.push(("velocity_hat", 0.0));
                }
                s
            }
            Rule::RmsProp { momentum, centered, .. } => {
                let mut s = vec![("velocity", 0.0)];
                if momentum > 0.0 {
                    s.push(("momentum", 0.0));
                }
                if centered {
                    s.push(("average_gradient", 0.0));
                }
                s
            }
            Rule::Adagrad { initial_accumulator_value, .. } => vec![("accumulator", initial_accumulator_value)],
            Rule::Adadelta { .. } => vec![("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)],
            Rule::Adamax { .. } => vec![("momentum", 0.0), ("norm", 0.0)],
            Rule::Nadam { .. } => vec![("momentum", 0.0), ("velocity", 0.0)],
            Rule::Lion { .. } => vec![("momentum", 0.0)],
            Rule::Ftrl { initial_accumulator_value, .. } => vec![("accumulator", initial_accumulator_value), ("linear", 0.0)],
        }
    }
}

/// An optimizer bound to a backend: configuration, iteration count and state buffers.
pub(crate) struct OptimizerState<B: Backend> {
    name: &'static str,
    learning_rate: LearningRate,
    common: Common,
    rule: Rule,
    iterations: u64,
    /// Nadam's running product of its momentum schedule (Keras's `u_product`).
    u_product: f32,
    /// The state buffers of `rule.slots()`, once made.
    state: Option<Vec<B::Buffer>>,
}

impl<B: Backend> OptimizerState<B> {
    pub(crate) fn new(name: &'static str, learning_rate: LearningRate, common: Common, rule: Rule) -> Self {
        OptimizerState { name, learning_rate, common, rule, iterations: 0, u_product: 1.0, state: None }
    }

    /// This step's rule, its scalars evaluated in f32 as Keras evaluates them.
    fn step_rule(&mut self, lr: f32) -> UpdateRule {
        let t = (self.iterations + 1) as f32;
        match self.rule {
            Rule::Sgd { momentum, nesterov, .. } => UpdateRule::Sgd { lr, momentum, nesterov },
            Rule::Adam { beta_1, beta_2, epsilon, amsgrad } => {
                let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                UpdateRule::Adam { alpha, beta_1, beta_2, epsilon, amsgrad }
            }
            Rule::RmsProp { rho, momentum, epsilon, centered } => UpdateRule::RmsProp { lr, rho, momentum, epsilon, centered },
            Rule::Adagrad { epsilon, .. } => UpdateRule::Adagrad { lr, epsilon },
            Rule::Adadelta { rho, epsilon } => UpdateRule::Adadelta { lr, rho, epsilon },
            Rule::Adamax { beta_1, beta_2, epsilon } => {
                UpdateRule::Adamax { lr, correction: 1.0 - beta_1.powf(t), beta_1, beta_2, epsilon }
            }
            Rule::Nadam { beta_1, beta_2, epsilon } => {
                let u = beta_1 * (1.0 - 0.5 * 0.96f32.powf(t));
                let u_next = beta_1 * (1.0 - 0.5 * 0.96f32.powf(t + 1.0));
                self.u_product = self.u_product * beta_1 * (1.0 - 0.5 * 0.96f32.powf(t));
                let product_next = self.u_product * u_next;
                UpdateRule::Nadam {
                    lr,
                    beta_1,
                    beta_2,
                    epsilon,
                    u_next,
                    one_minus_u: 1.0 - u,
                    one_minus_product_next: 1.0 - product_next,
                    one_minus_product: 1.0 - self.u_product,
                    v_correction: 1.0 - beta_2.powf(t),
                }
            }
            Rule::Lion { beta_1, beta_2 } => UpdateRule::Lion { lr, beta_1, beta_2 },
            Rule::Ftrl { lr_power, l1, l2, l2_shrinkage, beta, .. } => {
                UpdateRule::Ftrl { lr, lr_power, l1, l2: l2 + beta / (2.0 * lr), l2_shrinkage }
            }
        }
    }

    /// Keras's `_clip_gradients` for `clipnorm` and `global_clipnorm` (`clipvalue` is part of the
    /// update kernel).
    fn clip_norms(&self, device: &B, grads: &mut B::ViewMut<'_>, weights: &[WeightSpec]) -> Result<()> {
        let trainable = weights.iter().filter(|w| w.arena == Arena::Trainable);
        if let Some(c) = self.common.clipnorm {
            for w in trainable {
                let part = sub_mut::<B>(grads, w.offset, w.len());
                let ss = device.sum_squares(B::freeze(&part))?;
                let norm = if ss > 0.0 { ss.sqrt() } else { ss };
                // g * c / max(norm, c): nothing to do while the norm is within the limit.
                if norm > c {
                    device.scale(part, c / norm);
                }
            }
        } else if let Some(c) = self.common.global_clipnorm {
            let mut total = 0.0f32;
            for w in trainable {
                total += device.sum_squares(B::sub(B::freeze(grads), w.offset..w.offset + w.len()))?;
            }
            let norm = total.sqrt();
            // Keras adds `norm - norm`, so that a non-finite norm makes every gradient NaN.
            let scale = if norm.is_finite() { c * (1.0 / norm).min(1.0 / c) } else { f32::NAN };
            if scale != 1.0 {
                device.scale(B::reborrow(grads), scale);
            }
        }
        Ok(())
    }
}

/// `len` elements of a writable view from `offset`.
fn sub_mut<'s, B: Backend>(v: &'s mut B::ViewMut<'_>, offset: usize, len: usize) -> B::ViewMut<'s> {
    let (_, rest) = B::split_mut(B::reborrow(v), offset);
    B::split_mut(rest, len).0
}

impl<B: Backend> OptimizerState<B> {
    /// The rate the next step uses: the rate or the schedule's value, divided by
    /// `1 + decay * iterations` under the `decay` of Keras 2's SGD.
    fn step_learning_rate(&self) -> f32 {
        let lr = self.learning_rate.at(self.iterations);
        match self.rule {
            Rule::Sgd { decay, .. } if decay != 0.0 => lr / (1.0 + decay * self.iterations as f32),
            _ => lr,
        }
    }
}

impl<B: Backend> Optimizer<B> for OptimizerState<B> {
    fn name(&self) -> &'static str {
        self.name
    }

    /// The rate callbacks read and set. With Keras 2's `decay` this is the base rate, as Keras 2's
    /// `optimizer.lr` was; the step divides it by `1 + decay * iterations` (`step_learning_rate`).
    fn learning_rate(&self) -> f32 {
        self.learning_rate.at(self.iterations)
    }

    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        if let LearningRate::Schedule(_) = self.learning_rate {
            return Err(Error::Config(format!(
                "{}: the learning rate comes from a schedule, so it cannot be set; give the optimizer a number as its learning rate to change it during training",
                self.name
            )));
        }
        super::check(&format!("{} learning_rate", self.name), lr, 0.0, f32::INFINITY, true, false)?;
        self.learning_rate = LearningRate::Constant(lr);
        Ok(())
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn apply(&mut self, device: &B, params: B::ViewMut<'_>, mut grads: B::ViewMut<'_>, weights: &[WeightSpec]) -> Result<()> {
        let n = B::view_len(B::freeze(&grads));
        match &self.state {
            None => {
                let mut state = Vec::new();
                for (_, init) in self.rule.slots() {
                    let mut buf = device.alloc(n)?;
                    if init != 0.0 {
                        device.fill(B::view_mut(&mut buf, 0..n), init);
                    }
                    state.push(buf);
                }
                self.state = Some(state);
            }
            Some(state) => {
                if let Some(found) = state.iter().map(B::len).find(|&l| l != n) {
                    return Err(Error::shape(format!("{} optimizer state", self.name), n, found));
                }
            }
        }
        self.clip_norms(device, &mut grads, weights)?;
        let lr = self.step_learning_rate();
        let update = Update {
            rule: self.step_rule(lr),
            weight_decay: self.common.weight_decay.map(|wd| (wd, lr)),
            clipvalue: self.common.clipvalue,
        };
        let state = self.state.as_mut().expect("state made above");
        device.update(&update, params, B::freeze(&grads), state);
        self.iterations += 1;
        Ok(())
    }

    fn variables(&self, device: &B) -> Result<Vec<(String, Vec<f32>)>> {
        let mut vars = vec![("iterations".to_string(), vec![self.iterations as f32])];
        if let Rule::Nadam { .. } = self.rule {
            vars.push(("u_product".to_string(), vec![self.u_product]));
        }
        if let Some(state) = &self.state {
            for ((name, _), buf) in self.rule.slots().into_iter().zip(state) {
                let mut host = vec![0.0; B::len(buf)];
                device.download(B::view(buf, 0..host.len()), &mut host)?;
                vars.push((name.to_string(), host));
            }
        }
        Ok(vars)
    }

    fn set_variables(&mut self, device: &B, variables: &[(String, Vec<f32>)]) -> Result<()> {
        let find = |name: &str| variables.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let scalar = |name: &str| -> Result<Option<f32>> {
            match find(name) {
                None => Ok(None),
                Some(v) if v.len() == 1 => Ok(Some(v[0])),
                Some(v) => Err(Error::shape(format!("{} optimizer variable `{name}`", self.name), 1, v.len())),
            }
        };
        let slots = self.rule.slots();
        let nadam = matches!(self.rule, Rule::Nadam { .. });
        let known = |n: &str| n == "iterations" || (nadam && n == "u_product") || slots.iter().any(|(s, _)| *s == n);
        if let Some((unknown, _)) = variables.iter().find(|(n, _)| !known(n)) {
            let names: Vec<&str> = slots.iter().map(|(s, _)| *s).collect();
            return Err(Error::Config(format!(
                "{} optimizer variables: unknown `{unknown}` (this optimizer has iterations and {})",
                self.name,
                if names.is_empty() { "no state".to_string() } else { names.join(", ") }
            )));
        }
        let iterations =
            scalar("iterations")?.ok_or_else(|| Error::Config(format!("{} optimizer variables: no `iterations`", self.name)))?;
        if !(iterations >= 0.0 && iterations.fract() == 0.0) {
            return Err(Error::value(format!("{} optimizer variable `iterations`", self.name), "a whole number >= 0", iterations));
        }
        let u_product = match self.rule {
            Rule::Nadam { .. } => {
                scalar("u_product")?.ok_or_else(|| Error::Config(format!("{} optimizer variables: no `u_product`", self.name)))?
            }
            _ => 1.0,
        };
        let present = slots.iter().filter(|(s, _)| find(s).is_some()).count();
        let state = if present == 0 {
            None
        } else {
            let mut state = Vec::with_capacity(slots.len());
            let n = find(slots[0].0).map(Vec::len).unwrap_or(0);
            for (name, _) in &slots {
                let v = find(name).ok_or_else(|| Error::Config(format!("{} optimizer variables: no `{name}`", self.name)))?;
                if v.len() != n {
                    return Err(Error::shape(format!("{} optimizer variable `{name}`", self.name), n, v.len()));
                }
                let mut buf = device.alloc(n)?;
                device.upload(v, B::view_mut(&mut buf, 0..n))?;
                state.push(buf);
            }
            Some(state)
        };
        self.iterations = iterations as u64;
        self.u_product = u_product;
        self.state = state;
        Ok(())
    }
}
