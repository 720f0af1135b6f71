//! Activation functions, as Keras 3 defines them.
//!
//! [`Activation`] names a function at run time; the zero-sized types ([`Relu`], [`Sigmoid`], ...)
//! name it in a layer's type (`Dense<784, 32, Sigmoid>`), which is how generated code refers to it.
//! The scalar methods here are the reference definitions; the CPU backend runs SIMD versions of the
//! common ones and these for the rest.

use std::fmt;

pub use crate::backend::ops::Activation;

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
}
