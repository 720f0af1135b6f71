//! The noise layers: `GaussianNoise(stddev, seed = N)`, `GaussianDropout(rate, seed = N)`,
//! `SpatialDropout2D(rate, seed = N)`; active in training only.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, float, fmt_shape, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const GAUSSIAN_NOISE_SIGNATURE: (&[&str], usize) = (&["stddev", "seed"], 1);
pub const RATE_SIGNATURE: (&[&str], usize) = (&["rate", "seed"], 1);

/// The registry's row for `GaussianNoise`.
pub const GAUSSIAN_NOISE: Entry = Entry {
    class: "GaussianNoise",
    signature: GAUSSIAN_NOISE_SIGNATURE,
    build: |call, args, diag| Noise::build("GaussianNoise", call, args, diag).map(Layer::new),
};
/// The registry's row for `GaussianDropout`.
pub const GAUSSIAN_DROPOUT: Entry = Entry {
    class: "GaussianDropout",
    signature: RATE_SIGNATURE,
    build: |call, args, diag| Noise::build("GaussianDropout", call, args, diag).map(Layer::new),
};
/// The registry's row for `SpatialDropout2D`.
pub const SPATIAL_DROPOUT_2D: Entry = Entry {
    class: "SpatialDropout2D",
    signature: RATE_SIGNATURE,
    build: |call, args, diag| Noise::build("SpatialDropout2D", call, args, diag).map(Layer::new),
};

pub struct Noise {
    class: &'static str,
    /// `stddev` for GaussianNoise, `rate` for the others.
    pub amount: f64,
    seed: Option<u64>,
}

impl Noise {
    /// Builds `class`, whose first argument (`stddev` or `rate`) must lie in `[0, limit)`.
    pub fn build(class: &'static str, call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Noise> {
        let (sig, key, limit) = match class {
            "GaussianNoise" => (GAUSSIAN_NOISE_SIGNATURE.0, "stddev", f64::INFINITY),
            _ => (RATE_SIGNATURE.0, "rate", 1.0),
        };
        let range = if limit.is_finite() { "a number in [0, 1)" } else { "a non-negative number" };
        let amount = match args.get(key, sig) {
            None => {
                let what = if key == "rate" { ", the fraction of inputs to drop" } else { "" };
                diag.error(call, format!("{class} needs a `{key}`{what}, as in `{class}(0.1)`"));
                None
            }
            Some(a) => match float(&a.value) {
                Some(v) if v >= 0.0 && v < limit => Some(v),
                Some(v) => {
                    diag.error(
                        a,
                        format!("{class}'s {key} must be {}, found {v:?}", if limit.is_finite() { "in [0, 1)" } else { "at least 0" }),
                    );
                    None
                }
                None => {
                    diag.error(a, format!("{class}'s `{key}` expects {range}, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let seed = match args.get("seed", sig) {
            None => Some(None),
            Some(a) => match int(&a.value) {
                Some(s) if s >= 0 && s <= u64::MAX as i128 => Some(Some(s as u64)),
                _ => {
                    diag.error(a, format!("{class}'s `seed` expects a non-negative integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        Some(Noise { class, amount: amount?, seed: seed? })
    }

    /// The Keras configuration key of the amount.
    pub fn key(&self) -> &'static str {
        if self.class == "GaussianNoise" { "stddev" } else { "rate" }
    }
}

impl Kind for Noise {
    fn class(&self) -> &'static str {
        self.class
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (key, amount) = (self.key(), self.amount);
        vec![quote!((#key, ::keras::model::ConfigValue::Float(#amount)))]
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        if self.class == "SpatialDropout2D" && input.len() != 3 {
            return Err(format!("SpatialDropout2D expects a 3-D per-sample input (height, width, channels), found {}", fmt_shape(input)));
        }
        Ok(input.to_vec())
    }

    fn runtime(&self, input: &[usize], _output: &[usize], index: usize) -> Runtime {
        let amount = self.amount as f32;
        let n: usize = input.iter().product();
        let w = *input.last().expect("shapes have at least one dimension");
        // The elementwise layers map over rows of the last axis; SpatialDropout2D needs whole samples.
        let (ty, width, rows) = match self.class {
            "GaussianNoise" => (quote!(::keras::layers::GaussianNoise<#w>), w, n / w),
            "GaussianDropout" => (quote!(::keras::layers::GaussianDropout<#w>), w, n / w),
            _ => (quote!(::keras::layers::SpatialDropout2D<#n, #w>), n, 1),
        };
        let ctor = match self.seed {
            Some(seed) => quote!(<#ty>::seeded(#amount, #seed)),
            None => {
                let index = index as u64;
                quote!(<#ty>::new(#amount, #index))
            }
        };
        Runtime { ctor, ty, in_width: width, out_width: width, rows_per_sample: rows }
    }
}
