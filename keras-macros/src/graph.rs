//! The graph both macros lower to: inputs, layers (each made once), and their calls (nodes),
//! in the order the model's body makes them. A `sequential!` chain is the simplest graph: one
//! input, each layer called once on the previous one's output.

use crate::catalog::{Layer, Runtime, Shape, Weight, fmt_shape};
use crate::expand::{Count, CustomRef};
use proc_macro2::{Ident, TokenStream};
use std::collections::HashMap;
use syn::Expr;

/// The merge layers, which join several tensors (`functional!` only).
pub const MERGES: &[&str] = &["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "CustomScaleLayer"];

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
pub enum Merge {
    /// Elementwise: the runtime `MergeOp` variant's name.
    Elementwise(&'static str),
    /// `Concatenate` along a per-sample axis (0-based, batch axis excluded).
    Concatenate(i64),
    /// InceptionResNetV2's `CustomScaleLayer(scale)`: `x + y * scale` of two tensors.
    Scale(f64),
}

pub enum Op {
    Layer(Box<Layer>),
    Merge(Merge),
    /// A model made by another macro invocation, used as a layer (`use Encoder;`): its layers
    /// and calls are inlined into this graph, and Keras sees it as one layer.
    Model(Box<Sub>),
}

/// A model used as a layer: its own checked graph, whose layers (from its first call on) live
/// in the outer graph's `uniques` from `base` on, in the order of its own `uniques`.
pub struct Sub {
    /// Its struct's name (`Encoder`), for messages.
    pub model: String,
    /// Its Keras class: `Sequential` or `Functional`.
    pub class: &'static str,
    /// Its graph (its `uniques` moved into the outer graph at the first call).
    pub graph: Graph,
    /// Where its layers start in the outer graph once it is called.
    pub base: Option<usize>,
    /// The models nested in it (by their index among its layers) and the nodes of its graph
    /// their calls end at: each of its calls calls them too.
    pub nested_calls: Vec<(usize, Vec<usize>)>,
}

/// A layer of the model (called once or more).
pub struct Unique {
    pub name: String,
    pub class: &'static str,
    pub op: Op,
    /// The input shape of its first call (its weights' shapes follow from it).
    pub input: Option<Shape>,
    pub output: Option<Shape>,
    pub weights: Vec<Weight>,
    /// Its constants (see `Layer::constants`).
    pub constants: Vec<f32>,
    pub params: Count,
    /// A layer of the user's: the impl its weights are read from.
    pub custom: Option<CustomRef>,
    /// Compile-time assertions for it (see `Kind::checks`).
    pub checks: Vec<TokenStream>,
    /// Its calls, in order.
    pub calls: Vec<usize>,
    /// The statement that made it, for messages.
    pub at: TokenStream,
    /// `params = N`'s value and the tokens its message points at, checked at the first call.
    pub params_arg: Option<(Expr, TokenStream)>,
    /// The variable it is bound to, if any.
    pub var: Option<String>,
    /// Whether its name is the default one (which takes a number of its class's counter).
    pub auto_named: bool,
}

/// One call of a layer.
pub struct Node {
    pub unique: usize,
    pub inputs: Vec<Src>,
    pub output: Shape,
    pub runtime: Option<Runtime>,
    pub var: Ident,
}

/// A call as Keras sees it: a nested model's call is one call of it (its inner calls are not
/// Keras's); `inputs` refer to other view nodes.
pub struct ViewNode {
    pub unique: usize,
    pub inputs: Vec<Src>,
    pub output: Shape,
    /// The inlined node that holds its output.
    pub node: usize,
}

/// An entry of Keras's `model.layers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    Input(usize),
    Unique(usize),
}

/// A checked model: every shape known, every name unique.
pub struct Graph {
    /// Whether it is a `sequential!` model (Keras's `Sequential`: no input layer in `layers`,
    /// no graph in its config).
    pub sequential: bool,
    pub inputs: Vec<(Ident, Shape)>,
    /// Per input: `Some(input_dim)` when it holds an Embedding's ids.
    pub vocab: Vec<Option<usize>>,
    pub uniques: Vec<Unique>,
    pub nodes: Vec<Node>,
    /// The calls as Keras sees them (a nested model's call is one).
    pub view: Vec<ViewNode>,
    /// Keras's `model.layers` order.
    pub order: Vec<Entry>,
    /// The nodes whose outputs are the model's, in the order the model returns them.
    pub outputs: Vec<usize>,
    pub trainable: Count,
    pub non_trainable: Count,
    /// Checks of counts only rustc knows (`#[params(N)]` of a model with custom layers).
    pub asserts: Vec<TokenStream>,
}

impl Graph {
    /// All parameters.
    pub fn params(&self) -> Count {
        self.trainable.add(&self.non_trainable)
    }
}

/// A merge layer's output shape, or Keras's complaint.
pub fn merge_shape(m: Merge, class: &str, shapes: &[(&Ident, Shape)]) -> Result<Shape, String> {
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
pub fn concat_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { rank as i64 + axis } else { axis - 1 };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

/// Keras's `model.layers` order (`keras.src.ops.function.map_graph`): by depth from the
/// outputs, deepest first, ties broken by the order depth-first walks from each output in turn
/// first meet them.
pub fn keras_order(n_inputs: usize, nodes: &[ViewNode], outputs: &[usize]) -> Vec<Entry> {
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
    for &output in outputs {
        walk(gid(Src::Node(output)), &mut finished, &mut post, &mut first_seen, &entry, &parents);
    }
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
    order
}
