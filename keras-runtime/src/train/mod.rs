//! The Keras workflow: `compile`, then `fit`, `evaluate`, `predict` and the `*_on_batch` calls.
//!
//! `compile` turns a model into a [`Compiled`] model: only a compiled model has `fit`, so
//! training an uncompiled model is a compile error. The training loop itself is not generic
//! (it drives the model through the object-safe `Engine`), so each model adds only its thin
//! forward/backward code to a user's build.

mod adapt;
mod callbacks;
pub(crate) mod data;
mod engine;
mod fit;
mod logs;
pub mod progress;
mod stream;

pub use callbacks::{Callback, Control};
pub use data::{AsInput, Element, Inputs};
pub use fit::FitArgs;
pub use logs::{History, Logs};

use crate::backend::{Backend, Device, LossBatch, MetricBatch, RandomStream, Recording};
use crate::datasets::Dataset;
use crate::distribution::{DataParallel, Shard};
use crate::losses::{IntoLosses, LossSpec};
use crate::metrics::{IntoMetric, ResolvedMetric};
use crate::model::{Arena, Model, Predictions};
use crate::optimizers::{IntoOptimizer, Optimizer};
use crate::summary::Summary;
use crate::{Error, Result};
use data::{Table, check_input, check_targets, input_table, join_targets, table};
use engine::{Batch, Engine};
use ndarray::{Array, ArrayBase, ArrayD, Data, Dimension, IxDyn};
use std::borrow::Cow;
use std::path::Path;

/// A model with an optimizer, a loss and metrics: what `fit` and `evaluate` need.
pub struct Compiled<M: Model> {
    model: M,
    optimizer: Box<dyn Optimizer<M::Backend>>,
    /// Each output's loss, weight, slots and accumulators (one for a model with one output).
    heads: Vec<Head>,
    /// Floats per sample of the targets (every output's, side by side in a staged batch).
    target_len: usize,
    /// Each metric with what it computes, its logged name and its accumulators' offset in `stats`.
    metrics: Vec<CompiledMetric>,
    /// Loss and metric accumulators on the device: the loss's `[total, count]` (for several
    /// outputs, the penalties' total, then each output's `[total, count]`), then each metric's.
    stats: <M::Backend as Device>::Buffer,
    host_stats: Vec<f32>,
    staging: Staging<M::Backend>,
    /// Tables held on the device during a `fit`.
    held: Held<M::Backend>,
    logs: Logs,
    stop: bool,
    /// The epoch a callback asked `fit` to start at (set by [`Control::set_initial_epoch`]).
    resume_epoch: Option<usize>,
    /// The seed the last `fit` shuffled with, saved in the training state.
    shuffle_seed: Option<u64>,
    /// A shuffle seed restored by `load_state`, for the next `fit`.
    restored_shuffle_seed: Option<u64>,
    /// Training steps recorded for replay on devices that record work.
    recorder: StepRecorder,
    /// The data-parallel job this model trains in ([`Compiled::distribute`]).
    parallel: Option<DataParallel>,
    /// The gradient arena on the host for the job's all-reduce, kept between steps.
    reduced: Vec<f32>,
}

/// A metric of a compiled model.
struct CompiledMetric {
    kind: ResolvedMetric,
    name: Cow<'static, str>,
    /// Where its accumulators start in the stats buffer.
    offset: usize,
    /// The output it is computed on (an index into `Compiled::heads`).
    head: usize,
}

/// One output of a compiled model: its loss and where its data lie.
struct Head {
    /// The output's name (empty for a model with one output).
    name: &'static str,
    loss: LossSpec,
    /// Its weight in the total loss (Keras's `loss_weights`).
    weight: f32,
    /// Where its loss's `[total, count]` lie in the stats buffer.
    stats: usize,
    /// The slots of its output and of its loss gradient.
    slot: usize,
    grad_slot: usize,
    /// Floats per sample of the output, and of its last axis.
    len: usize,
    cols: usize,
    /// The output's per-sample shape.
    shape: &'static [usize],
    /// Floats per sample of its targets, and where they start in a staged batch's rows (in
    /// floats per sample: the batch's targets of this output start at `rows * target_offset`).
    target_len: usize,
    target_offset: usize,
}

/// `compile` and the calls that work with or without compiling: `predict`, `summary`, weights.
/// Implemented by every generated model and by [`Compiled`]; in `keras::prelude`.
pub trait Network: Sized {
    /// The generated model type.
    type Model: Model;

    /// The model.
    fn model(&self) -> &Self::Model;
    /// The model, mutably.
    fn model_mut(&mut self) -> &mut Self::Model;

    /// Predictions for every sample of `x`, in batches of 32 (Keras's default), inference mode:
    /// an array for a model with one output, one array per output (in the model's order, as
    /// Keras's list) for a model with several ([`Model::Predictions`]). Takes `&self`: threads
    /// sharing a model (`Arc<Model>`) predict at once, each in a workspace of its own.
    fn predict<X: Inputs + ?Sized>(&self, x: &X) -> Result<<Self::Model as Model>::Predictions> {
        Predictions::from_joined(self.predict_joined(x)?, <Self::Model as Model>::OUTPUTS)
    }

    /// [`Network::predict`] with the outputs side by side, `[a | b]` per sample (`(N,
    /// OUTPUT_SIZE)` for a model with several outputs).
    fn predict_joined<X: Inputs + ?Sized>(&self, x: &X) -> Result<Array<f32, <Self::Model as Model>::OutputDim>> {
        predict_batched(self.model(), x, 32)
    }

    /// Predictions as one array per output, in the model's order, whatever the model's number
    /// of outputs (one array for a model with one): for code generic over models.
    fn predict_outputs<X: Inputs + ?Sized>(&self, x: &X) -> Result<Vec<ArrayD<f32>>> {
        Predictions::from_joined(self.predict_joined(x)?, <Self::Model as Model>::OUTPUTS)
    }

    /// Predictions for `x` computed as a single batch (as [`Network::predict`] returns them).
    fn predict_on_batch<X: Inputs + ?Sized>(&self, x: &X) -> Result<<Self::Model as Model>::Predictions> {
        let x = input_table(x, <Self::Model as Model>::INPUTS, "x")?;
        let rows = x.rows();
        Predictions::from_joined(predict_table(self.model(), &x, rows)?, <Self::Model as Model>::OUTPUTS)
    }

    /// Keras's `summary()` table; `println!("{}", model.summary())`.
    fn summary(&self) -> Summary {
        Summary::of::<Self::Model>()
    }

    /// The number of parameters, trainable and not.
    fn count_params(&self) -> usize {
        <Self::Model as Model>::PARAMS
    }

    /// The weights as arrays, in Keras order and layout.
    fn get_weights(&self) -> Result<Vec<ArrayD<f32>>> {
        self.model().core().get_weights(<Self::Model as Model>::WEIGHTS)
    }

    /// Replaces the weights; every shape is checked first, and nothing is written on error.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        self.model_mut().core_mut().set_weights(<Self::Model as Model>::WEIGHTS, weights)
    }

    /// The model used as layer `name` (`use Encoder;` in the macro) as a model of its own, with
    /// the weights it has here: Keras's `model.get_layer("encoder")`, as a copy (the trained
    /// encoder of a Siamese network, to run or save on its own). `S` is its type; an error says
    /// when `name` is no model used as a layer, or one whose weights are not `S`'s.
    fn get_submodel<S: Model<Backend = <Self::Model as Model>::Backend>>(&self, name: &str) -> Result<S> {
        let picked = submodel_weights::<Self::Model, S>(name)?;
        let mut all = self.get_weights()?;
        let mut model = S::create(self.model().core().device())?;
        let mine: Vec<ArrayD<f32>> = picked.iter().map(|&i| std::mem::take(&mut all[i])).collect();
        model.core_mut().set_weights(S::WEIGHTS, &mine)?;
        Ok(model)
    }

    /// Gives the model used as layer `name` the weights of `model`, a model of its type (a
    /// pretrained encoder put into a bigger model); the other weights stay.
    fn set_submodel<S: Model>(&mut self, name: &str, model: &S) -> Result<()> {
        let picked = submodel_weights::<Self::Model, S>(name)?;
        let mut all = self.get_weights()?;
        for (&i, w) in picked.iter().zip(model.core().get_weights(S::WEIGHTS)?) {
            all[i] = w;
        }
        self.set_weights(&all)
    }

    /// Sets the statistics of the `Normalization` layer named `layer` from `data`, a batch of
    /// that layer's inputs (samples along the first axis), as Keras's
    /// `model.get_layer(layer).adapt(data)` does: the mean and the (biased) variance of the data
    /// along every axis but the layer's `axis`, stored in its `mean` and `variance` weights, so
    /// `get_weights`, `save_weights` and `save_keras` keep them (`count` stays 0, as in Keras 3).
    /// The data's rank must be the layer's input's, and its kept axes their sizes; an unknown
    /// name, a layer that is no `Normalization` or was given its statistics, an empty or
    /// non-finite batch are errors.
    ///
    /// ```ignore
    /// sequential! { struct Net = Input(2) => Normalization() => Dense(1); }
    ///
    /// let mut model = Net::new(&Cpu::default());
    /// model.adapt("normalization", &array![[1.0f32, 10.0], [3.0, 30.0]])?;
    /// let w = model.get_weights()?; // mean [2, 20], variance [1, 100], count 0, then the Dense's
    /// ```
    fn adapt<S: Data<Elem = f32>, D: Dimension>(&mut self, layer: &str, data: &ArrayBase<S, D>) -> Result<()> {
        adapt::adapt(self.model_mut(), layer, [Ok(data.view())], false)
    }

    /// [`Network::adapt`] over a data set given as batches (an iterator of arrays, read as they
    /// come: data that does not fit in memory): each batch's statistics are combined with those
    /// of the batches before it as Keras combines a data set's, so one batch gives what `adapt`
    /// gives. Empty batches are skipped.
    fn adapt_batches<S: Data<Elem = f32>, D: Dimension>(
        &mut self,
        layer: &str,
        batches: impl IntoIterator<Item = ArrayBase<S, D>>,
    ) -> Result<()> {
        adapt::adapt(self.model_mut(), layer, batches.into_iter().map(Ok), true)
    }

    /// [`Network::adapt_batches`] over the batches of a [`Dataset`] (Keras's `adapt` of a
    /// `PyDataset`): every batch in order, its inputs `x` the layer's data (one array; targets
    /// are ignored). A batch the dataset cannot give is the error returned.
    fn adapt_dataset<Ds: Dataset + ?Sized>(&mut self, layer: &str, data: &mut Ds) -> Result<()> {
        let batches = (0..data.len()).map(|index| {
            let mut batch = data.get(index)?;
            match batch.x.len() {
                1 => Ok(batch.x.remove(0)),
                n => Err(Error::value(
                    format!("adapt_dataset: batch {index}'s inputs"),
                    "one array, the layer's data",
                    format!("{n} arrays"),
                )),
            }
        });
        adapt::adapt(self.model_mut(), layer, batches, true)
    }

    /// Saves the weights (trainable and not) to a safetensors file, one tensor per weight named
    /// by its Keras path (`dense/kernel`); a name ending in `.weights.h5` (or `.h5`) writes
    /// Keras 3's weights file instead, which Python's `model.load_weights` reads, and one ending
    /// in `.keras` the whole `.keras` archive ([`Network::save_keras`]). The file is replaced
    /// atomically: a crash or an error leaves the previous file intact (see
    /// [`crate::io::write_atomic`]: missing directories are created, an existing file keeps its
    /// permissions, a read-only one is not replaced).
    ///
    /// ```ignore
    /// model.save_weights("runs/mlp.safetensors")?;
    /// let mut copy = Mlp::new(&Cpu::default());
    /// copy.load_weights("runs/mlp.safetensors")?;
    /// ```
    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::weights::save_weights(self.model(), path.as_ref())
    }

    /// Loads weights saved by [`Network::save_weights`], or by Python Keras (a `.keras`,
    /// `.weights.h5` or `.h5` file, told by its contents, as [`Network::load_keras`] reads it).
    /// Every tensor's name, shape and dtype is checked first: a file for another architecture is
    /// an error naming what differs, and nothing is written to the model unless everything fits.
    ///
    /// ```ignore
    /// let mut model = Mlp::new(&Cpu)?;
    /// model.load_weights("mlp.safetensors")?;
    /// ```
    fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::weights::load_weights(self.model_mut(), path.as_ref())
    }

    /// Loads the weights of a model saved by Python Keras: a `.keras` archive, a legacy `.h5`
    /// model, a `.weights.h5` file, or a legacy weights-only `.h5` file such as Keras's
    /// published application weights. The file's architecture must be this model's (an `Err`
    /// names the first difference); every weight is checked before any is written.
    ///
    /// A legacy weights-only file has no architecture: it is read by layer name, as Keras's
    /// `load_weights(path, by_name=True)`. Every layer of this model with weights must be in the
    /// file under its name, with as many weights of the same shapes; the file's other layers are
    /// ignored (a headless model loads weights saved with the classifier on top). See
    /// [`crate::io::keras_file::weights_from_bytes`].
    fn load_keras<P: AsRef<std::path::Path>>(&mut self, path: P) -> Result<()> {
        let weights = crate::io::keras_file::read_weights::<Self::Model>(path.as_ref())?;
        self.set_weights(&weights)
    }

    /// Saves the model as a Keras 3 `.keras` archive, which Python Keras opens with
    /// `keras.models.load_model(path)` (architecture and weights; no optimizer state).
    fn save_keras<P: AsRef<std::path::Path>>(&self, path: P) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::io::keras_file::keras_archive::<Self::Model>(&self.get_weights()?)
            .map_err(|message| Error::Format { path: path.display().to_string(), message })?;
        crate::io::write_atomic(path, |w| w.write_all(&bytes).map_err(|source| Error::Io { path: path.display().to_string(), source }))
    }
}

impl<M: Model> Network for M {
    type Model = M;
    fn model(&self) -> &M {
        self
    }
    fn model_mut(&mut self) -> &mut M {
        self
    }
}

impl<M: Model> Network for Compiled<M> {
    type Model = M;
    fn model(&self) -> &M {
        &self.model
    }
    fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Predictions for every sample of `x`, in batches of 32; in a data-parallel job each rank
    /// predicts its share of the samples and every rank gets all of them.
    fn predict_joined<X: Inputs + ?Sized>(&self, x: &X) -> Result<Array<f32, M::OutputDim>> {
        let Some(parallel) = self.parallel.clone() else { return predict_batched(&self.model, x, 32) };
        // Every step is taken by every rank: checks agreed, then the same data, then the rows.
        let x =
            parallel.agree(input_table(x, M::INPUTS, "x").and_then(|x| check_input(&x, M::INPUT_SHAPE, M::INPUT_INDICES).map(|()| x)))?;
        parallel.check_same("predict", &x.slices())?;
        let n = x.rows();
        let mine = parallel.slice(n);
        let local = parallel.agree(predict_rows(&self.model, &x, mine, 32))?;
        let counts: Vec<usize> = (0..parallel.size())
            .map(|r| {
                let (a, b) = (r * n / parallel.size(), (r + 1) * n / parallel.size());
                (b - a) * M::OUTPUT_SIZE
            })
            .collect();
        let mut out = vec![0.0f32; n * M::OUTPUT_SIZE];
        parallel.collective().all_gather(&local, &counts, &mut out);
        output_array::<M>(n, out)
    }
}

/// `compile`, for every generated model (in `keras::prelude`).
pub trait Compile: Model {
    /// Configures the model for training: `model.compile(Adam::default(), "mse", ["accuracy"])`.
    /// Returns a model that can `fit`; errors name a bad optimizer setting, an unknown name, or
    /// a metric that cannot apply to this model.
    ///
    /// A model with several outputs takes one loss for all of them, or one per output, in order
    /// or by name (see [`IntoLosses`]), and each metric for one output
    /// ([`crate::metrics::on`]); [`Compiled::loss_weights`] weighs the outputs' losses. Its logs
    /// are Keras's: `loss` (the weighted total), `digit_loss`, `digit_accuracy`, ...
    ///
    /// ```ignore
    /// let model = Net::new(&Cpu::default())
    ///     .compile(Adam::default(), [("digit", "sparse_categorical_crossentropy"), ("parity", "binary_crossentropy")],
    ///              [metrics::on("digit", "accuracy")])?
    ///     .loss_weights([1.0, 0.5])?;
    /// ```
    fn compile<O: IntoOptimizer, L: IntoLosses, I>(self, optimizer: O, loss: L, metrics: I) -> Result<Compiled<Self>>
    where
        I: IntoIterator,
        I::Item: IntoMetric,
    {
        let optimizer = optimizer.into_optimizer::<Self::Backend>()?;
        let names: Vec<&str> = Self::OUTPUTS.iter().map(|o| o.name).collect();
        let losses = loss.into_losses()?.per_output(&names)?;
        for loss in &losses {
            if let Some(config) = loss.keras() {
                config.validate()?;
            }
        }
        // One output's accumulators start the stats buffer; several outputs' follow the
        // penalties' total.
        let several = !Self::OUTPUTS.is_empty();
        let mut slots = if several { 2 } else { 0 };
        let mut target_offset = 0;
        let mut heads = Vec::with_capacity(losses.len());
        for (k, loss) in losses.into_iter().enumerate() {
            let (name, shape, slot, grad_slot) = match Self::OUTPUTS.get(k) {
                Some(o) => (o.name, o.shape, o.slot, o.grad_slot),
                None => ("", Self::OUTPUT_SHAPE, Self::OUTPUT_SLOT, Self::OUTPUT_GRAD_SLOT),
            };
            let len: usize = shape.iter().product();
            let cols = *shape.last().unwrap_or(&1);
            if loss.sparse_targets() && cols < 2 {
                let output = if several { format!("output `{name}`") } else { "the model's output".to_string() };
                return Err(Error::Config(format!(
                    "{loss} needs an output with at least two classes, but {output} is {}",
                    crate::error::batch_shape(shape)
                )));
            }
            let target_len = if loss.sparse_targets() { len / cols } else { len };
            heads.push(Head { name, loss, weight: 1.0, stats: slots, slot, grad_slot, len, cols, shape, target_len, target_offset });
            target_offset += target_len;
            slots += 2;
        }
        let mut resolved: Vec<CompiledMetric> = Vec::new();
        for m in metrics {
            let m = m.into_metric()?;
            let head = match (m.output(), several) {
                (None, false) => 0,
                (Some(o), false) => {
                    return Err(Error::Config(format!("metric `{}` is given for output `{o}`, but the model has one output", m.name())));
                }
                (None, true) => {
                    return Err(Error::Config(format!(
                        "metric `{}`: the model has {} outputs ({}); say which output it is for, as in `metrics::on(\"{}\", \"{}\")`",
                        m.name(),
                        names.len(),
                        names.join(", "),
                        names[0],
                        m.name()
                    )));
                }
                (Some(o), true) => names.iter().position(|n| *n == o).ok_or_else(|| {
                    Error::Config(format!(
                        "metric `{}` is given for output `{o}`, which the model does not have; its outputs are {}",
                        m.name(),
                        names.join(", ")
                    ))
                })?,
            };
            let h = &heads[head];
            let kind = m.resolve(&h.loss, h.cols)?;
            let key = m.key();
            if key == "loss" || key.starts_with("val_") {
                return Err(Error::Config(format!(
                    "metric name `{key}`: `loss` and names starting `val_` are the logs' own; choose another"
                )));
            }
            let name: Cow<'static, str> = if several { Cow::Owned(format!("{}_{key}", h.name)) } else { key };
            if resolved.iter().any(|c| c.name == name) {
                return Err(Error::Config(format!("metric `{name}` is listed twice")));
            }
            if several && names.iter().any(|o| name == format!("{o}_loss")) {
                return Err(Error::Config(format!(
                    "metric name `{name}` is the logs' own (the loss of output `{}`): choose another",
                    h.name
                )));
            }
            let len = kind.stats_len(h.cols);
            resolved.push(CompiledMetric { kind, name, offset: slots, head });
            slots += len;
        }
        let target_len = target_offset;
        let device = self.core().device().clone();
        Ok(Compiled {
            stats: device.alloc(slots)?,
            host_stats: vec![0.0; slots],
            staging: Staging { x: device.alloc(0)?, y: device.alloc(0)?, w: device.alloc(0)? },
            held: Held { tables: Vec::new(), order: device.alloc_indices(0)?, order_len: 0 },
            model: self,
            optimizer,
            heads,
            target_len,
            metrics: resolved,
            logs: Logs::new(),
            stop: false,
            resume_epoch: None,
            shuffle_seed: None,
            restored_shuffle_seed: None,
            recorder: StepRecorder { enabled: true, broken: 0, clean: Vec::new(), recordings: Vec::new() },
            parallel: None,
            reduced: Vec::new(),
        })
    }
}

impl<M: Model> Compile for M {}

impl<M: Model> Compiled<M> {
    /// The loss being minimised: a Keras loss with its options, or a custom one (the first
    /// output's, for a model with several; see [`Compiled::losses`]).
    pub fn loss(&self) -> &LossSpec {
        &self.heads[0].loss
    }

    /// Each output's loss, in the model's order (one for a model with one output).
    pub fn losses(&self) -> Vec<&LossSpec> {
        self.heads.iter().map(|h| &h.loss).collect()
    }

    /// Weighs the outputs' losses in the total loss that training minimises and `loss` logs
    /// (Keras's `loss_weights`): one finite, non-negative weight per output, in the model's
    /// order. The outputs' own `*_loss` logs stay unweighted, as in Keras.
    pub fn loss_weights<W: AsRef<[f32]>>(mut self, weights: W) -> Result<Self> {
        let weights = weights.as_ref();
        if M::OUTPUTS.is_empty() {
            return Err(Error::Config("loss_weights weigh the outputs of a model with several; this one has one output".to_string()));
        }
        if weights.len() != self.heads.len() {
            return Err(Error::Config(format!(
                "{} loss weights given for a model with {} output{}: give one per output",
                weights.len(),
                self.heads.len(),
                if self.heads.len() == 1 { "" } else { "s" }
            )));
        }
        if let Some((k, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return Err(Error::value(format!("loss_weights[{k}]"), "a finite weight of 0 or more", w));
        }
        for (h, &w) in self.heads.iter_mut().zip(weights) {
            h.weight = w;
        }
        // A recorded step holds the weights it scaled the gradients by: record again.
        self.recorder.recordings.clear();
        self.recorder.clean.clear();
        Ok(self)
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer<M::Backend> {
        &*self.optimizer
    }

    /// The optimizer, mutably (to change its learning rate).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer<M::Backend> {
        &mut *self.optimizer
    }

    /// Whether a callback asked training to stop (Keras's `model.stop_training`), for a user's
    /// own loop; `fit` clears the request when it starts and when it stops.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    /// Saves the training state to one safetensors file, atomically: the weights (named by Keras
    /// path), the optimizer's variables (named `optimizer/iterations`, `optimizer/momentum`, ...),
    /// and metadata: `epoch` (the number of epochs completed, to pass back as `initial_epoch`),
    /// the optimizer's name, the keras-rs version, the model's dropout seed and step, and the seed
    /// the last `fit` shuffled with. A run resumed from it on the same data (with the same batch
    /// size) ends with the same weights as an uninterrupted one, shuffled or not.
    ///
    /// ```ignore
    /// model.fit(&x, &y, FitArgs::default().epochs(5))?;
    /// model.save_state("run.safetensors", 5)?;
    /// // later, in a fresh process:
    /// let done = model.load_state("run.safetensors")?;
    /// model.fit(&x, &y, FitArgs::default().epochs(10).initial_epoch(done))?;
    /// ```
    pub fn save_state(&self, path: impl AsRef<Path>, epoch: usize) -> Result<()> {
        use crate::io::weights::{Named, base_metadata, named, write};
        let weights = Network::get_weights(self)?;
        let owned = named(M::WEIGHTS, &weights);
        let dev = self.model.core().device().clone();
        let variables = self.optimizer.variables(&dev)?;
        let mut tensors: Vec<Named<'_>> = owned.iter().map(|(n, s, d)| Named { name: n.clone(), shape: s.clone(), data: d }).collect();
        tensors.extend(variables.iter().map(|(n, v)| Named { name: format!("optimizer/{n}"), shape: vec![v.len()], data: v }));
        let RandomStream { seed, step } = self.model.core().random_stream()?;
        let mut meta = base_metadata::<M>("training state");
        meta.insert("epoch".to_string(), epoch.to_string());
        meta.insert("optimizer".to_string(), self.optimizer.name().to_string());
        meta.insert("seed".to_string(), seed.to_string());
        meta.insert("step".to_string(), step.to_string());
        if let Some(seed) = self.shuffle_seed {
            meta.insert("shuffle_seed".to_string(), seed.to_string());
        }
        write(path.as_ref(), &tensors, meta)
    }

    /// Restores a state saved by [`Compiled::save_state`] and returns its epoch (the number of
    /// epochs completed). The optimizer must be of the same kind, and every tensor must fit
    /// the model (as [`Network::load_weights`] checks); nothing is changed unless all of it does.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<usize> {
        use crate::io::weights::{Tensor, match_weights, read};
        let path = path.as_ref();
        let format_err = |message: String| Error::Format { path: path.display().to_string(), message };
        let (tensors, meta) = read(path)?;
        let field = |key: &str| meta.get(key).ok_or_else(|| format_err(format!("not a training state: no `{key}` in the metadata")));
        let number = |key: &str| -> Result<u64> {
            let v = field(key)?;
            v.parse().map_err(|_| format_err(format!("metadata `{key}`: expected a whole number, found `{v}`")))
        };
        let epoch = number("epoch")? as usize;
        let (seed, step) = (number("seed")?, number("step")?);
        let shuffle_seed = if meta.contains_key("shuffle_seed") { Some(number("shuffle_seed")?) } else { None };
        let optimizer = field("optimizer")?;
        if optimizer != self.optimizer.name() {
            return Err(format_err(format!(
                "the state was saved with the {optimizer} optimizer, but this model is compiled with {}",
                self.optimizer.name()
            )));
        }
        let (opt, weights): (Vec<&Tensor>, Vec<&Tensor>) = tensors.iter().partition(|t| t.name.starts_with("optimizer/"));
        let arrays = match_weights(path, M::WEIGHTS, &weights)?;
        let mut variables = Vec::with_capacity(opt.len());
        for t in opt {
            if t.dtype != safetensors::Dtype::F32 || t.shape.len() != 1 {
                return Err(format_err(format!(
                    "tensor `{}`: expected a 1-D F32 tensor, found {:?} of shape {}",
                    t.name,
                    t.dtype,
                    crate::error::tuple_shape(&t.shape)
                )));
            }
            let name = &t.name["optimizer/".len()..];
            // Scalars aside, an optimizer's state spans the whole parameter arena.
            if !matches!(name, "iterations" | "u_product") && t.shape[0] != M::TRAINABLE_PARAMS {
                return Err(format_err(format!(
                    "tensor `{}`: expected shape ({},) (one value per trainable parameter), found ({},)",
                    t.name,
                    M::TRAINABLE_PARAMS,
                    t.shape[0]
                )));
            }
            variables.push((name.to_string(), t.data.clone()));
        }
        let dev = self.model.core().device().clone();
        self.optimizer.set_variables(&dev, &variables).map_err(|e| format_err(e.to_string()))?;
        Network::set_weights(self, &arrays)?;
        self.model.core_mut().set_random_stream(RandomStream { seed, step })?;
        self.restored_shuffle_seed = shuffle_seed;
        Ok(epoch)
    }

    /// Trains in the data-parallel job `parallel` from now on (see [`crate::distribution`]):
    /// rank 0's weights, non-trainable state and random stream are broadcast to every rank, so
    /// every rank starts from the same model. Every rank must call this, and then make the same
    /// calls (`fit`, `evaluate`, ...) with the same arrays.
    ///
    /// Not yet supported: activity regularizers (an `Err` here).
    pub fn distribute(mut self, parallel: &DataParallel) -> Result<Self> {
        let activity = parallel.agree(if M::ACTIVITY.is_empty() {
            Ok(())
        } else {
            Err(Error::Config("distribute: a model with activity regularizers cannot train data-parallel yet".to_string()))
        });
        activity?;
        let core = self.model.core_mut();
        let dev = core.device().clone();
        for (buffer, len) in [(0, M::TRAINABLE_PARAMS), (1, M::NON_TRAINABLE_PARAMS)] {
            let mut host = vec![0.0f32; len];
            let arena = if buffer == 0 { core.params() } else { core.state() };
            dev.download(<M::Backend as Device>::view(arena, 0..len), &mut host)?;
            parallel.broadcast_f32(&mut host);
            let arena = if buffer == 0 { core.params_mut() } else { core.state_mut() };
            dev.upload(&host, <M::Backend as Device>::view_mut(arena, 0..len))?;
        }
        let stream = core.random_stream()?;
        let stream = RandomStream { seed: parallel.broadcast_u64(stream.seed), step: parallel.broadcast_u64(stream.step) };
        core.set_random_stream(stream)?;
        // A step's all-reduce runs on the host between its backward pass and its update, which
        // a recorded device graph cannot hold.
        self.recorder.enabled = false;
        self.parallel = Some(parallel.clone());
        Ok(self)
    }

    /// The data-parallel job this model trains in, if any.
    pub fn distribution(&self) -> Option<&DataParallel> {
        self.parallel.as_ref()
    }

    /// The model without its training configuration.
    pub fn into_inner(self) -> M {
        self.model
    }

    /// Trains the model on `x` and `y`: see [`FitArgs`] for epochs, batch size, validation and
    /// callbacks. Returns the per-epoch history of loss and metrics.
    pub fn fit<X, Y>(&mut self, x: &X, y: &Y, args: FitArgs<'_>) -> Result<History>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        let tables = input_table(x, M::INPUTS, "x").and_then(|x| Ok((x, target_table::<M, _>(y, "y")?)));
        let agreed = Engine::agree(self, tables.as_ref().err());
        let (x, y) = tables?;
        agreed?;
        let classes = (M::OUTPUT_SHAPE.len() == 1).then(|| M::OUTPUT_SHAPE[0]);
        if !M::OUTPUTS.is_empty() && args.class_weight_arg().is_some() {
            // As Keras: class weights are looked up from one output's classes.
            return Err(Error::Config(format!("fit: class_weight applies to a model with one output; this one has {}", M::OUTPUTS.len())));
        }
        let mut args = args;
        args.join_validation::<M>();
        fit::fit(self, &x, &y, classes, args)
    }

    /// Trains the model on a [`Dataset`] read batch by batch (Keras's `fit` given a
    /// `PyDataset`): a background thread reads `FitArgs::prefetch` batches ahead (2 by default),
    /// so memory holds a few batches, never the data set. `shuffle` shuffles the order of the
    /// batches each pass; `steps_per_epoch`, `validation_dataset` and `validation_steps` apply,
    /// as do callbacks, History and the progress bar; `batch_size` does not (the dataset makes
    /// the batches), and the array-only options (`validation_split`, `sample_weight`,
    /// `validation_data`) are refused. With the same batches in the same order it trains
    /// exactly as `fit` on arrays. In a data-parallel job ([`Compiled::distribute`]) every rank
    /// reads the same batches and trains on its share of each, as with arrays.
    pub fn fit_dataset<D: Dataset + ?Sized>(&mut self, data: &mut D, args: FitArgs<'_>) -> Result<History> {
        several_outputs::<M>("fit_dataset")?;
        let classes = (M::OUTPUT_SHAPE.len() == 1).then(|| M::OUTPUT_SHAPE[0]);
        stream::fit_dataset(self, &mut DynDataset(data), M::INPUTS, classes, args)
    }

    /// The loss and metrics over every batch of a [`Dataset`], inference mode.
    pub fn evaluate_dataset<D: Dataset + ?Sized>(&mut self, data: &mut D) -> Result<Logs> {
        several_outputs::<M>("evaluate_dataset")?;
        let mut logs = Logs::new();
        let steps = data.len();
        if steps == 0 {
            return Err(Error::Empty { what: "the dataset (len() is 0)".to_string() });
        }
        stream::evaluate_stream(self, M::INPUTS, &mut DynDataset(data), steps, &mut logs, false)?;
        Ok(logs)
    }

    /// Predictions for every batch of a [`Dataset`] (its targets, if any, are ignored), in the
    /// dataset's order.
    pub fn predict_dataset<D: Dataset + ?Sized>(&self, data: &mut D) -> Result<M::Predictions> {
        let mut out = Vec::new();
        let mut rows = 0;
        for index in 0..data.len() {
            let batch = data.get(index)?;
            stream::with_tables(&batch, M::INPUTS, false, None, |x, _, _| {
                check_input(x, M::INPUT_SHAPE, M::INPUT_INDICES)?;
                out.extend(predict_rows(&self.model, x, 0..x.rows(), x.rows().max(1))?);
                rows += x.rows();
                Ok(())
            })?;
        }
        data.on_epoch_end();
        if rows == 0 {
            return Err(Error::Empty { what: "the dataset (no samples)".to_string() });
        }
        Predictions::from_joined(output_array::<M>(rows, out)?, M::OUTPUTS)
    }

    /// The loss and metrics on `x` and `y`, in batches of 32, inference mode.
    pub fn evaluate<X, Y>(&mut self, x: &X, y: &Y) -> Result<Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        let (x, y, _) = self.checked(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), None)?;
        let mut logs = Logs::new();
        fit::evaluate(self, &x, &y, None, 32, &mut logs, false)?;
        Ok(logs)
    }

    /// [`Compiled::evaluate`] with a weight per sample (shape `(N,)`) for the loss, as Keras's
    /// `evaluate(x, y, sample_weight=w)`; metrics stay unweighted.
    pub fn evaluate_weighted<X, Y, W, SW, DW>(&mut self, x: &X, y: &Y, sample_weight: &ArrayBase<SW, DW>) -> Result<Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
        W: Element,
        SW: Data<Elem = W>,
        DW: Dimension,
    {
        let (x, y, w) =
            self.checked(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), Some(table(sample_weight, "sample_weight")))?;
        let mut logs = Logs::new();
        fit::evaluate(self, &x, &y, w.as_ref(), 32, &mut logs, false)?;
        Ok(logs)
    }

    /// One training step on `x` and `y` as a single batch; returns that batch's loss and
    /// metrics. After the first call with a given batch size, a call allocates nothing.
    pub fn train_on_batch<X, Y>(&mut self, x: &X, y: &Y) -> Result<&Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        self.on_batch(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), None, Step::Train)
    }

    /// [`Compiled::train_on_batch`] with a weight per sample (shape `(N,)`): the loss is
    /// `sum(w_i * loss_i) / N`, as Keras's `train_on_batch(x, y, sample_weight=w)`.
    pub fn train_on_batch_weighted<X, Y, W, SW, DW>(&mut self, x: &X, y: &Y, sample_weight: &ArrayBase<SW, DW>) -> Result<&Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
        W: Element,
        SW: Data<Elem = W>,
        DW: Dimension,
    {
        self.on_batch(
            input_table(x, M::INPUTS, "x"),
            target_table::<M, _>(y, "y"),
            Some(table(sample_weight, "sample_weight")),
            Step::Train,
        )
    }

    /// The loss and metrics of `x` and `y` as a single batch, inference mode.
    pub fn test_on_batch<X, Y>(&mut self, x: &X, y: &Y) -> Result<&Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        self.on_batch(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), None, Step::Test)
    }

    /// [`Compiled::test_on_batch`] with a weight per sample (shape `(N,)`).
    pub fn test_on_batch_weighted<X, Y, W, SW, DW>(&mut self, x: &X, y: &Y, sample_weight: &ArrayBase<SW, DW>) -> Result<&Logs>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
        W: Element,
        SW: Data<Elem = W>,
        DW: Dimension,
    {
        self.on_batch(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), Some(table(sample_weight, "sample_weight")), Step::Test)
    }

    /// One batch of a train or test step, with the checks, and its logs.
    fn on_batch(&mut self, x: Result<Table<'_>>, y: Result<Table<'_>>, w: Option<Result<Table<'_>>>, step: Step) -> Result<&Logs> {
        let (x, y, w) = self.checked(x, y, w)?;
        self.reset_metrics()?;
        self.step(&x, &y, w.as_ref(), Batch::Range(0, x.rows()), step)?;
        let mut logs = std::mem::take(&mut self.logs);
        let r = self.write_logs(&mut logs, false);
        self.logs = logs;
        r.map(|()| &self.logs)
    }

    /// The loss of `x`, `y` as one batch and its gradient with respect to every weight (Keras
    /// order; zeros for non-trainable weights), without updating anything.
    pub fn gradients<X, Y>(&mut self, x: &X, y: &Y) -> Result<(f32, Vec<ArrayD<f32>>)>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
    {
        self.gradients_of(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), None)
    }

    /// [`Compiled::gradients`] of the loss weighted by a weight per sample (shape `(N,)`).
    pub fn gradients_weighted<X, Y, W, SW, DW>(
        &mut self,
        x: &X,
        y: &Y,
        sample_weight: &ArrayBase<SW, DW>,
    ) -> Result<(f32, Vec<ArrayD<f32>>)>
    where
        X: Inputs + ?Sized,
        Y: Inputs + ?Sized,
        W: Element,
        SW: Data<Elem = W>,
        DW: Dimension,
    {
        self.gradients_of(input_table(x, M::INPUTS, "x"), target_table::<M, _>(y, "y"), Some(table(sample_weight, "sample_weight")))
    }

    /// The tables of a batch or an evaluation, checked against the model; in a data-parallel
    /// job every rank learns whether any rank's failed.
    #[allow(clippy::type_complexity)]
    fn checked<'t>(
        &mut self,
        x: Result<Table<'t>>,
        y: Result<Table<'t>>,
        w: Option<Result<Table<'t>>>,
    ) -> Result<(Table<'t>, Table<'t>, Option<Table<'t>>)> {
        let local = (|| {
            let (x, y, w) = (x?, y?, w.transpose()?);
            self.check_data(&x, &y)?;
            if let Some(w) = &w {
                fit::check_sample_weight(w, x.rows())?;
            }
            Ok((x, y, w))
        })();
        let agreed = Engine::agree(self, local.as_ref().err());
        let tables = local?;
        agreed?;
        // (Only in a job: a steady `train_on_batch` allocates nothing.)
        if self.parallel.is_some() {
            let (x, y, w) = &tables;
            let data: Vec<&[f32]> = [Some(x), Some(y), w.as_ref()].into_iter().flatten().flat_map(Table::slices).collect();
            Engine::check_same(self, "the batch", &data)?;
        }
        Ok(tables)
    }

    fn gradients_of(
        &mut self,
        x: Result<Table<'_>>,
        y: Result<Table<'_>>,
        w: Option<Result<Table<'_>>>,
    ) -> Result<(f32, Vec<ArrayD<f32>>)> {
        let (x, y, w) = self.checked(x, y, w)?;
        let (x, y, w) = (&x, &y, w.as_ref());
        self.reset_metrics()?;
        // The training-mode forward pass moves non-trainable state (batch normalization's moving
        // statistics); this call changes nothing, so the state is put back.
        let mut state = vec![0.0f32; M::NON_TRAINABLE_PARAMS];
        let dev = self.model.core().device().clone();
        dev.download(<M::Backend as Device>::view(self.model.core().state(), 0..M::NON_TRAINABLE_PARAMS), &mut state)?;
        let stepped = self.step(x, y, w, Batch::Range(0, x.rows()), Step::Gradients);
        dev.upload(&state, <M::Backend as Device>::view_mut(self.model.core_mut().state_mut(), 0..M::NON_TRAINABLE_PARAMS))?;
        stepped?;
        let core = self.model.core();
        let dev = core.device().clone();
        let mut grads = vec![0.0f32; M::TRAINABLE_PARAMS];
        dev.download(<M::Backend as Device>::view(core.grads(), 0..M::TRAINABLE_PARAMS), &mut grads)?;
        let loss = {
            let mut logs = Logs::new();
            self.write_logs(&mut logs, false)?;
            logs.loss()
        };
        let arrays = M::WEIGHTS
            .iter()
            .map(|w| match w.arena {
                crate::model::Arena::Trainable => {
                    ArrayD::from_shape_vec(IxDyn(w.shape), grads[w.offset..w.offset + w.len()].to_vec()).expect("weight shape")
                }
                crate::model::Arena::NonTrainable => ArrayD::zeros(IxDyn(w.shape)),
            })
            .collect();
        Ok((loss, arrays))
    }

    /// One batch: forward pass, loss (and gradient) and metrics; for `Step::Gradients` and
    /// `Step::Train` the backward pass; for `Step::Train` the optimizer's update. Nothing is read
    /// back: the loss and metrics accumulate on the device.
    ///
    /// A training step on a device that records work runs as one recording (a CUDA graph): the
    /// batch is staged into the fixed staging buffers, then the step's device work (forward,
    /// loss, metrics, backward, update, the step counters' advance) is replayed. A step shape
    /// is recorded once its previous step ran without a host round trip (so the first step,
    /// which allocates, runs as issued), and recorded again when a buffer was freed since.
    fn step(&mut self, x: &Table<'_>, y: &Table<'_>, w: Option<&Table<'_>>, batch: Batch, step: Step) -> Result<()> {
        let Some(parallel) = self.parallel.clone() else { return self.step_on(x, y, w, batch, step, None) };
        // This rank's slice of the global batch.
        let (a, total) = match batch {
            Batch::Range(a, b) | Batch::Shuffled(a, b) => (a, b - a),
        };
        let mine = parallel.slice(total);
        let local = match batch {
            Batch::Range(..) => Batch::Range(a + mine.start, a + mine.end),
            Batch::Shuffled(..) => Batch::Shuffled(a + mine.start, a + mine.end),
        };
        self.model.core_mut().set_shard(Some(Shard { parallel: parallel.clone(), first_row: mine.start, rows: mine.len() }));
        let ran = self.step_on(x, y, w, local, step, Some((&parallel, total)));
        self.model.core_mut().set_shard(None);
        ran
    }

    /// [`Compiled::step`] on `batch`, which is this rank's slice of a global batch of `total`
    /// rows in a data-parallel job.
    fn step_on(
        &mut self,
        x: &Table<'_>,
        y: &Table<'_>,
        w: Option<&Table<'_>>,
        batch: Batch,
        step: Step,
        parallel: Option<(&DataParallel, usize)>,
    ) -> Result<()> {
        let dev = self.model.core().device().clone();
        let rows = batch.len();
        let tsize = self.target_len;
        let record = step == Step::Train && self.recorder.enabled && dev.records();
        let Compiled { model, optimizer, heads, metrics, stats, staging, held, recorder, reduced, .. } = self;
        let parallel = parallel.map(|(p, total)| (p, total, reduced));
        let (xv, yv, wv) = staging.stage(&dev, held, x, y, w, batch, M::INPUT_SIZE, tsize, record)?;
        let mut body = StepBody { heads: &heads[..], metrics: &metrics[..], stats, rows, step, parallel };
        if !record {
            if step == Step::Train {
                let n = M::TRAINABLE_PARAMS;
                optimizer.prepare(&dev, n, M::WEIGHTS)?;
                body.run(model, &mut **optimizer, xv, yv, wv)?;
                optimizer.count_step();
            } else {
                body.run(model, &mut **optimizer, xv, yv, wv)?;
            }
            return Ok(());
        }
        optimizer.prepare(&dev, M::TRAINABLE_PARAMS, M::WEIGHTS)?;
        let key = StepKey { rows, weighted: wv.is_some() };
        if let Some(at) = recorder.recordings.iter().position(|(k, _)| *k == key) {
            if dev.replay(&recorder.recordings[at].1)? {
                optimizer.count_step();
                return Ok(());
            }
            recorder.recordings.remove(at);
        }
        if recorder.clean.contains(&key) && dev.begin_capture()? {
            let ran = body.run(model, &mut **optimizer, xv, yv, wv);
            let recording = dev.end_capture()?;
            match (ran, recording) {
                (Ok(()), Some(recording)) if dev.replay(&recording)? => {
                    optimizer.count_step();
                    if recorder.recordings.len() == StepRecorder::KEEP {
                        recorder.recordings.remove(0);
                    }
                    recorder.recordings.push((key, recording));
                    return Ok(());
                }
                // Broken (the step did what a recording cannot hold): nothing recorded ran; the
                // step runs as issued below and proves itself again. A model whose recordings
                // keep breaking records no more.
                _ => {
                    recorder.broken += 1;
                    recorder.enabled = recorder.broken < StepRecorder::MAX_BROKEN;
                }
            }
        }
        let before = dev.round_trips();
        body.run(model, &mut **optimizer, xv, yv, wv)?;
        optimizer.count_step();
        let clean = dev.round_trips() == before;
        recorder.clean.retain(|k| *k != key);
        if clean {
            recorder.clean.push(key);
        }
        Ok(())
    }
}

/// The recordings of a compiled model's training steps (see `Compiled::step`).
struct StepRecorder {
    /// False once recordings broke [`StepRecorder::MAX_BROKEN`] times: then every step runs as
    /// issued.
    enabled: bool,
    /// Recordings broken so far.
    broken: u32,
    /// Step shapes whose last step ran without a host round trip (recordable).
    clean: Vec<StepKey>,
    /// Recorded steps by shape: a full batch and an epoch's last, partial one.
    recordings: Vec<(StepKey, Recording)>,
}

impl StepRecorder {
    /// Recordings kept (the oldest is dropped for a new shape).
    const KEEP: usize = 2;
    /// Broken recordings after which a model stops recording.
    const MAX_BROKEN: u32 = 3;
}

/// What a recorded training step depends on besides the buffers' addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StepKey {
    rows: usize,
    weighted: bool,
}

/// The device work of one batch (see `Compiled::step`), given the staged batch.
struct StepBody<'s, B: Backend> {
    heads: &'s [Head],
    metrics: &'s [CompiledMetric],
    stats: &'s mut B::Buffer,
    rows: usize,
    step: Step,
    /// In a data-parallel job: the job, the global batch's rows, and a host buffer for the
    /// gradient all-reduce.
    parallel: Option<(&'s DataParallel, usize, &'s mut Vec<f32>)>,
}

impl<B: Backend> StepBody<'_, B> {
    /// Forward pass, loss and metrics, penalties, and for training the backward pass; for
    /// `Step::Train` the update's device work and the advance of the model's random stream
    /// (the optimizer is prepared before and counts the step after).
    fn run<M: Model<Backend = B>>(
        &mut self,
        model: &mut M,
        optimizer: &mut dyn Optimizer<B>,
        xv: B::View<'_>,
        yv: B::View<'_>,
        wv: Option<B::View<'_>>,
    ) -> Result<()> {
        let StepBody { heads, metrics, stats, rows, step, parallel } = self;
        let (rows, step) = (*rows, *step);
        let core = model.core_mut();
        let dev = core.device().clone();
        core.prepare(rows, M::SLOTS)?;
        let training = step != Step::Test;
        M::forward(core, xv, rows, training);
        // In a data-parallel step each rank's loss gradient is its rows' share of the global
        // batch's mean, so that the all-reduce's sum is the global gradient.
        let total_rows = parallel.as_ref().map_or(rows, |(_, total, _)| *total);
        // Each output's loss (and its gradient, times its weight), then its metrics. A
        // data-parallel rank whose slice of a batch is empty adds nothing to the loss and
        // metrics (a mean over no rows is NaN), but takes part in everything else.
        for (k, h) in heads.iter().enumerate().filter(|_| rows > 0) {
            let cols = h.cols;
            // Rows of the loss: samples times the positions of a sequence output.
            let loss_rows = rows * (h.len / cols);
            let yv = B::sub(yv, rows * h.target_offset..rows * (h.target_offset + h.target_len));
            let (out, grad) = core.output_and_grad(h.slot, h.grad_slot);
            let pred = B::view(out, 0..rows * h.len);
            let grad = training.then(|| B::view_mut(grad, 0..rows * h.len));
            let acc = h.stats..h.stats + 2;
            match &h.loss {
                LossSpec::Keras(config) => {
                    dev.loss(&LossBatch { loss: *config, rows: loss_rows, cols }, pred, yv, wv, grad, B::view_mut(stats, acc))
                }
                LossSpec::Custom(user) => on_host(&dev, pred, yv, wv, grad, B::view_mut(stats, acc), |p, t, w, g, st| {
                    user.batch(loss_rows, cols, p, t, w, g, st)
                })?,
            }
            let share = h.weight * rows as f32 / total_rows as f32;
            if training && share != 1.0 {
                let (_, grad) = core.output_and_grad(h.slot, h.grad_slot);
                dev.scale(B::view_mut(grad, 0..rows * h.len), share);
            }
            let (out, _) = core.output_and_grad(h.slot, h.grad_slot);
            let pred = B::view(out, 0..rows * h.len);
            for m in metrics.iter().filter(|m| m.head == k) {
                let range = m.offset..m.offset + m.kind.stats_len(cols);
                match &m.kind {
                    ResolvedMetric::Keras(kind) => {
                        dev.metric(&MetricBatch { kind: *kind, rows: loss_rows, cols }, pred, yv, B::view_mut(stats, range))
                    }
                    ResolvedMetric::Custom(f) => on_host(&dev, pred, yv, None, None, B::view_mut(stats, range), |p, t, _, _, st| {
                        crate::metrics::accumulate_custom(&**f, loss_rows, cols, p, t, st)
                    })?,
                }
            }
        }
        // Penalties are added to the loss accumulator as the (first output's) loss is: times
        // the rows it averages (the global batch's, and once: on rank 0).
        let scale = (total_rows * (heads[0].len / heads[0].cols)) as f32;
        let chief = parallel.as_ref().is_none_or(|(p, ..)| p.is_chief());
        // Penalties on layer outputs (their gradients are added inside `backward`).
        for a in M::ACTIVITY {
            let out = B::view(core.slot(a.slot), 0..rows * a.len);
            dev.regularize(&a.regularizer.scaled(1.0 / rows as f32), out, None, scale, Some(B::view_mut(stats, 0..2)));
        }
        if training {
            M::backward(core, xv, rows);
        }
        // Regularization penalties join the loss (training and evaluation alike, as Keras logs
        // them), and their gradients the weights' gradients.
        // (Keras penalizes and constrains trainable weights only: a custom layer's non-trainable
        // weight lives in the state arena, which these offsets do not index.)
        for w in M::WEIGHTS.iter().filter(|w| chief && w.arena == Arena::Trainable) {
            if let Some(reg) = w.regularizer {
                let range = w.offset..w.offset + w.len();
                let (params, grads) = core.params_and_grads();
                let g = training.then(|| B::view_mut(grads, range.clone()));
                dev.regularize(&reg, B::view(params, range), g, scale, Some(B::view_mut(stats, 0..2)));
            }
        }
        if let Some((parallel, _, host)) = parallel.as_mut().filter(|_| training) {
            let n = M::TRAINABLE_PARAMS;
            let (_, grads) = core.params_and_grads();
            if let Some(grads) = dev.host_slice_mut(B::view_mut(grads, 0..n)) {
                parallel.all_reduce_grads(grads);
            } else {
                host.resize(n, 0.0);
                dev.download(B::view(core.grads(), 0..n), host)?;
                parallel.all_reduce_grads(host);
                let (_, grads) = core.params_and_grads();
                dev.upload(host, B::view_mut(grads, 0..n))?;
            }
        }
        if step == Step::Train {
            let (params, grads) = core.params_and_grads();
            let n = M::TRAINABLE_PARAMS;
            optimizer.launch(&dev, B::view_mut(params, 0..n), B::view_mut(grads, 0..n))?;
            for w in M::WEIGHTS.iter().filter(|w| w.arena == Arena::Trainable) {
                if let Some(c) = w.constraint {
                    let rows = w.shape.first().copied().unwrap_or(1);
                    dev.constrain(&c, rows, B::view_mut(core.params_mut(), w.offset..w.offset + w.len()));
                }
            }
            core.advance_step();
        }
        Ok(())
    }
}

/// Runs `f` on host copies of a step's prediction, targets, weights, loss gradient and
/// accumulators (a user's loss or metric, which runs on the CPU whatever the backend), and
/// writes the gradient and accumulators back.
#[allow(clippy::type_complexity)]
fn on_host<B: Backend>(
    dev: &B,
    pred: B::View<'_>,
    target: B::View<'_>,
    weights: Option<B::View<'_>>,
    grad: Option<B::ViewMut<'_>>,
    stats: B::ViewMut<'_>,
    f: impl FnOnce(&[f32], &[f32], Option<&[f32]>, Option<&mut [f32]>, &mut [f32]),
) -> Result<()> {
    let read = |v: B::View<'_>| -> Result<Vec<f32>> {
        let mut host = vec![0.0; B::view_len(v)];
        dev.download(v, &mut host)?;
        Ok(host)
    };
    let (p, t) = (read(pred)?, read(target)?);
    let w = weights.map(read).transpose()?;
    let mut st = read(B::freeze(&stats))?;
    let mut g = grad.as_ref().map(|g| vec![0.0; B::view_len(B::freeze(g))]);
    f(&p, &t, w.as_deref(), g.as_deref_mut(), &mut st);
    if let (Some(g), Some(view)) = (g, grad) {
        dev.upload(&g, view)?;
    }
    dev.upload(&st, stats)
}

/// What a batch is run for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Forward, loss, backward, update.
    Train,
    /// Forward and loss in inference mode.
    Test,
    /// Forward, loss and backward in training mode, without an update.
    Gradients,
}

/// Device buffers for a batch's inputs, targets and sample weights, grown to the largest batch seen.
struct Staging<B: Backend> {
    x: B::Buffer,
    y: B::Buffer,
    w: B::Buffer,
}

/// A batch on the device: inputs, targets and (when given) sample weights.
type Staged<'a, B> = (<B as Device>::View<'a>, <B as Device>::View<'a>, Option<<B as Device>::View<'a>>);

impl<B: Backend> Staging<B> {
    /// The batch's inputs, targets and weights on the device: read in place where the device
    /// reads the host tables or holds them and the rows are consecutive, else gathered or
    /// copied into the staging buffers; always there when `fixed` (a recorded step reads its
    /// batch at fixed addresses).
    #[allow(clippy::too_many_arguments)]
    fn stage<'a>(
        &'a mut self,
        dev: &B,
        held: &'a Held<B>,
        x: &'a Table<'_>,
        y: &'a Table<'_>,
        w: Option<&'a Table<'_>>,
        batch: Batch,
        xlen: usize,
        ylen: usize,
        fixed: bool,
    ) -> Result<Staged<'a, B>> {
        let Staging { x: xb, y: yb, w: wb } = self;
        let wv = match w {
            Some(w) => Some(stage_rows(dev, held, w, batch, wb, 1, fixed)?),
            None => None,
        };
        Ok((stage_rows(dev, held, x, batch, xb, xlen, fixed)?, stage_rows(dev, held, y, batch, yb, ylen, fixed)?, wv))
    }
}

/// Tables a device holds during a `fit` (each found by the address of its data), and the
/// epoch's order of samples.
struct Held<B: Backend> {
    tables: Vec<(*const f32, B::Buffer)>,
    order: B::Indices,
    order_len: usize,
}

// SAFETY: the addresses are only compared, never dereferenced.
unsafe impl<B: Backend> Send for Held<B> {}

impl<B: Backend> Held<B> {
    /// The rows of `data` on the device: in place where the device reads host memory, else the
    /// held copy.
    fn source<'a>(&'a self, dev: &B, data: &'a [f32]) -> Option<B::View<'a>> {
        dev.host_view(data).or_else(|| {
            let held = self.tables.iter().find(|(at, buf)| *at == data.as_ptr() && B::len(buf) == data.len())?;
            Some(B::view(&held.1, 0..data.len()))
        })
    }

    /// Uploads `data` once, unless the device reads it in place or already holds it.
    fn hold(&mut self, dev: &B, data: &[f32]) -> Result<()> {
        if self.source(dev, data).is_none() {
            let mut buf = dev.alloc(data.len())?;
            dev.upload(data, B::view_mut(&mut buf, 0..data.len()))?;
            self.tables.push((data.as_ptr(), buf));
        }
        Ok(())
    }
}

/// The rows of `batch` of a table (each part in turn, for several inputs) as a device view: in
/// `buf` unless they can be read where they lie and `fixed` is not asked.
fn stage_rows<'a, B: Backend>(
    dev: &B,
    held: &'a Held<B>,
    t: &'a Table<'_>,
    batch: Batch,
    buf: &'a mut B::Buffer,
    row_len: usize,
    fixed: bool,
) -> Result<B::View<'a>> {
    let n = batch.len() * row_len;
    let parts: &[Table<'_>] = if t.parts.is_empty() { std::slice::from_ref(t) } else { &t.parts };
    if let ([part], Batch::Range(a, b), false) = (parts, batch, fixed)
        && let Some(v) = held.source(dev, &part.data)
    {
        // One table and consecutive rows: read where it lies.
        return Ok(B::sub(v, a * row_len..b * row_len));
    }
    if B::len(buf) < n {
        *buf = dev.alloc(n)?;
    }
    let mut at = 0;
    for part in parts {
        let width = part.row_len();
        let len = batch.len() * width;
        let dst = B::view_mut(buf, at..at + len);
        match (held.source(dev, &part.data), batch) {
            (Some(src), Batch::Range(a, b)) => dev.copy(B::sub(src, a * width..b * width), dst),
            (None, Batch::Range(a, b)) => dev.upload(part.slice(a..b), dst)?,
            (Some(src), Batch::Shuffled(a, b)) => dev.gather_rows(src, width, &held.order, a..b, dst),
            (None, Batch::Shuffled(..)) => {
                return Err(Error::Config("a shuffled batch of a table the device does not hold".to_string()));
            }
        }
        at += len;
    }
    Ok(B::view(buf, 0..n))
}

impl<M: Model> Control for Compiled<M> {
    fn stop_training(&mut self) {
        self.stop = true;
    }
    fn learning_rate(&self) -> f32 {
        self.optimizer.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        crate::optimizers::common::check("learning_rate", lr, 0.0, f32::INFINITY, true, false)?;
        let dev = self.model.core().device().clone();
        self.optimizer.set_learning_rate(&dev, lr)
    }
    fn get_weights(&self) -> Result<Vec<ArrayD<f32>>> {
        Network::get_weights(self)
    }
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        Network::set_weights(self, weights)
    }
    fn save_weights(&self, path: &Path) -> Result<()> {
        Network::save_weights(self, path)
    }
    fn save_state(&self, path: &Path, epoch: usize) -> Result<()> {
        Compiled::save_state(self, path, epoch)
    }
    fn load_state(&mut self, path: &Path) -> Result<usize> {
        Compiled::load_state(self, path)
    }
    fn set_initial_epoch(&mut self, epoch: usize) {
        self.resume_epoch = Some(epoch);
    }
    fn iterations(&self) -> u64 {
        self.optimizer.iterations()
    }
    fn weight_paths(&self) -> Vec<String> {
        // Keras names a Sequential's own layers' weights under its name; a model used as a layer
        // names its weights under its own (`encoder/dense/kernel`, built before the outer model).
        let scope = if M::NODES.is_empty() { format!("{}/", M::NAME) } else { String::new() };
        let nested = |w: &crate::model::WeightSpec| M::SUBMODELS.iter().any(|s| s.name == w.layer);
        M::WEIGHTS.iter().map(|w| if nested(w) { w.path() } else { format!("{scope}{}", w.path()) }).collect()
    }
    fn is_chief(&self) -> bool {
        self.parallel.as_ref().is_none_or(DataParallel::is_chief)
    }

    fn chief_decides(&mut self, value: bool) -> bool {
        self.parallel.as_ref().map_or(value, |p| p.broadcast_u64(value as u64) != 0)
    }

    fn to_json(&self) -> String {
        crate::io::keras_file::model_config::<M>().to_string()
    }
}

impl<M: Model> Engine for Compiled<M> {
    fn agree(&mut self, failed: Option<&Error>) -> Result<()> {
        match &self.parallel {
            Some(parallel) => parallel.agree(failed.map_or(Ok(()), |e| Err(Error::Config(e.to_string())))),
            None => Ok(()),
        }
    }

    fn check_same(&mut self, what: &str, data: &[&[f32]]) -> Result<()> {
        self.parallel.as_ref().map_or(Ok(()), |p| p.check_same(what, data))
    }

    fn hold(&mut self, t: &Table<'_>) -> Result<()> {
        let dev = self.model.core().device().clone();
        let parts: &[Table<'_>] = if t.parts.is_empty() { std::slice::from_ref(t) } else { &t.parts };
        parts.iter().try_for_each(|p| self.held.hold(&dev, &p.data))
    }

    fn release(&mut self) {
        self.held.tables.clear();
    }

    fn set_order(&mut self, order: &[usize]) -> Result<()> {
        let dev = self.model.core().device().clone();
        if order.len() > self.held.order_len {
            self.held.order = dev.alloc_indices(order.len())?;
            self.held.order_len = order.len();
        }
        dev.upload_indices(order, &mut self.held.order)
    }

    fn train_batch(&mut self, x: &Table<'_>, y: &Table<'_>, w: Option<&Table<'_>>, batch: Batch) -> Result<()> {
        self.step(x, y, w, batch, Step::Train)
    }

    fn test_batch(&mut self, x: &Table<'_>, y: &Table<'_>, w: Option<&Table<'_>>, batch: Batch) -> Result<()> {
        self.step(x, y, w, batch, Step::Test)
    }

    fn reset_metrics(&mut self) -> Result<()> {
        let dev = self.model.core().device().clone();
        let n = self.host_stats.len();
        dev.fill(<M::Backend as Device>::view_mut(&mut self.stats, 0..n), 0.0);
        Ok(())
    }

    fn write_logs(&mut self, logs: &mut Logs, validation: bool) -> Result<()> {
        let dev = self.model.core().device().clone();
        let n = self.host_stats.len();
        dev.download(<M::Backend as Device>::view(&self.stats, 0..n), &mut self.host_stats)?;
        if let Some(parallel) = &self.parallel {
            // Every accumulator is a sum over samples: the job's is the sum of the ranks'.
            parallel.collective().all_reduce_sum(&mut self.host_stats);
        }
        let stats = &self.host_stats;
        if M::OUTPUTS.is_empty() {
            logs.set(if validation { "val_loss" } else { "loss" }, stats[0] / stats[1]);
        } else {
            // The weighted total, penalties included (counted as the first output's loss), then
            // each output's own, unweighted.
            let mean = |h: &Head| stats[h.stats] / stats[h.stats + 1];
            let total = stats[0] / stats[self.heads[0].stats + 1] + self.heads.iter().map(|h| h.weight * mean(h)).sum::<f32>();
            logs.set(if validation { "val_loss" } else { "loss" }, total);
            for h in &self.heads {
                let key = if validation { format!("val_{}_loss", h.name) } else { format!("{}_loss", h.name) };
                logs.set(key, mean(h));
            }
        }
        for m in &self.metrics {
            // Validation names are built once per epoch; training names borrow, so that a
            // steady `train_on_batch` allocates nothing.
            let key: Cow<'static, str> = if validation { Cow::Owned(format!("val_{}", m.name)) } else { m.name.clone() };
            let cols = self.heads[m.head].cols;
            logs.set(key, m.kind.result(&stats[m.offset..m.offset + m.kind.stats_len(cols)], cols));
        }
        Ok(())
    }

    fn take_stop_request(&mut self) -> bool {
        std::mem::take(&mut self.stop)
    }

    fn take_initial_epoch(&mut self) -> Option<usize> {
        self.resume_epoch.take()
    }

    fn begin_shuffle(&mut self) -> (u64, bool) {
        let restored = self.restored_shuffle_seed.take();
        let mut seed = restored.unwrap_or_else(crate::random::next_seed);
        if let Some(parallel) = &self.parallel {
            seed = parallel.broadcast_u64(seed);
        }
        self.shuffle_seed = Some(seed);
        (seed, restored.is_some())
    }

    fn check_data(&self, x: &Table<'_>, y: &Table<'_>) -> Result<()> {
        check_input(x, M::INPUT_SHAPE, M::INPUT_INDICES)?;
        if M::OUTPUTS.is_empty() {
            return check_targets(y, x.rows(), M::OUTPUT_SHAPE, &self.heads[0].loss);
        }
        for (k, (part, h)) in y.parts.iter().zip(&self.heads).enumerate() {
            check_targets(part, x.rows(), h.shape, &h.loss)
                .map_err(|e| Error::Config(format!("y[{k}], the targets of output `{}`: {e}", h.name)))?;
        }
        Ok(())
    }
}

/// Where the weights of `M`'s model used as layer `name` lie in `M::WEIGHTS`, in `S`'s order,
/// after checking that they are `S`'s (names and shapes).
fn submodel_weights<M: Model, S: Model>(name: &str) -> Result<Vec<usize>> {
    if !M::SUBMODELS.iter().any(|s| s.name == name) {
        let models: Vec<&str> = M::SUBMODELS.iter().map(|s| s.name).collect();
        let has = if models.is_empty() { "none".to_string() } else { models.join(", ") };
        return Err(Error::Config(format!("`{name}` is no model used as a layer of `{}` (its models used as layers: {has})", M::NAME)));
    }
    let picked: Vec<usize> = M::WEIGHTS.iter().enumerate().filter(|(_, w)| w.layer == name).map(|(i, _)| i).collect();
    if picked.len() != S::WEIGHTS.len() {
        return Err(Error::Config(format!(
            "layer `{name}` of `{}` has {} weights, model `{}` has {}",
            M::NAME,
            picked.len(),
            S::NAME,
            S::WEIGHTS.len()
        )));
    }
    for (&i, theirs) in picked.iter().zip(S::WEIGHTS) {
        let ours = &M::WEIGHTS[i];
        if ours.name != theirs.path() || ours.shape != theirs.shape {
            return Err(Error::Config(format!(
                "layer `{name}` of `{}` has weight {} {}, where model `{}` has {} {}",
                M::NAME,
                ours.path(),
                crate::error::tuple_shape(ours.shape),
                S::NAME,
                theirs.path(),
                crate::error::tuple_shape(theirs.shape)
            )));
        }
    }
    Ok(picked)
}

/// A dataset's batch holds one target array: a model with several outputs trains on arrays.
fn several_outputs<M: Model>(call: &str) -> Result<()> {
    match M::OUTPUTS.len() {
        0 => Ok(()),
        n => Err(Error::Config(format!(
            "{call}: a dataset's batches hold one target array, and this model has {n} outputs; train it on arrays (`fit(&x, &[y_a, y_b], ..)`)"
        ))),
    }
}

/// `y` as the one table of targets the training loop batches from: one array for a model with
/// one output; for a model with several, one array per output in the model's order, each a part
/// of the table (checked against its output and loss by `check_data`).
fn target_table<'a, M: Model, Y: Inputs + ?Sized>(y: &'a Y, what: &str) -> Result<Table<'a>> {
    if M::OUTPUTS.is_empty() && !y.is_list() {
        // One array: no list to build (a training step allocates nothing).
        return y.input_table(&[], what);
    }
    join_targets(y.tables(what)?, y.is_list(), M::OUTPUTS, what)
}

/// Predictions for all of `x` in batches of `batch_size`.
fn predict_batched<M: Model, X: Inputs + ?Sized>(model: &M, x: &X, batch_size: usize) -> Result<Array<f32, M::OutputDim>> {
    let x = input_table(x, M::INPUTS, "x")?;
    predict_table(model, &x, batch_size)
}

/// Predictions for all of table `x` in batches of `batch_size`.
fn predict_table<M: Model>(model: &M, x: &Table<'_>, batch_size: usize) -> Result<Array<f32, M::OutputDim>> {
    check_input(x, M::INPUT_SHAPE, M::INPUT_INDICES)?;
    let out = predict_rows(model, x, 0..x.rows(), batch_size)?;
    output_array::<M>(x.rows(), out)
}

/// The outputs of rows `range` of table `x` (checked), in batches of `batch_size`, flat.
fn predict_rows<M: Model>(model: &M, x: &Table<'_>, range: std::ops::Range<usize>, batch_size: usize) -> Result<Vec<f32>> {
    let core = model.core();
    let dev = core.device().clone();
    let mut out = vec![0.0f32; range.len() * M::OUTPUT_SIZE];
    let mut xbuf = dev.alloc(0)?;
    let none = Held { tables: Vec::new(), order: dev.alloc_indices(0)?, order_len: 0 };
    core.with_workspace(batch_size.min(range.len()).max(1), M::SLOTS, |core, ws| {
        let mut start = range.start;
        while start < range.end {
            let rows = batch_size.min(range.end - start);
            let xv = stage_rows(&dev, &none, x, Batch::Range(start, start + rows), &mut xbuf, M::INPUT_SIZE, false)?;
            M::infer(core, ws, xv, rows);
            let at = start - range.start;
            dev.download(
                <M::Backend as Device>::view(ws.slot(M::OUTPUT_SLOT), 0..rows * M::OUTPUT_SIZE),
                &mut out[at * M::OUTPUT_SIZE..(at + rows) * M::OUTPUT_SIZE],
            )?;
            start += rows;
        }
        Ok(())
    })?;
    Ok(out)
}

/// `n` outputs of model `M`, flat, as its output array.
fn output_array<M: Model>(n: usize, out: Vec<f32>) -> Result<Array<f32, M::OutputDim>> {
    let mut shape = vec![n];
    shape.extend_from_slice(M::OUTPUT_SHAPE);
    let arr = ArrayD::from_shape_vec(IxDyn(&shape), out).expect("output buffer has the output shape");
    arr.into_dimensionality::<M::OutputDim>().map_err(|e| Error::Config(format!("output dimensionality: {e}")))
}

/// A user's dataset, sized or not, behind the trait object the training loop takes.
struct DynDataset<'d, D: Dataset + ?Sized>(&'d mut D);

impl<D: Dataset + ?Sized> Dataset for DynDataset<'_, D> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&mut self, index: usize) -> Result<crate::datasets::DataBatch> {
        self.0.get(index)
    }
    fn on_epoch_end(&mut self) {
        self.0.on_epoch_end()
    }
}
