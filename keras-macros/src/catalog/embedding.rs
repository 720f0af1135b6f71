//! `Embedding(input_dim, output_dim, embeddings_initializer = .., embeddings_regularizer = ..,
//! embeddings_constraint = ..)`: integer ids to vectors; only as a model's first layer, whose input
//! then holds ids.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, int, names, penalties};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Parameters besides `in`, `name`, `params`; `input_dim` and `output_dim` may be positional.
pub const SIGNATURE: (&[&str], usize) =
    (&["input_dim", "output_dim", "embeddings_initializer", "embeddings_regularizer", "embeddings_constraint"], 2);

/// The registry's row for `Embedding`.
pub const ENTRY: Entry =
    Entry { class: "Embedding", signature: SIGNATURE, build: |call, args, diag| Embedding::build(call, args, diag).map(Layer::new) };

pub struct Embedding {
    pub input_dim: usize,
    pub output_dim: usize,
    init: TokenStream,
    regularizer: Option<TokenStream>,
    constraint: Option<TokenStream>,
}

impl Embedding {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Embedding> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let mut dim = |key: &str, what: &str| match args.get(key, sig) {
            None => {
                diag.error(call, format!("Embedding needs `input_dim` (the number of ids) and `output_dim` (the vector size): `Embedding(1000, 16)`; `{key}` ({what}) is missing"));
                None
            }
            Some(a) => match int(&a.value) {
                Some(v) if v >= 1 && v <= u32::MAX as i128 => Some(v as usize),
                _ => {
                    diag.error(a, format!("Embedding's `{key}` expects a positive integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let input_dim = dim("input_dim", "the number of ids");
        let output_dim = if input_dim.is_some() { dim("output_dim", "the vector size") } else { None };
        // Ids travel with the data as f32, exact up to 2^24.
        let input_dim = match (input_dim, args.get("input_dim", sig)) {
            (Some(n), Some(a)) if n > 1 << 24 => {
                diag.error(a, format!("Embedding's `input_dim` can be at most 16777216 (2^24: ids are carried as f32), found {n}"));
                None
            }
            (n, _) => n,
        };
        let init = match args.get("embeddings_initializer", sig) {
            Some(a) => names::initializer(&a.value, diag),
            None => Some(quote!(::keras::initializers::Initializer::RandomUniform { minval: -0.05, maxval: 0.05 })),
        };
        let regularizer = match args.get("embeddings_regularizer", sig) {
            Some(a) => penalties::regularizer(&a.value, diag).map(Some),
            None => Some(None),
        };
        let constraint = match args.get("embeddings_constraint", sig) {
            Some(a) => penalties::constraint(&a.value, diag).map(Some),
            None => Some(None),
        };
        if diag.len() > errors {
            return None;
        }
        Some(Embedding { input_dim: input_dim?, output_dim: output_dim?, init: init?, regularizer: regularizer?, constraint: constraint? })
    }
}

impl Kind for Embedding {
    fn class(&self) -> &'static str {
        "Embedding"
    }

    /// `(.., ) -> (.., output_dim)`: one vector per id.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let mut out = input.to_vec();
        out.push(self.output_dim);
        Ok(out)
    }

    fn weights(&self, _input: &[usize]) -> Vec<Weight> {
        vec![Weight {
            name: "embeddings",
            shape: vec![self.input_dim, self.output_dim],
            trainable: true,
            init: self.init.clone(),
            regularizer: self.regularizer.clone(),
            constraint: self.constraint.clone(),
        }]
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (i, o) = (self.input_dim, self.output_dim);
        vec![quote!(("input_dim", ::keras::model::ConfigValue::Int(#i))), quote!(("output_dim", ::keras::model::ConfigValue::Int(#o)))]
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let (v, d) = (self.input_dim, self.output_dim);
        let ty = quote!(::keras::layers::Embedding<#v, #d>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: 1, out_width: d, rows_per_sample: input.iter().product() }
    }
}
