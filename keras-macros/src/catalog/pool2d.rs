//! `MaxPooling2D(pool_size = (2, 2), strides = None, padding = "valid")`, `AveragePooling2D(..)`
//! (the same arguments), `GlobalAveragePooling2D(keepdims = false)` and `GlobalMaxPooling2D(..)`
//! (with `keepdims = true` the output keeps its spatial axes, of size 1); and their 1-D
//! forms over `(steps, channels)` inputs: `MaxPooling1D(pool_size = 2, ..)`,
//! `AveragePooling1D(..)`, `GlobalAveragePooling1D()`, `GlobalMaxPooling1D()`.

use super::conv2d::{Padding, Placed, Window, dims, padding};
use super::{Args, Entry, Kind, Layer, Runtime, Shape, word};
use crate::diag::Diag;
use proc_macro2::TokenStream;
use quote::quote;

/// Parameters of the windowed poolings, all positional as in Keras.
pub const SIGNATURE: (&[&str], usize) = (&["pool_size", "strides", "padding"], 3);
/// The global poolings take `keepdims` only, by keyword.
pub const GLOBAL_SIGNATURE: (&[&str], usize) = (&["keepdims"], 0);

/// The registry's row for `MaxPooling2D`.
pub const MAX_POOLING_2D: Entry = Entry {
    class: "MaxPooling2D",
    signature: SIGNATURE,
    build: |_, args, diag| Pool2D::build("MaxPooling2D", true, 2, args, diag).map(Layer::new),
};

/// The registry's row for `AveragePooling2D`.
pub const AVERAGE_POOLING_2D: Entry = Entry {
    class: "AveragePooling2D",
    signature: SIGNATURE,
    build: |_, args, diag| Pool2D::build("AveragePooling2D", false, 2, args, diag).map(Layer::new),
};

/// The registry's row for `MaxPooling1D`.
pub const MAX_POOLING_1D: Entry = Entry {
    class: "MaxPooling1D",
    signature: SIGNATURE,
    build: |_, args, diag| Pool2D::build("MaxPooling1D", true, 1, args, diag).map(Layer::new),
};

/// The registry's row for `AveragePooling1D`.
pub const AVERAGE_POOLING_1D: Entry = Entry {
    class: "AveragePooling1D",
    signature: SIGNATURE,
    build: |_, args, diag| Pool2D::build("AveragePooling1D", false, 1, args, diag).map(Layer::new),
};

/// The registry's row for `GlobalAveragePooling2D`.
pub const GLOBAL_AVERAGE_POOLING_2D: Entry = Entry {
    class: "GlobalAveragePooling2D",
    signature: GLOBAL_SIGNATURE,
    build: |_, args, diag| Pool2D::global("GlobalAveragePooling2D", false, 2, args, diag).map(Layer::new),
};

/// The registry's row for `GlobalMaxPooling2D`.
pub const GLOBAL_MAX_POOLING_2D: Entry = Entry {
    class: "GlobalMaxPooling2D",
    signature: GLOBAL_SIGNATURE,
    build: |_, args, diag| Pool2D::global("GlobalMaxPooling2D", true, 2, args, diag).map(Layer::new),
};

/// The registry's row for `GlobalAveragePooling1D`.
pub const GLOBAL_AVERAGE_POOLING_1D: Entry = Entry {
    class: "GlobalAveragePooling1D",
    signature: GLOBAL_SIGNATURE,
    build: |_, args, diag| Pool2D::global("GlobalAveragePooling1D", false, 1, args, diag).map(Layer::new),
};

/// The registry's row for `GlobalMaxPooling1D`.
pub const GLOBAL_MAX_POOLING_1D: Entry = Entry {
    class: "GlobalMaxPooling1D",
    signature: GLOBAL_SIGNATURE,
    build: |_, args, diag| Pool2D::global("GlobalMaxPooling1D", true, 1, args, diag).map(Layer::new),
};

pub struct Pool2D {
    class: &'static str,
    max: bool,
    /// Spatial axes: 1 or 2.
    rank: usize,
    /// `None` for the global poolings: the window is the whole input.
    window: Option<Window>,
    /// A global pooling's `keepdims`: its output keeps the spatial axes (of size 1).
    keepdims: bool,
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
        Some(Pool2D { class, max, rank, window: Some(window), keepdims: false })
    }

    /// A global pooling (`GlobalAveragePooling2D`, `GlobalMaxPooling1D`, ..) over `rank` spatial axes.
    pub fn global(class: &'static str, max: bool, rank: usize, args: &Args<'_>, diag: &mut Diag) -> Option<Pool2D> {
        let keepdims = match args.get("keepdims", GLOBAL_SIGNATURE.0) {
            None => false,
            Some(a) => match super::boolean(&a.value) {
                Some(b) => b,
                None => {
                    diag.error(&a.value, format!("{class}'s `keepdims` must be `true` or `false`"));
                    return None;
                }
            },
        };
        Some(Pool2D { class, max, rank, window: None, keepdims })
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
}

impl Kind for Pool2D {
    fn class(&self) -> &'static str {
        self.class
    }

    /// Keras configuration entries compared with a file's architecture: the window of a windowed
    /// pooling (`pool_size`, `strides`, `padding`); a global one's `keepdims` when set.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        match self.window {
            Some(w) => w.config("pool_size", false),
            None if self.keepdims => vec![quote!(("keepdims", ::keras::model::ConfigValue::Bool(true)))],
            None => Vec::new(),
        }
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let (_, p) = self.place(input)?;
        let c = input[input.len() - 1];
        Ok(match (self.window.is_some(), self.rank) {
            (false, 1) if self.keepdims => vec![1, c],
            (false, _) if self.keepdims => vec![1, 1, c],
            (false, _) => vec![c],
            (true, 1) => vec![p.out.1, c],
            (true, _) => vec![p.out.0, p.out.1, c],
        })
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let (w, p) = self.place(input).expect("checked by output_shape");
        let window = w.runtime(input, &p);
        let in_width: usize = input.iter().product();
        let out_width = p.out.0 * p.out.1 * input[input.len() - 1];
        let max = self.max;
        let ty = quote!(::keras::layers::Pool2D<#in_width, #out_width, #max>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
