//! `PReLU(alpha_initializer = "zeros", alpha_regularizer = .., alpha_constraint = ..,
//! shared_axes = None)`: `x` where positive, else `alpha * x`, with a learned `alpha` per
//! position of the per-sample shape, shared along `shared_axes` (Keras's 1-based axes: for a
//! feature map `shared_axes = [1, 2]` learns one slope per channel).

use super::conv2d::WeightArgs;
use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, fmt_shape, int, int_list};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Expr;

pub const SIGNATURE: (&[&str], usize) = (&["alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"], 0);

/// The registry's row.
pub const ENTRY: Entry = Entry { class: "PReLU", signature: SIGNATURE, build: |_, args, diag| PRelu::build(args, diag).map(Layer::new) };

pub struct PRelu {
    alpha: WeightArgs,
    /// Keras's `shared_axes` (axis 1 is the first per-sample axis); `None` shares nothing.
    shared_axes: Option<Vec<usize>>,
}

impl PRelu {
    fn build(args: &Args<'_>, diag: &mut Diag) -> Option<PRelu> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let mut alpha = WeightArgs::parse("alpha", args, sig, diag);
        if let Some(alpha) = &mut alpha
            && args.get("alpha_initializer", sig).is_none()
        {
            alpha.init = quote!(::keras::initializers::Initializer::Zeros);
        }
        let shared_axes = match args.get("shared_axes", sig) {
            None => Some(None),
            Some(a) if super::word(&a.value).as_deref() == Some("None") => Some(None),
            // `[]` shares nothing, as None (Keras stores either).
            Some(a) if matches!(&a.value, Expr::Array(arr) if arr.elems.is_empty()) => Some(None),
            Some(a) => {
                let items: Vec<&Expr> = match &a.value {
                    Expr::Array(arr) => arr.elems.iter().collect(),
                    Expr::Tuple(t) => t.elems.iter().collect(),
                    Expr::Paren(p) => vec![&*p.expr],
                    other => vec![other],
                };
                let axes: Option<Vec<usize>> = items.iter().map(|e| int(e).filter(|v| *v >= 1 && *v <= 64).map(|v| v as usize)).collect();
                if axes.is_none() || items.is_empty() {
                    diag.error(
                        a,
                        format!(
                            "PReLU's `shared_axes` expects axes counted from 1 (the first axis after the batch), as in `shared_axes = [1, 2]`, found `{}`",
                            a.value.to_token_stream()
                        ),
                    );
                }
                axes.map(Some)
            }
        };
        if diag.len() > errors {
            return None;
        }
        Some(PRelu { alpha: alpha?, shared_axes: shared_axes? })
    }

    /// The shape of `alpha` for a per-sample input shape: the input's, shared axes set to 1.
    fn alpha_shape(&self, input: &[usize]) -> Shape {
        let mut shape = input.to_vec();
        for &axis in self.shared_axes.iter().flatten() {
            shape[axis - 1] = 1;
        }
        shape
    }
}

impl Kind for PRelu {
    fn class(&self) -> &'static str {
        "PReLU"
    }

    /// The shape is kept; every shared axis must be an axis of the input.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        if let Some(axis) = self.shared_axes.iter().flatten().find(|a| **a > input.len()) {
            return Err(format!(
                "PReLU's shared axis {axis} is not an axis of its input {}, whose axes after the batch are 1 to {}",
                fmt_shape(input),
                input.len()
            ));
        }
        Ok(input.to_vec())
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        vec![self.alpha.weight("alpha", self.alpha_shape(input))]
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let shared = match &self.shared_axes {
            None => quote!(::keras::model::ConfigValue::None),
            Some(axes) => int_list(axes),
        };
        vec![quote!(("shared_axes", #shared))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let n: usize = input.iter().product();
        let p: usize = self.alpha_shape(input).iter().product();
        let shared = self.shared_axes.clone().unwrap_or_default();
        let ty = quote!(::keras::layers::PReLU<#n, #p>);
        Runtime { ctor: quote!(<#ty>::new(&[#(#input),*], &[#(#shared),*])), ty, in_width: n, out_width: n, rows_per_sample: 1 }
    }
}
