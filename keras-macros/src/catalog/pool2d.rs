//! `MaxPooling2D(pool_size = (2, 2), strides = None, padding = "valid")`, `AveragePooling2D(..)`
//! (the same arguments), `GlobalAveragePooling2D()` and `GlobalMaxPooling2D()`.

use super::conv2d::{Placed, Window, padding, pair};
use super::{Args, Runtime, Shape, fmt_shape, word};
use crate::diag::Diag;
use quote::quote;

/// Parameters of the windowed poolings, all positional as in Keras.
pub const SIGNATURE: (&[&str], usize) = (&["pool_size", "strides", "padding"], 3);
/// The global poolings take no arguments.
pub const GLOBAL_SIGNATURE: (&[&str], usize) = (&[], 0);

pub struct Pool2D {
    class: &'static str,
    max: bool,
    /// `None` for the global poolings: the window is the whole input.
    window: Option<Window>,
}

impl Pool2D {
    /// A windowed pooling (`MaxPooling2D`, `AveragePooling2D`).
    pub fn build(class: &'static str, max: bool, args: &Args<'_>, diag: &mut Diag) -> Option<Pool2D> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let size = args.get("pool_size", sig).map_or(Some((2, 2)), |a| pair(class, "pool_size", a, diag));
        let strides = match args.get("strides", sig) {
            Some(a) if word(&a.value).as_deref() != Some("None") => pair(class, "strides", a, diag),
            _ => size,
        };
        let same = padding(class, args.get("padding", sig), diag);
        if diag.len() > errors {
            return None;
        }
        Some(Pool2D { class, max, window: Some(Window { size: size?, strides: strides?, dilation: (1, 1), same: same? }) })
    }

    /// A global pooling (`GlobalAveragePooling2D`, `GlobalMaxPooling2D`).
    pub fn global(class: &'static str, max: bool) -> Pool2D {
        Pool2D { class, max, window: None }
    }

    pub fn class(&self) -> &'static str {
        self.class
    }

    fn place(&self, input: &[usize]) -> Result<(Window, Placed), String> {
        match self.window {
            Some(w) => w.place(self.class, "pool window", input).map(|p| (w, p)),
            None if input.len() == 3 => {
                let w = Window { size: (input[0], input[1]), strides: (1, 1), dilation: (1, 1), same: false };
                Ok((w, Placed { out: (1, 1), pad: (0, 0) }))
            }
            None => Err(format!("{} expects a 3-D per-sample input (height, width, channels), found {}", self.class, fmt_shape(input))),
        }
    }

    pub fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let (_, p) = self.place(input)?;
        Ok(if self.window.is_some() { vec![p.out.0, p.out.1, input[2]] } else { vec![input[2]] })
    }

    pub fn runtime(&self, input: &[usize]) -> Runtime {
        let (w, p) = self.place(input).expect("checked by output_shape");
        let window = w.runtime(input, &p);
        let in_width: usize = input.iter().product();
        let out_width = p.out.0 * p.out.1 * input[2];
        let max = self.max;
        let ty = quote!(::keras::layers::Pool2D<#in_width, #out_width, #max>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
