//! The training API as a user meets it: fit, evaluate, predict, the `*_on_batch` calls, weights,
//! determinism, and the errors bad input gets.

use keras::ndarray::{Array1, Array2, Array3, ArrayD, Axis, IxDyn, array};
use keras::prelude::*;

sequential! {
    /// Three classes from four features.
    struct Classifier = Dense(16, in = 4, relu) => Dropout(0.1) => Dense(3, softmax);
}

sequential! { struct Plain = Dense(16, in = 4, relu) => Dense(3, softmax); }

sequential! { struct Regressor = Input((3, 2)) => Dense(4, tanh) => Flatten() => Dense(1); }

sequential! { struct ReluRegressor = Dense(8, in = 3, relu) => Dense(1); }
sequential! {
    struct Activations = Input((5,)) => Activation(relu) => Activation(leaky_relu) => Activation(relu6) => Activation(hard_sigmoid)
        => Activation(elu) => Activation(sigmoid);
}
sequential! { struct MaxPool2 = Input((4, 4, 2)) => MaxPooling2D(2) => Flatten(); }
sequential! { struct GlobalMaxPool2 = Input((3, 3, 2)) => GlobalMaxPooling2D(); }
sequential! { struct MaxPool1 = Input((6, 2)) => MaxPooling1D(2, strides = 1) => Flatten(); }
sequential! { struct GlobalMaxPool1 = Input((5, 2)) => GlobalMaxPooling1D(); }

/// The random seed is process-wide (as in Keras): tests that seed it run one at a time.
static SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded() -> std::sync::MutexGuard<'static, ()> {
    SEED.lock().unwrap_or_else(|e| e.into_inner())
}

fn blobs(n: usize) -> (Array2<f32>, Array1<f32>) {
    let mut rng = keras::utils::Rng::new(5);
    let y = Array1::from_shape_fn(n, |i| (i % 3) as f32);
    let x = Array2::from_shape_fn((n, 4), |(i, j)| (y[i] * 2.0 - 2.0) * if j % 2 == 0 { 1.0 } else { -0.5 } + rng.normal() as f32 * 0.5);
    (x, y)
}

#[test]
fn fit_learns_and_reports_history_with_validation() {
    let _seed = seeded();
    keras::utils::set_random_seed(3);
    let (x, y) = blobs(300);
    let mut model = Classifier::new(&Cpu::default()).compile(Adam::new(0.01), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let h = model.fit(&x, &y, FitArgs::default().epochs(20).batch_size(16).validation_split(0.2).verbose(0)).unwrap();
    assert_eq!(h.keys().collect::<Vec<_>>(), ["accuracy", "loss", "val_accuracy", "val_loss"]);
    assert_eq!(h.loss().len(), 20);
    assert_eq!(h.epochs, (0..20).collect::<Vec<_>>());
    assert!(h.loss()[19] < h.loss()[0] * 0.5, "loss fell: {:?}", h.loss());
    assert!(h["val_accuracy"][19] > 0.9, "{:?}", &h["val_accuracy"]);
    let logs = model.evaluate(&x, &y).unwrap();
    assert!(logs["accuracy"] > 0.9 && logs.loss() < 0.5, "{logs}");
    let p = model.predict(&x).unwrap();
    assert_eq!(p.shape(), [300, 3]);
    for row in p.axis_iter(Axis(0)) {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn validation_data_and_integer_inputs() {
    let _seed = seeded();
    keras::utils::set_random_seed(4);
    let (x, y) = blobs(120);
    let labels: Array1<u8> = y.mapv(|v| v as u8);
    let (vx, vy) = blobs(30);
    let mut model = Classifier::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["acc"]).unwrap();
    let h = model.fit(&x, &labels, FitArgs::default().epochs(2).validation_data(&vx, &vy).verbose(0)).unwrap();
    assert_eq!(h.keys().collect::<Vec<_>>(), ["acc", "loss", "val_acc", "val_loss"]);
}

#[test]
fn same_seed_gives_bit_identical_training() {
    let _seed = seeded();
    let run = || {
        keras::utils::set_random_seed(42);
        let (x, y) = blobs(96);
        let mut m = Classifier::new(&Cpu::default())
            .compile(Sgd::new(0.05).momentum(0.9), "sparse_categorical_crossentropy", ["accuracy"])
            .unwrap();
        let h = m.fit(&x, &y, FitArgs::default().epochs(3).batch_size(8).verbose(0)).unwrap();
        (h.loss().to_vec(), m.get_weights().unwrap())
    };
    let (a, b) = (run(), run());
    assert_eq!(a.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_eq!(a.1, b.1);
    keras::utils::set_random_seed(43);
    let other = Classifier::new(&Cpu::default()).get_weights().unwrap();
    assert_ne!(other, a.1);
}

#[test]
fn on_batch_calls_and_predict_one_agree_with_predict() {
    let _seed = seeded();
    keras::utils::set_random_seed(5);
    let (x, y) = blobs(24);
    let mut model = Plain::new(&Cpu::default()).compile(Sgd::new(0.1), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let before = model.test_on_batch(&x, &y).unwrap().loss();
    let trained = model.train_on_batch(&x, &y).unwrap().loss();
    assert_eq!(before, trained, "train_on_batch reports the loss before its update");
    assert!(model.test_on_batch(&x, &y).unwrap().loss() < before);
    let batch = model.predict_on_batch(&x).unwrap();
    let plain = model.predict(&x).unwrap();
    assert_eq!(batch, plain);
    let model = model.into_inner();
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        let one = model.predict_one(&row.to_vec().try_into().unwrap());
        for c in 0..3 {
            assert!((one[c] - plain[[i, c]]).abs() < 1e-6);
        }
    }
}

#[test]
fn the_expression_form_and_n_d_inputs() {
    let _seed = seeded();
    keras::utils::set_random_seed(6);
    let model = sequential!(Input(4) => Dense(8, relu) => Dense(3, softmax));
    let mut model = model.compile(Adam::default(), Loss::CategoricalCrossentropy, [Metric::Accuracy]).unwrap();
    let (x, y) = blobs(30);
    let onehot = keras::utils::to_categorical(&y, 3).unwrap();
    model.fit(&x, &onehot, FitArgs::default().epochs(2).verbose(0)).unwrap();
    let mut r = Regressor::new(&Cpu::default()).compile("sgd", "mse", [Metric::Accuracy; 0]).unwrap();
    let x3 = Array3::from_shape_fn((5, 3, 2), |(i, j, k)| (i + j + k) as f32 * 0.1);
    let target = Array1::from_shape_fn(5, |i| i as f32);
    r.fit(&x3, &target, FitArgs::default().epochs(3).verbose(0)).unwrap();
    assert_eq!(r.predict(&x3).unwrap().shape(), [5, 1]);
}

#[test]
fn weights_round_trip_in_keras_layout() {
    let _seed = seeded();
    let mut model = Classifier::new(&Cpu::default());
    let w = model.get_weights().unwrap();
    assert_eq!(w.iter().map(|a| a.shape().to_vec()).collect::<Vec<_>>(), [vec![4, 16], vec![16], vec![16, 3], vec![3]]);
    assert!(w[1].iter().all(|&b| b == 0.0), "biases start at zero");
    let limit = (6.0f32 / 20.0).sqrt();
    assert!(w[0].iter().all(|&k| k.abs() <= limit), "glorot_uniform bounds");
    let shifted: Vec<ArrayD<f32>> = w.iter().map(|a| a + 1.0).collect();
    model.set_weights(&shifted).unwrap();
    assert_eq!(model.get_weights().unwrap(), shifted);
}

#[test]
fn bad_input_gets_errors_that_name_expected_and_found() {
    let _seed = seeded();
    let mut model = Classifier::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let (x, y) = blobs(10);
    let err = |r: keras::Result<keras::History>| r.unwrap_err().to_string();
    let wide = Array2::<f32>::zeros((10, 5));
    assert_eq!(err(model.fit(&wide, &y, FitArgs::default().verbose(0))), "x: expected shape (None, 4) (the model's input), found (10, 5)");
    assert_eq!(
        err(model.fit(&x, &y.slice(keras::ndarray::s![..9]), FitArgs::default().verbose(0))),
        "y: expected 10 samples, as many as x, found 9 samples (shape (9,))"
    );
    let mut nan = x.clone();
    nan[[3, 2]] = f32::NAN;
    assert_eq!(
        err(model.fit(&nan, &y, FitArgs::default().verbose(0))),
        "x contains a non-finite value (NaN) at flat index 14: expected finite numbers"
    );
    let bad_labels = array![0.0f32, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 0.0, 1.0, 2.0];
    assert_eq!(
        err(model.fit(&x, &bad_labels, FitArgs::default().verbose(0))),
        "y (class index at flat position 3): expected an integer in [0, 3) for 3 output classes, found 3"
    );
    let empty = Array2::<f32>::zeros((0, 4));
    assert_eq!(
        err(model.fit(&empty, &Array1::<f32>::zeros(0), FitArgs::default().verbose(0))),
        "x (shape (0, 4)) is empty: expected at least one sample"
    );
    assert_eq!(err(model.fit(&x, &y, FitArgs::default().batch_size(0))), "batch_size: expected at least 1, found 0");
    assert_eq!(
        err(model.fit(&x, &y, FitArgs::default().validation_split(1.5))),
        "validation_split: expected a fraction in [0, 1), found 1.5"
    );
    assert!(model.predict(&wide).unwrap_err().to_string().contains("expected shape (None, 4)"));
    let w = model.get_weights().unwrap();
    let e = model.set_weights(&w[..3]).unwrap_err().to_string();
    assert_eq!(e, "set_weights: expected 4 arrays (the model's weights, in Keras order), found 3 arrays");
    let mut w2 = w.clone();
    w2[2] = ArrayD::zeros(IxDyn(&[3, 16]));
    assert_eq!(model.set_weights(&w2).unwrap_err().to_string(), "weight 2 (dense_1/kernel): expected shape (16, 3), found (3, 16)");
    assert_eq!(model.get_weights().unwrap(), w, "a rejected set_weights changes nothing");
}

#[test]
fn bad_configurations_are_errors_at_compile() {
    let _seed = seeded();
    let e = |r: keras::Result<keras::Compiled<Classifier>>| r.err().expect("an error").to_string();
    assert_eq!(
        e(Classifier::new(&Cpu::default()).compile(Sgd::new(-0.1), "mse", [Metric::Accuracy; 0])),
        "Sgd learning_rate: expected a finite number in [0, inf), found -0.1"
    );
    assert_eq!(
        e(Classifier::new(&Cpu::default()).compile(Adam::default().beta_1(1.0), "mse", [Metric::Accuracy; 0])),
        "Adam beta_1: expected a finite number in [0, 1), found 1"
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("adagrad2", "mse", [Metric::Accuracy; 0]))
            .starts_with("unknown optimizer `adagrad2`: did you mean `adagrad`? expected one of")
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("sgd", "mse2", [Metric::Accuracy; 0]))
            .starts_with("unknown loss `mse2`: did you mean `mse`? expected one of mean_squared_error")
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("sgd", "mse", ["accuracy", "f1"])).starts_with("unknown metric `f1`: expected one of")
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("sgd", "categorial_crossentropy", ["acuracy"]))
            .starts_with("unknown loss `categorial_crossentropy`: did you mean `categorical_crossentropy`? expected")
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("sgd", "mse", ["acuracy"]))
            .starts_with("unknown metric `acuracy`: did you mean `accuracy`?")
    );
    assert!(
        e(Classifier::new(&Cpu::default()).compile("sgd", "categorical_crossentropy", [Metric::SparseCategoricalAccuracy]))
            .contains("needs integer class targets")
    );
}

#[test]
fn callbacks_see_epochs_and_can_stop_training() {
    let _seed = seeded();
    struct StopAfter(usize, Vec<f32>);
    impl keras::Callback for StopAfter {
        fn on_epoch_end(&mut self, epoch: usize, logs: &mut keras::Logs, control: &mut dyn keras::Control) -> keras::Result<()> {
            self.1.push(logs.loss());
            if epoch + 1 == self.0 {
                control.stop_training();
            }
            Ok(())
        }
    }
    let (x, y) = blobs(40);
    let mut model = Classifier::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let mut cb = StopAfter(3, Vec::new());
    let h = model.fit(&x, &y, FitArgs::default().epochs(10).verbose(0).callback(&mut cb)).unwrap();
    assert_eq!(h.loss().len(), 3);
    assert_eq!(cb.1, h.loss());
}

sequential! { struct Reshaped = Input(6) => Reshape((-1, 3)) => Dense(1, use_bias = false); }

/// Reshape is row-major, as Keras's: six values become two rows of three, and the Dense after it
/// maps each row.
#[test]
fn reshape_keeps_row_major_order() {
    // Creating a model draws from the global seed that other tests here reset.
    let _seed = seeded();
    assert_eq!(Reshaped::OUTPUT_SHAPE, [2, 1]);
    let mut model = Reshaped::new(&Cpu::default());
    model.set_weights(&[keras::ndarray::ArrayD::from_shape_vec(keras::ndarray::IxDyn(&[3, 1]), vec![1.0, 10.0, 100.0]).unwrap()]).unwrap();
    let y = model.predict(&keras::ndarray::array![[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]]).unwrap();
    assert_eq!(y.as_slice().unwrap(), [321.0, 654.0]);
}

sequential! {
    /// Activations of about 1 MiB per sample and im2col patches of about 4 MiB: more than a
    /// spawned thread's stack.
    struct BigConv = Input((128, 128, 3)) => Conv2D(32, 3, relu) => Conv2D(32, 3, relu) => GlobalAveragePooling2D() => Dense(2);
}

sequential! {
    struct LongSequence = Input(2000) => Embedding(50, 64) => LSTM(64, return_sequences = true) => GRU(8) => Dense(1);
}

/// `predict_one` keeps a large model's activations off the stack: it runs on a thread with a
/// 256 KiB stack and agrees with `predict`.
#[test]
fn predict_one_runs_large_models_on_a_small_stack() {
    let _seed = seeded();
    let conv = BigConv::new(&Cpu::default());
    let image: Vec<f32> = (0..128 * 128 * 3).map(|i| (i % 17) as f32 / 17.0).collect();
    let sequence: Vec<i32> = (0..2000).map(|i| i * 7 % 50).collect();
    let rnn = LongSequence::new(&Cpu::default());
    let (one_conv, one_rnn) = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn_scoped(s, || {
                let image: &[f32; 128 * 128 * 3] = image.as_slice().try_into().unwrap();
                let ids: &[i32; 2000] = sequence.as_slice().try_into().unwrap();
                (conv.predict_one(image), rnn.predict_one(ids).unwrap())
            })
            .unwrap()
            .join()
            .unwrap()
    });
    let conv = conv;
    let batch =
        conv.predict(&Array2::from_shape_vec((1, 128 * 128 * 3), image).unwrap().into_shape_with_order((1, 128, 128, 3)).unwrap()).unwrap();
    for (a, b) in one_conv.iter().zip(batch.iter()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "conv: predict_one {a}, predict {b}");
    }
    let batch = rnn.predict(&Array2::from_shape_vec((1, 2000), sequence).unwrap()).unwrap();
    for (a, b) in one_rnn.iter().zip(batch.iter()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "rnn: predict_one {a}, predict {b}");
    }
}

/// `predict_one_slice` takes a sample as a slice (a `Vec`, an image's flat pixels): the length
/// and the values are checked and the answer is `predict_one`'s.
#[test]
fn predict_one_slice_checks_its_sample() {
    let _seed = seeded();
    let model = Regressor::new(&Cpu::default());
    let sample: Vec<f32> = (0..6).map(|i| i as f32 / 6.0).collect();
    let want = model.predict_one(sample.as_slice().try_into().unwrap());
    assert_eq!(model.predict_one_slice(&sample).unwrap(), want);
    let short = model.predict_one_slice(&sample[..5]).unwrap_err().to_string();
    assert_eq!(short, "predict_one_slice: the sample: expected 6 values (one sample of (None, 3, 2)), found 5 values");
    let mut bad = sample.clone();
    bad[4] = f32::NAN;
    let nan = model.predict_one_slice(&bad).unwrap_err().to_string();
    assert_eq!(nan, "predict_one_slice: the sample contains a non-finite value (NaN) at flat index 4: expected finite numbers");
}

/// A NaN in a sample reaches the prediction as Keras carries it (issue 18: `predict_one` of a row
/// holding NaN once gave a plausible number through a relu): a Dense+relu model answers NaN;
/// a chain of activations keeps a NaN entry NaN and the other entries what they are without it;
/// every max pooling (1-D, 2-D, global) gives NaN for exactly the windows that read the NaN.
/// (`predict` and `predict_one_slice` refuse such a sample; `predict_one` runs it.)
#[test]
fn predict_one_propagates_nan_as_keras() {
    let nan = f32::NAN;
    let model = ReluRegressor::new(&Cpu::default());
    assert!(model.predict_one(&[0.5, -1.0, 2.0])[0].is_finite());
    let got = model.predict_one(&[0.5, nan, 2.0]);
    assert!(got[0].is_nan(), "Dense(relu) then Dense of a sample holding NaN: {got:?}, Keras gives NaN");

    let chain = Activations::new(&Cpu::default());
    let clean = chain.predict_one(&[-2.0, -0.5, 0.25, 1.5, 7.0]);
    let got = chain.predict_one(&[-2.0, nan, 0.25, 1.5, 7.0]);
    assert!(got[1].is_nan(), "a NaN through relu, leaky_relu, relu6, hard_sigmoid, elu, sigmoid: {got:?}");
    for j in [0, 2, 3, 4] {
        assert_eq!(got[j], clean[j], "entry {j} beside the NaN");
    }

    // Samples 0, 1, 2, ..; one NaN; the windows that read it are NaN, the others their maximum.
    let ramp = |n: usize, at: usize| -> Vec<f32> { (0..n).map(|i| if i == at { nan } else { i as f32 }).collect() };
    let check = |what: &str, got: &[f32], want: &[f32]| {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{what}: output {i} is {g}, Keras gives {w} (all: {got:?})");
        }
    };
    // 4x4x2, 2x2 windows: NaN at pixel (1, 2), channel 1 (index (1 * 4 + 2) * 2 + 1 = 13) is in
    // window (0, 1); the maximum of window (oy, ox), channel c, is pixel (2 oy + 1, 2 ox + 1).
    let x = ramp(32, 13);
    let want: Vec<f32> =
        (0..8).map(|o| if o == 3 { nan } else { (((o / 4) * 2 + 1) * 8 + ((o / 2) % 2 * 2 + 1) * 2 + o % 2) as f32 }).collect();
    check("MaxPooling2D(2)", &MaxPool2::new(&Cpu::default()).predict_one(x.as_slice().try_into().unwrap()), &want);
    // Global: channel 0 holds the NaN (index 4), channel 1 its maximum, the last pixel's.
    let x = ramp(18, 4);
    check("GlobalMaxPooling2D", &GlobalMaxPool2::new(&Cpu::default()).predict_one(x.as_slice().try_into().unwrap()), &[nan, 17.0]);
    // 6 steps x 2, windows of 2 steps, stride 1: the NaN at step 2, channel 0 (index 4) is in
    // windows 1 and 2; window t's maximum is step t + 1's.
    let x = ramp(12, 4);
    let want: Vec<f32> = (0..10).map(|o| if o == 2 || o == 4 { nan } else { ((o / 2 + 1) * 2 + o % 2) as f32 }).collect();
    check("MaxPooling1D(2, strides = 1)", &MaxPool1::new(&Cpu::default()).predict_one(x.as_slice().try_into().unwrap()), &want);
    // The NaN in the last step (index 9, channel 1), where it comes after the maximum.
    let x = ramp(10, 9);
    check("GlobalMaxPooling1D", &GlobalMaxPool1::new(&Cpu::default()).predict_one(x.as_slice().try_into().unwrap()), &[8.0, nan]);
}
