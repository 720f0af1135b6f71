//! `Bidirectional(LSTM(..) | GRU(..) | SimpleRNN(..), merge_mode = "concat" | "sum" | "mul" |
//! "ave")`: the wrapped recurrent layer and a copy reading the sequence the other way, named
//! `forward_<name>` and `backward_<name>` as Keras names them, their outputs merged.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, bind, entry, names, recurrent, word};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};

/// Parameters besides `in`, `name`, `params`; both may be positional, as in Keras.
pub const SIGNATURE: (&[&str], usize) = (&["layer", "merge_mode"], 2);

const MODES: &[&str] = &["concat", "sum", "mul", "ave"];

/// The registry's row.
pub const ENTRY: Entry = Entry {
    class: "Bidirectional",
    signature: SIGNATURE,
    build: |call, args, diag| Bidirectional::build(call, args, diag).map(Layer::new),
};

pub struct Bidirectional {
    /// The wrapped recurrent layer.
    pub inner: Box<recurrent::Recurrent>,
    /// The wrapped layer's name (`lstm` unless it is given one).
    /// The wrapped layer's name (`forward_<name>`, `backward_<name>` in weight names): given,
    /// else the class's next default name, which the checker assigns (`inner_named` false).
    pub inner_name: String,
    /// Whether the wrapped layer was given a `name`.
    pub inner_named: bool,
    merge: &'static str,
}

impl Bidirectional {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Bidirectional> {
        let (sig, _) = SIGNATURE;
        let merge = match args.get("merge_mode", sig) {
            None => Some("concat"),
            Some(a) => match word(&a.value).and_then(|w| MODES.iter().find(|m| **m == w)) {
                Some(m) => Some(*m),
                None => {
                    diag.error(
                        a,
                        format!(
                            "Bidirectional's `merge_mode` expects one of \"concat\", \"sum\", \"mul\", \"ave\", found `{}`",
                            a.value.to_token_stream()
                        ),
                    );
                    None
                }
            },
        };
        let Some(a) = args.get("layer", sig) else {
            diag.error(call, "Bidirectional needs the recurrent layer to run both ways, as in `Bidirectional(LSTM(32))`");
            return None;
        };
        let Some(inner) = a.layer.as_deref() else {
            diag.error(
                a,
                format!("Bidirectional expects a recurrent layer, as in `Bidirectional(LSTM(32))`, found `{}`", a.value.to_token_stream()),
            );
            return None;
        };
        let class_name = inner.kind.to_string();
        let kind = match class_name.as_str() {
            "SimpleRNN" => recurrent::Cell::Simple,
            "LSTM" => recurrent::Cell::Lstm,
            "GRU" => recurrent::Cell::Gru,
            other => {
                let known = entry(other).is_some();
                let hint = if known {
                    String::new()
                } else {
                    names::suggest(other, &["LSTM", "GRU", "SimpleRNN"]).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
                };
                diag.error(&inner.kind, format!("Bidirectional wraps a recurrent layer (LSTM, GRU or SimpleRNN), found `{other}`{hint}"));
                return None;
            }
        };
        let (signature, positional) = Layer::signature(&class_name);
        let inner_args = bind(&class_name, inner, signature, positional, true, diag);
        if let Some(a) = inner_args.input {
            diag.error(a, "give the input shape to Bidirectional (`in = (steps, features)`) or to `Input`, not to the layer it wraps");
        }
        if let Some(a) = inner_args.params {
            diag.error(a, "put `params` on Bidirectional, not on the layer it wraps");
        }
        let inner_name = match inner_args.name {
            None => Some(Layer::snake(&class_name)),
            Some(a) => match &a.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) if !s.value().is_empty() && !s.value().contains('/') => {
                    Some(s.value())
                }
                other => {
                    diag.error(a, format!("`name` expects a non-empty string without `/`, found `{}`", other.to_token_stream()));
                    None
                }
            },
        };
        if let Some(a) = inner_args.get("go_backwards", signature)
            && super::boolean(&a.value) == Some(true)
        {
            diag.error(a, "the layer Bidirectional wraps must read forwards (Keras refuses `go_backwards = true` here): its copy reads the sequence backwards");
        }
        let layer = recurrent::Recurrent::build(kind, inner, &inner_args, diag)?;
        let inner_named = inner_args.name.is_some();
        Some(Bidirectional { inner: Box::new(layer), inner_name: inner_name?, inner_named, merge: merge? })
    }
}

impl Kind for Bidirectional {
    fn class(&self) -> &'static str {
        "Bidirectional"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let mut out = self.inner.output_shape(input).map_err(|e| format!("Bidirectional: {e}"))?;
        if self.merge == "concat" {
            *out.last_mut().expect("recurrent outputs have a units axis") *= 2;
        }
        Ok(out)
    }

    /// The wrapped layer's weights twice, `forward_<name>/..` then `backward_<name>/..`.
    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let inner = self.inner.weights(input);
        let named = |dir: &str, w: &Weight| Weight {
            name: Box::leak(format!("{dir}_{}/{}", self.inner_name, w.name).into_boxed_str()),
            shape: w.shape.clone(),
            trainable: w.trainable,
            init: w.init.clone(),
            regularizer: w.regularizer.clone(),
            constraint: w.constraint.clone(),
        };
        inner.iter().map(|w| named("forward", w)).chain(inner.iter().map(|w| named("backward", w))).collect()
    }

    /// `merge_mode`, and the wrapped layer's class and entries as `layer.class_name`, `layer.units`, ..
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (merge, class) = (self.merge, self.inner.kind.class());
        let mut out = vec![
            quote!(("merge_mode", ::keras::model::ConfigValue::Str(#merge))),
            quote!(("layer.class_name", ::keras::model::ConfigValue::Str(#class))),
        ];
        out.extend(self.inner.config_entries().into_iter().map(|(key, value)| {
            let key = format!("layer.{key}");
            quote!((#key, #value))
        }));
        out
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        let half = self.inner.output_shape(input).expect("checked by output_shape");
        let fwd = self.inner.runtime_going(input, &half, self.inner.go_backwards);
        let bwd = self.inner.runtime_going(input, &half, !self.inner.go_backwards);
        let (t, f, u, g, bias) = self.inner.dims(input);
        let (in_width, half_width, out_width): (usize, usize, usize) = (t * f, half.iter().product(), output.iter().product());
        let ty = quote!(::keras::layers::Bidirectional<#t, #f, #u, #g, #bias, #in_width, #half_width, #out_width>);
        let mode = format_ident!(
            "{}",
            match self.merge {
                "concat" => "Concat",
                "sum" => "Sum",
                "mul" => "Mul",
                _ => "Ave",
            }
        );
        let (fc, bc) = (fwd.ctor, bwd.ctor);
        Runtime { ctor: quote!(<#ty>::new(#fc, #bc, ::keras::backend::MergeMode::#mode)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
