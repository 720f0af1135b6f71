//! The optimizer step against a plain f64 reference of Keras 3's `update_step`s, over several
//! steps of an arena (the kernel reading and advancing the step buffer): every rule, gradient
//! clipping, decoupled weight decay, every learning-rate schedule, the step counter across 2^32;
//! and every weight constraint.

use crate::support::*;
use keras::backend::{Backend, Clip, Constraint, MAX_PIECES, OptimizerStep, Schedule, Segment, Update, UpdateRule};

pub fn suite<B: Backend>(dev: &B) {
    rules(dev);
    resumed(dev);
    clipping(dev);
    weight_decay(dev);
    schedules(dev);
    step_counter(dev);
    constrain(dev);
    nan_values(dev);
}

/// The arena sizes every rule runs at (the last one split over threads on the CPU).
const ARENAS: [usize; 4] = [1, 7, 33, 70_001];

/// Keras's fuzz factor (the constraints' `backend.epsilon()`).
const EPS: f64 = 1e-7;

/// The step's scalars: the 1-based step `t`, the rate, Nadam's momentum schedule.
struct Scalars {
    t: f64,
    lr: f64,
    u: f64,
    u_next: f64,
    product: f64,
    product_next: f64,
}

/// One element of Keras 3's `update_step` of `rule`: the new weight from the weight `w` and the
/// gradient `g`, the rule's state `s` (in [`UpdateRule::slots`] order) updated.
fn element(rule: &UpdateRule, k: &Scalars, w: f64, g: f64, s: &mut [f64; 3]) -> f64 {
    let f = |x: f32| x as f64;
    let lr = k.lr;
    match *rule {
        UpdateRule::Sgd { momentum, nesterov, .. } if momentum != 0.0 => {
            let mu = f(momentum);
            s[0] = mu * s[0] - g * lr;
            w + if nesterov { mu * s[0] - g * lr } else { s[0] }
        }
        UpdateRule::Sgd { .. } => w - g * lr,
        UpdateRule::Adam { beta_1, beta_2, epsilon, amsgrad } => {
            let (b1, b2) = (f(beta_1), f(beta_2));
            let alpha = lr * (1.0 - b2.powf(k.t)).sqrt() / (1.0 - b1.powf(k.t));
            s[0] += (g - s[0]) * (1.0 - b1);
            s[1] += (g * g - s[1]) * (1.0 - b2);
            let v = if amsgrad {
                s[2] = s[2].max(s[1]);
                s[2]
            } else {
                s[1]
            };
            w - s[0] * alpha / (v.sqrt() + f(epsilon))
        }
        UpdateRule::RmsProp { rho, momentum, epsilon, centered } => {
            let rho = f(rho);
            let (mom, avg) = match (momentum > 0.0, centered) {
                (true, true) => (Some(1), Some(2)),
                (true, false) => (Some(1), None),
                (false, true) => (None, Some(1)),
                (false, false) => (None, None),
            };
            s[0] = rho * s[0] + (1.0 - rho) * g * g;
            let denominator = match avg {
                Some(a) => {
                    s[a] = rho * s[a] + (1.0 - rho) * g;
                    s[0] - s[a] * s[a] + f(epsilon)
                }
                None => s[0] + f(epsilon),
            };
            let increment = lr * g / denominator.sqrt();
            match mom {
                Some(m) => {
                    s[m] = f(momentum) * s[m] + increment;
                    w - s[m]
                }
                None => w - increment,
            }
        }
        UpdateRule::Adagrad { epsilon, .. } => {
            s[0] += g * g;
            w - lr * g / (s[0] + f(epsilon)).sqrt()
        }
        UpdateRule::Adadelta { rho, epsilon } => {
            let (rho, eps) = (f(rho), f(epsilon));
            s[0] = rho * s[0] + (1.0 - rho) * g * g;
            let delta = -((s[1] + eps).sqrt() * g) / (s[0] + eps).sqrt();
            s[1] = rho * s[1] + (1.0 - rho) * delta * delta;
            w + lr * delta
        }
        UpdateRule::Adamax { beta_1, beta_2, epsilon } => {
            let b1 = f(beta_1);
            s[0] += (g - s[0]) * (1.0 - b1);
            s[1] = (f(beta_2) * s[1]).max(g.abs());
            w - lr * s[0] / ((1.0 - b1.powf(k.t)) * (s[1] + f(epsilon)))
        }
        UpdateRule::Nadam { beta_1, beta_2, epsilon } => {
            let (b1, b2) = (f(beta_1), f(beta_2));
            s[0] += (g - s[0]) * (1.0 - b1);
            s[1] += (g * g - s[1]) * (1.0 - b2);
            let m_hat = k.u_next * s[0] / (1.0 - k.product_next) + (1.0 - k.u) * g / (1.0 - k.product);
            let v_hat = s[1] / (1.0 - b2.powf(k.t));
            w - m_hat * lr / (v_hat.sqrt() + f(epsilon))
        }
        UpdateRule::Lion { beta_1, beta_2 } => {
            let c = f(beta_1) * s[0] + (1.0 - f(beta_1)) * g;
            let sign = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            s[0] = f(beta_2) * s[0] + (1.0 - f(beta_2)) * g;
            w - lr * sign
        }
        UpdateRule::Ftrl { lr_power, l1, l2, l2_shrinkage, beta, .. } => {
            let (p, l1) = (f(lr_power), f(l1));
            let l2 = f(l2) + f(beta) / (2.0 * lr);
            let grad_to_use = g + 2.0 * f(l2_shrinkage) * w;
            let new_acc = s[0] + g * g;
            s[1] += grad_to_use - (new_acc.powf(-p) - s[0].powf(-p)) / lr * w;
            let quadratic = new_acc.powf(-p) / lr + 2.0 * l2;
            s[0] = new_acc;
            (s[1].clamp(-l1, l1) - s[1]) / quadratic
        }
    }
}

/// Keras 3's optimizer over an arena, in f64: weights, the rule's state, the step count and
/// Nadam's momentum product.
struct Reference {
    rule: UpdateRule,
    w: Vec<f64>,
    slots: Vec<Vec<f64>>,
    iterations: u64,
    u_product: f64,
}

impl Reference {
    /// The optimizer before its first step, its state as [`UpdateRule::slots`] starts it.
    fn new(rule: UpdateRule, w: &[f32], iterations: u64) -> Reference {
        let slots = rule.slots().iter().map(|&(_, init)| vec![rule.initial_value(init) as f64; w.len()]).collect();
        Reference { rule, w: w.iter().map(|&x| x as f64).collect(), slots, iterations, u_product: 1.0 }
    }

    /// One step (Keras's `apply`): the clipped gradient `g`, the rate `rate` (Keras 2's SGD decay
    /// applied here), weight decay `w -= w wd lr`, the rule, `iterations += 1`.
    fn step(&mut self, g: &[f64], rate: f64, weight_decay: f64) {
        let t = (self.iterations + 1) as f64;
        let lr = match self.rule {
            UpdateRule::Sgd { decay, .. } => rate / (1.0 + decay as f64 * self.iterations as f64),
            _ => rate,
        };
        let mut k = Scalars { t, lr, u: 0.0, u_next: 0.0, product: 0.0, product_next: 0.0 };
        if let UpdateRule::Nadam { beta_1, .. } = self.rule {
            let b1 = beta_1 as f64;
            k.u = b1 * (1.0 - 0.5 * 0.96f64.powf(t));
            k.u_next = b1 * (1.0 - 0.5 * 0.96f64.powf(t + 1.0));
            self.u_product *= k.u;
            k.product = self.u_product;
            k.product_next = self.u_product * k.u_next;
        }
        for ((i, w), &g) in self.w.iter_mut().enumerate().zip(g) {
            *w -= *w * weight_decay * lr;
            let mut s = [0.0; 3];
            for (s, slot) in s.iter_mut().zip(&self.slots) {
                *s = slot[i];
            }
            *w = element(&self.rule, &k, *w, g, &mut s);
            for (s, slot) in s.iter().zip(&mut self.slots) {
                slot[i] = *s;
            }
        }
        self.iterations += 1;
    }
}

/// Keras's `_clip_gradients`: per element for `clipvalue`, `g c / max(norm, c)` per weight tensor
/// for `clipnorm`, `g c min(1 / norm, 1 / c) + (norm - norm)` for `global_clipnorm`.
fn clip(c: Clip, segments: &[Segment], g: &[f32]) -> Vec<f64> {
    let mut g: Vec<f64> = g.iter().map(|&x| x as f64).collect();
    let norm = |g: &[f64]| g.iter().map(|x| x * x).sum::<f64>().sqrt();
    match c {
        Clip::None => {}
        Clip::Value(v) => g.iter_mut().for_each(|x| *x = x.clamp(-v as f64, v as f64)),
        Clip::Norm(c) => {
            let c = c as f64;
            for s in segments {
                let part = &mut g[s.offset..s.offset + s.len];
                // `maximum` propagates NaN.
                let n = norm(part);
                let denominator = if n.is_nan() { n } else { n.max(c) };
                part.iter_mut().for_each(|x| *x = *x * c / denominator);
            }
        }
        Clip::GlobalNorm(c) => {
            let c = c as f64;
            let n = segments.iter().map(|s| norm(&g[s.offset..s.offset + s.len]).powi(2)).sum::<f64>().sqrt();
            // Keras adds `norm - norm`: 0, or NaN for a non-finite norm.
            let factor = c * (1.0 / n).min(1.0 / c) + if n.is_finite() { 0.0 } else { f64::NAN };
            g.iter_mut().for_each(|x| *x *= factor);
        }
    }
    g
}

/// A schedule's rate at 0-based step `step`, Keras 3's `keras.optimizers.schedules` in f64;
/// `None` for the host's constant rate.
fn schedule_rate(s: &Schedule, step: u64) -> Option<f64> {
    let x = step as f64;
    Some(match *s {
        Schedule::Constant => return None,
        Schedule::Exponential { initial, decay_steps, rate, staircase } => {
            let p = x / decay_steps as f64;
            initial as f64 * (rate as f64).powf(if staircase { p.floor() } else { p })
        }
        Schedule::Piecewise { count, boundaries, values } => values[boundaries[..count].iter().filter(|&&b| step > b).count()] as f64,
        Schedule::Polynomial { initial, decay_steps, end, power, cycle } => {
            let mut decay = decay_steps as f64;
            let mut x = x;
            if cycle {
                decay *= if step == 0 { 1.0 } else { (x / decay).ceil() };
            } else {
                x = x.min(decay);
            }
            (initial as f64 - end as f64) * (1.0 - x / decay).powf(power as f64) + end as f64
        }
        Schedule::InverseTime { initial, decay_steps, rate, staircase } => {
            let p = x / decay_steps as f64;
            initial as f64 / (1.0 + rate as f64 * if staircase { p.floor() } else { p })
        }
        Schedule::Cosine { initial, decay_steps, alpha, warmup, warmup_target, warmup_steps } => {
            let decay = decay_steps as f64;
            let decayed = |x: f64, from: f64| {
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * x / decay).cos());
                from * ((1.0 - alpha as f64) * cosine + alpha as f64)
            };
            if !warmup {
                decayed(x.min(decay), initial as f64)
            } else {
                let warm = warmup_steps as f64;
                let x = x.min(decay + warm);
                if x < warm {
                    (warmup_target as f64 - initial as f64) * (x / warm) + initial as f64
                } else {
                    decayed(x - warm, warmup_target as f64)
                }
            }
        }
    })
}

/// The weight tensors of an arena of `n`: one float, a small one, two large ones and a last one
/// (whose gradient the clipping tests zero); one tensor below 4 floats.
fn segments(n: usize) -> Vec<Segment> {
    if n < 4 {
        return vec![Segment { offset: 0, len: n }];
    }
    [0, 1, n / 3, 2 * n / 3, n].windows(2).map(|b| Segment { offset: b[0], len: b[1] - b[0] }).collect()
}

/// Step `k`'s gradient over an arena of `n`: magnitudes that shrink and grow between steps
/// (AMSGrad's maximum then matters), the first element 0 past a one-element arena.
fn gradient(n: usize, k: usize) -> Vec<f32> {
    let scale = [1.0f32, 0.3, 1.5, 0.1, 0.8][k % 5];
    let mut g: Vec<f32> = signed(n, 100 + k as u64).iter().map(|&x| x * scale).collect();
    if n > 1 {
        g[0] = 0.0;
    }
    g
}

/// One optimizer run to compare with the reference.
struct Run<'a> {
    update: Update,
    n: usize,
    segments: &'a [Segment],
    /// The step count before the first update.
    start: u64,
    steps: usize,
    /// The host's rate at the first step (it grows by a quarter each step).
    lr: f32,
}

/// The rule's state buffers for an arena of `n`, each allocated and set as [`UpdateRule::slots`]
/// says.
fn state<B: Backend>(dev: &B, rule: &UpdateRule, n: usize) -> Vec<B::Buffer> {
    let buffer = |&(_, init)| {
        let mut b = dev.alloc(n).unwrap();
        dev.fill(vm::<B>(&mut b), rule.initial_value(init));
        b
    };
    rule.slots().iter().map(buffer).collect()
}

/// Runs `steps` updates on the device and the reference, the host setting the rate in the step
/// buffer before each; compares the weights, every state buffer and the step buffer (the count
/// advanced, the host's rate kept, Nadam's product) after each.
fn check<B: Backend>(dev: &B, r: &Run, grad: &dyn Fn(usize) -> Vec<f32>) {
    let (u, n) = (&r.update, r.n);
    let what = format!("{:?} on {n} weights from step {}", r.update, r.start);
    let w0 = signed(n, n as u64 + 1);
    let mut reference = Reference::new(u.rule, &w0, r.start);
    let mut params = up(dev, &w0);
    let mut state = state::<B>(dev, &u.rule, n);
    let mut step = up(dev, &OptimizerStep { iterations: r.start, learning_rate: 0.0, u_product: 1.0 }.encode());
    for k in 0..r.steps {
        let lr = r.lr * (1.0 + 0.25 * k as f32);
        let mut s = down(dev, &step);
        s[OptimizerStep::LEARNING_RATE] = lr;
        dev.upload(&s, vm::<B>(&mut step)).unwrap();
        let g = grad(k);
        let mut gb = up(dev, &g);
        dev.update(u, r.segments, vm::<B>(&mut params), vm::<B>(&mut gb), &mut state, vm::<B>(&mut step));
        let rate = schedule_rate(&u.schedule, reference.iterations).unwrap_or(lr as f64);
        reference.step(&clip(u.clip, r.segments, &g), rate, u.weight_decay as f64);
        close(&format!("{what}: weights after step {k}"), &down(dev, &params), &reference.w, 1e-5);
        for ((name, _), (buf, want)) in u.rule.slots().iter().zip(state.iter().zip(&reference.slots)) {
            close(&format!("{what}: {name} after step {k}"), &down(dev, buf), want, 1e-5);
        }
        let got = OptimizerStep::decode(&down(dev, &step));
        assert_eq!(got.iterations, reference.iterations, "{what}: iterations after step {k}");
        assert_eq!(got.learning_rate.to_bits(), lr.to_bits(), "{what}: the host's rate after step {k}");
        close(&format!("{what}: u_product after step {k}"), &[got.u_product], &[reference.u_product], 1e-6);
    }
}

/// Every rule with its options, at its usual rate.
fn all_rules() -> Vec<(UpdateRule, f32)> {
    use UpdateRule::*;
    vec![
        (Sgd { momentum: 0.0, nesterov: false, decay: 0.0 }, 0.1),
        (Sgd { momentum: 0.9, nesterov: false, decay: 0.0 }, 0.1),
        (Sgd { momentum: 0.8, nesterov: true, decay: 0.0 }, 0.1),
        (Sgd { momentum: 0.0, nesterov: false, decay: 0.1 }, 0.1),
        (Sgd { momentum: 0.5, nesterov: true, decay: 0.05 }, 0.1),
        (Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }, 0.05),
        (Adam { beta_1: 0.8, beta_2: 0.95, epsilon: 1e-3, amsgrad: false }, 0.05),
        (Adam { beta_1: 0.9, beta_2: 0.99, epsilon: 1e-7, amsgrad: true }, 0.05),
        (RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false }, 0.02),
        (RmsProp { rho: 0.8, momentum: 0.5, epsilon: 1e-6, centered: false }, 0.02),
        (RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: true }, 0.02),
        (RmsProp { rho: 0.85, momentum: 0.3, epsilon: 1e-7, centered: true }, 0.02),
        (Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 }, 0.1),
        (Adadelta { rho: 0.95, epsilon: 1e-6 }, 1.0),
        (Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, 0.05),
        (Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, 0.05),
        (Nadam { beta_1: 0.8, beta_2: 0.99, epsilon: 1e-5 }, 0.05),
        (Lion { beta_1: 0.9, beta_2: 0.99 }, 0.01),
        (Ftrl { lr_power: -0.5, initial_accumulator_value: 0.1, l1: 0.01, l2: 0.02, l2_shrinkage: 0.03, beta: 0.1 }, 0.1),
        (Ftrl { lr_power: -0.3, initial_accumulator_value: 0.5, l1: 0.0, l2: 0.0, l2_shrinkage: 0.0, beta: 0.0 }, 0.2),
        (Ftrl { lr_power: 0.0, initial_accumulator_value: 0.1, l1: 0.05, l2: 0.0, l2_shrinkage: 0.0, beta: 0.5 }, 0.1),
    ]
}

/// A plain update: the rule at the host's rate, no clipping or weight decay.
fn plain(rule: UpdateRule) -> Update {
    Update { rule, schedule: Schedule::Constant, weight_decay: 0.0, clip: Clip::None }
}

/// Every rule over five steps at every arena size, from a fresh optimizer.
fn rules<B: Backend>(dev: &B) {
    for (rule, lr) in all_rules() {
        for n in ARENAS {
            let segs = segments(n);
            check(dev, &Run { update: plain(rule), n, segments: &segs, start: 0, steps: 5, lr }, &|k| gradient(n, k));
        }
    }
}

/// Every rule resumed at step 1000: bias corrections, Nadam's schedule and Keras 2's decay read
/// the count from the step buffer.
fn resumed<B: Backend>(dev: &B) {
    for (rule, lr) in all_rules() {
        let segs = segments(33);
        check(dev, &Run { update: plain(rule), n: 33, segments: &segs, start: 1000, steps: 3, lr }, &|k| gradient(33, k));
    }
}

/// A clipping test's gradient: large values, but a first tensor under the limits and a last one
/// of zeros.
fn clip_gradient(n: usize, k: usize) -> Vec<f32> {
    let segs = segments(n);
    let mut g: Vec<f32> = gradient(n, k).iter().map(|x| x * 2.0).collect();
    g[0] = 0.02 * (k as f32 + 1.0);
    if segs.len() > 1 {
        g[segs[segs.len() - 1].offset..].fill(0.0);
    }
    g
}

/// Plain SGD (the clipped gradient shows in the weights) and Adam, at their rates.
fn clip_rules() -> [(UpdateRule, f32); 2] {
    [(UpdateRule::Sgd { momentum: 0.0, nesterov: false, decay: 0.0 }, 0.1), (all_rules()[5].0, 0.05)]
}

/// Gradient clipping before the rule: by value, by norm per weight tensor (tensors under the
/// limit and all-zero ones untouched), by global norm (scaled, untouched under the limit); an
/// infinite gradient makes every gradient NaN under global clipping, and under per-tensor
/// clipping its own NaN and the rest of its tensor 0.
fn clipping<B: Backend>(dev: &B) {
    for (rule, lr) in clip_rules() {
        for n in ARENAS {
            let segs = segments(n);
            for c in [Clip::Value(0.3), Clip::Norm(0.5), Clip::Norm(1e6), Clip::GlobalNorm(1.0), Clip::GlobalNorm(1e6)] {
                let update = Update { clip: c, ..plain(rule) };
                check(dev, &Run { update, n, segments: &segs, start: 0, steps: 3, lr }, &|k| clip_gradient(n, k));
            }
            infinite_gradient(dev, rule, lr, n);
        }
    }
}

/// A clipping test's gradient with `bad` in the middle.
fn poisoned(n: usize, k: usize, bad: f32) -> Vec<f32> {
    let mut g = clip_gradient(n, k);
    g[n / 2] = bad;
    g
}

/// One step with an infinite gradient, under global and per-tensor clipping.
fn infinite_gradient<B: Backend>(dev: &B, rule: UpdateRule, lr: f32, n: usize) {
    let segs = segments(n);
    for c in [Clip::GlobalNorm(1.0), Clip::Norm(0.5)] {
        let update = Update { clip: c, ..plain(rule) };
        check(dev, &Run { update, n, segments: &segs, start: 0, steps: 1, lr }, &|k| poisoned(n, k, f32::INFINITY));
    }
}

/// The disagreements with Keras of one step with a NaN gradient under clipping by norm: every
/// weight NaN under global clipping, its whole tensor's under per-tensor clipping (Keras divides
/// by `maximum(norm, clipnorm)`, NaN).
fn nan_gradients<B: Backend>(dev: &B) -> Vec<String> {
    let mut wrong = Vec::new();
    for (rule, lr) in clip_rules() {
        for n in ARENAS {
            let segs = segments(n);
            for c in [Clip::GlobalNorm(1.0), Clip::Norm(0.5)] {
                let update = Update { clip: c, ..plain(rule) };
                let (w0, g) = (signed(n, n as u64 + 1), poisoned(n, 0, f32::NAN));
                let mut reference = Reference::new(rule, &w0, 0);
                reference.step(&clip(c, &segs, &g), lr as f64, 0.0);
                let (mut params, mut gb) = (up(dev, &w0), up(dev, &g));
                let mut state = state::<B>(dev, &rule, n);
                let mut step = up(dev, &OptimizerStep { iterations: 0, learning_rate: lr, u_product: 1.0 }.encode());
                dev.update(&update, &segs, vm::<B>(&mut params), vm::<B>(&mut gb), &mut state, vm::<B>(&mut step));
                let got = down(dev, &params);
                let bad: Vec<usize> = (0..n)
                    .filter(|&i| got[i].is_nan() != reference.w[i].is_nan() || (got[i] as f64 - reference.w[i]).abs() > 1e-5)
                    .collect();
                if let Some(&i) = bad.first() {
                    wrong.push(format!(
                        "{update:?} on {n} weights, gradient {} NaN: {} of {n} weights differ, weight {i} is {} (Keras: {})",
                        n / 2,
                        bad.len(),
                        got[i],
                        reference.w[i]
                    ));
                }
            }
        }
    }
    wrong
}

/// Keras's decoupled weight decay `w -= w wd lr` before the rule (which then reads the decayed
/// weight: FTRL), at a scheduled rate and with clipping together.
fn weight_decay<B: Backend>(dev: &B) {
    let rules = all_rules();
    for (rule, lr) in [rules[1], rules[5], rules[7], rules[17], rules[18]] {
        for n in [7, 70_001] {
            let segs = segments(n);
            let update = Update { weight_decay: 0.004, ..plain(rule) };
            check(dev, &Run { update, n, segments: &segs, start: 0, steps: 4, lr }, &|k| gradient(n, k));
        }
    }
    let n = 70_001;
    let segs = segments(n);
    let schedule = Schedule::Cosine { initial: 0.05, decay_steps: 4, alpha: 0.1, warmup: false, warmup_target: 0.0, warmup_steps: 0 };
    let update = Update { rule: rules[5].0, schedule, weight_decay: 0.01, clip: Clip::GlobalNorm(1.0) };
    check(dev, &Run { update, n, segments: &segs, start: 0, steps: 6, lr: 0.5 }, &|k| gradient(n, k));
}

/// Runs plain SGD from `start` for `steps` steps with weights reset to 0, so each step's weights
/// are `-g lr` with the rate the kernel used (the host's rate, which schedules ignore, set to
/// 123); checks it against the reference schedule and the count advancing.
fn check_schedule<B: Backend>(dev: &B, schedule: Schedule, start: u64, steps: usize) {
    let g = [1.0f32, -2.0, 0.5, 3.0, -0.25, 1.5, -1.0];
    let segs = segments(g.len());
    let update = Update { schedule, ..plain(UpdateRule::Sgd { momentum: 0.0, nesterov: false, decay: 0.0 }) };
    let mut step = up(dev, &OptimizerStep { iterations: start, learning_rate: 123.0, u_product: 1.0 }.encode());
    for k in 0..steps as u64 {
        let at = start + k;
        let want = schedule_rate(&schedule, at).expect("a schedule");
        let what = format!("{schedule:?} at step {at}");
        let (mut w, mut gb) = (dev.alloc(g.len()).unwrap(), up(dev, &g));
        dev.update(&update, &segs, vm::<B>(&mut w), vm::<B>(&mut gb), &mut [], vm::<B>(&mut step));
        let w = down(dev, &w);
        let got = -w[0] as f64;
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1e-4), "{what}: the kernel's rate is {got}, the schedule's {want}");
        close(&format!("{what}: weights"), &w, &g.iter().map(|&g| -(g as f64) * got).collect::<Vec<_>>(), 1e-6);
        assert_eq!(OptimizerStep::decode(&down(dev, &step)).iterations, at + 1, "{what}: iterations");
    }
}

/// Every schedule, with its options, at consecutive steps across its periods and boundaries,
/// from step 0 and from step 95.
fn schedules<B: Backend>(dev: &B) {
    let mut boundaries = [0u64; MAX_PIECES];
    boundaries[..3].copy_from_slice(&[3, 7, 100]);
    let mut values = [0.0f32; MAX_PIECES + 1];
    values[..4].copy_from_slice(&[0.1, 0.05, 0.02, 0.001]);
    let all = [
        Schedule::Exponential { initial: 0.1, decay_steps: 10, rate: 0.5, staircase: false },
        Schedule::Exponential { initial: 0.1, decay_steps: 4, rate: 0.8, staircase: true },
        Schedule::Piecewise { count: 3, boundaries, values },
        Schedule::Polynomial { initial: 0.1, decay_steps: 10, end: 0.01, power: 2.0, cycle: false },
        Schedule::Polynomial { initial: 0.1, decay_steps: 10, end: 0.01, power: 0.5, cycle: true },
        Schedule::InverseTime { initial: 0.1, decay_steps: 10, rate: 0.5, staircase: false },
        Schedule::InverseTime { initial: 0.1, decay_steps: 4, rate: 2.0, staircase: true },
        Schedule::Cosine { initial: 0.1, decay_steps: 10, alpha: 0.1, warmup: false, warmup_target: 0.0, warmup_steps: 0 },
        Schedule::Cosine { initial: 0.01, decay_steps: 10, alpha: 0.05, warmup: true, warmup_target: 0.1, warmup_steps: 5 },
    ];
    for schedule in all {
        check_schedule(dev, schedule, 0, 22);
        check_schedule(dev, schedule, 95, 10);
    }
}

/// The step count is a `u64` in two `u32` words: updates across 2^32 count on exactly, a
/// piecewise boundary at 2^32 switches exactly there, and the rules' step-dependent scalars
/// follow.
fn step_counter<B: Backend>(dev: &B) {
    let start = u32::MAX as u64 - 1;
    let mut boundaries = [0u64; MAX_PIECES];
    boundaries[0] = 1 << 32;
    let mut values = [0.0f32; MAX_PIECES + 1];
    values[..2].copy_from_slice(&[0.1, 0.01]);
    check_schedule(dev, Schedule::Piecewise { count: 1, boundaries, values }, start, 4);
    let rules = all_rules();
    for (rule, lr) in [rules[0], rules[4], rules[5], rules[15]] {
        let segs = segments(7);
        check(dev, &Run { update: plain(rule), n: 7, segments: &segs, start, steps: 4, lr }, &|k| gradient(7, k));
    }
}

/// Keras 3's constraints, norms over axis 0 (per column of a `rows`-row tensor).
fn constrain_reference(c: &Constraint, rows: usize, w: &[f32]) -> Vec<f64> {
    let w: Vec<f64> = w.iter().map(|&x| x as f64).collect();
    if let Constraint::NonNeg = c {
        return w.iter().map(|&x| x * (x >= 0.0) as u8 as f64).collect();
    }
    let cols = w.len() / rows;
    let factor: Vec<f64> = (0..cols)
        .map(|col| {
            let norm = (0..rows).map(|r| w[r * cols + col].powi(2)).sum::<f64>().sqrt();
            match *c {
                Constraint::MaxNorm { max_value } => norm.clamp(0.0, max_value as f64) / (EPS + norm),
                Constraint::UnitNorm => 1.0 / (EPS + norm),
                Constraint::MinMaxNorm { min_value, max_value, rate } => {
                    let rate = rate as f64;
                    (rate * norm.clamp(min_value as f64, max_value as f64) + (1.0 - rate) * norm) / (EPS + norm)
                }
                Constraint::NonNeg => 1.0,
            }
        })
        .collect();
    w.iter().enumerate().map(|(i, &x)| x * factor[i % cols]).collect()
}

/// Every constraint with its options.
fn all_constraints() -> [Constraint; 6] {
    [
        Constraint::MaxNorm { max_value: 2.0 },
        Constraint::MaxNorm { max_value: 0.5 },
        Constraint::NonNeg,
        Constraint::UnitNorm,
        Constraint::MinMaxNorm { min_value: 0.5, max_value: 1.5, rate: 1.0 },
        Constraint::MinMaxNorm { min_value: 0.8, max_value: 1.2, rate: 0.3 },
    ]
}

/// `constrain` for every constraint on vectors, a bias, kernels and a large kernel, with a zero
/// column, a small one and large ones.
fn constrain<B: Backend>(dev: &B) {
    for (rows, cols) in [(1, 1), (7, 1), (1, 7), (33, 7), (4, 20_000)] {
        let mut w: Vec<f32> = signed(rows * cols, (rows * cols) as u64).iter().map(|x| x * 2.0).collect();
        if cols > 1 {
            for r in 0..rows {
                w[r * cols] = 0.0;
                w[r * cols + 1] *= 0.05;
            }
        }
        for c in all_constraints() {
            let mut buf = up(dev, &w);
            dev.constrain(&c, rows, vm::<B>(&mut buf));
            close(&format!("{c:?} on {rows} x {cols}"), &down(dev, &buf), &constrain_reference(&c, rows, &w), 4.0 * rtol_for(rows));
        }
    }
}

/// The disagreements with Keras of a NaN weight under every constraint: it stays NaN (Keras's
/// `NonNeg` is `w * (w >= 0)`; the norm constraints make its column NaN), the other columns
/// untouched.
fn constrain_nan<B: Backend>(dev: &B) -> Vec<String> {
    let (rows, cols) = (3, 4);
    let mut w = signed(rows * cols, 3);
    w[cols + 2] = f32::NAN;
    let mut wrong = Vec::new();
    for c in all_constraints() {
        let mut buf = up(dev, &w);
        dev.constrain(&c, rows, vm::<B>(&mut buf));
        let (got, want) = (down(dev, &buf), constrain_reference(&c, rows, &w));
        if got.iter().zip(&want).any(|(g, w)| g.is_nan() != w.is_nan() || (!w.is_nan() && (*g as f64 - w).abs() > 1e-6)) {
            wrong.push(format!("{c:?} on {rows} x {cols}, weight {} NaN: gives {got:?}", cols + 2));
        }
    }
    wrong
}

/// NaN where Keras gives NaN: a NaN gradient under clipping by norm, a NaN weight under a
/// constraint; every disagreement listed.
fn nan_values<B: Backend>(dev: &B) {
    let mut wrong = nan_gradients(dev);
    wrong.extend(constrain_nan(dev));
    assert!(wrong.is_empty(), "NaN where Keras gives NaN:\n{}", wrong.join("\n"));
}
