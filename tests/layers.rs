//! Convolution (1-D, 2-D, depthwise, separable, transposed) and pooling layers: their shapes and
//! parameter counts against Keras's. Their Keras fixtures (forward, first-batch loss and
//! gradients, two epochs of SGD, within 1e-5 relative) run on every backend in the conformance
//! suite (`tests/conformance/`, models in `tests/models/layers.rs`).

mod common;

use keras::prelude::*;

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
    let model = Mnist::create(&Cpu::default()).unwrap();
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
