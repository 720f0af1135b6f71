//! `Rescaling(scale, offset = 0.0)`: `x * scale + offset`, any input shape, no weights.

use super::{Args, Entry, Kind, Layer, Runtime, float};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (&["scale", "offset"], 2);

/// The registry's row for `Rescaling`.
pub const ENTRY: Entry =
    Entry { class: "Rescaling", signature: SIGNATURE, build: |call, args, diag| Rescaling::build(call, args, diag).map(Layer::new) };

pub struct Rescaling {
    /// As written, in f64 (what Keras's config holds); the layer computes in f32.
    pub scale: f64,
    pub offset: f64,
}

impl Rescaling {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Rescaling> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let mut number = |key: &str, default: Option<f64>| match args.get(key, sig) {
            None => {
                if default.is_none() {
                    diag.error(call, "Rescaling needs `scale`, the factor every value is multiplied by: `Rescaling(1.0 / 255.0)`");
                }
                default
            }
            Some(a) => match float(&a.value) {
                Some(v) if v.is_finite() && (v as f32).is_finite() => Some(v),
                _ => {
                    diag.error(
                        a,
                        format!("Rescaling's `{key}` expects a finite number, as in `1.0 / 255.0`, found `{}`", a.value.to_token_stream()),
                    );
                    None
                }
            },
        };
        let scale = number("scale", None);
        let offset = number("offset", Some(0.0));
        if diag.len() > errors {
            return None;
        }
        Some(Rescaling { scale: scale?, offset: offset? })
    }
}

impl Kind for Rescaling {
    fn class(&self) -> &'static str {
        "Rescaling"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (scale, offset) = (self.scale, self.offset);
        vec![quote!(("scale", ::keras::model::ConfigValue::Float(#scale))), quote!(("offset", ::keras::model::ConfigValue::Float(#offset)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let (scale, offset) = (self.scale as f32, self.offset as f32);
        let ty = quote!(::keras::layers::Rescaling<#w>);
        Runtime {
            ctor: quote!(<#ty>::new(#scale, #offset)),
            ty,
            in_width: w,
            out_width: w,
            rows_per_sample: input[..input.len() - 1].iter().product(),
        }
    }
}
