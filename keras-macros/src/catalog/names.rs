//! Activation and initializer names, and "did you mean" suggestions.

use super::word;
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};
use syn::{Expr, ExprCall};

/// Keras activation names and the runtime type of each.
pub const ACTIVATIONS: &[(&str, &str)] = &[
    ("linear", "Linear"),
    ("relu", "Relu"),
    ("sigmoid", "Sigmoid"),
    ("tanh", "Tanh"),
    ("softmax", "Softmax"),
    ("elu", "Elu"),
    ("selu", "Selu"),
    ("softplus", "Softplus"),
    ("softsign", "Softsign"),
    ("swish", "Swish"),
    ("silu", "Swish"),
    ("gelu", "Gelu"),
    ("leaky_relu", "LeakyRelu"),
    ("relu6", "Relu6"),
    ("hard_sigmoid", "HardSigmoid"),
    ("exponential", "Exponential"),
    ("mish", "Mish"),
];

/// The runtime activation type for `e` (`relu` or `"relu"`).
pub fn activation(e: &Expr, diag: &mut Diag) -> Option<TokenStream> {
    let valid = || ACTIVATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    let Some(name) = word(e) else {
        diag.error(
            e,
            format!(
                "expected an activation name, such as `relu`, found `{}` (expected one of {})",
                e.to_token_stream(),
                valid().join(", ")
            ),
        );
        return None;
    };
    match ACTIVATIONS.iter().find(|(n, _)| *n == name) {
        Some((_, ty)) => {
            let ty = format_ident!("{}", ty);
            Some(quote!(::keras::activations::#ty))
        }
        None => {
            let hint = suggest(&name, &valid()).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            diag.error(e, format!("unknown activation `{name}`; {hint}expected one of {}", valid().join(", ")));
            None
        }
    }
}

const INITIALIZERS: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "random_uniform",
    "random_normal",
    "truncated_normal",
    "orthogonal",
    "constant",
];

/// The runtime `Initializer` for `e`: a name (`he_normal`, `"zeros"`) or a call with arguments
/// (`constant(0.1)`, `random_normal(mean = 0.0, stddev = 0.02)`).
pub fn initializer(e: &Expr, diag: &mut Diag) -> Option<TokenStream> {
    let init = quote!(::keras::initializers::Initializer);
    let (name, call_args): (String, Vec<&Expr>) = match e {
        Expr::Call(ExprCall { func, args, .. }) => match word(func) {
            Some(n) => (n, args.iter().collect()),
            None => (String::new(), Vec::new()),
        },
        other => (word(other).unwrap_or_default(), Vec::new()),
    };
    let mut params = |keys: &[&str], defaults: &[f64]| super::penalties::numeric_args(&name, &call_args, keys, defaults, diag);
    let f = |v: f64| v as f32;
    Some(match name.as_str() {
        "glorot_uniform" if call_args.is_empty() => quote!(#init::GlorotUniform),
        "glorot_normal" if call_args.is_empty() => quote!(#init::GlorotNormal),
        "he_normal" if call_args.is_empty() => quote!(#init::HeNormal),
        "he_uniform" if call_args.is_empty() => quote!(#init::HeUniform),
        "lecun_normal" if call_args.is_empty() => quote!(#init::LecunNormal),
        "lecun_uniform" if call_args.is_empty() => quote!(#init::LecunUniform),
        "zeros" if call_args.is_empty() => quote!(#init::Zeros),
        "ones" if call_args.is_empty() => quote!(#init::Ones),
        "orthogonal" => {
            let p = params(&["gain"], &[1.0])?;
            let g = f(p[0]);
            quote!(#init::Orthogonal { gain: #g })
        }
        "constant" => {
            let p = params(&["value"], &[0.0])?;
            let v = f(p[0]);
            quote!(#init::Constant(#v))
        }
        "random_uniform" => {
            let p = params(&["minval", "maxval"], &[-0.05, 0.05])?;
            if p[0] >= p[1] {
                diag.error(e, format!("`random_uniform` needs minval < maxval, found minval = {}, maxval = {}", p[0], p[1]));
                return None;
            }
            let (a, b) = (f(p[0]), f(p[1]));
            quote!(#init::RandomUniform { minval: #a, maxval: #b })
        }
        "random_normal" | "truncated_normal" => {
            let p = params(&["mean", "stddev"], &[0.0, 0.05])?;
            if p[1] <= 0.0 {
                diag.error(e, format!("`{name}` needs stddev > 0, found {}", p[1]));
                return None;
            }
            let (m, s) = (f(p[0]), f(p[1]));
            if name == "random_normal" {
                quote!(#init::RandomNormal { mean: #m, stddev: #s })
            } else {
                quote!(#init::TruncatedNormal { mean: #m, stddev: #s })
            }
        }
        _ => {
            let hint = if name.is_empty() { None } else { suggest(&name, INITIALIZERS) }
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            let what = if name.is_empty() { e.to_token_stream().to_string() } else { name.clone() };
            diag.error(e, format!("unknown initializer `{what}`; {hint}expected one of {} (`constant(v)`, `random_normal(mean, stddev)`, .. take arguments)", INITIALIZERS.join(", ")));
            return None;
        }
    })
}

pub use keras_naming::suggest;
