//! Convolution (1-D, 2-D, depthwise, separable, transposed) and pooling layers against Keras: forward, first-batch loss and gradients, two
//! epochs of SGD, within 1e-5 relative; and their shapes and parameter counts.

mod common;

use common::run_fixture;
use keras::prelude::*;

const RTOL: f64 = 1e-5;

sequential! { struct ConvValidS1 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu) => Flatten() => Dense(3, softmax); }
sequential! { struct ConvValidS2 = Input((6, 6, 2)) => Conv2D(3, 3, relu, strides = (2, 2)) => Flatten() => Dense(3, softmax); }
sequential! { struct ConvSameS1 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct ConvSameS2 = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct MaxP2 = Input((6, 6, 2)) => MaxPooling2D(2) => Flatten() => Dense(3, softmax); }
sequential! { struct MaxP3S2Same = Input((6, 6, 2)) => MaxPooling2D((3, 3), strides = (2, 2), padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct AvgP2 = Input((6, 6, 2)) => AveragePooling2D((2, 2)) => Flatten() => Dense(3, softmax); }
sequential! { struct AvgP3S2Same = Input((6, 6, 2)) => AveragePooling2D(3, 2, "same") => Flatten() => Dense(3, softmax); }
sequential! { struct Conv1Valid = Input((8, 3)) => Conv1D(3, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { struct Conv1SameS2 = Input((8, 3)) => Conv1D(3, 3, relu, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct ReshapeConv1 = Input(12) => Reshape((4, 3)) => Conv1D(2, 2, tanh) => Flatten() => Dense(3, softmax); }
sequential! { struct Conv1Causal = Input((8, 2)) => Conv1D(3, 3, tanh, padding = "causal", dilation_rate = 2) => Flatten() => Dense(3, softmax); }
sequential! { struct MaxP1 = Input((9, 2)) => Conv1D(3, 2, relu) => MaxPooling1D(2) => Flatten() => Dense(3, softmax); }
sequential! { struct MaxP1Same = Input((7, 3)) => MaxPooling1D(3, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct AvgP1 = Input((9, 2)) => Conv1D(3, 2, tanh) => AveragePooling1D(2) => Flatten() => Dense(3, softmax); }
sequential! { struct AvgP1Same = Input((8, 3)) => AveragePooling1D(3, 2, "same") => Flatten() => Dense(3, softmax); }
sequential! { struct Gap1 = Input((8, 2)) => Conv1D(4, 3, relu) => GlobalAveragePooling1D() => Dense(3, softmax); }
sequential! { struct Gmp1 = Input((8, 2)) => Conv1D(4, 3, tanh) => GlobalMaxPooling1D() => Dense(3, softmax); }
sequential! { struct Dw = Input((6, 6, 2)) => DepthwiseConv2D(3, relu) => Flatten() => Dense(3, softmax); }
sequential! { struct DwSameS2 = Input((7, 6, 2)) => DepthwiseConv2D((3, 2), tanh, strides = 2, padding = "same", depth_multiplier = 2) => Flatten() => Dense(3, softmax); }
sequential! { struct DwDilated = Input((7, 7, 2)) => DepthwiseConv2D(3, dilation_rate = 2, padding = "same", depth_multiplier = 3, use_bias = false) => GlobalAveragePooling2D() => Dense(3, softmax); }
sequential! { struct DwS2D2 = Input((8, 8, 1)) => DepthwiseConv2D(3, relu, strides = 2, dilation_rate = 2) => Flatten() => Dense(3, softmax); }
sequential! { struct Sep = Input((6, 6, 2)) => SeparableConv2D(4, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { struct SepSameS2 = Input((7, 6, 3)) => SeparableConv2D(3, 3, tanh, strides = 2, padding = "same", depth_multiplier = 2) => Flatten() => Dense(3, softmax); }
sequential! { struct Tr = Input((4, 4, 2)) => Conv2DTranspose(3, 3, relu) => Flatten() => Dense(3, softmax); }
sequential! { struct TrSameS2 = Input((3, 4, 3)) => Conv2DTranspose(2, 3, tanh, strides = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! { struct TrValidS3 = Input((3, 3, 2)) => Conv2DTranspose(2, (2, 3), strides = (3, 2)) => Flatten() => Dense(3, softmax); }
sequential! { struct TrSameK4 = Input((3, 3, 2)) => Conv2DTranspose(2, 4, sigmoid, strides = 2, padding = "same", use_bias = false) => GlobalMaxPooling2D() => Dense(3, softmax); }
sequential! { struct TrDilated = Input((4, 5, 2)) => Conv2DTranspose(2, 3, relu, dilation_rate = 2, padding = "same") => Flatten() => Dense(3, softmax); }
sequential! {
    struct Regularized = Input((6, 6, 2))
        => DepthwiseConv2D(3, tanh, depthwise_regularizer = l2(0.05), bias_regularizer = l1(0.02), depthwise_constraint = max_norm(0.6))
        => SeparableConv2D(3, 2, relu, depthwise_regularizer = l1(0.03), pointwise_regularizer = l2(0.04), pointwise_constraint = unit_norm(), bias_constraint = non_neg())
        => Conv2DTranspose(2, 2, strides = 2, kernel_regularizer = l1_l2(l1 = 0.01, l2 = 0.02), kernel_constraint = max_norm(0.8))
        => Flatten()
        => Dense(3, softmax);
}
sequential! { struct Gap = Input((6, 6, 2)) => Conv2D(4, (3, 3), relu) => GlobalAveragePooling2D() => Dense(3, softmax); }

#[test]
fn conv2d_valid_stride1_matches_keras() {
    run_fixture::<ConvValidS1>("D_layer_conv2d_valid_s1", RTOL);
}

#[test]
fn conv2d_valid_stride2_matches_keras() {
    run_fixture::<ConvValidS2>("D_layer_conv2d_valid_s2", RTOL);
}

#[test]
fn conv2d_same_stride1_matches_keras() {
    run_fixture::<ConvSameS1>("D_layer_conv2d_same_s1", RTOL);
}

#[test]
fn conv2d_same_stride2_matches_keras() {
    run_fixture::<ConvSameS2>("D_layer_conv2d_same_s2", RTOL);
}

#[test]
fn conv1d_valid_matches_keras() {
    run_fixture::<Conv1Valid>("D_layer_conv1d", RTOL);
}

#[test]
fn conv1d_same_stride2_matches_keras() {
    run_fixture::<Conv1SameS2>("D_layer_conv1d_same_s2", RTOL);
}

#[test]
fn reshape_then_conv1d_matches_keras() {
    run_fixture::<ReshapeConv1>("D_layer_reshape", RTOL);
}

#[test]
fn conv1d_causal_dilated_matches_keras() {
    run_fixture::<Conv1Causal>("D_layer_conv1d_causal_dilated", RTOL);
}

#[test]
fn max_pooling1d_matches_keras() {
    run_fixture::<MaxP1>("D_layer_maxpooling1d_p2", RTOL);
}

#[test]
fn max_pooling1d_same_strided_matches_keras() {
    run_fixture::<MaxP1Same>("D_layer_maxpooling1d_p3_s2_same", RTOL);
}

#[test]
fn average_pooling1d_matches_keras() {
    run_fixture::<AvgP1>("D_layer_averagepooling1d_p2", RTOL);
}

#[test]
fn average_pooling1d_same_strided_matches_keras() {
    run_fixture::<AvgP1Same>("D_layer_averagepooling1d_p3_s2_same", RTOL);
}

#[test]
fn global_average_pooling1d_matches_keras() {
    run_fixture::<Gap1>("D_layer_globalaveragepooling1d", RTOL);
}

#[test]
fn global_max_pooling1d_matches_keras() {
    run_fixture::<Gmp1>("D_layer_globalmaxpooling1d", RTOL);
}

#[test]
fn depthwise_conv2d_matches_keras() {
    run_fixture::<Dw>("D_layer_depthwiseconv2d_valid", RTOL);
}

#[test]
fn depthwise_conv2d_same_strided_multiplier_matches_keras() {
    run_fixture::<DwSameS2>("D_layer_depthwiseconv2d_same_s2_dm2", RTOL);
}

#[test]
fn depthwise_conv2d_dilated_without_bias_matches_keras() {
    run_fixture::<DwDilated>("D_layer_depthwiseconv2d_dilated_nobias", RTOL);
}

#[test]
fn depthwise_conv2d_strided_and_dilated_matches_keras() {
    run_fixture::<DwS2D2>("D_layer_depthwiseconv2d_s2_d2", RTOL);
}

#[test]
fn separable_conv2d_matches_keras() {
    run_fixture::<Sep>("D_layer_separableconv2d_valid", RTOL);
}

#[test]
fn separable_conv2d_same_strided_multiplier_matches_keras() {
    run_fixture::<SepSameS2>("D_layer_separableconv2d_same_s2_dm2", RTOL);
}

#[test]
fn conv2d_transpose_matches_keras() {
    run_fixture::<Tr>("D_layer_conv2dtranspose_valid", RTOL);
}

#[test]
fn conv2d_transpose_same_stride2_matches_keras() {
    run_fixture::<TrSameS2>("D_layer_conv2dtranspose_same_s2", RTOL);
}

#[test]
fn conv2d_transpose_valid_stride_over_kernel_matches_keras() {
    run_fixture::<TrValidS3>("D_layer_conv2dtranspose_valid_s3_k2", RTOL);
}

#[test]
fn conv2d_transpose_same_kernel4_without_bias_matches_keras() {
    run_fixture::<TrSameK4>("D_layer_conv2dtranspose_same_s2_k4_nobias", RTOL);
}

#[test]
fn conv2d_transpose_dilated_matches_keras() {
    run_fixture::<TrDilated>("D_layer_conv2dtranspose_dilated_same", RTOL);
}

#[test]
fn convolution_family_regularizers_and_constraints_match_keras() {
    run_fixture::<Regularized>("D_layer_convfam_regularized", RTOL);
}

#[test]
fn max_pooling2d_matches_keras() {
    run_fixture::<MaxP2>("D_layer_maxpooling2d_p2", RTOL);
}

#[test]
fn max_pooling2d_same_strided_matches_keras() {
    run_fixture::<MaxP3S2Same>("D_layer_maxpooling2d_p3_s2_same", RTOL);
}

#[test]
fn average_pooling2d_matches_keras() {
    run_fixture::<AvgP2>("D_layer_averagepooling2d_p2", RTOL);
}

#[test]
fn average_pooling2d_same_strided_matches_keras() {
    run_fixture::<AvgP3S2Same>("D_layer_averagepooling2d_p3_s2_same", RTOL);
}

#[test]
fn global_average_pooling2d_matches_keras() {
    run_fixture::<Gap>("D_layer_globalaveragepooling2d", RTOL);
}

sequential! {
    /// The Keras MNIST convnet's front.
    struct Mnist = Input((28, 28, 1)) => Conv2D(32, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(10, softmax);
}
sequential! { struct Signal = Input((100, 4)) => Conv1D(8, 5, relu, strides = 2) => MaxPooling1D(2) => Conv1D(16, 3, padding = "causal") => GlobalMaxPooling1D() => Dense(2); }
sequential! {
    struct Mobile = Input((28, 28, 1))
        => DepthwiseConv2D(3, relu, depth_multiplier = 2)
        => SeparableConv2D(16, 3, relu, strides = 2, use_bias = false)
        => Conv2DTranspose(4, 3, strides = 2, padding = "same");
}
sequential! { struct Dilated = Input((9, 9, 2)) => Conv2D(4, 3, dilation_rate = 2, padding = "same", use_bias = false) => GlobalMaxPooling2D(); }

#[test]
fn shapes_and_parameter_counts_follow_keras() {
    assert_eq!(Mnist::PARAMS, 3 * 3 * 32 + 32 + 13 * 13 * 32 * 10 + 10);
    let summary = Mnist::create(&Cpu::default()).unwrap().summary().to_string();
    assert!(summary.contains("(None, 26, 26, 32)"), "{summary}");
    assert!(summary.contains("(None, 13, 13, 32)"), "{summary}");
    assert!(summary.contains("max_pooling2d"), "{summary}");
    assert_eq!(Dilated::OUTPUT_SHAPE, &[4]);
    // Keras: conv1d (None, 48, 8) 168, max_pooling1d (None, 24, 8), conv1d_1 (None, 24, 16) 400,
    // global_max_pooling1d (None, 16), dense (None, 2) 34.
    assert_eq!(Signal::PARAMS, 168 + 400 + 34);
    // Keras: depthwise_conv2d (None, 26, 26, 2) 20, separable_conv2d (None, 12, 12, 16) 50,
    // conv2d_transpose (None, 24, 24, 4) 580.
    assert_eq!(Mobile::PARAMS, 20 + 50 + 580);
    let summary = Mobile::create(&Cpu::default()).unwrap().summary().to_string();
    for shown in
        ["(None, 26, 26, 2)", "(None, 12, 12, 16)", "(None, 24, 24, 4)", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose"]
    {
        assert!(summary.contains(shown), "{shown} missing from\n{summary}");
    }
    let summary = Signal::create(&Cpu::default()).unwrap().summary().to_string();
    for shown in ["(None, 48, 8)", "(None, 24, 8)", "(None, 24, 16)", "(None, 16)", "conv1d_1", "max_pooling1d", "global_max_pooling1d"] {
        assert!(summary.contains(shown), "{shown} missing from\n{summary}");
    }
    assert_eq!(Dilated::PARAMS, 3 * 3 * 2 * 4);
}

#[test]
fn predict_one_agrees_with_predict() {
    let mut model = Mnist::create(&Cpu::default()).unwrap();
    let x: Vec<f32> = (0..784).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
    let one = model.predict_one(&x.clone().try_into().unwrap());
    let batch = model.predict(&keras::ndarray::ArrayD::from_shape_vec(vec![1, 28, 28, 1], x).unwrap()).unwrap();
    common::assert_close("predict_one", &one, batch.as_slice().unwrap(), 1e-5);
}

sequential! {
    /// Large enough that the depthwise kernels split a batch of 32 over the thread pool.
    struct WideDepthwise = Input((28, 28, 4))
        => DepthwiseConv2D(3, tanh, padding = "same", depth_multiplier = 2)
        => SeparableConv2D(4, 3, tanh, strides = 2)
        => Conv2DTranspose(2, 3, strides = 2)
        => GlobalAveragePooling2D()
        => Dense(2);
}

/// The batch kernels (split over threads when large) agree with the same model run one sample at
/// a time (each call small enough to stay on one thread): forward, and the gradient of a batch
/// against the mean of the per-sample gradients.
#[test]
fn depthwise_separable_transposed_batches_agree_with_single_samples() {
    use keras::ndarray::{Axis, Slice};
    keras::utils::set_random_seed(3);
    let n = 32;
    let x: Vec<f32> = (0..n * 28 * 28 * 4).map(|i| ((i * 7919) % 1009) as f32 / 1009.0 - 0.5).collect();
    let x = keras::ndarray::ArrayD::from_shape_vec(vec![n, 28, 28, 4], x).unwrap();
    let y = keras::ndarray::ArrayD::from_shape_fn(vec![n, 2], |i| ((i[0] + i[1]) % 3) as f32 - 1.0);
    let model = WideDepthwise::create(&Cpu::default()).unwrap();
    let no_metrics: [Metric; 0] = [];
    let mut model = model.compile(Sgd::default(), "mse", no_metrics).unwrap();
    let batch = model.predict(&x).unwrap();
    let (_, grads) = model.gradients(&x, &y).unwrap();
    let mut mean: Vec<Vec<f32>> = grads.iter().map(|g| vec![0.0; g.len()]).collect();
    for i in 0..n {
        let xi = x.slice_axis(Axis(0), Slice::from(i..i + 1)).to_owned();
        let yi = y.slice_axis(Axis(0), Slice::from(i..i + 1)).to_owned();
        let one = model.predict(&xi).unwrap();
        common::assert_close("forward", one.as_slice().unwrap(), &batch.as_slice().unwrap()[i * 2..i * 2 + 2], 1e-5);
        let (_, g) = model.gradients(&xi, &yi).unwrap();
        for (m, g) in mean.iter_mut().zip(&g) {
            m.iter_mut().zip(g.iter()).for_each(|(m, g)| *m += g / n as f32);
        }
    }
    for (i, (g, m)) in grads.iter().zip(&mean).enumerate() {
        common::assert_close(&format!("gradient {i}"), g.as_slice().unwrap(), m, 1e-4);
    }
}
