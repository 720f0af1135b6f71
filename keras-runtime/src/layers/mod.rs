//! Runtime layer types. Generated code composes them with dimensions as const generics
//! (`Dense<784, 32, Sigmoid, true>`), so the compiler checks every connection a second time: a
//! layer's input view must have the width its type names.
//!
//! Every layer has the same two methods, `forward(ctx, params, state, x, y, scratch, training)`
//! and `backward(ctx, params, grads, state, x, y, scratch, dy, dx)`
//! (the scratch is the layer's own: backward may overwrite what forward left there), over views whose widths are
//! the layer's `IN` and `OUT`; `rows` counts samples times the positions the layer maps over
//! (Dense on `(None, 10, 32)` sees `10 * batch` rows of 32).

mod activation;
mod batch_norm;
mod bidirectional;
mod conv2d;
mod conv2d_transpose;
mod dense;
mod depthwise_conv2d;
mod dropout;
mod embedding;
mod flatten;
mod layer_norm;
mod noise;
mod padding;
mod permute;
mod pool2d;
mod recurrent;
mod repeat_vector;
mod upsampling2d;

pub use activation::Activation;
pub use batch_norm::BatchNormalization;
pub use bidirectional::Bidirectional;
pub use conv2d::Conv2D;
pub use conv2d_transpose::Conv2DTranspose;
pub use dense::Dense;
pub use depthwise_conv2d::{DepthwiseConv2D, SeparableConv2D};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::{Flatten, Reshape};
pub use layer_norm::LayerNormalization;
pub use noise::{GaussianDropout, GaussianNoise, SpatialDropout2D};
pub use padding::{Cropping2D, ZeroPadding2D};
pub use permute::Permute;
pub use pool2d::Pool2D;
pub use recurrent::Recurrent;
pub use repeat_vector::RepeatVector;
pub use upsampling2d::UpSampling2D;

use crate::backend::Backend;

/// A read-only batch of rows of width `W`.
pub struct Rows<'a, B: Backend, const W: usize> {
    /// The data, `rows * W` floats.
    pub view: B::View<'a>,
    /// Number of rows.
    pub rows: usize,
}

impl<B: Backend, const W: usize> Clone for Rows<'_, B, W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend, const W: usize> Copy for Rows<'_, B, W> {}

impl<'a, B: Backend, const W: usize> Rows<'a, B, W> {
    /// The first `rows * W` floats of `view`.
    pub fn new(view: B::View<'a>, rows: usize) -> Self {
        Rows { view: B::sub(view, 0..rows * W), rows }
    }
}

/// A writable batch of rows of width `W`.
pub struct RowsMut<'a, B: Backend, const W: usize> {
    /// The data, `rows * W` floats.
    pub view: B::ViewMut<'a>,
    /// Number of rows.
    pub rows: usize,
}

impl<'a, B: Backend, const W: usize> RowsMut<'a, B, W> {
    /// The first `rows * W` floats of `view`.
    pub fn new(view: B::ViewMut<'a>, rows: usize) -> Self {
        RowsMut { view: B::split_mut(view, rows * W).0, rows }
    }

    /// A read-only view of the same rows.
    pub fn as_rows(&self) -> Rows<'_, B, W> {
        Rows { view: B::freeze(&self.view), rows: self.rows }
    }

    /// A shorter-lived writable view of the same rows.
    pub fn reborrow(&mut self) -> RowsMut<'_, B, W> {
        RowsMut { view: B::reborrow(&mut self.view), rows: self.rows }
    }
}
