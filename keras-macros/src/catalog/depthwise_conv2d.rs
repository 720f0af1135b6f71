//! `DepthwiseConv2D(kernel_size, activation?, strides = (1, 1), padding = "valid" | "same",
//! depth_multiplier = 1, dilation_rate = (1, 1), use_bias = .., depthwise_initializer = ..,
//! bias_initializer = .., depthwise_regularizer = .., bias_regularizer = ..,
//! depthwise_constraint = .., bias_constraint = ..)`: each input channel convolved with its own
//! `depth_multiplier` filters.

use super::conv2d::{WeightArgs, Window, activation, config, conv_window, count, use_bias};
use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::quote;

/// Parameters besides `in`, `name`, `params`; `kernel_size` and `activation` may be positional.
pub const SIGNATURE: (&[&str], usize) = (
    &[
        "kernel_size",
        "activation",
        "strides",
        "padding",
        "depth_multiplier",
        "dilation_rate",
        "use_bias",
        "depthwise_initializer",
        "bias_initializer",
        "depthwise_regularizer",
        "bias_regularizer",
        "depthwise_constraint",
        "bias_constraint",
    ],
    2,
);

/// The registry's row for `DepthwiseConv2D`.
pub const ENTRY: Entry = Entry {
    class: "DepthwiseConv2D",
    signature: SIGNATURE,
    build: |call, args, diag| DepthwiseConv2D::build(call, args, diag).map(Layer::new),
};

pub struct DepthwiseConv2D {
    window: Window,
    depth_multiplier: usize,
    activation: TokenStream,
    use_bias: bool,
    depthwise: WeightArgs,
    bias: WeightArgs,
}

/// `depth_multiplier = ..` (1 when absent).
pub fn depth_multiplier(class: &str, args: &Args<'_>, sig: &[&str], diag: &mut Diag) -> Option<usize> {
    args.get("depth_multiplier", sig).map_or(Some(1), |a| count(class, "depth_multiplier", "a `depth_multiplier` of at least 1", a, diag))
}

impl DepthwiseConv2D {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<DepthwiseConv2D> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let window = conv_window("DepthwiseConv2D", 2, args, sig, Some((call, "DepthwiseConv2D((3, 3))")), diag);
        let depth_multiplier = depth_multiplier("DepthwiseConv2D", args, sig, diag);
        let activation = activation(args, sig, diag);
        let use_bias = use_bias("DepthwiseConv2D", args, sig, diag);
        let depthwise = WeightArgs::parse("depthwise", args, sig, diag);
        let bias = WeightArgs::parse("bias", args, sig, diag);
        if diag.len() > errors {
            return None;
        }
        Some(DepthwiseConv2D {
            window: window?,
            depth_multiplier: depth_multiplier?,
            activation: activation?,
            use_bias: use_bias?,
            depthwise: depthwise?,
            bias: bias?,
        })
    }
}

impl Kind for DepthwiseConv2D {
    fn class(&self) -> &'static str {
        "DepthwiseConv2D"
    }

    /// Keras configuration entries compared with a file's architecture.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let dm = self.depth_multiplier;
        let mut out = vec![quote!(("depth_multiplier", ::keras::model::ConfigValue::Int(#dm)))];
        out.extend(config(None, &self.activation, self.use_bias));
        out.extend(self.window.config("kernel_size", true));
        out
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let p = self.window.place("DepthwiseConv2D", "kernel", input)?;
        Ok(vec![p.out.0, p.out.1, input[2] * self.depth_multiplier])
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (kh, kw) = self.window.size;
        // Keras 3 names the depthwise kernel of this layer `kernel`.
        let mut w = vec![self.depthwise.weight("kernel", vec![kh, kw, input[2], self.depth_multiplier])];
        if self.use_bias {
            w.push(self.bias.weight("bias", vec![input[2] * self.depth_multiplier]));
        }
        w
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let placed = self.window.place("DepthwiseConv2D", "kernel", input).expect("checked by output_shape");
        let window = self.window.runtime(input, &placed);
        let (kh, kw) = self.window.size;
        let c = input[2];
        let channels = c * self.depth_multiplier;
        let in_width: usize = input.iter().product();
        let pixels = placed.out.0 * placed.out.1;
        let out_width = pixels * channels;
        let kernel = kh * kw * channels;
        let cols = pixels * kh * kw * c;
        let (act, bias) = (&self.activation, self.use_bias);
        let ty = quote!(::keras::layers::DepthwiseConv2D<#in_width, #out_width, #kernel, #channels, #cols, #act, #bias>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
