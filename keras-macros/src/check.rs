//! The one checker both macros' front ends (`lower.rs`) drive: it makes each layer (its
//! arguments bound and checked, its name given), calls it on tensors (shape inference, weights,
//! parameter counts) and finishes the graph (Keras's layer order, the model's counts). Every
//! mistake is reported once, at its tokens, in Keras's words.

use crate::catalog::bidirectional::Bidirectional;
use crate::catalog::embedding::Embedding;
use crate::catalog::time_distributed::TimeDistributed;
use crate::catalog::{self, Layer, Shape, Weight, bind, fmt_shape, names};
use crate::diag::Diag;
use crate::expand::Count;
use crate::graph::{Graph, MERGES, Merge, Node, Op, Src, Sub, Unique, ViewNode, keras_order, merge_shape};
use crate::nest::{self, Resolved};
use crate::parse::Call;
use proc_macro2::{Ident, TokenStream};
use quote::ToTokens;
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit};

/// Where the random keys of a nested model's layers start (a chain keys its layers by
/// position, a graph by call; a nested model's calls come after both).
const NESTED_KEYS: usize = 1 << 24;

/// Which macro's model is checked: the grammar differs (a chain with `Input` and `in = ..`, or
/// a body of `let`s over named inputs), and so do some messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sequential,
    Functional,
}

/// A graph being checked: inputs, layers and calls so far.
pub struct Checker {
    dialect: Dialect,
    pub inputs: Vec<(Ident, Option<Shape>)>,
    pub vocab: Vec<Option<usize>>,
    pub uniques: Vec<Unique>,
    pub nodes: Vec<Node>,
    /// Names taken, with where (and, in a chain, at which position) they were taken.
    names_seen: HashMap<String, usize>,
    counters: HashMap<String, usize>,
    /// The classes a call may name.
    pub known: Vec<&'static str>,
    errors_before: usize,
    /// The models brought in by `use`, which the body may call as layers.
    models: Vec<Resolved>,
    /// The calls as Keras sees them (a nested model's call is one), and each node's view node.
    views: Vec<ViewNode>,
    view_of: Vec<Option<usize>>,
}

/// A layer [`Checker::build`] made, not yet named.
pub struct Built<'a> {
    call: &'a Call,
    /// Its class (a custom layer's: its type's name).
    pub class: &'static str,
    op: Option<Op>,
    /// Its arguments.
    pub args: catalog::Args<'a>,
}

/// A layer made by [`Checker::make`].
pub struct Made {
    /// The layer, `None` after an error that leaves it unknown.
    pub unique: Option<usize>,
}

impl Checker {
    /// An empty graph; `diag`'s errors so far are not this model's.
    pub fn new(dialect: Dialect, diag: &Diag) -> Checker {
        let known = match dialect {
            Dialect::Sequential => catalog::classes(),
            Dialect::Functional => catalog::REGISTRY.iter().map(|e| e.class).chain(MERGES.iter().copied()).collect(),
        };
        Checker {
            dialect,
            inputs: Vec::new(),
            vocab: Vec::new(),
            uniques: Vec::new(),
            nodes: Vec::new(),
            names_seen: HashMap::new(),
            counters: HashMap::new(),
            known,
            errors_before: diag.len(),
            models: Vec::new(),
            views: Vec::new(),
            view_of: Vec::new(),
        }
    }

    /// Lets the body call `models` (brought in by `use`) as layers. Their layers' names are
    /// taken first, as Keras's name counters are by a model made before the one that uses it:
    /// the next `Dense` of this model after an encoder with `dense` and `dense_1` is `dense_2`.
    pub fn bring(&mut self, models: &[Resolved]) {
        for r in models {
            self.known.push(Box::leak(r.name.to_string().into_boxed_str()));
            let Some((g, _)) = nest::lower(r) else { continue };
            // Each layer named by default took a number of its class's counter (its nested
            // models' layers too); a name given does not, as in Keras.
            for u in g.uniques.iter().filter(|u| u.auto_named && !matches!(u.op, Op::Model(_))) {
                *self.counters.entry(Layer::snake(u.class)).or_insert(0) += 1;
            }
        }
        self.models = models.to_vec();
    }

    /// Adds input `ident` of `shape` (`None` when its shape had an error); `named` when its name
    /// is a layer name of the model (a functional model's `InputLayer`).
    pub fn input(&mut self, ident: &Ident, shape: Option<Shape>, named: bool) -> Src {
        if named {
            self.names_seen.insert(syn::ext::IdentExt::unraw(ident).to_string(), usize::MAX);
        }
        self.inputs.push((ident.clone(), shape));
        self.vocab.push(None);
        Src::Input(self.inputs.len() - 1)
    }

    /// The shape of tensor `s`, if known.
    pub fn shape(&self, s: Src) -> Option<&Shape> {
        match s {
            Src::Input(k) => self.inputs[k].1.as_ref(),
            Src::Node(j) => Some(&self.nodes[j].output),
        }
    }

    /// Makes the layer of `call`: [`Checker::build`], then [`Checker::name`].
    pub fn make<'a>(&mut self, call: &'a Call, position: usize, diag: &mut Diag) -> Option<Made> {
        let built = self.build(call, diag)?;
        self.name(built, position, diag)
    }

    /// The layer of `call`, its class found, its arguments bound and checked (a wrapped layer
    /// named, as Keras makes it first); `None` when its class is unknown.
    pub fn build<'a>(&mut self, call: &'a Call, diag: &mut Diag) -> Option<Built<'a>> {
        let sequential = self.dialect == Dialect::Sequential;
        let class_name = call.kind.to_string();
        if let Some(r) = self.models.iter().find(|r| r.name == class_name && call.path.is_none()) {
            let class: &'static str = Box::leak(class_name.clone().into_boxed_str());
            // A model is made as it is: only its name is given where it is used.
            let mut args = catalog::Args { values: Vec::new(), input: None, name: None, params: None };
            for a in &call.args {
                match a.key().map(|k| k.to_string()).as_deref() {
                    Some("name") if args.name.is_some() => diag.error(a, "`name` is given twice"),
                    Some("name") => args.name = Some(a),
                    Some("in") => diag.error(a, format!("`in` is not given to a model used as a layer: `{class_name}`'s input shape is its own")),
                    Some("params") => diag.error(
                        a,
                        format!("`params` is not given to a model used as a layer: give `{class_name}` `#[params(N)]` where it is made"),
                    ),
                    _ => diag.error(
                        a,
                        format!("a model used as a layer takes only `name = \"..\"`: `{class_name}`'s layers and their arguments are where it is made"),
                    ),
                }
            }
            let op = match nest::lower(r) {
                None => {
                    diag.error(&call.kind, format!("model `{class_name}` does not compile: fix its own errors first"));
                    None
                }
                Some((g, _)) if g.uniques.iter().any(|u| u.class == "Lambda") => {
                    diag.error(
                        &call.kind,
                        format!("model `{class_name}` has a Lambda layer, whose function would be looked up here, not where `{class_name}` is made: a model used as a layer has no Lambda"),
                    );
                    None
                }
                Some((g, _)) if g.uniques.iter().any(|u| u.custom.is_some()) => {
                    diag.error(
                        &call.kind,
                        format!("model `{class_name}` has a custom layer: a model used as a layer has only the layers keras-rs knows"),
                    );
                    None
                }
                Some((g, _)) if g.outputs.len() != 1 => {
                    diag.error(
                        &call.kind,
                        format!("model `{class_name}` has {} outputs: a model used as a layer has one", g.outputs.len()),
                    );
                    None
                }
                Some((graph, sub_class)) => Some(Op::Model(Box::new(Sub {
                    model: class_name.clone(),
                    class: sub_class,
                    graph,
                    base: None,
                    nested_calls: Vec::new(),
                }))),
            };
            return Some(Built { call, class, op, args });
        }
        let builtin = self.known.iter().find(|c| **c == class_name && call.path.is_none()).copied();
        // A name the DSL does not know, and no typo of one (or a path): a layer of the user's.
        let custom = builtin.is_none() && catalog::custom::Custom::is_candidate(call, &self.known);
        let class: &'static str = match builtin {
            Some(class) => class,
            None if custom => Box::leak(class_name.clone().into_boxed_str()),
            None => {
                let hint = names::suggest(&class_name, &self.known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
                let own = catalog::custom::Custom::typo_hint(&class_name);
                let what = if sequential { "unknown layer" } else { "unknown layer or layer variable" };
                diag.error(
                    &call.kind,
                    format!("{what} `{class_name}`; {hint}the layers keras-rs knows are {}{own}", self.known.join(", ")),
                );
                return None;
            }
        };
        let refuse_in = |args: &catalog::Args<'_>, diag: &mut Diag| {
            if let Some(a) = args.input.filter(|_| !sequential) {
                diag.error(a, "`in` is not used in functional!: a layer's input shape is the shape of the tensor it is called on");
            }
        };
        let (op, args) = if custom {
            let (layer, args) = catalog::custom::Custom::build(call, diag);
            refuse_in(&args, diag);
            (layer.map(|l| Op::Layer(Box::new(Layer::new(l)))), args)
        } else if MERGES.contains(&class) {
            let signature: &[&str] = match class {
                "Concatenate" => &["axis"],
                "CustomScaleLayer" => &["scale"],
                _ => &[],
            };
            let args = bind(class, call, signature, signature.len(), true, diag);
            refuse_in(&args, diag);
            (merge(class, call, &args, diag).map(Op::Merge), args)
        } else {
            let (signature, positional) = Layer::signature(class);
            let args = bind(class, call, signature, positional, true, diag);
            refuse_in(&args, diag);
            let mut layer = Layer::build(class, call, &args, diag);
            // A wrapped layer is made, and named, before its wrapper, as in Keras.
            if let Some(td) = layer.as_mut().and_then(|l| l.downcast_mut::<TimeDistributed>()) {
                let given = td.inner_name.as_ref().map(|(value, at)| (value, at.clone()));
                td.name = name_from(given, td.inner.class(), &mut self.counters, diag).unwrap_or_default();
            }
            // Keras makes the wrapped layer first: an unnamed one takes the class's next default name.
            if let Some(b) = layer.as_mut().and_then(|l| l.downcast_mut::<Bidirectional>())
                && !b.inner_named
            {
                b.inner_name = name_from(None, b.inner.kind.class(), &mut self.counters, diag).unwrap_or_default();
            }
            (layer.map(|l| Op::Layer(Box::new(l))), args)
        };
        Some(Built { call, class, op, args })
    }

    /// Names a layer [`Checker::build`] made (`position` is its place in a chain, for messages)
    /// and adds it to the graph. `None` (in a graph) after any error: in a chain, a layer with a
    /// mistake still takes its name (later default names, and the messages that quote them, stay
    /// as written) and a layer with a bad name is still checked.
    pub fn name<'a>(&mut self, built: Built<'a>, position: usize, diag: &mut Diag) -> Option<Made> {
        let sequential = self.dialect == Dialect::Sequential;
        let Built { call, class, op, args } = built;
        if op.is_none() && !sequential {
            return None;
        }
        let given = args.name.map(|a| (&a.value, a.to_token_stream()));
        let auto_named = given.is_none();
        let name_at = args.name.map(|a| a.to_token_stream()).unwrap_or_else(|| call.to_token_stream());
        let name = match name_from(given, class, &mut self.counters, diag) {
            Some(name) => name,
            None if sequential => String::new(),
            None => return Some(Made { unique: None }),
        };
        if let Some(prev) = self.names_seen.get(&name).copied().filter(|_| !name.is_empty()) {
            if sequential {
                diag.error(
                    name_at,
                    format!(
                        "duplicate layer name `{name}`: layer {} of this model is already named `{name}`; layer names must be unique",
                        prev + 1
                    ),
                );
            } else {
                diag.error(
                    name_at,
                    format!(
                        "duplicate layer name `{name}`: an input or layer of this model is already named `{name}`; names must be unique"
                    ),
                );
                return None;
            }
        }
        if !name.is_empty() {
            self.names_seen.insert(name.clone(), position);
        }
        let Some(op) = op else {
            return Some(Made { unique: None });
        };
        let class = match &op {
            Op::Layer(l) => l.class(),
            Op::Merge(_) => class,
            Op::Model(sub) => sub.class,
        };
        // `params = N`'s message points at the whole argument in a chain, at its value in a graph.
        let params_arg = args
            .params
            .map(|a| if sequential { (a.value.clone(), a.to_token_stream()) } else { (a.value.clone(), a.value.to_token_stream()) });
        self.uniques.push(Unique {
            name,
            class,
            op,
            input: None,
            output: None,
            weights: Vec::new(),
            constants: Vec::new(),
            params: Count::known(0),
            custom: None,
            checks: Vec::new(),
            calls: Vec::new(),
            at: call.to_token_stream(),
            params_arg,
            var: None,
            auto_named,
        });
        Some(Made { unique: Some(self.uniques.len() - 1) })
    }

    /// Calls layer `u` on `args` (each with the name it is written as, for messages), a call
    /// written as `at`, its result bound to `var`; `index` tells the layer's runtime its place
    /// (a dropout's stream). `None` after an error.
    pub fn apply(&mut self, u: usize, args: &[(&Ident, Src)], at: &TokenStream, var: &Ident, index: usize, diag: &mut Diag) -> Option<Src> {
        let shapes: Vec<(&Ident, Shape)> = args.iter().map(|(i, s)| Some((*i, self.shape(*s)?.clone()))).collect::<Option<_>>()?;
        let srcs: Vec<Src> = args.iter().map(|(_, s)| *s).collect();
        if matches!(self.uniques[u].op, Op::Model(_)) {
            return self.apply_model(u, &srcs, &shapes, at, var, diag);
        }
        let unique = &mut self.uniques[u];
        let (name, class) = (unique.name.clone(), unique.class);
        let node = self.nodes.len();
        let (output, runtime) = match &unique.op {
            Op::Model(_) => unreachable!("a model's call is inlined (apply_model)"),
            Op::Merge(m) => match merge_shape(*m, class, &shapes) {
                Ok(o) => (o, None),
                Err(msg) => {
                    diag.error(at, msg);
                    return None;
                }
            },
            Op::Layer(layer) => {
                if shapes.len() != 1 {
                    diag.error(at, format!("{class} `{name}` takes one input tensor, found {}", shapes.len()));
                    return None;
                }
                let (ident, input) = &shapes[0];
                if let Some(e) = layer.downcast_ref::<Embedding>() {
                    match srcs[0] {
                        Src::Input(k) => self.vocab[k] = Some(self.vocab[k].map_or(e.input_dim, |v| v.min(e.input_dim))),
                        // A chain's front end has said that an Embedding comes first.
                        Src::Node(_) if self.dialect == Dialect::Sequential => {}
                        Src::Node(_) => {
                            diag.error(
                                ident,
                                format!("Embedding reads integer ids: call it on one of the model's inputs, not on `{ident}`, which a layer computes"),
                            );
                            return None;
                        }
                    }
                }
                // A layer called again keeps its weights: the new input must fit them (Keras lets an
                // LSTM run over sequences of other lengths, a Conv2D over other image sizes).
                if let Some(first) = &unique.input
                    && first != input
                    && layer.custom(input).is_some()
                    && first.last() != input.last()
                {
                    diag.error(
                        ident,
                        format!(
                            "custom layer `{name}` was first called on a tensor of shape {}; `{ident}` is {}: a custom layer is called on one width",
                            fmt_shape(first),
                            fmt_shape(input)
                        ),
                    );
                    return None;
                }
                if let Some(first) = &unique.input
                    && first != input
                {
                    let fits = layer.weights(input).iter().map(|w| &w.shape).eq(unique.weights.iter().map(|w| &w.shape));
                    if !fits {
                        diag.error(
                            ident,
                            format!(
                                "layer `{name}` was first called on a tensor of shape {}; `{ident}` is {}, which its weights do not fit",
                                fmt_shape(first),
                                fmt_shape(input)
                            ),
                        );
                        return None;
                    }
                }
                let output = match layer.output_shape(input) {
                    Ok(o) => o,
                    Err(msg) => {
                        diag.error(at, msg);
                        return None;
                    }
                };
                if unique.input.is_none() {
                    let weights = layer.weights(input);
                    let params = weights.iter().try_fold(0usize, |acc, w| {
                        w.shape.iter().try_fold(1usize, |p, d| p.checked_mul(*d)).and_then(|n| acc.checked_add(n))
                    });
                    let Some(params) = params else {
                        diag.error(at, format!("{class} would have more parameters than this machine can address"));
                        return None;
                    };
                    unique.custom = layer.custom(input);
                    unique.checks = layer.checks(input);
                    let params = match &unique.custom {
                        Some(c) => c.trainable().add(&c.non_trainable()),
                        None => Count::known(params),
                    };
                    if let Some((value, at)) = &unique.params_arg {
                        unique.checks.extend(params_check(&params, at, value, class, &name, diag));
                    }
                    unique.weights = weights;
                    unique.constants = layer.constants(input);
                    unique.params = params;
                }
                let runtime = layer.runtime(input, &output, index);
                (output, Some(runtime))
            }
        };
        if unique.input.is_none() {
            unique.input = Some(shapes[0].1.clone());
        }
        // Keras's summary shows the last call's output shape.
        unique.output = Some(output.clone());
        unique.calls.push(node);
        let view_inputs = srcs.iter().map(|s| self.view_src(*s)).collect();
        self.views.push(ViewNode { unique: u, inputs: view_inputs, output: output.clone(), node });
        self.view_of.push(Some(self.views.len() - 1));
        self.nodes.push(Node { unique: u, inputs: srcs, output, runtime, var: var.clone() });
        Some(Src::Node(node))
    }

    /// The layer that computes node `j`'s output in Keras's view: a nested model's, for the
    /// output of one of its calls.
    pub fn layer_of(&self, j: usize) -> usize {
        self.view_of[j].map_or(self.nodes[j].unique, |v| self.views[v].unique)
    }

    /// A tensor as the view refers to it.
    fn view_src(&self, s: Src) -> Src {
        match s {
            Src::Input(k) => Src::Input(k),
            Src::Node(j) => Src::Node(self.view_of[j].expect("a tensor the body sees is a view node's")),
        }
    }

    /// Calls the model used as layer `u` on `srcs`: its shapes checked, its layers (at the first
    /// call) and calls inlined into this graph, one call of it in Keras's view.
    fn apply_model(
        &mut self,
        u: usize,
        srcs: &[Src],
        shapes: &[(&Ident, Shape)],
        at: &TokenStream,
        var: &Ident,
        diag: &mut Diag,
    ) -> Option<Src> {
        let chain = self.dialect == Dialect::Sequential;
        let Op::Model(sub) = &mut self.uniques[u].op else { unreachable!("a model's unique") };
        let name = sub.model.clone();
        let wanted: Vec<Shape> = sub.graph.inputs.iter().map(|(_, s)| s.clone()).collect();
        if shapes.len() != wanted.len() {
            let s = if wanted.len() == 1 { "" } else { "s" };
            diag.error(at, format!("model `{name}` takes {} input tensor{s}, found {}", wanted.len(), shapes.len()));
            return None;
        }
        for ((ident, shape), want) in shapes.iter().zip(&wanted) {
            if shape != want {
                let (want, shape) = (fmt_shape(want), fmt_shape(shape));
                if chain {
                    // A chain's tensor has no name: the message points at the model's call.
                    diag.error(at, format!("model `{name}` expects input shape {want}, but it is called on {shape}"));
                } else {
                    diag.error(*ident, format!("model `{name}` expects input shape {want}, but `{ident}` is {shape}"));
                }
                return None;
            }
        }
        // Its inputs that an Embedding reads must be this model's inputs too.
        for (k, v) in sub.graph.vocab.iter().enumerate() {
            if let Some(v) = *v {
                match srcs[k] {
                    Src::Input(o) => self.vocab[o] = Some(self.vocab[o].map_or(v, |w| w.min(v))),
                    Src::Node(_) => {
                        let msg = format!(
                            "model `{name}` starts with an Embedding, which reads integer ids: call it on one of this model's inputs"
                        );
                        // A chain's tensor has no name: the message points at the model's call.
                        if chain {
                            diag.error(at, msg);
                        } else {
                            diag.error(shapes[k].0, msg);
                        }
                        return None;
                    }
                }
            }
        }
        let (first, params) = (sub.base.is_none(), sub.graph.params());
        let moved: Vec<Unique> = if first { std::mem::take(&mut sub.graph.uniques) } else { Vec::new() };
        if first {
            sub.nested_calls =
                moved.iter().enumerate().filter(|(_, m)| matches!(m.op, Op::Model(_))).map(|(i, m)| (i, m.calls.clone())).collect();
        }
        if first {
            let base = self.uniques.len();
            if let Op::Model(sub) = &mut self.uniques[u].op {
                sub.base = Some(base);
            }
            self.uniques[u].params = params;
            for mut m in moved {
                m.calls.clear();
                // A model nested in it finds its layers at `base + ..` now.
                if let Op::Model(s) = &mut m.op {
                    s.base = s.base.map(|b| base + b);
                }
                self.uniques.push(m);
            }
        }
        let Op::Model(sub) = &self.uniques[u].op else { unreachable!("a model's unique") };
        let base = sub.base.expect("placed at the first call");
        let inner_nodes: Vec<(usize, Vec<Src>, Shape, Option<crate::catalog::Runtime>)> =
            sub.graph.nodes.iter().map(|n| (n.unique, n.inputs.clone(), n.output.clone(), n.runtime.clone())).collect();
        let inner_out = sub.graph.outputs[0];
        let mut map = Vec::with_capacity(inner_nodes.len());
        for (iu, inputs, output, runtime) in inner_nodes {
            let node = self.nodes.len();
            let inputs: Vec<Src> = inputs
                .iter()
                .map(|s| match *s {
                    Src::Input(k) => srcs[k],
                    Src::Node(i) => Src::Node(map[i]),
                })
                .collect();
            // Its own key for random draws (a Dropout's mask): each call of a nested model, and
            // each model, draws its own, past every position a chain gives its layers.
            let runtime = match (&self.uniques[base + iu].op, runtime) {
                (Op::Layer(layer), Some(_)) => {
                    let input = self.shape(inputs[0]).expect("a nested model's tensors have shapes").clone();
                    Some(layer.runtime(&input, &output, NESTED_KEYS + node))
                }
                (_, runtime) => runtime,
            };
            self.uniques[base + iu].calls.push(node);
            self.uniques[base + iu].output = Some(output.clone());
            self.nodes.push(Node { unique: base + iu, inputs, output, runtime, var: var.clone() });
            self.view_of.push(None);
            map.push(node);
        }
        let Op::Model(sub) = &self.uniques[u].op else { unreachable!("a model's unique") };
        for (iu, calls) in sub.nested_calls.clone() {
            self.uniques[base + iu].calls.extend(calls.iter().map(|&j| map[j]));
        }
        let out = map[inner_out];
        let output = self.nodes[out].output.clone();
        let view_inputs = srcs.iter().map(|s| self.view_src(*s)).collect();
        self.views.push(ViewNode { unique: u, inputs: view_inputs, output: output.clone(), node: out });
        self.view_of[out] = Some(self.views.len() - 1);
        let unique = &mut self.uniques[u];
        if unique.input.is_none() {
            unique.input = Some(shapes[0].1.clone());
        }
        unique.output = Some(output);
        unique.calls.push(out);
        Some(Src::Node(out))
    }

    /// The checked graph whose outputs are nodes `outputs`: Keras's layer order, the counts, the
    /// model's `#[params(N)]` (named `model` in messages) checked; `None` if this model had any
    /// error.
    pub fn finish(self, outputs: Vec<usize>, params_attr: Option<&(u128, Attribute)>, model: &str, diag: &mut Diag) -> Option<Graph> {
        let view_outputs: Vec<usize> = outputs.iter().map(|&j| self.view_of[j].expect("an output is a view node's")).collect();
        let order = keras_order(self.inputs.len(), &self.views, &view_outputs);
        let inputs: Vec<(Ident, Shape)> = self.inputs.into_iter().map(|(i, s)| s.map(|s| (i, s))).collect::<Option<_>>()?;
        let size = |w: &Weight| w.shape.iter().product::<usize>();
        let mut trainable = Count::known(self.uniques.iter().flat_map(|u| &u.weights).filter(|w| w.trainable).map(size).sum());
        let mut non_trainable = Count::known(self.uniques.iter().flat_map(|u| &u.weights).filter(|w| !w.trainable).map(size).sum());
        for c in self.uniques.iter().filter_map(|u| u.custom.as_ref()) {
            trainable = trainable.add(&c.trainable());
            non_trainable = non_trainable.add(&c.non_trainable());
        }
        let mut graph = Graph {
            sequential: self.dialect == Dialect::Sequential,
            inputs,
            vocab: self.vocab,
            uniques: self.uniques,
            nodes: self.nodes,
            view: self.views,
            order,
            outputs,
            trainable,
            non_trainable,
            asserts: Vec::new(),
        };
        if let Some((expected, attr)) = params_attr {
            graph.asserts.extend(total_check(&graph.params(), *expected, attr, model, diag));
        }
        (diag.len() == self.errors_before).then_some(graph)
    }
}

/// A merge layer's arguments: `Concatenate(axis)`, `CustomScaleLayer(scale)`, or none.
fn merge(class: &'static str, call: &Call, args: &catalog::Args<'_>, diag: &mut Diag) -> Option<Merge> {
    Some(match class {
        "Concatenate" => Merge::Concatenate(match args.values[0] {
            None => -1,
            Some(a) => match catalog::int(&a.value) {
                Some(v) if v != 0 => v as i64,
                _ => {
                    diag.error(
                        a,
                        format!("`axis` expects a non-zero integer (-1 for the last axis), found `{}`", a.value.to_token_stream()),
                    );
                    return None;
                }
            },
        }),
        "CustomScaleLayer" => match args.values[0] {
            Some(a) => match catalog::float(&a.value) {
                Some(v) if v.is_finite() => Merge::Scale(v),
                _ => {
                    diag.error(a, format!("`scale` expects a finite number, found `{}`", a.value.to_token_stream()));
                    return None;
                }
            },
            None => {
                diag.error(call, "CustomScaleLayer needs its `scale`: `CustomScaleLayer(0.17)` computes `x + y * 0.17` of `[x, y]`");
                return None;
            }
        },
        _ => Merge::Elementwise(class),
    })
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
    match (catalog::int(value), params.value()) {
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
