//! `UpSampling2D(size = (2, 2), interpolation = "nearest")`: NHWC samples scaled up by whole
//! factors, repeating pixels (`"nearest"`) or interpolating between them (`"bilinear"`).

use super::conv2d::dims;
use super::{Args, Entry, Kind, Layer, Runtime, Shape, fmt_shape, word};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

pub const SIGNATURE: (&[&str], usize) = (&["size", "interpolation"], 1);

/// The registry's row for `UpSampling2D`.
pub const ENTRY: Entry =
    Entry { class: "UpSampling2D", signature: SIGNATURE, build: |_, args, diag| UpSampling2D::build(args, diag).map(Layer::new) };

pub struct UpSampling2D {
    size: (usize, usize),
    bilinear: bool,
}

impl UpSampling2D {
    pub fn build(args: &Args<'_>, diag: &mut Diag) -> Option<UpSampling2D> {
        let (sig, _) = SIGNATURE;
        let size = args.get("size", sig).map_or(Some((2, 2)), |a| dims("UpSampling2D", "size", 2, a, diag));
        let bilinear = match args.get("interpolation", sig) {
            None => Some(false),
            Some(a) => match word(&a.value).as_deref() {
                Some("nearest") => Some(false),
                Some("bilinear") => Some(true),
                _ => {
                    diag.error(
                        a,
                        format!(
                            "UpSampling2D's `interpolation` expects \"nearest\" or \"bilinear\", found `{}`",
                            a.value.to_token_stream()
                        ),
                    );
                    None
                }
            },
        };
        Some(UpSampling2D { size: size?, bilinear: bilinear? })
    }
}

impl Kind for UpSampling2D {
    fn class(&self) -> &'static str {
        "UpSampling2D"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let &[h, w, c] = input else {
            return Err(format!("UpSampling2D expects a 3-D per-sample input (height, width, channels), found {}", fmt_shape(input)));
        };
        let (sh, sw) = self.size;
        match (h.checked_mul(sh), w.checked_mul(sw)) {
            (Some(oh), Some(ow)) if oh.checked_mul(ow).and_then(|p| p.checked_mul(c)).is_some() => Ok(vec![oh, ow, c]),
            _ => Err("UpSampling2D's output size overflows".to_string()),
        }
    }

    /// `size` and `interpolation`, compared with a Keras file's.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let size = super::int_list(&[self.size.0, self.size.1]);
        let interpolation = if self.bilinear { "bilinear" } else { "nearest" };
        vec![quote!(("size", #size)), quote!(("interpolation", ::keras::model::ConfigValue::Str(#interpolation)))]
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        let (h, w, c) = (input[0], input[1], input[2]);
        let ((sh, sw), bilinear) = (self.size, self.bilinear);
        let (in_width, out_width): (usize, usize) = (input.iter().product(), output.iter().product());
        let ty = quote!(::keras::layers::UpSampling2D<#in_width, #out_width>);
        let ctor = quote!(<#ty>::new(::keras::backend::Upsample2d { h: #h, w: #w, c: #c, sh: #sh, sw: #sw, bilinear: #bilinear }));
        Runtime { ctor, ty, in_width, out_width, rows_per_sample: 1 }
    }
}
