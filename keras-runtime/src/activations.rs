//! Activation functions, as Keras 3 defines them.
//!
//! [`Activation`] names a function at run time; the zero-sized types ([`Relu`], [`Sigmoid`], ...)
//! name it in a layer's type (`Dense<784, 32, Sigmoid>`), which is how generated code refers to it.
//! The scalar methods here are the reference definitions; the CPU backend runs SIMD versions of the
//! common ones and these for the rest.

use std::fmt;

/// An activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `x`.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `e^x / sum(e^x)` over the last axis.
    Softmax,
    /// `x` for `x > 0`, else `e^x - 1` (alpha 1).
    Elu,
    /// `scale * elu(x, alpha)` with Keras's self-normalizing constants.
    Selu,
    /// `log(1 + e^x)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x * sigmoid(x)`; Keras's `swish` and `silu`.
    Swish,
    /// `0.5 x (1 + erf(x / sqrt 2))` (exact form, Keras's default).
    Gelu,
    /// `x` for `x >= 0`, else `0.2 x` (the `leaky_relu` activation's slope).
    LeakyRelu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `e^x`.
    Exponential,
    /// `x * tanh(softplus(x))`.
    Mish,
}

const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;
const LEAKY_SLOPE: f32 = 0.2;

impl Activation {
    /// Every activation with its Keras name (`swish` and `silu` both name [`Activation::Swish`]).
    pub const NAMES: &'static [(&'static str, Activation)] = &[
        ("linear", Activation::Linear),
        ("relu", Activation::Relu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("softmax", Activation::Softmax),
        ("elu", Activation::Elu),
        ("selu", Activation::Selu),
        ("softplus", Activation::Softplus),
        ("softsign", Activation::Softsign),
        ("swish", Activation::Swish),
        ("silu", Activation::Swish),
        ("gelu", Activation::Gelu),
        ("leaky_relu", Activation::LeakyRelu),
        ("relu6", Activation::Relu6),
        ("hard_sigmoid", Activation::HardSigmoid),
        ("exponential", Activation::Exponential),
        ("mish", Activation::Mish),
    ];

    /// The activation with this Keras name.
    pub fn from_name(name: &str) -> Option<Activation> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, a)| a)
    }

    /// The Keras name.
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, a)| *a == self).map_or("linear", |(n, _)| n)
    }

    /// Whether the derivative needs the input `x` (it cannot be recovered from the output `y`).
    pub const fn needs_input(self) -> bool {
        matches!(self, Activation::Elu | Activation::Selu | Activation::Swish | Activation::Gelu | Activation::Mish)
    }

    /// The function at `x` (for [`Activation::Softmax`], use a row-wise kernel instead).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Linear | Activation::Softmax => x,
            Activation::Relu => x.max(0.0),
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

    /// The derivative `dy/dx`, given the input `x` (only read where [`Self::needs_input`]) and the
    /// output `y`. At the kinks it takes JAX's values (relu'(0) = 0, leaky_relu'(0) = 1,
    /// relu6'(6) = 0). Not for softmax, whose Jacobian is not diagonal.
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
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
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Activation {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        Activation::from_name(s).ok_or_else(|| crate::Error::Unknown {
            kind: "activation",
            name: s.to_string(),
            expected: Activation::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// `max(x, 0) + log1p(e^-|x|)`, JAX's stable form.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + libm::log1pf(libm::expf(-x.abs()))
}

/// An activation named in a layer's type.
pub trait ActivationFn: Copy + Default + Send + Sync + 'static {
    /// The function.
    const KIND: Activation;
}

macro_rules! activation_types {
    ($($(#[$doc:meta])* $ty:ident => $kind:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            pub struct $ty;
            impl ActivationFn for $ty {
                const KIND: Activation = Activation::$kind;
            }
        )*
    };
}

activation_types! {
    /// [`Activation::Linear`] as a type.
    Linear => Linear,
    /// [`Activation::Relu`] as a type.
    Relu => Relu,
    /// [`Activation::Sigmoid`] as a type.
    Sigmoid => Sigmoid,
    /// [`Activation::Tanh`] as a type.
    Tanh => Tanh,
    /// [`Activation::Softmax`] as a type.
    Softmax => Softmax,
    /// [`Activation::Elu`] as a type.
    Elu => Elu,
    /// [`Activation::Selu`] as a type.
    Selu => Selu,
    /// [`Activation::Softplus`] as a type.
    Softplus => Softplus,
    /// [`Activation::Softsign`] as a type.
    Softsign => Softsign,
    /// [`Activation::Swish`] as a type.
    Swish => Swish,
    /// [`Activation::Gelu`] as a type.
    Gelu => Gelu,
    /// [`Activation::LeakyRelu`] as a type.
    LeakyRelu => LeakyRelu,
    /// [`Activation::Relu6`] as a type.
    Relu6 => Relu6,
    /// [`Activation::HardSigmoid`] as a type.
    HardSigmoid => HardSigmoid,
    /// [`Activation::Exponential`] as a type.
    Exponential => Exponential,
    /// [`Activation::Mish`] as a type.
    Mish => Mish,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &(name, a) in Activation::NAMES {
            assert_eq!(Activation::from_name(name), Some(a));
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        assert!("relu7".parse::<Activation>().unwrap_err().to_string().contains("expected one of linear, relu"));
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
                let f = |x: f64| a.apply(x as f32) as f64;
                let numeric = (f(x + h) - f(x - h)) / (2.0 * h);
                let analytic = a.derivative(x as f32, a.apply(x as f32)) as f64;
                assert!((numeric - analytic).abs() < 2e-3 * (1.0 + analytic.abs()), "{a:?} at {x}: {numeric} vs {analytic}");
            }
        }
    }
}
