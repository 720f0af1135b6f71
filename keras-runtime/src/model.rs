//! The [`Model`] trait that `sequential!` and `functional!` implement, and the parameter arena behind every model.
//!
//! All trainable parameters of a model live in one flat buffer, in Keras order and layout (Dense
//! kernel `(in, out)` row-major, then its bias, layer after layer); gradients in a second buffer
//! of the same layout; non-trainable state (BatchNormalization's moving statistics) in a third,
//! followed by the model's constants (see [`Model::CONSTANTS`]).
//! Layers see views at offsets the macro computed. Activations live in the workspace of
//! per-layer slots sized for the largest batch seen, reused from step to step.

use crate::backend::{Backend, Device, RandomStream};
use crate::distribution::Shard;
use crate::error::tuple_shape;
use crate::initializers::Initializer;
use crate::layers::Ctx;
use crate::random::{Rng, next_seed};
use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn};

/// Which buffer of the arena a weight lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arena {
    /// Trainable parameters (updated by the optimizer).
    Trainable,
    /// Non-trainable state (moving statistics).
    NonTrainable,
}

/// One weight tensor of a model, in Keras's `get_weights()` order.
#[derive(Clone, Copy, Debug)]
pub struct WeightSpec {
    /// The layer's name (`dense_1`).
    pub layer: &'static str,
    /// The weight's name within the layer (`kernel`, `bias`).
    pub name: &'static str,
    /// Its shape.
    pub shape: &'static [usize],
    /// The buffer it lives in.
    pub arena: Arena,
    /// Its offset in that buffer.
    pub offset: usize,
    /// How a new model fills it.
    pub init: Initializer,
    /// A penalty on it added to the loss.
    pub regularizer: Option<crate::regularizers::Regularizer>,
    /// A projection applied to it after each update.
    pub constraint: Option<crate::constraints::Constraint>,
}

impl WeightSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the weight has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Keras path of the weight, `dense/kernel`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.layer, self.name)
    }
}

/// One layer of a model, as `summary()` shows it.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    /// The layer's name (`dense`, `dense_1`).
    pub name: &'static str,
    /// The Keras class name (`Dense`).
    pub class: &'static str,
    /// The per-sample output shape (`[32]` for `(None, 32)`).
    pub output_shape: &'static [usize],
    /// Trainable plus non-trainable parameters.
    pub params: usize,
    /// A penalty on the layer's output (Keras's `activity_regularizer`), divided by the batch size.
    pub activity_regularizer: Option<crate::regularizers::Regularizer>,
    /// The architecture-defining entries of the layer's Keras `get_config()` (`units`,
    /// `activation`, `use_bias`), compared with a file's on import. A key `outer.key` names an
    /// entry of a wrapped layer (Bidirectional's `layer.units`; `layer.class_name` its class).
    pub config: &'static [(&'static str, ConfigValue)],
}

/// One value of a layer's Keras configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigValue {
    /// A count (`units`).
    Int(usize),
    /// A number (`rate`).
    Float(f64),
    /// A flag (`use_bias`).
    Bool(bool),
    /// An activation function.
    Activation(crate::activations::Activation),
    /// A tuple of counts (`kernel_size`, `strides`, `pool_size`).
    Ints(&'static [usize]),
    /// A target shape as written, `-1` for the inferred dimension (`Reshape`'s `target_shape`).
    Shape(&'static [i64]),
    /// A word (`padding`).
    Str(&'static str),
    /// A tuple (`dims`, `size`, `padding`'s `((top, bottom), (left, right))`).
    List(&'static [ConfigValue]),
    /// A wrapped layer (`TimeDistributed`'s `layer`): its class and configuration.
    Layer(&'static str, &'static [(&'static str, ConfigValue)]),
    /// Axes as written, negative ones counted from the end (`Normalization`'s `axis`; empty for
    /// `axis=None`, every axis reduced).
    Axes(&'static [i64]),
    /// The last axis of a tensor whose last axis has this index (the batch axis is 0): Keras
    /// writes it as -1 or as the index (`Softmax`'s `axis`); saved as -1.
    LastAxis(usize),
    /// Python's `None` (the `mean` of a `Normalization` that is adapted).
    None,
}

impl std::fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Int(v) => write!(f, "{v}"),
            ConfigValue::Float(v) => write!(f, "{v}"),
            ConfigValue::Bool(v) => write!(f, "{v}"),
            ConfigValue::Activation(a) => f.write_str(a.name()),
            ConfigValue::Ints([v]) => write!(f, "({v},)"),
            ConfigValue::Ints(v) => write!(f, "({})", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            ConfigValue::Shape([v]) => write!(f, "({v},)"),
            ConfigValue::Shape(v) => write!(f, "({})", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            ConfigValue::Str(s) => f.write_str(s),
            ConfigValue::List(items) => write!(f, "({})", items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            ConfigValue::Layer(class, config) => {
                let args = config.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
                write!(f, "{class}({})", args.join(", "))
            }
            ConfigValue::LastAxis(_) => write!(f, "-1"),
            ConfigValue::Axes([v]) => write!(f, "({v},)"),
            ConfigValue::Axes(v) => write!(f, "({})", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            ConfigValue::None => f.write_str("None"),
        }
    }
}

/// A model generated by `sequential!` or `functional!`. The consts come from the macro; the runtime drives the
/// generated forward and backward passes through this trait.
pub trait Model: Sized + Send + 'static {
    /// The device the model lives on.
    type Backend: Backend;
    /// The dimensionality of the model's output (batch axis included; several outputs side by
    /// side, `[N, OUTPUT_SIZE]`).
    type OutputDim: ndarray::Dimension;
    /// What `predict` returns: `Array<f32, OutputDim>` for a model with one output, and one
    /// array per output, `Vec<ArrayD<f32>>`, for a model with several (Keras's list).
    type Predictions: Predictions;
    /// The element type of one input value in the allocation-free `predict_one`: `f32`, or `i32`
    /// (ids) for a model whose first layer is an `Embedding`.
    type InputElement: Copy + Send + Sync + 'static;
    /// The model's name (`summary()` title, file metadata): the struct name in snake case.
    const NAME: &'static str;
    /// The per-sample input shape.
    const INPUT_SHAPE: &'static [usize];
    /// The per-sample output shape.
    const OUTPUT_SHAPE: &'static [usize];
    /// Floats per input sample (all inputs' together).
    const INPUT_SIZE: usize;
    /// A model with several inputs (a functional model's): each input's name and per-sample
    /// shape, in order; `x` is then one array per input, and `INPUT_SHAPE` is `[INPUT_SIZE]`.
    /// `forward` and `backward` get a batch's inputs one after the other: the `batch` rows of
    /// the first input, then of the second, and so on. Empty for a model with one input.
    const INPUTS: &'static [InputSpec] = &[];
    /// When the first layer is an `Embedding`: its `input_dim`. Every input value must then be
    /// an integer id in `[0, input_dim)`, which `fit`, `evaluate` and `predict` check.
    const INPUT_INDICES: Option<usize> = None;
    /// Floats per output sample.
    const OUTPUT_SIZE: usize;
    /// All parameters, trainable and not.
    const PARAMS: usize;
    /// Trainable parameters (the length of the parameter arena).
    const TRAINABLE_PARAMS: usize;
    /// Non-trainable parameters (the state arena's weights, which come first in it).
    const NON_TRAINABLE_PARAMS: usize;
    /// Values layers read that are no weights in Keras (the `mean` and `variance` given to a
    /// `Normalization`): each the offset where it lies in the state arena, past every
    /// non-trainable weight, and its values. Never saved, loaded or counted as parameters.
    const CONSTANTS: &'static [(usize, &'static [f32])] = &[];
    /// The layers, in order.
    const LAYERS: &'static [LayerSpec];
    /// The weights, in Keras order.
    const WEIGHTS: &'static [WeightSpec];
    /// Floats per sample of each workspace slot.
    const SLOTS: &'static [usize];
    /// The slot that holds the output after `forward` (for a model with several outputs, all
    /// of them side by side after an inference-mode pass; a training pass leaves each in its
    /// own slot, see [`Model::OUTPUTS`]).
    const OUTPUT_SLOT: usize;
    /// The slot that `backward` reads the loss gradient from (for a model with several outputs,
    /// the first output's: each has its own, in [`Model::OUTPUTS`]).
    const OUTPUT_GRAD_SLOT: usize;
    /// Penalties on layer outputs (`activity_regularizer`): the slot each output lives in, its
    /// floats per sample, and the penalty (divided by the batch size, as Keras scales it).
    const ACTIVITY: &'static [Activity] = &[];
    /// Floats of scratch for the gradient of a layer called more than once (a functional
    /// model's shared layer): each call's gradient is computed there and added.
    const GRAD_SCRATCH: usize = 0;
    /// For a functional model, its layer calls in the order they run, the last one giving the
    /// output; empty for a Sequential model. A functional model's `LAYERS` list its inputs too
    /// (class `InputLayer`), as Keras's `model.layers` does.
    const NODES: &'static [NodeSpec] = &[];
    /// A model with several outputs (a functional model's `-> (a, b)`): each output's name (the
    /// layer that computes it), per-sample shape and slots, in the order the model returns them.
    /// `predict` then returns one array per output ([`Model::Predictions`]; the model's own
    /// output is them side by side, `[a | b]` per sample, and `OUTPUT_SHAPE` is
    /// `[OUTPUT_SIZE]`, as [`crate::train::Network::predict_joined`] returns them), and
    /// training takes one target array per output. Empty for a model with one output.
    const OUTPUTS: &'static [OutputSpec] = &[];
    /// The models used as layers of this one (`use Encoder;` in the macro), each one entry of
    /// `LAYERS` (class `Sequential` or `Functional`): what Keras's files need of them. Their
    /// weights are in `WEIGHTS` under the model's name (`encoder`, weight `dense/kernel`).
    const SUBMODELS: &'static [SubModelSpec] = &[];

    /// The model's buffers.
    fn core(&self) -> &ModelCore<Self::Backend>;
    /// The model's buffers, mutably.
    fn core_mut(&mut self) -> &mut ModelCore<Self::Backend>;
    /// Wraps buffers (made for this model type) into the model.
    fn from_core(core: ModelCore<Self::Backend>) -> Self;

    /// A new model on `device`, weights freshly initialized; for generic code (a generated model
    /// also has an inherent `new`).
    fn create(device: &Self::Backend) -> Result<Self> {
        Ok(Self::from_core(ModelCore::new::<Self>(device)?))
    }

    /// The forward pass over `batch` samples of `x`; the output lands in slot `OUTPUT_SLOT`.
    /// The workspace must have been prepared for `batch` ([`ModelCore::prepare`]).
    fn forward(core: &mut ModelCore<Self::Backend>, x: <Self::Backend as Device>::View<'_>, batch: usize, training: bool);

    /// The forward pass in inference mode on `&self`: activations in `ws` (prepared for `batch`
    /// by [`ModelCore::with_workspace`], which also copies the state in), the output in
    /// `ws`'s slot `OUTPUT_SLOT`. Several threads may run it at once, each in its workspace.
    fn infer(core: &ModelCore<Self::Backend>, ws: &mut Workspace<Self::Backend>, x: <Self::Backend as Device>::View<'_>, batch: usize);

    /// The backward pass after a training `forward` on the same `x`: reads the loss gradient
    /// from slot `OUTPUT_GRAD_SLOT` and writes the gradients of every trainable parameter.
    fn backward(core: &mut ModelCore<Self::Backend>, x: <Self::Backend as Device>::View<'_>, batch: usize);
}

/// What `predict` returns for a model: see [`Model::Predictions`].
pub trait Predictions: Sized {
    /// The predictions from the model's outputs side by side (one row per sample), each output
    /// as `outputs` places it (empty for a model with one output).
    fn from_joined<D: ndarray::Dimension>(joined: ndarray::Array<f32, D>, outputs: &[OutputSpec]) -> Result<Self>;
}

impl<E: ndarray::Dimension> Predictions for ndarray::Array<f32, E> {
    /// The model's one output.
    fn from_joined<D: ndarray::Dimension>(joined: ndarray::Array<f32, D>, _: &[OutputSpec]) -> Result<Self> {
        let shape = joined.shape().to_vec();
        joined
            .into_dimensionality::<E>()
            .map_err(|_| Error::Config(format!("predictions of shape {shape:?} are not {} axes", E::NDIM.unwrap_or(0))))
    }
}

impl Predictions for Vec<ndarray::ArrayD<f32>> {
    /// One array per output, in the model's order, each `(N, ..its shape)`.
    fn from_joined<D: ndarray::Dimension>(joined: ndarray::Array<f32, D>, outputs: &[OutputSpec]) -> Result<Self> {
        let joined = joined.into_dyn();
        if outputs.is_empty() {
            return Ok(vec![joined]);
        }
        let n = joined.shape()[0];
        let mut at = 0;
        outputs
            .iter()
            .map(|o| {
                let part = joined.slice(ndarray::s![.., at..at + o.len()]).to_owned();
                at += o.len();
                let mut shape = vec![n];
                shape.extend_from_slice(o.shape);
                part.into_shape_with_order(ndarray::IxDyn(&shape)).map_err(|e| Error::Config(format!("output `{}`: {e}", o.name)))
            })
            .collect()
    }
}

/// One named input of a model with several: see [`Model::INPUTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// The input's name (`left`).
    pub name: &'static str,
    /// Its per-sample shape.
    pub shape: &'static [usize],
    /// When an `Embedding` reads it: the smallest such `input_dim`, every value being an
    /// integer id below it (checked before any step).
    pub indices: Option<usize>,
}

/// One output of a model with several: see [`Model::OUTPUTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// The output's name: the name of the layer that computes it (`digit`), as Keras's
    /// `model.output_names`.
    pub name: &'static str,
    /// Its per-sample shape.
    pub shape: &'static [usize],
    /// The workspace slot holding it after `forward`.
    pub slot: usize,
    /// The slot `backward` reads its loss gradient from.
    pub grad_slot: usize,
}

impl OutputSpec {
    /// Floats per sample.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no floats.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A model used as a layer of another: see [`Model::SUBMODELS`].
#[derive(Clone, Copy, Debug)]
pub struct SubModelSpec {
    /// Its index in the outer model's `LAYERS`.
    pub layer: usize,
    /// Its name (`encoder`).
    pub name: &'static str,
    /// Whether it is a Sequential model (else a functional one).
    pub sequential: bool,
    /// Its per-sample input shape (the first input's, for several).
    pub input_shape: &'static [usize],
    /// Its inputs, when it has several (as [`Model::INPUTS`]).
    pub inputs: &'static [InputSpec],
    /// Its layers (as [`Model::LAYERS`]).
    pub layers: &'static [LayerSpec],
    /// Its calls (as [`Model::NODES`]; empty for a Sequential model).
    pub nodes: &'static [NodeSpec],
    /// The models used as its layers (as [`Model::SUBMODELS`]).
    pub submodels: &'static [SubModelSpec],
}

/// One call of a layer in a functional model: see [`Model::NODES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The layer called (an index into `Model::LAYERS`).
    pub layer: usize,
    /// The tensors it is called on: each the layer that made it (an index into `Model::LAYERS`)
    /// and which call of that layer (0 for an input), Keras's `keras_history`.
    pub inputs: &'static [(usize, usize)],
    /// The per-sample shape of this call's output (a layer called on tensors of other shapes,
    /// an LSTM on sequences of other lengths, has one per call).
    pub output: &'static [usize],
}

/// A penalty on a layer's output: see [`Model::ACTIVITY`].
#[derive(Clone, Copy, Debug)]
pub struct Activity {
    /// The workspace slot holding the output.
    pub slot: usize,
    /// Floats per sample of the output.
    pub len: usize,
    /// The penalty.
    pub regularizer: crate::regularizers::Regularizer,
}

/// The buffers of a model: parameter arena, gradients, state, workspace, and the random stream
/// its dropout layers draw from.
#[derive(Debug)]
pub struct ModelCore<B: Backend> {
    device: B,
    params: B::Buffer,
    grads: B::Buffer,
    grad_scratch: B::Buffer,
    state: B::Buffer,
    slots: Vec<B::Buffer>,
    capacity: usize,
    /// The model's seed and training step ([`RandomStream`]), on the device.
    stream: B::Buffer,
    /// The current data-parallel step's share of the batch, for the layers.
    shard: Option<Shard>,
    /// Workspaces of inference on `&self`, kept for reuse (one per thread predicting at once).
    pool: std::sync::Mutex<Vec<Workspace<B>>>,
}

/// The buffers of one inference pass on `&self` ([`Model::infer`]): activations for up to
/// `capacity` samples and a copy of the model's state.
#[derive(Debug)]
pub struct Workspace<B: Backend> {
    slots: Vec<B::Buffer>,
    state: B::Buffer,
    capacity: usize,
}

impl<B: Backend> Workspace<B> {
    /// Slot `i`.
    pub fn slot(&self, i: usize) -> &B::Buffer {
        &self.slots[i]
    }
}

/// Borrowed parts of a [`ModelCore`] and a [`Workspace`], for generated inference code.
pub struct InferParts<'a, B: Backend, const N: usize> {
    /// Layer context.
    pub ctx: Ctx<'a, B>,
    /// The parameter arena.
    pub params: &'a B::Buffer,
    /// The workspace's copy of the state arena.
    pub state: &'a mut B::Buffer,
    /// The workspace's slots.
    pub slots: &'a mut [B::Buffer; N],
}

/// Borrowed parts of a [`ModelCore`], for generated code.
pub struct Parts<'a, B: Backend, const N: usize> {
    /// Layer context.
    pub ctx: Ctx<'a, B>,
    /// The parameter arena.
    pub params: &'a B::Buffer,
    /// The gradient arena.
    pub grads: &'a mut B::Buffer,
    /// Scratch for a shared layer's gradient ([`Model::GRAD_SCRATCH`] floats).
    pub grad_scratch: &'a mut B::Buffer,
    /// The state arena.
    pub state: &'a mut B::Buffer,
    /// The workspace slots.
    pub slots: &'a mut [B::Buffer; N],
}

impl<B: Backend> ModelCore<B> {
    /// Buffers for model `M` on `device`, weights initialized per `M::WEIGHTS` from fresh seeds
    /// of the global generator (see [`crate::utils::set_random_seed`]).
    pub fn new<M: Model<Backend = B>>(device: &B) -> Result<Self> {
        let mut core = ModelCore {
            device: device.clone(),
            params: device.alloc(M::TRAINABLE_PARAMS)?,
            grads: device.alloc(M::TRAINABLE_PARAMS)?,
            grad_scratch: device.alloc(M::GRAD_SCRATCH)?,
            state: device.alloc(state_len::<M>())?,
            slots: Vec::new(),
            capacity: 0,
            stream: device.alloc(RandomStream::LEN)?,
            shard: None,
            pool: std::sync::Mutex::new(Vec::new()),
        };
        let stream = RandomStream { seed: next_seed(), step: 0 };
        device.upload(&stream.encode(), B::view_mut(&mut core.stream, 0..RandomStream::LEN))?;
        let mut host_params = vec![0.0f32; M::TRAINABLE_PARAMS];
        let mut host_state = vec![0.0f32; state_len::<M>()];
        for w in M::WEIGHTS {
            let mut rng = Rng::new(next_seed());
            let dst = match w.arena {
                Arena::Trainable => &mut host_params[w.offset..w.offset + w.len()],
                Arena::NonTrainable => &mut host_state[w.offset..w.offset + w.len()],
            };
            w.init.fill(w.shape, &mut rng, dst);
        }
        for &(offset, values) in M::CONSTANTS {
            host_state[offset..offset + values.len()].copy_from_slice(values);
        }
        device.upload(&host_params, B::view_mut(&mut core.params, 0..M::TRAINABLE_PARAMS))?;
        device.upload(&host_state, B::view_mut(&mut core.state, 0..host_state.len()))?;
        Ok(core)
    }

    /// The device.
    pub fn device(&self) -> &B {
        &self.device
    }

    /// The parameter arena.
    pub fn params(&self) -> &B::Buffer {
        &self.params
    }

    /// The parameter and gradient arenas, for an optimizer step.
    pub fn params_and_grads(&mut self) -> (&mut B::Buffer, &mut B::Buffer) {
        (&mut self.params, &mut self.grads)
    }

    /// The parameter arena, writable (for constraints).
    pub fn params_mut(&mut self) -> &mut B::Buffer {
        &mut self.params
    }

    /// The gradient arena.
    pub fn grads(&self) -> &B::Buffer {
        &self.grads
    }

    /// The state arena.
    pub fn state(&self) -> &B::Buffer {
        &self.state
    }

    /// The state arena, writable.
    pub fn state_mut(&mut self) -> &mut B::Buffer {
        &mut self.state
    }

    /// Workspace slot `i`.
    pub fn slot(&self, i: usize) -> &B::Buffer {
        &self.slots[i]
    }

    /// Workspace slot `i`, mutably.
    pub fn slot_mut(&mut self, i: usize) -> &mut B::Buffer {
        &mut self.slots[i]
    }

    /// Makes the workspace large enough for `batch` samples; allocates only when `batch` exceeds
    /// every batch seen before.
    pub fn prepare(&mut self, batch: usize, slot_sizes: &[usize]) -> Result<()> {
        if batch > self.capacity || self.slots.len() != slot_sizes.len() {
            let cap = batch.max(self.capacity);
            self.slots = slot_sizes.iter().map(|&s| self.device.alloc(s * cap)).collect::<Result<_>>()?;
            self.capacity = cap;
        }
        Ok(())
    }

    /// Runs `f` with a workspace for `batch` samples of a model with `slot_sizes`, holding a
    /// copy of the state: one from the pool (grown if too small) or a new one, returned to the
    /// pool after. Threads predicting at once each take their own.
    pub fn with_workspace<R>(
        &self,
        batch: usize,
        slot_sizes: &[usize],
        f: impl FnOnce(&Self, &mut Workspace<B>) -> Result<R>,
    ) -> Result<R> {
        let taken = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut ws = match taken {
            Some(ws) => ws,
            None => Workspace { slots: Vec::new(), state: self.device.alloc(B::len(&self.state))?, capacity: 0 },
        };
        if batch > ws.capacity || ws.slots.len() != slot_sizes.len() {
            let cap = batch.max(ws.capacity);
            ws.slots = slot_sizes.iter().map(|&s| self.device.alloc(s * cap)).collect::<Result<_>>()?;
            ws.capacity = cap;
        }
        let n = B::len(&self.state);
        self.device.copy(B::view(&self.state, 0..n), B::view_mut(&mut ws.state, 0..n));
        let result = f(self, &mut ws);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(ws);
        result
    }

    /// The parts generated inference code works with (see [`Model::infer`]).
    pub fn infer_parts<'a, const N: usize>(&'a self, ws: &'a mut Workspace<B>) -> InferParts<'a, B, N> {
        let slots: &mut [B::Buffer; N] = (&mut ws.slots[..]).try_into().expect("workspace prepared with the model's slots");
        InferParts {
            ctx: Ctx { device: &self.device, stream: &self.stream, shard: None },
            params: &self.params,
            state: &mut ws.state,
            slots,
        }
    }

    /// The output slot and the output-gradient slot, for the loss.
    pub fn output_and_grad(&mut self, out: usize, grad: usize) -> (&B::Buffer, &mut B::Buffer) {
        assert!(out < grad, "the gradient slot follows the output slot");
        let (a, b) = self.slots.split_at_mut(grad);
        (&a[out], &mut b[0])
    }

    /// The model's random stream buffer (its seed and training step count, what dropout masks
    /// derive from).
    pub fn stream(&self) -> &B::Buffer {
        &self.stream
    }

    /// The model's random seed and training step count, read from the device (for saving the
    /// training state).
    pub fn random_stream(&self) -> Result<RandomStream> {
        let mut host = [0.0f32; RandomStream::LEN];
        self.device.download(B::view(&self.stream, 0..RandomStream::LEN), &mut host)?;
        Ok(RandomStream::decode(&host))
    }

    /// Restores what [`ModelCore::random_stream`] returned, to resume training.
    pub fn set_random_stream(&mut self, stream: RandomStream) -> Result<()> {
        self.device.upload(&stream.encode(), B::view_mut(&mut self.stream, 0..RandomStream::LEN))
    }

    /// Sets (or clears) the data-parallel share of the batch the next passes run on.
    pub fn set_shard(&mut self, shard: Option<Shard>) {
        self.shard = shard;
    }

    /// Counts a training step on the device (each step draws fresh dropout masks).
    pub fn advance_step(&mut self) {
        self.device.advance(B::view_mut(&mut self.stream, 0..RandomStream::LEN));
    }

    /// Borrows the parts generated code works on.
    ///
    /// # Panics
    /// If the workspace does not have `N` slots (generated code always asks for its own count
    /// after [`ModelCore::prepare`]).
    pub fn parts<const N: usize>(&mut self) -> Parts<'_, B, N> {
        let slots: &mut [B::Buffer; N] = (&mut self.slots[..]).try_into().expect("workspace prepared with the model's slots");
        Parts {
            ctx: Ctx { device: &self.device, stream: &self.stream, shard: self.shard.as_ref() },
            params: &self.params,
            grads: &mut self.grads,
            grad_scratch: &mut self.grad_scratch,
            state: &mut self.state,
            slots,
        }
    }

    /// The weights as arrays, in Keras order and layout (`get_weights`).
    pub fn get_weights(&self, specs: &[WeightSpec]) -> Result<Vec<ArrayD<f32>>> {
        let params = self.download_all(&self.params)?;
        let state = self.download_all(&self.state)?;
        Ok(specs
            .iter()
            .map(|w| {
                let src = match w.arena {
                    Arena::Trainable => &params,
                    Arena::NonTrainable => &state,
                };
                ArrayD::from_shape_vec(IxDyn(w.shape), src[w.offset..w.offset + w.len()].to_vec())
                    .expect("weight spec shape matches its length")
            })
            .collect())
    }

    /// Replaces the weights (`set_weights`); every shape is checked before anything is written.
    pub fn set_weights(&mut self, specs: &[WeightSpec], weights: &[ArrayD<f32>]) -> Result<()> {
        if weights.len() != specs.len() {
            return Err(Error::value(
                "set_weights",
                format!("{} arrays (the model's weights, in Keras order)", specs.len()),
                format!("{} arrays", weights.len()),
            ));
        }
        for (i, (w, a)) in specs.iter().zip(weights).enumerate() {
            if a.shape() != w.shape {
                return Err(Error::shape(format!("weight {i} ({})", w.path()), tuple_shape(w.shape), tuple_shape(a.shape())));
            }
            if let Some((index, &value)) = a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::NonFinite { what: format!("weight {i} ({})", w.path()), value, index });
            }
        }
        let mut params = self.download_all(&self.params)?;
        let mut state = self.download_all(&self.state)?;
        for (w, a) in specs.iter().zip(weights) {
            let dst = match w.arena {
                Arena::Trainable => &mut params[w.offset..w.offset + w.len()],
                Arena::NonTrainable => &mut state[w.offset..w.offset + w.len()],
            };
            for (d, s) in dst.iter_mut().zip(a.iter()) {
                *d = *s;
            }
        }
        let (np, ns) = (params.len(), state.len());
        self.device.upload(&params, B::view_mut(&mut self.params, 0..np))?;
        self.device.upload(&state, B::view_mut(&mut self.state, 0..ns))?;
        Ok(())
    }

    fn download_all(&self, buf: &B::Buffer) -> Result<Vec<f32>> {
        let n = B::len(buf);
        let mut host = vec![0.0f32; n];
        self.device.download(B::view(buf, 0..n), &mut host)?;
        Ok(host)
    }
}

/// The length of model `M`'s state arena: its non-trainable weights, then its constants.
pub fn state_len<M: Model>() -> usize {
    M::NON_TRAINABLE_PARAMS + M::CONSTANTS.iter().map(|(_, values)| values.len()).sum::<usize>()
}

/// A view of a whole buffer.
pub fn all<B: Backend>(buf: &B::Buffer) -> B::View<'_> {
    B::view(buf, 0..B::len(buf))
}

/// A writable view of a whole buffer.
pub fn all_mut<B: Backend>(buf: &mut B::Buffer) -> B::ViewMut<'_> {
    let n = B::len(buf);
    B::view_mut(buf, 0..n)
}

/// Runs `f` on a zeroed buffer of `len` floats that belongs to the calling thread: the one-sample
/// inference path (`predict_one`) keeps its activations there rather than on the stack, where a
/// convnet's or a long sequence's would not fit. The buffer grows on first need and is then reused,
/// so later calls allocate nothing; a nested call gets a fresh buffer.
pub fn with_infer_buffer<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            let slice = &mut buf[..len];
            slice.fill(0.0);
            f(slice)
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}
