//! `SimpleRNN`, `LSTM` and `GRU`: `(units, activation?, recurrent_activation = .., use_bias = ..,
//! return_sequences = .., go_backwards = .., kernel_initializer = .., recurrent_initializer = ..,
//! bias_initializer = .., unit_forget_bias = .. (LSTM), reset_after = .. (GRU), and the
//! regularizers and constraints of the three weights)`, over inputs `(timesteps, features)`.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, fmt_shape, int, names, penalties};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};

const COMMON: [&str; 14] = [
    "units",
    "activation",
    "use_bias",
    "return_sequences",
    "go_backwards",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
];

/// `SimpleRNN`'s parameters besides `in`, `name`, `params`; `units` and `activation` may be positional.
pub const SIMPLE_SIGNATURE: (&[&str], usize) = (&COMMON, 2);

/// `LSTM`'s parameters.
pub const LSTM_SIGNATURE: (&[&str], usize) = (
    &[
        "units",
        "activation",
        "use_bias",
        "return_sequences",
        "go_backwards",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "recurrent_activation",
        "unit_forget_bias",
    ],
    2,
);

/// `GRU`'s parameters.
pub const GRU_SIGNATURE: (&[&str], usize) = (
    &[
        "units",
        "activation",
        "use_bias",
        "return_sequences",
        "go_backwards",
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "recurrent_activation",
        "reset_after",
    ],
    2,
);

/// Which recurrent layer: its cell.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Simple,
    Lstm,
    Gru,
}

impl Cell {
    pub fn class(self) -> &'static str {
        match self {
            Cell::Simple => "SimpleRNN",
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        }
    }

    fn gates(self) -> usize {
        match self {
            Cell::Simple => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    fn signature(self) -> &'static [&'static str] {
        match self {
            Cell::Simple => SIMPLE_SIGNATURE.0,
            Cell::Lstm => LSTM_SIGNATURE.0,
            Cell::Gru => GRU_SIGNATURE.0,
        }
    }
}

/// The registry's row for `SimpleRNN`.
pub const SIMPLE_RNN: Entry = Entry {
    class: "SimpleRNN",
    signature: SIMPLE_SIGNATURE,
    build: |call, args, diag| Recurrent::build(Cell::Simple, call, args, diag).map(Layer::new),
};
/// The registry's row for `LSTM`.
pub const LSTM: Entry = Entry {
    class: "LSTM",
    signature: LSTM_SIGNATURE,
    build: |call, args, diag| Recurrent::build(Cell::Lstm, call, args, diag).map(Layer::new),
};
/// The registry's row for `GRU`.
pub const GRU: Entry = Entry {
    class: "GRU",
    signature: GRU_SIGNATURE,
    build: |call, args, diag| Recurrent::build(Cell::Gru, call, args, diag).map(Layer::new),
};

pub struct Recurrent {
    pub kind: Cell,
    pub units: usize,
    activation: TokenStream,
    recurrent_activation: TokenStream,
    use_bias: bool,
    return_sequences: bool,
    pub go_backwards: bool,
    unit_forget_bias: bool,
    reset_after: bool,
    inits: [TokenStream; 3],
    regularizers: [Option<TokenStream>; 3],
    constraints: [Option<TokenStream>; 3],
}

impl Recurrent {
    pub fn build(kind: Cell, call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Recurrent> {
        let sig = kind.signature();
        let class = kind.class();
        let errors = diag.len();
        let units = match args.get("units", sig) {
            None => {
                diag.error(call, format!("{class} needs `units`, the size of its state: `{class}(32)`"));
                None
            }
            Some(a) => match int(&a.value) {
                Some(u) if u >= 1 && u <= u32::MAX as i128 => Some(u as usize),
                Some(u) => {
                    diag.error(a, format!("{class} needs at least 1 unit, found {u}"));
                    None
                }
                None => {
                    diag.error(a, format!("{class}'s `units` expects a positive integer, found `{}`", a.value.to_token_stream()));
                    None
                }
            },
        };
        let mut act = |key: &str, default: &str| match args.get(key, sig) {
            Some(a) if super::word(&a.value).as_deref() == Some("softmax") => {
                diag.error(a, format!("{class}'s `{key}` cannot be softmax: a cell's activations act on each unit alone"));
                None
            }
            Some(a) => names::activation(&a.value, diag),
            None => {
                let ty = format_ident!("{}", default);
                Some(quote!(::keras::activations::#ty))
            }
        };
        let activation = act("activation", "Tanh");
        let recurrent_activation = act("recurrent_activation", "Sigmoid");
        let mut flag = |key: &str, default: bool| match args.get(key, sig) {
            Some(a) => boolean(&a.value).or_else(|| {
                diag.error(a, format!("{class}'s `{key}` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
                None
            }),
            None => Some(default),
        };
        let use_bias = flag("use_bias", true);
        let return_sequences = flag("return_sequences", false);
        let go_backwards = flag("go_backwards", false);
        let unit_forget_bias = flag("unit_forget_bias", true);
        let reset_after = flag("reset_after", true);
        let mut init = |key: &str, default: TokenStream| match args.get(key, sig) {
            Some(a) => names::initializer(&a.value, diag),
            None => Some(default),
        };
        let i = quote!(::keras::initializers::Initializer);
        let kernel_init = init("kernel_initializer", quote!(#i::GlorotUniform));
        let recurrent_init = init("recurrent_initializer", quote!(#i::Orthogonal { gain: 1.0 }));
        let bias_init = init("bias_initializer", quote!(#i::Zeros));
        let mut optional = |key: &str, parse: fn(&syn::Expr, &mut Diag) -> Option<TokenStream>| match args.get(key, sig) {
            Some(a) => parse(&a.value, diag).map(Some),
            None => Some(None),
        };
        let regularizers = [
            optional("kernel_regularizer", penalties::regularizer),
            optional("recurrent_regularizer", penalties::regularizer),
            optional("bias_regularizer", penalties::regularizer),
        ];
        let constraints = [
            optional("kernel_constraint", penalties::constraint),
            optional("recurrent_constraint", penalties::constraint),
            optional("bias_constraint", penalties::constraint),
        ];
        if diag.len() > errors {
            return None;
        }
        let [r0, r1, r2] = regularizers;
        let [c0, c1, c2] = constraints;
        Some(Recurrent {
            kind,
            units: units?,
            activation: activation?,
            recurrent_activation: recurrent_activation?,
            use_bias: use_bias?,
            return_sequences: return_sequences?,
            go_backwards: go_backwards?,
            unit_forget_bias: unit_forget_bias?,
            reset_after: reset_after?,
            inits: [kernel_init?, recurrent_init?, bias_init?],
            regularizers: [r0?, r1?, r2?],
            constraints: [c0?, c1?, c2?],
        })
    }

    /// The Keras configuration entries compared with a file's: key and `ConfigValue`.
    pub fn config_entries(&self) -> Vec<(&'static str, TokenStream)> {
        let (units, use_bias, seq, back, act) = (self.units, self.use_bias, self.return_sequences, self.go_backwards, &self.activation);
        let v = quote!(::keras::model::ConfigValue);
        let mut out = vec![
            ("units", quote!(#v::Int(#units))),
            ("activation", quote!(#v::Activation(<#act as ::keras::activations::ActivationFn>::KIND))),
            ("use_bias", quote!(#v::Bool(#use_bias))),
            ("return_sequences", quote!(#v::Bool(#seq))),
            ("go_backwards", quote!(#v::Bool(#back))),
        ];
        if self.kind != Cell::Simple {
            let ract = &self.recurrent_activation;
            out.push(("recurrent_activation", quote!(#v::Activation(<#ract as ::keras::activations::ActivationFn>::KIND))));
        }
        if self.kind == Cell::Gru {
            let reset_after = self.reset_after;
            out.push(("reset_after", quote!(#v::Bool(#reset_after))));
        }
        out
    }

    /// The runtime type's sizes for `input`: steps, features, units, gate blocks, bias floats.
    pub fn dims(&self, input: &[usize]) -> (usize, usize, usize, usize, usize) {
        let (t, f, u, g) = (input[0], input[1], self.units, self.kind.gates());
        let bias = if !self.use_bias {
            0
        } else if self.kind == Cell::Gru && self.reset_after {
            2 * g * u
        } else {
            g * u
        };
        (t, f, u, g, bias)
    }

    /// The runtime with `go_backwards` as given (Bidirectional's backward copy flips it).
    pub fn runtime_going(&self, input: &[usize], output: &[usize], go_backwards: bool) -> Runtime {
        let (t, f, u, g, bias) = self.dims(input);
        let (in_width, out_width): (usize, usize) = (t * f, output.iter().product());
        let ty = quote!(::keras::layers::Recurrent<#t, #f, #u, #g, #bias, #in_width, #out_width>);
        let kind = format_ident!(
            "{}",
            match self.kind {
                Cell::Simple => "Simple",
                Cell::Lstm => "Lstm",
                Cell::Gru if self.reset_after => "Gru",
                Cell::Gru => "GruResetBefore",
            }
        );
        let (act, ract, seq, back) = (&self.activation, &self.recurrent_activation, self.return_sequences, go_backwards);
        let ctor = quote!(<#ty>::new(<#ty>::cell(
            ::keras::backend::CellKind::#kind,
            <#act as ::keras::activations::ActivationFn>::KIND,
            <#ract as ::keras::activations::ActivationFn>::KIND,
            #seq,
            #back,
        )));
        Runtime { ctor, ty, in_width, out_width, rows_per_sample: 1 }
    }
}

impl Kind for Recurrent {
    fn class(&self) -> &'static str {
        self.kind.class()
    }

    /// `(timesteps, features) -> (timesteps, units)` with `return_sequences`, else `(units,)`.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let class = self.kind.class();
        if input.len() != 2 {
            return Err(format!(
                "{class} expects a sequence, input of shape (None, timesteps, features), but its input is {}: put an Embedding or a Reshape before it",
                fmt_shape(input)
            ));
        }
        Ok(if self.return_sequences { vec![input[0], self.units] } else { vec![self.units] })
    }

    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        let (f, gu) = (input[1], self.kind.gates() * self.units);
        let weight = |i: usize, name: &'static str, shape: Vec<usize>, init: TokenStream| Weight {
            name,
            shape,
            trainable: true,
            init,
            regularizer: self.regularizers[i].clone(),
            constraint: self.constraints[i].clone(),
        };
        let mut w = vec![
            weight(0, "kernel", vec![f, gu], self.inits[0].clone()),
            weight(1, "recurrent_kernel", vec![self.units, gu], self.inits[1].clone()),
        ];
        if self.use_bias {
            let inner = &self.inits[2];
            w.push(match self.kind {
                Cell::Simple => weight(2, "bias", vec![gu], inner.clone()),
                Cell::Lstm if self.unit_forget_bias => {
                    weight(2, "bias", vec![gu], quote!(::keras::initializers::Initializer::UnitForgetBias(&#inner)))
                }
                Cell::Lstm => weight(2, "bias", vec![gu], inner.clone()),
                Cell::Gru if self.reset_after => weight(2, "bias", vec![2, gu], inner.clone()),
                Cell::Gru => weight(2, "bias", vec![gu], inner.clone()),
            });
        }
        w
    }

    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        self.config_entries().into_iter().map(|(key, value)| quote!((#key, #value))).collect()
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        self.runtime_going(input, output, self.go_backwards)
    }
}
