//! `ZeroPadding2D(padding = 1)` and `Cropping2D(cropping = 0)`: rows and columns added around, or
//! cut off, NHWC samples. Both take an integer, a pair `(h, w)` (symmetric) or
//! `((top, bottom), (left, right))`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, fmt_shape, int};
use crate::diag::Diag;
use crate::parse::Arg;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Expr;

pub const PADDING_SIGNATURE: (&[&str], usize) = (&["padding"], 1);
pub const CROPPING_SIGNATURE: (&[&str], usize) = (&["cropping"], 1);

/// `((top, bottom), (left, right))`.
type Sides = ((usize, usize), (usize, usize));

/// The registry's row for `ZeroPadding2D`.
pub const ZERO_PADDING_2D: Entry =
    Entry { class: "ZeroPadding2D", signature: PADDING_SIGNATURE, build: |_, args, diag| Border::padding(args, diag).map(Layer::new) };
/// The registry's row for `Cropping2D`.
pub const CROPPING_2D: Entry =
    Entry { class: "Cropping2D", signature: CROPPING_SIGNATURE, build: |_, args, diag| Border::cropping(args, diag).map(Layer::new) };

pub struct Border {
    class: &'static str,
    sides: Sides,
    crop: bool,
}

/// The elements of a tuple (or the value itself).
fn elems(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Tuple(t) => t.elems.iter().collect(),
        Expr::Array(a) => a.elems.iter().collect(),
        Expr::Paren(p) => elems(&p.expr),
        Expr::Group(g) => elems(&g.expr),
        other => vec![other],
    }
}

/// A non-negative count.
fn count(e: &Expr) -> Option<usize> {
    int(e).filter(|v| (0..=u32::MAX as i128).contains(v)).map(|v| v as usize)
}

/// The three forms: `n`, `(h, w)`, `((top, bottom), (left, right))`.
fn sides(e: &Expr) -> Option<Sides> {
    let pair = |e: &Expr| match elems(e).as_slice() {
        [a, b] => Some((count(a)?, count(b)?)),
        _ => None,
    };
    match elems(e).as_slice() {
        [n] => count(n).map(|n| ((n, n), (n, n))),
        [h, w] if int(h).is_some() && int(w).is_some() => {
            let (h, w) = (count(h)?, count(w)?);
            Some(((h, h), (w, w)))
        }
        [h, w] => Some((pair(h)?, pair(w)?)),
        _ => None,
    }
}

impl Border {
    fn build(class: &'static str, key: &str, default: usize, crop: bool, arg: Option<&Arg>, diag: &mut Diag) -> Option<Border> {
        let Some(a) = arg else { return Some(Border { class, sides: ((default, default), (default, default)), crop }) };
        match sides(&a.value) {
            Some(sides) => Some(Border { class, sides, crop }),
            None if elems(&a.value).iter().any(|e| int(e).is_some_and(|v| v < 0)) => {
                diag.error(
                    a,
                    format!("{class}'s `{key}` must be at least 0, found `{}`", a.value.to_token_stream().to_string().replace("- ", "-")),
                );
                None
            }
            None => {
                diag.error(
                    a,
                    format!(
                        "{class}'s `{key}` expects a non-negative integer, a pair `(h, w)` or `((top, bottom), (left, right))`, found `{}`",
                        a.value.to_token_stream()
                    ),
                );
                None
            }
        }
    }

    /// `ZeroPadding2D(padding)`.
    pub fn padding(args: &Args<'_>, diag: &mut Diag) -> Option<Border> {
        Border::build("ZeroPadding2D", "padding", 1, false, args.get("padding", PADDING_SIGNATURE.0), diag)
    }

    /// `Cropping2D(cropping)`.
    pub fn cropping(args: &Args<'_>, diag: &mut Diag) -> Option<Border> {
        Border::build("Cropping2D", "cropping", 0, true, args.get("cropping", CROPPING_SIGNATURE.0), diag)
    }
}

impl Kind for Border {
    fn class(&self) -> &'static str {
        self.class
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let &[h, w, c] = input else {
            return Err(format!("{} expects a 3-D per-sample input (height, width, channels), found {}", self.class, fmt_shape(input)));
        };
        let ((t, b), (l, r)) = self.sides;
        if self.crop {
            if t + b >= h || l + r >= w {
                return Err(format!(
                    "Cropping2D's cropping (({t}, {b}), ({l}, {r})) leaves no {} of its input {}",
                    if t + b >= h { "rows" } else { "columns" },
                    fmt_shape(input)
                ));
            }
            Ok(vec![h - t - b, w - l - r, c])
        } else {
            let grown = |n: usize, a: usize, b: usize| n.checked_add(a).and_then(|v| v.checked_add(b)).filter(|&v| v <= u32::MAX as usize);
            match (grown(h, t, b), grown(w, l, r)) {
                (Some(oh), Some(ow)) => Ok(vec![oh, ow, c]),
                _ => Err("ZeroPadding2D's output size overflows".to_string()),
            }
        }
    }

    /// `padding` or `cropping` as `((top, bottom), (left, right))`, compared with a Keras file's.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let ((t, b), (l, r)) = self.sides;
        let (rows, cols) = (super::int_list(&[t, b]), super::int_list(&[l, r]));
        let key = if self.crop { "cropping" } else { "padding" };
        vec![quote!((#key, ::keras::model::ConfigValue::List(&[#rows, #cols])))]
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        let ((top, bottom), (left, right)) = self.sides;
        let small = if self.crop { output } else { input };
        let (h, w, c) = (small[0], small[1], small[2]);
        let border: TokenStream = quote!(::keras::backend::Border2d {
            h: #h, w: #w, c: #c, top: #top, bottom: #bottom, left: #left, right: #right
        });
        let (in_width, out_width): (usize, usize) = (input.iter().product(), output.iter().product());
        let ty = if self.crop {
            quote!(::keras::layers::Cropping2D<#in_width, #out_width>)
        } else {
            quote!(::keras::layers::ZeroPadding2D<#in_width, #out_width>)
        };
        Runtime { ctor: quote!(<#ty>::new(#border)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
