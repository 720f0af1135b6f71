//! The macros' front ends. Each lowers its grammar to the one graph ([`crate::graph::Graph`])
//! through the one checker ([`crate::check::Checker`]), and the one expander
//! ([`crate::expand::expand`]) writes the model:
//!
//! - `sequential!`: a chain is the simplest graph. Its input is `Input(..)` or the first
//!   layer's `in = ..`, each layer is called once on the previous layer's output, and the
//!   chain's own rules (`Input` first, an `Embedding` first, no merges) are checked here.
//! - `functional!`: named inputs and a body of `let`s. A layer bound to a name
//!   (`let enc = Dense(64, relu);`) keeps one set of weights however often it is called; merge
//!   layers (`Add`, `Concatenate`, ..) join tensors; a later `let` of a name shadows the earlier
//!   one, as in Rust; everything computed must lead to the output.

use crate::catalog::{self, Layer, Shape, bind, fmt_shape};
use crate::check::{Checker, Dialect};
use crate::diag::Diag;
use crate::expand::{Decl, expand, snake_case, stub};
use crate::graph::{Graph, MERGES, Src};
use crate::nest::{self, Resolved};
use crate::parse::{Chain, FItem, Input, Items, parse};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote};
use std::collections::HashMap;
use syn::Attribute;
use syn::{Expr, Visibility};

/// `sequential!`: parse, check, expand; every error becomes a spanned `compile_error!`.
pub fn sequential_macro(tokens: TokenStream) -> TokenStream {
    let (pre, rest) = match nest::preamble(tokens.clone()) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error(),
    };
    if let Some(call) = nest::callback("sequential", &pre, &tokens) {
        return call;
    }
    let models = pre.models();
    let input = match parse(rest.clone()) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    match input {
        Input::Items(items) => items
            .iter()
            .zip(nest::split_items(rest, false))
            .map(|(item, raw)| {
                let mut diag = Diag::default();
                for e in &item.bad_params {
                    diag.push(e.clone());
                }
                let name = snake_case(&item.name.to_string());
                let graph = sequential(&item.chain, item.params.as_ref(), &item.name.to_string(), &mut diag, &models);
                let decl = Decl { attrs: &item.attrs, vis: &item.vis, ident: &item.name, name };
                let model = finish(&decl, graph, &diag);
                let export = nest::export(&item.name, "sequential", &pre.raw, &raw);
                quote!(#model #export)
            })
            .collect(),
        Input::Expr(chain) => {
            let mut diag = Diag::default();
            let ident = Ident::new("Sequential", Span::call_site());
            let vis = Visibility::Inherited;
            let decl = Decl { attrs: &[], vis: &vis, ident: &ident, name: "sequential".to_string() };
            let graph = sequential(&chain, None, "sequential", &mut diag, &models);
            let body = finish(&decl, graph, &diag);
            quote!({
                #body
                #ident::<::keras::Cpu>::new(&::keras::Cpu::new())
            })
        }
    }
}

/// `functional!`: parse, check, expand; every error becomes a spanned `compile_error!`.
pub fn functional_macro(tokens: TokenStream) -> TokenStream {
    functional_as(tokens, None)
}

/// [`functional_macro`], the model named `keras_name` in Keras terms (its `summary()` title and
/// its files' `name`) instead of its struct's name in snake case: `application!` names a
/// ResNet50 `resnet50` as Keras does.
pub fn functional_as(tokens: TokenStream, keras_name: Option<&str>) -> TokenStream {
    let (pre, rest) = match nest::preamble(tokens.clone()) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error(),
    };
    if let Some(call) = nest::callback("functional", &pre, &tokens) {
        return call;
    }
    let models = pre.models();
    let items = match syn::parse2::<Items>(rest.clone()) {
        Ok(i) => i.0,
        Err(e) => return e.to_compile_error(),
    };
    items
        .iter()
        .zip(nest::split_items(rest, true))
        .map(|(item, raw)| {
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
            let graph = functional(item, &mut diag, &models);
            let model = finish(&decl, graph, &diag);
            // The applications (`keras_name`) are no models a user's macro brings in by `use`.
            let export = if keras_name.is_none() { nest::export(&item.name, "functional", &pre.raw, &raw) } else { TokenStream::new() };
            quote!(#model #export)
        })
        .collect()
}

/// The model, or its errors beside a stub of it (so that code using it reports no more).
fn finish(decl: &Decl<'_>, graph: Option<Graph>, diag: &Diag) -> TokenStream {
    match graph {
        Some(g) if diag.is_empty() => expand(decl, &g),
        _ => {
            let errors = diag.to_compile_errors();
            let stub = stub(decl);
            quote!(#errors #stub)
        }
    }
}

/// Where a chain's current tensor came from, for messages.
enum Source {
    Input,
    Layer(String),
}

/// A `sequential!` chain as a graph; `None` if anything is wrong (the errors are in `diag`).
/// After an error that leaves a shape unknown, later layers are still checked for their own
/// mistakes, but not for shapes that follow from the first one.
pub fn sequential(
    chain: &Chain,
    params_attr: Option<&(u128, Attribute)>,
    model: &str,
    diag: &mut Diag,
    models: &[Resolved],
) -> Option<Graph> {
    let mut c = Checker::new(Dialect::Sequential, diag);
    c.bring(models);
    // Keras's Sequential input is no layer: it has no name among the layers'.
    let x = Ident::new("x", Span::call_site());
    let mut tensor: Option<Src> = None;
    let mut source = Source::Input;
    // Set once an error leaves the shape unknown: later shape checks would only repeat it.
    let mut lost = false;
    let mut real_layers = 0;
    let mut applied = 0;
    for (i, call) in chain.calls.iter().enumerate() {
        let class_name = call.kind.to_string();
        if MERGES.contains(&class_name.as_str()) {
            diag.error(
                &call.kind,
                format!("{class_name} merges several tensors, which a Sequential model cannot: use it in `functional!`"),
            );
            lost = true;
            tensor = None;
            continue;
        }
        if class_name == "Input" && call.path.is_none() {
            let (signature, positional) = Layer::signature("Input");
            let args = bind("Input", call, signature, positional, false, diag);
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
                Some(s) => tensor = Some(c.input(&x, Some(s), false)),
                None => lost = true,
            }
            continue;
        }
        let embedding = class_name == "Embedding" && call.path.is_none();
        if embedding && real_layers > 0 {
            let after = match &source {
                Source::Layer(n) => format!(" `{n}`"),
                Source::Input => String::new(),
            };
            diag.error(
                &call.kind,
                format!("Embedding must be the model's first layer: it reads integer ids, and the layer{after} before it outputs floats"),
            );
        }
        let Some(built) = c.build(call, diag) else {
            lost = true;
            tensor = None;
            continue;
        };
        real_layers += 1;
        let class = built.class;
        if let Some(a) = built.args.input
            && let Some(s) = catalog::shape(&a.value, "`in`", diag)
        {
            match (tensor.and_then(|t| c.shape(t)).cloned(), &source) {
                (None, _) if !lost && applied == 0 && c.inputs.is_empty() => tensor = Some(c.input(&x, Some(s), false)),
                (Some(cur), src) if cur != s => {
                    let from = match src {
                        Source::Input => format!("the model's input is {}", fmt_shape(&cur)),
                        Source::Layer(n) => format!("the previous layer `{n}` outputs {}", fmt_shape(&cur)),
                    };
                    diag.error(a, format!("{class} expects input shape {}, but {from}", fmt_shape(&s)));
                }
                _ => {}
            }
        }
        if tensor.is_none() && !lost {
            diag.error(
                call,
                format!(
                    "the first layer needs an input shape: put `Input(..)` before it, or give it `in = ..`, as in `{class}(.., in = 784)`"
                ),
            );
            lost = true;
        }
        let Some(made) = c.name(built, i, diag) else {
            lost = true;
            tensor = None;
            continue;
        };
        let (Some(u), Some(t)) = (made.unique, tensor) else {
            lost = true;
            tensor = None;
            continue;
        };
        match c.apply(u, &[(&x, t)], &call.to_token_stream(), &x, i, diag) {
            Some(out) => {
                tensor = Some(out);
                applied += 1;
                source = Source::Layer(c.uniques[u].name.clone());
            }
            None => {
                lost = true;
                tensor = None;
            }
        }
    }
    if real_layers == 0 {
        let last = chain.calls.last().expect("a chain has at least one call");
        diag.error(last, "a model needs at least one layer after its Input, as in `Input(4) => Dense(1)`");
    }
    // The model's count is checked whenever every layer's shape is known, even alongside
    // other errors, so that one build reports every mistake.
    if applied < real_layers || applied == 0 || c.inputs.is_empty() {
        return None;
    }
    let output = c.nodes.len() - 1;
    c.finish(vec![output], params_attr, model, diag)
}

/// What a name in a `functional!` body refers to.
#[derive(Clone, Copy)]
enum Val {
    Tensor(Src),
    Layer(usize),
    /// Something whose definition had an error: uses are not reported again.
    Poison,
}

/// The name of a tensor argument, if it is a plain name.
fn tensor_ident(e: &Expr) -> Option<&Ident> {
    match e {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

/// A `functional!` item as a graph; `None` if anything is wrong (the errors are in `diag`).
pub fn functional(item: &FItem, diag: &mut Diag, models: &[Resolved]) -> Option<Graph> {
    let errors_before = diag.len();
    let mut c = Checker::new(Dialect::Functional, diag);
    c.bring(models);
    let mut vars: HashMap<String, Val> = HashMap::new();
    for (ident, shape) in &item.inputs {
        let name = ident.to_string();
        if vars.contains_key(&name) {
            diag.error(ident, format!("duplicate input `{name}`: input names must be unique"));
        }
        let shape: Option<Shape> = catalog::shape(shape, &format!("input `{name}`"), diag);
        vars.insert(name, Val::Tensor(c.input(ident, shape, true)));
    }

    // Calls layer `u` on the tensors `args`, as `at`, binding `var`.
    let call = |c: &mut Checker, u: usize, args: &[&Expr], at: &TokenStream, var: &Ident, vars: &HashMap<String, Val>, diag: &mut Diag| {
        let mut tensors = Vec::new();
        let mut poisoned = false;
        for a in args {
            let Some(ident) = tensor_ident(a) else {
                diag.error(a, format!("expected a tensor's name, found `{}`", a.to_token_stream()));
                poisoned = true;
                continue;
            };
            match vars.get(&ident.to_string()) {
                Some(Val::Tensor(s)) if c.shape(*s).is_some() => tensors.push((ident, *s)),
                Some(Val::Tensor(_)) | Some(Val::Poison) => poisoned = true,
                Some(Val::Layer(_)) => {
                    diag.error(ident, format!("`{ident}` is a layer, not a tensor"));
                    poisoned = true;
                }
                None => {
                    diag.error(ident, format!("`{ident}` is not defined: tensors are the model's inputs and earlier `let`s"));
                    poisoned = true;
                }
            }
        }
        if poisoned {
            return Val::Poison;
        }
        let index = c.nodes.len();
        c.apply(u, &tensors, at, var, index, diag).map_or(Val::Poison, Val::Tensor)
    };

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
                    call(&mut c, u, &args, &at, &stmt.var, &vars, diag)
                }
            }
            Some(Val::Tensor(_)) => {
                diag.error(&stmt.call.kind, format!("`{callee}` is a tensor, not a layer: call a layer on it, as in `Dense(8)({callee})`"));
                Val::Poison
            }
            Some(Val::Poison) => Val::Poison,
            None if callee == "Input" && stmt.call.path.is_none() => {
                diag.error(&stmt.call, "inputs are declared in the struct's parentheses, as in `struct Net(x: [784]) -> y { .. }`");
                Val::Poison
            }
            None => match c.make(&stmt.call, c.uniques.len(), diag).and_then(|m| m.unique) {
                None => Val::Poison,
                Some(u) => match &stmt.apply {
                    None => {
                        c.uniques[u].var = Some(var.clone());
                        Val::Layer(u)
                    }
                    Some((group, args)) => {
                        let args: Vec<&Expr> = args.iter().collect();
                        let mut at = stmt.call.to_token_stream();
                        group.to_tokens(&mut at);
                        call(&mut c, u, &args, &at, &stmt.var, &vars, diag)
                    }
                },
            },
        };
        vars.insert(var, val);
    }

    // The outputs, in the order the model returns them.
    let mut outputs = Vec::new();
    for (k, out_ident) in item.outputs.iter().enumerate() {
        if item.outputs[..k].iter().any(|o| o == out_ident) {
            diag.error(out_ident, format!("the output `{out_ident}` is listed twice: each output is returned once"));
            continue;
        }
        match vars.get(&out_ident.to_string()) {
            Some(Val::Tensor(Src::Node(j))) => outputs.push(*j),
            Some(Val::Tensor(Src::Input(_))) => {
                diag.error(out_ident, format!("the output `{out_ident}` is an input: a model needs at least one layer between them"));
            }
            Some(Val::Layer(_)) => {
                diag.error(
                    out_ident,
                    format!("the output `{out_ident}` is a layer, not a tensor: call it on a tensor and return the result"),
                );
            }
            Some(Val::Poison) => {}
            None => diag.error(out_ident, format!("the output `{out_ident}` is not defined in the model's body")),
        }
    }
    if item.outputs.is_empty() {
        diag.error(&item.arrow, "a model needs at least one output after `->`, as in `-> y` or `-> (a, b)`");
    }
    // Keras names an output by the layer that computes it: two calls of one layer would be two
    // outputs of one name (in the logs, the losses by name, the `.keras` file).
    for (k, &j) in outputs.iter().enumerate() {
        if let Some(&i) = outputs[..k].iter().find(|&&i| c.layer_of(i) == c.layer_of(j)) {
            let layer = &c.uniques[c.layer_of(j)].name;
            let (a, b) = (&c.nodes[i].var, &c.nodes[j].var);
            let at = item.outputs.iter().find(|o| *o == b).unwrap_or(b);
            diag.error(
                at,
                format!("outputs `{a}` and `{b}` are two calls of layer `{layer}`, and Keras names an output by its layer: compute one of them with a layer of its own"),
            );
        }
    }
    if diag.len() > errors_before {
        return None;
    }
    let to_outputs = match &item.outputs[..] {
        [one] => format!("the output `{one}`"),
        several => format!("the outputs {}", several.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")),
    };

    // Everything defined must lead to the output.
    let mut used_nodes = vec![false; c.nodes.len()];
    let mut used_inputs = vec![false; c.inputs.len()];
    let mut stack = outputs.clone();
    while let Some(j) = stack.pop() {
        if std::mem::replace(&mut used_nodes[j], true) {
            continue;
        }
        for s in &c.nodes[j].inputs {
            match *s {
                Src::Input(k) => used_inputs[k] = true,
                Src::Node(i) => stack.push(i),
            }
        }
    }
    for (k, used) in used_inputs.iter().enumerate() {
        if !used {
            diag.error(&c.inputs[k].0, format!("input `{}` is not used on the way to {to_outputs}", c.inputs[k].0));
        }
    }
    for (j, used) in used_nodes.iter().enumerate() {
        if !used {
            diag.error(&c.nodes[j].var, format!("`{}` is computed but not used on the way to {to_outputs}", c.nodes[j].var));
        }
    }
    for u in &c.uniques {
        if u.calls.is_empty() {
            diag.error(&u.at, format!("layer `{}` is never called", u.var.as_deref().unwrap_or(&u.name)));
        }
    }
    if diag.len() > errors_before {
        return None;
    }
    c.finish(outputs, item.params.as_ref(), &item.name.to_string(), diag)
}
