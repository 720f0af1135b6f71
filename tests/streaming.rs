//! Training on data read batch by batch (`fit_dataset` over a `Dataset`, Keras's `fit` given a
//! `PyDataset`): with the same batches in the same order it trains bit for bit as `fit` on
//! arrays (with or without the background reader, validation included, one input or two);
//! batch order is shuffled per pass and reproducible; `steps_per_epoch` runs on across epochs;
//! `evaluate_dataset` and `predict_dataset` match their array forms; a CSV file read in chunks
//! trains as the same file read whole; bad datasets and arguments are clear errors.

use keras::callbacks::EarlyStopping;
use keras::datasets::{ArrayDataset, CsvDataset, DataBatch, Dataset};
use keras::ndarray::{Array1, Array2, s};
use keras::prelude::*;
use std::sync::Mutex;

sequential! {
    struct Net = Dense(8, in = 3, tanh) => Dropout(0.25) => Dense(3, softmax);
}

functional! {
    struct Two(a: [3], b: [2]) -> out {
        let j = Concatenate()(a, b);
        let h = Dense(4, relu)(j);
        let out = Dense(1)(h);
    }
}

/// The global generator (weights, shuffling, dropout seeds) is shared by this file's tests.
static SEED: Mutex<()> = Mutex::new(());

fn data(n: usize) -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 5) % 11) as f32 / 5.0 - 1.0);
    let y = Array2::from_shape_fn((n, 3), |(i, j)| ((i % 3) == j) as u8 as f32);
    (x, y)
}

fn bits(a: impl IntoIterator<Item = f32>) -> Vec<u32> {
    a.into_iter().map(f32::to_bits).collect()
}

fn compiled(seed: u64) -> Compiled<Net> {
    keras::utils::set_random_seed(seed);
    Net::new(&Cpu::default()).compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"]).unwrap()
}

/// What a run leaves: History (every key) and weights, as bits.
type Outcome = (Vec<(String, Vec<u32>)>, Vec<Vec<u32>>);

fn outcome(h: &keras::History, m: &Compiled<Net>) -> Outcome {
    let mut keys: Vec<(String, Vec<u32>)> = h.keys().map(|k| (k.to_string(), bits(h[k].iter().copied()))).collect();
    keys.sort();
    (keys, m.get_weights().unwrap().into_iter().map(|w| bits(w.iter().copied())).collect())
}

#[test]
fn a_dataset_trains_bit_for_bit_as_the_same_arrays() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let (x, y) = data(45);
    let (vx, vy) = data(13);
    fn args<'a>() -> FitArgs<'a> {
        FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0)
    }
    let mut m = compiled(4);
    let h = m.fit(&x, &y, args().validation_data(&vx, &vy)).unwrap();
    let want = outcome(&h, &m);
    for prefetch in [0, 2] {
        let mut train = ArrayDataset::new(&x, &y, 8).unwrap();
        // Validation in the batches fit uses for arrays (its batch_size): the same sums.
        let mut val = ArrayDataset::new(&vx, &vy, 8).unwrap();
        let mut m = compiled(4);
        let h = m.fit_dataset(&mut train, args().prefetch(prefetch).validation_dataset(&mut val)).unwrap();
        assert_eq!(outcome(&h, &m), want, "prefetch {prefetch}");
        assert!(h.get("val_accuracy").is_some());
    }
}

#[test]
fn several_inputs_stream_as_arrays_do() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let a = Array2::from_shape_fn((20, 3), |(i, j)| (i + j) as f32 / 20.0);
    let b = Array2::from_shape_fn((20, 2), |(i, j)| (i * j) as f32 / 40.0);
    let y = Array2::from_shape_fn((20, 1), |(i, _)| (i % 4) as f32);
    let fresh = || {
        keras::utils::set_random_seed(8);
        Two::new(&Cpu::default()).compile(Sgd::new(0.05), "mse", ["mae"]).unwrap()
    };
    let mut m = fresh();
    let want = m.fit(&[a.view(), b.view()], &y, FitArgs::default().epochs(2).batch_size(6).shuffle(false).verbose(0)).unwrap();
    let mut ds = ArrayDataset::from_inputs(vec![a.clone().into_dyn(), b.clone().into_dyn()], Some(y.clone().into_dyn()), 6).unwrap();
    let mut streamed = fresh();
    let got = streamed.fit_dataset(&mut ds, FitArgs::default().epochs(2).shuffle(false).verbose(0)).unwrap();
    assert_eq!(bits(got.loss().iter().copied()), bits(want.loss().iter().copied()));
    assert_eq!(streamed.get_weights().unwrap(), m.get_weights().unwrap());
}

/// Records which batches were asked for, and the epoch ends.
struct Recording {
    inner: ArrayDataset,
    asked: std::sync::Arc<Mutex<Vec<usize>>>,
    ends: usize,
}

impl Dataset for Recording {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&mut self, index: usize) -> keras::Result<DataBatch> {
        self.asked.lock().unwrap().push(index);
        self.inner.get(index)
    }
    fn on_epoch_end(&mut self) {
        self.ends += 1;
    }
}

fn recording(n: usize, batch: usize) -> Recording {
    let (x, y) = data(n);
    Recording { inner: ArrayDataset::new(&x, &y, batch).unwrap(), asked: Default::default(), ends: 0 }
}

#[test]
fn batch_order_is_shuffled_per_pass_and_reproducible() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let run = || {
        let mut ds = recording(40, 4);
        let mut m = compiled(11);
        let h = m.fit_dataset(&mut ds, FitArgs::default().epochs(3).verbose(0)).unwrap();
        let asked = ds.asked.lock().unwrap().clone();
        (asked, ds.ends, bits(h.loss().iter().copied()))
    };
    let (asked, ends, loss) = run();
    assert_eq!(ends, 3);
    assert_eq!(asked.len(), 30);
    for epoch in asked.chunks(10) {
        let mut sorted = epoch.to_vec();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>(), "each epoch reads every batch once");
    }
    assert_ne!(asked[..10], (0..10).collect::<Vec<_>>(), "shuffled");
    assert_ne!(asked[..10], asked[10..20], "reshuffled each pass");
    assert_eq!(run(), (asked, ends, loss), "the same seed, the same order and result");
}

#[test]
fn steps_per_epoch_runs_on_across_epochs() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let mut ds = recording(20, 4);
    let mut m = compiled(2);
    let h = m.fit_dataset(&mut ds, FitArgs::default().epochs(3).steps_per_epoch(3).shuffle(false).prefetch(0).verbose(0)).unwrap();
    assert_eq!(h.loss().len(), 3);
    assert_eq!(*ds.asked.lock().unwrap(), [0, 1, 2, 3, 4, 0, 1, 2, 3]);
    assert_eq!(ds.ends, 3);
    // Callbacks see dataset epochs as any other: EarlyStopping stops on a flat loss.
    let mut stop = EarlyStopping::new().monitor("loss").min_delta(10.0).patience(1);
    let h = m.fit_dataset(&mut ds, FitArgs::default().epochs(10).callback(&mut stop).verbose(0)).unwrap();
    assert_eq!(h.loss().len(), 2);
}

#[test]
fn evaluate_and_predict_over_a_dataset_match_arrays() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let (x, y) = data(37);
    let mut m = compiled(5);
    let mut ds = ArrayDataset::new(&x, &y, 32).unwrap();
    let want = m.evaluate(&x, &y).unwrap();
    let got = m.evaluate_dataset(&mut ds).unwrap();
    assert_eq!(got.loss().to_bits(), want.loss().to_bits());
    assert_eq!(got["accuracy"].to_bits(), want["accuracy"].to_bits());
    let mut ds = ArrayDataset::new(&x, &y, 5).unwrap();
    assert_eq!(m.predict_dataset(&mut ds).unwrap(), m.predict(&x).unwrap());
}

#[test]
fn class_weight_applies_to_dataset_batches() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let (x, y) = data(30);
    let cw = [(0, 2.0), (2, 0.5)];
    let args = || FitArgs::default().epochs(2).batch_size(7).shuffle(false).verbose(0).class_weight(&cw);
    let mut m = compiled(6);
    let want = m.fit(&x, &y, args()).unwrap();
    let mut ds = ArrayDataset::new(&x, &y, 7).unwrap();
    let mut streamed = compiled(6);
    let got = streamed.fit_dataset(&mut ds, args()).unwrap();
    assert_eq!(bits(got.loss().iter().copied()), bits(want.loss().iter().copied()));
}

#[test]
fn a_csv_file_in_chunks_trains_as_the_whole_file() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("keras-streaming-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.csv");
    let mut text = String::from("a,label,b,c\n");
    for i in 0..50 {
        text += &format!("{},{},{},{}\n", (i % 7) as f32 / 3.0, i % 3, (i % 5) as f32 - 2.0, (i * i % 11) as f32 / 10.0);
    }
    std::fs::write(&path, &text).unwrap();
    let whole = keras::datasets::from_csv(&path, true).unwrap();
    let (x, labels) = whole.split_target("label").unwrap();
    let y = keras::utils::to_categorical(&labels, 3).unwrap();
    let mut m = compiled(9);
    let want = m.fit(&x, &y, FitArgs::default().epochs(2).batch_size(16).shuffle(false).verbose(0)).unwrap();

    /// Sparse labels from the file, one-hot for the model.
    struct OneHot(CsvDataset);
    impl Dataset for OneHot {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&mut self, index: usize) -> keras::Result<DataBatch> {
            let mut b = self.0.get(index)?;
            let labels = b.y.take().unwrap().into_dimensionality::<keras::ndarray::Ix1>().unwrap();
            Ok(b.with_targets(keras::utils::to_categorical(&labels, 3)?.into_dyn()))
        }
    }
    let csv = CsvDataset::open(&path, Some("label"), 16).unwrap();
    assert_eq!((csv.len(), csv.rows()), (4, 50));
    assert_eq!(csv.columns(), ["a", "label", "b", "c"]);
    let mut ds = OneHot(csv);
    // Random access: the last batch first.
    assert_eq!(ds.0.get(3).unwrap().x[0], x.slice(s![48.., ..]).into_dyn());
    let mut streamed = compiled(9);
    let got = streamed.fit_dataset(&mut ds, FitArgs::default().epochs(2).shuffle(false).verbose(0)).unwrap();
    assert_eq!(bits(got.loss().iter().copied()), bits(want.loss().iter().copied()));

    // A bad cell is an error naming the file, line and column, when its batch is read.
    std::fs::write(&path, "a,label\n1,0\n2,x\n").unwrap();
    let mut bad = CsvDataset::open(&path, Some("label"), 1).unwrap();
    let e = bad.get(1).unwrap_err().to_string();
    assert!(e.contains("train.csv") && e.contains("line 3, column `label`: expected a number, found `x`"), "{e}");
    let e = CsvDataset::open(&path, Some("target"), 1).err().unwrap().to_string();
    assert!(e.contains("expected one of a, label, found `target`"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A dataset whose batches go wrong in a chosen way.
struct Faulty(u8);

impl Dataset for Faulty {
    fn len(&self) -> usize {
        3
    }
    fn get(&mut self, index: usize) -> keras::Result<DataBatch> {
        let (x, y) = data(4);
        match (self.0, index) {
            (0, 1) => Err(keras::Error::Config("the disk is gone".into())),
            (1, 2) => panic!("batch {index} is cursed"),
            (2, 1) => Ok(DataBatch::new(Array2::<f32>::zeros((4, 5)), y)),
            (3, 0) => Ok(DataBatch::new(x, y.slice(s![..3, ..]).to_owned())),
            (4, _) => Ok(DataBatch::inputs(vec![x.into_dyn()])),
            _ => Ok(DataBatch::new(x, y)),
        }
    }
}

#[test]
fn bad_datasets_and_arguments_are_clear_errors() {
    let _g = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let mut m = compiled(1);
    fn quiet<'a>() -> FitArgs<'a> {
        FitArgs::default().verbose(0).shuffle(false)
    }
    let e = |r: keras::Result<keras::History>| r.unwrap_err().to_string();
    assert_eq!(e(m.fit_dataset(&mut Faulty(0), quiet())), "the disk is gone");
    assert_eq!(e(m.fit_dataset(&mut Faulty(0), quiet().prefetch(0))), "the disk is gone");
    assert_eq!(e(m.fit_dataset(&mut Faulty(1), quiet())), "Dataset::get(2) panicked: batch 2 is cursed");
    assert_eq!(e(m.fit_dataset(&mut Faulty(2), quiet())), "x: expected shape (None, 3) (the model's input), found (4, 5)");
    assert!(e(m.fit_dataset(&mut Faulty(3), quiet())).starts_with("y: expected 4 samples"));
    assert!(e(m.fit_dataset(&mut Faulty(4), quiet())).contains("without targets"));
    let w = Array1::<f32>::ones(4);
    assert!(e(m.fit_dataset(&mut Faulty(9), quiet().sample_weight(&w))).starts_with("fit_dataset: sample_weight applies to fit on arrays"));
    assert!(e(m.fit_dataset(&mut Faulty(9), quiet().validation_split(0.5))).starts_with("fit_dataset: validation_split"));
    assert_eq!(e(m.fit_dataset(&mut Faulty(9), quiet().steps_per_epoch(0))), "steps_per_epoch: expected at least 1, found 0");
    let mut val = Faulty(9);
    assert_eq!(
        e(m.fit_dataset(&mut Faulty(9), quiet().validation_dataset(&mut val).validation_steps(4))),
        "validation_steps: expected a number of batches in [1, 3] (the validation dataset's), found 4"
    );
    let (x, y) = data(4);
    assert!(e(m.fit(&x, &y, quiet().steps_per_epoch(2))).starts_with("fit: steps_per_epoch applies to fit_dataset"));
    let mut empty = ArrayDataset::new(&x, &y, 4).unwrap();
    assert!(empty.get(1).is_err());
    assert!(ArrayDataset::new(&x, &y.slice(s![..2, ..]), 4).is_err());
    // After the failures (some after a few steps) the model still trains on a good dataset.
    m.fit_dataset(&mut Faulty(9), quiet()).unwrap();
}
