//! `Conv2D(filters, kernel_size, activation?, strides = (1, 1), padding = "valid" | "same",
//! dilation_rate = (1, 1), use_bias = .., kernel_initializer = .., bias_initializer = ..,
//! kernel_regularizer = .., bias_regularizer = .., kernel_constraint = .., bias_constraint = ..)`
//! and `Conv1D(..)` (the same arguments, one spatial axis, and `padding = "causal"`); the window
//! arithmetic and argument parsing the other convolutions and the poolings share.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, fmt_shape, int, names, penalties, word};
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

/// How a window is padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: the window stays inside the input.
    Valid,
    /// `ceil(n / stride)` outputs, the padding split with the smaller half first.
    Same,
    /// Left padding only, `dilation * (kernel - 1)` of it (`Conv1D` only): output `t` sees no
    /// input after `t`.
    Causal,
}

/// A window's size, strides, dilation and padding, as the layer gave them. A 1-D window
/// (`rank == 1`) is a 2-D one of height 1 over a `(1, steps, channels)` input.
#[derive(Clone, Copy)]
pub struct Window {
    /// Spatial axes: 1 (`(steps, channels)` inputs) or 2 (`(height, width, channels)`).
    pub rank: usize,
    pub size: (usize, usize),
    pub strides: (usize, usize),
    pub dilation: (usize, usize),
    pub padding: Padding,
}

/// The window laid over an input: output size and padding before, per axis.
pub struct Placed {
    pub out: (usize, usize),
    pub pad: (usize, usize),
}

/// A spatial size in Keras's tuple notation: `(3,)` for one axis, `(3, 3)` for two.
pub fn fmt_dims(rank: usize, d: (usize, usize)) -> String {
    if rank == 1 { format!("({},)", d.1) } else { format!("({}, {})", d.0, d.1) }
}

impl Window {
    /// The spatial size `(h, w)` of an input of this window's rank, or the error for any other rank.
    pub fn spatial(rank: usize, class: &str, input: &[usize]) -> Result<(usize, usize), String> {
        match (rank, input) {
            (1, &[steps, _]) => Ok((1, steps)),
            (2, &[h, w, _]) => Ok((h, w)),
            (1, _) => Err(format!("{class} expects a 2-D per-sample input (steps, channels), found {}", fmt_shape(input))),
            _ => Err(format!("{class} expects a 3-D per-sample input (height, width, channels), found {}", fmt_shape(input))),
        }
    }

    /// Places the window over an input (`(h, w, c)`, or `(steps, c)` for rank 1), as Keras
    /// computes it, or says why it does not fit.
    pub fn place(&self, class: &str, what: &str, input: &[usize]) -> Result<Placed, String> {
        let (h, w) = Self::spatial(self.rank, class, input)?;
        let axis = |n: usize, k: usize, s: usize, d: usize| -> Option<(usize, usize)> {
            let span = d * (k - 1) + 1;
            match self.padding {
                Padding::Same => {
                    let out = n.div_ceil(s);
                    let total = ((out - 1) * s + span).saturating_sub(n);
                    Some((out, total / 2))
                }
                Padding::Causal => Some(((n - 1) / s + 1, span - 1)),
                Padding::Valid => (span <= n).then(|| ((n - span) / s + 1, 0)),
            }
        };
        let (s, d, k) = (self.strides, self.dilation, self.size);
        match (axis(h, k.0, s.0, d.0), axis(w, k.1, s.1, d.1)) {
            (Some((oh, pt)), Some((ow, pl))) => Ok(Placed { out: (oh, ow), pad: (pt, pl) }),
            _ => {
                let dilated = if d == (1, 1) {
                    String::new()
                } else {
                    format!(" (dilated to {})", fmt_dims(self.rank, (d.0 * (k.0 - 1) + 1, d.1 * (k.1 - 1) + 1)))
                };
                Err(format!(
                    "{class}'s {what} {}{dilated} is larger than its input {} with padding \"valid\": the output would be empty",
                    fmt_dims(self.rank, k),
                    fmt_dims(self.rank, (h, w))
                ))
            }
        }
    }

    /// Keras configuration entries: the window's size under `size_key` (`kernel_size`,
    /// `pool_size`), `strides`, `padding`, and `dilation_rate` when `dilated`, one value per
    /// spatial axis as Keras lists them.
    pub fn config(&self, size_key: &str, dilated: bool) -> Vec<TokenStream> {
        let axes = |(h, w): (usize, usize)| if self.rank == 1 { quote!(&[#w]) } else { quote!(&[#h, #w]) };
        let (size, strides, dilation) = (axes(self.size), axes(self.strides), axes(self.dilation));
        let padding = match self.padding {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        };
        let mut out = vec![
            quote!((#size_key, ::keras::model::ConfigValue::Ints(#size))),
            quote!(("strides", ::keras::model::ConfigValue::Ints(#strides))),
            quote!(("padding", ::keras::model::ConfigValue::Str(#padding))),
        ];
        if dilated {
            out.push(quote!(("dilation_rate", ::keras::model::ConfigValue::Ints(#dilation))));
        }
        out
    }

    /// The runtime geometry for an input (`(h, w, c)`, or `(steps, c)` for rank 1).
    pub fn runtime(&self, input: &[usize], placed: &Placed) -> TokenStream {
        let c = input[input.len() - 1];
        let (h, w) = if self.rank == 1 { (1, input[0]) } else { (input[0], input[1]) };
        let ((oh, ow), (pt, pl)) = (placed.out, placed.pad);
        let ((kh, kw), (sh, sw), (dh, dw)) = (self.size, self.strides, self.dilation);
        quote!(::keras::backend::Window2d { h: #h, w: #w, c: #c, oh: #oh, ow: #ow, kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw, pt: #pt, pl: #pl })
    }
}

/// Positive integers, one per spatial axis: for rank 2 `3` (both) or `(3, 2)`; for rank 1 `3` or
/// `(3,)`, returned as `(1, 3)` (the height of a 1-D window is 1).
pub fn dims(class: &str, key: &str, rank: usize, arg: &Arg, diag: &mut Diag) -> Option<(usize, usize)> {
    let values: Vec<&syn::Expr> = match &arg.value {
        syn::Expr::Tuple(t) => t.elems.iter().collect(),
        syn::Expr::Array(a) => a.elems.iter().collect(),
        syn::Expr::Paren(p) => vec![&*p.expr],
        other => vec![other],
    };
    let values: Option<Vec<i128>> = values.iter().map(|d| int(d)).collect();
    let ok = |v: i128| v >= 1 && v <= u32::MAX as i128;
    match (rank, values.as_deref()) {
        (1, Some(&[v])) if ok(v) => Some((1, v as usize)),
        (2, Some(&[v])) if ok(v) => Some((v as usize, v as usize)),
        (2, Some(&[a, b])) if ok(a) && ok(b) => Some((a as usize, b as usize)),
        (_, Some(v)) if !v.is_empty() && v.len() <= rank => {
            diag.error(arg, format!("{class}'s `{key}` must be at least 1, found `{}`", arg.value.to_token_stream()));
            None
        }
        _ => {
            let example = if rank == 1 { "an integer like `3` or `(3,)`" } else { "an integer or a pair like `(3, 3)`" };
            diag.error(arg, format!("{class}'s `{key}` expects {example}, found `{}`", arg.value.to_token_stream()));
            None
        }
    }
}

/// `padding = "valid" | "same"` (and `"causal"` where `causal` allows it).
pub fn padding(class: &str, arg: Option<&Arg>, causal: bool, diag: &mut Diag) -> Option<Padding> {
    let Some(arg) = arg else { return Some(Padding::Valid) };
    match word(&arg.value).as_deref() {
        Some("valid") => Some(Padding::Valid),
        Some("same") => Some(Padding::Same),
        Some("causal") if causal => Some(Padding::Causal),
        _ => {
            let expected = if causal { "\"valid\", \"same\" or \"causal\"" } else { "\"valid\" or \"same\"" };
            diag.error(arg, format!("{class}'s `padding` expects {expected}, found `{}`", arg.value.to_token_stream()));
            None
        }
    }
}

/// A positive count argument (`filters`, `depth_multiplier`); `need` says what is needed in errors
/// (`at least 1 filter`).
pub fn count(class: &str, key: &str, need: &str, arg: &Arg, diag: &mut Diag) -> Option<usize> {
    match int(&arg.value) {
        Some(f) if f >= 1 && f <= u32::MAX as i128 => Some(f as usize),
        Some(f) => {
            diag.error(arg, format!("{class} needs {need}, found {f}"));
            None
        }
        None => {
            diag.error(arg, format!("{class}'s `{key}` expects a positive integer, found `{}`", arg.value.to_token_stream()));
            None
        }
    }
}

/// The window of a convolution: `kernel_size`, `strides`, `dilation_rate`, `padding`. A missing
/// `kernel_size` is reported at `missing` (the call, and the example call to show) when given.
pub fn conv_window(
    class: &str,
    rank: usize,
    args: &Args<'_>,
    sig: &[&str],
    missing: Option<(&Call, &str)>,
    diag: &mut Diag,
) -> Option<Window> {
    let size = match args.get("kernel_size", sig) {
        None => {
            if let Some((call, example)) = missing {
                diag.error(call, format!("{class} needs a `kernel_size`: `{example}`"));
            }
            None
        }
        Some(a) => dims(class, "kernel_size", rank, a, diag),
    };
    let strides = args.get("strides", sig).map_or(Some((1, 1)), |a| dims(class, "strides", rank, a, diag));
    let dilation = args.get("dilation_rate", sig).map_or(Some((1, 1)), |a| dims(class, "dilation_rate", rank, a, diag));
    // Keras refuses the combination for the plain and transposed convolutions, not for the
    // depthwise ones.
    let refused = matches!(class, "Conv1D" | "Conv2D" | "Conv2DTranspose");
    if let (Some(s), Some(d), Some(a)) = (strides, dilation, args.get("dilation_rate", sig))
        && refused
        && s != (1, 1)
        && d != (1, 1)
    {
        diag.error(a, format!("{class} cannot combine `strides` > 1 with `dilation_rate` > 1 (Keras does not allow it)"));
    }
    let padding = padding(class, args.get("padding", sig), class == "Conv1D", diag);
    Some(Window { rank, size: size?, strides: strides?, dilation: dilation?, padding: padding? })
}

/// `activation = ..` (linear when absent).
pub fn activation(args: &Args<'_>, sig: &[&str], diag: &mut Diag) -> Option<TokenStream> {
    match args.get("activation", sig) {
        Some(a) => names::activation(&a.value, diag),
        None => Some(quote!(::keras::activations::Linear)),
    }
}

/// `use_bias = ..` (true when absent).
pub fn use_bias(class: &str, args: &Args<'_>, sig: &[&str], diag: &mut Diag) -> Option<bool> {
    match args.get("use_bias", sig) {
        Some(a) => boolean(&a.value).or_else(|| {
            diag.error(a, format!("{class}'s `use_bias` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
            None
        }),
        None => Some(true),
    }
}

/// A weight's `<prefix>_initializer`, `<prefix>_regularizer` and `<prefix>_constraint`.
#[derive(Clone)]
pub struct WeightArgs {
    pub init: TokenStream,
    pub regularizer: Option<TokenStream>,
    pub constraint: Option<TokenStream>,
}

impl WeightArgs {
    /// Reads the arguments of the weight `prefix` (`kernel`, `bias`, `depthwise`, ..); the
    /// initializer defaults to Glorot uniform, or zeros for `bias`.
    pub fn parse(prefix: &str, args: &Args<'_>, sig: &[&str], diag: &mut Diag) -> Option<WeightArgs> {
        let init = match args.get(&format!("{prefix}_initializer"), sig) {
            Some(a) => names::initializer(&a.value, diag),
            None if prefix == "bias" => Some(quote!(::keras::initializers::Initializer::Zeros)),
            None => Some(quote!(::keras::initializers::Initializer::GlorotUniform)),
        };
        let mut optional = |key: String, parse: fn(&syn::Expr, &mut Diag) -> Option<TokenStream>| match args.get(&key, sig) {
            Some(a) => parse(&a.value, diag).map(Some),
            None => Some(None),
        };
        let regularizer = optional(format!("{prefix}_regularizer"), penalties::regularizer);
        let constraint = optional(format!("{prefix}_constraint"), penalties::constraint);
        Some(WeightArgs { init: init?, regularizer: regularizer?, constraint: constraint? })
    }

    /// The trainable weight `name` of `shape` with these arguments.
    pub fn weight(&self, name: &'static str, shape: Shape) -> Weight {
        Weight {
            name,
            shape,
            trainable: true,
            init: self.init.clone(),
            regularizer: self.regularizer.clone(),
            constraint: self.constraint.clone(),
        }
    }
}

/// The registry's row for `Conv2D`.
pub const CONV2D: Entry =
    Entry { class: "Conv2D", signature: SIGNATURE, build: |call, args, diag| Conv::build("Conv2D", 2, call, args, diag).map(Layer::new) };
/// The registry's row for `Conv1D`.
pub const CONV1D: Entry =
    Entry { class: "Conv1D", signature: SIGNATURE, build: |call, args, diag| Conv::build("Conv1D", 1, call, args, diag).map(Layer::new) };

/// `Conv1D` and `Conv2D`.
pub struct Conv {
    class: &'static str,
    filters: usize,
    window: Window,
    activation: TokenStream,
    use_bias: bool,
    kernel: WeightArgs,
    bias: WeightArgs,
}

impl Conv {
    /// A `Conv1D` (`rank` 1) or `Conv2D` (`rank` 2).
    pub fn build(class: &'static str, rank: usize, call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Conv> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let example = if rank == 1 { format!("{class}(32, 3)") } else { format!("{class}(32, (3, 3))") };
        let filters = match args.get("filters", sig) {
            None => {
                diag.error(call, format!("{class} needs `filters` and `kernel_size`: `{example}`"));
                None
            }
            Some(a) => count(class, "filters", "at least 1 filter", a, diag),
        };
        let window = conv_window(class, rank, args, sig, filters.and(Some((call, example.as_str()))), diag);
        let activation = activation(args, sig, diag);
        let use_bias = use_bias(class, args, sig, diag);
        let kernel = WeightArgs::parse("kernel", args, sig, diag);
        let bias = WeightArgs::parse("bias", args, sig, diag);
        if diag.len() > errors {
            return None;
        }
        Some(Conv { class, filters: filters?, window: window?, activation: activation?, use_bias: use_bias?, kernel: kernel?, bias: bias? })
    }
}

impl Kind for Conv {
    fn class(&self) -> &'static str {
        self.class
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let p = self.window.place(self.class, "kernel", input)?;
        Ok(if self.window.rank == 1 { vec![p.out.1, self.filters] } else { vec![p.out.0, p.out.1, self.filters] })
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (kh, kw) = self.window.size;
        let c = input[input.len() - 1];
        let shape = if self.window.rank == 1 { vec![kw, c, self.filters] } else { vec![kh, kw, c, self.filters] };
        let mut w = vec![self.kernel.weight("kernel", shape)];
        if self.use_bias {
            w.push(self.bias.weight("bias", vec![self.filters]));
        }
        w
    }

    /// Keras configuration entries compared with a file's architecture: filters, the window,
    /// activation, use_bias.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let mut out = config(Some(self.filters), &self.activation, self.use_bias);
        out.extend(self.window.config("kernel_size", true));
        out
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let placed = self.window.place(self.class, "kernel", input).expect("checked by output_shape");
        let window = self.window.runtime(input, &placed);
        let (kh, kw) = self.window.size;
        let (f, c) = (self.filters, input[input.len() - 1]);
        let in_width: usize = input.iter().product();
        let pixels = placed.out.0 * placed.out.1;
        let out_width = pixels * f;
        let kernel = kh * kw * c * f;
        let cols = pixels * kh * kw * c;
        let (act, bias) = (&self.activation, self.use_bias);
        let ty = quote!(::keras::layers::Conv2D<#in_width, #out_width, #kernel, #f, #cols, #act, #bias>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}

/// Configuration entries: `filters` (where the layer has them), `activation`, `use_bias`.
pub fn config(filters: Option<usize>, activation: &TokenStream, use_bias: bool) -> Vec<TokenStream> {
    let mut out = Vec::new();
    if let Some(filters) = filters {
        out.push(quote!(("filters", ::keras::model::ConfigValue::Int(#filters))));
    }
    out.push(quote!(("activation", ::keras::model::ConfigValue::Activation(<#activation as ::keras::activations::ActivationFn>::KIND))));
    out.push(quote!(("use_bias", ::keras::model::ConfigValue::Bool(#use_bias))));
    out
}
