//! `Dropout(rate, seed = N)`: inverted dropout in training, identity in inference.

use super::{Args, Entry, Kind, Layer, Runtime, float, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (&["rate", "seed"], 1);

/// The registry's row.
pub const ENTRY: Entry =
    Entry { class: "Dropout", signature: SIGNATURE, build: |call, args, diag| Dropout::build(call, args, diag).map(Layer::new) };

pub struct Dropout {
    pub rate: f64,
    seed: Option<u64>,
}

impl Dropout {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Dropout> {
        let (sig, _) = SIGNATURE;
        let rate = match args.get("rate", sig) {
            None => {
                diag.error(call, "Dropout needs a `rate`, the fraction of inputs to drop: `Dropout(0.5)`");
                None
            }
            Some(a) => match float(&a.value) {
                Some(r) if (0.0..1.0).contains(&r) => Some(r),
                Some(r) => {
                    diag.error(a, format!("Dropout's rate must be in [0, 1), found {r:?}"));
                    None
                }
                None => {
                    diag.error(a, format!("Dropout's `rate` expects a number in [0, 1), found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let seed = match args.get("seed", sig) {
            None => Some(None),
            Some(a) => match int(&a.value) {
                Some(s) if s >= 0 && s <= u64::MAX as i128 => Some(Some(s as u64)),
                _ => {
                    diag.error(a, format!("Dropout's `seed` expects a non-negative integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        Some(Dropout { rate: rate?, seed: seed? })
    }
}

impl Kind for Dropout {
    fn class(&self) -> &'static str {
        "Dropout"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let rate = self.rate;
        vec![quote!(("rate", ::keras::model::ConfigValue::Float(#rate)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let rate = self.rate as f32;
        let ty = quote!(::keras::layers::Dropout<#w>);
        let ctor = match self.seed {
            Some(seed) => quote!(<#ty>::seeded(#rate, #seed)),
            None => {
                let index = index as u64;
                quote!(<#ty>::new(#rate, #index))
            }
        };
        Runtime { ctor, ty, in_width: w, out_width: w, rows_per_sample: input[..input.len() - 1].iter().product() }
    }
}
