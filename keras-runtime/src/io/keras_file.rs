//! Import of models saved by Python Keras: a Keras 3 `.keras` archive, a legacy `.h5` full-model
//! file, a `.weights.h5` weights file, or a legacy weights-only `.h5` file (the format of Keras's
//! published application weights, `resnet50_weights_tf_dim_ordering_tf_kernels.h5`).
//!
//! The file's architecture (layer classes, `units`, `filters`, convolution and pooling windows,
//! `activation`, `use_bias`, the input shape) is compared with the model's definition first, and
//! a mismatch is refused with an error naming the first difference; then every weight's shape is
//! checked, and only then are all weights written at once. A legacy weights-only file holds no
//! architecture: its weights are matched to the model's layers by layer name, as Keras's
//! `load_weights(path, by_name=True)` matches them (see [`weights_from_bytes`]).
//!
//! Every size a file declares is checked against the bytes that are there and against the
//! model's own shapes before anything is allocated, so a damaged or hostile file gives an `Err`,
//! never a panic or a huge allocation.

use crate::error::{batch_shape, tuple_shape};
use crate::model::{ConfigValue, LayerSpec, Model, SubModelSpec, WeightSpec};
use crate::{Error, Result};
use hdf5_pure::AttrValue;
use keras_naming::snake_case;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// What this module reads of a model type: its constants. The file code takes it instead of a
/// type parameter, so that it is compiled once, in this crate, not again for every model in the
/// user's crate; the public functions are thin generic wrappers.
#[derive(Clone)]
struct Meta {
    name: &'static str,
    input_shape: &'static [usize],
    inputs: &'static [crate::model::InputSpec],
    input_indices: Option<usize>,
    params: usize,
    layers: &'static [LayerSpec],
    /// Its weights (a nested model's: its own, named as in a model of its own).
    weights: std::borrow::Cow<'static, [WeightSpec]>,
    nodes: &'static [crate::model::NodeSpec],
    outputs: &'static [crate::model::OutputSpec],
    submodels: &'static [SubModelSpec],
}

impl Meta {
    #[inline]
    fn of<M: Model>() -> Meta {
        Meta {
            name: M::NAME,
            input_shape: M::INPUT_SHAPE,
            inputs: M::INPUTS,
            input_indices: M::INPUT_INDICES,
            params: M::PARAMS,
            layers: M::LAYERS,
            weights: std::borrow::Cow::Borrowed(M::WEIGHTS),
            nodes: M::NODES,
            outputs: M::OUTPUTS,
            submodels: M::SUBMODELS,
        }
    }

    /// The model used as layer `i`, if layer `i` is one, described as a model of its own: its
    /// weights are those the outer model keeps under its name (`encoder`, `dense/kernel`),
    /// named by its layers (`dense`, `kernel`).
    fn sub(&self, i: usize) -> Option<Meta> {
        let s = self.submodels.iter().find(|s| s.layer == i)?;
        let weights = self
            .weights
            .iter()
            .filter(|w| w.layer == s.name)
            .map(|w| {
                let (layer, name) = w.name.split_once('/').unwrap_or((w.name, ""));
                WeightSpec { layer, name, ..*w }
            })
            .collect::<Vec<_>>();
        Some(Meta {
            name: s.name,
            input_shape: s.input_shape,
            inputs: s.inputs,
            input_indices: None,
            params: s.layers.iter().map(|l| l.params).sum(),
            layers: s.layers,
            weights: std::borrow::Cow::Owned(weights),
            nodes: s.nodes,
            outputs: &[],
            submodels: s.submodels,
        })
    }
}

/// Reads the Keras file at `path` (`.keras`, legacy `.h5`, `.weights.h5` or a legacy weights-only
/// `.h5`, told apart by their contents) and returns `M`'s weights from it, in Keras order, after
/// checking that the file describes the same architecture as `M` (a legacy weights-only file:
/// that it has every weighted layer of `M` by name, see [`weights_from_bytes`]).
pub fn read_weights<M: Model>(path: &Path) -> Result<Vec<ArrayD<f32>>> {
    read_weights_of(&Meta::of::<M>(), path)
}

/// [`read_weights`] for the model `m` describes.
fn read_weights_of(m: &Meta, path: &Path) -> Result<Vec<ArrayD<f32>>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: shown.clone(), source })?;
    weights_from_bytes_of(m, bytes).map_err(|message| Error::Format { path: shown, message })
}

/// [`read_weights`] over the bytes of a file; the error is the message of an [`Error::Format`].
///
/// The file is told by its contents: a zip archive is a `.keras` file; an HDF5 file whose root
/// has a `model_config` attribute is a legacy full model (`model.save("m.h5")`); one whose root
/// has a `layer_names` attribute (or its chunks `layer_names0`, `layer_names1`, ... when Keras
/// split a long list) is a legacy weights-only file (`model.save_weights("w.h5")` in Keras 2,
/// Keras's published application weights); any other HDF5 file must be a Keras 3 `.weights.h5`
/// (a `layers` group).
///
/// A legacy weights-only file is read by layer name, as Keras's
/// `load_weights_from_hdf5_group_by_name`: each layer of `M` with weights is looked up by its
/// name among the file's `layer_names`, and its weights are the datasets the layer's group lists
/// in `weight_names` (`<layer>/<weight name>`, such as `conv1_conv/conv1_conv/kernel:0`), in
/// Keras's order (trainable, then non-trainable). The order of the file's layers does not matter,
/// and layers of the file that `M` does not have are ignored, as Keras ignores them: a headless
/// model (no `predictions` layer) loads a file saved with the classifier on top. A layer of `M`
/// that the file lacks, or for which it holds another number of weights or a weight of another
/// shape, is an error naming the layer (its number in `M` and its name), what the file has and
/// what the model expects. So is a file with top-level model weights (which keras-rs models do
/// not have).
pub fn weights_from_bytes<M: Model>(bytes: Vec<u8>) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    weights_from_bytes_of(&Meta::of::<M>(), bytes)
}

/// [`weights_from_bytes`] for the model `m` describes.
fn weights_from_bytes_of(m: &Meta, bytes: Vec<u8>) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    if bytes.starts_with(ZIP_MAGIC) {
        let mut archive = Archive::new(&bytes)?;
        let config = json(&archive.read("config.json", CONFIG_LIMIT)?, "config.json")?;
        let file_layers = architecture(m, &config)?;
        let h5 = open_h5(archive.read("model.weights.h5", weights_limit(m))?)?;
        read_vars(m, &h5, &file_layers)
    } else if bytes.starts_with(HDF5_MAGIC) {
        let h5 = open_h5(bytes)?;
        match string_attr(&h5.root(), "model_config")? {
            Some(config) => {
                let file_layers = architecture(m, &json(config.as_bytes(), "the model_config attribute")?)?;
                read_legacy(m, &h5, &file_layers)
            }
            None => {
                let root = h5.root().attrs().map_err(|e| format!("unreadable HDF5 attributes: {e}"))?;
                if root.contains_key("layer_names") || root.contains_key("layer_names0") {
                    return read_by_name(m, &h5, &root);
                }
                let names = m.layers.iter().map(|l| l.name.to_string()).collect::<Vec<_>>();
                check_no_extra_layers(m, &h5)?;
                read_vars(m, &h5, &names)
            }
        }
    } else {
        Err("not a Keras file: expected a .keras archive (zip) or an HDF5 file (.h5, .weights.h5)".into())
    }
}

fn json(bytes: &[u8], what: &str) -> std::result::Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what} is not valid JSON: {e}"))
}

/// Checks the file's model config against `M` and returns the file's layer names, one per layer of
/// `M`, in order.
fn architecture(m: &Meta, config: &Value) -> std::result::Result<Vec<String>, String> {
    let class = config.get("class_name").and_then(Value::as_str).unwrap_or("");
    let functional = !m.nodes.is_empty();
    match (class, functional) {
        ("Sequential", false) => {}
        ("Functional" | "Model", true) => return functional_architecture(m, config),
        ("Sequential", true) => return Err("the file holds a Sequential model, this model is functional".into()),
        ("Functional" | "Model", false) => return Err("the file holds a functional model, this model is Sequential".into()),
        _ if class.is_empty() => {
            return Err("config.json names no model class (`class_name`): not a model saved by Keras".into());
        }
        _ => return Err(format!("the file holds a {class} model, but keras-rs imports Sequential and functional models")),
    }
    let layers = config.pointer("/config/layers").and_then(Value::as_array).ok_or("the model config has no layer list")?;
    let mut input: Option<Vec<Value>> = None;
    let mut file_layers = Vec::new();
    for layer in layers {
        let class = layer.get("class_name").and_then(Value::as_str).ok_or("a layer of the model config has no class_name")?;
        let cfg = layer.get("config").cloned().unwrap_or(Value::Null);
        if class == "InputLayer" {
            input = cfg.get("batch_shape").or_else(|| cfg.get("batch_input_shape")).and_then(Value::as_array).cloned();
            continue;
        }
        if input.is_none() && file_layers.is_empty() {
            input = cfg.get("batch_input_shape").and_then(Value::as_array).cloned();
        }
        file_layers.push((class.to_string(), cfg));
    }
    if input.is_none() {
        input = config.pointer("/config/build_input_shape").and_then(Value::as_array).cloned();
    }
    if let Some(shape) = input {
        let dims = shape.iter().skip(1).map(|d| d.as_u64().map_or_else(|| d.to_string(), |d| d.to_string())).collect::<Vec<_>>();
        let ours = m.input_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        if dims != ours {
            return Err(format!("input: the file has (None, {}), this model has {}", dims.join(", "), batch_shape(m.input_shape)));
        }
    }
    for (i, ours) in m.layers.iter().enumerate() {
        let Some((class, cfg)) = file_layers.get(i) else {
            return Err(format!(
                "layer {} ({}): the file has {} layers, this model has {} (the file has no {})",
                i + 1,
                ours.name,
                file_layers.len(),
                m.layers.len(),
                describe_spec(ours)
            ));
        };
        let name = cfg.get("name").and_then(Value::as_str).unwrap_or(ours.name);
        let same = class == ours.class && ours.config.iter().all(|(key, value)| lookup(cfg, key).is_some_and(|v| matches(value, v)));
        if !same {
            return Err(format!(
                "layer {} ({name}): the file has {}, this model has {}",
                i + 1,
                describe_file(class, cfg),
                describe_spec(ours)
            ));
        }
        sub_architecture(m, i, name, class, cfg)?;
    }
    if let Some((class, cfg)) = file_layers.get(m.layers.len()) {
        let name = cfg.get("name").and_then(Value::as_str).unwrap_or("");
        return Err(format!(
            "layer {} ({name}): the file has {} layers, this model has {} (this model has no {})",
            m.layers.len() + 1,
            file_layers.len(),
            m.layers.len(),
            describe_file(class, cfg)
        ));
    }
    Ok(file_layers
        .iter()
        .zip(m.layers)
        .map(|((_, cfg), ours)| cfg.get("name").and_then(Value::as_str).unwrap_or(ours.name).to_string())
        .collect())
}

/// A layer's config entry; `outer.key` reads the config of the layer under `outer` (a wrapper's
/// `layer`), `outer.class_name` its class.
fn lookup<'a>(cfg: &'a Value, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => cfg.get(key),
        Some((outer, "class_name")) => cfg.get(outer)?.get("class_name"),
        Some((outer, rest)) => lookup(cfg.get(outer)?.get("config")?, rest),
    }
}

fn matches(ours: &ConfigValue, file: &Value) -> bool {
    match *ours {
        ConfigValue::Int(n) => file.as_u64() == Some(n as u64),
        ConfigValue::Float(x) => file.as_f64().is_some_and(|f| (f - x).abs() <= 1e-9 * x.abs().max(1.0)),
        ConfigValue::Bool(b) => file.as_bool() == Some(b),
        ConfigValue::LastAxis(last) => file.as_i64().is_some_and(|a| a == -1 || a == last as i64),
        ConfigValue::Activation(a) => file.as_str().and_then(crate::activations::Activation::from_name) == Some(a),
        ConfigValue::Shape(v) | ConfigValue::Axes(v) => {
            file.as_array().is_some_and(|f| f.len() == v.len() && f.iter().zip(v).all(|(f, &v)| f.as_i64() == Some(v)))
        }
        // (An empty list is Keras's other way to write none: PReLU's `shared_axes=[]`.)
        ConfigValue::None => file.is_null() || file.as_array().is_some_and(Vec::is_empty),
        ConfigValue::Ints(v) => {
            file.as_array().is_some_and(|f| f.len() == v.len() && f.iter().zip(v).all(|(f, &v)| f.as_u64() == Some(v as u64)))
        }
        ConfigValue::Str(s) => file.as_str() == Some(s),
        ConfigValue::List(items) => {
            file.as_array().is_some_and(|a| a.len() == items.len() && items.iter().zip(a).all(|(ours, theirs)| matches(ours, theirs)))
        }
        ConfigValue::Layer(class, config) => {
            file.get("class_name").and_then(Value::as_str) == Some(class)
                && config.iter().all(|(key, value)| file.pointer(&format!("/config/{key}")).is_some_and(|v| matches(value, v)))
        }
    }
}

/// The keys a description shows, for a class this model does not have.
const SHOWN_KEYS: &[&str] = &[
    "units",
    "filters",
    "kernel_size",
    "pool_size",
    "strides",
    "padding",
    "dilation_rate",
    "depth_multiplier",
    "activation",
    "use_bias",
    "rate",
    "stddev",
    "n",
    "dims",
    "size",
    "interpolation",
    "cropping",
    "target_shape",
    "scale",
    "offset",
    "axis",
    "invert",
    "mean",
    "variance",
    "max_value",
    "negative_slope",
    "threshold",
    "alpha",
    "shared_axes",
];

fn describe_spec(layer: &LayerSpec) -> String {
    let args = layer.config.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
    format!("{}({})", layer.class, args.join(", "))
}

/// A JSON array as a Python tuple: `(1, 2)`, `((1, 0), (2, 1))`.
fn tuple(items: &[Value]) -> String {
    let shown = items.iter().map(|v| v.as_array().map_or_else(|| v.to_string(), |a| tuple(a))).collect::<Vec<_>>();
    match shown.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", shown.join(", ")),
    }
}

fn describe_file(class: &str, cfg: &Value) -> String {
    let wrapped = cfg.get("layer").map(|l| {
        let class = l.get("class_name").and_then(Value::as_str).unwrap_or("?");
        format!("layer={}", describe_file(class, l.get("config").unwrap_or(&Value::Null)))
    });
    let args = SHOWN_KEYS
        .iter()
        .filter_map(|k| {
            cfg.get(*k).map(|v| match v {
                Value::String(s) => format!("{k}={s}"),
                Value::Array(a) => format!("{k}={}", tuple(a)),
                Value::Null => format!("{k}=None"),
                v => format!("{k}={v}"),
            })
        })
        .chain(wrapped)
        .collect::<Vec<_>>();
    format!("{class}({})", args.join(", "))
}

/// When layer `i` of `m` is a model used as a layer: [`architecture`] of it against the file's
/// layer `name` (of class `class`, configuration `cfg`).
fn sub_architecture(m: &Meta, i: usize, name: &str, class: &str, cfg: &Value) -> std::result::Result<(), String> {
    let Some(sub) = m.sub(i) else { return Ok(()) };
    let config = serde_json::json!({ "class_name": class, "config": cfg });
    architecture(&sub, &config).map(|_| ()).map_err(|e| format!("layer {} ({name}), a model: {e}", i + 1))
}

/// The model's weights grouped by layer: the layer's index and its weights.
fn weights_by_layer(m: &Meta) -> Vec<(usize, Vec<&WeightSpec>)> {
    m.layers
        .iter()
        .enumerate()
        .map(|(i, l)| (i, m.weights.iter().filter(|w| w.layer == l.name).collect::<Vec<_>>()))
        .filter(|(_, ws)| !ws.is_empty())
        .collect()
}

/// [`architecture`] of a functional model: the same layers in Keras's order (inputs included),
/// each with the same configuration and called on the same tensors.
fn functional_architecture(m: &Meta, config: &Value) -> std::result::Result<Vec<String>, String> {
    let layers = config.pointer("/config/layers").and_then(Value::as_array).ok_or("the model config has no layer list")?;
    let mut names = Vec::new();
    for layer in layers {
        let name = layer
            .get("name")
            .or_else(|| layer.pointer("/config/name"))
            .and_then(Value::as_str)
            .ok_or("a layer of the model config has no name")?;
        names.push(name.to_string());
    }
    if layers.len() != m.layers.len() {
        return Err(format!("the file has {} layers (inputs included), this model has {}", layers.len(), m.layers.len()));
    }
    for (i, (layer, ours)) in layers.iter().zip(m.layers).enumerate() {
        let class = layer.get("class_name").and_then(Value::as_str).ok_or("a layer of the model config has no class_name")?;
        let cfg = layer.get("config").cloned().unwrap_or(Value::Null);
        let name = &names[i];
        if ours.class == "InputLayer" {
            let shape = cfg.get("batch_shape").or_else(|| cfg.get("batch_input_shape")).and_then(Value::as_array);
            let dims =
                shape.map(|s| s.iter().skip(1).map(|d| d.as_u64().map_or_else(|| d.to_string(), |d| d.to_string())).collect::<Vec<_>>());
            let want = ours.output_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
            if class != "InputLayer" || dims.as_ref() != Some(&want) {
                return Err(format!(
                    "layer {} ({name}): the file has {}, this model has an input of shape {}",
                    i + 1,
                    match dims {
                        Some(d) if class == "InputLayer" => format!("an input of shape (None, {})", d.join(", ")),
                        _ => describe_file(class, &cfg),
                    },
                    batch_shape(ours.output_shape)
                ));
            }
            continue;
        }
        let same = class == ours.class && ours.config.iter().all(|(key, value)| lookup(&cfg, key).is_some_and(|v| matches(value, v)));
        if !same {
            return Err(format!(
                "layer {} ({name}): the file has {}, this model has {}",
                i + 1,
                describe_file(class, &cfg),
                describe_spec(ours)
            ));
        }
        sub_architecture(m, i, name, class, &cfg)?;
        // The calls: each a list of `keras_history` entries `[layer name, call, 0]`.
        let mut file_calls: Vec<Vec<(usize, usize)>> = Vec::new();
        for node in layer.get("inbound_nodes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            let mut tensors = Vec::new();
            collect_history(node.get("args").unwrap_or(&Value::Null), &mut tensors);
            let call = tensors
                .iter()
                .map(|(n, c)| {
                    names
                        .iter()
                        .position(|x| x == n)
                        .map(|l| (l, *c))
                        .ok_or_else(|| format!("layer {} ({name}) is called on `{n}`, which the file does not define", i + 1))
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            file_calls.push(call);
        }
        let ours_calls: Vec<Vec<(usize, usize)>> = m.nodes.iter().filter(|n| n.layer == i).map(|n| n.inputs.to_vec()).collect();
        if file_calls != ours_calls {
            let show = |calls: &[Vec<(usize, usize)>]| {
                calls
                    .iter()
                    .map(|c| format!("({})", c.iter().map(|&(l, k)| format!("{}[{k}][0]", names[l])).collect::<Vec<_>>().join(", ")))
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            return Err(format!(
                "layer {} ({name}): the file calls it on {}, this model on {}",
                i + 1,
                show(&file_calls),
                show(&ours_calls)
            ));
        }
    }
    Ok(names)
}

/// The `keras_history` (layer name, call) of every Keras tensor in a node's arguments, in order.
fn collect_history(v: &Value, out: &mut Vec<(String, usize)>) {
    match v {
        // Keras 2 (`.h5`) writes a tensor as `[layer name, call, tensor index, kwargs]`.
        Value::Array(items) if matches!(items.as_slice(), [Value::String(_), Value::Number(_), Value::Number(_), ..]) => {
            if let (Some(name), Some(call)) = (items[0].as_str(), items[1].as_u64()) {
                out.push((name.to_string(), call as usize));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_history(i, out)),
        Value::Object(o) if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            if let Some(h) = v.pointer("/config/keras_history").and_then(Value::as_array)
                && let (Some(name), Some(call)) = (h.first().and_then(Value::as_str), h.get(1).and_then(Value::as_u64))
            {
                out.push((name.to_string(), call as usize));
            }
        }
        _ => {}
    }
}

/// Where Keras 3's weights files keep each of `M`'s layers: not under the layer's name but under
/// its class's snake-case name, numbered in layer order (`layers/dense`, `layers/dense_1`), as
/// `keras.src.saving.saving_lib` walks a model's layer list.
fn layer_paths(m: &Meta) -> Vec<String> {
    let mut used: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    m.layers
        .iter()
        .map(|l| {
            let base = snake_case(l.class);
            match used.get_mut(&base) {
                Some(n) => {
                    *n += 1;
                    format!("{base}_{n}")
                }
                None => {
                    used.insert(base.clone(), 0);
                    base
                }
            }
        })
        .collect()
}

/// Where Keras 3 keeps a layer's weights, in order: `layers/<name>/vars`, a level down for a
/// wrapper (`layers/time_distributed/layer/vars`), the cell's group for a recurrent layer
/// (`layers/lstm/cell/vars`), each direction's for `Bidirectional`.
fn var_groups(class: &str, name: &str) -> Vec<String> {
    match class {
        "TimeDistributed" => vec![format!("layers/{name}/layer/vars")],
        "SimpleRNN" | "LSTM" | "GRU" => vec![format!("layers/{name}/cell/vars")],
        "Bidirectional" => vec![format!("layers/{name}/forward_layer/cell/vars"), format!("layers/{name}/backward_layer/cell/vars")],
        _ => vec![format!("layers/{name}/vars")],
    }
}

/// Keras 3 layout (`.keras` and `.weights.h5`): `layers/<name>/vars/0..` (see [`var_groups`]).
fn read_vars(m: &Meta, h5: &hdf5_pure::File, file_names: &[String]) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    read_vars_under(m, h5, file_names, "")
}

/// [`read_vars`] of the layers under `prefix` (a model used as a layer keeps its own in
/// `layers/sequential/layers/..`).
fn read_vars_under(m: &Meta, h5: &hdf5_pure::File, file_names: &[String], prefix: &str) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    let mut out = Vec::with_capacity(m.weights.len());
    let paths = layer_paths(m);
    for (i, specs) in weights_by_layer(m) {
        let name = &file_names[i];
        if let Some(sub) = m.sub(i) {
            let names: Vec<String> = sub.layers.iter().map(|l| l.name.to_string()).collect();
            let inner = read_vars_under(&sub, h5, &names, &format!("{prefix}layers/{}/", paths[i]))
                .map_err(|e| format!("layer {} ({name}), a model: {e}", i + 1))?;
            out.extend(inner);
            continue;
        }
        let mut datasets = Vec::new();
        for vars in var_groups(m.layers[i].class, &paths[i]) {
            let vars = format!("{prefix}{vars}");
            let group =
                h5.group(&vars).map_err(|_| format!("layer {} ({name}): the file has no weights for it (no group {vars})", i + 1))?;
            let found = group.datasets().map_err(|e| format!("{vars}: {e}"))?.len();
            datasets.extend((0..found).map(|j| format!("{vars}/{j}")));
        }
        if datasets.len() != specs.len() {
            return Err(format!("layer {} ({name}): the file has {} weights, this model has {}", i + 1, datasets.len(), specs.len()));
        }
        for (path, spec) in datasets.iter().zip(&specs) {
            out.push(read_dataset(h5, path, spec, i, name)?);
        }
    }
    Ok(out)
}

/// Legacy `.h5` layout: `model_weights/<name>` lists its datasets in a `weight_names` attribute.
fn read_legacy(m: &Meta, h5: &hdf5_pure::File, file_names: &[String]) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    let mut out = Vec::with_capacity(m.weights.len());
    for (i, specs) in weights_by_layer(m) {
        let name = &file_names[i];
        let path = format!("model_weights/{name}");
        let group = h5.group(&path).map_err(|_| format!("layer {} ({name}): the file has no weights for it (no group {path})", i + 1))?;
        let attrs = group.attrs().map_err(|e| format!("{path}: {e}"))?;
        let names = names_attr(&attrs, "weight_names", &path)?.ok_or_else(|| format!("{path}: no weight_names attribute"))?;
        if names.len() != specs.len() {
            return Err(format!("layer {} ({name}): the file has {} weights, this model has {}", i + 1, names.len(), specs.len()));
        }
        out.extend(in_legacy_order(&specs, names.iter(), |weight, spec| read_dataset(h5, &format!("{path}/{weight}"), spec, i, name))?);
    }
    Ok(out)
}

/// A layer's weights from a legacy `.h5` file, in this model's order: the file lists each
/// layer's trainable weights first, then its non-trainable ones (Keras's `_legacy_weights`),
/// which for a model used as a layer is not its layers' order (an encoder's BatchNormalization
/// statistics come after its last Dense). `read` reads the file's weight of that name as `spec`.
fn in_legacy_order<S: AsRef<str>>(
    specs: &[&WeightSpec],
    names: impl Iterator<Item = S>,
    mut read: impl FnMut(&str, &WeightSpec) -> std::result::Result<ArrayD<f32>, String>,
) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&k| specs[k].arena != crate::model::Arena::Trainable);
    let mut out: Vec<Option<ArrayD<f32>>> = vec![None; specs.len()];
    for (name, &k) in names.zip(&order) {
        out[k] = Some(read(name.as_ref(), specs[k])?);
    }
    Ok(out.into_iter().map(|w| w.expect("every weight read: the counts were compared")).collect())
}

/// A list of names as Keras's `save_attributes_to_hdf5_group` keeps it on an HDF5 object:
/// attribute `key`, or, when the list is too long for one object header, its chunks `key0`,
/// `key1`, ... in order (Keras's `load_attributes_from_hdf5_group`); `None` when neither is there.
/// Keras 3 writes variable-length strings, Keras 2 fixed-length ones, and an empty list as an
/// empty float64 array. `owner` names the object in errors.
fn names_attr(attrs: &HashMap<String, AttrValue>, key: &str, owner: &str) -> std::result::Result<Option<Vec<String>>, String> {
    let list = |key: &str, value: &AttrValue| -> std::result::Result<Vec<String>, String> {
        Ok(match value {
            AttrValue::StringArray(v)
            | AttrValue::AsciiStringArray(v)
            | AttrValue::VarLenStringArray(v)
            | AttrValue::VarLenAsciiStringArray(v)
            | AttrValue::VarLenAsciiCharArray(v) => v.clone(),
            AttrValue::StringArraySized { values, .. } | AttrValue::AsciiStringArraySized { values, .. } => values.clone(),
            AttrValue::String(v) | AttrValue::AsciiString(v) | AttrValue::VarLenString(v) | AttrValue::VarLenAsciiString(v) => {
                vec![v.clone()]
            }
            AttrValue::StringSized { value, .. } | AttrValue::AsciiStringSized { value, .. } => vec![value.clone()],
            AttrValue::F64Array(v) if v.is_empty() => Vec::new(),
            AttrValue::F32Array(v) if v.is_empty() => Vec::new(),
            AttrValue::I64Array(v) if v.is_empty() => Vec::new(),
            AttrValue::I32Array(v) if v.is_empty() => Vec::new(),
            AttrValue::U8Array(v) if v.is_empty() => Vec::new(),
            _ => return Err(format!("{owner}: attribute {key} is not a list of names: expected strings, as Keras writes them")),
        })
    };
    if let Some(value) = attrs.get(key) {
        return list(key, value).map(Some);
    }
    let mut names: Option<Vec<String>> = None;
    for chunk in 0.. {
        let chunk_key = format!("{key}{chunk}");
        let Some(value) = attrs.get(&chunk_key) else { break };
        names.get_or_insert_with(Vec::new).extend(list(&chunk_key, value)?);
    }
    Ok(names)
}

/// A layer's weights as this model has them: `2 weights (kernel (3, 3, 3, 4), bias (4,))`.
fn describe_weights(specs: &[&WeightSpec]) -> String {
    let each = specs.iter().map(|s| format!("{} {}", s.name, tuple_shape(s.shape))).collect::<Vec<_>>();
    format!("{} weight{} ({})", specs.len(), if specs.len() == 1 { "" } else { "s" }, each.join(", "))
}

/// A legacy weights-only file (root attribute `layer_names`), read by layer name as Keras's
/// `load_weights_from_hdf5_group_by_name` reads it: see [`weights_from_bytes`].
fn read_by_name(m: &Meta, h5: &hdf5_pure::File, root: &HashMap<String, AttrValue>) -> std::result::Result<Vec<ArrayD<f32>>, String> {
    let file_layers = names_attr(root, "layer_names", "the file")?.unwrap_or_default();
    let mut out = Vec::with_capacity(m.weights.len());
    for (i, specs) in weights_by_layer(m) {
        let name = m.layers[i].name;
        let expected = describe_weights(&specs);
        if !file_layers.iter().any(|n| n == name) {
            // A name close to one of the file's layers that this model does not have.
            let candidates = file_layers.iter().map(String::as_str).filter(|n| !m.layers.iter().any(|l| l.name == *n)).collect::<Vec<_>>();
            let hint = keras_naming::suggest(name, &candidates).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            return Err(format!(
                "layer {} ({name}): the file has no weights for it (no layer of that name among its {} layers{hint}), this model has {expected}",
                i + 1,
                file_layers.len()
            ));
        }
        let group = h5
            .group(name)
            .map_err(|_| format!("layer {} ({name}): the file lists it in layer_names but has no group `{name}` of weights", i + 1))?;
        let attrs = group.attrs().map_err(|e| format!("{name}: unreadable HDF5 attributes: {e}"))?;
        // Keras reads a group without `weight_names` as a layer without weights.
        let weights = names_attr(&attrs, "weight_names", &format!("group {name}"))?.unwrap_or_default();
        if weights.len() != specs.len() {
            let found = if weights.is_empty() { "no weights".to_string() } else { format!("{} ({})", weights.len(), weights.join(", ")) };
            return Err(format!("layer {} ({name}): the file has {found} for it, this model has {expected}", i + 1));
        }
        out.extend(in_legacy_order(&specs, weights.iter(), |weight, spec| read_dataset(h5, &format!("{name}/{weight}"), spec, i, name))?);
    }
    // Keras 3 keeps a model's own (not a layer's) weights in `top_level_model_weights`, and
    // refuses a file with another number of them; keras-rs models have none.
    if let Ok(group) = h5.group("top_level_model_weights") {
        let attrs = group.attrs().map_err(|e| format!("top_level_model_weights: unreadable HDF5 attributes: {e}"))?;
        let weights = names_attr(&attrs, "weight_names", "group top_level_model_weights")?.unwrap_or_default();
        if !weights.is_empty() {
            return Err(format!(
                "the file has {} top-level model weight{} ({}), this model has none (its weights are its layers')",
                weights.len(),
                if weights.len() == 1 { "" } else { "s" },
                weights.join(", ")
            ));
        }
    }
    Ok(out)
}

/// A weights-only file places layers only by class and position: refuses one with weights for a
/// layer this model does not have.
fn check_no_extra_layers(m: &Meta, h5: &hdf5_pure::File) -> std::result::Result<(), String> {
    check_no_extra_layers_under(m, h5, "")
}

/// [`check_no_extra_layers`] of the layers under `prefix` (and of every model used as a layer,
/// in its own `layers`).
fn check_no_extra_layers_under(m: &Meta, h5: &hdf5_pure::File, prefix: &str) -> std::result::Result<(), String> {
    let group = h5
        .group(&format!("{prefix}layers"))
        .map_err(|_| format!("the file has no `{prefix}layers` group: not a Keras 3 weights file of this model"))?;
    let paths = layer_paths(m);
    for name in group.groups().map_err(|e| format!("{prefix}layers: {e}"))? {
        let has_weights = ["vars", "layer/vars", "cell/vars", "forward_layer/cell/vars", "layers"].iter().any(|vars| {
            h5.group(&format!("{prefix}layers/{name}/{vars}"))
                .is_ok_and(|g| g.datasets().is_ok_and(|d| !d.is_empty()) || g.groups().is_ok_and(|d| !d.is_empty()))
        });
        if has_weights && !paths.contains(&name) {
            return Err(format!("the file has weights under `{prefix}layers/{name}`, a layer this model does not have"));
        }
    }
    for (i, path) in paths.iter().enumerate() {
        if let Some(sub) = m.sub(i) {
            check_no_extra_layers_under(&sub, h5, &format!("{prefix}layers/{path}/"))?;
        }
    }
    Ok(())
}

fn read_dataset(h5: &hdf5_pure::File, path: &str, spec: &WeightSpec, layer: usize, name: &str) -> std::result::Result<ArrayD<f32>, String> {
    let what = format!("layer {} ({name}) weight {}", layer + 1, spec.name);
    let ds = h5.dataset(path).map_err(|e| format!("{what}: cannot open {path}: {e}"))?;
    let shape = ds.shape().map_err(|e| format!("{what}: {path}: {e}"))?;
    if shape.len() != spec.shape.len() || shape.iter().zip(spec.shape).any(|(&f, &o)| f != o as u64) {
        let shown = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        let shown = if shown.len() == 1 { format!("({},)", shown[0]) } else { format!("({})", shown.join(", ")) };
        return Err(format!("{what}: the file has shape {shown}, this model has {}", tuple_shape(spec.shape)));
    }
    let data = ds.read_f32().map_err(|e| format!("{what}: cannot read {path}: {e}"))?;
    ArrayD::from_shape_vec(IxDyn(spec.shape), data).map_err(|_| format!("{what}: {path} holds the wrong number of values"))
}

fn open_h5(bytes: Vec<u8>) -> std::result::Result<hdf5_pure::File, String> {
    hdf5_pure::File::from_bytes(bytes).map_err(|e| format!("unreadable HDF5: {e}"))
}

fn string_attr(group: &hdf5_pure::Group, name: &str) -> std::result::Result<Option<String>, String> {
    let attrs = group.attrs().map_err(|e| format!("unreadable HDF5 attributes: {e}"))?;
    Ok(match attrs.get(name) {
        Some(AttrValue::VarLenAsciiString(s) | AttrValue::VarLenString(s) | AttrValue::String(s) | AttrValue::AsciiString(s)) => {
            Some(s.clone())
        }
        _ => None,
    })
}

/// The largest `config.json` read from a `.keras` archive, uncompressed: Keras's model configs
/// take kilobytes to a few megabytes.
const CONFIG_LIMIT: u64 = 16 << 20;

/// The largest `model.weights.h5` of model `M` read from a `.keras` archive, uncompressed: 32
/// bytes a parameter (the weight and up to three optimizer slots, in float64) plus 64 MiB of HDF5
/// structure. A member declaring more is refused before it is decompressed, so that a small
/// hostile archive (a zip bomb) cannot make the reader allocate gigabytes.
fn weights_limit(m: &Meta) -> u64 {
    (m.params as u64).saturating_mul(32).saturating_add(64 << 20)
}

/// A `.keras` archive being read: the `zip` crate's reader over the file's bytes.
struct Archive<'a> {
    zip: zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
    /// The length of the file, which no member may run past.
    len: u64,
}

impl<'a> Archive<'a> {
    /// Reads the central directory of the zip archive `bytes`.
    fn new(bytes: &'a [u8]) -> std::result::Result<Self, String> {
        let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| format!("damaged .keras archive (zip): cannot read its central directory: {e}"))?;
        Ok(Archive { zip, len: bytes.len() as u64 })
    }

    /// The bytes of member `name` (stored or deflated), refusing a member that declares more than
    /// `limit` bytes uncompressed, and one whose data holds another size than declared or fails
    /// its CRC check.
    fn read(&mut self, name: &str, limit: u64) -> std::result::Result<Vec<u8>, String> {
        let index =
            self.zip.index_for_name(name).ok_or_else(|| format!("a zip archive without {name}: not a .keras file saved by Keras"))?;
        let damaged = |e: &dyn std::fmt::Display| format!("damaged .keras archive: member {name}: {e}");
        let declared = {
            let raw = self.zip.by_index_raw(index).map_err(|e| damaged(&e))?;
            if raw.encrypted() {
                return Err(format!("the .keras archive stores {name} encrypted: expected a plain member, as Keras writes"));
            }
            let method = match raw.compression() {
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated => None,
                // `Unsupported` is deprecated for building a method, not for reading its number.
                #[allow(deprecated)]
                zip::CompressionMethod::Unsupported(m) => Some(m.to_string()),
                m => Some(m.to_string()),
            };
            if let Some(m) = method {
                return Err(format!("the .keras archive stores {name} with compression method {m}: expected stored (0) or deflated (8)"));
            }
            if raw.data_start().saturating_add(raw.compressed_size()) > self.len {
                return Err(format!("damaged .keras archive: member {name} is truncated"));
            }
            if raw.size() > limit {
                return Err(format!(
                    "damaged .keras archive: member {name} declares {} bytes uncompressed, expected at most {limit} for this model",
                    raw.size()
                ));
            }
            raw.size()
        };
        // The buffer grows with the data actually there, never to the size the archive declares.
        let mut data = Vec::new();
        let reader = self.zip.by_index(index).map_err(|e| damaged(&e))?;
        reader.take(declared.saturating_add(1)).read_to_end(&mut data).map_err(|e| damaged(&e))?;
        match data.len() as u64 {
            n if n == declared => Ok(data),
            n if n > declared => Err(format!("damaged .keras archive: member {name} declares {declared} bytes, holds more")),
            n => Err(format!("damaged .keras archive: member {name} declares {declared} bytes, holds {n}")),
        }
    }
}

/// The bytes of a Keras 3 `.keras` archive holding model `M` with `weights` (in Keras order):
/// `metadata.json`, `config.json` (a Sequential model of `M`'s layers) and `model.weights.h5`,
/// which Python Keras opens with `keras.models.load_model`.
pub fn keras_archive<M: Model>(weights: &[ArrayD<f32>]) -> std::result::Result<Vec<u8>, String> {
    keras_archive_of(&Meta::of::<M>(), weights)
}

/// [`keras_archive`] for the model `m` describes.
fn keras_archive_of(m: &Meta, weights: &[ArrayD<f32>]) -> std::result::Result<Vec<u8>, String> {
    let config = serde_json::to_vec(&model_config_of(m)).map_err(|e| e.to_string())?;
    let metadata =
        serde_json::to_vec(&serde_json::json!({ "keras_version": "3.15.1", "date_saved": "keras-rs" })).map_err(|e| e.to_string())?;
    let h5 = weights_h5(m, weights)?;
    zip_stored(&[("metadata.json", &metadata), ("config.json", &config), ("model.weights.h5", &h5)])
}

/// The model's Keras config (Keras's `model.to_json()`): what `config.json` holds.
pub(crate) fn model_config<M: Model>() -> Value {
    model_config_of(&Meta::of::<M>())
}

/// [`model_config`] for the model `m` describes.
fn model_config_of(m: &Meta) -> Value {
    if !m.nodes.is_empty() {
        return functional_config(m);
    }
    let mut input = vec![Value::Null];
    input.extend(m.input_shape.iter().map(|&d| Value::from(d)));
    let mut layers = vec![serde_json::json!({
        "module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
        "config": { "batch_shape": input, "dtype": if m.input_indices.is_some() { "int32" } else { "float32" }, "sparse": false, "name": "input_layer" },
    })];
    for (i, layer) in m.layers.iter().enumerate() {
        if let Some(sub) = m.sub(i) {
            layers.push(model_config_of(&sub));
            continue;
        }
        let cfg = layer_config(layer);
        layers.push(serde_json::json!({ "module": "keras.layers", "class_name": layer.class, "registered_name": null, "config": cfg }));
    }
    serde_json::json!({
        "module": "keras", "class_name": "Sequential", "registered_name": null,
        "config": { "name": m.name, "trainable": true, "dtype": "float32", "layers": layers },
        "build_config": { "input_shape": input },
    })
}

/// A layer's Keras `config` (name, trainable, dtype and its architecture entries).
fn layer_config(layer: &LayerSpec) -> serde_json::Map<String, Value> {
    let mut cfg = serde_json::Map::new();
    cfg.insert("name".into(), layer.name.into());
    // Keras's SpatialDropout2D takes no `trainable` argument (its own config leaves it out).
    if layer.class != "SpatialDropout2D" {
        cfg.insert("trainable".into(), true.into());
    }
    cfg.insert("dtype".into(), "float32".into());
    for (key, value) in layer.config {
        let value = config_json(value);
        match key.split_once('.') {
            None => {
                cfg.insert((*key).into(), value);
            }
            // A wrapped layer: `{"module", "class_name", "config"}` under `outer`.
            Some((outer, inner)) => {
                let wrapped = cfg.entry(outer).or_insert_with(|| serde_json::json!({ "module": "keras.layers", "config": {} }));
                if inner == "class_name" {
                    wrapped["class_name"] = value;
                } else {
                    wrapped["config"][inner] = value;
                }
            }
        }
    }
    cfg
}

/// The `config.json` of a functional model: every layer with the calls that feed it
/// (`inbound_nodes`), the inputs and the output.
fn functional_config(m: &Meta) -> Value {
    const MERGES: [&str; 8] = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "CustomScaleLayer"];
    let tensor = |&(l, call): &(usize, usize)| {
        let source = &m.layers[l];
        let output = m.nodes.iter().filter(|n| n.layer == l).nth(call).map_or(source.output_shape, |n| n.output);
        let mut shape = vec![Value::Null];
        shape.extend(output.iter().map(|&d| Value::from(d)));
        serde_json::json!({ "class_name": "__keras_tensor__", "config": { "shape": shape, "dtype": "float32", "keras_history": [source.name, call, 0] } })
    };
    let mut layers = Vec::new();
    let mut inputs = Vec::new();
    for (i, layer) in m.layers.iter().enumerate() {
        if layer.class == "InputLayer" {
            let mut shape = vec![Value::Null];
            shape.extend(layer.output_shape.iter().map(|&d| Value::from(d)));
            let ids = match m.inputs.iter().find(|i| i.name == layer.name) {
                Some(spec) => spec.indices.is_some(),
                None => m.input_indices.is_some(),
            };
            let dtype = if ids { "int32" } else { "float32" };
            layers.push(serde_json::json!({
                "module": "keras.layers", "class_name": "InputLayer", "registered_name": null, "name": layer.name,
                "config": { "batch_shape": shape, "dtype": dtype, "sparse": false, "ragged": false, "name": layer.name, "optional": false },
                "inbound_nodes": [],
            }));
            inputs.push(layer.name);
            continue;
        }
        let nodes: Vec<Value> = m
            .nodes
            .iter()
            .filter(|n| n.layer == i)
            .map(|n| {
                let args: Vec<Value> = n.inputs.iter().map(tensor).collect();
                let arg = if MERGES.contains(&layer.class) || args.len() != 1 {
                    Value::Array(args)
                } else {
                    args.into_iter().next().expect("one")
                };
                serde_json::json!({ "args": [arg], "kwargs": {} })
            })
            .collect();
        if let Some(sub) = m.sub(i) {
            // A model used as a layer: its own config, with its calls.
            let mut entry = model_config_of(&sub);
            entry["name"] = layer.name.into();
            entry["inbound_nodes"] = Value::Array(nodes);
            layers.push(entry);
            continue;
        }
        // InceptionResNetV2's CustomScaleLayer is a class of Keras's application module, which
        // Keras's loader imports by this module path.
        let (module, registered) = match layer.class {
            "CustomScaleLayer" => ("keras.src.applications.inception_resnet_v2", Value::from("CustomScaleLayer")),
            _ => ("keras.layers", Value::Null),
        };
        layers.push(serde_json::json!({
            "module": module, "class_name": layer.class, "registered_name": registered, "name": layer.name,
            "config": layer_config(layer), "inbound_nodes": nodes,
        }));
    }
    // The inputs in the model's own order (its `INPUTS`), which `model.layers` sorts by depth.
    let order: Vec<&str> = if m.inputs.is_empty() { inputs } else { m.inputs.iter().map(|i| i.name).collect() };
    // Each output by its layer and that layer's last call (an output is its layer's result).
    let output_of = |layer: usize| serde_json::json!([m.layers[layer].name, m.nodes.iter().filter(|n| n.layer == layer).count() - 1, 0]);
    let output_layers: Vec<Value> = if m.outputs.is_empty() {
        vec![output_of(m.nodes.last().expect("a functional model has calls").layer)]
    } else {
        m.outputs.iter().map(|o| output_of(m.layers.iter().position(|l| l.name == o.name).expect("an output is a layer's"))).collect()
    };
    // One input or output is written as Keras writes `keras.Model(x, y)`'s, not as a list of
    // one: a model used as a layer then returns a tensor, not a list.
    let one_or_list = |mut items: Vec<Value>| if items.len() == 1 { items.remove(0) } else { Value::Array(items) };
    let input_layers = one_or_list(order.iter().map(|n| serde_json::json!([n, 0, 0])).collect());
    serde_json::json!({
        "module": "keras.src.models.functional", "class_name": "Functional", "registered_name": null,
        "config": {
            "name": m.name, "trainable": true, "layers": layers,
            "input_layers": input_layers,
            "output_layers": one_or_list(output_layers),
        },
    })
}

/// A configuration value as Keras writes it.
fn config_json(value: &ConfigValue) -> Value {
    match *value {
        ConfigValue::Int(n) => Value::from(n),
        ConfigValue::Float(x) => Value::from(x),
        ConfigValue::Bool(b) => Value::from(b),
        ConfigValue::LastAxis(_) => Value::from(-1),
        ConfigValue::Activation(a) => Value::from(a.name()),
        ConfigValue::Str(w) => Value::from(w),
        ConfigValue::Ints(v) => Value::from(v.to_vec()),
        ConfigValue::Shape(v) | ConfigValue::Axes(v) => Value::from(v.to_vec()),
        ConfigValue::None => Value::Null,
        ConfigValue::List(items) => Value::Array(items.iter().map(config_json).collect()),
        ConfigValue::Layer(class, config) => {
            let mut cfg = serde_json::Map::new();
            cfg.insert("trainable".into(), true.into());
            cfg.insert("dtype".into(), "float32".into());
            for (key, value) in config {
                cfg.insert((*key).into(), config_json(value));
            }
            serde_json::json!({ "module": "keras.layers", "class_name": class, "registered_name": null, "config": cfg })
        }
    }
}

/// A Keras 3 `.weights.h5` file of `M`'s weights (what Keras's `model.save_weights` writes and
/// `model.load_weights` reads).
pub fn weights_file<M: Model>(weights: &[ArrayD<f32>]) -> std::result::Result<Vec<u8>, String> {
    weights_file_of(&Meta::of::<M>(), weights)
}

/// [`weights_file`] for the model `m` describes.
fn weights_file_of(m: &Meta, weights: &[ArrayD<f32>]) -> std::result::Result<Vec<u8>, String> {
    weights_h5(m, weights)
}

/// Keras 3's weights layout: `layers/<name>/vars/0..` (every layer has its `vars` group; a
/// wrapper's layer holds the weights, in `layers/<name>/layer/vars`; a recurrent layer's weights
/// are its cell's, `layers/<name>/cell/vars`, and `Bidirectional` holds one such layer per
/// direction, `forward_layer` and `backward_layer`).
fn weights_h5(m: &Meta, weights: &[ArrayD<f32>]) -> std::result::Result<Vec<u8>, String> {
    /// A `vars` group holding `weights`, each with whether Keras keeps it as an int32.
    fn vars_group(parent: &mut hdf5_pure::GroupBuilder, name: &str, weights: &[(&ArrayD<f32>, bool)]) {
        let mut vars = parent.create_group("vars");
        vars.set_attr("name", AttrValue::String(name.into()));
        for (j, (w, int)) in weights.iter().enumerate() {
            let shape = w.shape().iter().map(|&d| d as u64).collect::<Vec<_>>();
            let dataset = vars.create_dataset(&j.to_string());
            if *int {
                dataset.with_i32_data(&w.iter().map(|&v| v as i32).collect::<Vec<_>>());
            } else {
                dataset.with_f32_data(&w.iter().copied().collect::<Vec<_>>());
            }
            dataset.with_shape(&shape);
        }
        parent.add_group(vars.finish());
    }
    /// A layer's group with an empty `vars` and the weights in `<inner>/vars`.
    fn nested_group(parent: &mut hdf5_pure::GroupBuilder, group_name: &str, inner: &str, name: &str, weights: &[(&ArrayD<f32>, bool)]) {
        let mut group = parent.create_group(group_name);
        vars_group(&mut group, name, &[]);
        let mut nested = group.create_group(inner);
        vars_group(&mut nested, name, weights);
        group.add_group(nested.finish());
        parent.add_group(group.finish());
    }
    /// Fills the `layers` group of `m` (a model, or a model used as a layer).
    fn layers_group(root_layers: &mut hdf5_pure::GroupBuilder, m: &Meta, weights: &[ArrayD<f32>]) {
        let mut next = weights.iter().zip(m.weights.iter());
        for (i, (layer, path)) in m.layers.iter().zip(layer_paths(m)).enumerate() {
            let path = path.as_str();
            let count = m.weights.iter().filter(|s| s.layer == layer.name).count();
            // Keras 3 keeps a Normalization's `count` as an int32 scalar.
            let own: Vec<(&ArrayD<f32>, bool)> =
                next.by_ref().take(count).map(|(w, spec)| (w, layer.class == "Normalization" && spec.name == "count")).collect();
            if let Some(sub) = m.sub(i) {
                // A model used as a layer: its own `layers`, and an empty `vars`.
                let mut group = root_layers.create_group(path);
                vars_group(&mut group, layer.name, &[]);
                let own: Vec<ArrayD<f32>> = own.iter().map(|(w, _)| (*w).clone()).collect();
                let mut inner = group.create_group("layers");
                layers_group(&mut inner, &sub, &own);
                group.add_group(inner.finish());
                root_layers.add_group(group.finish());
                continue;
            }
            match layer.class {
                "TimeDistributed" => nested_group(root_layers, path, "layer", layer.name, &own),
                "SimpleRNN" | "LSTM" | "GRU" => nested_group(root_layers, path, "cell", layer.name, &own),
                "Bidirectional" => {
                    let mut group = root_layers.create_group(path);
                    vars_group(&mut group, layer.name, &[]);
                    let (forward, backward) = own.split_at(own.len() / 2);
                    nested_group(&mut group, "forward_layer", "cell", layer.name, forward);
                    nested_group(&mut group, "backward_layer", "cell", layer.name, backward);
                    root_layers.add_group(group.finish());
                }
                _ => {
                    let mut group = root_layers.create_group(path);
                    vars_group(&mut group, layer.name, &own);
                    root_layers.add_group(group.finish());
                }
            }
        }
    }
    let mut builder = hdf5_pure::FileBuilder::new();
    let mut root_layers = builder.create_group("layers");
    layers_group(&mut root_layers, m, weights);
    builder.add_group(root_layers.finish());
    let mut vars = builder.create_group("vars");
    vars.set_attr("name", AttrValue::String(m.name.into()));
    builder.add_group(vars.finish());
    builder.finish().map_err(|e| format!("cannot write HDF5: {e}"))
}

/// A zip archive of stored (uncompressed) members, written by the `zip` crate.
fn zip_stored(members: &[(&str, &[u8])]) -> std::result::Result<Vec<u8>, String> {
    let cannot = |e: zip::result::ZipError| format!("cannot write the .keras archive: {e}");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(data.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(*name, options).map_err(cannot)?;
        std::io::Write::write_all(&mut zip, data).map_err(|e| cannot(e.into()))?;
    }
    Ok(zip.finish().map_err(cannot)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `members`, each stored or deflated, written by the `zip` crate.
    fn archive(members: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data, method) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(*method)).unwrap();
            std::io::Write::write_all(&mut zip, data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// The offset of the central directory entry of member `name` in `bytes`.
    fn central_entry(bytes: &[u8], name: &str) -> usize {
        (0..bytes.len() - 46).find(|&i| bytes[i..].starts_with(b"PK\x01\x02") && bytes[i + 46..].starts_with(name.as_bytes())).unwrap()
    }

    fn read(bytes: &[u8], name: &str, limit: u64) -> std::result::Result<Vec<u8>, String> {
        Archive::new(bytes)?.read(name, limit)
    }

    /// Keras's lists of names: one attribute, or its chunks in order; Keras 3's variable-length
    /// strings, Keras 2's fixed-length ones, an empty list as Keras writes it (an empty float64
    /// array); anything else is an error naming the attribute.
    #[test]
    fn names_are_read_whole_or_from_chunks() {
        let attrs = |pairs: Vec<(&str, AttrValue)>| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<HashMap<_, _>>();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let whole = attrs(vec![("layer_names", AttrValue::VarLenStringArray(strings(&["a", "b"])))]);
        assert_eq!(names_attr(&whole, "layer_names", "the file").unwrap(), Some(strings(&["a", "b"])));
        let chunked = attrs(vec![
            ("weight_names1", AttrValue::AsciiStringArray(strings(&["c"]))),
            ("weight_names0", AttrValue::StringArray(strings(&["a", "b"]))),
            ("weight_names3", AttrValue::AsciiStringArray(strings(&["not read: chunk 2 is missing"]))),
        ]);
        assert_eq!(names_attr(&chunked, "weight_names", "group x").unwrap(), Some(strings(&["a", "b", "c"])));
        let empty = attrs(vec![("weight_names", AttrValue::F64Array(vec![]))]);
        assert_eq!(names_attr(&empty, "weight_names", "group x").unwrap(), Some(vec![]));
        let one = attrs(vec![("weight_names", AttrValue::AsciiString("x/kernel:0".into()))]);
        assert_eq!(names_attr(&one, "weight_names", "group x").unwrap(), Some(strings(&["x/kernel:0"])));
        assert_eq!(names_attr(&one, "layer_names", "the file").unwrap(), None);
        let numbers = attrs(vec![("layer_names0", AttrValue::I32Array(vec![1, 2]))]);
        assert_eq!(
            names_attr(&numbers, "layer_names", "the file").unwrap_err(),
            "the file: attribute layer_names0 is not a list of names: expected strings, as Keras writes them"
        );
    }

    #[test]
    fn stored_and_deflated_members_are_read() {
        let json = br#"{"class_name": "Sequential"}"#.repeat(40);
        let weights: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let bytes = zip_stored(&[("config.json", &json), ("model.weights.h5", &weights)]).unwrap();
        assert!(bytes.starts_with(ZIP_MAGIC));
        assert_eq!(read(&bytes, "config.json", CONFIG_LIMIT).unwrap(), json);
        assert_eq!(read(&bytes, "model.weights.h5", CONFIG_LIMIT).unwrap(), weights);
        let deflated = archive(&[("config.json", &json, zip::CompressionMethod::Deflated)]);
        assert!(deflated.len() < json.len(), "the member is compressed");
        assert_eq!(read(&deflated, "config.json", CONFIG_LIMIT).unwrap(), json);
    }

    #[test]
    fn a_missing_member_and_a_non_zip_are_named() {
        let bytes = zip_stored(&[("notes.json", b"{}")]).unwrap();
        assert_eq!(
            read(&bytes, "config.json", CONFIG_LIMIT).unwrap_err(),
            "a zip archive without config.json: not a .keras file saved by Keras"
        );
        let e = read(&bytes[..bytes.len() - 30], "config.json", CONFIG_LIMIT).unwrap_err();
        assert!(e.starts_with("damaged .keras archive (zip): "), "{e}");
    }

    /// A zip bomb: a deflated member whose declared size is over the limit is refused before it
    /// is decompressed, and one that declares less than it holds is refused after the declared
    /// size and one byte, whatever it would inflate to.
    #[test]
    fn a_member_over_the_limit_or_its_declared_size_is_refused() {
        let zeros = vec![0u8; 1 << 20];
        let mut bytes = archive(&[("config.json", &zeros, zip::CompressionMethod::Deflated)]);
        assert!(bytes.len() < 10_000, "1 MiB of zeros deflates to {} bytes", bytes.len());
        let e = read(&bytes, "config.json", 1000).unwrap_err();
        assert_eq!(
            e,
            "damaged .keras archive: member config.json declares 1048576 bytes uncompressed, expected at most 1000 for this model"
        );
        let at = central_entry(&bytes, "config.json");
        bytes[at + 24..at + 28].copy_from_slice(&100u32.to_le_bytes());
        let e = read(&bytes, "config.json", 1000).unwrap_err();
        assert_eq!(e, "damaged .keras archive: member config.json declares 100 bytes, holds more");
        bytes[at + 24..at + 28].copy_from_slice(&(2u32 << 20).to_le_bytes());
        let e = read(&bytes, "config.json", 4 << 20).unwrap_err();
        assert_eq!(e, "damaged .keras archive: member config.json declares 2097152 bytes, holds 1048576");
    }

    #[test]
    fn damaged_and_foreign_members_are_refused() {
        let data = b"0123456789".repeat(10);
        let bytes = zip_stored(&[("config.json", &data)]).unwrap();
        let at = central_entry(&bytes, "config.json");
        let patched = |offset: usize, value: &[u8]| {
            let mut b = bytes.clone();
            b[at + offset..at + offset + value.len()].copy_from_slice(value);
            read(&b, "config.json", CONFIG_LIMIT).unwrap_err()
        };
        assert_eq!(
            patched(10, &12u16.to_le_bytes()),
            "the .keras archive stores config.json with compression method 12: expected stored (0) or deflated (8)"
        );
        assert_eq!(
            patched(8, &1u16.to_le_bytes()),
            "the .keras archive stores config.json encrypted: expected a plain member, as Keras writes"
        );
        assert_eq!(patched(20, &100_000u32.to_le_bytes()), "damaged .keras archive: member config.json is truncated");
        let e = patched(16, &0xdead_beefu32.to_le_bytes());
        assert!(e.starts_with("damaged .keras archive: member config.json: ") && e.contains("checksum"), "{e}");
        let e = patched(42, &7u32.to_le_bytes());
        assert!(e.starts_with("damaged .keras archive: member config.json: "), "{e}");
    }
}
