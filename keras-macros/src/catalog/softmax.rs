//! `Softmax(axis = -1)`: the softmax along the last axis, any input shape, no weights.

use super::{Args, Entry, Kind, Layer, Runtime, fmt_shape, int};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (&["axis"], 1);

/// The registry's row.
pub const ENTRY: Entry =
    Entry { class: "Softmax", signature: SIGNATURE, build: |_, args, diag| Softmax::build(args, diag).map(Layer::new) };

pub struct Softmax {
    /// As written: `-1`, or the last axis counted from the batch axis (0).
    axis: i64,
}

impl Softmax {
    fn build(args: &Args<'_>, diag: &mut Diag) -> Option<Softmax> {
        match args.get("axis", SIGNATURE.0) {
            None => Some(Softmax { axis: -1 }),
            Some(a) => match int(&a.value) {
                Some(v) if v == -1 || (v >= 1 && v <= i64::MAX as i128) => Some(Softmax { axis: v as i64 }),
                _ => {
                    diag.error(
                        a,
                        format!(
                            "Softmax's `axis` expects one axis, -1 (the last) or its index counted from the batch axis 0, found `{}`",
                            a.value.to_token_stream()
                        ),
                    );
                    None
                }
            },
        }
    }
}

impl Kind for Softmax {
    fn class(&self) -> &'static str {
        "Softmax"
    }

    /// The shape is kept; keras-rs takes the softmax along the last axis only (Keras's default).
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let last = input.len() as i64;
        if self.axis != -1 && self.axis != last {
            return Err(format!(
                "Softmax runs along the last axis (axis = -1 or {last}) of its input {}; found axis = {}",
                fmt_shape(input),
                self.axis
            ));
        }
        Ok(input.to_vec())
    }

    /// `axis`: the last axis, which a file may write as -1 or as its index.
    fn config(&self, input: &[usize]) -> Vec<TokenStream> {
        let last = input.len();
        vec![quote!(("axis", ::keras::model::ConfigValue::LastAxis(#last)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let ty = quote!(::keras::layers::Activation<#w, ::keras::activations::Softmax>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: w, out_width: w, rows_per_sample: input[..input.len() - 1].iter().product() }
    }
}
