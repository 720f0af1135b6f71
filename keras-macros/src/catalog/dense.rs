//! `Dense(units, activation?, use_bias = .., kernel_initializer = .., bias_initializer = ..,
//! kernel_regularizer = .., bias_regularizer = .., activity_regularizer = .., kernel_constraint = ..,
//! bias_constraint = ..)`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, int, names, penalties};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Parameters besides `in`, `name`, `params`; the first two may be positional, as in Keras.
pub const SIGNATURE: (&[&str], usize) = (
    &[
        "units",
        "activation",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "activity_regularizer",
    ],
    2,
);

/// The registry's row.
pub const ENTRY: Entry =
    Entry { class: "Dense", signature: SIGNATURE, build: |call, args, diag| Dense::build(call, args, diag).map(Layer::new) };

pub struct Dense {
    pub units: usize,
    pub activation: TokenStream,
    pub use_bias: bool,
    kernel_init: TokenStream,
    bias_init: TokenStream,
    kernel_regularizer: Option<TokenStream>,
    bias_regularizer: Option<TokenStream>,
    kernel_constraint: Option<TokenStream>,
    bias_constraint: Option<TokenStream>,
    /// A penalty on the layer's output.
    pub activity_regularizer: Option<TokenStream>,
}

impl Dense {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Dense> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let units = match args.get("units", sig) {
            None => {
                diag.error(call, "Dense needs `units`, the number of outputs: `Dense(32)`");
                None
            }
            Some(a) => match int(&a.value) {
                Some(u) if u >= 1 && u <= u32::MAX as i128 => Some(u as usize),
                Some(u) => {
                    diag.error(a, format!("Dense needs at least 1 unit, found {u}"));
                    None
                }
                None => {
                    diag.error(a, format!("Dense's `units` expects a positive integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let activation = match args.get("activation", sig) {
            Some(a) => names::activation(&a.value, diag),
            None => Some(quote!(::keras::activations::Linear)),
        };
        let use_bias = match args.get("use_bias", sig) {
            Some(a) => boolean(&a.value).or_else(|| {
                diag.error(a, format!("Dense's `use_bias` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
                None
            }),
            None => Some(true),
        };
        let kernel_init = match args.get("kernel_initializer", sig) {
            Some(a) => names::initializer(&a.value, diag),
            None => Some(quote!(::keras::initializers::Initializer::GlorotUniform)),
        };
        let bias_init = match args.get("bias_initializer", sig) {
            Some(a) => names::initializer(&a.value, diag),
            None => Some(quote!(::keras::initializers::Initializer::Zeros)),
        };
        let mut optional = |key: &str, parse: fn(&syn::Expr, &mut Diag) -> Option<TokenStream>| match args.get(key, sig) {
            Some(a) => parse(&a.value, diag).map(Some),
            None => Some(None),
        };
        let kernel_regularizer = optional("kernel_regularizer", penalties::regularizer);
        let bias_regularizer = optional("bias_regularizer", penalties::regularizer);
        let kernel_constraint = optional("kernel_constraint", penalties::constraint);
        let bias_constraint = optional("bias_constraint", penalties::constraint);
        let activity_regularizer = optional("activity_regularizer", penalties::regularizer);
        if diag.len() > errors {
            return None;
        }
        Some(Dense {
            units: units?,
            activation: activation?,
            use_bias: use_bias?,
            kernel_init: kernel_init?,
            bias_init: bias_init?,
            kernel_regularizer: kernel_regularizer?,
            bias_regularizer: bias_regularizer?,
            kernel_constraint: kernel_constraint?,
            bias_constraint: bias_constraint?,
            activity_regularizer: activity_regularizer?,
        })
    }
}

impl Kind for Dense {
    fn class(&self) -> &'static str {
        "Dense"
    }

    /// Dense maps the last axis: `(.., d) -> (.., units)`.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let mut out = input.to_vec();
        *out.last_mut().expect("shapes have at least one dimension") = self.units;
        Ok(out)
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let d = *input.last().expect("shapes have at least one dimension");
        let mut w = vec![Weight {
            name: "kernel",
            shape: vec![d, self.units],
            trainable: true,
            init: self.kernel_init.clone(),
            regularizer: self.kernel_regularizer.clone(),
            constraint: self.kernel_constraint.clone(),
        }];
        if self.use_bias {
            w.push(Weight {
                name: "bias",
                shape: vec![self.units],
                trainable: true,
                init: self.bias_init.clone(),
                regularizer: self.bias_regularizer.clone(),
                constraint: self.bias_constraint.clone(),
            });
        }
        w
    }

    fn activity_regularizer(&self) -> Option<TokenStream> {
        self.activity_regularizer.clone()
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (units, act, use_bias) = (self.units, &self.activation, self.use_bias);
        vec![
            quote!(("units", ::keras::model::ConfigValue::Int(#units))),
            quote!(("activation", ::keras::model::ConfigValue::Activation(<#act as ::keras::activations::ActivationFn>::KIND))),
            quote!(("use_bias", ::keras::model::ConfigValue::Bool(#use_bias))),
        ]
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        let d = *input.last().expect("shapes have at least one dimension");
        let units = self.units;
        let act = &self.activation;
        let bias = self.use_bias;
        let ty = quote!(::keras::layers::Dense<#d, #units, #act, #bias>);
        Runtime {
            ctor: quote!(<#ty>::new()),
            ty,
            in_width: d,
            out_width: units,
            rows_per_sample: output[..output.len() - 1].iter().product(),
        }
    }
}
