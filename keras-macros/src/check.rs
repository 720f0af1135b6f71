//! Shape inference over the whole model, names, parameter counts; every mistake reported once,
//! at its tokens, in Keras's words. After an error that leaves a shape unknown, later layers are
//! still checked for their own mistakes, but not for shapes that follow from the first one.

use crate::catalog::bidirectional::Bidirectional;
use crate::catalog::embedding::Embedding;
use crate::catalog::time_distributed::TimeDistributed;
use crate::catalog::{self, Layer, Runtime, Shape, Weight, bind, fmt_shape, names};
use crate::diag::Diag;
use crate::expand::{Count, CustomRef};
use crate::parse::Chain;
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit};

/// A model whose every layer checked out.
pub struct Checked {
    pub input: Shape,
    pub layers: Vec<CheckedLayer>,
    pub trainable: Count,
    pub non_trainable: Count,
    /// Checks of counts only rustc knows (`#[params(N)]` of a model with custom layers).
    pub asserts: Vec<TokenStream>,
    /// When the first layer is an Embedding: its `input_dim` (the input holds ids).
    pub input_indices: Option<usize>,
}

pub struct CheckedLayer {
    pub name: String,
    pub class: &'static str,
    pub output: Shape,
    pub weights: Vec<Weight>,
    /// Its parameters: known, or a custom layer's, counted by rustc.
    pub params: Count,
    /// A layer of the user's: the impl its weights are read from.
    pub custom: Option<CustomRef>,
    /// Compile-time assertions for the layer (see `Kind::checks`).
    pub checks: Vec<TokenStream>,
    pub runtime: Runtime,
    /// The runtime `Regularizer` on the layer's output, if any.
    pub activity_regularizer: Option<TokenStream>,
    /// The `LayerSpec::config` entries.
    pub config: Vec<TokenStream>,
    /// What the weights' names start with inside the layer: a wrapper's layer
    /// (`time_distributed/dense/kernel`).
    pub weight_prefix: Option<String>,
    /// The layer's constants (see `Layer::constants`).
    pub constants: Vec<f32>,
}

impl Checked {
    /// All parameters.
    pub fn params(&self) -> Count {
        self.trainable.add(&self.non_trainable)
    }
}

/// Where the current shape came from, for error messages.
enum Source {
    Input,
    Layer(String),
}

/// Checks a chain of layers; `None` if anything is wrong (the errors are in `diag`).
pub fn check(chain: &Chain, params_attr: Option<&(u128, Attribute)>, model: &str, diag: &mut Diag) -> Option<Checked> {
    let errors_before = diag.len();
    let mut shape: Option<Shape> = None;
    let mut source = Source::Input;
    // Set once an error leaves the shape unknown: later shape checks would only repeat it.
    let mut lost = false;
    let mut layers: Vec<CheckedLayer> = Vec::new();
    let mut seen_names: HashMap<String, usize> = HashMap::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut input_shape: Option<Shape> = None;
    let mut real_layers = 0;
    let mut input_indices = None;

    for (i, call) in chain.calls.iter().enumerate() {
        let class_name = call.kind.to_string();
        if crate::functional::MERGES.contains(&class_name.as_str()) {
            diag.error(
                &call.kind,
                format!("{class_name} merges several tensors, which a Sequential model cannot: use it in `functional!`"),
            );
            lost = true;
            shape = None;
            continue;
        }
        let classes = catalog::classes();
        let known = classes.iter().find(|c| **c == class_name && call.path.is_none()).copied();
        // A name the DSL does not know, and no typo of one (or a path): a layer of the user's.
        let custom = known.is_none() && catalog::custom::Custom::is_candidate(call, &classes);
        if known.is_none() && !custom {
            let hint = names::suggest(&class_name, &classes).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            let own = catalog::custom::Custom::typo_hint(&class_name);
            diag.error(
                &call.kind,
                format!("unknown layer `{class_name}`; {hint}the layers keras-rs knows are {}{own}", classes.join(", ")),
            );
            lost = true;
            shape = None;
            continue;
        }
        let class: &'static str = known.unwrap_or_else(|| Box::leak(class_name.clone().into_boxed_str()));
        let (signature, positional) = Layer::signature(class);
        if class == "Input" {
            let args = bind(class, call, signature, positional, false, diag);
            let parsed = match args.values[0] {
                Some(a) => catalog::shape(&a.value, "Input", diag),
                None => {
                    diag.error(call, "Input needs the per-sample shape: `Input(784)` or `Input((28, 28, 1))`");
                    None
                }
            };
            if i != 0 {
                diag.error(call, "Input must be the first element of a model");
                continue;
            }
            match parsed {
                Some(s) => {
                    input_shape = Some(s.clone());
                    shape = Some(s);
                }
                None => lost = true,
            }
            continue;
        }
        if class == "Embedding" && real_layers > 0 {
            let after = match &source {
                Source::Layer(n) => format!(" `{n}`"),
                Source::Input => String::new(),
            };
            diag.error(
                &call.kind,
                format!("Embedding must be the model's first layer: it reads integer ids, and the layer{after} before it outputs floats"),
            );
        }
        real_layers += 1;
        let (args, mut layer) = if custom {
            let (layer, args) = catalog::custom::Custom::build(call, diag);
            (args, layer.map(Layer::new))
        } else {
            let args = bind(class, call, signature, positional, true, diag);
            let layer = Layer::build(class, call, &args, diag);
            (args, layer)
        };
        // A wrapped layer is made, and named, before its wrapper, as in Keras.
        if let Some(td) = layer.as_mut().and_then(|l| l.downcast_mut::<TimeDistributed>()) {
            let given = td.inner_name.as_ref().map(|(value, at)| (value, at.clone()));
            td.name = name_from(given, td.inner.class(), &mut counters, diag).unwrap_or_default();
        }
        // Keras makes the wrapped layer first: an unnamed one takes the class's next default name.
        if let Some(b) = layer.as_mut().and_then(|l| l.downcast_mut::<Bidirectional>())
            && !b.inner_named
        {
            b.inner_name = name_from(None, b.inner.kind.class(), &mut counters, diag).unwrap_or_default();
        }
        if let Some(e) = layer.as_ref().and_then(|l| l.downcast_ref::<Embedding>())
            && real_layers == 1
        {
            input_indices = Some(e.input_dim);
        }

        if let Some(a) = args.input
            && let Some(s) = catalog::shape(&a.value, "`in`", diag)
        {
            {
                match (&shape, &source) {
                    (None, _) if !lost && layers.is_empty() && input_shape.is_none() => {
                        input_shape = Some(s.clone());
                        shape = Some(s);
                    }
                    (Some(cur), src) if *cur != s => {
                        let from = match src {
                            Source::Input => format!("the model's input is {}", fmt_shape(cur)),
                            Source::Layer(n) => format!("the previous layer `{n}` outputs {}", fmt_shape(cur)),
                        };
                        diag.error(a, format!("{class} expects input shape {}, but {from}", fmt_shape(&s)));
                    }
                    _ => {}
                }
            }
        }
        if shape.is_none() && !lost {
            diag.error(
                call,
                format!(
                    "the first layer needs an input shape: put `Input(..)` before it, or give it `in = ..`, as in `{class}(.., in = 784)`"
                ),
            );
            lost = true;
        }

        let name = layer_name(&args, class, &mut counters, diag);
        if let Some(n) = &name
            && let Some(prev) = seen_names.insert(n.clone(), i)
        {
            {
                let at = args.name.map(|a| a.to_token_stream()).unwrap_or_else(|| call.to_token_stream());
                diag.error(
                    at,
                    format!(
                        "duplicate layer name `{n}`: layer {} of this model is already named `{n}`; layer names must be unique",
                        prev + 1
                    ),
                );
            }
        }

        let (Some(layer), Some(input)) = (layer, shape.clone()) else {
            lost = true;
            shape = None;
            continue;
        };
        let output = match layer.output_shape(&input) {
            Ok(o) => o,
            Err(msg) => {
                diag.error(call, msg);
                lost = true;
                shape = None;
                continue;
            }
        };
        let weights = layer.weights(&input);
        let constants = layer.constants(&input);
        let params = weights
            .iter()
            .try_fold(0usize, |acc, w| w.shape.iter().try_fold(1usize, |p, d| p.checked_mul(*d)).and_then(|n| acc.checked_add(n)));
        let Some(params) = params else {
            diag.error(call, format!("{class} would have more parameters than this machine can address"));
            return None;
        };
        let name = name.unwrap_or_default();
        let custom = layer.custom(&input);
        let mut checks = layer.checks(&input);
        let params = match &custom {
            Some(c) => c.trainable().add(&c.non_trainable()),
            None => Count::known(params),
        };
        if let Some(a) = args.params {
            checks.extend(params_check(&params, a, &a.value, class, &name, diag));
        }
        let runtime = layer.runtime(&input, &output, i);
        source = Source::Layer(name.clone());
        shape = Some(output.clone());
        let activity_regularizer = layer.activity_regularizer();
        let config = layer.config(&input);
        let weight_prefix = layer.downcast_ref::<TimeDistributed>().map(|td| td.name.clone());
        layers.push(CheckedLayer {
            name,
            class: layer.class(),
            output,
            weights,
            params,
            custom,
            checks,
            runtime,
            activity_regularizer,
            config,
            weight_prefix,
            constants,
        });
    }

    if real_layers == 0 {
        let last = chain.calls.last().expect("a chain has at least one call");
        diag.error(last, "a model needs at least one layer after its Input, as in `Input(4) => Dense(1)`");
    }
    // The model's count is checked whenever every layer's shape is known, even alongside
    // other errors, so that one build reports every mistake.
    if layers.len() < real_layers || input_shape.is_none() {
        return None;
    }
    let size = |w: &Weight| w.shape.iter().product::<usize>();
    let mut trainable = Count::known(layers.iter().flat_map(|l| &l.weights).filter(|w| w.trainable).map(size).sum());
    let mut non_trainable = Count::known(layers.iter().flat_map(|l| &l.weights).filter(|w| !w.trainable).map(size).sum());
    for c in layers.iter().filter_map(|l| l.custom.as_ref()) {
        trainable = trainable.add(&c.trainable());
        non_trainable = non_trainable.add(&c.non_trainable());
    }
    let mut checked = Checked { input: input_shape?, layers, trainable, non_trainable, asserts: Vec::new(), input_indices };
    if let Some((expected, attr)) = params_attr {
        checked.asserts.extend(total_check(&checked.params(), *expected, attr, model, diag));
    }
    (diag.len() == errors_before).then_some(checked)
}

/// `params = N` of a layer: checked here when its count is known, else (a custom layer's)
/// returned as a compile-time assertion at the argument.
pub(crate) fn params_check(
    params: &Count,
    a: &impl ToTokens,
    value: &Expr,
    class: &str,
    name: &str,
    diag: &mut Diag,
) -> Option<TokenStream> {
    match (int(value), params.value()) {
        (Some(n), Some(p)) if n == p as i128 => None,
        (Some(n), Some(p)) => {
            diag.error(a, format!("{class} `{name}` has {} parameters, not {}", thousands(p as u128), thousands(n.max(0) as u128)));
            None
        }
        (Some(n), None) => {
            let msg = format!("{class} `{name}` does not have {} parameters", thousands(n.max(0) as u128));
            let n = n.max(0) as usize;
            Some(quote::quote_spanned!(value.span()=> ::core::assert!(#params == #n, #msg);))
        }
        (None, _) => {
            diag.error(a, format!("`params` expects an integer, found `{}`", value.to_token_stream()));
            None
        }
    }
}

/// `#[params(N)]` of a model: checked here when the count is known, else returned as a
/// compile-time assertion at the attribute.
pub(crate) fn total_check(params: &Count, expected: u128, attr: &Attribute, model: &str, diag: &mut Diag) -> Option<TokenStream> {
    match params.value() {
        Some(p) if expected == p as u128 => None,
        Some(p) => {
            diag.error(attr, format!("`{model}` has {} parameters, not {}", thousands(p as u128), thousands(expected)));
            None
        }
        None => {
            let msg = format!("`{model}` does not have {} parameters", thousands(expected));
            let n = expected as usize;
            Some(quote::quote_spanned!(attr.span()=> ::core::assert!(#params == #n, #msg);))
        }
    }
}

pub(crate) fn int(e: &Expr) -> Option<i128> {
    catalog::int(e)
}

/// The layer's name: `name = ".."`, else the class's prefix with a counter (`dense`, `dense_1`).
fn layer_name(args: &catalog::Args<'_>, class: &'static str, counters: &mut HashMap<String, usize>, diag: &mut Diag) -> Option<String> {
    name_from(args.name.map(|a| (&a.value, a.to_token_stream())), class, counters, diag)
}

/// A name given as `value` (the tokens `at` for messages), else the class's next default name.
pub(crate) fn name_from(
    given: Option<(&Expr, TokenStream)>,
    class: &'static str,
    counters: &mut HashMap<String, usize>,
    diag: &mut Diag,
) -> Option<String> {
    match given {
        None => {
            let snake = Layer::snake(class);
            let n = counters.entry(snake.clone()).or_insert(0);
            let name = if *n == 0 { snake } else { format!("{snake}_{n}") };
            *n += 1;
            Some(name)
        }
        Some((value, a)) => match value {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => {
                let v = s.value();
                if v.is_empty() || v.contains('/') || v.chars().any(char::is_whitespace) {
                    diag.error(a, format!("layer names must be non-empty, without `/` or spaces, found {:?}", v));
                    None
                } else {
                    Some(v)
                }
            }
            other => {
                diag.error(a, format!("`name` expects a string, as in `name = \"hidden\"`, found `{}`", other.to_token_stream()));
                None
            }
        },
    }
}

/// `25,461`.
pub fn thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
