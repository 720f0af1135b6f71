//! The losses' definitions (Keras 3's: epsilon clipping at 1e-7, per-sample values, the batch
//! loss `sum(w_i * loss_i) / N`) and the CPU's batch loss kernel.

use super::kernels::{Rows, sum_over_rows};
use crate::backend::ops::{EPSILON, Loss, LossBatch, LossConfig};

/// The batch loss (see `ObjectiveOps::loss`): rows spread over the pool when the batch is
/// large, their partial sums added in task order.
pub fn loss(l: &LossBatch, pred: &[f32], target: &[f32], weights: Option<&[f32]>, grad: Option<&mut [f32]>, stats: &mut [f32]) {
    let (loss, rows, cols) = (&l.loss, l.rows, l.cols);
    let tcols = if loss.sparse_targets() { 1 } else { cols };
    assert!(pred.len() >= rows * cols && target.len() >= rows * tcols);
    assert!(weights.is_none_or(|w| !w.is_empty() && rows.is_multiple_of(w.len())), "one weight per sample");
    let binary = binary_targets(loss, &target[..rows * tcols]);
    // A sample of a 3-D output has several loss rows, all with the sample's weight.
    let per_sample = weights.map_or(1, |w| rows / w.len().max(1));
    let scale = 1.0 / rows as f32;
    let gr = grad.map(|g| {
        assert!(g.len() >= rows * cols);
        Rows::new(&mut g[..rows * cols], cols)
    });
    let sum = sum_over_rows(rows, cols, |r| {
        let mut s = 0.0f32;
        // SAFETY: each task has its own row range.
        let mut g = gr.map(|g| unsafe { g.rows(&r) });
        for (k, i) in r.enumerate() {
            let (p, t) = (&pred[i * cols..(i + 1) * cols], &target[i * tcols..(i + 1) * tcols]);
            let g = g.as_deref_mut().map(|g| &mut g[k * cols..(k + 1) * cols]);
            match weights {
                None => s += sample(loss, p, t, g, scale, binary),
                Some(w) => {
                    let w = w[i / per_sample];
                    s += w * sample(loss, p, t, g, scale * w, binary);
                }
            }
        }
        s
    });
    let mean = sum / rows as f32;
    stats[0] += mean * rows as f32;
    stats[1] += rows as f32;
}

/// Whether every value of a batch's targets is 0 or 1: the hinge losses then map them to
/// -1 and 1, as Keras decides per batch.
pub fn binary_targets(config: &LossConfig, target: &[f32]) -> bool {
    matches!(config.kind, Loss::Hinge | Loss::SquaredHinge) && target.iter().all(|&t| t == 0.0 || t == 1.0)
}

/// The per-sample loss and its gradient with respect to `pred` (one sample, last axis),
/// written to `grad` scaled by `scale`. `target` holds the class index for sparse losses;
/// `binary_targets` is [`binary_targets`] of the whole batch. This is the
/// reference definition; the CPU backend calls it row by row.
pub fn sample(config: &LossConfig, pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32, binary_targets: bool) -> f32 {
    let n = pred.len() as f32;
    // Most losses are a mean over the last axis of an elementwise term.
    let k = scale / n;
    let s = config.label_smoothing;
    match config.kind {
        Loss::MeanSquaredError => elementwise(pred, target, grad, |p, t| ((t - p) * (t - p), k * 2.0 * (p - t))) / n,
        Loss::MeanAbsoluteError => elementwise(pred, target, grad, |p, t| ((t - p).abs(), k * sign(p - t))) / n,
        Loss::MeanAbsolutePercentageError => {
            let sum = elementwise(pred, target, grad, |p, t| {
                let d = maximum(t.abs(), EPSILON);
                (((t - p) / d).abs(), k * 100.0 * sign(p - t) / d)
            });
            100.0 * (sum / n)
        }
        Loss::MeanSquaredLogarithmicError => {
            elementwise(pred, target, grad, |p, t| {
                let pm = maximum(p, EPSILON) + 1.0;
                let d = pm.ln() - (maximum(t, EPSILON) + 1.0).ln();
                (d * d, if p > EPSILON { k * 2.0 * d / pm } else { 0.0 })
            }) / n
        }
        Loss::BinaryCrossentropy if config.from_logits => {
            elementwise(pred, target, grad, |z, t| {
                let t = t * (1.0 - s) + 0.5 * s;
                (-t * log_sigmoid(z) - (1.0 - t) * log_sigmoid(-z), k * (sigmoid(z) - t))
            }) / n
        }
        Loss::BinaryCrossentropy => {
            elementwise(pred, target, grad, |p, t| {
                let t = t * (1.0 - s) + 0.5 * s;
                (bce(p, t), k * bce_grad(p, t))
            }) / n
        }
        Loss::BinaryFocalCrossentropy => {
            let (logits, balance, alpha, gamma) = (config.from_logits, config.apply_class_balancing, config.alpha, config.gamma);
            elementwise(pred, target, grad, |z, t| {
                let t = t * (1.0 - s) + 0.5 * s;
                let p = if logits { sigmoid(z) } else { z };
                let b = bce(p, t);
                let pt = t * p + (1.0 - t) * (1.0 - p);
                let f = (1.0 - pt).powf(gamma);
                let w = if balance { t * alpha + (1.0 - t) * (1.0 - alpha) } else { 1.0 };
                // d(1 - p_t)/dp = 1 - 2t.
                let df = if gamma == 0.0 { 0.0 } else { gamma * (1.0 - pt).powf(gamma - 1.0) * (1.0 - 2.0 * t) };
                let mut g = w * (df * b + f * bce_grad(p, t));
                if logits {
                    g *= p * (1.0 - p);
                }
                (w * (f * b), k * g)
            }) / n
        }
        Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy => {
            let class = if config.kind.sparse_targets() { Some(target[0] as usize) } else { None };
            let target = |j: usize| match class {
                Some(c) => (j == c) as u8 as f32,
                None if s != 0.0 => target[j] * (1.0 - s) + s / n,
                None => target[j],
            };
            if config.from_logits { log_softmax_crossentropy(pred, target, grad, scale) } else { categorical(pred, target, grad, scale) }
        }
        Loss::Huber => {
            let d = config.delta;
            elementwise(pred, target, grad, |p, t| {
                let e = p - t;
                if e.abs() <= d { (0.5 * (e * e), k * e) } else { (d * e.abs() - 0.5 * (d * d), k * d * sign(e)) }
            }) / n
        }
        Loss::LogCosh => {
            let log2 = std::f32::consts::LN_2;
            elementwise(pred, target, grad, |p, t| {
                let x = p - t;
                (x + softplus(x * -2.0) - log2, k * (1.0 - 2.0 * sigmoid(-2.0 * x)))
            }) / n
        }
        Loss::KlDivergence => elementwise(pred, target, grad, |p, t| {
            let (tc, pc) = (t.clamp(EPSILON, 1.0), p.clamp(EPSILON, 1.0));
            (tc * (tc / pc).ln(), if p > EPSILON && p < 1.0 { -scale * tc / pc } else { 0.0 })
        }),
        Loss::Poisson => elementwise(pred, target, grad, |p, t| (p - t * (p + EPSILON).ln(), k * (1.0 - t / (p + EPSILON)))) / n,
        Loss::Hinge => {
            elementwise(pred, target, grad, |p, t| {
                let t = if binary_targets { 2.0 * t - 1.0 } else { t };
                let m = 1.0 - t * p;
                (maximum(m, 0.0), if m > 0.0 { -k * t } else { 0.0 })
            }) / n
        }
        Loss::SquaredHinge => {
            elementwise(pred, target, grad, |p, t| {
                let t = if binary_targets { 2.0 * t - 1.0 } else { t };
                let m = maximum(1.0 - t * p, 0.0);
                (m * m, -k * 2.0 * m * t)
            }) / n
        }
        Loss::CategoricalHinge => categorical_hinge(pred, target, grad, scale),
        Loss::CosineSimilarity => cosine_similarity(pred, target, grad, scale),
    }
}

/// `sum_j term(p_j, t_j).0`, writing `term(p_j, t_j).1` (the scaled derivative) to `grad`.
#[inline(always)]
fn elementwise(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, term: impl Fn(f32, f32) -> (f32, f32)) -> f32 {
    let mut sum = 0.0f32;
    match grad {
        Some(g) => {
            for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                let (v, d) = term(p, t);
                sum += v;
                *g = d;
            }
        }
        None => {
            for (&p, &t) in pred.iter().zip(target) {
                sum += term(p, t).0;
            }
        }
    }
    sum
}

/// `jnp.maximum`: the larger of the two, NaN when either is NaN (where `f32::max` would return the
/// other).
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) }
}

/// JAX's `sign` (0 at 0), the derivative of `|x|`.
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `log(1 + e^x)` without overflow (JAX's `logaddexp(x, 0)`).
fn softplus(x: f32) -> f32 {
    x.max(0.0) + libm::log1pf((-x.abs()).exp())
}

/// `log(sigmoid(x)) = -softplus(-x)`.
fn log_sigmoid(x: f32) -> f32 {
    -softplus(-x)
}

/// Binary crossentropy of a probability, clipped to `[EPSILON, 1 - EPSILON]`.
fn bce(p: f32, t: f32) -> f32 {
    let pc = p.clamp(EPSILON, 1.0 - EPSILON);
    -(t * pc.ln() + (1.0 - t) * (1.0 - pc).ln())
}

/// `d bce / dp`: zero outside the clip range.
fn bce_grad(p: f32, t: f32) -> f32 {
    if (EPSILON..=1.0 - EPSILON).contains(&p) { (1.0 - t) / (1.0 - p) - t / p } else { 0.0 }
}

/// `-sum(t log clip(p / sum p))` and its gradient through the normalisation and the clip.
fn categorical(pred: &[f32], target: impl Fn(usize) -> f32, grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let sum: f32 = pred.iter().sum();
    let mut loss = 0.0f32;
    for (j, &p) in pred.iter().enumerate() {
        let t = target(j);
        if t != 0.0 {
            loss -= t * (p / sum).clamp(EPSILON, 1.0 - EPSILON).ln();
        }
    }
    if let Some(g) = grad {
        // dL/dq_j = -t_j / q_j inside the clip range, 0 outside; dL/dp = (dL/dq - sum(dL/dq * q)) / S.
        let mut dot = 0.0f32;
        for (j, (g, &p)) in g.iter_mut().zip(pred).enumerate() {
            let q = p / sum;
            let t = target(j);
            *g = if t != 0.0 && (EPSILON..=1.0 - EPSILON).contains(&q) { -t / q } else { 0.0 };
            dot += *g * q;
        }
        for g in g.iter_mut() {
            *g = (*g - dot) / sum * scale;
        }
    }
    loss
}

/// `-sum(t log_softmax(z))` and its gradient `softmax(z) sum(t) - t`.
fn log_softmax_crossentropy(z: &[f32], target: impl Fn(usize) -> f32, grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for &v in z {
        sum += (v - max).exp();
    }
    let log_sum = sum.ln();
    let (mut loss, mut tsum) = (0.0f32, 0.0f32);
    for (j, &v) in z.iter().enumerate() {
        let t = target(j);
        loss -= t * (v - max - log_sum);
        tsum += t;
    }
    if let Some(g) = grad {
        for (j, (g, &v)) in g.iter_mut().zip(z).enumerate() {
            *g = ((v - max).exp() / sum * tsum - target(j)) * scale;
        }
    }
    loss
}

/// `max(max((1 - t) p) - sum(t p) + 1, 0)`; the gradient flows to the first maximum.
fn categorical_hinge(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let (mut pos, mut neg, mut at) = (0.0f32, f32::NEG_INFINITY, 0);
    for (j, (&p, &t)) in pred.iter().zip(target).enumerate() {
        pos += t * p;
        let v = (1.0 - t) * p;
        // A NaN wins, as in `jnp.max`.
        if v > neg || (v.is_nan() && !neg.is_nan()) {
            neg = v;
            at = j;
        }
    }
    let loss = maximum(neg - pos + 1.0, 0.0);
    if let Some(g) = grad {
        for (j, (g, &t)) in g.iter_mut().zip(target).enumerate() {
            *g = if loss > 0.0 { (if j == at { 1.0 - t } else { 0.0 } - t) * scale } else { 0.0 };
        }
    }
    loss
}

/// `x * min(1 / |x|, 1 / EPSILON)`'s inverse norm, as Keras's `normalize`.
fn inv_norm(x: &[f32]) -> f32 {
    let mut sq = 0.0f32;
    for &v in x {
        sq += v * v;
    }
    (1.0 / sq.sqrt()).min(1.0 / EPSILON)
}

/// `-sum(normalize(t) * normalize(p))` and its gradient.
fn cosine_similarity(pred: &[f32], target: &[f32], grad: Option<&mut [f32]>, scale: f32) -> f32 {
    let (ip, it) = (inv_norm(pred), inv_norm(target));
    let mut dot = 0.0f32;
    for (&p, &t) in pred.iter().zip(target) {
        dot += (t * it) * (p * ip);
    }
    if let Some(g) = grad {
        // Inside the epsilon floor the norm is a constant; otherwise d(p / |p|) projects out p.
        let clamped = ip >= 1.0 / EPSILON;
        for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
            let tn = t * it;
            *g = if clamped { -tn * ip } else { -(tn - dot * (p * ip)) * ip } * scale;
        }
    }
    -dot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences() {
        let pred = [0.2f32, 0.5, 0.3];
        let cases: Vec<(LossConfig, [f32; 3])> = vec![
            (Loss::MeanSquaredError.config(), [0.0, 1.0, 0.5]),
            (Loss::MeanAbsoluteError.config(), [0.0, 1.0, 0.5]),
            (Loss::MeanAbsolutePercentageError.config(), [0.1, 1.0, -0.5]),
            (Loss::MeanSquaredLogarithmicError.config(), [0.0, 1.0, 0.5]),
            (Loss::BinaryCrossentropy.config(), [0.0, 1.0, 1.0]),
            (Loss::BinaryCrossentropy.from_logits(true).label_smoothing(0.2), [0.0, 1.0, 1.0]),
            (Loss::BinaryFocalCrossentropy.config(), [0.0, 1.0, 1.0]),
            (Loss::BinaryFocalCrossentropy.from_logits(true).apply_class_balancing(true).label_smoothing(0.1), [0.0, 1.0, 1.0]),
            (Loss::CategoricalCrossentropy.config(), [0.0, 1.0, 0.0]),
            (Loss::CategoricalCrossentropy.label_smoothing(0.1).from_logits(true), [0.0, 1.0, 0.0]),
            (Loss::SparseCategoricalCrossentropy.config(), [2.0, 0.0, 0.0]),
            (Loss::SparseCategoricalCrossentropy.from_logits(true), [2.0, 0.0, 0.0]),
            (Loss::huber(0.25), [0.0, 1.0, 0.4]),
            (Loss::LogCosh.config(), [0.0, 1.0, 0.5]),
            (Loss::KlDivergence.config(), [0.1, 0.6, 0.3]),
            (Loss::Poisson.config(), [0.0, 1.0, 2.0]),
            (Loss::Hinge.config(), [0.0, 1.0, 1.0]),
            (Loss::SquaredHinge.config(), [0.0, 1.0, 1.0]),
            (Loss::CategoricalHinge.config(), [0.0, 1.0, 0.0]),
            (Loss::CosineSimilarity.config(), [0.1, 1.0, -0.5]),
        ];
        for (loss, target) in cases {
            let binary = binary_targets(&loss, &target);
            let mut g = [0.0f32; 3];
            sample(&loss, &pred, &target, Some(&mut g), 1.0, binary);
            for j in 0..3 {
                let h = 1e-3f32;
                let mut p1 = pred;
                p1[j] += h;
                let mut p0 = pred;
                p0[j] -= h;
                let numeric = (sample(&loss, &p1, &target, None, 1.0, binary) - sample(&loss, &p0, &target, None, 1.0, binary)) / (2.0 * h);
                assert!((numeric - g[j]).abs() < 2e-3 * (1.0 + g[j].abs()), "{loss:?} d/dp{j}: {numeric} vs {}", g[j]);
            }
        }
    }

    #[test]
    fn batch_loss_matches_the_row_by_row_definition() {
        // Large enough to be spread over the pool.
        let (rows, cols) = (4096, 12);
        let pred: Vec<f32> = (0..rows * cols).map(|i| ((i * 37) % 89) as f32 / 89.0 * 0.98 + 0.01).collect();
        let target: Vec<f32> = (0..rows * cols).map(|i| ((i * 11) % 5 == 0) as u8 as f32).collect();
        let weights: Vec<f32> = (0..rows / 2).map(|i| (i % 4) as f32 * 0.5).collect();
        for config in
            [Loss::BinaryCrossentropy.config(), Loss::Hinge.config(), Loss::huber(0.3), Loss::CategoricalCrossentropy.label_smoothing(0.1)]
        {
            for w in [None, Some(&weights[..])] {
                let mut grad = vec![0.0f32; rows * cols];
                let mut stats = [0.0f32; 2];
                loss(&LossBatch { loss: config, rows, cols }, &pred, &target, w, Some(&mut grad), &mut stats);
                let binary = binary_targets(&config, &target);
                let (mut want, mut g) = (0.0f64, vec![0.0f32; cols]);
                for r in 0..rows {
                    let wr = w.map_or(1.0, |w| w[r / 2]);
                    let row = r * cols..(r + 1) * cols;
                    let l = sample(&config, &pred[row.clone()], &target[row.clone()], Some(&mut g), wr / rows as f32, binary);
                    want += (wr * l) as f64;
                    assert_eq!(g, grad[row], "{config:?} gradient of row {r}");
                }
                let got = (stats[0] / stats[1]) as f64;
                assert!((got - want / rows as f64).abs() <= 1e-5 * got.abs(), "{config:?}: {got} vs {}", want / rows as f64);
                assert_eq!(stats[1], rows as f32);
            }
        }
    }
}
