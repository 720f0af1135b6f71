//! The `fit` loop: epochs, shuffled batches, validation, progress, callbacks, history.

use super::callbacks::Callback;
use super::data::{Element, Inputs, Table, join_inputs, join_targets, table};
use super::engine::{Batch, Engine};
use super::logs::{History, Logs};
use super::progress::Progbar;
use crate::datasets::Dataset;
use crate::random::Rng;
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Dimension};
use std::time::Instant;

/// The arguments of `fit`, with Keras's defaults: `FitArgs::default().epochs(5).batch_size(64)`.
pub struct FitArgs<'a> {
    epochs: usize,
    batch_size: usize,
    pub(crate) shuffle: bool,
    pub(crate) verbose: u8,
    validation_split: f32,
    validation_data: Option<Result<(Table<'a>, Table<'a>)>>,
    /// `validation_data` as given, its x not yet joined for the model's inputs.
    validation_parts: Option<Result<(Vec<Table<'a>>, bool, Vec<Table<'a>>, bool)>>,
    callbacks: Vec<&'a mut dyn Callback>,
    initial_epoch: usize,
    sample_weight: Option<Result<Table<'a>>>,
    class_weight: Option<Vec<(usize, f32)>>,
    validation_sample_weight: Option<Result<Table<'a>>>,
    pub(crate) steps_per_epoch: Option<usize>,
    pub(crate) validation_dataset: Option<&'a mut dyn Dataset>,
    pub(crate) validation_steps: Option<usize>,
    pub(crate) prefetch: usize,
}

impl Default for FitArgs<'_> {
    fn default() -> Self {
        FitArgs {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            verbose: 1,
            validation_split: 0.0,
            validation_data: None,
            validation_parts: None,
            callbacks: Vec::new(),
            initial_epoch: 0,
            sample_weight: None,
            class_weight: None,
            validation_sample_weight: None,
            steps_per_epoch: None,
            validation_dataset: None,
            validation_steps: None,
            prefetch: 2,
        }
    }
}

impl<'a> FitArgs<'a> {
    /// Number of epochs (default 1).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Samples per gradient step (default 32); the last batch of an epoch may be smaller.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Whether to shuffle the training samples before each epoch (default true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// 0 = silent, 1 = Keras's progress bar (default), 2 = one line per epoch.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Holds out this fraction of the samples (the last ones, before shuffling) for validation.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Validates on this data at the end of each epoch (takes precedence over the split); `x` and
    /// `y` as in `fit` (one array per input, and per output, for a model with several).
    pub fn validation_data<X, Y>(mut self, x: &'a X, y: &'a Y) -> Self
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        self.validation_parts =
            Some(x.tables("validation x").and_then(|parts| Ok((parts, x.is_list(), y.tables("validation y")?, y.is_list()))));
        self
    }

    /// Joins `validation_data`'s arrays for model `M`'s inputs and outputs.
    pub(crate) fn join_validation<M: crate::model::Model>(&mut self) {
        if let Some(parts) = self.validation_parts.take() {
            self.validation_data = Some(parts.and_then(|(x, xlist, y, ylist)| {
                Ok((join_inputs(x, xlist, M::INPUTS, "validation x")?, join_targets(y, ylist, M::OUTPUTS, "validation y")?))
            }));
        }
    }

    /// For `fit_dataset`: the batches of an epoch (default: one pass over the dataset). The
    /// batches run on across epochs: an epoch of fewer batches than the dataset has leaves the
    /// rest of the pass to the next.
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// For `fit_dataset`: validates on this dataset at the end of each epoch (Keras's
    /// `validation_data` given a dataset).
    pub fn validation_dataset(mut self, data: &'a mut dyn Dataset) -> Self {
        self.validation_dataset = Some(data);
        self
    }

    /// For `fit_dataset`: the batches of the validation dataset evaluated each epoch (default:
    /// all of them, from the first).
    pub fn validation_steps(mut self, steps: usize) -> Self {
        self.validation_steps = Some(steps);
        self
    }

    /// For `fit_dataset`: the batches a background thread reads ahead of training (default 2);
    /// 0 reads each batch on the training thread when it is needed.
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Whether any array-only option is set (`fit_dataset` refuses them).
    pub(crate) fn array_options(&self) -> Option<&'static str> {
        if self.validation_split != 0.0 {
            Some("validation_split")
        } else if self.validation_data.is_some() || self.validation_parts.is_some() {
            Some("validation_data")
        } else if self.sample_weight.is_some() {
            Some("sample_weight")
        } else if self.validation_sample_weight.is_some() {
            Some("validation_sample_weight")
        } else {
            None
        }
    }

    /// The class weights, for `fit_dataset`.
    pub(crate) fn class_weight_arg(&self) -> Option<&[(usize, f32)]> {
        self.class_weight.as_deref()
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: &'a mut dyn Callback) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// The epoch to start at (to resume a run); epochs counts the total.
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// A weight per training sample (shape `(N,)` or `(N, 1)`, finite, non-negative): a batch's
    /// loss becomes `sum(w_i * loss_i) / batch_size`, as in Keras. Metrics stay unweighted. With
    /// `validation_split`, the held-out samples keep their weights for `val_loss`.
    pub fn sample_weight<A, S, D>(mut self, weights: &'a ArrayBase<S, D>) -> Self
    where
        A: Element,
        S: Data<Elem = A>,
        D: Dimension,
    {
        self.sample_weight = Some(table(weights, "sample_weight"));
        self
    }

    /// A weight per sample of `validation_data`, for `val_loss` (Keras's third element of the
    /// `validation_data` tuple).
    pub fn validation_sample_weight<A, S, D>(mut self, weights: &'a ArrayBase<S, D>) -> Self
    where
        A: Element,
        S: Data<Elem = A>,
        D: Dimension,
    {
        self.validation_sample_weight = Some(table(weights, "validation sample_weight"));
        self
    }

    /// Weights by class index, `&[(0, 1.0), (1, 5.0)]`: a sample's weight is its class's (1 for
    /// classes not listed). The class is the argmax of a one-hot target, else the rounded target.
    /// Like Keras, it cannot be combined with `sample_weight`, and it weighs training batches only.
    pub fn class_weight(mut self, weights: &[(usize, f32)]) -> Self {
        self.class_weight = Some(weights.to_vec());
        self
    }
}

/// The class weights of `fit` looked up for each target (`None` without class weights), after
/// checking the sample weights. `classes` is the model's output width, `None` for outputs with
/// more than one axis (which have no class per sample).
fn class_weights(
    sample_weight: Option<&Table<'_>>,
    class_weight: Option<&[(usize, f32)]>,
    y: &Table<'_>,
    classes: Option<usize>,
) -> Result<Option<Vec<f32>>> {
    match (sample_weight, class_weight) {
        (Some(_), Some(_)) => {
            Err(Error::Config("fit: sample_weight and class_weight cannot be used at the same time (as in Keras)".to_string()))
        }
        (Some(w), None) => {
            check_sample_weight(w, y.rows())?;
            Ok(None)
        }
        (None, Some(cw)) => match classes {
            Some(classes) => class_weights_to_sample_weights(cw, y, classes).map(Some),
            None => Err(Error::Config("fit: class_weight needs a model whose output is one vector per sample (N, classes)".to_string())),
        },
        (None, None) => Ok(None),
    }
}

/// Checks a `sample_weight` table: one finite, non-negative weight per sample.
pub(crate) fn check_sample_weight(w: &Table<'_>, samples: usize) -> Result<()> {
    if w.row_len() != 1 || w.shape.len() > 2 {
        return Err(Error::shape("sample_weight", format!("({samples},) (one weight per sample)"), crate::error::tuple_shape(&w.shape)));
    }
    if w.rows() != samples {
        return Err(Error::value("sample_weight", format!("{samples} weights, one per sample"), format!("{} weights", w.rows())));
    }
    if let Some((index, &value)) = w.data.iter().enumerate().find(|&(_, &v)| v < 0.0) {
        return Err(Error::value(format!("sample_weight[{index}]"), "a non-negative weight", value));
    }
    Ok(())
}

/// Keras's `class_weight_to_sample_weights`: the class of a sample is the argmax of its target
/// when it has more than one value, else the rounded value.
pub(crate) fn class_weights_to_sample_weights(class_weight: &[(usize, f32)], y: &Table<'_>, classes: usize) -> Result<Vec<f32>> {
    // A one-unit output is a binary classifier: classes 0 and 1.
    let classes = classes.max(2);
    let mut table = vec![1.0f32; classes];
    for (i, &(class, w)) in class_weight.iter().enumerate() {
        if class >= classes {
            return Err(Error::value(
                format!("class_weight entry {i}"),
                format!("a class index in [0, {classes}) for this model's output"),
                class,
            ));
        }
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::value(format!("class_weight for class {class}"), "a finite, non-negative weight", w));
        }
        if class_weight[..i].iter().any(|&(c, _)| c == class) {
            return Err(Error::value("class_weight", "each class at most once", format!("class {class} twice")));
        }
        table[class] = w;
    }
    if y.shape.len() > 2 {
        return Err(Error::shape(
            "y (with class_weight)",
            "one target per sample: (N,), (N, 1) or (N, classes)",
            crate::error::tuple_shape(&y.shape),
        ));
    }
    let n = y.row_len();
    let mut weights = Vec::with_capacity(y.rows());
    for (i, row) in y.data.chunks_exact(n).enumerate() {
        let class = if n > 1 {
            row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
        } else {
            let c = row[0].round();
            if !(0.0..classes as f32).contains(&c) {
                return Err(Error::value(format!("y[{i}] (with class_weight)"), format!("a class index in [0, {classes})"), row[0]));
            }
            c as usize
        };
        weights.push(table[class]);
    }
    Ok(weights)
}

/// Seconds since `t0`.
fn secs(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// `fit`: the training set (and validation data) held by the device for the run, then released
/// whatever happens.
pub(crate) fn fit(engine: &mut dyn Engine, x: &Table<'_>, y: &Table<'_>, classes: Option<usize>, args: FitArgs<'_>) -> Result<History> {
    let result = run(engine, x, y, classes, args);
    engine.release();
    result
}

/// What `fit` checked before training: the training weights (sample or class weights), the
/// validation set, and the samples trained on.
struct Plan<'a> {
    sample_weight: Option<Table<'a>>,
    class_weights: Option<Vec<f32>>,
    validation_data: Option<(Table<'a>, Table<'a>)>,
    validation_weight: Option<Table<'a>>,
    /// Training samples (the first `n_train` of `x`); with `validation_split` the rest validate.
    n_train: usize,
    split: bool,
}

/// Checks `fit`'s data and arguments.
fn plan<'a>(engine: &mut dyn Engine, x: &Table<'_>, y: &Table<'_>, classes: Option<usize>, args: &mut FitArgs<'a>) -> Result<Plan<'a>> {
    for (set, option) in [
        (args.steps_per_epoch.is_some(), "steps_per_epoch"),
        (args.validation_dataset.is_some(), "validation_dataset"),
        (args.validation_steps.is_some(), "validation_steps"),
    ] {
        if set {
            return Err(Error::Config(format!("fit: {option} applies to fit_dataset; fit on arrays trains on every sample each epoch")));
        }
    }
    engine.check_data(x, y)?;
    let sample_weight = args.sample_weight.take().transpose()?;
    let class_weights = class_weights(sample_weight.as_ref(), args.class_weight.as_deref(), y, classes)?;
    if args.batch_size == 0 {
        return Err(Error::value("batch_size", "at least 1", 0));
    }
    if !(0.0..1.0).contains(&args.validation_split) {
        return Err(Error::value("validation_split", "a fraction in [0, 1)", args.validation_split));
    }
    if args.verbose > 2 {
        return Err(Error::value("verbose", "0, 1 or 2", args.verbose));
    }
    let n = x.rows();
    let validation_data = args.validation_data.take().transpose()?;
    let validation_weight = args.validation_sample_weight.take().transpose()?;
    let (n_train, split) = match &validation_data {
        Some((vx, vy)) => {
            engine.check_data(vx, vy).map_err(|e| Error::Config(format!("validation data: {e}")))?;
            if let Some(w) = &validation_weight {
                check_sample_weight(w, vx.rows()).map_err(|e| Error::Config(format!("validation data: {e}")))?;
            }
            (n, false)
        }
        None if validation_weight.is_some() => {
            return Err(Error::Config("fit: validation_sample_weight needs validation_data".to_string()));
        }
        None if args.validation_split > 0.0 => {
            let split_at = ((n as f64) * (1.0 - args.validation_split as f64)).ceil() as usize;
            if split_at == 0 || split_at >= n {
                return Err(Error::value(
                    "validation_split",
                    format!("a fraction that leaves samples on both sides of the split of {n} samples"),
                    args.validation_split,
                ));
            }
            (split_at, true)
        }
        None => (n, false),
    };
    Ok(Plan { sample_weight, class_weights, validation_data, validation_weight, n_train, split })
}

fn run(engine: &mut dyn Engine, x: &Table<'_>, y: &Table<'_>, classes: Option<usize>, mut args: FitArgs<'_>) -> Result<History> {
    // In a data-parallel job every rank checks, and fails, together; and trains on the same data.
    let planned = plan(engine, x, y, classes, &mut args);
    let agreed = engine.agree(planned.as_ref().err());
    let plan = planned?;
    agreed?;
    let Plan { sample_weight, class_weights, validation_data, validation_weight, n_train, split } = plan;
    let weight_shape = [x.rows()];
    let class_table = class_weights.as_deref().map(|w| Table {
        data: std::borrow::Cow::Borrowed(w),
        shape: std::borrow::Cow::Borrowed(&weight_shape[..]),
        parts: Vec::new(),
    });
    let train_weights = class_table.as_ref().or(sample_weight.as_ref());
    let n = x.rows();
    let validation = match &validation_data {
        Some((vx, vy)) => Some((vx, vy, validation_weight.as_ref(), 0, vx.rows())),
        None if split => Some((x, y, sample_weight.as_ref(), n_train, n)),
        None => None,
    };
    let mut tables: Vec<&[f32]> = [Some(x), Some(y), train_weights].into_iter().flatten().flat_map(Table::slices).collect();
    if let Some((vx, vy, vw, ..)) = validation.filter(|_| !split) {
        tables.extend([Some(vx), Some(vy), vw].into_iter().flatten().flat_map(Table::slices));
    }
    engine.check_same("fit", &tables)?;
    // The training set stays on the device for the run; batches are read or gathered there.
    for t in [Some(x), Some(y), train_weights].into_iter().flatten() {
        engine.hold(t)?;
    }
    if let Some((vx, vy, vw, ..)) = validation {
        for t in [Some(vx), Some(vy), vw].into_iter().flatten() {
            engine.hold(t)?;
        }
    }
    let batch_size = args.batch_size;
    let mut source =
        Memory { x, y, w: train_weights, order: (0..n_train).collect(), n_train, batch_size, shuffle: args.shuffle, validation };
    epochs(engine, &mut args, &mut source)
}

/// Where `fit`'s batches come from: arrays held by the device for the run ([`Memory`]), or a
/// dataset read batch by batch (`stream::Stream`).
pub(crate) trait Source {
    /// Training batches per epoch.
    fn steps(&self) -> usize;
    /// Draws the next epoch's order from `rng` (when shuffling); with `apply` false only the
    /// draw happens (the epochs before a resumed run's first, replayed so that the order
    /// continues where it stopped).
    fn shuffle(&mut self, engine: &mut dyn Engine, rng: &mut Rng, apply: bool) -> Result<()>;
    /// Trains on the epoch's batch `step`.
    fn train(&mut self, engine: &mut dyn Engine, step: usize) -> Result<()>;
    /// Evaluates the validation data, if any, into `logs` (`val_*`).
    fn validate(&mut self, engine: &mut dyn Engine, batch_size: usize, logs: &mut Logs) -> Result<()>;
    /// After an epoch's batches.
    fn end_epoch(&mut self) -> Result<()> {
        Ok(())
    }
}

/// `fit`'s arrays: the training samples (the first `n_train` of `x`), in an order shuffled per
/// epoch, and the validation set (held-out rows `a..b` of its tables).
struct Memory<'t, 'd> {
    x: &'t Table<'d>,
    y: &'t Table<'d>,
    w: Option<&'t Table<'d>>,
    order: Vec<usize>,
    n_train: usize,
    batch_size: usize,
    shuffle: bool,
    validation: Option<(&'t Table<'d>, &'t Table<'d>, Option<&'t Table<'d>>, usize, usize)>,
}

impl Source for Memory<'_, '_> {
    fn steps(&self) -> usize {
        self.n_train.div_ceil(self.batch_size)
    }

    fn shuffle(&mut self, engine: &mut dyn Engine, rng: &mut Rng, apply: bool) -> Result<()> {
        if self.shuffle {
            rng.shuffle(&mut self.order);
            if apply {
                engine.set_order(&self.order)?;
            }
        }
        Ok(())
    }

    fn train(&mut self, engine: &mut dyn Engine, step: usize) -> Result<()> {
        let (a, b) = (step * self.batch_size, ((step + 1) * self.batch_size).min(self.n_train));
        let batch = if self.shuffle { Batch::Shuffled(a, b) } else { Batch::Range(a, b) };
        engine.train_batch(self.x, self.y, self.w, batch)
    }

    fn validate(&mut self, engine: &mut dyn Engine, batch_size: usize, logs: &mut Logs) -> Result<()> {
        if let Some((vx, vy, vw, a, b)) = self.validation {
            evaluate_range(engine, vx, vy, vw, a, b, batch_size, logs, true)?;
        }
        Ok(())
    }
}

/// The epochs of a `fit`: callbacks, progress bar, batches from `source`, validation, History.
pub(crate) fn epochs(engine: &mut dyn Engine, args: &mut FitArgs<'_>, source: &mut dyn Source) -> Result<History> {
    let steps = source.steps();
    let mut history = History::default();
    let mut logs = Logs::new();
    // Logs are read back each batch only for Keras's redrawn bar, which averages every batch's
    // values, and for callbacks that want them.
    let per_batch_logs = args.verbose == 1 || args.callbacks.iter().any(|cb| cb.wants_batch_logs());
    // Rank 0 of a data-parallel job draws the progress bar.
    let verbose = if engine.is_chief() { args.verbose } else { 0 };
    engine.take_stop_request();
    engine.take_initial_epoch();
    // Each callback's outcome is agreed across a job's ranks before the next callback runs, so
    // every rank makes the same collective calls (a callback may make its own).
    for cb in args.callbacks.iter_mut() {
        let begun = cb.on_train_begin(engine);
        together(engine, begun)?;
    }
    let initial_epoch = engine.take_initial_epoch().unwrap_or(args.initial_epoch);
    // Drawn after `on_train_begin`, where BackupAndRestore may restore a run's seed: then the
    // epochs already done are shuffled again so that the order continues where it stopped.
    let (shuffle_seed, restored) = engine.begin_shuffle();
    let mut rng = Rng::new(shuffle_seed);
    if restored {
        for _ in 0..initial_epoch {
            source.shuffle(engine, &mut rng, false)?;
        }
    }
    let mut stopped = false;
    for epoch in initial_epoch..args.epochs {
        let t0 = Instant::now();
        for cb in args.callbacks.iter_mut() {
            let begun = cb.on_epoch_begin(epoch, engine);
            together(engine, begun)?;
        }
        if verbose > 0 && args.epochs > 1 {
            println!("Epoch {}/{}", epoch + 1, args.epochs);
        }
        let mut bar = (verbose > 0).then(|| Progbar::new(std::io::stdout(), steps, verbose, 0.0));
        engine.reset_metrics()?;
        // Batch logs hold the epoch's running values only (not the last epoch's `val_*`).
        logs.clear();
        source.shuffle(engine, &mut rng, true)?;
        for step in 0..steps {
            source.train(engine, step)?;
            if per_batch_logs {
                engine.write_logs(&mut logs, false)?;
                for cb in args.callbacks.iter_mut() {
                    let ended = cb.on_train_batch_end(step, &logs, engine);
                    together(engine, ended)?;
                }
                // (The same condition on every rank: rank 0 draws, the others agree.)
                if args.verbose == 1 {
                    let drawn = match bar.as_mut().filter(|_| verbose == 1) {
                        Some(bar) => bar.update(step + 1, &logs.iter().collect::<Vec<_>>(), false, secs(t0)).map_err(stdout_error),
                        None => Ok(()),
                    };
                    together(engine, drawn)?;
                }
            }
            if engine.take_stop_request() {
                stopped = true;
                break;
            }
        }
        source.end_epoch()?;
        logs.clear();
        engine.write_logs(&mut logs, false)?;
        source.validate(engine, args.batch_size, &mut logs)?;
        // Keras runs the user's callbacks before its progress bar and History, which then show
        // what the callbacks added (`learning_rate`).
        for cb in args.callbacks.iter_mut() {
            let ended = cb.on_epoch_end(epoch, &mut logs, engine);
            together(engine, ended)?;
        }
        if args.verbose > 0 {
            let drawn = match bar.as_mut() {
                Some(bar) => bar.update(steps, &logs.iter().collect::<Vec<_>>(), true, secs(t0)).map_err(stdout_error),
                None => Ok(()),
            };
            together(engine, drawn)?;
        }
        history.push(epoch, &logs);
        if stopped || engine.take_stop_request() {
            break;
        }
    }
    for cb in args.callbacks.iter_mut() {
        let ended = cb.on_train_end(&logs, engine);
        together(engine, ended)?;
    }
    Ok(history)
}

/// `local`, after every rank of a data-parallel job learnt whether any rank failed (so that none
/// waits for a rank that returned): this rank's own error, or another's.
pub(crate) fn together(engine: &mut dyn Engine, local: Result<()>) -> Result<()> {
    let agreed = engine.agree(local.as_ref().err());
    local?;
    agreed
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::Io { path: "<stdout>".to_string(), source: e }
}

/// Loss and metrics over all of `x`, `y` in inference mode, the loss weighted by `w`.
pub(crate) fn evaluate(
    engine: &mut dyn Engine,
    x: &Table<'_>,
    y: &Table<'_>,
    w: Option<&Table<'_>>,
    batch_size: usize,
    logs: &mut Logs,
    validation: bool,
) -> Result<()> {
    evaluate_range(engine, x, y, w, 0, x.rows(), batch_size, logs, validation)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate_range(
    engine: &mut dyn Engine,
    x: &Table<'_>,
    y: &Table<'_>,
    w: Option<&Table<'_>>,
    start: usize,
    end: usize,
    batch_size: usize,
    logs: &mut Logs,
    validation: bool,
) -> Result<()> {
    engine.reset_metrics()?;
    let mut a = start;
    while a < end {
        let b = (a + batch_size).min(end);
        engine.test_batch(x, y, w, Batch::Range(a, b))?;
        a = b;
    }
    engine.write_logs(logs, validation)
}
