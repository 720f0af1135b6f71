//! The activations' scalar definitions (Keras 3's), the reference for the SIMD kernels: the CPU
//! backend runs SIMD versions of the common ones and these for the rest.

use crate::backend::ops::Activation;

const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;
const LEAKY_SLOPE: f32 = 0.2;

/// The function at `x` (for [`Activation::Softmax`], use a row-wise kernel instead).
pub fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Linear | Activation::Softmax => x,
        // NaN stays NaN, as `max(x, 0)` in Keras.
        Activation::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => libm::tanhf(x),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                libm::expm1f(x)
            }
        }
        Activation::Selu => {
            if x > 0.0 {
                SELU_SCALE * x
            } else {
                SELU_SCALE * SELU_ALPHA * libm::expm1f(x)
            }
        }
        Activation::Softplus => softplus(x),
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Swish => x * sigmoid(x),
        // erfc keeps precision in the negative tail, where 1 + erf(x) cancels.
        Activation::Gelu => 0.5 * x * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2),
        Activation::LeakyRelu => {
            if x >= 0.0 {
                x
            } else {
                LEAKY_SLOPE * x
            }
        }
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Activation::Exponential => libm::expf(x),
        Activation::Mish => x * libm::tanhf(softplus(x)),
    }
}

/// The derivative `dy/dx`, given the input `x` (only read where [`Activation::needs_input`]) and the
/// output `y`. At the kinks it takes JAX's values (relu'(0) = 0, leaky_relu'(0) = 1,
/// relu6'(6) = 0). Not for softmax, whose Jacobian is not diagonal.
pub fn derivative(act: Activation, x: f32, y: f32) -> f32 {
    match act {
        Activation::Linear | Activation::Softmax => 1.0,
        Activation::Relu => {
            if y > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Tanh => 1.0 - y * y,
        // From x rather than y: `y + alpha` would cancel for very negative x.
        Activation::Elu => {
            if x > 0.0 {
                1.0
            } else {
                libm::expf(x)
            }
        }
        Activation::Selu => {
            if x > 0.0 {
                SELU_SCALE
            } else {
                SELU_SCALE * SELU_ALPHA * libm::expf(x)
            }
        }
        Activation::Softplus => -libm::expm1f(-y),
        Activation::Softsign => {
            let t = 1.0 - y.abs();
            t * t
        }
        Activation::Swish => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Gelu => {
            let cdf = 0.5 * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2);
            let pdf = libm::expf(-0.5 * x * x) * 0.398_942_3;
            cdf + x * pdf
        }
        Activation::LeakyRelu => {
            if y >= 0.0 {
                1.0
            } else {
                LEAKY_SLOPE
            }
        }
        Activation::Relu6 => {
            if y > 0.0 && y < 6.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::HardSigmoid => {
            if y > 0.0 && y < 1.0 {
                1.0 / 6.0
            } else {
                0.0
            }
        }
        Activation::Exponential => y,
        Activation::Mish => {
            let sp = softplus(x);
            let t = libm::tanhf(sp);
            t + x * (1.0 - t * t) * sigmoid(x)
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// `max(x, 0) + log1p(e^-|x|)`, JAX's stable form.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + libm::log1pf(libm::expf(-x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keras's values (its JAX backend's formulas) at NaN and the infinities: NaN stays NaN in
    /// every activation, and an infinity gives the formula's limit or the NaN that the formula
    /// makes (`inf / inf` in softsign, `-inf * 0` in swish, gelu and mish).
    #[test]
    fn keras_values_at_nan_and_infinities() {
        let nan = f32::NAN;
        let (inf, ninf) = (f32::INFINITY, f32::NEG_INFINITY);
        let table = [
            (Activation::Linear, inf, ninf),
            (Activation::Relu, inf, 0.0),
            (Activation::Sigmoid, 1.0, 0.0),
            (Activation::Tanh, 1.0, -1.0),
            (Activation::Elu, inf, -1.0),
            (Activation::Selu, inf, -SELU_SCALE * SELU_ALPHA),
            (Activation::Softplus, inf, 0.0),
            (Activation::Softsign, nan, nan),
            (Activation::Swish, inf, nan),
            (Activation::Gelu, inf, nan),
            (Activation::LeakyRelu, inf, ninf),
            (Activation::Relu6, 6.0, 0.0),
            (Activation::HardSigmoid, 1.0, 0.0),
            (Activation::Exponential, inf, 0.0),
            (Activation::Mish, inf, nan),
        ];
        assert_eq!(table.len() + 1, Activation::NAMES.len() - 1, "every activation but softmax (row-wise) and the silu alias");
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        for (act, at_inf, at_ninf) in table {
            assert!(apply(act, nan).is_nan(), "{act:?}(NaN) is {}", apply(act, nan));
            assert!(same(apply(act, inf), at_inf), "{act:?}(inf) is {}, Keras gives {at_inf}", apply(act, inf));
            assert!(same(apply(act, ninf), at_ninf), "{act:?}(-inf) is {}, Keras gives {at_ninf}", apply(act, ninf));
        }
    }

    /// The derivative at NaN is JAX's: relu, relu6 and hard_sigmoid select the gradient only
    /// where `x` is inside their linear piece (0 at NaN), leaky_relu's `where(x >= 0, ..)` takes
    /// the slope, linear passes it on, and every other derivative is NaN.
    #[test]
    fn derivatives_at_nan_are_jaxs() {
        for &(_, act) in Activation::NAMES {
            if act == Activation::Softmax {
                continue;
            }
            let d = derivative(act, f32::NAN, apply(act, f32::NAN));
            match act {
                Activation::Linear => assert_eq!(d, 1.0),
                Activation::Relu | Activation::Relu6 | Activation::HardSigmoid => assert_eq!(d, 0.0, "{act:?}"),
                Activation::LeakyRelu => assert_eq!(d, LEAKY_SLOPE),
                _ => assert!(d.is_nan(), "{act:?}'(NaN) is {d}"),
            }
        }
    }

    #[test]
    fn derivatives_match_central_differences() {
        for &(_, a) in Activation::NAMES {
            if a == Activation::Softmax {
                continue;
            }
            for i in -40..=40 {
                let x = i as f64 * 0.173 + 0.01;
                let h = 1e-3;
                let f = |x: f64| apply(a, x as f32) as f64;
                let numeric = (f(x + h) - f(x - h)) / (2.0 * h);
                let analytic = derivative(a, x as f32, apply(a, x as f32)) as f64;
                assert!((numeric - analytic).abs() < 2e-3 * (1.0 + analytic.abs()), "{a:?} at {x}: {numeric} vs {analytic}");
            }
        }
    }
}
