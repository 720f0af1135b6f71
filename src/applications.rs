//! Keras's model zoo (`keras.applications`): the architectures Keras users take ImageNet-trained
//! weights for, written in the `functional!` DSL, so each one's shapes and parameter count are
//! checked and known at compile time.
//!
//! The structs here (feature `applications`, off by default: they add about 45 s to this
//! crate's release build) are Keras's defaults: 224x224x3 images (299x299x3 for Xception,
//! InceptionV3 and InceptionResNetV2), the ImageNet classifier (1000 classes, softmax). [`application!`](crate::application) makes the others, feature or not (another
//! input size, the headless model with `pooling`, other classes, MobileNet's widths).
//!
//! ```no_run
//! # #[cfg(feature = "applications")] {
//! use keras::prelude::*;
//! use keras::applications::ResNet50;
//!
//! // Reads ~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5, Keras's own file.
//! let model = ResNet50::from_keras_cache(&Cpu::default())?;
//! # }
//! # Ok::<(), keras::Error>(())
//! ```
//!
//! Every layer has Keras's name (`conv1_conv`, `conv2_block1_1_conv`, ..) and the models
//! Keras's (`resnet50`), so `summary()` prints what Keras prints and Keras's weight files, legacy
//! `.h5` included, load by layer name. Not yet written: NASNet, EfficientNet, ConvNeXt and the
//! ResNets v2.

use crate::{Error, Result};
use std::path::PathBuf;

pub use keras_runtime::applications::imagenet_utils;
pub use keras_runtime::applications::imagenet_utils::{Mode, Prediction, decode_predictions};

/// Keras's per-family modules (`keras.applications.resnet50.preprocess_input`, ..): each family's
/// `preprocess_input`, in place, and [`decode_predictions`].
macro_rules! family {
    ($($(#[$doc:meta])* $module:ident => $mode:ident;)*) => {$(
        $(#[$doc])*
        pub mod $module {
            pub use super::decode_predictions;

            /// Scales images (channels last, RGB values in 0..=255) in place as this family's
            /// models were trained on them: Keras's `preprocess_input` of this module.
            ///
            /// # Errors
            /// See [`imagenet_utils::preprocess_input`](super::imagenet_utils::preprocess_input).
            pub fn preprocess_input<S: crate::ndarray::DataMut<Elem = f32>, D: crate::ndarray::Dimension>(
                x: &mut crate::ndarray::ArrayBase<S, D>,
            ) -> crate::Result<()> {
                super::imagenet_utils::preprocess_input(x, super::Mode::$mode)
            }
        }
    )*};
}

family! {
    /// VGG16: caffe preprocessing (BGR, less the ImageNet means).
    vgg16 => Caffe;
    /// VGG19: caffe preprocessing.
    vgg19 => Caffe;
    /// ResNet50: caffe preprocessing.
    resnet50 => Caffe;
    /// ResNet50, ResNet101, ResNet152: caffe preprocessing.
    resnet => Caffe;
    /// MobileNet: tf preprocessing (-1..=1).
    mobilenet => Tf;
    /// MobileNetV2: tf preprocessing (-1..=1).
    mobilenet_v2 => Tf;
    /// Xception: tf preprocessing (-1..=1).
    xception => Tf;
    /// InceptionV3: tf preprocessing (-1..=1).
    inception_v3 => Tf;
    /// InceptionResNetV2: tf preprocessing (-1..=1).
    inception_resnet_v2 => Tf;
    /// DenseNet121, DenseNet169, DenseNet201: torch preprocessing (0..=1, less the means, over
    /// the standard deviations).
    densenet => Torch;
}

#[cfg(feature = "applications")]
keras_macros::application! {
    /// VGG16 (Simonyan & Zisserman, 2014), Keras's `keras.applications.VGG16()`:
    /// 138,357,544 parameters, caffe preprocessing.
    pub struct VGG16 = VGG16();

    /// VGG19, Keras's `keras.applications.VGG19()`: 143,667,240 parameters, caffe
    /// preprocessing.
    pub struct VGG19 = VGG19();

    /// ResNet50 (He et al., 2015), Keras's `keras.applications.ResNet50()`: 25,636,712
    /// parameters, caffe preprocessing.
    pub struct ResNet50 = ResNet50();

    /// ResNet101, Keras's `keras.applications.ResNet101()`: 44,707,176 parameters.
    pub struct ResNet101 = ResNet101();

    /// ResNet152, Keras's `keras.applications.ResNet152()`: 60,419,944 parameters.
    pub struct ResNet152 = ResNet152();

    /// MobileNet (Howard et al., 2017) at width 1.0, Keras's `keras.applications.MobileNet()`:
    /// 4,253,864 parameters, tf preprocessing.
    pub struct MobileNet = MobileNet();

    /// MobileNetV2 (Sandler et al., 2018) at width 1.0, Keras's
    /// `keras.applications.MobileNetV2()`: 3,538,984 parameters, tf preprocessing.
    pub struct MobileNetV2 = MobileNetV2();

    /// DenseNet121 (Huang et al., 2016), Keras's `keras.applications.DenseNet121()`: 8,062,504
    /// parameters, torch preprocessing.
    pub struct DenseNet121 = DenseNet121();

    /// DenseNet169, Keras's `keras.applications.DenseNet169()`: 14,307,880 parameters.
    pub struct DenseNet169 = DenseNet169();

    /// DenseNet201, Keras's `keras.applications.DenseNet201()`: 20,242,984 parameters.
    pub struct DenseNet201 = DenseNet201();

    /// Xception (Chollet, 2016), Keras's `keras.applications.Xception()`: 299x299 images,
    /// 22,910,480 parameters, tf preprocessing.
    pub struct Xception = Xception();

    /// InceptionV3 (Szegedy et al., 2015), Keras's `keras.applications.InceptionV3()`: 299x299
    /// images, 23,851,784 parameters, tf preprocessing.
    pub struct InceptionV3 = InceptionV3();

    /// InceptionResNetV2 (Szegedy et al., 2016), Keras's
    /// `keras.applications.InceptionResNetV2()`: 299x299 images, 55,873,736 parameters, tf
    /// preprocessing.
    pub struct InceptionResNetV2 = InceptionResNetV2();
}

/// Where Keras keeps the files it downloads: `$KERAS_HOME/models/`, else `~/.keras/models/`.
pub fn keras_cache_dir() -> Option<PathBuf> {
    let home = match std::env::var_os("KERAS_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".keras"),
    };
    Some(home.join("models"))
}

/// The path of `file` in Keras's cache ([`keras_cache_dir`]), or an error naming the file and
/// where it was looked for (nothing is downloaded).
pub fn keras_cache_file(file: &str) -> Result<PathBuf> {
    let Some(dir) = keras_cache_dir() else {
        return Err(Error::Config(format!("cannot find Keras's cache for `{file}`: neither KERAS_HOME nor HOME is set")));
    };
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Config(format!(
            "Keras's weights file `{file}` is not in {}: download it with Python Keras (the application with \
             weights=\"imagenet\" puts it there) or copy it there, or load another file with `load_keras`",
            dir.display()
        )))
    }
}

// Keras's parameter counts (the tutorials' table, `model.count_params()`), checked as the crate
// compiles.
#[cfg(feature = "applications")]
const _: () = {
    assert!(VGG16::PARAMS == 138_357_544);
    assert!(VGG19::PARAMS == 143_667_240);
    assert!(ResNet50::PARAMS == 25_636_712);
    assert!(ResNet101::PARAMS == 44_707_176);
    assert!(ResNet152::PARAMS == 60_419_944);
    assert!(MobileNet::PARAMS == 4_253_864);
    assert!(MobileNetV2::PARAMS == 3_538_984);
    assert!(DenseNet121::PARAMS == 8_062_504);
    assert!(DenseNet169::PARAMS == 14_307_880);
    assert!(DenseNet201::PARAMS == 20_242_984);
    assert!(Xception::PARAMS == 22_910_480);
    assert!(InceptionV3::PARAMS == 23_851_784);
    assert!(InceptionResNetV2::PARAMS == 55_873_736);
};
