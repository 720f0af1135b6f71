//! `fit`, `evaluate` and `predict` over a [`Dataset`]: batches read one at a time (for
//! training, on a background thread a few batches ahead), each checked and converted as `fit`
//! checks arrays, so that memory holds a few batches, never the data set.

use super::data::{Table, join_inputs, table};
use super::engine::{Batch, Engine};
use super::fit::{FitArgs, Source, check_sample_weight, class_weights_to_sample_weights, epochs};
use super::logs::{History, Logs};
use crate::datasets::{DataBatch, Dataset};
use crate::model::InputSpec;
use crate::random::Rng;
use crate::{Error, Result};
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

/// Batch `index` of `data`, a panic in the user's `get` turned into an error.
fn fetch(data: &mut dyn Dataset, index: usize) -> Result<DataBatch> {
    catch_unwind(AssertUnwindSafe(|| data.get(index))).unwrap_or_else(|panic| {
        let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        Err(Error::Config(format!("Dataset::get({index}) panicked: {}", message.as_deref().unwrap_or("(no message)"))))
    })
}

/// Class weights with the model's output width (`None` for outputs without a class per sample).
type ClassWeights<'c> = (&'c [(usize, f32)], Option<usize>);

/// A batch's tables as the engine takes them.
type Tables<'b> = (Table<'b>, Option<Table<'b>>, Option<Table<'b>>);

/// Runs `f` on a batch's tables (see [`tables`]).
pub(crate) fn with_tables<R>(
    batch: &DataBatch,
    inputs: &[InputSpec],
    need_y: bool,
    class_weight: Option<ClassWeights<'_>>,
    f: impl FnOnce(&Table<'_>, Option<&Table<'_>>, Option<&Table<'_>>) -> Result<R>,
) -> Result<R> {
    let (x, y, w) = tables(batch, inputs, need_y, class_weight)?;
    f(&x, y.as_ref(), w.as_ref())
}

/// A batch's tables: `x` joined for the model's `inputs`, `y` (required unless `need_y` is
/// false) and the sample weights (the batch's own, or looked up from `class_weight`).
fn tables<'b>(batch: &'b DataBatch, inputs: &[InputSpec], need_y: bool, class_weight: Option<ClassWeights<'_>>) -> Result<Tables<'b>> {
    let parts = batch.x.iter().enumerate().map(|(k, a)| table(a, &if batch.x.len() > 1 { format!("x[{k}]") } else { "x".to_string() }));
    let x = join_inputs(parts.collect::<Result<_>>()?, inputs.len() > 1, inputs, "x")?;
    let y = match &batch.y {
        Some(y) => Some(table(y, "y")?),
        None if need_y => return Err(Error::Config("a dataset batch without targets (DataBatch::y): fit and evaluate need them".into())),
        None => None,
    };
    let w = match (&batch.sample_weight, class_weight, &y) {
        (Some(_), Some(_), _) => {
            return Err(Error::Config("fit_dataset: a batch has sample weights and fit has class_weight (as in Keras, not both)".into()));
        }
        (Some(w), None, _) => {
            let w = table(w, "sample_weight")?;
            check_sample_weight(&w, x.rows())?;
            Some(w)
        }
        (None, Some((cw, Some(classes))), Some(y)) => {
            let weights = class_weights_to_sample_weights(cw, y, classes)?;
            Some(Table { data: Cow::Owned(weights), shape: Cow::Owned(vec![x.rows()]), parts: Vec::new() })
        }
        (None, Some((_, None)), _) => {
            return Err(Error::Config("fit: class_weight needs a model whose output is one vector per sample (N, classes)".to_string()));
        }
        _ => None,
    };
    Ok((x, y, w))
}

/// Runs a batch through the engine (training or test), every rank of a data-parallel job
/// agreeing first that the batch is well formed and the same on every rank, so that no rank
/// enters the step's collectives alone.
fn run_batch(
    engine: &mut dyn Engine,
    batch: Result<DataBatch>,
    inputs: &[InputSpec],
    class_weight: Option<ClassWeights<'_>>,
    train: bool,
) -> Result<()> {
    let agreed = engine.agree(batch.as_ref().err());
    let batch = batch?;
    agreed?;
    let prepared = tables(&batch, inputs, true, class_weight).and_then(|(x, y, w)| {
        let y = y.expect("targets were required");
        engine.check_data(&x, &y)?;
        Ok((x, y, w))
    });
    let agreed = engine.agree(prepared.as_ref().err());
    let (x, y, w) = prepared?;
    agreed?;
    let mut slices = x.slices();
    slices.extend(y.slices());
    slices.extend(w.iter().flat_map(Table::slices));
    engine.check_same(if train { "fit_dataset" } else { "evaluate_dataset" }, &slices)?;
    let rows = x.rows();
    if train {
        engine.train_batch(&x, &y, w.as_ref(), Batch::Range(0, rows))
    } else {
        engine.test_batch(&x, &y, w.as_ref(), Batch::Range(0, rows))
    }
}

/// Where a stream's training batches come from.
enum Feed<'s> {
    /// Read on the training thread.
    Direct(&'s mut dyn Dataset),
    /// Read ahead by a background thread: each epoch's indices go out, its batches come back.
    Ahead { requests: mpsc::Sender<Request>, batches: mpsc::Receiver<Result<DataBatch>> },
}

/// What the reader thread is asked for.
enum Request {
    /// Read these batches, in order.
    Batches(Vec<usize>),
    /// The epoch ended: call the dataset's `on_epoch_end` (after the epoch's batches).
    EpochEnd,
}

/// A dataset as `fit`'s source of batches.
struct Stream<'s, 'v> {
    inputs: &'static [InputSpec],
    classes: Option<usize>,
    class_weight: Option<Vec<(usize, f32)>>,
    len: usize,
    steps: usize,
    shuffle: bool,
    /// The current pass over the dataset (a permutation of its batches) and the next position.
    pass: Vec<usize>,
    cursor: usize,
    /// The batches of the epoch under way.
    epoch: Vec<usize>,
    feed: Feed<'s>,
    validation: Option<(&'v mut dyn Dataset, usize)>,
}

impl Source for Stream<'_, '_> {
    fn steps(&self) -> usize {
        self.steps
    }

    fn shuffle(&mut self, _engine: &mut dyn Engine, rng: &mut Rng, apply: bool) -> Result<()> {
        self.epoch.clear();
        for _ in 0..self.steps {
            if self.cursor == self.pass.len() {
                self.pass = (0..self.len).collect();
                if self.shuffle {
                    rng.shuffle(&mut self.pass);
                }
                self.cursor = 0;
            }
            self.epoch.push(self.pass[self.cursor]);
            self.cursor += 1;
        }
        if let (true, Feed::Ahead { requests, .. }) = (apply, &self.feed) {
            requests.send(Request::Batches(self.epoch.clone())).map_err(|_| Error::Config("the dataset's reader thread stopped".into()))?;
        }
        Ok(())
    }

    fn train(&mut self, engine: &mut dyn Engine, step: usize) -> Result<()> {
        let batch = match &mut self.feed {
            Feed::Direct(data) => fetch(*data, self.epoch[step]),
            Feed::Ahead { batches, .. } => {
                batches.recv().unwrap_or_else(|_| Err(Error::Config("the dataset's reader thread stopped".into())))
            }
        };
        let cw = self.class_weight.as_deref().map(|cw| (cw, self.classes));
        run_batch(engine, batch, self.inputs, cw, true)
    }

    fn validate(&mut self, engine: &mut dyn Engine, _batch_size: usize, logs: &mut Logs) -> Result<()> {
        let inputs = self.inputs;
        if let Some((data, steps)) = &mut self.validation {
            evaluate_stream(engine, inputs, &mut **data, *steps, logs, true)?;
        }
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<()> {
        match &mut self.feed {
            Feed::Direct(data) => data.on_epoch_end(),
            // The reader calls it once it has read the epoch's batches (all trained on, unless
            // the epoch was stopped: then `fit` ends, and so does the reader).
            Feed::Ahead { requests, .. } => {
                let _ = requests.send(Request::EpochEnd);
            }
        }
        Ok(())
    }
}

/// Loss and metrics over the first `steps` batches of `data`, into `logs`.
pub(crate) fn evaluate_stream(
    engine: &mut dyn Engine,
    inputs: &[InputSpec],
    data: &mut dyn Dataset,
    steps: usize,
    logs: &mut Logs,
    validation: bool,
) -> Result<()> {
    engine.reset_metrics()?;
    for index in 0..steps {
        run_batch(engine, fetch(data, index), inputs, None, false)?;
    }
    data.on_epoch_end();
    engine.write_logs(logs, validation)
}

/// `fit_dataset`: checks the arguments, then trains epoch by epoch on batches of `data`.
pub(crate) fn fit_dataset(
    engine: &mut dyn Engine,
    data: &mut dyn Dataset,
    inputs: &'static [InputSpec],
    classes: Option<usize>,
    mut args: FitArgs<'_>,
) -> Result<History> {
    let checked = check_args(data, &args);
    let agreed = engine.agree(checked.as_ref().err());
    let (steps, validation_steps) = checked?;
    agreed?;
    let validation = args.validation_dataset.take().map(|v| (v, validation_steps));
    let class_weight = args.class_weight_arg().map(<[_]>::to_vec);
    let (len, shuffle) = (data.len(), args.shuffle);
    let stream = |feed| Stream {
        inputs,
        classes,
        class_weight,
        len,
        steps,
        shuffle,
        pass: Vec::new(),
        cursor: 0,
        epoch: Vec::new(),
        feed,
        validation,
    };
    let result = if args.prefetch == 0 {
        let mut source = stream(Feed::Direct(data));
        epochs(engine, &mut args, &mut source)
    } else {
        let depth = args.prefetch;
        std::thread::scope(|scope| {
            let (requests, wanted) = mpsc::channel::<Request>();
            let (ready, batches) = mpsc::sync_channel::<Result<DataBatch>>(depth);
            scope.spawn(move || {
                for request in wanted {
                    match request {
                        Request::Batches(indices) => {
                            for index in indices {
                                if ready.send(fetch(data, index)).is_err() {
                                    return;
                                }
                            }
                        }
                        Request::EpochEnd => data.on_epoch_end(),
                    }
                }
            });
            let mut source = stream(Feed::Ahead { requests, batches });
            // The source (and with it the channels) is dropped before the scope joins the
            // reader, which then stops.
            epochs(engine, &mut args, &mut source)
        })
    };
    engine.release();
    result
}

/// `fit_dataset`'s arguments checked: the steps per epoch and of validation.
fn check_args(data: &dyn Dataset, args: &FitArgs<'_>) -> Result<(usize, usize)> {
    if let Some(option) = args.array_options() {
        return Err(Error::Config(format!(
            "fit_dataset: {option} applies to fit on arrays; a dataset brings its own batches (validation through validation_dataset, weights in DataBatch::sample_weight)"
        )));
    }
    if data.is_empty() {
        return Err(Error::Empty { what: "the training dataset (len() is 0)".to_string() });
    }
    let steps = args.steps_per_epoch.unwrap_or(data.len());
    if steps == 0 {
        return Err(Error::value("steps_per_epoch", "at least 1", 0));
    }
    if args.verbose > 2 {
        return Err(Error::value("verbose", "0, 1 or 2", args.verbose));
    }
    let validation_steps = match (&args.validation_dataset, args.validation_steps) {
        (None, Some(_)) => return Err(Error::Config("fit_dataset: validation_steps needs validation_dataset".to_string())),
        (None, None) => 0,
        (Some(v), steps) => {
            let n = v.len();
            match steps {
                _ if n == 0 => return Err(Error::Empty { what: "the validation dataset (len() is 0)".to_string() }),
                Some(s) if s == 0 || s > n => {
                    return Err(Error::value("validation_steps", format!("a number of batches in [1, {n}] (the validation dataset's)"), s));
                }
                Some(s) => s,
                None => n,
            }
        }
    };
    Ok((steps, validation_steps))
}
