//! `ELU(alpha = 1.0)`: `x` where positive, else `alpha * (exp(x) - 1)`; any input shape, no
//! weights.

use super::{Args, Entry, Kind, Layer, Runtime, finite};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::quote;

pub const SIGNATURE: (&[&str], usize) = (&["alpha"], 1);

/// The registry's row.
pub const ENTRY: Entry = Entry { class: "ELU", signature: SIGNATURE, build: |_, args, diag| Elu::build(args, diag).map(Layer::new) };

pub struct Elu {
    /// As written (f64, what Keras's config holds).
    alpha: f64,
}

impl Elu {
    fn build(args: &Args<'_>, diag: &mut Diag) -> Option<Elu> {
        finite("ELU", "alpha", args.get("alpha", SIGNATURE.0), 1.0, diag).map(|alpha| Elu { alpha })
    }
}

impl Kind for Elu {
    fn class(&self) -> &'static str {
        "ELU"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let alpha = self.alpha;
        vec![quote!(("alpha", ::keras::model::ConfigValue::Float(#alpha)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let alpha = self.alpha as f32;
        let ty = quote!(::keras::layers::ELU<#w>);
        Runtime {
            ctor: quote!(<#ty>::new(#alpha)),
            ty,
            in_width: w,
            out_width: w,
            rows_per_sample: input[..input.len() - 1].iter().product(),
        }
    }
}
