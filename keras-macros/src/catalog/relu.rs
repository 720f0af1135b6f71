//! `ReLU(max_value = None, negative_slope = 0.0, threshold = 0.0)` and
//! `LeakyReLU(negative_slope = 0.3)`: the rectifier layers, any input shape, no weights. Both run
//! the runtime's `ReLU`: `x` above `threshold` (capped at `max_value`), else
//! `negative_slope * (x - threshold)`.

use super::{Args, Entry, Kind, Layer, Runtime, non_negative, word};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::quote;

/// `ReLU`'s parameters, all positional as in Keras.
pub const SIGNATURE: (&[&str], usize) = (&["max_value", "negative_slope", "threshold"], 3);
/// `LeakyReLU`'s.
pub const LEAKY_SIGNATURE: (&[&str], usize) = (&["negative_slope"], 1);

/// The registry's row for `ReLU`.
pub const RELU: Entry = Entry { class: "ReLU", signature: SIGNATURE, build: |_, args, diag| Relu::plain(args, diag).map(Layer::new) };
/// The registry's row for `LeakyReLU`.
pub const LEAKY_RELU: Entry =
    Entry { class: "LeakyReLU", signature: LEAKY_SIGNATURE, build: |call, args, diag| Relu::leaky(call, args, diag).map(Layer::new) };

/// A `ReLU` or a `LeakyReLU`, its numbers as written (f64, what Keras's config holds).
pub struct Relu {
    leaky: bool,
    /// `None` for no cap.
    max_value: Option<f64>,
    negative_slope: f64,
    threshold: f64,
}

impl Relu {
    fn plain(args: &Args<'_>, diag: &mut Diag) -> Option<Relu> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let max_value = match args.get("max_value", sig) {
            Some(a) if word(&a.value).as_deref() != Some("None") => non_negative("ReLU", "max_value", Some(a), 0.0, diag).map(Some),
            _ => Some(None),
        };
        let negative_slope = non_negative("ReLU", "negative_slope", args.get("negative_slope", sig), 0.0, diag);
        let threshold = non_negative("ReLU", "threshold", args.get("threshold", sig), 0.0, diag);
        if diag.len() > errors {
            return None;
        }
        Some(Relu { leaky: false, max_value: max_value?, negative_slope: negative_slope?, threshold: threshold? })
    }

    fn leaky(_call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Relu> {
        let negative_slope = non_negative("LeakyReLU", "negative_slope", args.get("negative_slope", LEAKY_SIGNATURE.0), 0.3, diag)?;
        Some(Relu { leaky: true, max_value: None, negative_slope, threshold: 0.0 })
    }
}

impl Kind for Relu {
    fn class(&self) -> &'static str {
        if self.leaky { "LeakyReLU" } else { "ReLU" }
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let v = quote!(::keras::model::ConfigValue);
        let slope = self.negative_slope;
        if self.leaky {
            return vec![quote!(("negative_slope", #v::Float(#slope)))];
        }
        let max = match self.max_value {
            Some(m) => quote!(#v::Float(#m)),
            None => quote!(#v::None),
        };
        let threshold = self.threshold;
        vec![quote!(("max_value", #max)), quote!(("negative_slope", #v::Float(#slope))), quote!(("threshold", #v::Float(#threshold)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let max = match self.max_value {
            Some(m) => {
                let m = m as f32;
                quote!(#m)
            }
            None => quote!(::core::primitive::f32::INFINITY),
        };
        let (slope, threshold) = (self.negative_slope as f32, self.threshold as f32);
        let ty = quote!(::keras::layers::ReLU<#w>);
        // LeakyReLU is Keras's `leaky_relu` (its gradient at 0 is 1, even with a slope of 0).
        let ctor = if self.leaky { quote!(<#ty>::leaky(#slope)) } else { quote!(<#ty>::new(#max, #slope, #threshold)) };
        Runtime { ctor, ty, in_width: w, out_width: w, rows_per_sample: input[..input.len() - 1].iter().product() }
    }
}
