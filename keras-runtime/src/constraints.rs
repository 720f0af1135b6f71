//! Weight constraints: projections applied to a weight after each optimizer update, as Keras's
//! `MaxNorm`, `NonNeg`, `UnitNorm` and `MinMaxNorm`. In the DSL: `kernel_constraint = max_norm(3)`.
//!
//! Norms are taken over axis 0, Keras's default: for a Dense kernel `(inputs, units)`, the
//! weights into each unit; for a bias, the whole vector.

/// A projection of a weight tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Constraint {
    /// Rescales each unit's weights whose norm exceeds `max_value` to that norm.
    MaxNorm {
        /// The largest norm allowed.
        max_value: f32,
    },
    /// Sets negative weights to zero.
    NonNeg,
    /// Rescales each unit's weights to norm 1.
    UnitNorm,
    /// Moves each unit's norm towards `[min_value, max_value]` by `rate` (1 = all the way).
    MinMaxNorm {
        /// The smallest norm.
        min_value: f32,
        /// The largest norm.
        max_value: f32,
        /// How far to move towards the range (0 to 1).
        rate: f32,
    },
}

impl Constraint {
    /// Applies the constraint in place to a row-major tensor of `shape`.
    pub fn apply(&self, w: &mut [f32], shape: &[usize]) {
        if let Constraint::NonNeg = self {
            for x in w.iter_mut() {
                *x = x.max(0.0);
            }
            return;
        }
        let rows = shape.first().copied().unwrap_or(1).max(1);
        let cols = w.len() / rows;
        const EPS: f32 = 1e-7;
        for c in 0..cols {
            let norm = (0..rows).map(|r| w[r * cols + c] * w[r * cols + c]).sum::<f32>().sqrt();
            let scale = match *self {
                Constraint::MaxNorm { max_value } => norm.clamp(0.0, max_value) / (EPS + norm),
                Constraint::UnitNorm => 1.0 / (EPS + norm),
                Constraint::MinMaxNorm { min_value, max_value, rate } => {
                    (rate * norm.clamp(min_value, max_value) + (1.0 - rate) * norm) / (EPS + norm)
                }
                Constraint::NonNeg => unreachable!("handled above"),
            };
            for r in 0..rows {
                w[r * cols + c] *= scale;
            }
        }
    }
}
