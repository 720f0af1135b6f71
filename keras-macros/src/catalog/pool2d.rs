//! `MaxPooling2D(pool_size = (2, 2), strides = None, padding = "valid")`, `AveragePooling2D(..)`
//! (the same arguments), `GlobalAveragePooling2D()` and `GlobalMaxPooling2D()`; and their 1-D
//! forms over `(steps, channels)` inputs: `MaxPooling1D(pool_size = 2, ..)`,
//! `AveragePooling1D(..)`, `GlobalAveragePooling1D()`, `GlobalMaxPooling1D()`.

use super::conv2d::{Padding, Placed, Window, dims, padding};
use super::{Args, Runtime, Shape, word};
use crate::diag::Diag;
use quote::quote;

/// Parameters of the windowed poolings, all positional as in Keras.
pub const SIGNATURE: (&[&str], usize) = (&["pool_size", "strides", "padding"], 3);
/// The global poolings take no arguments.
pub const GLOBAL_SIGNATURE: (&[&str], usize) = (&[], 0);

pub struct Pool2D {
    class: &'static str,
    max: bool,
    /// Spatial axes: 1 or 2.
    rank: usize,
    /// `None` for the global poolings: the window is the whole input.
    window: Option<Window>,
}

impl Pool2D {
    /// A windowed pooling (`MaxPooling2D`, `AveragePooling1D`, ..) over `rank` spatial axes.
    pub fn build(class: &'static str, max: bool, rank: usize, args: &Args<'_>, diag: &mut Diag) -> Option<Pool2D> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let default = if rank == 1 { (1, 2) } else { (2, 2) };
        let size = args.get("pool_size", sig).map_or(Some(default), |a| dims(class, "pool_size", rank, a, diag));
        let strides = match args.get("strides", sig) {
            Some(a) if word(&a.value).as_deref() != Some("None") => dims(class, "strides", rank, a, diag),
            _ => size,
        };
        let padding = padding(class, args.get("padding", sig), false, diag);
        if diag.len() > errors {
            return None;
        }
        let window = Window { rank, size: size?, strides: strides?, dilation: (1, 1), padding: padding? };
        Some(Pool2D { class, max, rank, window: Some(window) })
    }

    /// A global pooling (`GlobalAveragePooling2D`, `GlobalMaxPooling1D`, ..) over `rank` spatial axes.
    pub fn global(class: &'static str, max: bool, rank: usize) -> Pool2D {
        Pool2D { class, max, rank, window: None }
    }

    pub fn class(&self) -> &'static str {
        self.class
    }

    /// Keras configuration entries compared with a file's architecture: the window of a windowed
    /// pooling (`pool_size`, `strides`, `padding`); none for the global ones.
    pub fn config(&self) -> Vec<proc_macro2::TokenStream> {
        self.window.map_or_else(Vec::new, |w| w.config("pool_size", false))
    }

    fn place(&self, input: &[usize]) -> Result<(Window, Placed), String> {
        match self.window {
            Some(w) => w.place(self.class, "pool window", input).map(|p| (w, p)),
            None => {
                let size = Window::spatial(self.rank, self.class, input)?;
                let w = Window { rank: self.rank, size, strides: (1, 1), dilation: (1, 1), padding: Padding::Valid };
                Ok((w, Placed { out: (1, 1), pad: (0, 0) }))
            }
        }
    }

    pub fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let (_, p) = self.place(input)?;
        let c = input[input.len() - 1];
        Ok(match (self.window.is_some(), self.rank) {
            (false, _) => vec![c],
            (true, 1) => vec![p.out.1, c],
            (true, _) => vec![p.out.0, p.out.1, c],
        })
    }

    pub fn runtime(&self, input: &[usize]) -> Runtime {
        let (w, p) = self.place(input).expect("checked by output_shape");
        let window = w.runtime(input, &p);
        let in_width: usize = input.iter().product();
        let out_width = p.out.0 * p.out.1 * input[input.len() - 1];
        let max = self.max;
        let ty = quote!(::keras::layers::Pool2D<#in_width, #out_width, #max>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
