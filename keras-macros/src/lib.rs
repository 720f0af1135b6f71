#![warn(missing_docs)]
//! The `sequential!` and `functional!` macros of keras-rs. The logic lives in ordinary functions over
//! `proc_macro2::TokenStream`, unit-tested without a compiler run; this file only wires them to
//! `#[proc_macro]`. Both macros take one path:
//!
//! - `parse`: the two grammars;
//! - `lower`: each grammar lowered to one graph (`graph`), a `sequential!` chain being the
//!   simplest one, through the one checker (`check`: layers made and named, called on tensors,
//!   shapes and parameter counts);
//! - `expand`: the one expander, from a graph to the model's struct and `Model` impl;
//! - `catalog`: the layer registry, one file per layer kind.

mod applications;
mod catalog;
mod check;
mod diag;
mod expand;
mod graph;
mod lower;
mod nest;
mod parse;
#[cfg(test)]
mod tests;

/// Defines a Sequential model (Keras's `keras.Sequential([...])`): a chain of layers whose
/// shapes and parameter counts the compiler checks, with forward and backward passes generated
/// for exactly those shapes.
///
/// # Grammar
///
/// ```text
/// sequential! { use* item+ }       one or more model types
/// sequential!(chain)               an expression: a model of that chain on the CPU
///
/// use   := 'use' path ';'          a model made by sequential!/functional!, as a layer
/// item  := attribute* visibility 'struct' Name '=' chain ';'
/// chain := layer ('=>' layer)*
/// layer := Kind '(' positional,* (keyword '=' value),* ')'
/// ```
///
/// - The first layer says the input shape: `Input(784)`, `Input((28, 28))`, or `in = ..` on the
///   first layer (`Dense(32, in = 784)`). The batch axis is never written.
/// - Positional arguments come in Keras's order (`Dense(units, activation)`,
///   `Conv2D(filters, kernel_size, activation)`); every other argument is a keyword with
///   Keras's name and values: `use_bias = false`, `padding = "same"`,
///   `kernel_initializer = he_normal`, `kernel_regularizer = l2(0.01)`.
/// - Every layer takes `name = ".."` (default: Keras's `dense`, `dense_1`, ..) and
///   `params = N`, a compile-time check of its parameter count; `#[params(N)]` on the struct
///   checks the total.
/// - Layers: `Input`, `Dense`, `Activation`, `Dropout`, `Flatten`, `Reshape`, `Permute`,
///   `RepeatVector`, `BatchNormalization`, `LayerNormalization`, `ActivityRegularization`,
///   `GaussianNoise`, `GaussianDropout`, `SpatialDropout2D`, `Conv1D`, `Conv2D`,
///   `DepthwiseConv2D`, `SeparableConv2D`, `Conv2DTranspose`, `MaxPooling1D`/`2D`,
///   `AveragePooling1D`/`2D`, `GlobalAveragePooling1D`/`2D`, `GlobalMaxPooling1D`/`2D`,
///   `UpSampling2D`, `ZeroPadding2D`, `Cropping2D`, `Embedding`, `SimpleRNN`, `LSTM`, `GRU`,
///   `Bidirectional(..)`, `TimeDistributed(..)`, the activation layers `ReLU`, `LeakyReLU`,
///   `ELU`, `PReLU` and `Softmax`, `Lambda(|x| ..)` (a function of one value, generic over
///   `keras::autodiff::Real` and differentiated by dual numbers), and the preprocessing layers `Rescaling` and
///   `Normalization` (adapted with `model.adapt("normalization", &x)`, or given its `mean` and
///   `variance`). Their arguments are listed in the `keras` crate's README.
/// - Models are layers too: after `use Encoder;` (a model struct made by `sequential!` or
///   `functional!`, by name or path), `=> Encoder()` runs it as one layer, as Keras's
///   `Sequential([encoder, ...])` does. Its input shape is checked where it is called; its
///   weights are this model's (in Keras's order, `encoder/dense/kernel`), `summary()` shows it
///   as one row, `encoder (Sequential)`, and Keras files nest it as Keras does. It takes only
///   `name = ".."` (default: its struct's name in snake case). Its layers' default names count
///   as Keras's name counters count them, for a model made earlier: a `Dense` after an encoder
///   with `dense` and `dense_1` is `dense_2`. It may hold models of its own; it has one output
///   and no custom or `Lambda` layers (whose code would be looked up where it is used).
/// - A `use` of a name that is no such model fails with ``cannot find macro
///   `__keras_model_Name` ``: each model comes with that hidden macro, `pub(crate)`, so a model
///   is used as a layer in the crate that makes it.
///
/// # What it generates
///
/// For `struct Mlp = ..`, a type `Mlp<B: Backend = Cpu>` (a model named `B` calls its parameter
/// `Backend`) with:
/// - `Mlp::new(&device)` and `Mlp::try_new(&device)`: fresh weights, seeded by
///   `keras::utils::set_random_seed`;
/// - the constants `PARAMS`, `TRAINABLE_PARAMS`, `NON_TRAINABLE_PARAMS`, `INPUT_SHAPE`,
///   `OUTPUT_SHAPE` and `LAYER_NAMES`, all computed at compile time;
/// - `predict_one(&[f32; IN]) -> [f32; OUT]` on the CPU, for one sample without allocating
///   (from a `Vec`, `x.as_slice().try_into()`: a large array literal makes rustc slow);
/// - the `keras::model::Model` implementation, and with it `compile`,
///   `predict`, `summary()`, `get_weights` / `set_weights`, `save_weights` / `load_weights`,
///   and `save_keras` / `load_keras`.
///
/// # Examples
///
/// A model used as a layer of another:
///
/// ```
/// use keras::prelude::*;
///
/// sequential! {
///     pub struct Encoder = Input(6) => Dense(5, tanh) => Dense(4, relu);
/// }
/// sequential! {
///     use Encoder;
///     #[params(74)]
///     pub struct Classifier = Input(6) => Encoder() => Dense(3, softmax);
/// }
///
/// assert_eq!(Classifier::LAYER_NAMES, ["encoder", "dense_2"]);
/// let model = Classifier::new(&Cpu::default());
/// let p = model.predict_one(&[0.5; 6]);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// ```
///
/// ```
/// use keras::prelude::*;
///
/// sequential! {
///     /// The network of the Keras tutorial.
///     #[params(25_461)]
///     pub struct Mlp = Dense(32, in = 784, sigmoid) => Dense(10, sigmoid) => Dense(1, sigmoid);
///
///     /// A classifier for 28x28 images.
///     pub struct Classifier = Input((28, 28))
///         => Flatten()
///         => Dense(128, relu, kernel_initializer = he_normal)
///         => Dropout(0.2)
///         => Dense(10, activation = "softmax", name = "probabilities", params = 1_290);
/// }
///
/// const _: () = assert!(Mlp::PARAMS == 25_461 && Classifier::OUTPUT_SHAPE[0] == 10);
///
/// let model = Classifier::new(&Cpu::default());
/// assert_eq!(Classifier::LAYER_NAMES, ["flatten", "dense", "dropout", "probabilities"]);
/// let p = model.predict_one(&[0.5; 784]);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
///
/// // An expression: a model on the CPU, its type unnamed.
/// let small = sequential!(Input(4) => Dense(8, relu) => Dense(3, softmax));
/// assert_eq!(small.count_params(), 67);
/// ```
///
/// A layer that does not fit the one before it is a compile error at that layer, in Keras's
/// words:
///
/// ```compile_fail
/// use keras::prelude::*;
/// sequential! {
///     pub struct Bad = Dense(32, in = 784) => Dense(10, in = 64);
/// }
/// ```
///
/// # Layers of your own
///
/// A name that is no Keras class the DSL knows (and no typo of one) is a type of yours
/// implementing `keras::layers::custom::CustomLayer<IN, OUT>`, as Keras users subclass
/// `keras.layers.Layer`. The layer maps the input's last axis, `IN` values at each position, to
/// `OUT` (`out = N` in the call, else `IN`); its weights, declared with those widths, join the
/// model's (counted in `PARAMS` at compile time, trained, saved under Keras's names), and its
/// shape rule is checked at compile time at the call. Positional arguments go to its
/// constructor (`Scale(2.0)` is `Scale::new(2.0)`; none: `Default`).
///
/// ```
/// use keras::prelude::*;
/// use keras::initializers::Initializer;
/// use keras::layers::custom::{CustomLayer, Grads, Weight, Weights};
///
/// /// Keras's subclassing guide's `Linear`: `y = x @ kernel + bias`.
/// #[derive(Default)]
/// pub struct Linear;
///
/// impl<const IN: usize, const OUT: usize> CustomLayer<IN, OUT> for Linear {
///     const WEIGHTS: &'static [Weight] =
///         &[Weight::new("kernel", &[IN, OUT], Initializer::GlorotUniform), Weight::new("bias", &[OUT], Initializer::Zeros)];
///     /// Any widths (the default rule keeps the width).
///     const SHAPE: Result<(), &'static str> = Ok(());
///
///     fn forward(&self, w: &Weights<'_>, x: &[f32], y: &mut [f32], _training: bool) {
///         let (kernel, bias) = (w.get("kernel"), w.get("bias"));
///         for (x, y) in x.chunks(IN).zip(y.chunks_mut(OUT)) {
///             for (o, y) in y.iter_mut().enumerate() {
///                 *y = bias[o] + (0..IN).map(|i| x[i] * kernel[i * OUT + o]).sum::<f32>();
///             }
///         }
///     }
///
///     fn backward(&self, w: &Weights<'_>, x: &[f32], _y: &[f32], dy: &[f32], dx: Option<&mut [f32]>, grads: &mut Grads<'_>) {
///         for (x, dy) in x.chunks(IN).zip(dy.chunks(OUT)) {
///             let dk = grads.get_mut("kernel");
///             for i in 0..IN {
///                 for o in 0..OUT {
///                     dk[i * OUT + o] += x[i] * dy[o];
///                 }
///             }
///             for (b, g) in grads.get_mut("bias").iter_mut().zip(dy) {
///                 *b += g;
///             }
///         }
///         if let Some(dx) = dx {
///             let kernel = w.get("kernel");
///             for (dx, dy) in dx.chunks_mut(IN).zip(dy.chunks(OUT)) {
///                 for (i, dx) in dx.iter_mut().enumerate() {
///                     *dx = (0..OUT).map(|o| kernel[i * OUT + o] * dy[o]).sum();
///                 }
///             }
///         }
///     }
/// }
///
/// sequential! {
///     pub struct Net = Input(4) => Linear(out = 8) => Activation(relu) => Dense(1);
/// }
///
/// const _: () = assert!(Net::PARAMS == (4 * 8 + 8) + 9);
/// let model = Net::new(&Cpu::default());
/// assert_eq!(Net::LAYER_NAMES, ["linear", "activation", "dense"]);
/// assert_eq!(model.get_weights()?[0].shape(), [4, 8]);
/// # Ok::<(), keras::Error>(())
/// ```
///
/// It runs on the host (on a GPU its tensors are copied back and forth, and the step is not
/// recorded as a CUDA graph). For a weightless function of each value, `Lambda(|x| ..)` needs
/// no gradient written by hand.
///
/// ```text
/// error: Dense expects input shape (None, 64), but the previous layer `dense` outputs (None, 32)
/// ```
#[proc_macro]
pub fn sequential(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    lower::sequential_macro(input.into()).into()
}

/// Defines a functional model (Keras's functional API): a graph of layer calls over named
/// inputs, with shared layers and merge layers, its shapes and parameter counts checked at
/// compile time.
///
/// # Grammar
///
/// ```text
/// functional! { use* item+ }
///
/// use    := 'use' path ';'                             a model, as a layer (see sequential!)
/// item   := attribute* visibility 'struct' Name '(' (input ':' shape),+ ')' '->' output '{' stmt* '}'
/// output := name | '(' name,+ ')'                     one output, or several in order
/// shape  := '[' dim (',' dim)* ']'                    the per-sample shape: [784], [28, 28, 1]
/// stmt   := 'let' name '=' layer ('(' name,+ ')')? ';'
/// layer  := Kind '(' positional,* (keyword '=' value),* ')'    as in sequential!
/// ```
///
/// - `let h = Dense(8, relu)(x);` makes a layer and calls it on `x`.
/// - `let enc = Dense(8, relu);` binds a layer; each `enc(a)`, `enc(b)` calls the same layer,
///   with one set of weights (its gradients summed over the calls).
/// - A later `let` of a name shadows the earlier one, as in Rust, so Keras's line-by-line
///   `x = layers.Dense(64)(x)` reads `let h = Dense(64, relu)(h);` (the call sees the
///   earlier `h`). A shadowed tensor nothing reads is an error, as any unused one.
/// - Merge layers take several tensors: `Add()`, `Subtract()` (two), `Multiply()`,
///   `Average()`, `Maximum()`, `Minimum()` (of one shape), `Concatenate(axis = -1)`, and
///   InceptionResNetV2's `CustomScaleLayer(scale)(x, y)`, which is `x + y * scale`.
/// - The output is the name after `->`, or several in parentheses, `-> (digit, size)`, each
///   named in Keras's terms by the layer that computes it. Every input and `let` must lead to
///   an output, and every layer bound must be called.
/// - A model made by either macro is a layer after `use Name;`: `let z = Encoder()(x);`, or
///   `let encoder = Encoder();` and `encoder(a)`, `encoder(b)` for one encoder shared by two
///   inputs (as Keras calls one model object twice). A model with several inputs takes them in
///   order, `Pair()(a, b)`; a model used as a layer has one output. See [`sequential!`] for
///   its weights, names and files.
/// - Checked at compile time, each at its tokens: the shapes a merge receives, a shared layer
///   called on a tensor its weights do not fit, unknown names, duplicate layer names, and the
///   `params =` / `#[params(N)]` counts.
///
/// # What it generates
///
/// The same as [`sequential!`]: `Name::new(&device)`, the compile-time constants, the `Model`
/// implementation (`compile`, `fit`, `predict`, `summary()` with Keras's "Connected to"
/// column, weights and Keras files in Keras's layer order), and `predict_one` taking one
/// argument per input. `fit` and `predict` take one array per input, in order, as Keras's
/// `model.fit([a, b], y)`: `&[a.view(), b.view()]`. A model with several outputs (`OUTPUTS`)
/// takes a loss per output at `compile` (and `loss_weights`, metrics per output with
/// `keras::metrics::on`), one target array per output in `fit` and `evaluate`
/// (`&(digit.view(), size.view())`), logs Keras's keys (`digit_loss`, `val_size_mae`, ..),
/// and `predict` returns one array per output (Keras's list), `predict_one` a tuple.
///
/// # Example
///
/// ```
/// use keras::prelude::*;
/// use keras::ndarray::Array2;
///
/// functional! {
///     /// Two views of a thing and some metadata, one shared encoder.
///     pub struct Siamese(left: [16], right: [16], meta: [4]) -> class {
///         let encoder = Dense(8, relu);            // one layer, called twice
///         let a = encoder(left);
///         let b = encoder(right);
///         let m = Dense(4, relu)(meta);
///         let joined = Concatenate()(a, b, m);     // (None, 20)
///         let class = Dense(3, softmax)(joined);
///     }
/// }
///
/// const _: () = assert!(Siamese::PARAMS == 136 + 20 + 63);
///
/// let model = Siamese::new(&Cpu::default());
/// let p = model.predict_one(&[0.5; 16], &[0.25; 16], &[1.0; 4]);
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
///
/// let (left, right, meta) = (Array2::<f32>::ones((8, 16)), Array2::<f32>::zeros((8, 16)), Array2::<f32>::ones((8, 4)));
/// let y = Array2::<f32>::from_shape_fn((8, 3), |(i, j)| (i % 3 == j) as u8 as f32);
/// let mut model = model.compile(Adam::default(), "categorical_crossentropy", ["accuracy"])?;
/// model.fit(&[left.view(), right.view(), meta.view()], &y, FitArgs::default().epochs(2).verbose(0))?;
/// # Ok::<(), keras::Error>(())
/// ```
///
/// A Sequential encoder shared by two inputs, as Keras calls one model on both:
///
/// ```
/// use keras::prelude::*;
///
/// sequential! {
///     pub struct Encoder = Input(6) => Dense(5, tanh) => BatchNormalization() => Dense(4, relu);
/// }
/// functional! {
///     use Encoder;
///     pub struct Twins(a: [6], b: [6]) -> same {
///         let encoder = Encoder();
///         let za = encoder(a);
///         let zb = encoder(b);
///         let joined = Concatenate()(za, zb);
///         let same = Dense(1, sigmoid)(joined);
///     }
/// }
///
/// assert_eq!(Twins::LAYER_NAMES, ["a", "b", "encoder", "concatenate", "dense_2"]);
/// assert_eq!(Twins::PARAMS, 79 + 9);
/// ```
///
/// Merging tensors of different shapes is a compile error at the merge:
///
/// ```compile_fail
/// use keras::prelude::*;
/// functional! {
///     pub struct Bad(a: [4], b: [5]) -> out {
///         let s = Add()(a, b);
///         let out = Dense(1)(s);
///     }
/// }
/// ```
#[proc_macro]
pub fn functional(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    lower::functional_macro(input.into()).into()
}

/// Defines a model of Keras's model zoo (`keras.applications`): VGG16, VGG19, ResNet50,
/// ResNet101, ResNet152, MobileNet, MobileNetV2, DenseNet121, DenseNet169, DenseNet201,
/// Xception, InceptionV3, InceptionResNetV2, with
/// Keras's options, as a [`functional!`] model whose shapes and parameter count the compiler
/// checked.
///
/// The ready-made default forms are in `keras::applications` (`keras::applications::ResNet50`,
/// feature `applications`);
/// this macro makes the others: another input size, the headless model, other classes.
///
/// # Grammar
///
/// ```text
/// application! { item+ }
///
/// item   := attribute* visibility 'struct' Name '=' Arch '(' (option '=' value),* ')' ';'
/// Arch   := VGG16 | VGG19 | ResNet50 | ResNet101 | ResNet152 | MobileNet | MobileNetV2
///         | DenseNet121 | DenseNet169 | DenseNet201 | Xception | InceptionV3
///         | InceptionResNetV2
/// option := input_shape = [height, width, channels]     default [224, 224, 3] ([299, 299, 3] for
///                                                        Xception and the Inceptions); at least
///                                                        32x32 (71x71 Xception, 75x75 the
///                                                        Inceptions)
///         | include_top = true | false                   default true: the ImageNet classifier
///         | pooling = "avg" | "max" | None               the headless model's pooling; default None
///         | classes = N                                  default 1000
///         | classifier_activation = softmax | None | ..  default softmax; None gives logits
///         | alpha = 0.35 | 0.5 | .. | 1.4                MobileNet, MobileNetV2: the width
///         | depth_multiplier = N                         MobileNet; default 1
///         | dropout = 0.001                              MobileNet's top; default 1e-3
/// ```
///
/// Each architecture is written as Keras's Python writes it (`keras/src/applications/*.py`):
/// the same layers in the same order, with the same names (`conv1_conv`,
/// `conv2_block1_1_conv`, ..), and the model's Keras name (`resnet50`,
/// `mobilenetv2_0.35_96`), so `summary()` prints what Keras prints and Keras's weight files
/// load by layer name (`load_keras` on `resnet50_weights_tf_dim_ordering_tf_kernels.h5`).
///
/// # Example
///
/// ```
/// use keras::prelude::*;
///
/// keras::application! {
///     /// A small MobileNetV2 for 96x96 images and 10 classes.
///     pub struct Small = MobileNetV2(input_shape = [96, 96, 3], alpha = 0.35, classes = 10);
///
///     /// ResNet50's features: 2048 values per image, after global average pooling.
///     pub struct Features = ResNet50(input_shape = [160, 160, 3], include_top = false, pooling = "avg");
/// }
///
/// const _: () = assert!(Small::PARAMS == 410_208 + 12_810);
/// assert_eq!(Features::OUTPUT_SHAPE, [2048]);
/// let model = Small::new(&Cpu::default());
/// let p = model.predict_one_slice(&vec![0.5; 96 * 96 * 3])?;
/// assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
/// # Ok::<(), keras::Error>(())
/// ```
///
/// An input too small for the architecture, or an option it does not have, is a compile error
/// at the option:
///
/// ```compile_fail
/// keras::application! {
///     pub struct Tiny = ResNet50(input_shape = [16, 16, 3]);
/// }
/// ```
#[proc_macro]
pub fn application(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    applications::application(input.into()).into()
}
