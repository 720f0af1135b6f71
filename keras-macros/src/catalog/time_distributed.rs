//! `TimeDistributed(layer)`: applies `layer` to every step of a sequence. The input's first axis
//! joins the batch, so the wrapped layer sees `batch * steps` samples of the remaining shape and
//! its runtime type is unchanged: only its rows per sample multiply by the steps.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, bind, classes, entry, fmt_shape, names};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Expr;

pub const SIGNATURE: (&[&str], usize) = (&["layer"], 1);

/// The registry's row.
pub const ENTRY: Entry = Entry {
    class: "TimeDistributed",
    signature: SIGNATURE,
    build: |call, args, diag| TimeDistributed::build(call, args, diag).map(Layer::new),
};

pub struct TimeDistributed {
    pub inner: Box<Layer>,
    /// The wrapped layer's `name = ".."` (its value and, for messages, the whole argument).
    pub inner_name: Option<(Expr, TokenStream)>,
    /// The wrapped layer's name, given by the checker (Keras names it before the wrapper).
    pub name: String,
}

impl TimeDistributed {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<TimeDistributed> {
        let Some(a) = args.get("layer", SIGNATURE.0) else {
            diag.error(call, "TimeDistributed needs the layer to apply at every step, as in `TimeDistributed(Dense(8))`");
            return None;
        };
        let Some(inner) = a.layer.as_deref() else {
            diag.error(
                a,
                format!("TimeDistributed expects a layer, as in `TimeDistributed(Dense(8))`, found `{}`", a.value.to_token_stream()),
            );
            return None;
        };
        let class_name = inner.kind.to_string();
        let Some(class) = entry(&class_name).filter(|_| inner.path.is_none()).map(|e| e.class) else {
            let classes = classes();
            if super::custom::Custom::is_candidate(inner, &classes) {
                diag.error(
                    &inner.kind,
                    format!(
                        "TimeDistributed wraps the layers keras-rs knows; a custom layer such as `{class_name}` already maps every position of its input's last axis: call it without TimeDistributed"
                    ),
                );
                return None;
            }
            let hint = names::suggest(&class_name, &classes).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            diag.error(
                &inner.kind,
                format!("unknown layer `{class_name}`; {hint}the layers keras-rs knows are {}", classes[1..].join(", ")),
            );
            return None;
        };
        let (signature, positional) = Layer::signature(class);
        let inner_args = bind(class, inner, signature, positional, true, diag);
        if let Some(a) = inner_args.input {
            diag.error(a, "give the input shape to TimeDistributed (`in = (steps, ..)`) or to `Input`, not to the layer it wraps");
        }
        if let Some(a) = inner_args.params {
            diag.error(a, "put `params` on TimeDistributed, not on the layer it wraps");
        }
        if class == "TimeDistributed" {
            diag.error(&inner.kind, "TimeDistributed cannot wrap another TimeDistributed: reshape the steps into one axis first");
            return None;
        }
        if class == "Normalization" {
            // Its statistics would be adapted and named inside the wrapper; on the sequence itself
            // the layer keeps the same per-feature statistics.
            diag.error(
                &inner.kind,
                "TimeDistributed(Normalization) is not supported: apply Normalization to the sequence itself, \
                 whose last axis it normalizes with the same statistics at every step",
            );
            return None;
        }
        if class == "BatchNormalization" {
            // Keras normalizes each step over the batch alone (its statistics, and T updates of the
            // moving ones per batch); folding the steps into the batch would not match it.
            diag.error(&inner.kind, "TimeDistributed(BatchNormalization) is not supported: Keras normalizes each step separately");
            return None;
        }
        if matches!(class, "Embedding" | "SimpleRNN" | "LSTM" | "GRU" | "Bidirectional") {
            // Embedding reads ids only as a model's first layer (where they are checked), and a
            // recurrent layer's weights live in nested groups a wrapper does not model.
            let why = if class == "Embedding" {
                "Embedding must be the model's first layer, where its ids are checked; on its own it already embeds every position"
            } else {
                "keras-rs does not wrap recurrent layers"
            };
            diag.error(&inner.kind, format!("TimeDistributed({class}) is not supported: {why}"));
            return None;
        }
        let layer = Layer::build(class, inner, &inner_args, diag)?;
        let inner_name = inner_args.name.map(|a| (a.value.clone(), a.to_token_stream()));
        Some(TimeDistributed { inner: Box::new(layer), inner_name, name: String::new() })
    }
}

impl Kind for TimeDistributed {
    fn class(&self) -> &'static str {
        "TimeDistributed"
    }

    /// The wrapped layer's output shape for one step, the steps in front.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        if input.len() < 2 {
            return Err(format!(
                "TimeDistributed expects an input with a time axis, at least 2-D per sample (steps, ..), found {}",
                fmt_shape(input)
            ));
        }
        let step = self.inner.output_shape(&input[1..]).map_err(|e| {
            format!("TimeDistributed applies its layer to each step of {}, shaped {}: {e}", fmt_shape(input), fmt_shape(&input[1..]))
        })?;
        Ok(std::iter::once(input[0]).chain(step).collect())
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        self.inner.weights(&input[1..])
    }

    /// Keras's TimeDistributed runs the wrapped layer's `call`, which skips its activity
    /// regularizer: none here either.
    fn config(&self, input: &[usize]) -> Vec<TokenStream> {
        let (class, inner) = (self.inner.class(), self.inner.config(input.get(1..).unwrap_or(&[])));
        vec![quote::quote!(("layer", ::keras::model::ConfigValue::Layer(#class, &[#(#inner),*])))]
    }

    fn runtime(&self, input: &[usize], output: &[usize], index: usize) -> Runtime {
        let mut rt = self.inner.runtime(&input[1..], &output[1..], index);
        rt.rows_per_sample *= input[0];
        rt
    }
}
