//! `Permute(dims)`: reorders a sample's axes; `dims` is 1-based, as in Keras.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, fmt_shape, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Expr;

pub const SIGNATURE: (&[&str], usize) = (&["dims"], 1);

/// The most axes a sample may have (the runtime's `MAX_RANK`).
const MAX_RANK: usize = 8;

/// The registry's row for `Permute`.
pub const ENTRY: Entry =
    Entry { class: "Permute", signature: SIGNATURE, build: |call, args, diag| Permute::build(call, args, diag).map(Layer::new) };

pub struct Permute {
    /// Output axis `i` is input axis `dims[i]` (1-based).
    dims: Vec<usize>,
    written: String,
}

impl Permute {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Permute> {
        let Some(a) = args.get("dims", SIGNATURE.0) else {
            diag.error(call, "Permute needs `dims`, the new order of the axes counted from 1, as in `Permute((2, 1))`");
            return None;
        };
        let elems: Vec<&Expr> = match &a.value {
            Expr::Tuple(t) => t.elems.iter().collect(),
            Expr::Array(arr) => arr.elems.iter().collect(),
            Expr::Paren(p) => vec![&*p.expr],
            other => vec![other],
        };
        let mut dims = Vec::new();
        for d in elems {
            match int(d) {
                Some(v) if v >= 1 && v <= MAX_RANK as i128 => dims.push(v as usize),
                _ => {
                    diag.error(
                        d,
                        format!(
                            "Permute's `dims` are axis numbers from 1 to {MAX_RANK} (the batch axis is not counted), found `{}`",
                            d.to_token_stream()
                        ),
                    );
                    return None;
                }
            }
        }
        let written = format!("({})", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
        if dims.is_empty() {
            diag.error(a, "Permute's `dims` needs at least one axis");
            return None;
        }
        Some(Permute { dims, written })
    }
}

impl Kind for Permute {
    fn class(&self) -> &'static str {
        "Permute"
    }

    /// The input's axes in the order of `dims`; an error unless `dims` is a permutation of
    /// `1..=rank`.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let rank = input.len();
        let mut seen = vec![false; rank];
        let valid = self.dims.len() == rank && self.dims.iter().all(|&d| d <= rank && !std::mem::replace(&mut seen[d - 1], true));
        if !valid {
            let all = (1..=rank).map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
            return Err(format!(
                "Permute's `dims` must be a permutation of ({all}), the axes of its input {}, found dims={}",
                fmt_shape(input),
                self.written
            ));
        }
        Ok(self.dims.iter().map(|&d| input[d - 1]).collect())
    }

    /// `dims`, compared with a Keras file's.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let dims = super::int_list(&self.dims);
        vec![quote!(("dims", #dims))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let n: usize = input.iter().product();
        let rank = input.len();
        let mut shape = [0usize; MAX_RANK];
        let mut perm = [0usize; MAX_RANK];
        shape[..rank].copy_from_slice(input);
        for (p, d) in perm.iter_mut().zip(&self.dims) {
            *p = d - 1;
        }
        let ty = quote!(::keras::layers::Permute<#n>);
        let ctor = quote!(<#ty>::new(::keras::backend::Permutation { rank: #rank, shape: [#(#shape),*], perm: [#(#perm),*] }));
        Runtime { ctor, ty, in_width: n, out_width: n, rows_per_sample: 1 }
    }
}
