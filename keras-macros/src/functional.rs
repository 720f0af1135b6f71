//! `functional!`: Keras's functional API. A model is a graph of layer calls over named inputs;
//! a layer bound to a name (`let enc = Dense(64, relu);`) keeps one set of weights however often
//! it is called, and merge layers (`Add`, `Concatenate`, ..) join tensors.
//!
//! ```text
//! item   := attribute* visibility 'struct' Ident '(' (Ident ':' shape),+ ')' '->' output '{' stmt* '}'
//! output := Ident | '(' Ident ')'
//! stmt   := 'let' Ident '=' call ('(' Ident,* ')')? ';'
//! ```
//!
//! `let h = Dense(8)(x);` makes a layer and calls it on `x`; `let d = Dense(8);` binds a layer,
//! `let h = d(x);` calls it. Shapes, names and parameter counts are checked here, as
//! `sequential!` checks them; the expansion computes the graph's forward and backward passes in
//! straight-line code (a shared layer's gradients summed over its calls, a tensor's gradient
//! summed over its consumers).

use crate::catalog::bidirectional::Bidirectional;
use crate::catalog::embedding::Embedding;
use crate::catalog::time_distributed::TimeDistributed;
use crate::catalog::{self, Layer, Runtime, Shape, Weight, bind, fmt_shape, names};
use crate::check::{int, name_from};
use crate::diag::Diag;
use crate::expand::{
    Arenas, Count, CustomRef, Decl, Emit, backward_call, emit, forward_call, infer_body, layer_spec, snake_case, stub, usizes,
};
use crate::parse::{Call, parse_attrs};
use proc_macro2::{Group, Ident, TokenStream};
use quote::{ToTokens, format_ident, quote};
use std::collections::HashMap;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Token, Visibility};

/// The merge layers: they take two or more tensors.
pub const MERGES: &[&str] = &["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "CustomScaleLayer"];

/// One `struct Name(inputs) -> output { .. }` item.
pub struct FItem {
    attrs: Vec<Attribute>,
    params: Option<(u128, Attribute)>,
    bad_params: Vec<syn::Error>,
    vis: Visibility,
    name: Ident,
    inputs: Vec<(Ident, Expr)>,
    outputs: Vec<Ident>,
    arrow: Token![->],
    stmts: Vec<Stmt>,
}

/// `let var = call;` or `let var = call(tensors);`.
struct Stmt {
    var: Ident,
    call: Call,
    /// The tensors a freshly made layer is called on: `Dense(8)(x)`.
    apply: Option<(Group, Vec<Expr>)>,
}

struct Items(Vec<FItem>);

impl Parse for Items {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut items = Vec::new();
        while !input.is_empty() {
            items.push(input.parse()?);
        }
        Ok(Items(items))
    }
}

impl Parse for FItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (attrs, params, bad_params) = parse_attrs(input)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        if !input.peek(syn::token::Paren) {
            return Err(input.error(format!(
                "expected the model's inputs in parentheses after `struct {name}`, as in `struct {name}(x: [784]) -> y {{ .. }}`"
            )));
        }
        let group: Group = input.parse()?;
        let inputs = (|content: ParseStream| {
            let mut inputs = Vec::new();
            while !content.is_empty() {
                let ident: Ident = content.parse()?;
                content.parse::<Token![:]>().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        format!("expected `:` and the per-sample shape after input `{ident}`, as in `{ident}: [784]`"),
                    )
                })?;
                let shape: Expr = content.parse()?;
                inputs.push((ident, shape));
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
            Ok(inputs)
        })
        .parse2(group.stream())?;
        if inputs.is_empty() {
            return Err(syn::Error::new(group.span(), "a model needs at least one input, as in `(x: [784])`"));
        }
        let arrow: Token![->] = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("expected `->` and the model's output after the inputs of `{name}`")))?;
        let outputs = if input.peek(syn::token::Paren) {
            let group: Group = input.parse()?;
            let list = Punctuated::<Ident, Token![,]>::parse_terminated.parse2(group.stream())?;
            list.into_iter().collect()
        } else {
            vec![input.parse::<Ident>()?]
        };
        let body;
        syn::braced!(body in input);
        let mut stmts = Vec::new();
        while !body.is_empty() {
            stmts.push(body.parse()?);
        }
        Ok(FItem { attrs, params, bad_params, vis, name, inputs, outputs, arrow, stmts })
    }
}

impl Parse for Stmt {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input
            .parse::<Token![let]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `let name = Layer(..)(inputs);` or `let name = layer(inputs);`"))?;
        let var: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let call: Call = input.parse()?;
        let apply = if input.peek(syn::token::Paren) {
            let group: Group = input.parse()?;
            let list = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(group.stream())?;
            Some((group, list.into_iter().collect()))
        } else {
            None
        };
        input.parse::<Token![;]>().map_err(|e| syn::Error::new(e.span(), "expected `;` after the layer call"))?;
        Ok(Stmt { var, call, apply })
    }
}

/// What a layer call refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// The model's input `k`.
    Input(usize),
    /// Node `j`'s output.
    Node(usize),
}

/// A merge layer.
#[derive(Clone, Copy)]
enum Merge {
    /// Elementwise: the runtime `MergeOp` variant's name.
    Elementwise(&'static str),
    /// `Concatenate` along a per-sample axis (0-based, batch axis excluded).
    Concatenate(i64),
    /// InceptionResNetV2's `CustomScaleLayer(scale)`: `x + y * scale` of two tensors.
    Scale(f64),
}

enum Op {
    Layer(Box<Layer>),
    Merge(Merge),
}

/// A layer of the model (called once or more).
struct Unique {
    name: String,
    class: &'static str,
    op: Op,
    /// The input shape of its first call (its weights' shapes follow from it).
    input: Option<Shape>,
    output: Option<Shape>,
    weights: Vec<Weight>,
    /// Its constants (see `Layer::constants`).
    constants: Vec<f32>,
    params: Count,
    /// A layer of the user's: the impl its weights are read from.
    custom: Option<CustomRef>,
    /// Compile-time assertions for it (see `Kind::checks`).
    checks: Vec<TokenStream>,
    /// Its calls, in order.
    calls: Vec<usize>,
    /// The statement that made it, for messages.
    at: TokenStream,
    /// `params = N`, checked at the first call.
    params_arg: Option<Expr>,
    /// The variable it is bound to, if any.
    var: Option<String>,
}

/// One call of a layer.
struct Node {
    unique: usize,
    inputs: Vec<Src>,
    output: Shape,
    runtime: Option<Runtime>,
    var: Ident,
}

/// What a name in the body refers to.
#[derive(Clone, Copy)]
enum Val {
    Tensor(Src),
    Layer(usize),
    /// Something whose definition had an error: uses are not reported again.
    Poison,
}

/// An entry of Keras's `model.layers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Entry {
    Input(usize),
    Unique(usize),
}

struct FChecked {
    inputs: Vec<(Ident, Shape)>,
    /// Per input: `Some(input_dim)` when it holds an Embedding's ids.
    vocab: Vec<Option<usize>>,
    uniques: Vec<Unique>,
    nodes: Vec<Node>,
    order: Vec<Entry>,
    output: usize,
    trainable: Count,
    non_trainable: Count,
    /// Checks of counts only rustc knows (`#[params(N)]` of a model with custom layers).
    asserts: Vec<TokenStream>,
}

/// `functional!`: parse, check, expand; every error becomes a spanned `compile_error!`.
pub fn functional(tokens: TokenStream) -> TokenStream {
    functional_as(tokens, None)
}

/// [`functional`], the model named `keras_name` in Keras terms (its `summary()` title and its
/// files' `name`) instead of its struct's name in snake case: `application!` names a ResNet50
/// `resnet50` as Keras does.
pub fn functional_as(tokens: TokenStream, keras_name: Option<&str>) -> TokenStream {
    let items = match syn::parse2::<Items>(tokens) {
        Ok(i) => i.0,
        Err(e) => return e.to_compile_error(),
    };
    items
        .iter()
        .map(|item| {
            let mut diag = Diag::default();
            for e in &item.bad_params {
                diag.push(e.clone());
            }
            let decl = Decl {
                attrs: &item.attrs,
                vis: &item.vis,
                ident: &item.name,
                name: keras_name.map_or_else(|| snake_case(&item.name.to_string()), String::from),
            };
            match check(item, &mut diag) {
                Some(m) if diag.is_empty() => expand(&decl, &m),
                _ => {
                    let errors = diag.to_compile_errors();
                    let stub = stub(&decl);
                    quote!(#errors #stub)
                }
            }
        })
        .collect()
}

fn tensor_ident(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

fn check(item: &FItem, diag: &mut Diag) -> Option<FChecked> {
    let errors_before = diag.len();
    let mut vars: HashMap<String, Val> = HashMap::new();
    let mut names_seen: HashMap<String, TokenStream> = HashMap::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut inputs: Vec<(Ident, Option<Shape>)> = Vec::new();
    for (k, (ident, shape)) in item.inputs.iter().enumerate() {
        let name = ident.to_string();
        if vars.contains_key(&name) {
            diag.error(ident, format!("duplicate input `{name}`: input names must be unique"));
        }
        vars.insert(name.clone(), Val::Tensor(Src::Input(k)));
        names_seen.insert(ident.unraw().to_string(), ident.to_token_stream());
        inputs.push((ident.clone(), catalog::shape(shape, &format!("input `{name}`"), diag)));
    }
    let mut uniques: Vec<Unique> = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    // For each input an Embedding reads: the smallest `input_dim` (its values are ids below it).
    let mut vocab: Vec<Option<usize>> = vec![None; inputs.len()];
    let known: Vec<&'static str> = catalog::REGISTRY.iter().map(|e| e.class).chain(MERGES.iter().copied()).collect();

    for stmt in &item.stmts {
        // A later `let` of a name shadows the earlier one, as in Rust (Keras code reassigns
        // `x = layers.Dense(64)(x)`): the call's arguments still see the earlier binding.
        let var = stmt.var.to_string();
        let callee = stmt.call.kind.to_string();
        let val = match vars.get(&callee).copied() {
            Some(Val::Layer(u)) => {
                if let Some((group, _)) = &stmt.apply {
                    diag.error(group, format!("`{callee}` is a layer already: call it on its inputs once, `{callee}(x)`"));
                    Val::Poison
                } else {
                    let args: Vec<&Expr> = stmt
                        .call
                        .args
                        .iter()
                        .filter_map(|a| match a.key() {
                            Some(k) => {
                                diag.error(
                                    a,
                                    format!("`{k} = ..` cannot be given when calling layer `{callee}`: give it where the layer is made"),
                                );
                                None
                            }
                            None => Some(&a.value),
                        })
                        .collect();
                    let at = stmt.call.to_token_stream();
                    apply(u, &args, &at, &stmt.var, &vars, &inputs, &mut vocab, &mut uniques, &mut nodes, diag)
                }
            }
            Some(Val::Tensor(_)) => {
                diag.error(&stmt.call.kind, format!("`{callee}` is a tensor, not a layer: call a layer on it, as in `Dense(8)({callee})`"));
                Val::Poison
            }
            Some(Val::Poison) => Val::Poison,
            None => match make(&stmt.call, &known, &mut names_seen, &mut counters, &mut uniques, diag) {
                None => Val::Poison,
                Some(u) => match &stmt.apply {
                    None => {
                        uniques[u].var = Some(var.clone());
                        Val::Layer(u)
                    }
                    Some((group, args)) => {
                        let args: Vec<&Expr> = args.iter().collect();
                        let mut at = stmt.call.to_token_stream();
                        group.to_tokens(&mut at);
                        apply(u, &args, &at, &stmt.var, &vars, &inputs, &mut vocab, &mut uniques, &mut nodes, diag)
                    }
                },
            },
        };
        vars.insert(var, val);
    }

    // The output.
    if item.outputs.len() != 1 {
        let mut at = item.arrow.to_token_stream();
        for o in &item.outputs {
            o.to_tokens(&mut at);
        }
        diag.error(at, format!("a functional! model has one output for now, found {}", item.outputs.len()));
        return None;
    }
    let out_ident = &item.outputs[0];
    let output = match vars.get(&out_ident.to_string()) {
        Some(Val::Tensor(Src::Node(j))) => Some(*j),
        Some(Val::Tensor(Src::Input(_))) => {
            diag.error(out_ident, format!("the output `{out_ident}` is an input: a model needs at least one layer between them"));
            None
        }
        Some(Val::Layer(_)) => {
            diag.error(out_ident, format!("the output `{out_ident}` is a layer, not a tensor: call it on a tensor and return the result"));
            None
        }
        Some(Val::Poison) => None,
        None => {
            diag.error(out_ident, format!("the output `{out_ident}` is not defined in the model's body"));
            None
        }
    };
    let output = output?;
    if diag.len() > errors_before {
        return None;
    }

    // Everything defined must lead to the output.
    let mut used_nodes = vec![false; nodes.len()];
    let mut used_inputs = vec![false; inputs.len()];
    let mut stack = vec![output];
    while let Some(j) = stack.pop() {
        if std::mem::replace(&mut used_nodes[j], true) {
            continue;
        }
        for s in &nodes[j].inputs {
            match *s {
                Src::Input(k) => used_inputs[k] = true,
                Src::Node(i) => stack.push(i),
            }
        }
    }
    for (k, used) in used_inputs.iter().enumerate() {
        if !used {
            diag.error(&inputs[k].0, format!("input `{}` is not used on the way to the output `{out_ident}`", inputs[k].0));
        }
    }
    for (j, used) in used_nodes.iter().enumerate() {
        if !used {
            diag.error(&nodes[j].var, format!("`{}` is computed but not used on the way to the output `{out_ident}`", nodes[j].var));
        }
    }
    for u in &uniques {
        if u.calls.is_empty() {
            diag.error(&u.at, format!("layer `{}` is never called", u.var.as_deref().unwrap_or(&u.name)));
        }
    }
    if diag.len() > errors_before {
        return None;
    }

    let order = keras_order(inputs.len(), &uniques, &nodes, output);
    let inputs: Vec<(Ident, Shape)> = inputs.into_iter().map(|(i, s)| s.map(|s| (i, s))).collect::<Option<_>>()?;
    let size = |w: &Weight| w.shape.iter().product::<usize>();
    let mut trainable = Count::known(uniques.iter().flat_map(|u| &u.weights).filter(|w| w.trainable).map(size).sum());
    let mut non_trainable = Count::known(uniques.iter().flat_map(|u| &u.weights).filter(|w| !w.trainable).map(size).sum());
    for c in uniques.iter().filter_map(|u| u.custom.as_ref()) {
        trainable = trainable.add(&c.trainable());
        non_trainable = non_trainable.add(&c.non_trainable());
    }
    let mut checked = FChecked { inputs, vocab, uniques, nodes, order, output, trainable, non_trainable, asserts: Vec::new() };
    if let Some((expected, attr)) = &item.params {
        let total = checked.trainable.add(&checked.non_trainable);
        checked.asserts.extend(crate::check::total_check(&total, *expected, attr, &item.name.to_string(), diag));
    }
    (diag.len() == errors_before).then_some(checked)
}

/// Makes the layer of a call: its arguments bound and checked, its name given.
fn make(
    call: &Call,
    known: &[&'static str],
    names_seen: &mut HashMap<String, TokenStream>,
    counters: &mut HashMap<String, usize>,
    uniques: &mut Vec<Unique>,
    diag: &mut Diag,
) -> Option<usize> {
    let class_name = call.kind.to_string();
    if class_name == "Input" {
        diag.error(call, "inputs are declared in the struct's parentheses, as in `struct Net(x: [784]) -> y { .. }`");
        return None;
    }
    let builtin = known.iter().find(|c| **c == class_name && call.path.is_none()).copied();
    let custom = builtin.is_none() && catalog::custom::Custom::is_candidate(call, known);
    let class: &'static str = match builtin {
        Some(class) => class,
        None if custom => Box::leak(class_name.clone().into_boxed_str()),
        None => {
            let hint = names::suggest(&class_name, known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            let own = catalog::custom::Custom::typo_hint(&class_name);
            diag.error(
                &call.kind,
                format!("unknown layer or layer variable `{class_name}`; {hint}the layers keras-rs knows are {}{own}", known.join(", ")),
            );
            return None;
        }
    };
    let (op, args_name, params_arg) = if custom {
        let (layer, args) = catalog::custom::Custom::build(call, diag);
        if let Some(a) = args.input {
            diag.error(a, "`in` is not used in functional!: a layer's input shape is the shape of the tensor it is called on");
        }
        (Op::Layer(Box::new(Layer::new(layer?))), args.name.map(|a| (&a.value, a.to_token_stream())), args.params.map(|a| a.value.clone()))
    } else if MERGES.contains(&class) {
        let signature: &[&str] = match class {
            "Concatenate" => &["axis"],
            "CustomScaleLayer" => &["scale"],
            _ => &[],
        };
        let args = bind(class, call, signature, signature.len(), true, diag);
        if let Some(a) = args.input {
            diag.error(a, "`in` is not used in functional!: a layer's input shape is the shape of the tensor it is called on");
        }
        let merge = if class == "Concatenate" {
            let axis = match args.values[0] {
                None => -1,
                Some(a) => match int(&a.value) {
                    Some(v) if v != 0 => v as i64,
                    _ => {
                        diag.error(
                            a,
                            format!("`axis` expects a non-zero integer (-1 for the last axis), found `{}`", a.value.to_token_stream()),
                        );
                        return None;
                    }
                },
            };
            Merge::Concatenate(axis)
        } else if class == "CustomScaleLayer" {
            match args.values[0] {
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
            }
        } else {
            Merge::Elementwise(class)
        };
        (Op::Merge(merge), args.name.map(|a| (&a.value, a.to_token_stream())), args.params.map(|a| a.value.clone()))
    } else {
        let (signature, positional) = Layer::signature(class);
        let args = bind(class, call, signature, positional, true, diag);
        if let Some(a) = args.input {
            diag.error(a, "`in` is not used in functional!: a layer's input shape is the shape of the tensor it is called on");
        }
        let mut layer = Layer::build(class, call, &args, diag);
        if let Some(td) = layer.as_mut().and_then(|l| l.downcast_mut::<TimeDistributed>()) {
            let given = td.inner_name.as_ref().map(|(value, at)| (value, at.clone()));
            td.name = name_from(given, td.inner.class(), counters, diag).unwrap_or_default();
        }
        // Keras makes the wrapped layer first: an unnamed one takes the class's next default name.
        if let Some(b) = layer.as_mut().and_then(|l| l.downcast_mut::<Bidirectional>())
            && !b.inner_named
        {
            b.inner_name = name_from(None, b.inner.kind.class(), counters, diag).unwrap_or_default();
        }
        let layer = layer?;
        (Op::Layer(Box::new(layer)), args.name.map(|a| (&a.value, a.to_token_stream())), args.params.map(|a| a.value.clone()))
    };
    let name_at = args_name.as_ref().map(|(_, at)| at.clone()).unwrap_or_else(|| call.to_token_stream());
    let name = name_from(args_name, class, counters, diag)?;
    if names_seen.contains_key(&name) {
        diag.error(
            name_at,
            format!("duplicate layer name `{name}`: an input or layer of this model is already named `{name}`; names must be unique"),
        );
        return None;
    }
    names_seen.insert(name.clone(), call.to_token_stream());
    let class = match &op {
        Op::Layer(l) => l.class(),
        Op::Merge(_) => class,
    };
    uniques.push(Unique {
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
    });
    Some(uniques.len() - 1)
}

/// Calls layer `u` on the tensors `args`: a new node, or `Poison` after an error.
#[allow(clippy::too_many_arguments)]
fn apply(
    u: usize,
    args: &[&Expr],
    at: &TokenStream,
    var: &Ident,
    vars: &HashMap<String, Val>,
    inputs: &[(Ident, Option<Shape>)],
    vocab: &mut [Option<usize>],
    uniques: &mut [Unique],
    nodes: &mut Vec<Node>,
    diag: &mut Diag,
) -> Val {
    let mut srcs = Vec::new();
    let mut shapes = Vec::new();
    let mut poisoned = false;
    for a in args {
        let Some(ident) = tensor_ident(a) else {
            diag.error(a, format!("expected a tensor's name, found `{}`", a.to_token_stream()));
            poisoned = true;
            continue;
        };
        match vars.get(&ident.to_string()) {
            Some(Val::Tensor(s)) => {
                let shape = match *s {
                    Src::Input(k) => inputs[k].1.clone(),
                    Src::Node(j) => Some(nodes[j].output.clone()),
                };
                match shape {
                    Some(shape) => {
                        srcs.push(*s);
                        shapes.push((ident, shape));
                    }
                    None => poisoned = true,
                }
            }
            Some(Val::Layer(_)) => {
                diag.error(ident, format!("`{ident}` is a layer, not a tensor"));
                poisoned = true;
            }
            Some(Val::Poison) => poisoned = true,
            None => {
                diag.error(ident, format!("`{ident}` is not defined: tensors are the model's inputs and earlier `let`s"));
                poisoned = true;
            }
        }
    }
    if poisoned {
        return Val::Poison;
    }
    let unique = &mut uniques[u];
    let (name, class) = (unique.name.clone(), unique.class);
    let index = nodes.len();
    let (output, runtime) = match &unique.op {
        Op::Merge(m) => {
            let output = match merge_shape(*m, class, &shapes) {
                Ok(o) => o,
                Err(msg) => {
                    diag.error(at, msg);
                    return Val::Poison;
                }
            };
            (output, None)
        }
        Op::Layer(layer) => {
            if shapes.len() != 1 {
                diag.error(at, format!("{class} `{name}` takes one input tensor, found {}", shapes.len()));
                return Val::Poison;
            }
            let (ident, input) = &shapes[0];
            if let Some(e) = layer.downcast_ref::<Embedding>() {
                match srcs[0] {
                    Src::Input(k) => vocab[k] = Some(vocab[k].map_or(e.input_dim, |v| v.min(e.input_dim))),
                    Src::Node(_) => {
                        diag.error(
                            ident,
                            format!("Embedding reads integer ids: call it on one of the model's inputs, not on `{ident}`, which a layer computes"),
                        );
                        return Val::Poison;
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
                return Val::Poison;
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
                    return Val::Poison;
                }
            }
            let output = match layer.output_shape(input) {
                Ok(o) => o,
                Err(msg) => {
                    diag.error(at, msg);
                    return Val::Poison;
                }
            };
            if unique.input.is_none() {
                let weights = layer.weights(input);
                let params = weights
                    .iter()
                    .try_fold(0usize, |acc, w| w.shape.iter().try_fold(1usize, |p, d| p.checked_mul(*d)).and_then(|n| acc.checked_add(n)));
                let Some(params) = params else {
                    diag.error(at, format!("{class} would have more parameters than this machine can address"));
                    return Val::Poison;
                };
                unique.custom = layer.custom(input);
                unique.checks = layer.checks(input);
                let params = match &unique.custom {
                    Some(c) => c.trainable().add(&c.non_trainable()),
                    None => Count::known(params),
                };
                if let Some(p) = &unique.params_arg {
                    unique.checks.extend(crate::check::params_check(&params, p, p, class, &name, diag));
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
    unique.calls.push(index);
    nodes.push(Node { unique: u, inputs: srcs, output, runtime, var: var.clone() });
    Val::Tensor(Src::Node(index))
}

/// A merge layer's output shape, or Keras's complaint.
fn merge_shape(m: Merge, class: &str, shapes: &[(&Ident, Shape)]) -> Result<Shape, String> {
    if shapes.len() < 2 {
        return Err(format!("{class} merges at least 2 tensors, found {}", shapes.len()));
    }
    let listed = || shapes.iter().map(|(i, s)| format!("`{i}` {}", fmt_shape(s))).collect::<Vec<_>>().join(", ");
    match m {
        Merge::Elementwise(op) => {
            if op == "Subtract" && shapes.len() != 2 {
                return Err(format!("Subtract takes exactly 2 tensors, found {}", shapes.len()));
            }
            if shapes.iter().any(|(_, s)| *s != shapes[0].1) {
                return Err(format!("{class} needs tensors of one shape, found {}", listed()));
            }
            Ok(shapes[0].1.clone())
        }
        Merge::Scale(_) => {
            if shapes.len() != 2 {
                return Err(format!("CustomScaleLayer takes exactly 2 tensors (`x + y * scale`), found {}", shapes.len()));
            }
            if shapes[0].1 != shapes[1].1 {
                return Err(format!("CustomScaleLayer needs tensors of one shape, found {}", listed()));
            }
            Ok(shapes[0].1.clone())
        }
        Merge::Concatenate(axis) => {
            let rank = shapes[0].1.len();
            let a = concat_axis(axis, rank).ok_or_else(|| {
                format!("Concatenate's axis {axis} is out of range for tensors of shape {} (rank {})", fmt_shape(&shapes[0].1), rank + 1)
            })?;
            let mut out = shapes[0].1.clone();
            for (_, s) in &shapes[1..] {
                let same_rest = s.len() == rank && s.iter().zip(&shapes[0].1).enumerate().all(|(d, (x, y))| d == a || x == y);
                if !same_rest {
                    return Err(format!(
                        "Concatenate needs tensors whose shapes match except along the concatenation axis {axis}, found {}",
                        listed()
                    ));
                }
                out[a] += s[a];
            }
            Ok(out)
        }
    }
}

/// A Keras axis (counting the batch axis as 0; negative from the end) as an index into a
/// per-sample shape of `rank` dimensions.
fn concat_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { rank as i64 + axis } else { axis - 1 };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

/// Keras's `model.layers` order (`keras.src.ops.function.map_graph`): by depth from the output,
/// deepest first, ties broken by the order a depth-first walk from the output first meets them.
fn keras_order(n_inputs: usize, uniques: &[Unique], nodes: &[Node], output: usize) -> Vec<Entry> {
    // Graph nodes: model inputs are 0..n_inputs, layer calls follow.
    let gid = |s: Src| match s {
        Src::Input(k) => k,
        Src::Node(j) => n_inputs + j,
    };
    let entry = |g: usize| if g < n_inputs { Entry::Input(g) } else { Entry::Unique(nodes[g - n_inputs].unique) };
    let parents =
        |g: usize| -> Vec<usize> { if g < n_inputs { Vec::new() } else { nodes[g - n_inputs].inputs.iter().map(|s| gid(*s)).collect() } };
    let total = n_inputs + nodes.len();
    let mut finished = vec![false; total];
    let mut post: Vec<usize> = Vec::new();
    let mut first_seen: HashMap<Entry, usize> = HashMap::new();
    fn walk(
        g: usize,
        finished: &mut [bool],
        post: &mut Vec<usize>,
        first_seen: &mut HashMap<Entry, usize>,
        entry: &dyn Fn(usize) -> Entry,
        parents: &dyn Fn(usize) -> Vec<usize>,
    ) {
        if finished[g] {
            return;
        }
        let n = first_seen.len();
        first_seen.entry(entry(g)).or_insert(n);
        for p in parents(g) {
            walk(p, finished, post, first_seen, entry, parents);
        }
        finished[g] = true;
        post.push(g);
    }
    walk(gid(Src::Node(output)), &mut finished, &mut post, &mut first_seen, &entry, &parents);
    let mut node_depth: HashMap<usize, usize> = HashMap::new();
    let mut op_depth: HashMap<Entry, usize> = HashMap::new();
    for &g in post.iter().rev() {
        let mut depth = *node_depth.entry(g).or_insert(0);
        depth = depth.max(op_depth.get(&entry(g)).copied().unwrap_or(0));
        op_depth.insert(entry(g), depth);
        node_depth.insert(g, depth);
        for p in parents(g) {
            let d = node_depth.get(&p).copied().unwrap_or(0).max(depth + 1);
            node_depth.insert(p, d);
        }
    }
    let mut order: Vec<Entry> = op_depth.keys().copied().collect();
    order.sort_by_key(|e| (std::cmp::Reverse(op_depth[e]), first_seen[e]));
    debug_assert_eq!(order.len(), n_inputs + uniques.len());
    order
}

/// The struct and its `Model` implementation for a checked graph.
fn expand(decl: &Decl<'_>, m: &FChecked) -> TokenStream {
    let bk = crate::expand::backend_param(decl);
    let cpu = quote!(::keras::Cpu);
    let b = quote!(<#bk as ::keras::backend::Device>);
    let n_in = m.inputs.len();
    let in_lens: Vec<usize> = m.inputs.iter().map(|(_, s)| s.iter().product()).collect();
    let in_offs: Vec<usize> = in_lens.iter().scan(0, |acc, l| Some(std::mem::replace(acc, *acc + l))).collect();
    let in_size: usize = in_lens.iter().sum();
    let input_shape = if n_in == 1 { m.inputs[0].1.clone() } else { vec![in_size] };
    let out_shape = &m.nodes[m.output].output;
    let out_size: usize = out_shape.iter().product();
    let out_dim = match out_shape.len() + 1 {
        r @ 2..=6 => {
            let ix = format_ident!("Ix{}", r);
            quote!(::keras::ndarray::#ix)
        }
        _ => quote!(::keras::ndarray::IxDyn),
    };
    let len = |j: usize| m.nodes[j].output.iter().product::<usize>();

    // Arena offsets, in Keras order.
    let mut arenas = Arenas::new(m.non_trainable.clone());
    let mut constant_specs = Vec::new();
    let zero = || (Count::known(0), Count::known(0));
    let mut ranges: Vec<((Count, Count), (Count, Count))> = vec![(zero(), zero()); m.uniques.len()];
    let mut weight_specs = Vec::new();
    let mut layer_specs = Vec::new();
    let mut layer_names = Vec::new();
    for e in &m.order {
        match *e {
            Entry::Input(k) => {
                let name = m.inputs[k].0.unraw().to_string();
                layer_specs.push(layer_spec(&name, "InputLayer", &m.inputs[k].1, &Count::known(0), None, &[]));
                layer_names.push(name);
            }
            Entry::Unique(u) => {
                let l = &m.uniques[u];
                let (activity, config, prefix) = match &l.op {
                    Op::Layer(layer) => {
                        let prefix = layer.downcast_ref::<TimeDistributed>().map(|td| td.name.as_str());
                        (layer.activity_regularizer(), layer.config(l.input.as_deref().unwrap_or(&[])), prefix)
                    }
                    Op::Merge(Merge::Scale(scale)) => (None, vec![quote!(("scale", ::keras::model::ConfigValue::Float(#scale)))], None),
                    Op::Merge(_) => (None, Vec::new(), None),
                };
                ranges[u] = match &l.custom {
                    Some(c) => arenas.place_custom(&l.name, c, &mut weight_specs),
                    None => arenas.place(&l.name, prefix, &l.weights, &l.constants, &mut weight_specs, &mut constant_specs),
                };
                layer_specs.push(layer_spec(&l.name, l.class, l.output.as_deref().unwrap_or(&[]), &l.params, activity.as_ref(), &config));
                layer_names.push(l.name.clone());
            }
        }
    }
    // A layer's trainable floats: known, or a custom layer's, counted by rustc.
    let plen_of = |u: usize| -> Count {
        match &m.uniques[u].custom {
            Some(c) => c.trainable(),
            None => Count::known(ranges[u].0.1.known - ranges[u].0.0.known),
        }
    };
    // The calls, as `Model::NODES`: layers by their index in `LAYERS`.
    let index_of = |e: Entry| m.order.iter().position(|o| *o == e).expect("every input and layer is in the order");
    let node_specs: Vec<TokenStream> = m
        .nodes
        .iter()
        .map(|n| {
            let layer = index_of(Entry::Unique(n.unique));
            let inputs = n.inputs.iter().map(|s| {
                let (l, call) = match *s {
                    Src::Input(k) => (index_of(Entry::Input(k)), 0usize),
                    Src::Node(j) => {
                        let u = m.nodes[j].unique;
                        (
                            index_of(Entry::Unique(u)),
                            m.uniques[u].calls.iter().position(|&c| c == j).expect("a node is a call of its layer"),
                        )
                    }
                };
                quote!((#l, #call))
            });
            let output = usizes(&n.output);
            quote!(::keras::model::NodeSpec { layer: #layer, inputs: &[#(#inputs),*], output: #output })
        })
        .collect();

    // Workspace slots: inputs split out of the batch (several inputs), each call's output and
    // scratch, then each call's output gradient and (when several calls consume it) a second
    // gradient buffer to sum into it.
    let mut slot_sizes: Vec<TokenStream> = Vec::new();
    let mut push = |size: TokenStream| {
        slot_sizes.push(size);
        format_ident!("s{}", slot_sizes.len() - 1)
    };
    // A batch's inputs lie one after the other in `x`; they get slots of their own when an
    // elementwise merge reads one (its tensors are one slice of views, which `x` cannot join).
    let split = m
        .nodes
        .iter()
        .any(|n| matches!(m.uniques[n.unique].op, Op::Merge(Merge::Elementwise(_))) && n.inputs.iter().any(|s| matches!(s, Src::Input(_))));
    let in_slots: Vec<Ident> = if split { in_lens.iter().map(|l| push(quote!(#l))).collect() } else { Vec::new() };
    let mut out_slots = Vec::new();
    let mut scratch_slots = Vec::new();
    for (j, n) in m.nodes.iter().enumerate() {
        let l = len(j);
        out_slots.push(push(quote!(#l)));
        scratch_slots.push(match &n.runtime {
            Some(rt) => {
                let (ty, r) = (&rt.ty, rt.rows_per_sample);
                push(quote!((<#ty>::SCRATCH * #r)))
            }
            None => push(quote!(0usize)),
        });
    }
    let mut consumers = vec![0usize; m.nodes.len()];
    for n in &m.nodes {
        for s in &n.inputs {
            if let Src::Node(i) = s {
                consumers[*i] += 1;
            }
        }
    }
    let mut grad_slots = Vec::new();
    let mut temp_slots = Vec::new();
    for (j, &c) in consumers.iter().enumerate() {
        let l = len(j);
        grad_slots.push(push(quote!(#l)));
        temp_slots.push((c > 1).then(|| push(quote!(#l))));
    }
    let n_slots = slot_sizes.len();
    let slot_idents: Vec<Ident> = (0..n_slots).map(|i| format_ident!("s{}", i)).collect();

    let view = |s: Src| match s {
        Src::Input(_) if !split && n_in == 1 => quote!(#b::shorten(&x)),
        Src::Input(k) if !split => {
            let (l, off) = (in_lens[k], in_offs[k]);
            quote!(#b::sub(#b::shorten(&x), batch * #off..batch * (#off + #l)))
        }
        Src::Input(k) => {
            let (slot, l) = (&in_slots[k], in_lens[k]);
            quote!(#b::view(#slot, 0..batch * #l))
        }
        Src::Node(i) => {
            let (slot, l) = (&out_slots[i], len(i));
            quote!(#b::view(#slot, 0..batch * #l))
        }
    };

    let mut forward = Vec::new();
    let mut checks = Vec::new();
    let mut activity_specs = Vec::new();
    for k in 0..n_in {
        if split {
            let (slot, l, off) = (&in_slots[k], in_lens[k], in_offs[k]);
            forward.push(quote!(#b::copy(ctx.device, #b::sub(x, batch * #off..batch * (#off + #l)), #b::view_mut(#slot, 0..batch * #l));));
        }
    }
    for (j, n) in m.nodes.iter().enumerate() {
        let u = &m.uniques[n.unique];
        let (out, scratch, l) = (&out_slots[j], &scratch_slots[j], len(j));
        match (&u.op, &n.runtime) {
            (Op::Layer(layer), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let (ty, r, iw, ow) = (&rt.ty, rt.rows_per_sample, rt.in_width, rt.out_width);
                let plen = plen_of(n.unique);
                if u.calls.first() == Some(&j) {
                    checks.extend(u.checks.iter().cloned());
                }
                if u.custom.is_none() {
                    checks.push(quote!(::core::assert!(<#ty>::PARAMS == #plen);));
                }
                let xv = view(n.inputs[0]);
                forward.push(forward_call(
                    &quote!(#bk),
                    rt,
                    quote!(#b::view(params, #p0..#p1)),
                    quote!(#b::view_mut(state, #s0..#s1)),
                    quote!(::keras::layers::Rows::<#bk, #iw>::new(#xv, batch * #r)),
                    quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#out), batch * #r)),
                    quote!(::keras::model::all_mut::<#bk>(#scratch)),
                    quote!(training),
                ));
                if let Some(reg) = layer.activity_regularizer() {
                    let slot = slot_index(&out_slots[j]);
                    activity_specs.push(quote!(::keras::model::Activity { slot: #slot, len: #l, regularizer: #reg }));
                }
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                let xs = n.inputs.iter().map(|s| view(*s));
                forward.push(quote!(ctx.device.merge(::keras::backend::MergeOp::#op, &[#(#xs),*], #b::view_mut(#out, 0..batch * #l));));
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                // The inputs as exactly the batch's floats (a model input's view is all of `x`).
                let (x, y) = (view(n.inputs[0]), view(n.inputs[1]));
                let (x, y) = (quote!(#b::sub(#x, 0..batch * #l)), quote!(#b::sub(#y, 0..batch * #l)));
                forward.push(quote! {
                    #b::copy(ctx.device, #y, #b::view_mut(#out, 0..batch * #l));
                    #b::scale(ctx.device, #b::view_mut(#out, 0..batch * #l), #scale);
                    #b::add(ctx.device, #x, #b::view_mut(#out, 0..batch * #l));
                });
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    let xv = view(s);
                    let c = copy_cols(quote!(batch * #outer), w, (w, 0), (total, off));
                    forward.push(quote!(ctx.device.copy_cols(&#c, #xv, #b::view_mut(#out, 0..batch * #l));));
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
        }
    }

    // Backward, from the output: the first consumer of a tensor (in this order) writes its
    // gradient, later ones write the second buffer and add it; the same for a shared layer's
    // weight gradients, through the model's gradient scratch.
    // A tensor needs its gradient only when trainable weights lie behind it (the first layer's
    // input gradient, or a branch of merges on the inputs, is not computed).
    let mut needs = vec![false; m.nodes.len()];
    for (j, n) in m.nodes.iter().enumerate() {
        // A custom layer's weights are counted by rustc: it may have some.
        let weighted = plen_of(n.unique).value() != Some(0);
        needs[j] = weighted || n.inputs.iter().any(|s| matches!(s, Src::Node(i) if needs[*i]));
    }
    let mut backward = Vec::new();
    let mut written = vec![false; m.nodes.len()];
    let mut weights_written = vec![false; m.uniques.len()];
    let mut grad_scratch = 0usize;
    let mut grad_scratch_custom: Vec<TokenStream> = Vec::new();
    for j in (0..m.nodes.len()).rev() {
        let n = &m.nodes[j];
        let u = &m.uniques[n.unique];
        let (out, scratch, grad, l) = (&out_slots[j], &scratch_slots[j], &grad_slots[j], len(j));
        // Where the gradient for input `s` goes, and what adds it afterwards.
        let mut target = |s: Src| -> Option<(Ident, usize, TokenStream)> {
            let Src::Node(i) = s else { return None };
            if !needs[i] {
                return None;
            }
            let li = len(i);
            if std::mem::replace(&mut written[i], true) {
                let (t, g) = (temp_slots[i].clone().expect("a tensor with several consumers has a second buffer"), &grad_slots[i]);
                let add = quote!(#b::add(ctx.device, #b::view(#t, 0..batch * #li), #b::view_mut(#g, 0..batch * #li)););
                Some((t, li, add))
            } else {
                Some((grad_slots[i].clone(), li, quote!()))
            }
        };
        match (&u.op, &n.runtime) {
            (Op::Layer(layer), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let plen = plen_of(n.unique);
                let (r, iw, ow) = (rt.rows_per_sample, rt.in_width, rt.out_width);
                let dx_target = target(n.inputs[0]);
                if plen.value() == Some(0) && dx_target.is_none() {
                    continue;
                }
                if let Some(reg) = layer.activity_regularizer() {
                    backward.push(quote! {
                        ctx.device.regularize(
                            &#reg.scaled(1.0 / batch as f32),
                            #b::view(#out, 0..batch * #l),
                            ::core::option::Option::Some(#b::view_mut(#grad, 0..batch * #l)),
                            0.0,
                            ::core::option::Option::None,
                        );
                    });
                }
                let xv = view(n.inputs[0]);
                let (dw, after_w) = if std::mem::replace(&mut weights_written[n.unique], true) && plen.value() != Some(0) {
                    match plen.value() {
                        Some(p) => grad_scratch = grad_scratch.max(p),
                        None => grad_scratch_custom.push(quote!(#plen)),
                    }
                    (
                        quote!(#b::view_mut(grad_scratch, 0..#plen)),
                        quote!(#b::add(ctx.device, #b::view(grad_scratch, 0..#plen), #b::view_mut(grads, #p0..#p1));),
                    )
                } else {
                    (quote!(#b::view_mut(grads, #p0..#p1)), quote!())
                };
                let (dx, after_x) = match dx_target {
                    None => (quote!(::core::option::Option::None::<::keras::layers::RowsMut<'_, #bk, #iw>>), quote!()),
                    Some((t, _, add)) => (
                        quote!(::core::option::Option::Some(::keras::layers::RowsMut::<#bk, #iw>::new(::keras::model::all_mut::<#bk>(#t), batch * #r))),
                        add,
                    ),
                };
                let call = backward_call(
                    rt,
                    [
                        quote!(#b::view(params, #p0..#p1)),
                        dw,
                        quote!(#b::view(state, #s0..#s1)),
                        quote!(::keras::layers::Rows::<#bk, #iw>::new(#xv, batch * #r)),
                        quote!(::keras::layers::Rows::<#bk, #ow>::new(::keras::model::all::<#bk>(#out), batch * #r)),
                        quote!(::keras::model::all_mut::<#bk>(#scratch)),
                        quote!(::keras::layers::RowsMut::<#bk, #ow>::new(::keras::model::all_mut::<#bk>(#grad), batch * #r)),
                        dx,
                    ],
                );
                backward.push(quote! {
                    #call
                    #after_w
                    #after_x
                });
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                for (p, s) in n.inputs.iter().enumerate() {
                    let Some((t, li, add)) = target(*s) else { continue };
                    let xs = n.inputs.iter().map(|s| view(*s));
                    backward.push(quote! {
                        ctx.device.merge_backward(
                            ::keras::backend::MergeOp::#op,
                            #p,
                            &[#(#xs),*],
                            #b::view(#out, 0..batch * #l),
                            #b::view(#grad, 0..batch * #l),
                            #b::view_mut(#t, 0..batch * #li),
                        );
                        #add
                    });
                }
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                for (p, s) in n.inputs.iter().enumerate() {
                    let Some((t, li, add)) = target(*s) else { continue };
                    let scaled = (p == 1).then(|| quote!(#b::scale(ctx.device, #b::view_mut(#t, 0..batch * #li), #scale);));
                    backward.push(quote! {
                        #b::copy(ctx.device, #b::view(#grad, 0..batch * #l), #b::view_mut(#t, 0..batch * #li));
                        #scaled
                        #add
                    });
                }
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    if let Some((t, li, add)) = target(s) {
                        let c = copy_cols(quote!(batch * #outer), w, (total, off), (w, 0));
                        backward.push(quote! {
                            ctx.device.copy_cols(&#c, #b::view(#grad, 0..batch * #l), #b::view_mut(#t, 0..batch * #li));
                            #add
                        });
                    }
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
        }
    }

    // One sample on the CPU, activations in the per-thread buffer; inputs read in place.
    let in_locals: Vec<Ident> = (0..n_in).map(|k| format_ident!("__input_{}", k)).collect();
    let mut infer_buffers = Vec::new();
    let mut infer_sizes = Vec::new();
    let mut infer = Vec::new();
    let one = |s: Src| match s {
        Src::Input(k) => {
            let i = &in_locals[k];
            quote!(&#i[..])
        }
        Src::Node(i) => {
            let a = format_ident!("a{}", i);
            quote!(&#a[..])
        }
    };
    for (j, n) in m.nodes.iter().enumerate() {
        let u = &m.uniques[n.unique];
        let (a, sc, l) = (format_ident!("a{}", j), format_ident!("scratch{}", j), len(j));
        let scratch_size = match &n.runtime {
            Some(rt) => {
                let (ty, r) = (&rt.ty, rt.rows_per_sample);
                quote!((<#ty>::SCRATCH * #r))
            }
            None => quote!(0usize),
        };
        infer_sizes.push(quote!(#l + #scratch_size));
        infer_buffers.push(quote! {
            let (#a, buf) = buf.split_at_mut(#l);
            let (#sc, buf) = buf.split_at_mut(#scratch_size);
        });
        match (&u.op, &n.runtime) {
            (Op::Layer(_), Some(rt)) => {
                let ((p0, p1), (s0, s1)) = &ranges[n.unique];
                let (r, iw, ow) = (rt.rows_per_sample, rt.in_width, rt.out_width);
                let xv = one(n.inputs[0]);
                infer.push(forward_call(
                    &cpu,
                    rt,
                    quote!(&params[#p0..#p1]),
                    quote!(&mut state[#s0..#s1]),
                    quote!(::keras::layers::Rows::<#cpu, #iw>::new(#xv, #r)),
                    quote!(::keras::layers::RowsMut::<#cpu, #ow>::new(&mut #a[..], #r)),
                    quote!(&mut #sc[..]),
                    quote!(false),
                ));
            }
            (Op::Merge(Merge::Elementwise(op)), _) => {
                let op = format_ident!("{}", op);
                let xs = n.inputs.iter().map(|s| one(*s));
                infer.push(quote!(::keras::backend::LayoutOps::merge(&cpu, ::keras::backend::MergeOp::#op, &[#(#xs),*], &mut #a[..]);));
            }
            (Op::Merge(Merge::Scale(scale)), _) => {
                let scale = *scale as f32;
                let (x, y) = (one(n.inputs[0]), one(n.inputs[1]));
                infer.push(quote! {
                    ::keras::backend::Device::copy(&cpu, #y, &mut #a[..]);
                    ::keras::backend::Device::scale(&cpu, &mut #a[..], #scale);
                    ::keras::backend::Device::add(&cpu, #x, &mut #a[..]);
                });
            }
            (Op::Merge(Merge::Concatenate(axis)), _) => {
                let (outer, total, parts) = concat_layout(m, n, *axis);
                for (s, w, off) in parts {
                    let xv = one(s);
                    let c = copy_cols(quote!(#outer), w, (w, 0), (total, off));
                    infer.push(quote!(::keras::backend::LayoutOps::copy_cols(&cpu, &#c, #xv, &mut #a[..]);));
                }
            }
            (Op::Layer(_), None) => unreachable!("a layer call has a runtime"),
        }
    }
    let last = format_ident!("a{}", m.output);
    let doc_inputs = m.inputs.iter().map(|(i, s)| format!("`{i}` {}", fmt_shape(s))).collect::<Vec<_>>().join(", ");
    let doc = format!(
        " Runs one sample ({doc_inputs}) through the model on the CPU (inference mode), without allocating after the first call on a thread: activations live in a per-thread buffer that is reused."
    );
    let body = infer_body(&arenas.state_len(), &infer_sizes, &infer_buffers, &infer, &last, out_size);
    // An input an Embedding reads takes ids, `&[i32; N]`, checked: `predict_one` then returns a
    // `Result`.
    let any_ids = m.vocab.iter().any(Option::is_some);
    let params = m.inputs.iter().zip(&in_lens).zip(&m.vocab).map(|(((i, _), l), v)| match v {
        Some(_) => quote!(#i: &[i32; #l]),
        None => quote!(#i: &[f32; #l]),
    });
    let locals = m.inputs.iter().zip(&in_locals).zip(in_lens.iter().zip(&m.vocab)).map(|(((i, _), local), (l, v))| match v {
        None => quote!(let #local = #i;),
        Some(vocab) => {
            let name = i.unraw().to_string();
            quote! {
                let mut #local = [0f32; #l];
                for (i, (&id, v)) in #i.iter().zip(#local.iter_mut()).enumerate() {
                    if id < 0 || id as usize >= #vocab {
                        return ::core::result::Result::Err(::keras::Error::value(
                            ::std::format!("`{}` token id at position {}", #name, i),
                            ::std::format!("an integer in [0, {}) (the Embedding's input_dim is {})", #vocab, #vocab),
                            id,
                        ));
                    }
                    *v = id as f32;
                }
            }
        }
    });
    let predict_one = if any_ids {
        let doc = format!("{doc} An id outside an Embedding's `[0, input_dim)` is an error naming its input and position.");
        quote! {
            #[doc = #doc]
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one(&self, #(#params),*) -> ::keras::Result<[f32; #out_size]> {
                #(#locals)*
                ::core::result::Result::Ok({ #body })
            }
        }
    } else {
        // The checked form over slices: each input's length, then its values.
        let slice_params = m.inputs.iter().map(|(i, _)| quote!(#i: &[f32]));
        let checks = m.inputs.iter().zip(&in_lens).map(|((i, s), l)| {
            let what = format!("predict_one_slice: input `{}`", i.unraw());
            let shape = format!("{l} values (one sample of {})", fmt_shape(s));
            quote! {
                let #i: &[f32; #l] = #i.try_into().map_err(|_| ::keras::Error::value(#what, #shape, ::std::format!("{} values", #i.len())))?;
                if let ::core::option::Option::Some((index, &value)) = #i.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return ::core::result::Result::Err(::keras::Error::NonFinite { what: #what.into(), value, index });
                }
            }
        });
        let names = m.inputs.iter().map(|(i, _)| i);
        quote! {
            #[doc = #doc]
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one(&self, #(#params),*) -> [f32; #out_size] {
                #(#locals)*
                #body
            }

            /// `predict_one` of a sample given as one slice per input, each flat in row-major
            /// order (a `Vec`, an image's pixels): an error, not a panic, when a length is not
            /// its input's size, and a NaN or infinity is refused as `predict` refuses it.
            #[allow(non_snake_case)]
            #[inline]
            pub fn predict_one_slice(&self, #(#slice_params),*) -> ::keras::Result<[f32; #out_size]> {
                #(#checks)*
                ::core::result::Result::Ok(self.predict_one(#(#names),*))
            }
        }
    };

    let inputs = (n_in > 1).then(|| {
        m.inputs
            .iter()
            .zip(&m.vocab)
            .map(|((i, s), v)| {
                let (name, shape) = (i.unraw().to_string(), usizes(s));
                let indices = match v {
                    Some(n) => quote!(::core::option::Option::Some(#n)),
                    None => quote!(::core::option::Option::None),
                };
                quote!(::keras::model::InputSpec { name: #name, shape: #shape, indices: #indices })
            })
            .collect()
    });
    let e = Emit {
        params: m.trainable.add(&m.non_trainable),
        trainable: m.trainable.clone(),
        non_trainable: m.non_trainable.clone(),
        input: usizes(&input_shape),
        output: usizes(out_shape),
        in_size,
        out_size,
        out_dim,
        layer_names,
        input_element: if n_in == 1 && m.vocab[0].is_some() { quote!(i32) } else { quote!(f32) },
        input_indices: match m.vocab[0] {
            Some(n) if n_in == 1 => quote!(::core::option::Option::Some(#n)),
            _ => quote!(::core::option::Option::None),
        },
        predict_one,
        layer_specs,
        weight_specs,
        constants: constant_specs,
        slot_sizes,
        output_slot: slot_index(&out_slots[m.output]),
        output_grad_slot: slot_index(&grad_slots[m.output]),
        checks,
        n_slots,
        slot_idents,
        forward,
        backward,
        activity: activity_specs,
        grad_scratch: if grad_scratch_custom.is_empty() {
            Count::known(grad_scratch)
        } else {
            Count {
                known: 0,
                terms: vec![
                    quote!({ let mut most = #grad_scratch; #(if #grad_scratch_custom > most { most = #grad_scratch_custom; })* most }),
                ],
            }
        },
        nodes: Some(node_specs),
        inputs,
    };
    emit(decl, &e)
}

/// How `Concatenate` along `axis` lays out node `n`'s inputs: rows per sample (the axes before
/// `axis`), the output's row width, and each input with its row width and offset in the row.
fn concat_layout(m: &FChecked, n: &Node, axis: i64) -> (usize, usize, Vec<(Src, usize, usize)>) {
    let a = concat_axis(axis, n.output.len()).expect("checked");
    let outer: usize = n.output[..a].iter().product();
    let total: usize = n.output[a..].iter().product();
    let mut off = 0usize;
    let parts = n
        .inputs
        .iter()
        .map(|&s| {
            let w = src_len(m, s) / outer;
            off += w;
            (s, w, off - w)
        })
        .collect();
    (outer, total, parts)
}

/// Floats per sample of a tensor.
fn src_len(m: &FChecked, s: Src) -> usize {
    match s {
        Src::Input(k) => m.inputs[k].1.iter().product(),
        Src::Node(j) => m.nodes[j].output.iter().product(),
    }
}

/// The index of slot identifier `sN`.
fn slot_index(slot: &Ident) -> usize {
    slot.to_string()[1..].parse().expect("slot identifiers are s<index>")
}

/// A `CopyCols` descriptor: `width` floats per row of `rows` (tokens), from `(width, offset)` of
/// the source rows to `(width, offset)` of the destination rows.
fn copy_cols(rows: TokenStream, width: usize, (src_width, src_off): (usize, usize), (dst_width, dst_off): (usize, usize)) -> TokenStream {
    quote!(::keras::backend::CopyCols { rows: #rows, width: #width, src_width: #src_width, src_off: #src_off, dst_width: #dst_width, dst_off: #dst_off })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors(tokens: TokenStream) -> Vec<String> {
        let items = syn::parse2::<Items>(tokens).expect("parses");
        let mut diag = Diag::default();
        for item in &items.0 {
            check(item, &mut diag);
        }
        diag.messages()
    }

    #[test]
    fn keras_orders_layers_by_depth() {
        let items = syn::parse2::<Items>(quote! {
            struct Net(a: [6], b: [3], meta: [2]) -> out {
                let enc = Dense(4, name = "enc");
                let x = enc(a);
                let m = Dense(3, name = "m")(meta);
                let y = Dense(4, name = "by")(b);
                let j = Concatenate(name = "j")(x, y, m);
                let out = Dense(1, name = "out")(j);
            }
        })
        .unwrap();
        let mut diag = Diag::default();
        let c = check(&items.0[0], &mut diag).expect("checks");
        let names: Vec<String> = c
            .order
            .iter()
            .map(|e| match e {
                Entry::Input(k) => c.inputs[*k].0.to_string(),
                Entry::Unique(u) => c.uniques[*u].name.clone(),
            })
            .collect();
        // As Keras 3.15 lists `model.layers` for this graph.
        assert_eq!(names, ["a", "b", "meta", "enc", "by", "m", "j", "out"]);
    }

    #[test]
    fn graph_mistakes_are_reported_in_keras_words() {
        let e = errors(quote! {
            struct Net(a: [6], b: [3]) -> out {
                let s = Add()(a, b);
                let out = Dense(1)(s);
            }
        });
        assert_eq!(e, ["Add needs tensors of one shape, found `a` (None, 6), `b` (None, 3)"]);
        let e = errors(quote! {
            struct Net(a: [6], b: [3]) -> out {
                let d = Dense(4);
                let x = d(a);
                let y = d(b);
                let out = Add()(x, y);
            }
        });
        assert_eq!(e, ["layer `dense` was first called on a tensor of shape (None, 6); `b` is (None, 3), which its weights do not fit"]);
        let e = errors(quote! {
            struct Net(a: [6], unused: [3]) -> out {
                let h = Dense(4)(a);
                let dead = Dense(2)(h);
                let out = Dense(1)(h);
            }
        });
        assert_eq!(
            e,
            ["input `unused` is not used on the way to the output `out`", "`dead` is computed but not used on the way to the output `out`"]
        );
        let e = errors(quote! {
            struct Net(a: [6]) -> out {
                let out = Dense(1)(a, a);
            }
        });
        assert_eq!(e, ["Dense `dense` takes one input tensor, found 2"]);
        let e = errors(quote! {
            struct Net(a: [4, 6], b: [5, 6]) -> out {
                let c = Concatenate(axis = -1)(a, b);
                let out = Dense(1)(c);
            }
        });
        assert_eq!(
            e,
            [
                "Concatenate needs tensors whose shapes match except along the concatenation axis -1, found `a` (None, 4, 6), `b` (None, 5, 6)"
            ]
        );
        let e = errors(quote! {
            struct Net(a: [4]) -> out {
                let out = Dense(1)(b);
            }
        });
        assert_eq!(e, ["`b` is not defined: tensors are the model's inputs and earlier `let`s"]);
    }

    #[test]
    fn concatenation_axes_count_the_batch_axis() {
        assert_eq!(concat_axis(-1, 2), Some(1));
        assert_eq!(concat_axis(1, 2), Some(0));
        assert_eq!(concat_axis(2, 2), Some(1));
        assert_eq!(concat_axis(3, 2), None);
        assert_eq!(concat_axis(-3, 2), None);
    }
}
