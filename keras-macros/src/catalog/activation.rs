//! `Activation(name)`: applies an activation function.

use super::{Args, Entry, Kind, Layer, Runtime, names};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::quote;

pub const SIGNATURE: (&[&str], usize) = (&["activation"], 1);

/// The registry's row.
pub const ENTRY: Entry =
    Entry { class: "Activation", signature: SIGNATURE, build: |call, args, diag| Activation::build(call, args, diag).map(Layer::new) };

pub struct Activation {
    pub activation: TokenStream,
}

impl Activation {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Activation> {
        match args.get("activation", SIGNATURE.0) {
            None => {
                diag.error(call, "Activation needs the name of its function: `Activation(relu)`");
                None
            }
            Some(a) => names::activation(&a.value, diag).map(|activation| Activation { activation }),
        }
    }
}

impl Kind for Activation {
    fn class(&self) -> &'static str {
        "Activation"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let act = &self.activation;
        vec![quote!(("activation", ::keras::model::ConfigValue::Activation(<#act as ::keras::activations::ActivationFn>::KIND)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let act = &self.activation;
        let ty = quote!(::keras::layers::Activation<#w, #act>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: w, out_width: w, rows_per_sample: input[..input.len() - 1].iter().product() }
    }
}
