//! `SeparableConv2D(filters, kernel_size, activation?, strides = (1, 1), padding = "valid" |
//! "same", depth_multiplier = 1, dilation_rate = (1, 1), use_bias = .., depthwise_initializer = ..,
//! pointwise_initializer = .., bias_initializer = .., depthwise_regularizer = ..,
//! pointwise_regularizer = .., bias_regularizer = .., depthwise_constraint = ..,
//! pointwise_constraint = .., bias_constraint = ..)`: a depthwise convolution, then a pointwise
//! (1 x 1) one.

use super::conv2d::{WeightArgs, Window, activation, config, conv_window, count, use_bias};
use super::depthwise_conv2d::depth_multiplier;
use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::quote;

/// Parameters besides `in`, `name`, `params`; `filters`, `kernel_size` and `activation` may be positional.
pub const SIGNATURE: (&[&str], usize) = (
    &[
        "filters",
        "kernel_size",
        "activation",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "use_bias",
        "depthwise_initializer",
        "pointwise_initializer",
        "bias_initializer",
        "depthwise_regularizer",
        "pointwise_regularizer",
        "bias_regularizer",
        "depthwise_constraint",
        "pointwise_constraint",
        "bias_constraint",
    ],
    3,
);

/// The registry's row for `SeparableConv2D`.
pub const ENTRY: Entry = Entry {
    class: "SeparableConv2D",
    signature: SIGNATURE,
    build: |call, args, diag| SeparableConv2D::build(call, args, diag).map(Layer::new),
};

pub struct SeparableConv2D {
    filters: usize,
    window: Window,
    depth_multiplier: usize,
    activation: TokenStream,
    use_bias: bool,
    depthwise: WeightArgs,
    pointwise: WeightArgs,
    bias: WeightArgs,
}

impl SeparableConv2D {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<SeparableConv2D> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let example = "SeparableConv2D(32, (3, 3))";
        let filters = match args.get("filters", sig) {
            None => {
                diag.error(call, format!("SeparableConv2D needs `filters` and `kernel_size`: `{example}`"));
                None
            }
            Some(a) => count("SeparableConv2D", "filters", "at least 1 filter", a, diag),
        };
        let window = conv_window("SeparableConv2D", 2, args, sig, filters.and(Some((call, example))), diag);
        let depth_multiplier = depth_multiplier("SeparableConv2D", args, sig, diag);
        let activation = activation(args, sig, diag);
        let use_bias = use_bias("SeparableConv2D", args, sig, diag);
        let depthwise = WeightArgs::parse("depthwise", args, sig, diag);
        let pointwise = WeightArgs::parse("pointwise", args, sig, diag);
        let bias = WeightArgs::parse("bias", args, sig, diag);
        if diag.len() > errors {
            return None;
        }
        Some(SeparableConv2D {
            filters: filters?,
            window: window?,
            depth_multiplier: depth_multiplier?,
            activation: activation?,
            use_bias: use_bias?,
            depthwise: depthwise?,
            pointwise: pointwise?,
            bias: bias?,
        })
    }
}

impl Kind for SeparableConv2D {
    fn class(&self) -> &'static str {
        "SeparableConv2D"
    }

    /// Keras configuration entries compared with a file's architecture.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let dm = self.depth_multiplier;
        let mut out = config(Some(self.filters), &self.activation, self.use_bias);
        out.push(quote!(("depth_multiplier", ::keras::model::ConfigValue::Int(#dm))));
        out.extend(self.window.config("kernel_size", true));
        out
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let p = self.window.place("SeparableConv2D", "kernel", input)?;
        Ok(vec![p.out.0, p.out.1, self.filters])
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (kh, kw) = self.window.size;
        let (c, dm) = (input[2], self.depth_multiplier);
        let mut w = vec![
            self.depthwise.weight("depthwise_kernel", vec![kh, kw, c, dm]),
            self.pointwise.weight("pointwise_kernel", vec![1, 1, c * dm, self.filters]),
        ];
        if self.use_bias {
            w.push(self.bias.weight("bias", vec![self.filters]));
        }
        w
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let placed = self.window.place("SeparableConv2D", "kernel", input).expect("checked by output_shape");
        let window = self.window.runtime(input, &placed);
        let (kh, kw) = self.window.size;
        let c = input[2];
        let (f, inner) = (self.filters, c * self.depth_multiplier);
        let in_width: usize = input.iter().product();
        let pixels = placed.out.0 * placed.out.1;
        let out_width = pixels * f;
        let depthwise = kh * kw * inner;
        let cols = pixels * kh * kw * c;
        let (act, bias) = (&self.activation, self.use_bias);
        let ty = quote!(::keras::layers::SeparableConv2D<#in_width, #out_width, #depthwise, #inner, #f, #cols, #act, #bias>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
