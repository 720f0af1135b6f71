//! Embedding and the recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional): their shapes,
//! parameter counts and summaries, the checks on integer ids, and Keras 2's GRU layout. Their Keras
//! fixtures (forward, first-batch loss and gradients, three epochs of SGD, within 1e-5 relative)
//! run on every backend in the conformance suite (`tests/conformance/`, models in
//! `tests/models/recurrent.rs`).

mod common;
#[path = "models/recurrent.rs"]
mod models;

use common::run_fixture;
use keras::ndarray::{Array2, Array3, ArrayD, IxDyn};
use keras::prelude::*;
use models::{BiGruSum, BiLstmSeq, GruLast, GruSeq, LstmLast, LstmSeq, RnnLast, RnnSeq};

const RTOL: f64 = 1e-5;

/// The global generator is shared by the tests of this file: each that seeds takes the lock.
static SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seeded(seed: u64) -> std::sync::MutexGuard<'static, ()> {
    let guard = SEED.lock().unwrap_or_else(|e| e.into_inner());
    keras::utils::set_random_seed(seed);
    guard
}

sequential! {
    /// The model of issue 4.
    struct Words = Input(20) => Embedding(1000, 16) => LSTM(32) => Dense(1, sigmoid);
}

#[test]
fn shapes_parameter_counts_and_summary_follow_keras() {
    assert_eq!(Words::PARAMS, 1000 * 16 + (16 * 128 + 32 * 128 + 128) + 33);
    assert_eq!(<Words as Model>::INPUT_INDICES, Some(1000));
    assert_eq!(<RnnLast as Model>::INPUT_INDICES, None);
    assert_eq!(RnnSeq::PARAMS, 3 * 5 + 5 * 5 + 5 + 20 * 3 + 3);
    assert_eq!(GruLast::PARAMS, 3 * 15 + 5 * 15 + 2 * 15 + 5 * 3 + 3);
    let summary = Words::create(&Cpu::default()).unwrap().summary().to_string();
    for part in ["embedding (Embedding)", "(None, 20, 16)", "16,000", "lstm (LSTM)", "(None, 32)", "6,272", "Total params: 22,305"] {
        assert!(summary.contains(part), "{part} missing from\n{summary}");
    }
    let summary = GruSeq::create(&Cpu::default()).unwrap().summary().to_string();
    assert!(summary.contains("gru (GRU)") && summary.contains("(None, 4, 5)"), "{summary}");
    let summary = RnnLast::create(&Cpu::default()).unwrap().summary().to_string();
    assert!(summary.contains("simple_rnn (SimpleRNN)"), "{summary}");
}

#[test]
fn new_recurrent_kernels_are_orthogonal_and_forget_biases_one() {
    let _seed = seeded(3);
    let w = LstmLast::create(&Cpu::default()).unwrap().get_weights().unwrap();
    let r = &w[1];
    assert_eq!(r.shape(), &[5, 20]);
    for a in 0..5 {
        for b in 0..5 {
            let dot: f32 = (0..20).map(|k| r[[a, k]] * r[[b, k]]).sum();
            assert!((dot - (a == b) as u8 as f32).abs() < 1e-5, "rows {a}, {b}: {dot}");
        }
    }
    let bias: Vec<f32> = w[2].iter().copied().collect();
    assert!(bias[..5].iter().chain(&bias[10..]).all(|&v| v == 0.0) && bias[5..10].iter().all(|&v| v == 1.0), "{bias:?}");
}

#[test]
fn ids_are_checked_before_any_step() {
    let _seed = seeded(5);
    let model = Words::create(&Cpu::default()).unwrap();
    let before = model.get_weights().unwrap();
    let mut model = model.compile(Adam::default(), "binary_crossentropy", [Metric::Accuracy]).unwrap();
    let mut x = Array2::<i32>::from_shape_fn((4, 20), |(i, j)| ((i * 31 + j * 7) % 1000) as i32);
    let y = keras::ndarray::Array1::<f32>::from(vec![0.0, 1.0, 1.0, 0.0]);
    x[[2, 13]] = 1000;
    let err = model.fit(&x, &y, FitArgs::default().epochs(1).verbose(0)).unwrap_err().to_string();
    assert_eq!(
        err,
        "x (token id of sample 2, position 13): expected an integer in [0, 1000) (the Embedding's input_dim is 1000), found 1000"
    );
    x[[2, 13]] = -3;
    assert!(model.predict(&x).unwrap_err().to_string().ends_with("found -3"));
    let xf = x.mapv(|v| v.max(0) as f32 + if v < 0 { 0.5 } else { 0.0 });
    assert!(model.evaluate(&xf, &y).unwrap_err().to_string().ends_with("found 0.5"));
    assert_eq!(model.get_weights().unwrap(), before, "no step ran");
    x[[2, 13]] = 999;
    model.fit(&x, &y, FitArgs::default().epochs(2).batch_size(2).verbose(0)).unwrap();
    let ids: [i32; 20] = std::array::from_fn(|j| x[[1, j]]);
    let one = model.model().predict_one(&ids).unwrap();
    let batch = model.predict(&x).unwrap();
    common::assert_close("predict_one", &one, &[batch[[1, 0]]], 1e-6);
    let mut bad = ids;
    bad[7] = 1000;
    assert_eq!(
        model.model().predict_one(&bad).unwrap_err().to_string(),
        "token id at position 7: expected an integer in [0, 1000) (the Embedding's input_dim is 1000), found 1000"
    );
}

#[test]
fn the_embedding_lstm_model_of_the_issue_learns() {
    // Label: whether id 7 occurs in the sequence; ids drawn from [0, 50).
    let _seed = seeded(7);
    let mut rng = keras::utils::Rng::new(9);
    let n = 256;
    let x = Array2::<i32>::from_shape_fn((n, 20), |(i, _)| {
        let v = (rng.uniform() * 50.0) as i32;
        if i % 2 == 0 && v == 7 { 8 } else { v }
    });
    let mut x = x;
    for i in (1..n).step_by(2) {
        let at = (rng.uniform() * 20.0) as usize;
        x[[i, at.min(19)]] = 7;
    }
    let y = ArrayD::from_shape_fn(IxDyn(&[n, 1]), |i| (i[0] % 2) as f32);
    let mut model = Words::create(&Cpu::default()).unwrap().compile(Adam::new(0.01), "binary_crossentropy", [Metric::Accuracy]).unwrap();
    let history = model.fit(&x, &y, FitArgs::default().epochs(8).batch_size(32).verbose(0)).unwrap();
    let acc = &history["accuracy"];
    assert!(*acc.last().unwrap() > 0.9, "accuracy {acc:?}");
}

#[test]
fn predict_one_agrees_with_predict_for_sequences() {
    let _seed = seeded(2);
    let model = LstmSeq::create(&Cpu::default()).unwrap();
    let x = Array3::<f32>::from_shape_fn((1, 4, 3), |(_, t, f)| (t as f32 - 1.5) * 0.3 + f as f32 * 0.1);
    let xs: [f32; 12] = x.as_slice().unwrap().try_into().unwrap();
    let one = model.predict_one(&xs);
    let batch = model.predict(&x).unwrap();
    common::assert_close("predict_one", &one, batch.as_slice().unwrap(), 1e-6);
}

// Options, against fixtures made by `tests/fixtures/gen_recurrent.py`.

sequential! { struct GruResetBefore = Input((4, 3)) => GRU(5, reset_after = false, return_sequences = true) => Flatten() => Dense(3, softmax); }

#[test]
fn gru_reset_before_matches_keras() {
    assert_eq!(GruResetBefore::PARAMS, 3 * 15 + 5 * 15 + 15 + 20 * 3 + 3);
    run_fixture::<GruResetBefore>("D_layer_gru_reset_before", RTOL);
}

#[test]
fn bidirectional_shapes_names_and_summary_follow_keras() {
    assert_eq!(BiLstmSeq::OUTPUT_SHAPE, &[3]);
    assert_eq!(BiLstmSeq::PARAMS, 2 * (3 * 16 + 4 * 16 + 16) + 32 * 3 + 3);
    let paths: Vec<String> = <BiGruSum as Model>::WEIGHTS.iter().map(|w| w.path()).collect();
    assert_eq!(
        &paths[..6],
        [
            "bidirectional/forward_gru/kernel",
            "bidirectional/forward_gru/recurrent_kernel",
            "bidirectional/forward_gru/bias",
            "bidirectional/backward_gru/kernel",
            "bidirectional/backward_gru/recurrent_kernel",
            "bidirectional/backward_gru/bias",
        ]
    );
    let summary = BiLstmSeq::create(&Cpu::default()).unwrap().summary().to_string();
    assert!(summary.contains("bidirectional (Bidirectional)") && summary.contains("(None, 4, 8)") && summary.contains("256"), "{summary}");
}

sequential! { struct BiWords = Input(6) => Embedding(12, 4) => Bidirectional(GRU(3, return_sequences = true)) => LSTM(2) => Dense(1); }

#[test]
fn weights_of_recurrent_models_round_trip() {
    let _seed = seeded(8);
    let dir = std::env::temp_dir().join(format!("keras-recurrent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bi_words.safetensors");
    let x = Array2::<i32>::from_shape_fn((5, 6), |(i, j)| ((i * 5 + j * 3) % 12) as i32);
    let a = BiWords::create(&Cpu::default()).unwrap();
    a.save_weights(&path).unwrap();
    let mut b = BiWords::create(&Cpu::default()).unwrap();
    assert_ne!(a.get_weights().unwrap(), b.get_weights().unwrap());
    b.load_weights(&path).unwrap();
    assert_eq!(a.get_weights().unwrap(), b.get_weights().unwrap());
    assert_eq!(a.predict(&x).unwrap(), b.predict(&x).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

sequential! {
    struct FileNet = Input(6) => Embedding(12, 4) => Bidirectional(GRU(3, return_sequences = true)) => LSTM(5, return_sequences = true)
        => SimpleRNN(2) => Dense(3, softmax);
}

sequential! {
    struct FileNetSum = Input(6) => Embedding(12, 4) => Bidirectional(GRU(3, return_sequences = true), "sum") => LSTM(5, return_sequences = true)
        => SimpleRNN(2) => Dense(3, softmax);
}
sequential! {
    struct FileNetOldGru = Input(6) => Embedding(12, 4) => Bidirectional(GRU(3, return_sequences = true, reset_after = false))
        => LSTM(5, return_sequences = true) => SimpleRNN(2) => Dense(3, softmax);
}
sequential! {
    struct FileNetHardLstm = Input(6) => Embedding(12, 4) => Bidirectional(GRU(3, return_sequences = true))
        => LSTM(5, return_sequences = true, recurrent_activation = hard_sigmoid) => SimpleRNN(2) => Dense(3, softmax);
}

#[test]
fn a_keras_file_with_other_recurrent_options_is_refused() {
    let path = format!("{}/tests/fixtures/G_files_recurrent.keras", env!("CARGO_MANIFEST_DIR"));
    let err = FileNetSum::create(&Cpu::default()).unwrap().load_keras(&path).unwrap_err().to_string();
    assert!(err.contains("layer 2 (bidirectional)") && err.contains("merge_mode=sum"), "{err}");
    let err = FileNetOldGru::create(&Cpu::default()).unwrap().load_keras(&path).unwrap_err().to_string();
    assert!(err.contains("layer 2 (bidirectional)") && err.contains("layer.reset_after=false"), "{err}");
    let err = FileNetHardLstm::create(&Cpu::default()).unwrap().load_keras(&path).unwrap_err().to_string();
    assert!(err.contains("layer 3 (lstm)") && err.contains("recurrent_activation=hard_sigmoid"), "{err}");
}

/// Files saved by Keras (`tests/fixtures/gen_recurrent_files.py`): a recurrent layer's weights
/// are its cell's (`layers/lstm/cell/vars`), Bidirectional's each direction's.
#[test]
fn keras_files_with_recurrent_layers_load_and_predict_what_keras_predicted() {
    let f = common::Fixture::load("G_files_recurrent");
    let x = f.tensor("x").mapv(|v| v as i32);
    let expected = f.tensor("forward_before");
    let init = f.weights("weights_init");
    for file in ["G_files_recurrent.keras", "G_files_recurrent.weights.h5", "G_files_recurrent.h5"] {
        let mut model = FileNet::create(&Cpu::default()).unwrap();
        model.load_keras(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), init, "{file}: the weights Keras saved");
        let y = model.predict(&x).unwrap();
        common::assert_close(file, y.as_slice().unwrap(), expected.as_slice().unwrap(), 1e-5);
    }
    // What keras-rs writes reads back the same.
    let _seed = seeded(4);
    let dir = std::env::temp_dir().join(format!("keras-recurrent-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trained = FileNet::create(&Cpu::default()).unwrap();
    for file in ["net.keras", "net.weights.h5"] {
        trained.save_keras(dir.join(file)).unwrap();
        let mut back = FileNet::create(&Cpu::default()).unwrap();
        back.load_keras(dir.join(file)).unwrap();
        assert_eq!(back.get_weights().unwrap(), trained.get_weights().unwrap(), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

sequential! { struct GridIds = Embedding(9, 2, in = (3, 4)) => Reshape((3, 8)) => GRU(3) => Dense(1); }

#[test]
fn training_is_deterministic_and_embedding_takes_any_id_shape() {
    assert_eq!(GridIds::OUTPUT_SHAPE, &[1]);
    assert_eq!(<GridIds as Model>::LAYERS[0].output_shape, &[3, 4, 2]);
    let x = keras::ndarray::Array3::<u8>::from_shape_fn((16, 3, 4), |(i, r, c)| ((i + 2 * r + 3 * c) % 9) as u8);
    let y = keras::ndarray::Array1::<f32>::from_shape_fn(16, |i| (i % 3) as f32 - 1.0);
    let run = || {
        let _seed = seeded(13);
        let mut m = GridIds::create(&Cpu::default()).unwrap().compile(Adam::new(0.01), "mse", [Metric::Accuracy; 0]).unwrap();
        let h = m.fit(&x, &y, FitArgs::default().epochs(5).batch_size(4).verbose(0)).unwrap();
        (h.loss().to_vec(), m.get_weights().unwrap())
    };
    let (first, second) = (run(), run());
    assert!(first.0.last() < first.0.first(), "the loss falls: {:?}", first.0);
    assert_eq!(first, second, "same seed, same thread count: the same training");
}

sequential! {
    /// Keras makes the layer Bidirectional wraps first: it takes the name `gru`, the next GRU `gru_1`.
    struct BiThenGru = Input((5, 3)) => Bidirectional(GRU(4, return_sequences = true)) => GRU(2) => Dense(1);
}

#[test]
fn a_wrapped_layer_takes_its_default_name_as_in_keras() {
    // Keras 3.15: ['bidirectional', 'gru_1', 'dense'], weights under bidirectional/forward_gru.
    assert_eq!(BiThenGru::LAYER_NAMES, ["bidirectional", "gru_1", "dense"]);
    assert!(
        <BiThenGru as Model>::WEIGHTS.iter().any(|w| w.name.starts_with("forward_gru/")),
        "{:?}",
        <BiThenGru as Model>::WEIGHTS.iter().map(|w| w.name).collect::<Vec<_>>()
    );
}
