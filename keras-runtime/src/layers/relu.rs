//! `ReLU` and `LeakyReLU`: Keras's rectified linear unit with its arguments.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Relu, ReluForm};

/// Keras's `ReLU(max_value, negative_slope, threshold)` over rows of width `W`:
/// `y = min(x, max_value)` where `x > threshold`, else `negative_slope * (x - threshold)`, in
/// the form `keras.activations.relu` computes for these arguments (see [`ReluForm`]), so NaN and
/// the gradient at the kinks are Keras's and JAX's. `LeakyReLU(negative_slope)` is
/// `ReLU::new(f32::INFINITY, negative_slope, 0.0)` (or [`ReLU::leaky`]).
#[derive(Clone, Copy, Debug)]
pub struct ReLU<const W: usize> {
    max_value: f32,
    negative_slope: f32,
    threshold: f32,
    form: ReluForm,
}

impl<const W: usize> ReLU<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward (none: backward reads the forward pass's input).
    pub const SCRATCH: usize = 0;

    /// The layer; `max_value` is `f32::INFINITY` where Keras's is `None`.
    pub const fn new(max_value: f32, negative_slope: f32, threshold: f32) -> Self {
        let form = Relu::new(0, max_value, negative_slope, threshold).form;
        ReLU { max_value, negative_slope, threshold, form }
    }

    /// `LeakyReLU(negative_slope)`: always `jax.nn.leaky_relu`'s form, `where(x >= 0, x,
    /// negative_slope * x)`, even for a slope of 0 (gradient 1 at `x == 0`, where `new` with a
    /// slope of 0 is relu's 0).
    pub const fn leaky(negative_slope: f32) -> Self {
        ReLU { max_value: f32::INFINITY, negative_slope, threshold: 0.0, form: ReluForm::Leaky }
    }

    /// The kernels' op over `rows` rows.
    const fn op(&self, rows: usize) -> Relu {
        let &ReLU { max_value, negative_slope, threshold, form } = self;
        Relu { len: rows * W, max_value, negative_slope, threshold, form }
    }
}

impl<B: Backend, const W: usize> Layer<B, W, W> for ReLU<W> {
    /// `y = relu(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, W, W>) {
        ctx.device.relu(&self.op(x.rows), x.view, y.view);
    }

    /// `dx = dy * relu'(x)`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        if let Some(dx) = dx {
            ctx.device.relu_backward(&self.op(x.rows), x.view, B::freeze(&dy.view), dx.view);
        }
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // Keras's numbers as Python printed them
mod tests {
    use super::ReLU;
    use crate::layers::layer::run_on_cpu;

    const X: [f32; 10] = [-3.0, -1.5, -0.5, 0.0, 0.25, 1.0, 1.5, 2.0, 4.0, 7.5];
    const DY: [f32; 10] = [0.5, -1.0, 2.0, 1.5, -0.75, 1.25, 3.0, -2.0, 0.5, 1.0];

    /// Outputs and input gradients of Keras 3.15.1 (KERAS_BACKEND=jax), from
    /// `layer(x)` and `jax.grad(lambda v: jnp.sum(layer(v) * dy))(x)` for `x = X[None]`,
    /// `dy = DY[None]` (float32), with `layer` as named (`/tmp/actwork/gen.py`):
    /// - `keras.layers.ReLU(max_value=4.0, negative_slope=0.3, threshold=1.5)`
    /// - `keras.layers.ReLU(threshold=1.5)`
    /// - `keras.layers.ReLU(max_value=6.0)`
    /// - `keras.layers.LeakyReLU(negative_slope=0.3)`
    #[test]
    fn matches_keras() {
        #[rustfmt::skip]
        let cases: [(ReLU<10>, [f32; 10], [f32; 10]); 4] = [
            (
                ReLU::new(4.0, 0.3, 1.5),
                [-1.350000023841858, -0.9000000357627869, -0.6000000238418579, -0.45000001788139343, -0.375, -0.15000000596046448, 0.0, 2.0, 4.0, 4.0],
                [0.15000000596046448, -0.30000001192092896, 0.6000000238418579, 0.45000001788139343, -0.22500000894069672, 0.375, 0.0, -2.0, 0.25, 0.0],
            ),
            (
                ReLU::new(f32::INFINITY, 0.0, 1.5),
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 4.0, 7.5],
                [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0, 0.5, 1.0],
            ),
            (
                ReLU::new(6.0, 0.0, 0.0),
                [0.0, 0.0, 0.0, 0.0, 0.25, 1.0, 1.5, 2.0, 4.0, 6.0],
                [0.0, 0.0, 0.0, 0.0, -0.75, 1.25, 3.0, -2.0, 0.5, 0.0],
            ),
            (
                ReLU::new(f32::INFINITY, 0.3, 0.0),
                [-0.9000000357627869, -0.45000001788139343, -0.15000000596046448, 0.0, 0.25, 1.0, 1.5, 2.0, 4.0, 7.5],
                [0.15000000596046448, -0.30000001192092896, 0.6000000238418579, 1.5, -0.75, 1.25, 3.0, -2.0, 0.5, 1.0],
            ),
        ];
        for (i, (layer, y_keras, dx_keras)) in cases.iter().enumerate() {
            let (y, dx, grads) = run_on_cpu(layer, &[], &X, &DY);
            assert!(grads.is_empty());
            for j in 0..10 {
                assert!((y[j] - y_keras[j]).abs() <= 1e-6, "case {i}: y[{j}] = {}, Keras {}", y[j], y_keras[j]);
                assert!((dx[j] - dx_keras[j]).abs() <= 1e-6, "case {i}: dx[{j}] = {}, Keras {}", dx[j], dx_keras[j]);
            }
        }
    }

    /// `leaky` is LeakyReLU's form even with a slope of 0: gradient 1 at 0 (JAX's
    /// `leaky_relu`), where `new` is relu's 0.
    #[test]
    fn leaky_with_no_slope_keeps_its_gradient_at_zero() {
        let x = [0.0, -1.0, 2.0];
        let (_, dx, _) = run_on_cpu(&ReLU::<3>::leaky(0.0), &[], &x, &[1.0; 3]);
        assert_eq!(dx, [1.0, 0.0, 1.0]);
        let (_, dx, _) = run_on_cpu(&ReLU::<3>::new(f32::INFINITY, 0.0, 0.0), &[], &x, &[1.0; 3]);
        assert_eq!(dx, [0.0, 0.0, 1.0]);
    }
}
