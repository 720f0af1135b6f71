//! Weight penalties and constraints on the CPU: Keras's `L1`/`L2` regularizers and its
//! `MaxNorm`, `NonNeg`, `UnitNorm` and `MinMaxNorm` constraints.

use crate::backend::ops::{Constraint, Regularizer};

/// The penalty of `w`, computed as Keras does (each sum in float32).
pub fn penalty(r: &Regularizer, w: &[f32]) -> f32 {
    let mut p = 0.0f32;
    if r.l1 != 0.0 {
        p += r.l1 * w.iter().map(|x| x.abs()).sum::<f32>();
    }
    if r.l2 != 0.0 {
        p += r.l2 * w.iter().map(|x| x * x).sum::<f32>();
    }
    p
}

/// See `ObjectiveOps::regularize`.
pub fn regularize(r: &Regularizer, w: &[f32], g: Option<&mut [f32]>, scale: f32, stats: Option<&mut [f32]>) {
    if let Some(stats) = stats {
        stats[0] += scale * penalty(r, w);
    }
    if let Some(g) = g {
        let (l1, l2) = (r.l1, r.l2);
        for (g, &w) in g.iter_mut().zip(w) {
            let sign = if w >= 0.0 { 1.0 } else { -1.0 };
            *g += l1 * sign + l2 * (2.0 * w);
        }
    }
}

/// Applies a constraint in place to a row-major tensor of `rows` rows (norms over axis 0: for
/// a Dense kernel `(inputs, units)`, the weights into each unit; for a bias, the whole vector).
pub fn constrain(c: &Constraint, rows: usize, w: &mut [f32]) {
    if let Constraint::NonNeg = c {
        for x in w.iter_mut() {
            // Keras's `w * (w >= 0)`: a NaN stays NaN.
            if *x < 0.0 {
                *x = 0.0;
            }
        }
        return;
    }
    let rows = rows.max(1);
    let cols = w.len() / rows;
    const EPS: f32 = 1e-7;
    for col in 0..cols {
        let norm = (0..rows).map(|r| w[r * cols + col] * w[r * cols + col]).sum::<f32>().sqrt();
        let scale = match *c {
            Constraint::MaxNorm { max_value } => norm.clamp(0.0, max_value) / (EPS + norm),
            Constraint::UnitNorm => 1.0 / (EPS + norm),
            Constraint::MinMaxNorm { min_value, max_value, rate } => {
                (rate * norm.clamp(min_value, max_value) + (1.0 - rate) * norm) / (EPS + norm)
            }
            Constraint::NonNeg => unreachable!("handled above"),
        };
        for r in 0..rows {
            w[r * cols + col] *= scale;
        }
    }
}
