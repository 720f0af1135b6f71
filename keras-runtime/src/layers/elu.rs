//! `ELU`: Keras's exponential linear unit with its `alpha`.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Elu};

/// Keras's `ELU(alpha)` over rows of width `W`: `y = x` where `x > 0`, else
/// `alpha * expm1(x)` (`jax.nn.elu`; NaN kept). The input gradient is `dy` where `x > 0`, else
/// `dy * alpha * exp(x)` (`alpha` at 0, as JAX).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug)]
pub struct ELU<const W: usize> {
    alpha: f32,
}

impl<const W: usize> ELU<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward (none: backward reads the forward pass's input).
    pub const SCRATCH: usize = 0;

    /// The layer.
    pub const fn new(alpha: f32) -> Self {
        ELU { alpha }
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for ELU<W> {
    /// `y = elu(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, W, W>) {
        ctx.device.elu(&Elu { len: x.rows * W, alpha: self.alpha }, x.view, y.view);
    }

    /// `dx = dy * elu'(x)`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        if let Some(dx) = dx {
            ctx.device.elu_backward(&Elu { len: x.rows * W, alpha: self.alpha }, x.view, B::freeze(&dy.view), dx.view);
        }
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // Keras's numbers as Python printed them
mod tests {
    use super::ELU;
    use crate::layers::layer::run_on_cpu;

    /// Keras 3.15.1 (KERAS_BACKEND=jax): `layer = keras.layers.ELU(alpha=0.7)`, `layer(x)` and
    /// `jax.grad(lambda v: jnp.sum(layer(v) * dy))(x)` for these float32 `x` and `dy`
    /// (`/tmp/actwork/gen.py`).
    #[test]
    fn matches_keras() {
        let x = [-3.0, -1.5, -0.5, 0.0, 0.25, 1.0, 1.5, 2.0, 4.0, 7.5];
        let dy = [0.5, -1.0, 2.0, 1.5, -0.75, 1.25, 3.0, -2.0, 0.5, 1.0];
        #[rustfmt::skip]
        let y_keras = [-0.6651490330696106, -0.5438088774681091, -0.27542853355407715, 0.0, 0.25, 1.0, 1.5, 2.0, 4.0, 7.5];
        #[rustfmt::skip]
        let dx_keras = [0.01742546446621418, -0.15619111061096191, 0.8491429090499878, 1.0499999523162842, -0.75, 1.25, 3.0, -2.0, 0.5, 1.0];
        let (y, dx, _) = run_on_cpu(&ELU::<10>::new(0.7), &[], &x, &dy);
        for j in 0..10 {
            assert!((y[j] - y_keras[j]).abs() <= 1e-6, "y[{j}] = {}, Keras {}", y[j], y_keras[j]);
            assert!((dx[j] - dx_keras[j]).abs() <= 1e-6, "dx[{j}] = {}, Keras {}", dx[j], dx_keras[j]);
        }
    }
}
