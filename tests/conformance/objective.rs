//! The objective: every loss with its options against a plain f64 reference of Keras 3's
//! definition (its gradient against central differences of that reference), per-sample weights
//! and several loss rows per sample, the running mean it feeds; every metric's accumulators; the
//! L1/L2 penalties; NaN predictions.

use crate::support::*;
use keras::backend::{Average, Backend, Loss, LossBatch, LossConfig, MetricBatch, MetricKind, Regularizer};

pub fn suite<B: Backend>(dev: &B) {
    losses(dev);
    metrics(dev);
    regularize(dev);
    nan_predictions(dev);
}

/// Keras's fuzz factor, in the reference's precision.
const EPS: f64 = 1e-7;

/// A loss with its options, as the reference reads them (f32, as the kernel receives them).
#[derive(Clone, Copy, Debug)]
struct Spec {
    kind: Loss,
    logits: bool,
    smoothing: f32,
    delta: f32,
    balance: bool,
    alpha: f32,
    gamma: f32,
}

impl Spec {
    /// The loss with Keras's default options.
    fn new(kind: Loss) -> Spec {
        Spec { kind, logits: false, smoothing: 0.0, delta: 1.0, balance: false, alpha: 0.25, gamma: 2.0 }
    }

    /// The loss as `compile` receives it, through the builder methods.
    fn config(&self) -> LossConfig {
        let c = if self.kind == Loss::Huber { Loss::huber(self.delta) } else { self.kind.config() };
        let c = c.from_logits(self.logits).label_smoothing(self.smoothing);
        let c = c.apply_class_balancing(self.balance).alpha(self.alpha).gamma(self.gamma);
        c.validate().unwrap_or_else(|e| panic!("{self:?}: {e}"));
        c
    }
}

/// How a loss case's targets are drawn.
#[derive(Clone, Copy, Debug)]
enum Targets {
    /// Uniform in `[lo, hi)`.
    Uniform(f32, f32),
    /// Magnitude uniform in `[lo, hi)`, either sign.
    Magnitude(f32, f32),
    /// 0 or 1.
    Binary,
    /// 0 or 1, but the first value 0.5 (the batch is then not binary).
    AlmostBinary,
    /// -1 or 1.
    PlusMinus,
    /// One 1 per row.
    OneHot,
    /// A class index per row.
    Class,
}

/// `rows` rows of targets (one value per row for [`Targets::Class`]).
fn targets(kind: Targets, rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let u = data(rows * cols, seed, 0.0, 1.0);
    let class = |r: usize| ((u[r * cols] * cols as f32) as usize).min(cols - 1);
    match kind {
        Targets::Uniform(lo, hi) => u.iter().map(|&u| lo + (hi - lo) * u).collect(),
        Targets::Magnitude(lo, hi) => {
            u.iter().zip(data(rows * cols, seed + 1, -1.0, 1.0)).map(|(&u, s)| (lo + (hi - lo) * u).copysign(s)).collect()
        }
        Targets::Binary => u.iter().map(|&u| (u < 0.5) as u8 as f32).collect(),
        Targets::AlmostBinary => {
            let mut t: Vec<f32> = u.iter().map(|&u| (u < 0.5) as u8 as f32).collect();
            t[0] = 0.5;
            t
        }
        Targets::PlusMinus => u.iter().map(|&u| if u < 0.5 { -1.0 } else { 1.0 }).collect(),
        Targets::OneHot => (0..rows * cols).map(|i| (i % cols == class(i / cols)) as u8 as f32).collect(),
        Targets::Class => (0..rows).map(|r| class(r) as f32).collect(),
    }
}

/// A loss, the range its predictions are drawn from, and its targets.
struct LossCase {
    spec: Spec,
    pred: (f32, f32),
    targets: Targets,
}

/// Every loss, with each of its options: probabilities and logits, label smoothing, Huber's
/// delta, focal weighting and class balancing, sparse targets, binary and signed hinge targets.
fn cases() -> Vec<LossCase> {
    use Loss::*;
    let case = |spec: Spec, pred: (f32, f32), targets: Targets| LossCase { spec, pred, targets };
    let s = Spec::new;
    let signed2 = (-2.0, 2.0);
    let probs = (0.02, 0.98);
    vec![
        case(s(MeanSquaredError), signed2, Targets::Uniform(-2.0, 2.0)),
        case(s(MeanAbsoluteError), signed2, Targets::Uniform(-2.0, 2.0)),
        case(s(MeanAbsolutePercentageError), signed2, Targets::Magnitude(0.5, 2.0)),
        case(s(MeanSquaredLogarithmicError), (-0.5, 3.0), Targets::Uniform(0.0, 3.0)),
        case(s(BinaryCrossentropy), probs, Targets::Binary),
        case(Spec { smoothing: 0.1, ..s(BinaryCrossentropy) }, probs, Targets::Uniform(0.0, 1.0)),
        case(Spec { logits: true, ..s(BinaryCrossentropy) }, (-4.0, 4.0), Targets::Binary),
        case(Spec { logits: true, smoothing: 0.2, ..s(BinaryCrossentropy) }, (-4.0, 4.0), Targets::Binary),
        case(s(BinaryFocalCrossentropy), probs, Targets::Binary),
        case(
            Spec { logits: true, balance: true, alpha: 0.4, gamma: 1.5, smoothing: 0.1, ..s(BinaryFocalCrossentropy) },
            (-4.0, 4.0),
            Targets::Binary,
        ),
        case(Spec { balance: true, gamma: 0.0, ..s(BinaryFocalCrossentropy) }, probs, Targets::Uniform(0.0, 1.0)),
        case(Spec { balance: true, alpha: 0.7, gamma: 3.0, ..s(BinaryFocalCrossentropy) }, probs, Targets::Binary),
        case(s(CategoricalCrossentropy), (0.05, 1.0), Targets::OneHot),
        case(Spec { smoothing: 0.1, ..s(CategoricalCrossentropy) }, (0.05, 1.0), Targets::OneHot),
        case(Spec { logits: true, ..s(CategoricalCrossentropy) }, (-3.0, 3.0), Targets::OneHot),
        case(Spec { logits: true, smoothing: 0.2, ..s(CategoricalCrossentropy) }, (-3.0, 3.0), Targets::Uniform(0.0, 1.0)),
        case(s(SparseCategoricalCrossentropy), (0.05, 1.0), Targets::Class),
        case(Spec { logits: true, ..s(SparseCategoricalCrossentropy) }, (-3.0, 3.0), Targets::Class),
        case(s(Huber), signed2, Targets::Uniform(-2.0, 2.0)),
        case(Spec { delta: 0.5, ..s(Huber) }, signed2, Targets::Uniform(-2.0, 2.0)),
        case(Spec { delta: 2.5, ..s(Huber) }, signed2, Targets::Uniform(-2.0, 2.0)),
        case(s(LogCosh), signed2, Targets::Uniform(-2.0, 2.0)),
        case(s(KlDivergence), (0.05, 1.2), Targets::Uniform(0.0, 1.0)),
        case(s(Poisson), (0.1, 3.0), Targets::Uniform(0.0, 3.0)),
        case(s(Hinge), signed2, Targets::Binary),
        case(s(Hinge), signed2, Targets::PlusMinus),
        case(s(Hinge), signed2, Targets::AlmostBinary),
        case(s(SquaredHinge), signed2, Targets::Binary),
        case(s(SquaredHinge), signed2, Targets::Uniform(-1.0, 1.0)),
        case(s(CategoricalHinge), signed2, Targets::OneHot),
        case(s(CategoricalHinge), signed2, Targets::Uniform(0.0, 1.0)),
        case(s(CosineSimilarity), (-1.0, 1.0), Targets::Uniform(-1.0, 1.0)),
    ]
}

/// `log(sigmoid(x))`.
fn log_sigmoid(x: f64) -> f64 {
    -(-x).exp().ln_1p()
}

/// Binary crossentropy of a probability clipped to `[EPS, 1 - EPS]`.
fn bce(p: f64, t: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
}

/// One loss row's value, Keras 3's definition written plainly in f64; `t` holds the class index
/// for sparse targets, `binary` whether the whole batch's targets are 0 or 1 (hinge losses then
/// map them to -1 and 1).
fn reference(s: &Spec, p: &[f64], t: &[f64], binary: bool) -> f64 {
    let n = p.len() as f64;
    let (ls, delta, alpha, gamma) = (s.smoothing as f64, s.delta as f64, s.alpha as f64, s.gamma as f64);
    let mean = |f: &dyn Fn(f64, f64) -> f64| p.iter().zip(t).map(|(&p, &t)| f(p, t)).sum::<f64>() / n;
    let hinge_target = |t: f64| if binary { 2.0 * t - 1.0 } else { t };
    match s.kind {
        Loss::MeanSquaredError => mean(&|p, t| (t - p).powi(2)),
        Loss::MeanAbsoluteError => mean(&|p, t| (t - p).abs()),
        Loss::MeanAbsolutePercentageError => 100.0 * mean(&|p, t| ((t - p) / t.abs().max(EPS)).abs()),
        Loss::MeanSquaredLogarithmicError => mean(&|p, t| ((p.max(EPS) + 1.0).ln() - (t.max(EPS) + 1.0).ln()).powi(2)),
        Loss::BinaryCrossentropy => mean(&|p, t| {
            let t = t * (1.0 - ls) + 0.5 * ls;
            if s.logits { -(t * log_sigmoid(p) + (1.0 - t) * log_sigmoid(-p)) } else { bce(p, t) }
        }),
        Loss::BinaryFocalCrossentropy => mean(&|p, t| {
            let t = t * (1.0 - ls) + 0.5 * ls;
            let p = if s.logits { 1.0 / (1.0 + (-p).exp()) } else { p };
            let p_t = t * p + (1.0 - t) * (1.0 - p);
            let focal = (1.0 - p_t).powf(gamma) * bce(p, t);
            if s.balance { (t * alpha + (1.0 - t) * (1.0 - alpha)) * focal } else { focal }
        }),
        Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy => {
            let t: Vec<f64> = if s.kind == Loss::SparseCategoricalCrossentropy {
                (0..p.len()).map(|j| (j == t[0] as usize) as u8 as f64).collect()
            } else {
                t.iter().map(|&t| t * (1.0 - ls) + ls / n).collect()
            };
            let log_p: Vec<f64> = if s.logits {
                let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = max + p.iter().map(|&p| (p - max).exp()).sum::<f64>().ln();
                p.iter().map(|&p| p - log_sum).collect()
            } else {
                let sum: f64 = p.iter().sum();
                p.iter().map(|&p| (p / sum).clamp(EPS, 1.0 - EPS).ln()).collect()
            };
            -t.iter().zip(&log_p).map(|(t, l)| t * l).sum::<f64>()
        }
        Loss::Huber => mean(&|p, t| {
            let e = (p - t).abs();
            if e <= delta { 0.5 * e * e } else { delta * e - 0.5 * delta * delta }
        }),
        Loss::LogCosh => mean(&|p, t| (p - t).cosh().ln()),
        Loss::KlDivergence => p
            .iter()
            .zip(t)
            .map(|(&p, &t)| {
                let (t, p) = (t.clamp(EPS, 1.0), p.clamp(EPS, 1.0));
                t * (t / p).ln()
            })
            .sum(),
        Loss::Poisson => mean(&|p, t| p - t * (p + EPS).ln()),
        Loss::Hinge => mean(&|p, t| (1.0 - hinge_target(t) * p).max(0.0)),
        Loss::SquaredHinge => mean(&|p, t| (1.0 - hinge_target(t) * p).max(0.0).powi(2)),
        Loss::CategoricalHinge => {
            let pos: f64 = p.iter().zip(t).map(|(p, t)| t * p).sum();
            let neg = p.iter().zip(t).map(|(p, t)| (1.0 - t) * p).fold(f64::NEG_INFINITY, f64::max);
            (neg - pos + 1.0).max(0.0)
        }
        Loss::CosineSimilarity => {
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt().max(EPS);
            let (np, nt) = (norm(p), norm(t));
            -p.iter().zip(t).map(|(p, t)| (t / nt) * (p / np)).sum::<f64>()
        }
        other => panic!("no reference for {other:?}"),
    }
}

/// Every loss case at every shape (one value per row, a single row, a partial vector, several
/// loss rows per sample, a batch split over threads in uneven parts), with and without weights.
fn losses<B: Backend>(dev: &B) {
    for case in cases() {
        for (rows, cols, per_sample) in [(1, 5, 1), (7, 1, 1), (33, 7, 1), (35, 3, 5), (4099, 9, 1)] {
            for weighted in [false, true] {
                check_loss(dev, &case, rows, cols, per_sample, weighted);
            }
        }
    }
}

/// One loss batch: the running mean gets `sum(w_i loss_i)` and `rows` added (twice over two
/// calls, the second without a gradient); the gradient is `w_i / rows` times the reference's
/// central differences.
fn check_loss<B: Backend>(dev: &B, case: &LossCase, rows: usize, cols: usize, per_sample: usize, weighted: bool) {
    let spec = case.spec;
    let config = spec.config();
    let what = format!("{spec:?} on {rows} x {cols} ({per_sample} rows per sample, weighted: {weighted}, targets {:?})", case.targets);
    let seed = (rows * 31 + cols) as u64;
    let pred = data(rows * cols, seed, case.pred.0, case.pred.1);
    let target = targets(case.targets, rows, cols, seed + 7);
    let tcols = if config.sparse_targets() { 1 } else { cols };
    let weights = weighted.then(|| {
        let mut w = data(rows / per_sample, seed + 13, 0.0, 2.0);
        if w.len() > 1 {
            w[1] = 0.0;
        }
        w
    });
    let binary = target.iter().all(|&t| t == 0.0 || t == 1.0);

    let (mut total, mut want_grad) = (0.0f64, vec![0.0f64; rows * cols]);
    for r in 0..rows {
        let w = weights.as_ref().map_or(1.0, |w| w[r / per_sample] as f64);
        let p: Vec<f64> = pred[r * cols..(r + 1) * cols].iter().map(|&x| x as f64).collect();
        let t: Vec<f64> = target[r * tcols..(r + 1) * tcols].iter().map(|&x| x as f64).collect();
        total += w * reference(&spec, &p, &t, binary);
        for (j, g) in want_grad[r * cols..(r + 1) * cols].iter_mut().enumerate() {
            let h = 1e-6;
            let (mut hi, mut lo) = (p.clone(), p.clone());
            hi[j] += h;
            lo[j] -= h;
            *g = w * (reference(&spec, &hi, &t, binary) - reference(&spec, &lo, &t, binary)) / (2.0 * h);
        }
    }

    let (pb, tb) = (up(dev, &pred), up(dev, &target));
    let wb = weights.as_ref().map(|w| up(dev, w));
    let mut grad = up(dev, &vec![f32::NAN; rows * cols]);
    let mut stats = up(dev, &[2.5, 3.0]);
    let l = LossBatch { loss: config, rows, cols };
    dev.loss(&l, v::<B>(&pb), v::<B>(&tb), wb.as_ref().map(v::<B>), Some(vm::<B>(&mut grad)), vm::<B>(&mut stats));
    let st = down(dev, &stats);
    let rtol = 2.0 * rtol_for(rows * cols);
    close(&format!("{what}: the loss sum"), &[st[0]], &[2.5 + total], rtol);
    assert_eq!(st[1], 3.0 + rows as f32, "{what}: the count");
    // The gradient of the batch loss is w_i / rows times the row's; compare it times rows.
    let got: Vec<f32> = down(dev, &grad).iter().map(|&g| (g as f64 * rows as f64) as f32).collect();
    close(&format!("{what}: the gradient (times rows)"), &got, &want_grad, 4.0 * rtol_for(cols));

    dev.loss(&l, v::<B>(&pb), v::<B>(&tb), wb.as_ref().map(v::<B>), None, vm::<B>(&mut stats));
    let st = down(dev, &stats);
    close(&format!("{what}: the loss sum after a second batch"), &[st[0]], &[2.5 + 2.0 * total], rtol);
    assert_eq!(st[1], 3.0 + 2.0 * rows as f32, "{what}: the count after a second batch");
}

/// Index of the first largest value.
fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// What one batch adds to a metric's accumulators (AUC's working histograms left out), written
/// plainly from Keras 3's metric variables.
fn metric_reference(kind: MetricKind, rows: usize, cols: usize, pred: &[f32], target: &[f32]) -> Vec<f64> {
    let tcols = if kind.sparse_targets() { 1 } else { cols };
    let row = |r: usize| (&pred[r * cols..(r + 1) * cols], &target[r * tcols..(r + 1) * tcols]);
    let pairs = || pred.iter().zip(target).map(|(&p, &t)| (p as f64, t as f64));
    let mean_of = |f: &dyn Fn(&[f32], &[f32]) -> f64| vec![(0..rows).map(|r| f(row(r).0, row(r).1)).sum(), rows as f64];
    let per_value =
        |p: &[f32], t: &[f32], f: &dyn Fn(f32, f32) -> f64| p.iter().zip(t).map(|(&p, &t)| f(p, t)).sum::<f64>() / p.len() as f64;
    match kind {
        MetricKind::Binary => mean_of(&|p, t| per_value(p, t, &|p, t| (t == (p > 0.5) as u8 as f32) as u8 as f64)),
        MetricKind::Categorical => mean_of(&|p, t| (argmax(p) == argmax(t)) as u8 as f64),
        MetricKind::Sparse => mean_of(&|p, t| (argmax(p) == t[0] as usize) as u8 as f64),
        MetricKind::TopK { k, sparse } => mean_of(&|p, t| {
            let class = if sparse { t[0] as usize } else { argmax(t) };
            let mut sorted = p.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            (k >= cols || p[class] >= sorted[k - 1]) as u8 as f64
        }),
        MetricKind::Precision { threshold } => {
            let t = threshold as f64;
            vec![pairs().filter(|&(p, y)| p > t && y != 0.0).count() as f64, pairs().filter(|&(p, y)| p > t && y == 0.0).count() as f64]
        }
        MetricKind::Recall { threshold } => {
            let t = threshold as f64;
            vec![pairs().filter(|&(p, y)| p > t && y != 0.0).count() as f64, pairs().filter(|&(p, y)| p <= t && y != 0.0).count() as f64]
        }
        MetricKind::Auc { num_thresholds: n } => {
            let threshold = |i: usize| match i {
                0 => -EPS,
                i if i == n - 1 => 1.0 + EPS,
                i => i as f64 / (n - 1) as f64,
            };
            let count = |i: usize, above: bool, label: bool| {
                pairs().filter(|&(p, y)| (p > threshold(i)) == above && (y != 0.0) == label).count() as f64
            };
            let mut out = vec![0.0; 4 * n];
            for i in 0..n {
                out[i] = count(i, true, true);
                out[n + i] = count(i, true, false);
                out[2 * n + i] = count(i, false, false);
                out[3 * n + i] = count(i, false, true);
            }
            out
        }
        MetricKind::F1 { average, argmax, threshold } => {
            let classes = if average == Average::Micro { 1 } else { cols };
            let mut out = vec![0.0; 4 * classes];
            for r in 0..rows {
                let (p, y) = row(r);
                let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for c in 0..cols {
                    let predicted = if argmax { p[c] >= max && p[c].abs() > 1e-9 } else { p[c] > threshold } as u8 as f64;
                    let (i, y) = (c % classes, y[c] as f64);
                    out[i] += predicted * y;
                    out[classes + i] += predicted * (1.0 - y);
                    out[2 * classes + i] += (1.0 - predicted) * y;
                    out[3 * classes + i] += y;
                }
            }
            out
        }
        MetricKind::Mse | MetricKind::Rmse => mean_of(&|p, t| per_value(p, t, &|p, t| (t as f64 - p as f64).powi(2))),
        MetricKind::Mae => mean_of(&|p, t| per_value(p, t, &|p, t| (t as f64 - p as f64).abs())),
        MetricKind::R2 => {
            let mut out = vec![0.0; 4 * cols];
            for r in 0..rows {
                let (p, y) = row(r);
                for c in 0..cols {
                    let (p, y) = (p[c] as f64, y[c] as f64);
                    out[c] += y;
                    out[cols + c] += y * y;
                    out[2 * cols + c] += (y - p) * (y - p);
                    out[3 * cols + c] += 1.0;
                }
            }
            out
        }
        other => panic!("no reference for {other:?}"),
    }
}

/// Predictions and targets for a metric: values on a coarse grid (ties and values at the
/// thresholds), probabilities between AUC's thresholds, signed values for the regression metrics.
fn metric_inputs(kind: MetricKind, rows: usize, cols: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let grid = |n: usize, seed: u64| -> Vec<f32> { data(n, seed, 0.0, 1.0).iter().map(|&u| (u * 5.0).floor() / 4.0).collect() };
    let n = rows * cols;
    match kind {
        MetricKind::Sparse | MetricKind::TopK { sparse: true, .. } => (grid(n, seed), targets(Targets::Class, rows, cols, seed + 1)),
        MetricKind::Categorical | MetricKind::TopK { .. } => (grid(n, seed), grid(n, seed + 1)),
        MetricKind::Auc { num_thresholds: t } => {
            let buckets = (t - 1) as f32;
            let u = data(n, seed, 0.0, 1.0);
            let mut p: Vec<f32> =
                u.iter().zip(data(n, seed + 2, 0.05, 0.95)).map(|(&u, f)| ((u * buckets).floor() + f) / buckets).collect();
            for (i, v) in p.iter_mut().enumerate().take(n.min(3)) {
                *v = [0.0, 1.0, 0.5][i];
            }
            (p, targets(Targets::Binary, rows, cols, seed + 1))
        }
        MetricKind::F1 { .. } => {
            let mut p = grid(n, seed);
            if rows > 1 {
                p[cols..2 * cols].fill(0.0);
            }
            (p, targets(Targets::Binary, rows, cols, seed + 1))
        }
        MetricKind::Mse | MetricKind::Mae | MetricKind::Rmse | MetricKind::R2 => (signed(n, seed), signed(n, seed + 1)),
        _ => (grid(n, seed), targets(Targets::Binary, rows, cols, seed + 1)),
    }
}

/// Every metric's accumulators over two batches added to non-zero starting values (AUC's
/// working histograms start at zero): accuracies with ties (the first largest index wins),
/// top-k, precision and recall at several thresholds, AUC, F1 (every average, argmax with ties
/// and an all-zero row, or a threshold), MSE, MAE, RMSE, R².
fn metrics<B: Backend>(dev: &B) {
    let mut kinds = vec![
        MetricKind::Binary,
        MetricKind::Categorical,
        MetricKind::Sparse,
        MetricKind::TopK { k: 1, sparse: false },
        MetricKind::TopK { k: 2, sparse: false },
        MetricKind::TopK { k: 3, sparse: true },
        MetricKind::TopK { k: 5, sparse: true },
        MetricKind::Precision { threshold: 0.5 },
        MetricKind::Precision { threshold: 0.0 },
        MetricKind::Recall { threshold: 0.5 },
        MetricKind::Recall { threshold: 0.75 },
        MetricKind::Auc { num_thresholds: 200 },
        MetricKind::Auc { num_thresholds: 7 },
        MetricKind::Mse,
        MetricKind::Mae,
        MetricKind::Rmse,
        MetricKind::R2,
    ];
    for average in [Average::Micro, Average::Macro, Average::Weighted] {
        kinds.push(MetricKind::F1 { average, argmax: true, threshold: 0.0 });
        kinds.push(MetricKind::F1 { average, argmax: false, threshold: 0.5 });
    }
    for kind in kinds {
        for (rows, cols) in [(1, 1), (7, 3), (33, 7), (1000, 5)] {
            let what = format!("{kind:?} on {rows} x {cols}");
            let len = kind.stats_len(cols);
            let kept = if let MetricKind::Auc { num_thresholds } = kind { 4 * num_thresholds } else { len };
            let init: Vec<f32> = (0..len).map(|i| if i < kept { (i % 7) as f32 * 0.5 } else { 0.0 }).collect();
            let mut want: Vec<f64> = init[..kept].iter().map(|&x| x as f64).collect();
            let mut stats = up(dev, &init);
            for batch in 0..2u64 {
                let (pred, target) = metric_inputs(kind, rows, cols, rows as u64 * 10 + batch);
                for (w, add) in want.iter_mut().zip(metric_reference(kind, rows, cols, &pred, &target)) {
                    *w += add;
                }
                let (pb, tb) = (up(dev, &pred), up(dev, &target));
                dev.metric(&MetricBatch { kind, rows, cols }, v::<B>(&pb), v::<B>(&tb), vm::<B>(&mut stats));
                let got = down(dev, &stats);
                close(&format!("{what}: accumulators after batch {batch}"), &got[..kept], &want, 4.0 * rtol_for(rows * cols));
            }
        }
    }
}

/// `regularize`: `scale` times `l1 sum|w| + l2 sum w²` added to `stats[0]` (the rest of `stats`
/// untouched), `l1 sign(w) + 2 l2 w` added to the gradient with the sign of ±0 being +1; each
/// output on its own or both.
fn regularize<B: Backend>(dev: &B) {
    for n in [1, 7, 33, 1000, 70_001] {
        let mut w = signed(n, n as u64);
        w[0] = 0.0;
        if n > 1 {
            w[1] = -0.0;
        }
        let g0 = signed(n, 5);
        let wb = up(dev, &w);
        for r in [Regularizer { l1: 0.01, l2: 0.0 }, Regularizer { l1: 0.0, l2: 0.02 }, Regularizer { l1: 0.003, l2: 0.005 }] {
            for scale in [1.0f32, 0.25] {
                let what = format!("{r:?} times {scale} on {n} weights");
                let (l1, l2) = (r.l1 as f64, r.l2 as f64);
                let penalty: f64 = w.iter().map(|&w| l1 * (w as f64).abs() + l2 * (w as f64).powi(2)).sum();
                let want_g: Vec<f64> =
                    g0.iter().zip(&w).map(|(&g, &w)| g as f64 + l1 * if w < 0.0 { -1.0 } else { 1.0 } + 2.0 * l2 * w as f64).collect();
                let want_stats = [1.5 + scale as f64 * penalty, 7.0];
                let (mut g, mut stats) = (up(dev, &g0), up(dev, &[1.5, 7.0]));
                dev.regularize(&r, v::<B>(&wb), Some(vm::<B>(&mut g)), scale, Some(vm::<B>(&mut stats)));
                close(&format!("{what}: gradient"), &down(dev, &g), &want_g, 4.0 * rtol_for(1));
                close(&format!("{what}: penalty"), &down(dev, &stats), &want_stats, 4.0 * rtol_for(n));
                let mut g = up(dev, &g0);
                dev.regularize(&r, v::<B>(&wb), Some(vm::<B>(&mut g)), scale, None);
                close(&format!("{what}: gradient alone"), &down(dev, &g), &want_g, 4.0 * rtol_for(1));
                let mut stats = up(dev, &[1.5, 7.0]);
                dev.regularize(&r, v::<B>(&wb), None, scale, Some(vm::<B>(&mut stats)));
                close(&format!("{what}: penalty alone"), &down(dev, &stats), &want_stats, 4.0 * rtol_for(n));
            }
        }
    }
}

/// A NaN prediction gives a NaN batch loss for every loss, as Keras's (every loss propagates NaN:
/// `maximum`, `clip` and sums do in JAX).
fn nan_predictions<B: Backend>(dev: &B) {
    let (rows, cols) = (3, 4);
    let mut finite = Vec::new();
    let mut seen = Vec::new();
    for case in cases() {
        if seen.contains(&case.spec.kind) {
            continue;
        }
        seen.push(case.spec.kind);
        let mut pred = data(rows * cols, 1, case.pred.0, case.pred.1);
        pred[cols + 2] = f32::NAN;
        let target = targets(case.targets, rows, cols, 2);
        let (pb, tb) = (up(dev, &pred), up(dev, &target));
        let mut stats = dev.alloc(2).unwrap();
        dev.loss(&LossBatch { loss: case.spec.config(), rows, cols }, v::<B>(&pb), v::<B>(&tb), None, None, vm::<B>(&mut stats));
        let st = down(dev, &stats);
        if !st[0].is_nan() {
            finite.push(format!("{:?} gives {}", case.spec.kind, st[0]));
        }
    }
    assert_eq!(seen.len(), 16, "every loss");
    assert!(finite.is_empty(), "a NaN prediction gives a finite loss (Keras gives NaN): {finite:?}");
}
