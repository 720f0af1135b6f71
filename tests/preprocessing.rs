//! The preprocessing layers, Rescaling and Normalization: what they compute, their summary rows,
//! saving and loading. Their Keras fixtures (from `tests/fixtures/gen_preprocessing.py`: forward,
//! first-batch loss and gradients, two epochs of SGD, within 1e-5 relative) run here on the CPU
//! and on every backend in the conformance suite (`tests/conformance/`, models in
//! `tests/models/preprocessing.rs`); their finite-difference checks are in `tests/gradients.rs`.

mod common;
#[path = "models/preprocessing.rs"]
mod models;

use common::{Fixture, assert_all_close, assert_close, python, python_keras_predicts, run_fixture};
use keras::datasets::{ArrayDataset, DataBatch, Dataset};
use keras::model::{Arena, Model};
use keras::ndarray::{Array2, ArrayD, Axis, IxDyn, Slice, array};
use keras::prelude::*;
use models::{NormAdapt, NormAxes12, NormAxis1, NormGiven, NormNoneInvert, RescaleImage, RescaleNet};

const RTOL: f64 = 1e-5;

#[test]
fn rescaling_matches_keras() {
    run_fixture::<RescaleNet>("D_layer_rescaling", RTOL);
    run_fixture::<RescaleImage>("D_layer_rescaling_image", RTOL);
}

/// Forward, first-batch gradients, two epochs of SGD, weights after (the statistics unchanged
/// by training, `count` included) and forward after, from Keras's adapted statistics or given
/// ones.
#[test]
fn normalization_matches_keras() {
    run_fixture::<NormAdapt>("D_layer_normalization_adapt", RTOL);
    run_fixture::<NormAxis1>("D_layer_normalization_axis1", RTOL);
    run_fixture::<NormAxes12>("D_layer_normalization_axes12", RTOL);
    run_fixture::<NormNoneInvert>("D_layer_normalization_none_invert", RTOL);
    run_fixture::<NormGiven>("D_layer_normalization_given", RTOL);
}

/// The weights and shapes Keras has: `mean`, `variance` of the kept axes' shape and a scalar
/// `count`, non-trainable, in `get_weights()` order; none for given statistics.
#[test]
fn normalization_weights_are_keras_weights() {
    fn specs<M: Model>() -> Vec<(String, Vec<usize>, bool)> {
        M::WEIGHTS.iter().map(|w| (w.path(), w.shape.to_vec(), w.arena == Arena::Trainable)).collect()
    }
    fn keras(name: &str) -> Vec<(String, Vec<usize>, bool)> {
        let f = Fixture::load(name);
        let records = f.value("weights_init").as_array().unwrap().clone();
        records
            .iter()
            .map(|w| {
                let shape = w["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                (w["path"].as_str().unwrap().trim_start_matches("sequential/").to_string(), shape, w["trainable"].as_bool().unwrap())
            })
            .collect()
    }
    assert_eq!(specs::<NormAdapt>(), keras("D_layer_normalization_adapt"));
    assert_eq!(specs::<NormAxis1>(), keras("D_layer_normalization_axis1"));
    assert_eq!(specs::<NormAxes12>(), keras("D_layer_normalization_axes12"));
    assert_eq!(specs::<NormNoneInvert>(), keras("D_layer_normalization_none_invert"));
    assert_eq!(specs::<NormGiven>(), keras("D_layer_normalization_given"));
    assert_eq!((NormAdapt::PARAMS, NormAdapt::NON_TRAINABLE_PARAMS), (24, 9));
    assert_eq!((NormNoneInvert::PARAMS, NormNoneInvert::NON_TRAINABLE_PARAMS), (42, 3));
    assert_eq!((NormGiven::PARAMS, NormGiven::NON_TRAINABLE_PARAMS), (31, 0));
}

/// `adapt` on the data Keras adapted on gives Keras's statistics, and then, with the fixture's
/// trainable weights, Keras's predictions; `adapt_batches` over the batches Keras was given
/// gives what Keras's adapt of that list gave.
#[test]
fn adapt_matches_keras() {
    fn check<M: Model<Backend = Cpu>>(name: &str) {
        let f = Fixture::load(name);
        let want = f.weights("weights_init");
        let adapt_x = f.tensor("adapt_x");
        let mut model = M::create(&Cpu::default()).unwrap();
        model.adapt("normalization", &adapt_x).unwrap();
        let got = model.get_weights().unwrap();
        assert_all_close(&format!("{name}: adapted statistics"), &got[..3], &want[..3], RTOL);
        let mut weights = got;
        weights[3..].clone_from_slice(&want[3..]);
        model.set_weights(&weights).unwrap();
        let pred = model.predict_joined(&f.tensor("x")).unwrap();
        assert_close(
            &format!("{name}: forward after adapt"),
            pred.as_slice().unwrap(),
            f.tensor("forward_before").as_slice().unwrap(),
            RTOL,
        );

        let batches = &f.value("adapt_batches");
        let sizes: Vec<usize> = batches["sizes"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
        let mut start = 0;
        let parts: Vec<_> = sizes
            .iter()
            .map(|&n| {
                start += n;
                adapt_x.slice_axis(Axis(0), Slice::from(start - n..start))
            })
            .collect();
        let mut model = M::create(&Cpu::default()).unwrap();
        model.adapt_batches("normalization", parts).unwrap();
        let want: Vec<ArrayD<f32>> = batches["weights"].as_array().unwrap().iter().map(Fixture::tensor_of).collect();
        assert_all_close(&format!("{name}: adapted over batches"), &model.get_weights().unwrap()[..3], &want, RTOL);
    }
    check::<NormAdapt>("D_layer_normalization_adapt");
    check::<NormAxis1>("D_layer_normalization_axis1");
    check::<NormAxes12>("D_layer_normalization_axes12");
    check::<NormNoneInvert>("D_layer_normalization_none_invert");
}

sequential! { struct Standardize3 = Input(3) => Normalization(); }

/// A constant feature has variance 0: Keras divides by epsilon (1e-7) instead, so a value at the
/// mean gives 0 and one 0.5 away gives 5e6.
#[test]
fn a_constant_feature_divides_by_epsilon() {
    let f = Fixture::load("preprocessing_constant_feature");
    let mut model = Standardize3::new(&Cpu::default());
    model.adapt("normalization", &f.tensor("adapt_x")).unwrap();
    let weights = model.get_weights().unwrap();
    assert_eq!(weights[1][1], 0.0, "the constant feature's variance");
    assert_all_close("statistics", &weights, &f.weights("weights"), RTOL);
    let got = model.predict(&f.tensor("x")).unwrap();
    let want = f.tensor("forward");
    assert_close("forward", got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    assert_eq!((got[[0, 1]], got[[1, 1]]), (0.0, want[[1, 1]]));
    assert!(got[[1, 1]] > 4.9e6, "{}", got[[1, 1]]);
}

sequential! {
    /// Every layer of this file, as `gen_preprocessing.py` saves it.
    struct Both = Input(4) => Normalization() => Rescaling(0.5, offset = 0.1) => Dense(5, relu)
        => Normalization(mean = [0.5, 1.0, 1.5, 2.0, 2.5], variance = [1.0, 2.0, 3.0, 4.0, 0.0]) => Dense(3);
}

#[test]
fn summary_is_keras_summary() {
    let want = include_str!("fixtures/preprocessing_summary.txt").replacen("Model: \"sequential\"", "Model: \"both\"", 1);
    assert_eq!(Both::new(&Cpu::default()).summary().to_string(), want);
    assert_eq!((Both::PARAMS, Both::TRAINABLE_PARAMS, Both::NON_TRAINABLE_PARAMS), (52, 43, 9));
}

/// The model saved by Keras as `.keras`, legacy `.h5` and `.weights.h5` loads (the adapted
/// statistics with it, Keras's int32 `count` read as a float) and predicts what Keras predicted.
#[test]
fn keras_files_load_and_predict_as_keras() {
    let f = Fixture::load("preprocessing_files");
    let (x, want, weights) = (f.tensor("x"), f.tensor("forward"), f.weights("weights"));
    for file in ["preprocessing_files.keras", "preprocessing_files.h5", "preprocessing_files.weights.h5"] {
        let mut model = Both::new(&Cpu::default());
        model.load_keras(format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(model.get_weights().unwrap(), weights, "{file}: the weights Keras saved");
        let got = model.predict(&x).unwrap();
        assert_close(file, got.as_slice().unwrap(), want.as_slice().unwrap(), RTOL);
    }
}

sequential! {
    /// `Both` with other given statistics: the same weights, another architecture.
    struct OtherStatistics = Input(4) => Normalization() => Rescaling(0.5, offset = 0.1) => Dense(5, relu)
        => Normalization(mean = [0.5, 1.0, 1.5, 2.0, 2.5], variance = [1.0, 2.0, 3.0, 4.0, 1.0]) => Dense(3);
}
sequential! {
    /// `Both` normalizing its input over every axis: other weights' shapes.
    struct OneStatistic = Input(4) => Normalization(axis = None) => Rescaling(0.5, offset = 0.1) => Dense(5, relu)
        => Normalization(mean = [0.5, 1.0, 1.5, 2.0, 2.5], variance = [1.0, 2.0, 3.0, 4.0, 0.0]) => Dense(3);
}

/// The given statistics and the axes are part of the architecture a Keras file is checked
/// against.
#[test]
fn a_keras_file_with_other_statistics_or_axes_is_refused() {
    let path = format!("{}/tests/fixtures/preprocessing_files.keras", env!("CARGO_MANIFEST_DIR"));
    let e = OtherStatistics::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 4 (normalization_1): the file has Normalization(axis=(-1,), invert=false, mean=(0.5, 1.0, 1.5, 2.0, 2.5), \
             variance=(1.0, 2.0, 3.0, 4.0, 0.0)), this model has Normalization(axis=(-1,), invert=false, mean=(0.5, 1, 1.5, 2, 2.5), \
             variance=(1, 2, 3, 4, 1))"
        ),
        "{e}"
    );
    let e = OneStatistic::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 1 (normalization): the file has Normalization(axis=(-1,), invert=false, mean=None, variance=None), \
             this model has Normalization(axis=(), invert=false, mean=None, variance=None)"
        ),
        "{e}"
    );
}

/// Adapted statistics are weights: `save_weights` / `load_weights` (safetensors, and Keras's
/// `.weights.h5`) and `save_keras` / `load_keras` keep them, and Python Keras loads the archive (its `count` an int32, as Keras
/// writes it) and predicts what keras-rs predicts.
#[test]
fn adapted_statistics_are_saved_and_loaded() {
    let f = Fixture::load("preprocessing_files");
    let x = f.tensor("x");
    let mut model = Both::new(&Cpu::default());
    model.adapt("normalization", &f.tensor("adapt_x")).unwrap();
    let weights = model.get_weights().unwrap();
    assert_all_close("adapted", &weights[..3], &f.weights("weights")[..3], RTOL);
    let ours = model.predict(&x).unwrap();
    let dir = std::env::temp_dir().join(format!("keras-rs-normalization-{}", std::process::id()));
    for file in ["both.safetensors", "both.weights.h5", "both.keras"] {
        let path = dir.join(file);
        let mut back = Both::new(&Cpu::default());
        if file.ends_with(".keras") {
            model.save_keras(&path).unwrap();
            back.load_keras(&path).unwrap();
        } else {
            model.save_weights(&path).unwrap();
            back.load_weights(&path).unwrap();
        }
        assert_eq!(back.get_weights().unwrap(), weights, "{file}");
        assert_eq!(back.predict(&x).unwrap(), ours, "{file}");
    }
    let archive = dir.join("both.keras");
    if let Some(keras) = python_keras_predicts(&archive, x.as_slice().unwrap(), x.shape()) {
        assert_close("Python Keras on our archive", ours.as_slice().unwrap(), &keras, RTOL);
        let script = format!(
            "import io, zipfile, h5py\nvars = h5py.File(io.BytesIO(zipfile.ZipFile({:?}).read('model.weights.h5')))['layers/normalization/vars']\n\
             print([(vars[k].dtype.name, vars[k].shape) for k in sorted(vars)])",
            archive.display().to_string()
        );
        assert_eq!(python(&script).unwrap().trim(), "[('float32', (4,)), ('float32', (4,)), ('int32', ())]", "as Keras writes them");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `predict_one` (the state, constants included, copied into a per-thread buffer) agrees with
/// `predict`.
#[test]
fn predict_one_agrees_with_predict() {
    let f = Fixture::load("preprocessing_files");
    let mut model = Both::new(&Cpu::default());
    model.set_weights(&f.weights("weights")).unwrap();
    let x = f.tensor("x");
    let batch = model.predict(&x).unwrap();
    for (i, sample) in x.as_slice().unwrap().chunks(4).enumerate() {
        let one = model.predict_one(sample.try_into().unwrap());
        assert_close("predict_one", &one, &batch.as_slice().unwrap()[i * 3..(i + 1) * 3], 1e-6);
    }
}

functional! {
    /// A Normalization on each input, one adapted, one given its statistics.
    struct TwoInputs(a: [3], b: [2]) -> out {
        let n = Normalization()(a);
        let m = Normalization(mean = [1.0, 2.0], variance = [1.0, 4.0], name = "given")(b);
        let joined = Concatenate()(n, m);
        let out = Dense(1, kernel_initializer = ones)(joined);
    }
}

/// In a functional model a Normalization is adapted by name, and a given one reads its constants;
/// `predict_one` agrees.
#[test]
fn functional_models_adapt_and_read_constants() {
    let mut model = TwoInputs::new(&Cpu::default());
    let a = array![[1.0f32, 0.0, 5.0], [3.0, 4.0, 5.0]];
    model.adapt("normalization", &a).unwrap();
    let w = model.get_weights().unwrap();
    assert_eq!(w[0].as_slice().unwrap(), &[2.0, 2.0, 5.0]);
    assert_eq!(w[1].as_slice().unwrap(), &[1.0, 4.0, 0.0]);
    let b = array![[2.0f32, 4.0], [0.0, 0.0]];
    let y = model.predict(&[a.view(), b.view()]).unwrap();
    // (a - mean) / sqrt(var) summed: (-1 - 1 + 0) and (1 + 1 + 0); (b - [1, 2]) / [1, 2]: (1 + 1), (-1 - 1).
    assert_eq!(y.as_slice().unwrap(), &[0.0, 0.0]);
    let one = model.predict_one(&[1.0, 0.0, 5.0], &[2.0, 4.0]);
    assert_eq!(one, [0.0]);
    let e = model.adapt("given", &b).unwrap_err().to_string();
    assert_eq!(e, "adapt: layer `given` was given its `mean` and `variance`, so it has nothing to adapt (leave them out to adapt it)");
}

/// Every way `adapt` can be misused is an error saying what was expected.
#[test]
fn adapt_errors_say_what_was_expected() {
    let mut model = Both::new(&Cpu::default());
    let x = Array2::<f32>::ones((5, 4));
    let err = |model: &mut Both, layer: &str, data: &ArrayD<f32>| model.adapt(layer, data).unwrap_err().to_string();
    let x4 = x.clone().into_dyn();
    assert_eq!(
        err(&mut model, "normalisation", &x4),
        "unknown layer `normalisation`: did you mean `normalization`? expected one of normalization"
    );
    assert_eq!(
        err(&mut model, "dense", &x4),
        "adapt: layer `dense`: expected a Normalization layer (this model's: normalization), found a Dense layer"
    );
    assert_eq!(
        err(&mut model, "normalization_1", &x4),
        "adapt: layer `normalization_1` was given its `mean` and `variance`, so it has nothing to adapt (leave them out to adapt it)"
    );
    assert_eq!(
        err(&mut model, "normalization", &ArrayD::ones(IxDyn(&[5, 3]))),
        "adapt: the data for layer `normalization`: expected shape (n, 4), found (5, 3)"
    );
    assert_eq!(
        err(&mut model, "normalization", &ArrayD::ones(IxDyn(&[5, 4, 1]))),
        "adapt: the data for layer `normalization`: expected shape (n, 4), found (5, 4, 1)"
    );
    assert_eq!(
        err(&mut model, "normalization", &ArrayD::ones(IxDyn(&[0, 4]))),
        "adapt: the data for layer `normalization` is empty: expected at least one sample"
    );
    let mut nan = x4.clone();
    nan[[2, 1]] = f32::NAN;
    assert_eq!(
        err(&mut model, "normalization", &nan),
        "adapt: the data for layer `normalization` contains a non-finite value (NaN) at flat index 9: expected finite numbers"
    );
    let e = model.adapt_batches("normalization", [x.view(), x.slice(keras::ndarray::s![.., ..2])]).unwrap_err().to_string();
    assert_eq!(e, "adapt: batch 1 of the data for layer `normalization`: expected shape (n, 4), found (5, 2)");
    assert_eq!(model.get_weights().unwrap()[..2], Both::new(&Cpu::default()).get_weights().unwrap()[..2], "nothing written on error");
    let e = Standardize3::new(&Cpu::default()).adapt_batches::<keras::ndarray::OwnedRepr<f32>, IxDyn>("normalization", []).unwrap_err();
    assert_eq!(e.to_string(), "adapt: the data for layer `normalization` is empty: expected at least one sample");
    sequential! { struct Plain = Input(2) => Dense(1); }
    let e = Plain::new(&Cpu::default()).adapt("dense", &array![[1.0f32, 2.0]]).unwrap_err().to_string();
    assert_eq!(e, "adapt: layer `dense`: expected a Normalization layer (this model has none to adapt), found a Dense layer");
    let e = Plain::new(&Cpu::default()).adapt("normalization", &array![[1.0f32, 2.0]]).unwrap_err().to_string();
    assert_eq!(e, "adapt: the model has no layer `normalization`, and no Normalization layer to adapt");
}

/// Each layer's output in inference, against Keras's `layer_outputs_before`: the Rescaling layers
/// alone, on pixel values.
#[test]
fn rescaling_outputs_are_keras_outputs() {
    sequential! { struct Pixels = Input(6) => Rescaling(1.0 / 255.0); }
    sequential! { struct Centered = Input((4, 4, 2)) => Rescaling(1.0 / 127.5, offset = -1); }
    let f = Fixture::load("D_layer_rescaling");
    let got = Pixels::new(&Cpu::default()).predict(&f.tensor("x")).unwrap();
    let want = Fixture::tensor_of(&f.value("layer_outputs_before")[0]);
    assert_close("Rescaling(1 / 255)", got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-7);
    let f = Fixture::load("D_layer_rescaling_image");
    let got = Centered::new(&Cpu::default()).predict(&f.tensor("x")).unwrap();
    let want = Fixture::tensor_of(&f.value("layer_outputs_before")[0]);
    assert_close("Rescaling(1 / 127.5, offset = -1)", got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-7);
}

/// A model with Rescaling saved by `save_keras` loads back, and Python Keras loads it and
/// predicts what keras-rs predicts; a file with another scale is refused, naming it.
#[test]
fn rescaling_save_keras_round_trips_into_python_keras() {
    sequential! { struct OtherScale = Input(6) => Rescaling(1.0 / 127.5) => Dense(4, tanh) => Rescaling(2.5, offset = -0.5) => Dense(3, softmax); }
    let f = Fixture::load("D_layer_rescaling");
    let dir = std::env::temp_dir().join(format!("keras-rs-rescaling-{}", std::process::id()));
    let path = dir.join("rescale.keras");
    let mut model = RescaleNet::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    model.save_keras(&path).unwrap();
    let mut back = RescaleNet::new(&Cpu::default());
    back.load_keras(&path).unwrap();
    assert_eq!(back.get_weights().unwrap(), model.get_weights().unwrap());
    let e = OtherScale::new(&Cpu::default()).load_keras(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "layer 1 (rescaling): the file has Rescaling(scale=0.00392156862745098, offset=0.0), \
             this model has Rescaling(scale=0.00784313725490196, offset=0)"
        ),
        "{e}"
    );
    let x = f.tensor("x");
    let ours = model.predict(&x).unwrap();
    if let Some(keras) = python_keras_predicts(&path, x.as_slice().unwrap(), x.shape()) {
        assert_close("Python Keras on our archive", ours.as_slice().unwrap(), &keras, RTOL);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// As in Keras, only the kept axes of the data must have the layer's sizes: a Normalization of
/// axis 1 over `(3, 4)` samples adapts on samples of `(3, 2)`, reducing the batch and the last
/// axis.
#[test]
fn adapt_reduces_axes_of_other_sizes() {
    let mut model = NormAxis1::new(&Cpu::default());
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3, 2]), vec![0.0, 2.0, 1.0, 1.0, 5.0, 9.0, 4.0, 6.0, 1.0, 1.0, 7.0, 3.0]).unwrap();
    model.adapt("normalization", &x).unwrap();
    let w = model.get_weights().unwrap();
    assert_eq!((w[0].as_slice().unwrap(), w[1].as_slice().unwrap()), (&[3.0f32, 1.0, 6.0][..], &[5.0f32, 0.0, 5.0][..]));
}

/// The three batches Keras's adapt of a list was given, as a [`Dataset`]; with `fail_at`, that
/// batch cannot be read.
struct Slices {
    x: ArrayD<f32>,
    sizes: Vec<usize>,
    fail_at: Option<usize>,
}

impl Dataset for Slices {
    fn len(&self) -> usize {
        self.sizes.len()
    }
    fn get(&mut self, index: usize) -> keras::Result<DataBatch> {
        if self.fail_at == Some(index) {
            return Err(keras::Error::Config(format!("batch {index} is unreadable")));
        }
        let start: usize = self.sizes[..index].iter().sum();
        Ok(DataBatch::inputs(vec![self.x.slice_axis(Axis(0), Slice::from(start..start + self.sizes[index])).to_owned()]))
    }
}

/// `adapt_dataset` reads a [`Dataset`]'s batches as Keras's adapt reads a `PyDataset`'s: over
/// the batches Keras was given it gives Keras's statistics, over an `ArrayDataset` what
/// `adapt_batches` gives over the same batches; a batch it cannot read, or one of two inputs, is
/// the error.
#[test]
fn adapt_dataset_reads_every_batch() {
    let f = Fixture::load("D_layer_normalization_adapt");
    let x = f.tensor("adapt_x");
    let sizes: Vec<usize> = f.value("adapt_batches")["sizes"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
    let want: Vec<ArrayD<f32>> = f.value("adapt_batches")["weights"].as_array().unwrap().iter().map(Fixture::tensor_of).collect();
    let mut model = NormAdapt::new(&Cpu::default());
    model.adapt_dataset("normalization", &mut Slices { x: x.clone(), sizes: sizes.clone(), fail_at: None }).unwrap();
    assert_all_close("adapt_dataset", &model.get_weights().unwrap()[..3], &want, RTOL);

    let mut dataset = ArrayDataset::from_inputs(vec![x.clone()], None, 13).unwrap();
    let mut model = NormAdapt::new(&Cpu::default());
    model.adapt_dataset("normalization", &mut dataset).unwrap();
    let mut other = NormAdapt::new(&Cpu::default());
    other.adapt_batches("normalization", (0..dataset.len()).map(|i| dataset.get(i).unwrap().x.remove(0))).unwrap();
    assert_eq!(model.get_weights().unwrap()[..3], other.get_weights().unwrap()[..3]);

    let e = model.adapt_dataset("normalization", &mut Slices { x: x.clone(), sizes, fail_at: Some(1) }).unwrap_err();
    assert_eq!(e.to_string(), "batch 1 is unreadable");
    let mut two = ArrayDataset::from_inputs(vec![x.clone(), x], None, 8).unwrap();
    let e = model.adapt_dataset("normalization", &mut two).unwrap_err();
    assert_eq!(e.to_string(), "adapt_dataset: batch 0's inputs: expected one array, the layer's data, found 2 arrays");
    assert_eq!(model.get_weights().unwrap()[..3], other.get_weights().unwrap()[..3], "nothing written on error");
}
