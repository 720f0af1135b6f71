//! Data that is read batch by batch: Keras's `PyDataset` (`keras.utils.PyDataset`) as the
//! [`Dataset`] trait, which `fit_dataset`, `evaluate_dataset` and `predict_dataset` take, and
//! ready-made datasets over arrays ([`ArrayDataset`]) and CSV files read in chunks
//! ([`CsvDataset`]).

use crate::{Error, Result};
use ndarray::{ArrayBase, ArrayD, Axis, Data, Dimension, IxDyn, Slice};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// One batch of a [`Dataset`]: the inputs (one array per model input, batch axis first), the
/// targets (absent for data that is only predicted on) and optional sample weights.
#[derive(Clone, Debug, PartialEq)]
pub struct DataBatch {
    /// One array per model input.
    pub x: Vec<ArrayD<f32>>,
    /// The targets, with as many samples as `x`.
    pub y: Option<ArrayD<f32>>,
    /// A weight per sample, for the loss.
    pub sample_weight: Option<ArrayD<f32>>,
}

impl DataBatch {
    /// A batch of inputs `x` (one model input) and targets `y`.
    pub fn new<S: Data<Elem = f32>, D: Dimension, S2: Data<Elem = f32>, D2: Dimension>(x: ArrayBase<S, D>, y: ArrayBase<S2, D2>) -> Self {
        DataBatch { x: vec![x.into_dyn().to_owned()], y: Some(y.into_dyn().to_owned()), sample_weight: None }
    }

    /// A batch of inputs only (for `predict_dataset`).
    pub fn inputs(x: Vec<ArrayD<f32>>) -> Self {
        DataBatch { x, y: None, sample_weight: None }
    }

    /// The same batch with targets.
    pub fn with_targets(mut self, y: ArrayD<f32>) -> Self {
        self.y = Some(y);
        self
    }

    /// The same batch with a weight per sample.
    pub fn with_sample_weight(mut self, w: ArrayD<f32>) -> Self {
        self.sample_weight = Some(w);
        self
    }
}

/// Data read batch by batch, as Keras's `PyDataset`: a number of batches and the batch at an
/// index. `fit_dataset` asks for the batches of each epoch in order (shuffled when `fit`
/// shuffles), by default on a background thread two batches ahead of training
/// (`FitArgs::prefetch`), so that only a few batches are in memory at a time.
///
/// ```
/// use keras_runtime::datasets::{DataBatch, Dataset};
/// use keras_runtime::Result;
/// use ndarray::Array2;
///
/// /// y = 2x, made on the fly: 1000 batches of 64, never all in memory.
/// struct Doubling;
///
/// impl Dataset for Doubling {
///     fn len(&self) -> usize {
///         1000
///     }
///     fn get(&mut self, index: usize) -> Result<DataBatch> {
///         let x = Array2::from_shape_fn((64, 1), |(i, _)| ((index * 64 + i) % 100) as f32 / 100.0);
///         Ok(DataBatch::new(x.clone(), x * 2.0))
///     }
/// }
/// assert_eq!(Doubling.get(3)?.x[0].shape(), [64, 1]);
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub trait Dataset: Send {
    /// The number of batches in one pass over the data (Keras's `__len__`).
    fn len(&self) -> usize;

    /// Whether the dataset has no batches.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch `index`, in `0..len()` (Keras's `__getitem__`).
    fn get(&mut self, index: usize) -> Result<DataBatch>;

    /// Called after each epoch's batches (Keras's `on_epoch_end`).
    fn on_epoch_end(&mut self) {}
}

impl<D: Dataset + ?Sized> Dataset for &mut D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&mut self, index: usize) -> Result<DataBatch> {
        (**self).get(index)
    }
    fn on_epoch_end(&mut self) {
        (**self).on_epoch_end()
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&mut self, index: usize) -> Result<DataBatch> {
        (**self).get(index)
    }
    fn on_epoch_end(&mut self) {
        (**self).on_epoch_end()
    }
}

/// Arrays cut into batches of `batch_size` consecutive samples (the last may be smaller): the
/// in-memory data of `fit`, as a [`Dataset`].
pub struct ArrayDataset {
    x: Vec<ArrayD<f32>>,
    y: Option<ArrayD<f32>>,
    batch_size: usize,
}

impl ArrayDataset {
    /// `x` and `y` in batches of `batch_size`; an error if they are empty, disagree in samples,
    /// or `batch_size` is 0.
    pub fn new<S: Data<Elem = f32>, D: Dimension, S2: Data<Elem = f32>, D2: Dimension>(
        x: &ArrayBase<S, D>,
        y: &ArrayBase<S2, D2>,
        batch_size: usize,
    ) -> Result<Self> {
        Self::from_inputs(vec![x.to_owned().into_dyn()], Some(y.to_owned().into_dyn()), batch_size)
    }

    /// One array per model input, optional targets, in batches of `batch_size`.
    pub fn from_inputs(x: Vec<ArrayD<f32>>, y: Option<ArrayD<f32>>, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::value("ArrayDataset batch_size", "at least 1", 0));
        }
        let rows = |a: &ArrayD<f32>| a.shape().first().copied().unwrap_or(0);
        let n = x.first().map(rows).ok_or_else(|| Error::Empty { what: "ArrayDataset x".to_string() })?;
        if n == 0 {
            return Err(Error::Empty { what: "ArrayDataset x".to_string() });
        }
        for (k, a) in x.iter().enumerate().skip(1).chain(y.iter().map(|y| (usize::MAX, y))) {
            if rows(a) != n {
                let what = if k == usize::MAX { "ArrayDataset y".to_string() } else { format!("ArrayDataset x[{k}]") };
                return Err(Error::value(what, format!("{n} samples, as many as x"), format!("{} samples", rows(a))));
            }
        }
        Ok(ArrayDataset { x, y, batch_size })
    }

    fn samples(&self) -> usize {
        self.x[0].shape()[0]
    }
}

impl Dataset for ArrayDataset {
    fn len(&self) -> usize {
        self.samples().div_ceil(self.batch_size)
    }

    fn get(&mut self, index: usize) -> Result<DataBatch> {
        if index >= self.len() {
            return Err(Error::value("ArrayDataset batch index", format!("an index in [0, {})", self.len()), index));
        }
        let (a, b) = (index * self.batch_size, ((index + 1) * self.batch_size).min(self.samples()));
        let rows = |t: &ArrayD<f32>| t.slice_axis(Axis(0), Slice::from(a..b)).to_owned();
        Ok(DataBatch { x: self.x.iter().map(rows).collect(), y: self.y.as_ref().map(rows), sample_weight: None })
    }
}

/// A CSV file of numbers read `batch_size` rows at a time: one pass over the file at `open`
/// notes where each batch starts (a position per batch, not the data), and each batch is read
/// from there, so a file far larger than memory trains in bounded memory. One column is the
/// target (by name, from the header line), the others the features, as
/// `from_csv(..)?.split_target(..)` gives them.
pub struct CsvDataset {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    columns: Vec<String>,
    target: Option<usize>,
    batch_size: usize,
    rows: usize,
    /// Where each batch's first record starts.
    starts: Vec<csv::Position>,
}

impl CsvDataset {
    /// Opens a CSV file with a header line; `target` names the target column (`None` for
    /// features only, for `predict_dataset`). Errors name the file, the line and the column of
    /// a cell that is not a number, or the columns when `target` is not one of them.
    pub fn open(path: impl AsRef<Path>, target: Option<&str>, batch_size: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if batch_size == 0 {
            return Err(Error::value("CsvDataset batch_size", "at least 1", 0));
        }
        let shown = path.display().to_string();
        let io = |source| Error::Io { path: shown.clone(), source };
        let format = |message: String| Error::Format { path: shown.clone(), message };
        let file = File::open(&path).map_err(io)?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(csv::Trim::All).from_reader(BufReader::new(file));
        let columns: Vec<String> = reader.headers().map_err(|e| format(e.to_string()))?.iter().map(str::to_string).collect();
        let target = match target {
            Some(name) => Some(columns.iter().position(|c| c == name).ok_or_else(|| {
                Error::value(format!("CsvDataset target column of {shown}"), format!("one of {}", columns.join(", ")), format!("`{name}`"))
            })?),
            None => None,
        };
        let mut starts = Vec::new();
        let mut record = csv::StringRecord::new();
        let mut rows = 0;
        loop {
            let at = reader.position().clone();
            if !reader.read_record(&mut record).map_err(|e| format(e.to_string()))? {
                break;
            }
            if record.len() != columns.len() {
                return Err(format(format!("line {}: expected {} cells, found {}", at.line(), columns.len(), record.len())));
            }
            if rows % batch_size == 0 {
                starts.push(at);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(Error::Empty { what: shown });
        }
        Ok(CsvDataset { path, reader, columns, target, batch_size, rows, starts })
    }

    /// The column names, from the header line.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The number of data rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

impl Dataset for CsvDataset {
    fn len(&self) -> usize {
        self.starts.len()
    }

    fn get(&mut self, index: usize) -> Result<DataBatch> {
        let shown = self.path.display().to_string();
        let Some(start) = self.starts.get(index) else {
            return Err(Error::value(format!("CsvDataset batch index of {shown}"), format!("an index in [0, {})", self.len()), index));
        };
        let format = |message: String| Error::Format { path: shown.clone(), message };
        self.reader.seek(start.clone()).map_err(|e| format(e.to_string()))?;
        let n = self.batch_size.min(self.rows - index * self.batch_size);
        let width = self.columns.len() - usize::from(self.target.is_some());
        let (mut x, mut y) = (Vec::with_capacity(n * width), Vec::with_capacity(n));
        let mut record = csv::StringRecord::new();
        for _ in 0..n {
            let line = self.reader.position().line();
            if !self.reader.read_record(&mut record).map_err(|e| format(e.to_string()))? {
                return Err(format(format!("line {line}: the file ended early (it changed since it was opened)")));
            }
            if record.len() != self.columns.len() {
                return Err(format(format!("line {line}: expected {} cells, found {}", self.columns.len(), record.len())));
            }
            for (c, cell) in record.iter().enumerate() {
                let v: f32 = cell
                    .parse()
                    .map_err(|_| format(format!("line {line}, column `{}`: expected a number, found `{cell}`", self.columns[c])))?;
                if Some(c) == self.target { y.push(v) } else { x.push(v) }
            }
        }
        let x = ArrayD::from_shape_vec(IxDyn(&[n, width]), x).expect("n rows of width values");
        let y = self.target.map(|_| ArrayD::from_shape_vec(IxDyn(&[n]), y).expect("n targets"));
        Ok(DataBatch { x: vec![x], y, sample_weight: None })
    }
}
