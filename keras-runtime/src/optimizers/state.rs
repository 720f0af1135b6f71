//! The one [`Optimizer`] implementation: Keras's `BaseOptimizer.apply` (clip the gradients,
//! evaluate the learning rate, weight decay, the update, `iterations += 1`) as one
//! [`OptimizerOps::update`](crate::backend::OptimizerOps::update) over the arena.
//!
//! The per-step values live on the device, in the optimizer's [`OptimizerStep`] buffer, which the
//! update kernel reads and advances: the host launches a step without passing anything that
//! changes from step to step, so a captured step replays correctly. The host keeps a count of the
//! steps it launched (the same count), for `iterations()` and the learning rate callbacks read.
//! A schedule the kernel cannot evaluate (a user's own, or a piecewise one with more than
//! [`MAX_PIECES`](crate::backend::ops::MAX_PIECES) boundaries) is evaluated on the host and its
//! rate written to the buffer before each step.

use super::common::{Common, Optimizer};
use super::schedules::LearningRate;
use crate::backend::Backend;
use crate::backend::ops::{Clip, OptimizerStep, Schedule, Segment, Update, UpdateRule};
use crate::model::{Arena, WeightSpec};
use crate::{Error, Result};

/// The device side of an optimizer, made at its first step.
struct DeviceState<B: Backend> {
    /// The [`OptimizerStep`] buffer.
    step: B::Buffer,
    /// The rule's buffers (`UpdateRule::slots`), each over the whole arena.
    slots: Vec<B::Buffer>,
}

/// An optimizer bound to a backend: configuration, step count and state buffers.
pub(crate) struct OptimizerState<B: Backend> {
    name: &'static str,
    learning_rate: LearningRate,
    common: Common,
    rule: UpdateRule,
    /// What the update kernel receives ([`OptimizerState::descriptor`]), kept from step to step.
    update: Update,
    /// Steps launched (equal to the device's count).
    iterations: u64,
    /// Nadam's momentum product until the device state exists (then the device holds it).
    u_product: f32,
    device: Option<DeviceState<B>>,
    /// The trainable weight tensors, for per-tensor clipping (from the first step's weights).
    tensors: Vec<Segment>,
}

impl<B: Backend> OptimizerState<B> {
    pub(crate) fn new(name: &'static str, learning_rate: LearningRate, common: Common, rule: UpdateRule) -> Self {
        let mut state = OptimizerState {
            name,
            learning_rate,
            common,
            rule,
            update: Update { rule, schedule: Schedule::Constant, weight_decay: 0.0, clip: Clip::None },
            iterations: 0,
            u_product: 1.0,
            device: None,
            tensors: Vec::new(),
        };
        state.update = state.descriptor();
        state
    }

    /// The update descriptor: the rule, where the rate comes from, weight decay and clipping.
    fn descriptor(&self) -> Update {
        let schedule = match &self.learning_rate {
            LearningRate::Schedule(s) => s.descriptor().unwrap_or(Schedule::Constant),
            LearningRate::Constant(_) => Schedule::Constant,
        };
        let c = &self.common;
        let clip = match (c.clipvalue, c.clipnorm, c.global_clipnorm) {
            (Some(v), _, _) => Clip::Value(v),
            (_, Some(n), _) => Clip::Norm(n),
            (_, _, Some(n)) => Clip::GlobalNorm(n),
            _ => Clip::None,
        };
        Update { rule: self.rule, schedule, weight_decay: c.weight_decay.unwrap_or(0.0), clip }
    }

    /// The rate the host writes to the step buffer: the number set, or a schedule's value the
    /// kernel cannot compute itself (`None` when it can).
    fn host_rate(&self) -> Option<f32> {
        match &self.learning_rate {
            LearningRate::Constant(lr) => Some(*lr),
            LearningRate::Schedule(s) => s.descriptor().is_none().then(|| s.learning_rate(self.iterations)),
        }
    }

    /// The device state, made on first use from the host's values.
    fn device_state(&mut self, device: &B, n: usize) -> Result<&mut DeviceState<B>> {
        if self.device.is_none() {
            let values =
                OptimizerStep { iterations: self.iterations, learning_rate: self.host_rate().unwrap_or(0.0), u_product: self.u_product };
            let mut step = device.alloc(OptimizerStep::LEN)?;
            device.upload(&values.encode(), B::view_mut(&mut step, 0..OptimizerStep::LEN))?;
            let mut slots = Vec::new();
            for &(_, init) in self.rule.slots() {
                let mut buf = device.alloc(n)?;
                let value = self.rule.initial_value(init);
                if value != 0.0 {
                    device.fill(B::view_mut(&mut buf, 0..n), value);
                }
                slots.push(buf);
            }
            self.device = Some(DeviceState { step, slots });
        }
        let state = self.device.as_mut().expect("made above");
        if let Some(found) = state.slots.iter().map(B::len).find(|&l| l != n) {
            return Err(Error::shape(format!("{} optimizer state", self.name), n, found));
        }
        Ok(state)
    }

    /// Writes a rate into the device's step buffer, when it exists.
    fn write_rate(&mut self, device: &B, lr: f32) -> Result<()> {
        if let Some(state) = self.device.as_mut() {
            let at = OptimizerStep::LEARNING_RATE;
            device.upload(&[lr], B::view_mut(&mut state.step, at..at + 1))?;
        }
        Ok(())
    }
}

impl<B: Backend> Optimizer<B> for OptimizerState<B> {
    fn name(&self) -> &'static str {
        self.name
    }

    /// The rate callbacks read and set. With Keras 2's `decay` this is the base rate, as Keras 2's
    /// `optimizer.lr` was; the step divides it by `1 + decay * iterations`.
    fn learning_rate(&self) -> f32 {
        self.learning_rate.at(self.iterations)
    }

    fn set_learning_rate(&mut self, device: &B, lr: f32) -> Result<()> {
        if let LearningRate::Schedule(_) = self.learning_rate {
            return Err(Error::Config(format!(
                "{}: the learning rate comes from a schedule, so it cannot be set; give the optimizer a number as its learning rate to change it during training",
                self.name
            )));
        }
        super::common::check(&format!("{} learning_rate", self.name), lr, 0.0, f32::INFINITY, true, false)?;
        self.learning_rate = LearningRate::Constant(lr);
        self.update = self.descriptor();
        self.write_rate(device, lr)
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn prepare(&mut self, device: &B, n: usize, weights: &[WeightSpec]) -> Result<()> {
        if self.tensors.is_empty() {
            self.tensors =
                weights.iter().filter(|w| w.arena == Arena::Trainable).map(|w| Segment { offset: w.offset, len: w.len() }).collect();
        }
        self.device_state(device, n)?;
        // A schedule the kernel cannot evaluate: its rate for this step, from the host.
        if let (LearningRate::Schedule(_), Some(lr)) = (&self.learning_rate, self.host_rate()) {
            self.write_rate(device, lr)?;
        }
        Ok(())
    }

    fn launch(&mut self, device: &B, params: B::ViewMut<'_>, grads: B::ViewMut<'_>) -> Result<()> {
        let n = B::view_len(B::freeze(&grads));
        let Some(state) = self.device.as_mut() else {
            return Err(Error::Config(format!("{}: an update launched before the optimizer was prepared", self.name)));
        };
        if let Some(found) = state.slots.iter().map(B::len).find(|&l| l != n) {
            return Err(Error::shape(format!("{} optimizer state", self.name), n, found));
        }
        let step = B::view_mut(&mut state.step, 0..OptimizerStep::LEN);
        device.update(&self.update, &self.tensors, params, grads, &mut state.slots, step);
        Ok(())
    }

    fn count_step(&mut self) {
        self.iterations += 1;
    }

    fn variables(&self, device: &B) -> Result<Vec<(String, Vec<f32>)>> {
        let mut vars = vec![("iterations".to_string(), vec![self.iterations as f32])];
        let download = |buf: &B::Buffer| -> Result<Vec<f32>> {
            let mut host = vec![0.0; B::len(buf)];
            device.download(B::view(buf, 0..host.len()), &mut host)?;
            Ok(host)
        };
        if let UpdateRule::Nadam { .. } = self.rule {
            let u_product = match &self.device {
                Some(state) => OptimizerStep::decode(&download(&state.step)?).u_product,
                None => self.u_product,
            };
            vars.push(("u_product".to_string(), vec![u_product]));
        }
        if let Some(state) = &self.device {
            for ((name, _), buf) in self.rule.slots().iter().zip(&state.slots) {
                vars.push((name.to_string(), download(buf)?));
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
        let nadam = matches!(self.rule, UpdateRule::Nadam { .. });
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
        let u_product = if nadam {
            scalar("u_product")?.ok_or_else(|| Error::Config(format!("{} optimizer variables: no `u_product`", self.name)))?
        } else {
            1.0
        };
        let present = slots.iter().filter(|(s, _)| find(s).is_some()).count();
        let buffers = if present == 0 {
            None
        } else {
            let mut buffers = Vec::with_capacity(slots.len());
            let n = find(slots[0].0).map(Vec::len).unwrap_or(0);
            for (name, _) in slots {
                let v = find(name).ok_or_else(|| Error::Config(format!("{} optimizer variables: no `{name}`", self.name)))?;
                if v.len() != n {
                    return Err(Error::shape(format!("{} optimizer variable `{name}`", self.name), n, v.len()));
                }
                let mut buf = device.alloc(n)?;
                device.upload(v, B::view_mut(&mut buf, 0..n))?;
                buffers.push(buf);
            }
            Some(buffers)
        };
        self.iterations = iterations as u64;
        self.u_product = u_product;
        // The step buffer is made anew from these values at the next step; restored state
        // buffers are kept for it.
        self.device = None;
        if let Some(slots) = buffers {
            let values = OptimizerStep { iterations: self.iterations, learning_rate: self.host_rate().unwrap_or(0.0), u_product };
            let mut step = device.alloc(OptimizerStep::LEN)?;
            device.upload(&values.encode(), B::view_mut(&mut step, 0..OptimizerStep::LEN))?;
            self.device = Some(DeviceState { step, slots });
        }
        Ok(())
    }
}

/// Checks the learning rate and common options, then binds the optimizer to the backend.
pub(super) fn build<B: Backend>(
    display: &str,
    name: &'static str,
    learning_rate: LearningRate,
    common: Common,
    rule: UpdateRule,
) -> Result<Box<dyn Optimizer<B>>> {
    learning_rate.check(display)?;
    common.check(display)?;
    Ok(Box::new(OptimizerState::<B>::new(name, learning_rate, common, rule)))
}
