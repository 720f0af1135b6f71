//! `Lambda`: a user's elementwise function as a layer, differentiated by dual numbers.

use super::{Backward, Forward, Layer};
use crate::autodiff::Dual;
use crate::backend::Backend;

/// `y = f(x)` value by value over rows of width `W`, for a function written once over
/// [`Real`](crate::autodiff::Real) numbers (the macros' `Lambda(|x| x * x.sigmoid())`): `f`
/// evaluated in `f32` gives the output, and on a forward-mode [`Dual`] number its derivative,
/// so `dx = dy * f'(x)` with no gradient written by hand. No weights.
///
/// It runs on the host: on a device its input (and in training its output gradient) is copied
/// to the host and the result back, so a training step through a `Lambda` is not recorded as a
/// CUDA graph.
#[derive(Clone, Copy)]
pub struct Lambda<const W: usize> {
    value: fn(f32) -> f32,
    dual: fn(Dual) -> Dual,
}

impl<const W: usize> Lambda<W> {
    /// Trainable floats.
    pub const PARAMS: usize = 0;
    /// Per-row scratch kept for backward: none (backward reads the input).
    pub const SCRATCH: usize = 0;

    /// The layer of a function given twice, at `f32` and at [`Dual`] (the macros pass one
    /// generic function instantiated at both).
    pub const fn new(value: fn(f32) -> f32, dual: fn(Dual) -> Dual) -> Self {
        Lambda { value, dual }
    }

    /// `f(x)`.
    pub fn value(&self, x: f32) -> f32 {
        (self.value)(x)
    }

    /// `f'(x)`, by a dual number.
    pub fn derivative(&self, x: f32) -> f32 {
        (self.dual)(Dual::variable(x)).d
    }
}

/// A view's `len` values on the host; a failed copy is recorded on the device (the values are
/// then NaN) and surfaces at its next read, as a kernel's error does.
fn read<B: Backend>(dev: &B, v: B::View<'_>, len: usize) -> Vec<f32> {
    let mut host = vec![f32::NAN; len];
    if let Err(e) = dev.download(B::sub(v, 0..len), &mut host) {
        dev.fail(e);
    }
    host
}

impl<B: Backend, const W: usize> Layer<B, W, W> for Lambda<W> {
    /// `y = f(x)`.
    fn forward(&self, Forward { ctx, x, y, .. }: Forward<'_, B, W, W>) {
        let len = x.rows * W;
        let mut host = read(ctx.device, x.view, len);
        for v in &mut host {
            *v = self.value(*v);
        }
        if let Err(e) = ctx.device.upload(&host, B::split_mut(y.view, len).0) {
            ctx.device.fail(e);
        }
    }

    /// `dx = dy * f'(x)`.
    fn backward(&self, Backward { ctx, x, dy, dx, .. }: Backward<'_, B, W, W>) {
        let Some(dx) = dx else { return };
        let len = x.rows * W;
        let xs = read(ctx.device, x.view, len);
        let mut g = read(ctx.device, B::freeze(&dy.view), len);
        for (g, &x) in g.iter_mut().zip(&xs) {
            *g *= self.derivative(x);
        }
        if let Err(e) = ctx.device.upload(&g, B::split_mut(dx.view, len).0) {
            ctx.device.fail(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::Real;

    fn swish<T: Real>(x: T) -> T {
        x * x.sigmoid()
    }

    #[test]
    fn value_and_derivative_of_a_generic_function() {
        let l = Lambda::<1>::new(swish::<f32>, swish::<Dual>);
        for x in [-3.0f32, -0.5, 0.0, 0.7, 4.0] {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((l.value(x) - x * s).abs() < 1e-6);
            assert!((l.derivative(x) - (s + x * s * (1.0 - s))).abs() < 1e-5, "{x}");
        }
        assert!(l.value(f32::NAN).is_nan());
    }
}
