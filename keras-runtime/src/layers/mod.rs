//! Runtime layer types. Generated code composes them with dimensions as const generics
//! (`Dense<784, 32, Sigmoid, true>`), so the compiler checks every connection a second time: a
//! layer's input view must have the width its type names.
//!
//! Every layer implements [`Layer`]: `forward` takes a [`Forward`] and `backward` a [`Backward`],
//! structs of the views a pass may use (parameters, state, input, output, the layer's own
//! scratch, gradients), of widths `IN` and `OUT`. A layer destructures the fields it uses and
//! ignores the rest. `rows` counts samples times the positions the layer maps over (Dense on
//! `(None, 10, 32)` sees `10 * batch` rows of 32). The scratch is the layer's own: backward may
//! overwrite what forward left there. Each layer type also has the consts `PARAMS` (trainable
//! floats) and `SCRATCH` (scratch floats per row) that the macro checks and sizes with.

mod activation;
mod batch_norm;
mod bidirectional;
mod conv2d;
mod conv2d_transpose;
pub mod custom;
mod dense;
mod depthwise_conv2d;
mod dropout;
mod elu;
mod embedding;
mod flatten;
mod lambda;
mod layer;
mod layer_norm;
mod noise;
mod normalization;
mod padding;
mod permute;
mod pool2d;
mod prelu;
mod recurrent;
mod relu;
mod repeat_vector;
mod rescaling;
mod upsampling2d;

pub use activation::Activation;
pub use batch_norm::BatchNormalization;
pub use bidirectional::Bidirectional;
pub use conv2d::Conv2D;
pub use conv2d_transpose::Conv2DTranspose;
pub use dense::Dense;
pub use depthwise_conv2d::{DepthwiseConv2D, SeparableConv2D};
pub use dropout::Dropout;
pub use elu::ELU;
pub use embedding::Embedding;
pub use flatten::{Flatten, Reshape};
pub use lambda::Lambda;
pub use layer::{Backward, Ctx, DrawKey, Forward, Layer, Rows, RowsMut};
pub use layer_norm::LayerNormalization;
pub use noise::{GaussianDropout, GaussianNoise, SpatialDropout2D};
pub use normalization::Normalization;
pub use padding::{Cropping2D, ZeroPadding2D};
pub use permute::Permute;
pub use pool2d::Pool2D;
pub use prelu::PReLU;
pub use recurrent::Recurrent;
pub use relu::ReLU;
pub use repeat_vector::RepeatVector;
pub use rescaling::Rescaling;
pub use upsampling2d::UpSampling2D;
