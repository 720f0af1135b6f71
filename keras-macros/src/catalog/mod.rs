//! The layers the DSL knows, one file each: arguments, shape rule, parameter count, runtime type.
//! Adding a layer means one file here and one in `keras-runtime/src/layers/`.

pub mod activation;
pub mod batch_norm;
pub mod bidirectional;
pub mod conv2d;
pub mod conv2d_transpose;
pub mod dense;
pub mod depthwise_conv2d;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod input;
pub mod layer_norm;
pub mod names;
pub mod noise;
pub mod normalization;
pub mod padding;
pub mod penalties;
pub mod permute;
pub mod pool2d;
pub mod recurrent;
pub mod repeat_vector;
pub mod rescaling;
pub mod reshape;
pub mod separable_conv2d;
pub mod time_distributed;
pub mod upsampling2d;

use crate::diag::Diag;
use crate::parse::{Arg, Call};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{BinOp, Expr, ExprBinary, ExprLit, ExprUnary, Lit, UnOp};

/// A per-sample shape (`[28, 28, 1]`).
pub type Shape = Vec<usize>;

/// The layer classes the DSL accepts, as Keras spells them.
pub const CLASSES: &[&str] = &[
    "Input",
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "BatchNormalization",
    "LayerNormalization",
    "Reshape",
    "ActivityRegularization",
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "Conv2DTranspose",
    "Permute",
    "RepeatVector",
    "UpSampling2D",
    "ZeroPadding2D",
    "Cropping2D",
    "GaussianNoise",
    "GaussianDropout",
    "SpatialDropout2D",
    "TimeDistributed",
    "Embedding",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "Normalization",
    "Rescaling",
];

/// A parsed and validated layer.
pub enum Layer {
    Dense(Box<dense::Dense>),
    Activation(activation::Activation),
    Dropout(dropout::Dropout),
    Flatten(flatten::Flatten),
    BatchNormalization(batch_norm::BatchNormalization),
    LayerNormalization(layer_norm::LayerNormalization),
    Reshape(reshape::Reshape),
    ActivityRegularization(reshape::ActivityRegularization),
    Conv(Box<conv2d::Conv>),
    DepthwiseConv2D(Box<depthwise_conv2d::DepthwiseConv2D>),
    SeparableConv2D(Box<separable_conv2d::SeparableConv2D>),
    Conv2DTranspose(Box<conv2d_transpose::Conv2DTranspose>),
    Pool2D(pool2d::Pool2D),
    Permute(permute::Permute),
    RepeatVector(repeat_vector::RepeatVector),
    UpSampling2D(upsampling2d::UpSampling2D),
    /// `ZeroPadding2D` and `Cropping2D`.
    Border(padding::Border),
    /// `GaussianNoise`, `GaussianDropout`, `SpatialDropout2D`.
    Noise(noise::Noise),
    TimeDistributed(time_distributed::TimeDistributed),
    Embedding(embedding::Embedding),
    Recurrent(Box<recurrent::Recurrent>),
    Bidirectional(bidirectional::Bidirectional),
    Normalization(normalization::Normalization),
    Rescaling(rescaling::Rescaling),
}

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

impl Layer {
    /// Builds the layer of class `class` from its call.
    pub fn build(class: &str, call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Layer> {
        match class {
            "Dense" => dense::Dense::build(call, args, diag).map(|d| Layer::Dense(Box::new(d))),
            "Activation" => activation::Activation::build(call, args, diag).map(Layer::Activation),
            "Dropout" => dropout::Dropout::build(call, args, diag).map(Layer::Dropout),
            "Flatten" => Some(Layer::Flatten(flatten::Flatten)),
            "BatchNormalization" => batch_norm::BatchNormalization::build(call, args, diag).map(Layer::BatchNormalization),
            "LayerNormalization" => layer_norm::LayerNormalization::build(call, args, diag).map(Layer::LayerNormalization),
            "Reshape" => reshape::Reshape::build(call, args, diag).map(Layer::Reshape),
            "ActivityRegularization" => reshape::ActivityRegularization::build(args, diag).map(Layer::ActivityRegularization),
            "Conv2D" => conv2d::Conv::build("Conv2D", 2, call, args, diag).map(|c| Layer::Conv(Box::new(c))),
            "Conv1D" => conv2d::Conv::build("Conv1D", 1, call, args, diag).map(|c| Layer::Conv(Box::new(c))),
            "MaxPooling2D" => pool2d::Pool2D::build("MaxPooling2D", true, 2, args, diag).map(Layer::Pool2D),
            "AveragePooling2D" => pool2d::Pool2D::build("AveragePooling2D", false, 2, args, diag).map(Layer::Pool2D),
            "GlobalAveragePooling2D" => Some(Layer::Pool2D(pool2d::Pool2D::global("GlobalAveragePooling2D", false, 2))),
            "GlobalMaxPooling2D" => Some(Layer::Pool2D(pool2d::Pool2D::global("GlobalMaxPooling2D", true, 2))),
            "MaxPooling1D" => pool2d::Pool2D::build("MaxPooling1D", true, 1, args, diag).map(Layer::Pool2D),
            "AveragePooling1D" => pool2d::Pool2D::build("AveragePooling1D", false, 1, args, diag).map(Layer::Pool2D),
            "GlobalAveragePooling1D" => Some(Layer::Pool2D(pool2d::Pool2D::global("GlobalAveragePooling1D", false, 1))),
            "GlobalMaxPooling1D" => Some(Layer::Pool2D(pool2d::Pool2D::global("GlobalMaxPooling1D", true, 1))),
            "DepthwiseConv2D" => depthwise_conv2d::DepthwiseConv2D::build(call, args, diag).map(|c| Layer::DepthwiseConv2D(Box::new(c))),
            "SeparableConv2D" => separable_conv2d::SeparableConv2D::build(call, args, diag).map(|c| Layer::SeparableConv2D(Box::new(c))),
            "Conv2DTranspose" => conv2d_transpose::Conv2DTranspose::build(call, args, diag).map(|c| Layer::Conv2DTranspose(Box::new(c))),
            "Permute" => permute::Permute::build(call, args, diag).map(Layer::Permute),
            "RepeatVector" => repeat_vector::RepeatVector::build(call, args, diag).map(Layer::RepeatVector),
            "UpSampling2D" => upsampling2d::UpSampling2D::build(args, diag).map(Layer::UpSampling2D),
            "ZeroPadding2D" => padding::Border::padding(args, diag).map(Layer::Border),
            "Cropping2D" => padding::Border::cropping(args, diag).map(Layer::Border),
            "GaussianNoise" => noise::Noise::build("GaussianNoise", call, args, diag).map(Layer::Noise),
            "GaussianDropout" => noise::Noise::build("GaussianDropout", call, args, diag).map(Layer::Noise),
            "SpatialDropout2D" => noise::Noise::build("SpatialDropout2D", call, args, diag).map(Layer::Noise),
            "TimeDistributed" => time_distributed::TimeDistributed::build(call, args, diag).map(Layer::TimeDistributed),
            "Embedding" => embedding::Embedding::build(call, args, diag).map(Layer::Embedding),
            "SimpleRNN" => recurrent::Recurrent::build(recurrent::Kind::Simple, call, args, diag).map(|r| Layer::Recurrent(Box::new(r))),
            "LSTM" => recurrent::Recurrent::build(recurrent::Kind::Lstm, call, args, diag).map(|r| Layer::Recurrent(Box::new(r))),
            "GRU" => recurrent::Recurrent::build(recurrent::Kind::Gru, call, args, diag).map(|r| Layer::Recurrent(Box::new(r))),
            "Bidirectional" => bidirectional::Bidirectional::build(call, args, diag).map(Layer::Bidirectional),
            "Normalization" => normalization::Normalization::build(call, args, diag).map(Layer::Normalization),
            "Rescaling" => rescaling::Rescaling::build(call, args, diag).map(Layer::Rescaling),
            _ => None,
        }
    }

    /// The keyword arguments the class takes besides `in`, `name` and `params`, positional ones first.
    pub fn signature(class: &str) -> (&'static [&'static str], usize) {
        match class {
            "Dense" => dense::SIGNATURE,
            "Activation" => activation::SIGNATURE,
            "Dropout" => dropout::SIGNATURE,
            "Flatten" => flatten::SIGNATURE,
            "BatchNormalization" => batch_norm::SIGNATURE,
            "LayerNormalization" => layer_norm::SIGNATURE,
            "Reshape" => reshape::SIGNATURE,
            "ActivityRegularization" => reshape::ACTIVITY_SIGNATURE,
            "Input" => input::SIGNATURE,
            "Conv2D" | "Conv1D" => conv2d::SIGNATURE,
            "MaxPooling2D" | "AveragePooling2D" | "MaxPooling1D" | "AveragePooling1D" => pool2d::SIGNATURE,
            "GlobalAveragePooling2D" | "GlobalMaxPooling2D" | "GlobalAveragePooling1D" | "GlobalMaxPooling1D" => pool2d::GLOBAL_SIGNATURE,
            "DepthwiseConv2D" => depthwise_conv2d::SIGNATURE,
            "SeparableConv2D" => separable_conv2d::SIGNATURE,
            "Conv2DTranspose" => conv2d_transpose::SIGNATURE,
            "Permute" => permute::SIGNATURE,
            "RepeatVector" => repeat_vector::SIGNATURE,
            "UpSampling2D" => upsampling2d::SIGNATURE,
            "ZeroPadding2D" => padding::PADDING_SIGNATURE,
            "Cropping2D" => padding::CROPPING_SIGNATURE,
            "GaussianNoise" => noise::GAUSSIAN_NOISE_SIGNATURE,
            "GaussianDropout" | "SpatialDropout2D" => noise::RATE_SIGNATURE,
            "TimeDistributed" => time_distributed::SIGNATURE,
            "Embedding" => embedding::SIGNATURE,
            "SimpleRNN" => recurrent::SIMPLE_SIGNATURE,
            "LSTM" => recurrent::LSTM_SIGNATURE,
            "GRU" => recurrent::GRU_SIGNATURE,
            "Bidirectional" => bidirectional::SIGNATURE,
            "Normalization" => normalization::SIGNATURE,
            "Rescaling" => rescaling::SIGNATURE,
            _ => (&[], 0),
        }
    }

    /// The Keras class name.
    pub fn class(&self) -> &'static str {
        match self {
            Layer::Dense(_) => "Dense",
            Layer::Activation(_) => "Activation",
            Layer::Dropout(_) => "Dropout",
            Layer::Flatten(_) => "Flatten",
            Layer::BatchNormalization(_) => "BatchNormalization",
            Layer::LayerNormalization(_) => "LayerNormalization",
            Layer::Reshape(_) => "Reshape",
            Layer::ActivityRegularization(_) => "ActivityRegularization",
            Layer::Conv(c) => c.class(),
            Layer::DepthwiseConv2D(_) => "DepthwiseConv2D",
            Layer::SeparableConv2D(_) => "SeparableConv2D",
            Layer::Conv2DTranspose(_) => "Conv2DTranspose",
            Layer::Pool2D(p) => p.class(),
            Layer::Permute(_) => "Permute",
            Layer::RepeatVector(_) => "RepeatVector",
            Layer::UpSampling2D(_) => "UpSampling2D",
            Layer::Border(b) => b.class(),
            Layer::Noise(n) => n.class(),
            Layer::TimeDistributed(_) => "TimeDistributed",
            Layer::Embedding(_) => "Embedding",
            Layer::Recurrent(r) => r.kind.class(),
            Layer::Bidirectional(_) => "Bidirectional",
            Layer::Normalization(_) => "Normalization",
            Layer::Rescaling(_) => "Rescaling",
        }
    }

    /// The prefix of default names of a class (`dense`, `dense_1`, ..): Keras's snake case.
    pub fn snake(class: &str) -> &'static str {
        match class {
            "Dense" => "dense",
            "Activation" => "activation",
            "Dropout" => "dropout",
            "Flatten" => "flatten",
            "BatchNormalization" => "batch_normalization",
            "LayerNormalization" => "layer_normalization",
            "Reshape" => "reshape",
            "ActivityRegularization" => "activity_regularization",
            "Conv2D" => "conv2d",
            "MaxPooling2D" => "max_pooling2d",
            "AveragePooling2D" => "average_pooling2d",
            "GlobalAveragePooling2D" => "global_average_pooling2d",
            "GlobalMaxPooling2D" => "global_max_pooling2d",
            "Conv1D" => "conv1d",
            "MaxPooling1D" => "max_pooling1d",
            "AveragePooling1D" => "average_pooling1d",
            "GlobalAveragePooling1D" => "global_average_pooling1d",
            "GlobalMaxPooling1D" => "global_max_pooling1d",
            "DepthwiseConv2D" => "depthwise_conv2d",
            "SeparableConv2D" => "separable_conv2d",
            "Conv2DTranspose" => "conv2d_transpose",
            "Permute" => "permute",
            "RepeatVector" => "repeat_vector",
            "UpSampling2D" => "up_sampling2d",
            "ZeroPadding2D" => "zero_padding2d",
            "Cropping2D" => "cropping2d",
            "GaussianNoise" => "gaussian_noise",
            "GaussianDropout" => "gaussian_dropout",
            "SpatialDropout2D" => "spatial_dropout2d",
            "TimeDistributed" => "time_distributed",
            "Embedding" => "embedding",
            "SimpleRNN" => "simple_rnn",
            "LSTM" => "lstm",
            "GRU" => "gru",
            "Bidirectional" => "bidirectional",
            "Normalization" => "normalization",
            "Rescaling" => "rescaling",
            "Add" => "add",
            "Subtract" => "subtract",
            "Multiply" => "multiply",
            "Average" => "average",
            "Maximum" => "maximum",
            "Minimum" => "minimum",
            "Concatenate" => "concatenate",
            _ => "layer",
        }
    }

    /// The output shape for an input shape, or an error message in Keras's words.
    pub fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        match self {
            Layer::Dense(l) => l.output_shape(input),
            Layer::Activation(_) | Layer::Dropout(_) | Layer::Rescaling(_) => Ok(input.to_vec()),
            Layer::Flatten(_) => flatten::Flatten::output_shape(input),
            Layer::BatchNormalization(l) => l.output_shape(input),
            Layer::LayerNormalization(l) => l.output_shape(input),
            Layer::Reshape(l) => l.output_shape(input),
            Layer::ActivityRegularization(_) => Ok(input.to_vec()),
            Layer::Conv(l) => l.output_shape(input),
            Layer::DepthwiseConv2D(l) => l.output_shape(input),
            Layer::SeparableConv2D(l) => l.output_shape(input),
            Layer::Conv2DTranspose(l) => l.output_shape(input),
            Layer::Pool2D(l) => l.output_shape(input),
            Layer::Permute(l) => l.output_shape(input),
            Layer::RepeatVector(l) => l.output_shape(input),
            Layer::UpSampling2D(l) => l.output_shape(input),
            Layer::Border(l) => l.output_shape(input),
            Layer::Noise(l) => l.output_shape(input),
            Layer::TimeDistributed(l) => l.output_shape(input),
            Layer::Embedding(l) => l.output_shape(input),
            Layer::Recurrent(l) => l.output_shape(input),
            Layer::Bidirectional(l) => l.output_shape(input),
            Layer::Normalization(l) => l.output_shape(input),
        }
    }

    /// The layer's weights, in Keras order.
    pub fn weights(&self, input: &[usize]) -> Vec<Weight> {
        match self {
            Layer::Dense(l) => l.weights(input),
            Layer::BatchNormalization(l) => l.weights(input),
            Layer::LayerNormalization(l) => l.weights(input),
            Layer::Conv(l) => l.weights(input),
            Layer::DepthwiseConv2D(l) => l.weights(input),
            Layer::SeparableConv2D(l) => l.weights(input),
            Layer::Conv2DTranspose(l) => l.weights(input),
            Layer::TimeDistributed(l) => l.weights(input),
            Layer::Embedding(l) => l.weights(),
            Layer::Recurrent(l) => l.weights(input),
            Layer::Bidirectional(l) => l.weights(input),
            Layer::Normalization(l) => l.weights(input),
            Layer::Permute(_)
            | Layer::RepeatVector(_)
            | Layer::UpSampling2D(_)
            | Layer::Border(_)
            | Layer::Noise(_)
            | Layer::Activation(_)
            | Layer::Dropout(_)
            | Layer::Flatten(_)
            | Layer::Reshape(_)
            | Layer::ActivityRegularization(_)
            | Layer::Pool2D(_)
            | Layer::Rescaling(_) => Vec::new(),
        }
    }

    /// The runtime `Regularizer` on the layer's output (`activity_regularizer = l2(0.01)`).
    pub fn activity_regularizer(&self) -> Option<TokenStream> {
        match self {
            Layer::Dense(l) => l.activity_regularizer.clone(),
            Layer::ActivityRegularization(l) => Some(l.regularizer.clone()),
            Layer::Activation(_)
            | Layer::Dropout(_)
            | Layer::Flatten(_)
            | Layer::BatchNormalization(_)
            | Layer::LayerNormalization(_)
            | Layer::Reshape(_)
            | Layer::Conv(_)
            | Layer::DepthwiseConv2D(_)
            | Layer::SeparableConv2D(_)
            | Layer::Conv2DTranspose(_)
            | Layer::Pool2D(_)
            | Layer::Permute(_)
            | Layer::RepeatVector(_)
            | Layer::UpSampling2D(_)
            | Layer::Border(_)
            | Layer::Noise(_)
            | Layer::Embedding(_)
            | Layer::Recurrent(_)
            | Layer::Bidirectional(_)
            | Layer::Normalization(_)
            | Layer::Rescaling(_) => None,
            // Keras's TimeDistributed runs the wrapped layer's `call`, which skips its activity
            // regularizer.
            Layer::TimeDistributed(_) => None,
        }
    }

    /// The layer's Keras configuration as `LayerSpec::config` entries (`("units", Int(32))`), for
    /// comparing the model with a file's architecture.
    pub fn config(&self) -> Vec<TokenStream> {
        let activation = |act: &TokenStream| quote::quote!(("activation", ::keras::model::ConfigValue::Activation(<#act as ::keras::activations::ActivationFn>::KIND)));
        match self {
            Layer::Dense(l) => {
                let (units, use_bias) = (l.units, l.use_bias);
                vec![
                    quote::quote!(("units", ::keras::model::ConfigValue::Int(#units))),
                    activation(&l.activation),
                    quote::quote!(("use_bias", ::keras::model::ConfigValue::Bool(#use_bias))),
                ]
            }
            Layer::Activation(l) => vec![activation(&l.activation)],
            Layer::Dropout(l) => {
                let rate = l.rate;
                vec![quote::quote!(("rate", ::keras::model::ConfigValue::Float(#rate)))]
            }
            Layer::Conv(l) => l.config(),
            Layer::DepthwiseConv2D(l) => l.config(),
            Layer::SeparableConv2D(l) => l.config(),
            Layer::Conv2DTranspose(l) => l.config(),
            Layer::Pool2D(l) => l.config(),
            Layer::Reshape(l) => l.config(),
            Layer::Flatten(_) | Layer::ActivityRegularization(_) => Vec::new(),
            Layer::Noise(l) => {
                let (key, amount) = (l.key(), l.amount);
                vec![quote::quote!((#key, ::keras::model::ConfigValue::Float(#amount)))]
            }
            Layer::RepeatVector(l) => {
                let n = l.n;
                vec![quote::quote!(("n", ::keras::model::ConfigValue::Int(#n)))]
            }
            Layer::TimeDistributed(l) => {
                let (class, inner) = (l.inner.class(), l.inner.config());
                vec![quote::quote!(("layer", ::keras::model::ConfigValue::Layer(#class, &[#(#inner),*])))]
            }
            Layer::Permute(l) => l.config(),
            Layer::UpSampling2D(l) => l.config(),
            Layer::Border(l) => l.config(),
            Layer::Embedding(l) => l.config(),
            Layer::Recurrent(l) => l.config(),
            Layer::Bidirectional(l) => l.config(),
            Layer::Normalization(l) => l.config(),
            Layer::Rescaling(l) => {
                let (scale, offset) = (l.scale, l.offset);
                vec![
                    quote::quote!(("scale", ::keras::model::ConfigValue::Float(#scale))),
                    quote::quote!(("offset", ::keras::model::ConfigValue::Float(#offset))),
                ]
            }
            Layer::BatchNormalization(l) => {
                let (momentum, epsilon, center, scale) = (l.momentum, l.epsilon, l.center, l.scale);
                vec![
                    quote::quote!(("momentum", ::keras::model::ConfigValue::Float(#momentum))),
                    quote::quote!(("epsilon", ::keras::model::ConfigValue::Float(#epsilon))),
                    quote::quote!(("center", ::keras::model::ConfigValue::Bool(#center))),
                    quote::quote!(("scale", ::keras::model::ConfigValue::Bool(#scale))),
                ]
            }
            Layer::LayerNormalization(l) => {
                let (epsilon, center, scale) = (l.epsilon, l.center, l.scale);
                vec![
                    quote::quote!(("epsilon", ::keras::model::ConfigValue::Float(#epsilon))),
                    quote::quote!(("center", ::keras::model::ConfigValue::Bool(#center))),
                    quote::quote!(("scale", ::keras::model::ConfigValue::Bool(#scale))),
                ]
            }
        }
    }

    /// The runtime type and how to call it.
    pub fn runtime(&self, input: &[usize], output: &[usize], index: usize) -> Runtime {
        match self {
            Layer::Dense(l) => l.runtime(input, output),
            Layer::Activation(l) => l.runtime(input),
            Layer::Dropout(l) => l.runtime(input, index),
            Layer::Flatten(_) => flatten::Flatten::runtime(input),
            Layer::BatchNormalization(l) => l.runtime(input),
            Layer::LayerNormalization(l) => l.runtime(input),
            Layer::Reshape(_) => reshape::Reshape::runtime(input),
            Layer::ActivityRegularization(_) => reshape::ActivityRegularization::runtime(input),
            Layer::Conv(l) => l.runtime(input, output),
            Layer::DepthwiseConv2D(l) => l.runtime(input),
            Layer::SeparableConv2D(l) => l.runtime(input),
            Layer::Conv2DTranspose(l) => l.runtime(input),
            Layer::Pool2D(l) => l.runtime(input),
            Layer::Permute(l) => l.runtime(input),
            Layer::RepeatVector(l) => l.runtime(input),
            Layer::UpSampling2D(l) => l.runtime(input, output),
            Layer::Border(l) => l.runtime(input, output),
            Layer::Noise(l) => l.runtime(input, index),
            Layer::TimeDistributed(l) => l.runtime(input, output, index),
            Layer::Embedding(l) => l.runtime(input),
            Layer::Recurrent(l) => l.runtime(input, output),
            Layer::Bidirectional(l) => l.runtime(input, output),
            Layer::Normalization(l) => l.runtime(input),
            Layer::Rescaling(l) => l.runtime(input),
        }
    }

    /// Values the layer reads that are no weights in Keras (a `Normalization`'s given `mean`
    /// and `variance`), for the model's constants.
    pub fn constants(&self, input: &[usize]) -> Vec<f32> {
        match self {
            Layer::Normalization(l) => l.constants(input),
            _ => Vec::new(),
        }
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
