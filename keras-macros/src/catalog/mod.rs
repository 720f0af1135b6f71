//! The layers the DSL knows, one file each: a [`Kind`] (shape rule, weights, Keras config, runtime
//! type; defaults for what most layers lack) and its [`Entry`] (class, arguments, builder), listed
//! in [`REGISTRY`]. Adding a layer means one file here, one line in the registry and one file in
//! `keras-runtime/src/layers/` (plus kernels if its math is new); `sequential!` and `functional!`
//! both read the registry.

pub mod activation;
pub mod batch_norm;
pub mod bidirectional;
pub mod conv2d;
pub mod conv2d_transpose;
pub mod custom;
pub mod dense;
pub mod depthwise_conv2d;
pub mod dropout;
pub mod elu;
pub mod embedding;
pub mod flatten;
pub mod input;
pub mod lambda;
pub mod layer_norm;
pub mod names;
pub mod noise;
pub mod normalization;
pub mod padding;
pub mod penalties;
pub mod permute;
pub mod pool2d;
pub mod prelu;
pub mod recurrent;
pub mod relu;
pub mod repeat_vector;
pub mod rescaling;
pub mod reshape;
pub mod separable_conv2d;
pub mod softmax;
pub mod time_distributed;
pub mod upsampling2d;

use crate::diag::Diag;
use crate::parse::{Arg, Call};
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::any::Any;
use syn::{BinOp, Expr, ExprBinary, ExprLit, ExprUnary, Lit, UnOp};

/// A per-sample shape (`[28, 28, 1]`).
pub type Shape = Vec<usize>;

/// One weight tensor of a layer.
pub struct Weight {
    pub name: &'static str,
    pub shape: Shape,
    pub trainable: bool,
    /// The runtime `Initializer` expression.
    pub init: TokenStream,
    /// The runtime `Regularizer` expression, if any.
    pub regularizer: Option<TokenStream>,
    /// The runtime `Constraint` expression, if any.
    pub constraint: Option<TokenStream>,
}

/// How generated code drives a layer.
#[derive(Clone)]
pub struct Runtime {
    /// The runtime type, dimensions as literals: `::keras::layers::Dense<784, 32, Relu, true>`.
    pub ty: TokenStream,
    /// An expression that builds the layer value.
    pub ctor: TokenStream,
    /// Row width the layer reads.
    pub in_width: usize,
    /// Row width the layer writes.
    pub out_width: usize,
    /// Rows per sample (the positions the layer maps over).
    pub rows_per_sample: usize,
}

/// How a class's arguments are bound: its keyword parameters besides `in`, `name` and `params`,
/// and how many of the first may be given by position.
pub type Signature = (&'static [&'static str], usize);

/// One Keras layer class as the DSL knows it: how its call is parsed, its shape rule, its
/// weights, its Keras config and the runtime type generated code drives. Each layer kind
/// implements it in its own file; what most layers lack has a default (no weights, the input's
/// shape, no config entries, no constants).
pub trait Kind: Any {
    /// The Keras class name (`Dense`).
    fn class(&self) -> &'static str;

    /// The output shape for a per-sample input shape, or an error message in Keras's words.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        Ok(input.to_vec())
    }

    /// The layer's weights, in Keras order.
    fn weights(&self, _input: &[usize]) -> Vec<Weight> {
        Vec::new()
    }

    /// The runtime `Regularizer` on the layer's output (`activity_regularizer = l2(0.01)`).
    fn activity_regularizer(&self) -> Option<TokenStream> {
        None
    }

    /// The layer's Keras configuration as `LayerSpec::config` entries (`("units", Int(32))`), for
    /// comparing the model with a file's architecture.
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        Vec::new()
    }

    /// The runtime type and how to call it; `index` is the layer's place in the model (the
    /// random layers' stream key).
    fn runtime(&self, input: &[usize], output: &[usize], index: usize) -> Runtime;

    /// Values the layer reads that are no weights in Keras (a `Normalization`'s given `mean`
    /// and `variance`), for the model's constants.
    fn constants(&self, _input: &[usize]) -> Vec<f32> {
        Vec::new()
    }

    /// A layer of the user's: the impl its weights are read from (its [`Kind::weights`] are
    /// then empty and rustc counts them).
    fn custom(&self, _input: &[usize]) -> Option<crate::expand::CustomRef> {
        None
    }

    /// Compile-time assertions the generated code makes for this layer (a custom layer's
    /// shape rule), as statements of a `const` block.
    fn checks(&self, _input: &[usize]) -> Vec<TokenStream> {
        Vec::new()
    }
}

/// Builds a layer of an entry's class from its call and bound arguments, reporting what is wrong.
pub type Build = fn(&Call, &Args<'_>, &mut Diag) -> Option<Layer>;

/// One row of the [`REGISTRY`]: a class name, its signature and its builder.
pub struct Entry {
    /// The Keras class name, as written in the DSL.
    pub class: &'static str,
    /// Its parameters.
    pub signature: Signature,
    /// Its builder.
    pub build: Build,
}

/// Every layer class the DSL accepts besides `Input` (and the merges, which `functional!`
/// handles): one line per class. Adding a layer is one file in this folder (a [`Kind`] and its
/// [`Entry`]) and one line here.
pub const REGISTRY: &[Entry] = &[
    dense::ENTRY,
    activation::ENTRY,
    dropout::ENTRY,
    flatten::ENTRY,
    batch_norm::ENTRY,
    layer_norm::ENTRY,
    reshape::ENTRY,
    reshape::ACTIVITY_REGULARIZATION,
    conv2d::CONV2D,
    pool2d::MAX_POOLING_2D,
    pool2d::AVERAGE_POOLING_2D,
    pool2d::GLOBAL_AVERAGE_POOLING_2D,
    pool2d::GLOBAL_MAX_POOLING_2D,
    conv2d::CONV1D,
    pool2d::MAX_POOLING_1D,
    pool2d::AVERAGE_POOLING_1D,
    pool2d::GLOBAL_AVERAGE_POOLING_1D,
    pool2d::GLOBAL_MAX_POOLING_1D,
    depthwise_conv2d::ENTRY,
    separable_conv2d::ENTRY,
    conv2d_transpose::ENTRY,
    permute::ENTRY,
    repeat_vector::ENTRY,
    upsampling2d::ENTRY,
    padding::ZERO_PADDING_2D,
    padding::CROPPING_2D,
    noise::GAUSSIAN_NOISE,
    noise::GAUSSIAN_DROPOUT,
    noise::SPATIAL_DROPOUT_2D,
    time_distributed::ENTRY,
    embedding::ENTRY,
    recurrent::SIMPLE_RNN,
    recurrent::LSTM,
    recurrent::GRU,
    bidirectional::ENTRY,
    normalization::ENTRY,
    rescaling::ENTRY,
    relu::RELU,
    relu::LEAKY_RELU,
    elu::ENTRY,
    prelu::ENTRY,
    softmax::ENTRY,
    lambda::ENTRY,
];

/// The entry of `class`, if the DSL knows it.
pub fn entry(class: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.class == class)
}

/// The classes the DSL accepts in a chain, `Input` first, as messages list them.
pub fn classes() -> Vec<&'static str> {
    std::iter::once("Input").chain(REGISTRY.iter().map(|e| e.class)).collect()
}

/// A parsed and validated layer of any kind.
pub struct Layer(Box<dyn Kind>);

impl std::ops::Deref for Layer {
    type Target = dyn Kind;
    fn deref(&self) -> &dyn Kind {
        &*self.0
    }
}

impl Layer {
    /// Wraps a built layer.
    pub fn new(kind: impl Kind) -> Layer {
        Layer(Box::new(kind))
    }

    /// Builds the layer of class `class` from its call.
    pub fn build(class: &str, call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Layer> {
        (entry(class)?.build)(call, args, diag)
    }

    /// The keyword arguments the class takes besides `in`, `name` and `params`, positional ones first.
    pub fn signature(class: &str) -> Signature {
        match class {
            "Input" => input::SIGNATURE,
            _ => entry(class).map_or((&[], 0), |e| e.signature),
        }
    }

    /// The prefix of default names of a class (`dense`, `dense_1`, ..): Keras's snake case.
    pub fn snake(class: &str) -> String {
        keras_naming::snake_case(class)
    }

    /// The layer as its concrete kind, for the checkers' few kind-specific rules.
    pub fn downcast_ref<T: Kind>(&self) -> Option<&T> {
        let any: &dyn Any = &*self.0;
        any.downcast_ref()
    }

    /// The layer as its concrete kind, mutably.
    pub fn downcast_mut<T: Kind>(&mut self) -> Option<&mut T> {
        let any: &mut dyn Any = &mut *self.0;
        any.downcast_mut()
    }
}

/// Arguments bound to a layer's parameters.
pub struct Args<'a> {
    /// The value given for each parameter of the signature, in signature order.
    pub values: Vec<Option<&'a Arg>>,
    /// `in = ..`.
    pub input: Option<&'a Arg>,
    /// `name = ".."`.
    pub name: Option<&'a Arg>,
    /// `params = N`.
    pub params: Option<&'a Arg>,
}

impl<'a> Args<'a> {
    /// The argument bound to `param`.
    pub fn get(&self, param: &str, signature: &[&str]) -> Option<&'a Arg> {
        signature.iter().position(|p| *p == param).and_then(|i| self.values[i])
    }
}

/// Binds a call's arguments to `signature` (whose first `positional` names may be given by
/// position), reporting unknown, duplicate and surplus arguments.
pub fn bind<'a>(
    class: &str,
    call: &'a Call,
    signature: &[&'static str],
    positional: usize,
    takes_common: bool,
    diag: &mut Diag,
) -> Args<'a> {
    let mut args = Args { values: vec![None; signature.len()], input: None, name: None, params: None };
    let mut next_positional = 0;
    for arg in &call.args {
        match arg.key() {
            // Positional arguments fill the positional parameters in order, wherever they stand:
            // `Dense(32, in = 784, relu)` reads as it does in Keras's docs.
            None => {
                if next_positional < positional {
                    if args.values[next_positional].is_some() {
                        diag.error(arg, format!("`{}` is given twice (by position and by name)", signature[next_positional]));
                    } else {
                        args.values[next_positional] = Some(arg);
                    }
                    next_positional += 1;
                } else {
                    let names = signature[..positional].iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                    diag.error(
                        arg,
                        format!(
                            "{class} takes at most {positional} positional argument{} ({names}); name the others, as in `use_bias = false`",
                            if positional == 1 { "" } else { "s" }
                        ),
                    );
                }
            }
            Some(key) => {
                let k = key.to_string();
                let slot = if takes_common {
                    match k.as_str() {
                        "in" => Some(&mut args.input),
                        "name" => Some(&mut args.name),
                        "params" => Some(&mut args.params),
                        _ => None,
                    }
                } else {
                    None
                };
                let slot = match slot {
                    Some(s) => s,
                    None => match signature.iter().position(|p| *p == k) {
                        Some(i) => &mut args.values[i],
                        None => {
                            let mut valid: Vec<&str> = signature.to_vec();
                            if takes_common {
                                valid.extend(["in", "name", "params"]);
                            }
                            let hint = names::suggest(&k, &valid).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                            diag.error(
                                key,
                                format!(
                                    "{class} has no argument `{k}`{hint} (expected one of {})",
                                    valid.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                                ),
                            );
                            continue;
                        }
                    },
                };
                if slot.is_some() {
                    diag.error(arg, format!("`{k}` is given twice"));
                    continue;
                } else {
                    *slot = Some(arg);
                }
            }
        }
    }
    args
}

/// An integer literal, possibly negated.
pub fn int(e: &Expr) -> Option<i128> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse().ok(),
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr, .. }) => int(expr).map(|v| -v),
        Expr::Paren(p) => int(&p.expr),
        Expr::Group(g) => int(&g.expr),
        _ => None,
    }
}

/// A numeric literal (integer or float), possibly negated, or arithmetic of them (`1.0 / 255.0`,
/// computed in f64 as Python computes `1 / 255`).
pub fn float(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Float(f), .. }) => f.base10_parse().ok(),
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse::<i128>().ok().map(|v| v as f64),
        Expr::Unary(ExprUnary { op: UnOp::Neg(_), expr, .. }) => float(expr).map(|v| -v),
        Expr::Binary(ExprBinary { left, op, right, .. }) => {
            let (a, b) = (float(left)?, float(right)?);
            match op {
                BinOp::Add(_) => Some(a + b),
                BinOp::Sub(_) => Some(a - b),
                BinOp::Mul(_) => Some(a * b),
                BinOp::Div(_) => Some(a / b),
                _ => None,
            }
        }
        Expr::Paren(p) => float(&p.expr),
        Expr::Group(g) => float(&g.expr),
        _ => None,
    }
}

/// A number argument of `class` (its `key`), finite in f32; `default` when it is not given.
pub fn finite(class: &str, key: &str, arg: Option<&Arg>, default: f64, diag: &mut Diag) -> Option<f64> {
    let Some(a) = arg else { return Some(default) };
    match float(&a.value) {
        Some(v) if v.is_finite() && (v as f32).is_finite() => Some(v),
        _ => {
            diag.error(a, format!("{class}'s `{key}` expects a finite number, found `{}`", a.value.to_token_stream()));
            None
        }
    }
}

/// A number argument that Keras requires to be at least 0 (`negative_slope`, `max_value`).
pub fn non_negative(class: &str, key: &str, arg: Option<&Arg>, default: f64, diag: &mut Diag) -> Option<f64> {
    let v = finite(class, key, arg, default, diag)?;
    if v < 0.0 {
        diag.error(
            arg.expect("the default is not negative"),
            format!("{class}'s `{key}` cannot be negative (Keras refuses it), found {v:?}"),
        );
        return None;
    }
    Some(v)
}

/// A `true`/`false` literal.
pub fn boolean(e: &Expr) -> Option<bool> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => Some(b.value),
        _ => None,
    }
}

/// A name written as an identifier (`relu`) or a string (`"relu"`).
pub fn word(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
        _ => None,
    }
}

/// A shape: `784`, `(28, 28, 1)` or `[28, 28]`, every dimension at least 1.
pub fn shape(e: &Expr, what: &str, diag: &mut Diag) -> Option<Shape> {
    let dims: Vec<&Expr> = match e {
        Expr::Tuple(t) => t.elems.iter().collect(),
        Expr::Array(a) => a.elems.iter().collect(),
        Expr::Paren(p) => vec![&*p.expr],
        other => vec![other],
    };
    let mut out = Vec::new();
    for d in &dims {
        match int(d) {
            Some(v) if v >= 1 && v <= u32::MAX as i128 => out.push(v as usize),
            Some(v) => {
                diag.error(d, format!("{what} dimensions must be at least 1, found {v}"));
                return None;
            }
            None => {
                diag.error(
                    e,
                    format!("{what} expects a shape, an integer like `784` or a tuple like `(28, 28, 1)`, found `{}`", e.to_token_stream()),
                );
                return None;
            }
        }
    }
    if out.is_empty() {
        diag.error(e, format!("{what} expects a shape with at least one dimension"));
        return None;
    }
    Some(out)
}

/// A `ConfigValue::List` of integers (a Keras tuple such as `dims` or `size`).
pub fn int_list(values: &[usize]) -> TokenStream {
    quote::quote!(::keras::model::ConfigValue::List(&[#(::keras::model::ConfigValue::Int(#values)),*]))
}

/// `(None, 28, 28)`.
pub fn fmt_shape(s: &[usize]) -> String {
    let mut out = String::from("(None");
    for d in s {
        out.push_str(&format!(", {d}"));
    }
    out.push(')');
    out
}
