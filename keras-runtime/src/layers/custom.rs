//! Layers of the user's own: a type implementing [`CustomLayer`], used by name in `sequential!`
//! and `functional!` as Keras users use a subclass of `keras.layers.Layer`.
//!
//! ```
//! use keras_runtime::initializers::Initializer;
//! use keras_runtime::layers::custom::{CustomLayer, Grads, Weight, Weights};
//!
//! /// `y = x * gamma + beta`, one scale and shift per feature.
//! #[derive(Default)]
//! pub struct Affine;
//!
//! impl<const D: usize> CustomLayer<D, D> for Affine {
//!     const WEIGHTS: &'static [Weight] = &[Weight::new("gamma", &[D], Initializer::Ones), Weight::new("beta", &[D], Initializer::Zeros)];
//!
//!     fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
//!         let (gamma, beta) = (w.get("gamma"), w.get("beta"));
//!         for (i, (y, x)) in y.iter_mut().zip(x).enumerate() {
//!             *y = x * gamma[i % D] + beta[i % D];
//!         }
//!     }
//!
//!     fn backward(&self, w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>) {
//!         for (i, (&x, &g)) in x.iter().zip(dy).enumerate() {
//!             grads.get_mut("gamma")[i % D] += g * x;
//!             grads.get_mut("beta")[i % D] += g;
//!         }
//!         if let Some(dx) = dx {
//!             let gamma = w.get("gamma");
//!             for (i, (dx, &g)) in dx.iter_mut().zip(dy).enumerate() {
//!                 *dx = g * gamma[i % D];
//!             }
//!         }
//!     }
//! }
//!
//! // On 4 features: 8 trainable floats; the width is kept (the default shape rule).
//! assert_eq!(<Affine as CustomLayer<4, 4>>::TRAINABLE_PARAMS, 8);
//! assert!(<Affine as CustomLayer<4, 4>>::SHAPE.is_ok());
//! ```
//!
//! In a model it is used by name, `sequential! { pub struct Scaled = Input(4) => Affine() => Dense(1); }`
//! (see the `sequential!` docs).

use super::{Backward, Forward, Layer};
use crate::backend::Backend;
use crate::constraints::Constraint;
use crate::initializers::Initializer;
use crate::model::{Arena, WeightSpec};
use crate::regularizers::Regularizer;
use std::marker::PhantomData;

/// One weight of a custom layer: its Keras name, shape (a function of the layer's widths, as
/// `&[IN, OUT]`), initializer, and whether training updates it.
#[derive(Clone, Copy, Debug)]
pub struct Weight {
    /// The name within the layer (`kernel`), as Keras's `add_weight(name=..)`.
    pub name: &'static str,
    /// Its shape.
    pub shape: &'static [usize],
    /// How a new model fills it.
    pub init: Initializer,
    /// Whether the optimizer updates it (else it is one of the model's non-trainable weights,
    /// read by the layer and saved with the others).
    pub trainable: bool,
    /// A penalty on it added to the loss.
    pub regularizer: Option<Regularizer>,
    /// A projection applied to it after each update.
    pub constraint: Option<Constraint>,
}

impl Weight {
    /// A trainable weight.
    pub const fn new(name: &'static str, shape: &'static [usize], init: Initializer) -> Self {
        Weight { name, shape, init, trainable: true, regularizer: None, constraint: None }
    }

    /// The weight, not trained (Keras's `trainable=False`).
    pub const fn non_trainable(self) -> Self {
        Weight { trainable: false, ..self }
    }

    /// The weight with a penalty added to the loss (a trainable weight: as in Keras, a
    /// non-trainable one is not penalized).
    pub const fn regularizer(self, regularizer: Regularizer) -> Self {
        Weight { regularizer: Some(regularizer), ..self }
    }

    /// The weight with a constraint applied after each update (of a trainable weight, as in
    /// Keras).
    pub const fn constraint(self, constraint: Constraint) -> Self {
        Weight { constraint: Some(constraint), ..self }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.shape.len() {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    /// Whether it has no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The floats of the trainable (or, with `trainable` false, non-trainable) weights of a list.
pub const fn count(weights: &[Weight], trainable: bool) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < weights.len() {
        if weights[i].trainable == trainable {
            n += weights[i].len();
        }
        i += 1;
    }
    n
}

/// A layer of the user's own, used by name in `sequential!` and `functional!`
/// (`=> Affine()`, `let h = Affine()(x);`; a name one slip from a Keras class, such as `ReLU6`,
/// is written with its path, `self::ReLU6()`), as Keras users subclass `keras.layers.Layer`.
///
/// The layer maps its input's last axis, `IN` values at each position, to `OUT` values (as
/// `Dense` does): the macro passes the input's last dimension as `IN`, and as `OUT` the same
/// unless the call says `out = N`. Its weights ([`Self::WEIGHTS`], shapes written with `IN`
/// and `OUT`) join the model's parameters: counted in `PARAMS` and the summary, trained,
/// saved and loaded under Keras's names (`affine/gamma`), returned by `get_weights` in Keras's
/// order (the trainable ones first). The layer reads its non-trainable weights; it does not
/// update them (no running statistics). The
/// shape rule [`Self::SHAPE`] is checked at compile time at the layer's call: a width it
/// refuses is a compile error with its message.
///
/// The macro builds the layer with `Type::default()`, or `Type::new(args..)` when the call has
/// positional arguments (`Scale(2.0)`). It runs on the host: on a GPU its tensors are copied to
/// the host and back (and a training step with it is not recorded as a CUDA graph).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a keras layer for inputs of width {IN} and outputs of width {OUT}",
    label = "not a layer of keras-rs, nor a custom layer of these widths",
    note = "a custom layer implements `keras::layers::custom::CustomLayer<IN, OUT>` (usually for every width: `impl<const D: usize> CustomLayer<D, D> for MyLayer`)",
    note = "if `{Self}` is a model made by `sequential!` or `functional!`, bring it in as a layer with `use {Self};` at the top of the macro"
)]
pub trait CustomLayer<const IN: usize, const OUT: usize>: Send + Sync + 'static {
    /// The layer's weights, in Keras's order. None by default.
    const WEIGHTS: &'static [Weight] = &[];

    /// The shape rule: `Ok` when the layer maps `IN` values to `OUT`, else why not (a compile
    /// error at the call). By default the layer keeps the width.
    const SHAPE: Result<(), &'static str> =
        if IN == OUT { Ok(()) } else { Err("this custom layer keeps its input's width: call it without `out`, or give it a SHAPE rule") };

    /// Trainable floats, from [`Self::WEIGHTS`].
    const TRAINABLE_PARAMS: usize = count(Self::WEIGHTS, true);

    /// Non-trainable floats, from [`Self::WEIGHTS`].
    const NON_TRAINABLE_PARAMS: usize = count(Self::WEIGHTS, false);

    /// `y` (`rows * OUT` values) from `x` (`rows * IN`), row after row; `training` as Keras's.
    fn forward(&self, weights: &Weights<'_>, x: &[f32], y: &mut [f32], training: bool);

    /// From the output gradient `dy`: the trainable weights' gradients added into `grads` (which
    /// start at zero), and when `dx` is given the input gradient written into it. `x` and `y`
    /// are the training forward pass's.
    fn backward(&self, weights: &Weights<'_>, x: &[f32], y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>);
}

/// A custom layer's weights, by name.
pub struct Weights<'a> {
    decls: &'static [Weight],
    values: Vec<&'a [f32]>,
}

impl<'a> Weights<'a> {
    /// Splits the layer's trainable and non-trainable floats into its weights.
    fn new(decls: &'static [Weight], trainable: &'a [f32], state: &'a [f32]) -> Self {
        let (mut t, mut s) = (trainable, state);
        let values = decls
            .iter()
            .map(|w| {
                let from = if w.trainable { &mut t } else { &mut s };
                let (head, tail) = from.split_at(w.len());
                *from = tail;
                head
            })
            .collect();
        Weights { decls, values }
    }

    /// The weight `name`, flat in row-major order.
    ///
    /// # Panics
    /// If the layer has no weight `name`.
    pub fn get(&self, name: &str) -> &'a [f32] {
        match self.decls.iter().position(|w| w.name == name) {
            Some(i) => self.values[i],
            None => panic!(
                "this custom layer has no weight `{name}` (its weights: {:?})",
                self.decls.iter().map(|w| w.name).collect::<Vec<_>>()
            ),
        }
    }

    /// The weights in declaration order.
    pub fn all(&self) -> &[&'a [f32]] {
        &self.values
    }
}

/// The gradients of a custom layer's trainable weights, by name.
pub struct Grads<'a> {
    decls: &'static [Weight],
    values: Vec<&'a mut [f32]>,
}

impl<'a> Grads<'a> {
    fn new(decls: &'static [Weight], grads: &'a mut [f32]) -> Self {
        let mut rest = grads;
        let values = decls
            .iter()
            .filter(|w| w.trainable)
            .map(|w| {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(w.len());
                rest = tail;
                head
            })
            .collect();
        Grads { decls, values }
    }

    /// The gradient of the trainable weight `name`, to add into.
    ///
    /// # Panics
    /// If the layer has no trainable weight `name`.
    pub fn get_mut(&mut self, name: &str) -> &mut [f32] {
        match self.decls.iter().filter(|w| w.trainable).position(|w| w.name == name) {
            Some(i) => self.values[i],
            None => panic!("this custom layer has no trainable weight `{name}`"),
        }
    }
}

/// The runtime layer of a [`CustomLayer`] `L` between widths `IN` and `OUT` (generated code
/// names it; users write `L`).
pub struct Custom<const IN: usize, const OUT: usize, L> {
    layer: L,
    widths: PhantomData<([(); IN], [(); OUT])>,
}

impl<const IN: usize, const OUT: usize, L> Custom<IN, OUT, L> {
    /// Per-row scratch kept for backward: none.
    pub const SCRATCH: usize = 0;

    /// The layer.
    pub const fn new(layer: L) -> Self {
        Custom { layer, widths: PhantomData }
    }
}

impl<const IN: usize, const OUT: usize, L: CustomLayer<IN, OUT>> Custom<IN, OUT, L> {
    /// Trainable floats.
    pub const PARAMS: usize = L::TRAINABLE_PARAMS;
    /// Non-trainable floats.
    pub const STATE: usize = L::NON_TRAINABLE_PARAMS;
}

/// `len` values of a view on the host; a failed copy is recorded on the device (the values are
/// then NaN) and surfaces at its next read.
fn read<B: Backend>(dev: &B, v: B::View<'_>, len: usize) -> Vec<f32> {
    let mut host = vec![f32::NAN; len];
    if len > 0
        && let Err(e) = dev.download(B::sub(v, 0..len), &mut host)
    {
        dev.fail(e);
    }
    host
}

fn write<B: Backend>(dev: &B, host: &[f32], v: B::ViewMut<'_>) {
    if !host.is_empty()
        && let Err(e) = dev.upload(host, B::split_mut(v, host.len()).0)
    {
        dev.fail(e);
    }
}

impl<B: Backend, const IN: usize, const OUT: usize, L: CustomLayer<IN, OUT>> Layer<B, IN, OUT> for Custom<IN, OUT, L> {
    fn forward(&self, Forward { ctx, params, state, x, y, training, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (p, s) = (read(dev, params, L::TRAINABLE_PARAMS), read(dev, B::freeze(&state), L::NON_TRAINABLE_PARAMS));
        let xs = read(dev, x.view, x.rows * IN);
        let mut ys = vec![0.0f32; x.rows * OUT];
        self.layer.forward(&Weights::new(L::WEIGHTS, &p, &s), &xs, &mut ys, training);
        write(dev, &ys, y.view);
    }

    fn backward(&self, Backward { ctx, params, grads, state, x, y, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let (p, s) = (read(dev, params, L::TRAINABLE_PARAMS), read(dev, state, L::NON_TRAINABLE_PARAMS));
        let (xs, ys) = (read(dev, x.view, x.rows * IN), read(dev, y.view, x.rows * OUT));
        let dys = read(dev, B::freeze(&dy.view), x.rows * OUT);
        let mut g = vec![0.0f32; L::TRAINABLE_PARAMS];
        let mut dxs = dx.as_ref().map(|_| vec![0.0f32; x.rows * IN]);
        self.layer.backward(&Weights::new(L::WEIGHTS, &p, &s), &xs, &ys, &dys, dxs.as_deref_mut(), &mut Grads::new(L::WEIGHTS, &mut g));
        write(dev, &g, grads);
        if let (Some(dx), Some(host)) = (dx, dxs) {
            write(dev, &host, dx.view);
        }
    }
}

/// The model's `WeightSpec`s of custom layer `L` named `layer`, its trainable weights from
/// `trainable_at` in the trainable arena, the others from `state_at`, in Keras's order (the
/// trainable weights first, then the others, each in declaration order); generated code calls
/// it, `K` being `L::WEIGHTS.len()`.
pub const fn weight_specs<const IN: usize, const OUT: usize, L: CustomLayer<IN, OUT>, const K: usize>(
    layer: &'static str,
    trainable_at: usize,
    state_at: usize,
) -> [WeightSpec; K] {
    let mut out = [PLACEHOLDER; K];
    let mut n = 0;
    let mut pass = 0;
    while pass < 2 {
        let trainable = pass == 0;
        let mut at = if trainable { trainable_at } else { state_at };
        let mut i = 0;
        while i < K {
            let w = &L::WEIGHTS[i];
            if w.trainable == trainable {
                out[n] = WeightSpec {
                    layer,
                    name: w.name,
                    shape: w.shape,
                    arena: if trainable { Arena::Trainable } else { Arena::NonTrainable },
                    offset: at,
                    init: w.init,
                    regularizer: w.regularizer,
                    constraint: w.constraint,
                };
                at += w.len();
                n += 1;
            }
            i += 1;
        }
        pass += 1;
    }
    out
}

/// The parts of a model's `WEIGHTS` one after the other (generated code calls it for a model
/// with custom layers, `N` being their total length).
pub const fn concat_specs<const N: usize>(parts: &[&[WeightSpec]]) -> [WeightSpec; N] {
    let mut out = [PLACEHOLDER; N];
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "the parts' lengths do not add up to the model's weight count");
    out
}

const PLACEHOLDER: WeightSpec = WeightSpec {
    layer: "",
    name: "",
    shape: &[],
    arena: Arena::Trainable,
    offset: 0,
    init: Initializer::Zeros,
    regularizer: None,
    constraint: None,
};
