//! The optimizer's step on the CPU: Keras 3's `BaseOptimizer.apply` over the whole arena in one
//! kernel (clip the gradients, evaluate the learning rate at the step count, decay the weights,
//! the rule's update, `iterations += 1`), every per-step value read from and written to the
//! optimizer's step buffer.

use super::kernels::{Rows, for_chunks, scale, sum_squares};
use super::simd::{Simd, simd_fn};
use crate::backend::ops::{Clip, OptimizerStep, Schedule, Segment, Update, UpdateRule};

/// The learning rate of a schedule at 0-based step `step`, in f32 as Keras evaluates it; `None`
/// for [`Schedule::Constant`] (the rate the host set).
pub fn schedule_rate(s: &Schedule, step: u64) -> Option<f32> {
    Some(match *s {
        Schedule::Constant => return None,
        Schedule::Exponential { initial, decay_steps, rate, staircase } => {
            let mut p = step as f32 / decay_steps as f32;
            if staircase {
                p = p.floor();
            }
            initial * rate.powf(p)
        }
        Schedule::Piecewise { count, boundaries, values } => {
            let i = boundaries[..count].iter().take_while(|&&b| step > b).count();
            values[i]
        }
        Schedule::Polynomial { initial, decay_steps, end, power, cycle } => {
            let mut step_f = step as f32;
            let mut decay_steps = decay_steps as f32;
            if cycle {
                let multiplier = if step == 0 { 1.0 } else { (step_f / decay_steps).ceil() };
                decay_steps *= multiplier;
            } else {
                step_f = step_f.min(decay_steps);
            }
            let p = step_f / decay_steps;
            (initial - end) * (1.0 - p).powf(power) + end
        }
        Schedule::InverseTime { initial, decay_steps, rate, staircase } => {
            let mut p = step as f32 / decay_steps as f32;
            if staircase {
                p = p.floor();
            }
            initial / (1.0 + rate * p)
        }
        Schedule::Cosine { initial, decay_steps, alpha, warmup, warmup_target, warmup_steps } => {
            let decay = |step: f32, decay_steps: f32, from: f32| {
                let completed = step / decay_steps;
                let cosine = 0.5 * (1.0 + (std::f32::consts::PI * completed).cos());
                from * ((1.0 - alpha) * cosine + alpha)
            };
            let decay_steps = decay_steps as f32;
            let step = step as f32;
            if !warmup {
                decay(step.min(decay_steps), decay_steps, initial)
            } else {
                let warmup_steps = warmup_steps as f32;
                let step = step.min(decay_steps + warmup_steps);
                if step < warmup_steps {
                    (warmup_target - initial) * (step / warmup_steps) + initial
                } else {
                    decay(step - warmup_steps, decay_steps, warmup_target)
                }
            }
        }
    })
}

/// One step's rule with every scalar evaluated for the step (learning rate, bias corrections),
/// in f32 as Keras evaluates them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StepRule {
    Sgd {
        lr: f32,
        momentum: f32,
        nesterov: bool,
    },
    /// `alpha = lr sqrt(1 - b2^t) / (1 - b1^t)`.
    Adam {
        alpha: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        amsgrad: bool,
    },
    RmsProp {
        lr: f32,
        rho: f32,
        momentum: f32,
        epsilon: f32,
        centered: bool,
    },
    Adagrad {
        lr: f32,
        epsilon: f32,
    },
    Adadelta {
        lr: f32,
        rho: f32,
        epsilon: f32,
    },
    /// `correction = 1 - b1^t`.
    Adamax {
        lr: f32,
        correction: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
    },
    Nadam {
        lr: f32,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        u_next: f32,
        one_minus_u: f32,
        one_minus_product_next: f32,
        one_minus_product: f32,
        v_correction: f32,
    },
    Lion {
        lr: f32,
        beta_1: f32,
        beta_2: f32,
    },
    /// `l2` already holds `l2 + beta / (2 lr)`.
    Ftrl {
        lr: f32,
        lr_power: f32,
        l1: f32,
        l2: f32,
        l2_shrinkage: f32,
    },
}

impl StepRule {
    /// The rule at 1-based step `t` and rate `lr`; advances Nadam's momentum product.
    fn at(rule: &UpdateRule, t: f32, lr: f32, u_product: &mut f32) -> StepRule {
        match *rule {
            UpdateRule::Sgd { momentum, nesterov, .. } => StepRule::Sgd { lr, momentum, nesterov },
            UpdateRule::Adam { beta_1, beta_2, epsilon, amsgrad } => {
                let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                StepRule::Adam { alpha, beta_1, beta_2, epsilon, amsgrad }
            }
            UpdateRule::RmsProp { rho, momentum, epsilon, centered } => StepRule::RmsProp { lr, rho, momentum, epsilon, centered },
            UpdateRule::Adagrad { epsilon, .. } => StepRule::Adagrad { lr, epsilon },
            UpdateRule::Adadelta { rho, epsilon } => StepRule::Adadelta { lr, rho, epsilon },
            UpdateRule::Adamax { beta_1, beta_2, epsilon } => {
                StepRule::Adamax { lr, correction: 1.0 - beta_1.powf(t), beta_1, beta_2, epsilon }
            }
            UpdateRule::Nadam { beta_1, beta_2, epsilon } => {
                let u = beta_1 * (1.0 - 0.5 * 0.96f32.powf(t));
                let u_next = beta_1 * (1.0 - 0.5 * 0.96f32.powf(t + 1.0));
                *u_product = *u_product * beta_1 * (1.0 - 0.5 * 0.96f32.powf(t));
                let product_next = *u_product * u_next;
                StepRule::Nadam {
                    lr,
                    beta_1,
                    beta_2,
                    epsilon,
                    u_next,
                    one_minus_u: 1.0 - u,
                    one_minus_product_next: 1.0 - product_next,
                    one_minus_product: 1.0 - *u_product,
                    v_correction: 1.0 - beta_2.powf(t),
                }
            }
            UpdateRule::Lion { beta_1, beta_2 } => StepRule::Lion { lr, beta_1, beta_2 },
            UpdateRule::Ftrl { lr_power, l1, l2, l2_shrinkage, beta, .. } => {
                StepRule::Ftrl { lr, lr_power, l1, l2: l2 + beta / (2.0 * lr), l2_shrinkage }
            }
        }
    }
}

/// The learning rate of the step after `iterations` updates: the schedule's, or the rate in the
/// step buffer, divided by `1 + decay * iterations` under the `decay` of Keras 2's SGD.
pub fn step_learning_rate(u: &Update, step: &OptimizerStep) -> f32 {
    let lr = schedule_rate(&u.schedule, step.iterations).unwrap_or(step.learning_rate);
    match u.rule {
        UpdateRule::Sgd { decay, .. } if decay != 0.0 => lr / (1.0 + decay * step.iterations as f32),
        _ => lr,
    }
}

/// Keras's `_clip_gradients` for `clipnorm` (per tensor of `tensors`) and `global_clipnorm`
/// (`clipvalue` is applied per element by the rules).
fn clip_norms(clip: Clip, tensors: &[Segment], g: &mut [f32]) {
    match clip {
        Clip::Norm(c) => {
            for t in tensors {
                let part = &mut g[t.offset..t.offset + t.len];
                let ss = sum_squares(part);
                let norm = if ss > 0.0 { ss.sqrt() } else { ss };
                // g * c / max(norm, c): nothing to do while the norm is within the limit; a NaN
                // norm makes the tensor NaN, as in Keras.
                if norm > c || norm.is_nan() {
                    scale(part, c / norm);
                }
            }
        }
        Clip::GlobalNorm(c) => {
            let total: f32 = tensors.iter().map(|t| sum_squares(&g[t.offset..t.offset + t.len])).sum();
            let norm = total.sqrt();
            // Keras adds `norm - norm`, so that a non-finite norm makes every gradient NaN.
            let factor = if norm.is_finite() { c * (1.0 / norm).min(1.0 / c) } else { f32::NAN };
            if factor != 1.0 {
                scale(g, factor);
            }
        }
        Clip::None | Clip::Value(_) => {}
    }
}

/// One optimizer step (see `OptimizerOps::update`).
pub fn update(u: &Update, tensors: &[Segment], w: &mut [f32], g: &mut [f32], state: &mut [Vec<f32>], step: &mut [f32]) {
    let n = w.len();
    assert!(g.len() == n && state.len() <= 3 && state.iter().all(|s| s.len() == n), "optimizer state matches the arena");
    let mut values = OptimizerStep::decode(step);
    clip_norms(u.clip, tensors, g);
    let lr = step_learning_rate(u, &values);
    let rule = StepRule::at(&u.rule, (values.iterations + 1) as f32, lr, &mut values.u_product);
    let pre = Pre {
        weight_decay: (u.weight_decay != 0.0).then_some((u.weight_decay, lr)),
        clipvalue: match u.clip {
            Clip::Value(c) => Some(c),
            _ => None,
        },
    };
    apply(rule, pre, w, g, state);
    values.iterations += 1;
    step[..OptimizerStep::LEN].copy_from_slice(&values.encode());
}

/// The rule over the arena, in chunks spread over the pool.
fn apply(rule: StepRule, pre: Pre, w: &mut [f32], g: &[f32], state: &mut [Vec<f32>]) {
    let n = w.len();
    let wr = Rows::new(w, 1);
    let mut sr = [None; 3];
    for (r, s) in sr.iter_mut().zip(state.iter_mut()) {
        *r = Some(Rows::new(s, 1));
    }
    for_chunks(n, |c| {
        // SAFETY: chunks are disjoint; each state buffer is a distinct allocation.
        let (w, s0, s1, s2) = unsafe { (wr.rows(&c), sr[0].map(|r| r.rows(&c)), sr[1].map(|r| r.rows(&c)), sr[2].map(|r| r.rows(&c))) };
        let g = &g[c.clone()];
        let one = "the rule's state buffer";
        match rule {
            StepRule::Sgd { lr, momentum, nesterov } => match s0 {
                None => sgd_plain(w, g, pre, lr),
                Some(m) => sgd_momentum(w, g, m, pre, lr, momentum, nesterov),
            },
            StepRule::Adam { alpha, beta_1, beta_2, epsilon, amsgrad } => {
                let (m, v) = (s0.expect(one), s1.expect(one));
                if amsgrad {
                    amsgrad_chunk(w, g, m, v, s2.expect(one), pre, alpha, beta_1, beta_2, epsilon)
                } else {
                    adam_chunk(w, g, m, v, pre, alpha, beta_1, beta_2, epsilon)
                }
            }
            StepRule::RmsProp { lr, rho, momentum, epsilon, centered } => {
                let v = s0.expect(one);
                let (mom, rest) = if momentum > 0.0 { (s1, s2) } else { (None, s1) };
                let avg = if centered { rest } else { None };
                match (mom, avg) {
                    (None, None) => rmsprop_plain(w, g, v, pre, lr, rho, epsilon),
                    (mom, avg) => rmsprop_full(w, g, v, mom, avg, pre, lr, rho, momentum, epsilon),
                }
            }
            StepRule::Adagrad { lr, epsilon } => adagrad_chunk(w, g, s0.expect(one), pre, lr, epsilon),
            StepRule::Adadelta { lr, rho, epsilon } => adadelta_chunk(w, g, s0.expect(one), s1.expect(one), pre, lr, rho, epsilon),
            StepRule::Adamax { lr, correction, beta_1, beta_2, epsilon } => {
                adamax_chunk(w, g, s0.expect(one), s1.expect(one), pre, lr, correction, beta_1, beta_2, epsilon)
            }
            StepRule::Nadam { .. } => nadam_chunk(w, g, s0.expect(one), s1.expect(one), pre, rule),
            StepRule::Lion { lr, beta_1, beta_2 } => lion_chunk(w, g, s0.expect(one), pre, lr, beta_1, beta_2),
            StepRule::Ftrl { .. } => ftrl_chunk(w, g, s0.expect(one), s1.expect(one), pre, rule),
        }
    });
}

/// What every rule does first, per element: weight decay of `w`, clipping of `g`.
#[derive(Clone, Copy)]
struct Pre {
    weight_decay: Option<(f32, f32)>,
    clipvalue: Option<f32>,
}

impl Pre {
    /// Decays `w` and returns the clipped gradient.
    #[inline(always)]
    fn apply(self, w: &mut f32, g: f32) -> f32 {
        if let Some((wd, lr)) = self.weight_decay {
            *w -= *w * wd * lr;
        }
        match self.clipvalue {
            Some(c) => g.clamp(-c, c),
            None => g,
        }
    }
}

simd_fn!(fn sgd_plain / sgd_plain_at(w: &mut [f32], g: &[f32], pre: Pre, lr: f32) => sgd_plain_impl);
simd_fn!(fn sgd_momentum / sgd_momentum_at(w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, mu: f32, nesterov: bool) => sgd_momentum_impl);
simd_fn!(fn adam_chunk / adam_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, alpha: f32, b1: f32, b2: f32, eps: f32) => adam_chunk_impl);
simd_fn!(fn amsgrad_chunk / amsgrad_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], vhat: &mut [f32], pre: Pre, alpha: f32, b1: f32, b2: f32, eps: f32) => amsgrad_chunk_impl);
simd_fn!(fn rmsprop_plain / rmsprop_plain_at(w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) => rmsprop_plain_impl);
simd_fn!(fn rmsprop_full / rmsprop_full_at(w: &mut [f32], g: &[f32], v: &mut [f32], mom: Option<&mut [f32]>, avg: Option<&mut [f32]>, pre: Pre, lr: f32, rho: f32, momentum: f32, eps: f32) => rmsprop_full_impl);
simd_fn!(fn adagrad_chunk / adagrad_chunk_at(w: &mut [f32], g: &[f32], acc: &mut [f32], pre: Pre, lr: f32, eps: f32) => adagrad_impl);
simd_fn!(fn adadelta_chunk / adadelta_chunk_at(w: &mut [f32], g: &[f32], ag: &mut [f32], ad: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) => adadelta_impl);
simd_fn!(fn adamax_chunk / adamax_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], u: &mut [f32], pre: Pre, lr: f32, c: f32, b1: f32, b2: f32, eps: f32) => adamax_impl);
simd_fn!(fn nadam_chunk / nadam_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, rule: StepRule) => nadam_impl);
simd_fn!(fn lion_chunk / lion_chunk_at(w: &mut [f32], g: &[f32], m: &mut [f32], pre: Pre, lr: f32, b1: f32, b2: f32) => lion_impl);
simd_fn!(fn ftrl_chunk / ftrl_chunk_at(w: &mut [f32], g: &[f32], acc: &mut [f32], lin: &mut [f32], pre: Pre, rule: StepRule) => ftrl_impl);

// The optimizer loops are plain Rust: inside the `#[target_feature]` functions `simd_fn!`
// makes, the compiler vectorizes them for the level. Each follows the operation order of the
// Keras optimizer's `update_step`.
//
// Optimizer state that decays towards zero (the moments of a weight whose gradient stays zero,
// such as one fed by an always-black pixel) would become subnormal, and arithmetic on subnormal
// floats is a hundred times slower on x86. States are flushed to zero below the smallest normal
// float, as XLA's flush-to-zero mode does for Keras.

/// `x`, or 0 when `|x|` is subnormal.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

#[inline(always)]
fn sgd_plain_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], pre: Pre, lr: f32) {
    for (w, &g) in w.iter_mut().zip(g) {
        let g = pre.apply(w, g);
        *w -= g * lr;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sgd_momentum_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, mu: f32, nesterov: bool) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *v = flush(*v * mu - g * lr);
        *w += if nesterov { *v * mu - g * lr } else { *v };
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adam_chunk_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    pre: Pre,
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        *w -= (*m * alpha) / (v.sqrt() + eps);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn amsgrad_chunk_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vhat: &mut [f32],
    pre: Pre,
    alpha: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for ((((w, &g), m), v), h) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(vhat.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        *h = h.max(*v);
        *w -= (*m * alpha) / (h.sqrt() + eps);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rmsprop_plain_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], v: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) {
    let c = 1.0 - rho;
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *v = flush(rho * *v + c * (g * g));
        *w -= (lr * g) / (*v + eps).sqrt();
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rmsprop_full_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    v: &mut [f32],
    mut mom: Option<&mut [f32]>,
    mut avg: Option<&mut [f32]>,
    pre: Pre,
    lr: f32,
    rho: f32,
    momentum: f32,
    eps: f32,
) {
    let c = 1.0 - rho;
    for (i, (w, &g)) in w.iter_mut().zip(g).enumerate() {
        let g = pre.apply(w, g);
        v[i] = flush(rho * v[i] + c * (g * g));
        let denom = match avg.as_deref_mut() {
            Some(a) => {
                a[i] = flush(rho * a[i] + c * g);
                v[i] - a[i] * a[i] + eps
            }
            None => v[i] + eps,
        };
        let inc = (lr * g) / denom.sqrt();
        match mom.as_deref_mut() {
            Some(m) => {
                m[i] = flush(momentum * m[i] + inc);
                *w -= m[i];
            }
            None => *w -= inc,
        }
    }
}

#[inline(always)]
fn adagrad_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], acc: &mut [f32], pre: Pre, lr: f32, eps: f32) {
    for ((w, &g), a) in w.iter_mut().zip(g).zip(acc.iter_mut()) {
        let g = pre.apply(w, g);
        *a += g * g;
        *w -= (lr * g) / (*a + eps).sqrt();
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adadelta_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], ag: &mut [f32], ad: &mut [f32], pre: Pre, lr: f32, rho: f32, eps: f32) {
    let c = 1.0 - rho;
    for (((w, &g), ag), ad) in w.iter_mut().zip(g).zip(ag.iter_mut()).zip(ad.iter_mut()) {
        let g = pre.apply(w, g);
        *ag = flush(rho * *ag + c * (g * g));
        let d = -(((*ad + eps).sqrt() * g) / (*ag + eps).sqrt());
        *ad = flush(rho * *ad + c * (d * d));
        *w += lr * d;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adamax_impl<S: Simd>(
    _s: S,
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    u: &mut [f32],
    pre: Pre,
    lr: f32,
    c: f32,
    b1: f32,
    b2: f32,
    eps: f32,
) {
    let c1 = 1.0 - b1;
    for (((w, &g), m), u) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(u.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *u = flush((b2 * *u).max(g.abs()));
        *w -= (lr * *m) / (c * (*u + eps));
    }
}

#[inline(always)]
fn nadam_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], pre: Pre, rule: StepRule) {
    let StepRule::Nadam { lr, beta_1, beta_2, epsilon, u_next, one_minus_u, one_minus_product_next, one_minus_product, v_correction } =
        rule
    else {
        unreachable!("nadam_chunk takes the Nadam rule")
    };
    let (c1, c2) = (1.0 - beta_1, 1.0 - beta_2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = pre.apply(w, g);
        *m = flush(*m + (g - *m) * c1);
        *v = flush(*v + (g * g - *v) * c2);
        let m_hat = (u_next * *m) / one_minus_product_next + (one_minus_u * g) / one_minus_product;
        let v_hat = *v / v_correction;
        *w -= (m_hat * lr) / (v_hat.sqrt() + epsilon);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lion_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], m: &mut [f32], pre: Pre, lr: f32, b1: f32, b2: f32) {
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    for ((w, &g), m) in w.iter_mut().zip(g).zip(m.iter_mut()) {
        let g = pre.apply(w, g);
        let c = *m * b1 + g * c1;
        // jnp.sign: 0 stays 0 (f32::signum would give 1).
        let sign = if c > 0.0 {
            1.0
        } else if c < 0.0 {
            -1.0
        } else {
            c
        };
        *w -= lr * sign;
        *m = flush(*m * b2 + g * c2);
    }
}

#[inline(always)]
fn ftrl_impl<S: Simd>(_s: S, w: &mut [f32], g: &[f32], acc: &mut [f32], lin: &mut [f32], pre: Pre, rule: StepRule) {
    let StepRule::Ftrl { lr, lr_power, l1, l2, l2_shrinkage } = rule else { unreachable!("ftrl_chunk takes the Ftrl rule") };
    for (((w, &g), acc), lin) in w.iter_mut().zip(g).zip(acc.iter_mut()).zip(lin.iter_mut()) {
        let g = pre.apply(w, g);
        let grad_to_use = g + 2.0 * l2_shrinkage * *w;
        let new_acc = *acc + g * g;
        let new_pow = new_acc.powf(-lr_power);
        *lin += grad_to_use - ((new_pow - acc.powf(-lr_power)) / lr) * *w;
        let quadratic = new_pow / lr + 2.0 * l2;
        *w = (lin.clamp(-l1, l1) - *lin) / quadratic;
        *acc = new_acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule on an arena large enough to be split over threads gives what it gives on
    /// small slices run one after another; sums of squares agree with a plain sum.
    #[test]
    fn optimizer_updates_do_not_depend_on_chunking() {
        let n = 70_001;
        let g0: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 * 0.01 - 0.5).collect();
        let w0: Vec<f32> = (0..n).map(|i| ((i * 13) % 29) as f32 * 0.1 - 1.4).collect();
        let rules = [
            StepRule::Sgd { lr: 0.1, momentum: 0.9, nesterov: true },
            StepRule::Adam { alpha: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: true },
            StepRule::RmsProp { lr: 0.01, rho: 0.9, momentum: 0.5, epsilon: 1e-7, centered: true },
            StepRule::Adagrad { lr: 0.01, epsilon: 1e-7 },
            StepRule::Adadelta { lr: 1.0, rho: 0.95, epsilon: 1e-7 },
            StepRule::Adamax { lr: 0.01, correction: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
            StepRule::Nadam {
                lr: 0.01,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                u_next: 0.45,
                one_minus_u: 0.55,
                one_minus_product_next: 0.8,
                one_minus_product: 0.6,
                v_correction: 0.001,
            },
            StepRule::Lion { lr: 0.01, beta_1: 0.9, beta_2: 0.99 },
            StepRule::Ftrl { lr: 0.1, lr_power: -0.5, l1: 0.01, l2: 0.0, l2_shrinkage: 0.01 },
        ];
        for rule in rules {
            let slots = match rule {
                StepRule::Sgd { .. } | StepRule::Adagrad { .. } | StepRule::Lion { .. } => 1,
                StepRule::Adam { .. } | StepRule::RmsProp { .. } => 3,
                _ => 2,
            };
            let pre = Pre { weight_decay: Some((0.01, 0.1)), clipvalue: Some(0.3) };
            let (mut w, mut state) = (w0.clone(), vec![vec![0.1f32; n]; slots]);
            let (mut w2, mut state2) = (w0.clone(), vec![vec![0.1f32; n]; slots]);
            for _ in 0..3 {
                apply(rule, pre, &mut w, &g0, &mut state);
                for start in (0..n).step_by(1000) {
                    let end = (start + 1000).min(n);
                    let mut part: Vec<Vec<f32>> = state2.iter().map(|s| s[start..end].to_vec()).collect();
                    apply(rule, pre, &mut w2[start..end], &g0[start..end], &mut part);
                    for (s, p) in state2.iter_mut().zip(part) {
                        s[start..end].copy_from_slice(&p);
                    }
                }
            }
            assert_eq!(w, w2, "{rule:?}");
            assert_eq!(state, state2, "{rule:?}");
            assert!(w.iter().all(|v| v.is_finite()) && w != w0, "{rule:?}");
        }
        let plain: f64 = g0.iter().map(|&g| (g as f64) * (g as f64)).sum();
        assert!((sum_squares(&g0) as f64 - plain).abs() <= 1e-5 * plain);
        let mut s = g0.clone();
        scale(&mut s, 0.5);
        assert!(s.iter().zip(&g0).all(|(a, b)| *a == b * 0.5));
    }
}
