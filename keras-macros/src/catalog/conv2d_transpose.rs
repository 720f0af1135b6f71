//! `Conv2DTranspose(filters, kernel_size, activation?, strides = (1, 1), padding = "valid" |
//! "same", dilation_rate = (1, 1), use_bias = .., kernel_initializer = .., bias_initializer = ..,
//! kernel_regularizer = .., bias_regularizer = .., kernel_constraint = .., bias_constraint = ..)`:
//! the adjoint of a `Conv2D`, growing its input.

use super::conv2d::{Padding, Placed, WeightArgs, Window, activation, config, conv_window, count, use_bias};
use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::quote;

/// The same parameters as `Conv2D`.
pub const SIGNATURE: (&[&str], usize) = super::conv2d::SIGNATURE;

/// The registry's row for `Conv2DTranspose`.
pub const ENTRY: Entry = Entry {
    class: "Conv2DTranspose",
    signature: SIGNATURE,
    build: |call, args, diag| Conv2DTranspose::build(call, args, diag).map(Layer::new),
};

pub struct Conv2DTranspose {
    filters: usize,
    window: Window,
    activation: TokenStream,
    use_bias: bool,
    kernel: WeightArgs,
    bias: WeightArgs,
}

/// The output size along one axis of input size `n` and the padding before it of the adjoint
/// convolution, as Keras computes them (no `output_padding`): "valid" gives `(n - 1) * s +
/// max(k', s)`, "same" gives `n * s`, with `k'` the dilated kernel size.
pub fn axis(n: usize, k: usize, s: usize, d: usize, padding: Padding) -> (usize, usize) {
    let span = d * (k - 1) + 1;
    match padding {
        // Saturating: an absurd size is reported as too large, not wrapped.
        Padding::Same => (n.saturating_mul(s), span.saturating_sub(s) / 2),
        _ => ((n - 1).saturating_mul(s).saturating_add(span.max(s)), 0),
    }
}

impl Conv2DTranspose {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Conv2DTranspose> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let example = "Conv2DTranspose(32, (3, 3))";
        let filters = match args.get("filters", sig) {
            None => {
                diag.error(call, format!("Conv2DTranspose needs `filters` and `kernel_size`: `{example}`"));
                None
            }
            Some(a) => count("Conv2DTranspose", "filters", "at least 1 filter", a, diag),
        };
        let window = conv_window("Conv2DTranspose", 2, args, sig, filters.and(Some((call, example))), diag);
        let activation = activation(args, sig, diag);
        let use_bias = use_bias("Conv2DTranspose", args, sig, diag);
        let kernel = WeightArgs::parse("kernel", args, sig, diag);
        let bias = WeightArgs::parse("bias", args, sig, diag);
        if diag.len() > errors {
            return None;
        }
        Some(Conv2DTranspose {
            filters: filters?,
            window: window?,
            activation: activation?,
            use_bias: use_bias?,
            kernel: kernel?,
            bias: bias?,
        })
    }

    /// Output size and padding before (of the adjoint convolution), per axis.
    fn place(&self, input: &[usize]) -> Result<Placed, String> {
        let (h, w) = Window::spatial(2, "Conv2DTranspose", input)?;
        let (k, s, d, p) = (self.window.size, self.window.strides, self.window.dilation, self.window.padding);
        let (oh, pt) = axis(h, k.0, s.0, d.0, p);
        let (ow, pl) = axis(w, k.1, s.1, d.1, p);
        if oh.checked_mul(ow).and_then(|n| n.checked_mul(self.filters)).is_none_or(|n| n > u32::MAX as usize) {
            return Err(format!("Conv2DTranspose's output ({oh}, {ow}, {}) is too large", self.filters));
        }
        Ok(Placed { out: (oh, ow), pad: (pt, pl) })
    }
}

impl Kind for Conv2DTranspose {
    fn class(&self) -> &'static str {
        "Conv2DTranspose"
    }

    /// Keras configuration entries compared with a file's architecture.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let mut out = config(Some(self.filters), &self.activation, self.use_bias);
        out.extend(self.window.config("kernel_size", true));
        out
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let p = self.place(input)?;
        Ok(vec![p.out.0, p.out.1, self.filters])
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (kh, kw) = self.window.size;
        let mut w = vec![self.kernel.weight("kernel", vec![kh, kw, self.filters, input[2]])];
        if self.use_bias {
            w.push(self.bias.weight("bias", vec![self.filters]));
        }
        w
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let Placed { out: (oh, ow), pad: (pt, pl) } = self.place(input).expect("checked by output_shape");
        let (h, w, cin, f) = (input[0], input[1], input[2], self.filters);
        let ((kh, kw), (sh, sw), (dh, dw)) = (self.window.size, self.window.strides, self.window.dilation);
        // The geometry of the convolution this layer is the adjoint of: from the output to the input.
        let window = quote!(::keras::backend::Window2d { h: #oh, w: #ow, c: #f, oh: #h, ow: #w, kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw, pt: #pt, pl: #pl });
        let in_width = h * w * cin;
        let out_width = oh * ow * f;
        let kernel = kh * kw * f * cin;
        let cols = h * w * kh * kw * f;
        let (act, bias) = (&self.activation, self.use_bias);
        let ty = quote!(::keras::layers::Conv2DTranspose<#in_width, #out_width, #kernel, #f, #cols, #act, #bias>);
        Runtime { ctor: quote!(<#ty>::new(#window)), ty, in_width, out_width, rows_per_sample: 1 }
    }
}
