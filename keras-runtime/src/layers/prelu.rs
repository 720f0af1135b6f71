//! `PReLU`: a leaky ReLU whose negative slope `alpha` is learned, per position or shared along
//! axes.

use super::{Backward, Forward, Layer};
use crate::backend::{Backend, Prelu};

/// Keras's `PReLU(shared_axes)` over samples of `W` values (one row per sample): `y = x` where
/// `x > 0`, else `alpha[j] * x`. Its one weight `alpha` has `P` floats, Keras's shape: the
/// sample's shape with the shared axes set to 1. The input gradient is `dy` where `x > 0`,
/// `dy * alpha[j]` where `x < 0` and 0 at 0 (JAX's); the gradient of `alpha[j]` is the sum of
/// `dy * min(x, 0)` over the batch and the positions sharing it.
#[derive(Clone, Copy, Debug)]
pub struct PReLU<const W: usize, const P: usize> {
    geometry: Prelu,
}

impl<const W: usize, const P: usize> PReLU<W, P> {
    /// Trainable floats: `alpha`.
    pub const PARAMS: usize = P;
    /// Per-row scratch kept for backward (none: backward reads the forward pass's input).
    pub const SCRATCH: usize = 0;

    /// The layer over samples of `shape` (Keras's per-sample input shape, without the batch
    /// axis), with Keras's 1-based `shared_axes` (`[1, 2]` shares alpha over an image's rows and
    /// columns).
    ///
    /// # Panics
    ///
    /// When `shape` does not hold `W` values, a shared axis is not an axis of it, or the alpha
    /// it leaves does not hold `P` values (the generated code passes what the macro checked).
    pub fn new(shape: &[usize], shared_axes: &[usize]) -> Self {
        let geometry = Prelu::new(0, shape, shared_axes);
        assert_eq!(geometry.width, W, "PReLU: a sample of shape {shape:?} does not hold {W} values");
        assert_eq!(geometry.alphas, P, "PReLU: alpha for shape {shape:?} shared on {shared_axes:?} does not hold {P} values");
        PReLU { geometry }
    }

    /// The kernels' op over `rows` samples.
    fn op(&self, rows: usize) -> Prelu {
        Prelu { rows, ..self.geometry }
    }
}

impl<B: Backend, const W: usize, const P: usize> Layer<B, W, W> for PReLU<W, P> {
    /// `y = x > 0 ? x : alpha * x`.
    fn forward(&self, Forward { ctx, params, x, y, .. }: Forward<'_, B, W, W>) {
        ctx.device.prelu(&self.op(x.rows), x.view, B::sub(params, 0..P), y.view);
    }

    /// The alpha gradient (overwritten), then the input gradient when asked for.
    fn backward(&self, Backward { ctx, params, grads, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        let op = self.op(x.rows);
        let dy = B::freeze(&dy.view);
        ctx.device.prelu_alpha_grad(&op, x.view, B::shorten(&dy), B::split_mut(grads, P).0);
        if let Some(dx) = dx {
            ctx.device.prelu_backward(&op, x.view, B::sub(params, 0..P), dy, dx.view);
        }
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // Keras's numbers as Python printed them
mod tests {
    use super::PReLU;
    use crate::layers::layer::run_on_cpu;

    /// Keras 3.15.1 (KERAS_BACKEND=jax): `p = keras.layers.PReLU(shared_axes=[2])` built for
    /// `(None, 2, 3, 2)`, `p.set_weights([alpha.reshape(2, 1, 2)])`; `p(x)`, and the gradients of
    /// `jnp.sum(y * dy)` for x and alpha (`jax.grad` of `p.stateless_call`), for these float32
    /// `x`, `dy` reshaped to `(2, 2, 3, 2)` (`/tmp/actwork/gen.py`).
    #[test]
    fn matches_keras() {
        let alpha = [0.1, -0.2, 0.3, 0.5];
        #[rustfmt::skip]
        let x = [-2.0, 1.0, 0.0, -0.5, 3.0, -1.0, -4.0, -0.25, 0.5, -3.0, 0.0, 2.0,
                 1.5, -1.5, -2.5, 0.75, -0.125, 0.0, 2.5, -6.0, -1.0, -1.0, 4.0, -0.5];
        #[rustfmt::skip]
        let dy = [0.5, -1.0, 2.0, 1.5, -0.75, 1.25, 3.0, -2.0, 0.5, 1.0, -0.5, 0.25,
                  1.0, 2.0, -1.5, 0.5, 4.0, -3.0, 0.75, 1.5, -2.5, 0.125, 1.0, -1.0];
        #[rustfmt::skip]
        let y_keras = [-0.20000000298023224, 1.0, 0.0, 0.10000000149011612, 3.0, 0.20000000298023224, -1.2000000476837158, -0.125, 0.5, -1.5, 0.0, 2.0,
                       1.5, 0.30000001192092896, -0.25, 0.75, -0.012500000186264515, 0.0, 2.5, -3.0, -0.30000001192092896, -0.5, 4.0, -0.25];
        #[rustfmt::skip]
        let dx_keras = [0.05000000074505806, -1.0, 0.0, -0.30000001192092896, -0.75, -0.25, 0.9000000357627869, -1.0, 0.5, 0.5, 0.0, 0.25,
                        1.0, -0.4000000059604645, -0.15000000596046448, 0.5, 0.4000000059604645, 0.0, 0.75, 0.75, -0.75, 0.0625, 1.0, -0.5];
        let dalpha_keras = [2.25, -5.0, -9.5, -11.125];
        let layer = PReLU::<12, 4>::new(&[2, 3, 2], &[2]);
        let (y, dx, dalpha) = run_on_cpu(&layer, &alpha, &x, &dy);
        for j in 0..24 {
            assert!((y[j] - y_keras[j]).abs() <= 1e-6, "y[{j}] = {}, Keras {}", y[j], y_keras[j]);
            assert!((dx[j] - dx_keras[j]).abs() <= 1e-6, "dx[{j}] = {}, Keras {}", dx[j], dx_keras[j]);
        }
        assert_eq!(dalpha, dalpha_keras);
    }

    /// The weight's size follows Keras's shape: the sample's with the shared axes set to 1.
    #[test]
    fn alpha_sizes() {
        assert_eq!(PReLU::<60, 60>::new(&[3, 4, 5], &[]).geometry.alphas, 60);
        assert_eq!(PReLU::<60, 5>::new(&[3, 4, 5], &[1, 2]).geometry.alphas, 5);
        assert_eq!(PReLU::<60, 15>::new(&[3, 4, 5], &[2]).geometry.alphas, 15);
        assert_eq!(PReLU::<60, 1>::new(&[3, 4, 5], &[1, 2, 3]).geometry.alphas, 1);
    }

    #[test]
    #[should_panic(expected = "does not hold 4 values")]
    fn wrong_alpha_size_panics() {
        PReLU::<60, 4>::new(&[3, 4, 5], &[1, 2]);
    }
}
