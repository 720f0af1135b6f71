//! Weight regularizers: a penalty added to the loss (and its gradient to the weights' gradient),
//! as Keras's `L1`, `L2` and `L1L2`. In the DSL: `kernel_regularizer = l2(0.01)`.

/// `l1 * sum(|w|) + l2 * sum(w²)`, added to the loss of every batch (training and evaluation,
/// as Keras logs it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    /// Factor of the sum of absolute values.
    pub l1: f32,
    /// Factor of the sum of squares.
    pub l2: f32,
}

impl Regularizer {
    /// This regularizer with both factors multiplied by `factor`.
    pub fn scaled(self, factor: f32) -> Regularizer {
        Regularizer { l1: self.l1 * factor, l2: self.l2 * factor }
    }

    /// The penalty of `w`, computed as Keras does (each sum in float32).
    pub fn penalty(&self, w: &[f32]) -> f32 {
        let mut p = 0.0f32;
        if self.l1 != 0.0 {
            p += self.l1 * w.iter().map(|x| x.abs()).sum::<f32>();
        }
        if self.l2 != 0.0 {
            p += self.l2 * w.iter().map(|x| x * x).sum::<f32>();
        }
        p
    }

    /// Adds the penalty's gradient to `g`: `l1 sign(w) + 2 l2 w`, where the sign of 0 is +1 as
    /// in Keras's JAX backend (a zero-initialized bias moves on its first step).
    pub fn add_gradient(&self, w: &[f32], g: &mut [f32]) {
        let (l1, l2) = (self.l1, self.l2);
        for (g, &w) in g.iter_mut().zip(w) {
            let sign = if w >= 0.0 { 1.0 } else { -1.0 };
            *g += l1 * sign + l2 * (2.0 * w);
        }
    }
}
