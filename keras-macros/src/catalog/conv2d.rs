//! `Conv2D(filters, kernel_size, activation?, strides = (1, 1), padding = "valid" | "same",
//! dilation_rate = (1, 1), use_bias = .., kernel_initializer = .., bias_initializer = ..,
//! kernel_regularizer = .., bias_regularizer = .., kernel_constraint = .., bias_constraint = ..)`,
//! and the window arithmetic the pooling layers share.

use super::{Args, Runtime, Shape, Weight, boolean, fmt_shape, int, names, penalties, word};
use crate::diag::Diag;
use crate::parse::{Arg, Call};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// Parameters besides `in`, `name`, `params`; `filters`, `kernel_size` and `activation` may be positional.
pub const SIGNATURE: (&[&str], usize) = (
    &[
        "filters",
        "kernel_size",
        "activation",
        "strides",
        "padding",
        "dilation_rate",
        "use_bias",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
    ],
    3,
);

/// A window's size, strides, dilation and padding, as the layer gave them.
#[derive(Clone, Copy)]
pub struct Window {
    pub size: (usize, usize),
    pub strides: (usize, usize),
    pub dilation: (usize, usize),
    pub same: bool,
}

/// The window laid over an input: output size and padding before, per axis.
pub struct Placed {
    pub out: (usize, usize),
    pub pad: (usize, usize),
}

impl Window {
    /// Places the window over a `(h, w, c)` input, as Keras computes it, or says why it does not fit.
    pub fn place(&self, class: &str, what: &str, input: &[usize]) -> Result<Placed, String> {
        if input.len() != 3 {
            return Err(format!("{class} expects a 3-D per-sample input (height, width, channels), found {}", fmt_shape(input)));
        }
        let axis = |n: usize, k: usize, s: usize, d: usize| -> Option<(usize, usize)> {
            let span = d * (k - 1) + 1;
            if self.same {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(n);
                Some((out, total / 2))
            } else {
                (span <= n).then(|| ((n - span) / s + 1, 0))
            }
        };
        let (s, d, k) = (self.strides, self.dilation, self.size);
        match (axis(input[0], k.0, s.0, d.0), axis(input[1], k.1, s.1, d.1)) {
            (Some((oh, pt)), Some((ow, pl))) => Ok(Placed { out: (oh, ow), pad: (pt, pl) }),
            _ => {
                let dilated =
                    if d == (1, 1) { String::new() } else { format!(" (dilated to ({}, {}))", d.0 * (k.0 - 1) + 1, d.1 * (k.1 - 1) + 1) };
                Err(format!(
                    "{class}'s {what} ({}, {}){dilated} is larger than its input ({}, {}) with padding \"valid\": the output would be empty",
                    k.0, k.1, input[0], input[1]
                ))
            }
        }
    }

    /// The runtime geometry for an input `(h, w, c)`.
    pub fn runtime(&self, input: &[usize], placed: &Placed) -> TokenStream {
        let (h, w, c) = (input[0], input[1], input[2]);
        let ((oh, ow), (pt, pl)) = (placed.out, placed.pad);
        let ((kh, kw), (sh, sw), (dh, dw)) = (self.size, self.strides, self.dilation);
        quote!(::keras::backend::Window2d { h: #h, w: #w, c: #c, oh: #oh, ow: #ow, kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw, pt: #pt, pl: #pl })
    }
}

/// A pair of positive integers: `3` (both) or `(3, 2)`.
pub fn pair(class: &str, key: &str, arg: &Arg, diag: &mut Diag) -> Option<(usize, usize)> {
    let dims: Vec<&syn::Expr> = match &arg.value {
        syn::Expr::Tuple(t) => t.elems.iter().collect(),
        syn::Expr::Array(a) => a.elems.iter().collect(),
        syn::Expr::Paren(p) => vec![&*p.expr],
        other => vec![other],
    };
    let values: Option<Vec<i128>> = dims.iter().map(|d| int(d)).collect();
    match values.as_deref() {
        Some(&[v]) if v >= 1 && v <= u32::MAX as i128 => Some((v as usize, v as usize)),
        Some(&[a, b]) if a >= 1 && b >= 1 && a <= u32::MAX as i128 && b <= u32::MAX as i128 => Some((a as usize, b as usize)),
        Some(v) if v.len() <= 2 && !v.is_empty() => {
            diag.error(arg, format!("{class}'s `{key}` must be at least 1, found `{}`", arg.value.to_token_stream()));
            None
        }
        _ => {
            diag.error(
                arg,
                format!("{class}'s `{key}` expects an integer or a pair like `(3, 3)`, found `{}`", arg.value.to_token_stream()),
            );
            None
        }
    }
}

/// `padding = "valid" | "same"`: whether it is `same`.
pub fn padding(class: &str, arg: Option<&Arg>, diag: &mut Diag) -> Option<bool> {
    let Some(arg) = arg else { return Some(false) };
    match word(&arg.value).as_deref() {
        Some("valid") => Some(false),
        Some("same") => Some(true),
        _ => {
            diag.error(arg, format!("{class}'s `padding` expects \"valid\" or \"same\", found `{}`", arg.value.to_token_stream()));
            None
        }
    }
}

pub struct Conv2D {
    filters: usize,
    window: Window,
    activation: TokenStream,
    use_bias: bool,
    kernel_init: TokenStream,
    bias_init: TokenStream,
    kernel_regularizer: Option<TokenStream>,
    bias_regularizer: Option<TokenStream>,
    kernel_constraint: Option<TokenStream>,
    bias_constraint: Option<TokenStream>,
}

impl Conv2D {
    /// Keras configuration entries compared with a file's architecture: filters, activation,
    /// use_bias.
    pub fn config(&self) -> Vec<proc_macro2::TokenStream> {
        let (filters, use_bias, act) = (self.filters, self.use_bias, &self.activation);
        vec![
            quote::quote!(("filters", ::keras::model::ConfigValue::Int(#filters))),
            quote::quote!(("activation", ::keras::model::ConfigValue::Activation(<#act as ::keras::activations::ActivationFn>::KIND))),
            quote::quote!(("use_bias", ::keras::model::ConfigValue::Bool(#use_bias))),
        ]
    }

    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Conv2D> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let filters = match args.get("filters", sig) {
            None => {
                diag.error(call, "Conv2D needs `filters` and `kernel_size`: `Conv2D(32, (3, 3))`");
                None
            }
            Some(a) => match int(&a.value) {
                Some(f) if f >= 1 && f <= u32::MAX as i128 => Some(f as usize),
                Some(f) => {
                    diag.error(a, format!("Conv2D needs at least 1 filter, found {f}"));
                    None
                }
                None => {
                    diag.error(a, format!("Conv2D's `filters` expects a positive integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let size = match args.get("kernel_size", sig) {
            None => {
                if filters.is_some() {
                    diag.error(call, "Conv2D needs a `kernel_size`: `Conv2D(32, (3, 3))`");
                }
                None
            }
            Some(a) => pair("Conv2D", "kernel_size", a, diag),
        };
        let strides = args.get("strides", sig).map_or(Some((1, 1)), |a| pair("Conv2D", "strides", a, diag));
        let dilation = args.get("dilation_rate", sig).map_or(Some((1, 1)), |a| pair("Conv2D", "dilation_rate", a, diag));
        if let (Some(s), Some(d), Some(a)) = (strides, dilation, args.get("dilation_rate", sig))
            && s != (1, 1)
            && d != (1, 1)
        {
            diag.error(a, "Conv2D cannot combine `strides` > 1 with `dilation_rate` > 1 (Keras does not allow it)");
        }
        let same = padding("Conv2D", args.get("padding", sig), diag);
        let activation = match args.get("activation", sig) {
            Some(a) => names::activation(&a.value, diag),
            None => Some(quote!(::keras::activations::Linear)),
        };
        let use_bias = match args.get("use_bias", sig) {
            Some(a) => boolean(&a.value).or_else(|| {
                diag.error(a, format!("Conv2D's `use_bias` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
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
        if diag.len() > errors {
            return None;
        }
        Some(Conv2D {
            filters: filters?,
            window: Window { size: size?, strides: strides?, dilation: dilation?, same: same? },
            activation: activation?,
            use_bias: use_bias?,
            kernel_init: kernel_init?,
            bias_init: bias_init?,
            kernel_regularizer: kernel_regularizer?,
            bias_regularizer: bias_regularizer?,
            kernel_constraint: kernel_constraint?,
            bias_constraint: bias_constraint?,
        })
    }

    pub fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let p = self.window.place("Conv2D", "kernel", input)?;
        Ok(vec![p.out.0, p.out.1, self.filters])
    }

    pub fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (kh, kw) = self.window.size;
        let mut w = vec![Weight {
            name: "kernel",
            shape: vec![kh, kw, input[2], self.filters],
            trainable: true,
            init: self.kernel_init.clone(),
            regularizer: self.kernel_regularizer.clone(),
            constraint: self.kernel_constraint.clone(),
        }];
        if self.use_bias {
            w.push(Weight {
                name: "bias",
                shape: vec![self.filters],
                trainable: true,
                init: self.bias_init.clone(),
                regularizer: self.bias_regularizer.clone(),
                constraint: self.bias_constraint.clone(),
            });
        }
        w
    }

    pub fn runtime(&self, input: &[usize], _output: &[usize]) -> Runtime {
        let placed = self.window.place("Conv2D", "kernel", input).expect("checked by output_shape");
        let window = self.window.runtime(input, &placed);
        let (kh, kw) = self.window.size;
        let f = self.filters;
        let in_width: usize = input.iter().product();
        let pixels = placed.out.0 * placed.out.1;
        let out_width = pixels * f;
        let kernel = kh * kw * input[2] * f;
        let cols = pixels * kh * kw * input[2];
        let (act, bias) = (&self.activation, self.use_bias);
        let ty = quote!(::keras::layers::Conv2D<#in_width, #out_width, #kernel, #f, #cols, #act, #bias>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
