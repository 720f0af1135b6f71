//! Keras's applications (`keras.applications`): what goes with its pretrained image models.
//!
//! [`imagenet_utils`] prepares images as the ImageNet models expect them
//! ([`imagenet_utils::preprocess_input`]) and turns their 1000 scores into class names
//! ([`imagenet_utils::decode_predictions`]). The models' published weights are Keras's legacy
//! weights files (`resnet50_weights_tf_dim_ordering_tf_kernels.h5` and the like), which
//! `load_keras` reads into a model of the same layer names.

mod imagenet_classes;
pub mod imagenet_utils;
