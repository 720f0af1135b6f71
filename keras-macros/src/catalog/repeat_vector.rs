//! `RepeatVector(n)`: `(None, features) -> (None, n, features)`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, fmt_shape, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (&["n"], 1);

/// The registry's row for `RepeatVector`.
pub const ENTRY: Entry =
    Entry { class: "RepeatVector", signature: SIGNATURE, build: |call, args, diag| RepeatVector::build(call, args, diag).map(Layer::new) };

pub struct RepeatVector {
    pub n: usize,
}

impl RepeatVector {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<RepeatVector> {
        let Some(a) = args.get("n", SIGNATURE.0) else {
            diag.error(call, "RepeatVector needs `n`, how many times to repeat its input: `RepeatVector(3)`");
            return None;
        };
        match int(&a.value) {
            Some(n) if n >= 1 && n <= u32::MAX as i128 => Some(RepeatVector { n: n as usize }),
            _ => {
                diag.error(a, format!("RepeatVector's `n` expects a positive integer, found `{}`", a.value.to_token_stream()));
                None
            }
        }
    }
}

impl Kind for RepeatVector {
    fn class(&self) -> &'static str {
        "RepeatVector"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let n = self.n;
        vec![quote!(("n", ::keras::model::ConfigValue::Int(#n)))]
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        match input {
            [f] => f.checked_mul(self.n).map(|_| vec![self.n, *f]).ok_or_else(|| "RepeatVector's output size overflows".to_string()),
            _ => Err(format!("RepeatVector expects a 1-D per-sample input (features), found {}", fmt_shape(input))),
        }
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let (w, out) = (input[0], input[0] * self.n);
        let ty = quote!(::keras::layers::RepeatVector<#w, #out>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: w, out_width: out, rows_per_sample: 1 }
    }
}
