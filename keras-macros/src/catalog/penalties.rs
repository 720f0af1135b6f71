//! Regularizers (`l2(0.01)`, `l1(..)`, `l1_l2(l1 = .., l2 = ..)`) and constraints
//! (`max_norm(2.0)`, `non_neg()`, `unit_norm()`, `min_max_norm(..)`) as layer arguments,
//! checked here so that a bad factor is a compile error at the argument.

use super::names::suggest;
use super::{float, word};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Expr, ExprAssign, ExprCall};

/// A name with optional arguments: `l2`, `"l2"`, `l2(0.01)`, `l1_l2(l1 = 0.01)`.
fn name_and_args(e: &Expr) -> (String, Vec<&Expr>) {
    match e {
        Expr::Call(ExprCall { func, args, .. }) => (word(func).unwrap_or_default(), args.iter().collect()),
        other => (word(other).unwrap_or_default(), Vec::new()),
    }
}

/// The numeric arguments of `name(..)`, positional or `key = value`, over `defaults`.
pub fn numeric_args(name: &str, args: &[&Expr], keys: &[&str], defaults: &[f64], diag: &mut Diag) -> Option<Vec<f64>> {
    let mut out = defaults.to_vec();
    for (i, a) in args.iter().enumerate() {
        let (idx, value) = match a {
            Expr::Assign(ExprAssign { left, right, .. }) => match word(left).and_then(|k| keys.iter().position(|x| *x == k)) {
                Some(idx) => (idx, &**right),
                None => {
                    diag.error(
                        left,
                        format!("`{name}` has no argument `{}` (expected one of {})", left.to_token_stream(), keys.join(", ")),
                    );
                    return None;
                }
            },
            v if i < keys.len() => (i, *v),
            v => {
                let n = keys.len();
                diag.error(v, format!("`{name}` takes {n} argument{} ({})", if n == 1 { "" } else { "s" }, keys.join(", ")));
                return None;
            }
        };
        match float(value) {
            Some(v) if v.is_finite() => out[idx] = v,
            _ => {
                diag.error(value, format!("`{name}`'s `{}` expects a number, found `{}`", keys[idx], value.to_token_stream()));
                return None;
            }
        }
    }
    Some(out)
}

const REGULARIZERS: &[&str] = &["l1", "l2", "l1_l2"];

/// The runtime `Regularizer` for `e`; factors must be finite and non-negative.
pub fn regularizer(e: &Expr, diag: &mut Diag) -> Option<TokenStream> {
    let (name, args) = name_and_args(e);
    let p = match name.as_str() {
        // Keras's defaults: `l1()` and `l2()` use 0.01, `l1_l2()` uses 0 for both.
        "l1" => numeric_args(&name, &args, &["l1"], &[0.01], diag).map(|p| (p[0], 0.0)),
        "l2" => numeric_args(&name, &args, &["l2"], &[0.01], diag).map(|p| (0.0, p[0])),
        "l1_l2" => numeric_args(&name, &args, &["l1", "l2"], &[0.0, 0.0], diag).map(|p| (p[0], p[1])),
        _ => {
            let hint = suggest(&name, REGULARIZERS).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            let what = if name.is_empty() { e.to_token_stream().to_string() } else { name.clone() };
            diag.error(e, format!("unknown regularizer `{what}`; {hint}expected one of l1(factor), l2(factor), l1_l2(l1 = .., l2 = ..)"));
            return None;
        }
    };
    let (l1, l2) = p?;
    if l1 < 0.0 || l2 < 0.0 {
        diag.error(e, format!("`{name}` needs non-negative factors, found l1 = {l1}, l2 = {l2}"));
        return None;
    }
    let (l1, l2) = (l1 as f32, l2 as f32);
    Some(quote!(::keras::regularizers::Regularizer { l1: #l1, l2: #l2 }))
}

const CONSTRAINTS: &[&str] = &["max_norm", "non_neg", "unit_norm", "min_max_norm"];

/// The runtime `Constraint` for `e`, with Keras's defaults; norms are taken over axis 0 (the
/// inputs of each unit), Keras's default and the only axis supported.
pub fn constraint(e: &Expr, diag: &mut Diag) -> Option<TokenStream> {
    let (name, args) = name_and_args(e);
    let c = quote!(::keras::constraints::Constraint);
    let axis_zero = |p: &[f64], diag: &mut Diag| {
        if p[p.len() - 1] != 0.0 {
            diag.error(
                e,
                format!("`{name}` supports `axis = 0` only (the inputs of each unit, Keras's default), found axis = {}", p[p.len() - 1]),
            );
            return false;
        }
        true
    };
    match name.as_str() {
        "max_norm" => {
            let p = numeric_args(&name, &args, &["max_value", "axis"], &[2.0, 0.0], diag)?;
            if !axis_zero(&p, diag) {
                return None;
            }
            if p[0] <= 0.0 {
                diag.error(e, format!("`max_norm` needs max_value > 0, found {}", p[0]));
                return None;
            }
            let m = p[0] as f32;
            Some(quote!(#c::MaxNorm { max_value: #m }))
        }
        "non_neg" => {
            numeric_args(&name, &args, &[], &[], diag)?;
            Some(quote!(#c::NonNeg))
        }
        "unit_norm" => {
            let p = numeric_args(&name, &args, &["axis"], &[0.0], diag)?;
            if !axis_zero(&p, diag) {
                return None;
            }
            Some(quote!(#c::UnitNorm))
        }
        "min_max_norm" => {
            let p = numeric_args(&name, &args, &["min_value", "max_value", "rate", "axis"], &[0.0, 1.0, 1.0, 0.0], diag)?;
            if !axis_zero(&p, diag) {
                return None;
            }
            if p[0] < 0.0 || p[0] > p[1] || !(0.0..=1.0).contains(&p[2]) {
                diag.error(
                    e,
                    format!(
                        "`min_max_norm` needs 0 <= min_value <= max_value and rate in [0, 1], found min_value = {}, max_value = {}, rate = {}",
                        p[0], p[1], p[2]
                    ),
                );
                return None;
            }
            let (lo, hi, rate) = (p[0] as f32, p[1] as f32, p[2] as f32);
            Some(quote!(#c::MinMaxNorm { min_value: #lo, max_value: #hi, rate: #rate }))
        }
        _ => {
            let hint = suggest(&name, CONSTRAINTS).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            let what = if name.is_empty() { e.to_token_stream().to_string() } else { name.clone() };
            diag.error(e, format!("unknown constraint `{what}`; {hint}expected one of {}", CONSTRAINTS.join(", ")));
            None
        }
    }
}
