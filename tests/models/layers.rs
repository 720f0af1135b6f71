//! The models of the layer fixtures (`D_layer_*`: convolutions, pooling, normalization), and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! { pub struct ConvValidS1 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu) => Flatten() => Dense(3, softmax); }
sequential! { pub struct ConvValidS2 = Input((6, 6, 2)) => Conv2D(3, 3, relu, strides = (2, 2)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct ConvSameS1 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct ConvSameS2 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct Conv1Valid = Input((8, 3)) => Conv1D(3, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { pub struct Conv1SameS2 = Input((8, 3)) => Conv1D(3, 3, relu, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct ReshapeConv1 = Input(12) => Reshape((4, 3)) => Conv1D(2, 2, tanh) => Flatten() => Dense(3, softmax); }
sequential! { pub struct Conv1Causal = Input((8, 2)) => Conv1D(3, 3, tanh, padding = "causal", dilation_rate = 2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct MaxP1 = Input((9, 2)) => Conv1D(3, 2, relu) => MaxPooling1D(2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct MaxP1Same = Input((7, 3)) => MaxPooling1D(3, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct AvgP1 = Input((9, 2)) => Conv1D(3, 2, tanh) => AveragePooling1D(2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct AvgP1Same = Input((8, 3)) => AveragePooling1D(3, 2, "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct Gap1 = Input((8, 2)) => Conv1D(4, 3, relu) => GlobalAveragePooling1D() => Dense(3, softmax); }
sequential! { pub struct Gmp1 = Input((8, 2)) => Conv1D(4, 3, tanh) => GlobalMaxPooling1D() => Dense(3, softmax); }
sequential! {
    pub struct BnConv = Input((6, 5, 2)) => Conv2D(3, 3) => BatchNormalization(momentum = 0.8) => Activation(relu) => Flatten() => Dense(3, softmax);
}
sequential! { pub struct Gmp2 = Input((6, 5, 2)) => Conv2D(3, 3, tanh) => GlobalMaxPooling2D() => Dense(3, softmax); }
sequential! { pub struct Dw = Input((6, 6, 2)) => DepthwiseConv2D(3, relu) => Flatten() => Dense(3, softmax); }
sequential! { pub struct DwSameS2 = Input((7, 6, 2)) => DepthwiseConv2D((3, 2), tanh, strides = 2, padding = "same", depth_multiplier = 2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct DwDilated = Input((7, 7, 2)) => DepthwiseConv2D(3, dilation_rate = 2, padding = "same", depth_multiplier = 3, use_bias = false) => GlobalAveragePooling2D() => Dense(3, softmax); }
sequential! { pub struct DwS2D2 = Input((8, 8, 1)) => DepthwiseConv2D(3, relu, strides = 2, dilation_rate = 2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct Sep = Input((6, 6, 2)) => SeparableConv2D(4, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { pub struct SepSameS2 = Input((7, 6, 3)) => SeparableConv2D(3, 3, tanh, strides = 2, padding = "same", depth_multiplier = 2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct Tr = Input((4, 4, 2)) => Conv2DTranspose(3, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { pub struct TrSameS2 = Input((3, 4, 3)) => Conv2DTranspose(2, 3, tanh, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct TrValidS3 = Input((3, 3, 2)) => Conv2DTranspose(2, (2, 3), strides = (3, 2)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct TrSameK4 = Input((3, 3, 2)) => Conv2DTranspose(2, 4, sigmoid, strides = 2, padding = "same", use_bias = false) => GlobalMaxPooling2D() => Dense(3, softmax); }
sequential! { pub struct TrDilated = Input((4, 5, 2)) => Conv2DTranspose(2, 3, relu, dilation_rate = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! {
    pub struct Regularized = Input((6, 6, 2))
        => DepthwiseConv2D(3, tanh, depthwise_regularizer = l2(0.05), bias_regularizer = l1(0.02), depthwise_constraint = max_norm(0.6))
        => SeparableConv2D(3, 2, relu, depthwise_regularizer = l1(0.03), pointwise_regularizer = l2(0.04), pointwise_constraint = unit_norm(), bias_constraint = non_neg())
        => Conv2DTranspose(2, 2, strides = 2, kernel_regularizer = l1_l2(l1 = 0.01, l2 = 0.02), kernel_constraint = max_norm(0.8))
        => Flatten()
        => Dense(3, softmax);
}
sequential! { pub struct MaxP2 = Input((6, 6, 2)) => MaxPooling2D(2) => Flatten() => Dense(3, softmax); }
sequential! { pub struct MaxP3S2Same = Input((6, 6, 2)) => MaxPooling2D((3, 3), strides = (2, 2), padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct AvgP2 = Input((6, 6, 2)) => AveragePooling2D((2, 2)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct AvgP3S2Same = Input((6, 6, 2)) => AveragePooling2D(3, 2, "same") => Flatten() => Dense(3, softmax); }
sequential! { pub struct Gap = Input((6, 6, 2)) => Conv2D(4, (3, 3), relu) => GlobalAveragePooling2D() => Dense(3, softmax); }

/// Every fixture of this group, trained on `device` to Keras's numbers.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<ConvValidS1<B>>(device, "D_layer_conv2d_valid_s1", 1e-5);
    run_fixture_on::<ConvValidS2<B>>(device, "D_layer_conv2d_valid_s2", 1e-5);
    run_fixture_on::<ConvSameS1<B>>(device, "D_layer_conv2d_same_s1", 1e-5);
    run_fixture_on::<ConvSameS2<B>>(device, "D_layer_conv2d_same_s2", 1e-5);
    run_fixture_on::<Conv1Valid<B>>(device, "D_layer_conv1d", 1e-5);
    run_fixture_on::<Conv1SameS2<B>>(device, "D_layer_conv1d_same_s2", 1e-5);
    run_fixture_on::<ReshapeConv1<B>>(device, "D_layer_reshape", 1e-5);
    run_fixture_on::<Conv1Causal<B>>(device, "D_layer_conv1d_causal_dilated", 1e-5);
    run_fixture_on::<MaxP1<B>>(device, "D_layer_maxpooling1d_p2", 1e-5);
    run_fixture_on::<MaxP1Same<B>>(device, "D_layer_maxpooling1d_p3_s2_same", 1e-5);
    run_fixture_on::<AvgP1<B>>(device, "D_layer_averagepooling1d_p2", 1e-5);
    run_fixture_on::<AvgP1Same<B>>(device, "D_layer_averagepooling1d_p3_s2_same", 1e-5);
    run_fixture_on::<Gap1<B>>(device, "D_layer_globalaveragepooling1d", 1e-5);
    run_fixture_on::<Gmp1<B>>(device, "D_layer_globalmaxpooling1d", 1e-5);
    // BatchNormalization after a convolution: statistics over batch, height and width per channel,
    // the moving ones (non-trainable weights) compared after training.
    run_fixture_on::<BnConv<B>>(device, "D_layer_batchnorm_conv2d", 1e-5);
    run_fixture_on::<Gmp2<B>>(device, "D_layer_globalmaxpooling2d", 1e-5);
    run_fixture_on::<Dw<B>>(device, "D_layer_depthwiseconv2d_valid", 1e-5);
    run_fixture_on::<DwSameS2<B>>(device, "D_layer_depthwiseconv2d_same_s2_dm2", 1e-5);
    run_fixture_on::<DwDilated<B>>(device, "D_layer_depthwiseconv2d_dilated_nobias", 1e-5);
    run_fixture_on::<DwS2D2<B>>(device, "D_layer_depthwiseconv2d_s2_d2", 1e-5);
    run_fixture_on::<Sep<B>>(device, "D_layer_separableconv2d_valid", 1e-5);
    run_fixture_on::<SepSameS2<B>>(device, "D_layer_separableconv2d_same_s2_dm2", 1e-5);
    run_fixture_on::<Tr<B>>(device, "D_layer_conv2dtranspose_valid", 1e-5);
    run_fixture_on::<TrSameS2<B>>(device, "D_layer_conv2dtranspose_same_s2", 1e-5);
    run_fixture_on::<TrValidS3<B>>(device, "D_layer_conv2dtranspose_valid_s3_k2", 1e-5);
    run_fixture_on::<TrSameK4<B>>(device, "D_layer_conv2dtranspose_same_s2_k4_nobias", 1e-5);
    run_fixture_on::<TrDilated<B>>(device, "D_layer_conv2dtranspose_dilated_same", 1e-5);
    run_fixture_on::<Regularized<B>>(device, "D_layer_convfam_regularized", 1e-5);
    run_fixture_on::<MaxP2<B>>(device, "D_layer_maxpooling2d_p2", 1e-5);
    run_fixture_on::<MaxP3S2Same<B>>(device, "D_layer_maxpooling2d_p3_s2_same", 1e-5);
    run_fixture_on::<AvgP2<B>>(device, "D_layer_averagepooling2d_p2", 1e-5);
    run_fixture_on::<AvgP3S2Same<B>>(device, "D_layer_averagepooling2d_p3_s2_same", 1e-5);
    run_fixture_on::<Gap<B>>(device, "D_layer_globalaveragepooling2d", 1e-5);
}
