//! `LayerNormalization(axis = -1, epsilon = 0.001, center = true, scale = true,
//! beta_initializer = .., gamma_initializer = ..)`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, float, int, names};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) =
    (&["axis", "epsilon", "center", "scale", "rms_scaling", "beta_initializer", "gamma_initializer"], 1);

/// The registry's row for `LayerNormalization`.
pub const ENTRY: Entry = Entry {
    class: "LayerNormalization",
    signature: SIGNATURE,
    build: |call, args, diag| LayerNormalization::build(call, args, diag).map(Layer::new),
};

pub struct LayerNormalization {
    axis: Option<i128>,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    inits: [TokenStream; 2],
}

impl LayerNormalization {
    pub fn build(_call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<LayerNormalization> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let axis = args.get("axis", sig).and_then(|a| {
            int(&a.value).or_else(|| {
                diag.error(a, format!("LayerNormalization's `axis` expects an integer, found `{}`", a.value.to_token_stream()));
                None
            })
        });
        let epsilon = match args.get("epsilon", sig) {
            None => 1e-3,
            Some(a) => match float(&a.value) {
                Some(v) if v > 0.0 && v.is_finite() => v,
                _ => {
                    diag.error(
                        a,
                        format!("LayerNormalization's `epsilon` expects a number in (0, inf), found `{}`", a.value.to_token_stream()),
                    );
                    1e-3
                }
            },
        };
        let mut flag = |key: &str, default: bool| match args.get(key, sig) {
            None => default,
            Some(a) => boolean(&a.value).unwrap_or_else(|| {
                diag.error(a, format!("LayerNormalization's `{key}` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
                default
            }),
        };
        let (center, scale) = (flag("center", true), flag("scale", true));
        if let Some(a) = args.get("rms_scaling", sig)
            && boolean(&a.value) == Some(true)
        {
            diag.error(a, "LayerNormalization's `rms_scaling = true` is not supported yet; leave it false");
        }
        let mut init = |key: &str, default: TokenStream| match args.get(key, sig) {
            Some(a) => names::initializer(&a.value, diag).unwrap_or(default),
            None => default,
        };
        let i = quote!(::keras::initializers::Initializer);
        let inits = [init("gamma_initializer", quote!(#i::Ones)), init("beta_initializer", quote!(#i::Zeros))];
        if diag.len() > errors {
            return None;
        }
        Some(LayerNormalization { axis, epsilon, center, scale, inits })
    }
}

impl Kind for LayerNormalization {
    fn class(&self) -> &'static str {
        "LayerNormalization"
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (epsilon, center, scale) = (self.epsilon, self.center, self.scale);
        vec![
            quote!(("epsilon", ::keras::model::ConfigValue::Float(#epsilon))),
            quote!(("center", ::keras::model::ConfigValue::Bool(#center))),
            quote!(("scale", ::keras::model::ConfigValue::Bool(#scale))),
        ]
    }

    /// Normalization keeps the shape; only the last axis is supported.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let rank = input.len() as i128 + 1;
        match self.axis {
            Some(axis) if axis != -1 && axis != rank - 1 => Err(format!(
                "LayerNormalization normalizes the last axis (axis = -1 or {}) of its input {}; found axis = {axis}",
                rank - 1,
                super::fmt_shape(input)
            )),
            _ => Ok(input.to_vec()),
        }
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let w = *input.last().expect("shapes have at least one dimension");
        let weight = |name, init: &TokenStream| Weight {
            name,
            shape: vec![w],
            trainable: true,
            init: init.clone(),
            regularizer: None,
            constraint: None,
        };
        let mut out = Vec::new();
        if self.scale {
            out.push(weight("gamma", &self.inits[0]));
        }
        if self.center {
            out.push(weight("beta", &self.inits[1]));
        }
        out
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let (center, scale, epsilon) = (self.center, self.scale, self.epsilon as f32);
        let ty = quote!(::keras::layers::LayerNormalization<#w, #center, #scale>);
        Runtime {
            ctor: quote!(<#ty>::new(#epsilon)),
            ty,
            in_width: w,
            out_width: w,
            rows_per_sample: input[..input.len() - 1].iter().product(),
        }
    }
}
