//! `keras.applications.imagenet_utils`: the input scalings of Keras's ImageNet models and the
//! names of the 1000 ImageNet classes their outputs score.
//!
//! ```
//! use keras_runtime::applications::imagenet_utils::{Mode, decode_predictions, preprocess_input};
//! use keras_runtime::ndarray::{Array2, Array4};
//!
//! // A batch of one 2x2 RGB image, values in 0..=255, scaled as ResNet50 expects (caffe).
//! let mut images = Array4::<f32>::from_elem((1, 2, 2, 3), 128.0);
//! preprocess_input(&mut images, Mode::Caffe)?;
//! assert_eq!(images[[0, 0, 0, 0]], 128.0 - 103.939);
//!
//! // A model's scores for two images: the best guesses, highest first.
//! let mut scores = Array2::<f32>::zeros((2, 1000));
//! scores[[0, 281]] = 0.9;
//! scores[[0, 285]] = 0.1;
//! scores[[1, 999]] = 1.0;
//! let top = decode_predictions(scores.view(), 2)?;
//! assert_eq!((top[0][0].name, top[0][1].name), ("tabby", "Egyptian_cat"));
//! assert_eq!(top[1][0].class_id, "n15075141");
//! # Ok::<(), keras_runtime::Error>(())
//! ```

pub use super::imagenet_classes::IMAGENET_CLASSES;
use crate::error::tuple_shape;
use crate::{Error, Result};
use ndarray::{ArrayBase, ArrayView2, Axis, DataMut, Dimension};
use std::cmp::Ordering;

/// How [`preprocess_input`] scales images, as Keras's `mode` argument: each ImageNet model was
/// trained on images scaled one of these ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `"caffe"` (VGG16, VGG19, ResNet50 and the other ResNets v1): RGB turned to BGR, then each
    /// channel less its ImageNet mean (B 103.939, G 116.779, R 123.68); no scaling.
    Caffe,
    /// `"tf"` (Xception, InceptionV3, MobileNet, the ResNets v2): values scaled from 0..=255 to
    /// -1..=1, `x / 127.5 - 1`, every value alike.
    Tf,
    /// `"torch"` (DenseNet): values scaled to 0..=1, then each channel less its ImageNet mean
    /// (R 0.485, G 0.456, B 0.406) and divided by its standard deviation (0.229, 0.224, 0.225).
    Torch,
}

/// Keras's `keras.applications.imagenet_utils.preprocess_input(x, mode=...)` on a NumPy array,
/// in place: `x` holds images channels last (`(samples, height, width, 3)`, one image
/// `(height, width, 3)`, or any array whose last axis is the color), RGB values in 0..=255, and
/// is scaled as `mode` says, in `f32` arithmetic as Keras does it.
///
/// [`Mode::Caffe`] and [`Mode::Torch`] treat each color channel apart, so `x` must have a last
/// axis of 3; [`Mode::Tf`] scales every value alike and takes any shape. An empty batch (no
/// samples, `(0, height, width, 3)`) is left as it is.
///
/// # Errors
///
/// [`Error::Shape`] naming the shape of `x` when `mode` is [`Mode::Caffe`] or [`Mode::Torch`]
/// and its last axis is not 3 (or it has no axes); `x` is then left unchanged.
pub fn preprocess_input<S: DataMut<Elem = f32>, D: Dimension>(x: &mut ArrayBase<S, D>, mode: Mode) -> Result<()> {
    let (mean, std, scale, bgr): ([f32; 3], [f32; 3], f32, bool) = match mode {
        Mode::Tf => {
            x.mapv_inplace(|v| v / 127.5 - 1.0);
            return Ok(());
        }
        Mode::Caffe => ([103.939, 116.779, 123.68], [1.0; 3], 1.0, true),
        Mode::Torch => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 255.0, false),
    };
    if x.shape().last() != Some(&3) {
        return Err(Error::shape(
            format!("preprocess_input x (images channels last, mode {mode:?})"),
            "(..., 3): a last axis of 3 color channels (RGB)",
            tuple_shape(x.shape()),
        ));
    }
    let last = Axis(x.ndim() - 1);
    for mut pixel in x.lanes_mut(last) {
        if bgr {
            pixel.swap(0, 2);
        }
        // Keras's steps, each rounded to f32: `x /= 255`, `x -= mean`, `x /= std` (caffe
        // neither scales nor divides: by 1, which changes nothing).
        for ((v, m), s) in pixel.iter_mut().zip(mean).zip(std) {
            *v = (*v / scale - m) / s;
        }
    }
    Ok(())
}

/// One of [`decode_predictions`]'s guesses: a class and the score the model gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The class's WordNet id (`"n02123045"`), Keras's `class_name`.
    pub class_id: &'static str,
    /// Keras's name of the class (`"tabby"`), Keras's `class_description`.
    pub name: &'static str,
    /// The model's score for the class.
    pub score: f32,
}

/// Keras's `keras.applications.imagenet_utils.decode_predictions(preds, top)`: for each row of
/// `preds` (the 1000 scores of an ImageNet model's output for one sample, in the order of
/// [`IMAGENET_CLASSES`]), the `top` classes of highest score, highest first. `top` larger than
/// 1000 gives all 1000.
///
/// Equal scores are listed by class index, the lower first (Keras's order of ties depends on
/// NumPy's unstable `argsort`). A NaN score counts as larger than any number, as NumPy sorts it.
/// Keras's own table is a download (`imagenet_class_index.json`); this one is built in.
///
/// # Errors
///
/// [`Error::Shape`] naming the shape of `preds` when its rows are not 1000 scores long, as
/// Keras's `ValueError`.
pub fn decode_predictions(preds: ArrayView2<f32>, top: usize) -> Result<Vec<Vec<Prediction>>> {
    if preds.ncols() != IMAGENET_CLASSES.len() {
        return Err(Error::shape(
            "decode_predictions preds (a batch of predictions, one row of 1000 ImageNet class scores per sample)",
            "(samples, 1000)",
            tuple_shape(preds.shape()),
        ));
    }
    let top = top.min(IMAGENET_CLASSES.len());
    let rank = |v: f32| if v.is_nan() { f32::INFINITY } else { v };
    Ok(preds
        .rows()
        .into_iter()
        .map(|row| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            // Highest first; NaN above everything; ties by the lower index (a stable sort).
            order.sort_by(|&a, &b| {
                let (x, y) = (row[a], row[b]);
                y.is_nan().cmp(&x.is_nan()).then(rank(y).partial_cmp(&rank(x)).unwrap_or(Ordering::Equal))
            });
            order
                .into_iter()
                .take(top)
                .map(|i| Prediction { class_id: IMAGENET_CLASSES[i].0, name: IMAGENET_CLASSES[i].1, score: row[i] })
                .collect()
        })
        .collect())
}
