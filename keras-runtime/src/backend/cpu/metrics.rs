//! The metrics' accumulators on the CPU: each batch adds to a metric's float32 accumulators
//! (Keras's metric variables), from which `MetricKind::result` computes the logged value.

use crate::backend::ops::{Average, MetricBatch, MetricKind};

/// Index of the first largest value (NumPy's and JAX's tie rule).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The per-sample value of the mean-style metrics (accuracies, MSE, MAE, RMSE); `target`
/// holds the class index for sparse kinds. `None` for the others.
pub fn sample(kind: MetricKind, pred: &[f32], target: &[f32]) -> Option<f32> {
    let n = pred.len() as f32;
    Some(match kind {
        MetricKind::Binary => {
            let hits = pred.iter().zip(target).filter(|&(&p, &t)| t == if p > 0.5 { 1.0 } else { 0.0 }).count();
            hits as f32 / n
        }
        MetricKind::Categorical => (argmax(pred) == argmax(target)) as u8 as f32,
        MetricKind::Sparse => (argmax(pred) as f32 == target[0]) as u8 as f32,
        MetricKind::TopK { k, sparse } => {
            let class = if sparse { target[0] as usize } else { argmax(target) };
            let at = pred.get(class).copied().map_or(f32::NEG_INFINITY, |p| if p.is_nan() { f32::NEG_INFINITY } else { p });
            let rank = 1 + pred.iter().filter(|&&p| p > at).count();
            (rank <= k) as u8 as f32
        }
        MetricKind::Mse | MetricKind::Rmse => pred.iter().zip(target).map(|(&p, &t)| (t - p) * (t - p)).sum::<f32>() / n,
        MetricKind::Mae => pred.iter().zip(target).map(|(&p, &t)| (t - p).abs()).sum::<f32>() / n,
        _ => return None,
    })
}

/// Adds one batch of `rows` samples to the accumulators: the CPU kernel of `ObjectiveOps::metric`.
pub fn accumulate(m: &MetricBatch, pred: &[f32], target: &[f32], stats: &mut [f32]) {
    let (kind, rows, cols) = (m.kind, m.rows, m.cols);
    let tcols = if kind.sparse_targets() { 1 } else { cols };
    let row = |r: usize| (&pred[r * cols..(r + 1) * cols], &target[r * tcols..(r + 1) * tcols]);
    match kind {
        MetricKind::Precision { threshold } | MetricKind::Recall { threshold } => {
            let (mut a, mut b) = (0.0f32, 0.0f32);
            for (&p, &t) in pred[..rows * cols].iter().zip(&target[..rows * cols]) {
                let (pos, label) = (p > threshold, t != 0.0);
                a += (pos && label) as u8 as f32;
                b += if matches!(kind, MetricKind::Precision { .. }) { pos && !label } else { !pos && label } as u8 as f32;
            }
            stats[0] += a;
            stats[1] += b;
        }
        MetricKind::Auc { num_thresholds: t } => {
            // Keras's evenly-spaced-threshold path: each prediction falls in the bucket
            // `ceil(p (t - 1)) - 1` (at least 0), and the counts above threshold i are the
            // bucket counts from i up.
            let (counts, hist) = stats.split_at_mut(4 * t);
            let (pos, neg) = hist.split_at_mut(t);
            for (&p, &y) in pred[..rows * cols].iter().zip(&target[..rows * cols]) {
                let p = p.clamp(0.0, 1.0);
                let b = ((p * (t as f32 - 1.0)).ceil() - 1.0).max(0.0) as usize;
                let label = (y != 0.0) as u8 as f32;
                pos[b.min(t - 1)] += label;
                neg[b.min(t - 1)] += 1.0 - label;
            }
            let (total_pos, total_neg): (f32, f32) = (pos.iter().sum(), neg.iter().sum());
            let (mut tp, mut fp) = (0.0f32, 0.0f32);
            for i in (0..t).rev() {
                tp += pos[i];
                fp += neg[i];
                counts[i] += tp;
                counts[t + i] += fp;
                counts[2 * t + i] += total_neg - fp;
                counts[3 * t + i] += total_pos - tp;
            }
            pos.fill(0.0);
            neg.fill(0.0);
        }
        MetricKind::F1 { average, argmax, threshold } => {
            let n = if average == Average::Micro { 1 } else { cols };
            for r in 0..rows {
                let (p, y) = row(r);
                let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for c in 0..cols {
                    let predicted = if argmax { p[c] >= max && p[c].abs() > 1e-9 } else { p[c] > threshold } as u8 as f32;
                    let i = if n == 1 { 0 } else { c };
                    stats[i] += predicted * y[c];
                    stats[n + i] += predicted * (1.0 - y[c]);
                    stats[2 * n + i] += (1.0 - predicted) * y[c];
                    stats[3 * n + i] += y[c];
                }
            }
        }
        MetricKind::R2 => {
            for r in 0..rows {
                let (p, y) = row(r);
                for c in 0..cols {
                    stats[c] += y[c];
                    stats[cols + c] += y[c] * y[c];
                    stats[2 * cols + c] += (y[c] - p[c]) * (y[c] - p[c]);
                    stats[3 * cols + c] += 1.0;
                }
            }
        }
        _ => {
            let mut sum = 0.0f32;
            for r in 0..rows {
                let (p, y) = row(r);
                sum += sample(kind, p, y).expect("a mean-style metric");
            }
            stats[0] += sum;
            stats[1] += rows as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values() {
        assert_eq!(sample(MetricKind::Binary, &[0.7, 0.2], &[1.0, 1.0]), Some(0.5));
        assert_eq!(sample(MetricKind::Categorical, &[0.1, 0.6, 0.3], &[0.0, 1.0, 0.0]), Some(1.0));
        assert_eq!(sample(MetricKind::Sparse, &[0.5, 0.5, 0.0], &[1.0]), Some(0.0));
        assert_eq!(sample(MetricKind::TopK { k: 2, sparse: true }, &[0.5, 0.3, 0.2], &[1.0]), Some(1.0));
        assert_eq!(sample(MetricKind::TopK { k: 1, sparse: true }, &[0.5, 0.3, 0.2], &[1.0]), Some(0.0));
    }
}
