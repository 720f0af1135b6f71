//! `BatchNormalization(axis = -1, momentum = 0.99, epsilon = 0.001, center = true, scale = true,
//! beta_initializer = .., gamma_initializer = .., moving_mean_initializer = ..,
//! moving_variance_initializer = ..)`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, float, int, names};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (
    &[
        "axis",
        "momentum",
        "epsilon",
        "center",
        "scale",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
    ],
    1,
);

/// The registry's row for `BatchNormalization`.
pub const ENTRY: Entry = Entry {
    class: "BatchNormalization",
    signature: SIGNATURE,
    build: |call, args, diag| BatchNormalization::build(call, args, diag).map(Layer::new),
};

pub struct BatchNormalization {
    axis: Option<(i128, TokenStream)>,
    pub momentum: f64,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    inits: [TokenStream; 4],
}

impl BatchNormalization {
    pub fn build(_call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<BatchNormalization> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let axis = args.get("axis", sig).and_then(|a| match int(&a.value) {
            Some(v) => Some((v, a.value.to_token_stream())),
            None => {
                diag.error(a, format!("BatchNormalization's `axis` expects an integer, found `{}`", a.value.to_token_stream()));
                None
            }
        });
        let mut number = |key: &str, default: f64, ok: fn(f64) -> bool, range: &str| match args.get(key, sig) {
            None => default,
            Some(a) => match float(&a.value) {
                Some(v) if ok(v) => v,
                _ => {
                    diag.error(
                        a,
                        format!("BatchNormalization's `{key}` expects a number in {range}, found `{}`", a.value.to_token_stream()),
                    );
                    default
                }
            },
        };
        let momentum = number("momentum", 0.99, |v| (0.0..=1.0).contains(&v), "[0, 1]");
        let epsilon = number("epsilon", 1e-3, |v| v > 0.0 && v.is_finite(), "(0, inf)");
        let mut flag = |key: &str| match args.get(key, sig) {
            None => true,
            Some(a) => boolean(&a.value).unwrap_or_else(|| {
                diag.error(a, format!("BatchNormalization's `{key}` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
                true
            }),
        };
        let (center, scale) = (flag("center"), flag("scale"));
        let mut init = |key: &str, default: TokenStream| match args.get(key, sig) {
            Some(a) => names::initializer(&a.value, diag).unwrap_or(default),
            None => default,
        };
        let i = quote!(::keras::initializers::Initializer);
        let inits = [
            init("gamma_initializer", quote!(#i::Ones)),
            init("beta_initializer", quote!(#i::Zeros)),
            init("moving_mean_initializer", quote!(#i::Zeros)),
            init("moving_variance_initializer", quote!(#i::Ones)),
        ];
        if diag.len() > errors {
            return None;
        }
        Some(BatchNormalization { axis, momentum, epsilon, center, scale, inits })
    }
}

impl Kind for BatchNormalization {
    fn class(&self) -> &'static str {
        "BatchNormalization"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (momentum, epsilon, center, scale) = (self.momentum, self.epsilon, self.center, self.scale);
        vec![
            quote!(("momentum", ::keras::model::ConfigValue::Float(#momentum))),
            quote!(("epsilon", ::keras::model::ConfigValue::Float(#epsilon))),
            quote!(("center", ::keras::model::ConfigValue::Bool(#center))),
            quote!(("scale", ::keras::model::ConfigValue::Bool(#scale))),
        ]
    }

    /// Normalization keeps the shape; only the features axis (the last) is supported, as the
    /// rest of keras-rs is channels-last.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        if let Some((axis, _)) = &self.axis {
            let rank = input.len() as i128 + 1;
            if *axis != -1 && *axis != rank - 1 {
                return Err(format!(
                    "BatchNormalization normalizes the last axis (axis = -1 or {}) of its input {}; found axis = {axis}",
                    rank - 1,
                    super::fmt_shape(input)
                ));
            }
        }
        Ok(input.to_vec())
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let w = *input.last().expect("shapes have at least one dimension");
        let weight = |name, trainable, init: &TokenStream| Weight {
            name,
            shape: vec![w],
            trainable,
            init: init.clone(),
            regularizer: None,
            constraint: None,
        };
        let mut out = Vec::new();
        if self.scale {
            out.push(weight("gamma", true, &self.inits[0]));
        }
        if self.center {
            out.push(weight("beta", true, &self.inits[1]));
        }
        out.push(weight("moving_mean", false, &self.inits[2]));
        out.push(weight("moving_variance", false, &self.inits[3]));
        out
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let (center, scale) = (self.center, self.scale);
        let (momentum, epsilon) = (self.momentum as f32, self.epsilon as f32);
        let ty = quote!(::keras::layers::BatchNormalization<#w, #center, #scale>);
        Runtime {
            ctor: quote!(<#ty>::new(#momentum, #epsilon)),
            ty,
            in_width: w,
            out_width: w,
            rows_per_sample: input[..input.len() - 1].iter().product(),
        }
    }
}
