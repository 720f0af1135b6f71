//! `plot_model` and `model_to_dot`: a model's graph in Graphviz's DOT language, labelled as
//! Keras 3 labels it (`keras/src/utils/model_visualization.py`), and rendered by Graphviz's `dot`
//! program as Keras renders it through pydot. Re-exported from [`crate::utils`].

use crate::io::write_atomic;
use crate::model::{LayerSpec, Model, NodeSpec};
use crate::train::Network;
use crate::{Error, Result};
use std::borrow::Borrow;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `splines` values Keras documents for `plot_model`.
const SPLINES: [&str; 5] = ["ortho", "curved", "polyline", "spline", "line"];

/// The options of [`plot_model`] (Keras's keyword arguments), built as `FitArgs` is:
/// `PlotModel::default().show_shapes(true).rankdir("LR")`.
///
/// The defaults are Keras 3's `plot_model` defaults: no shapes, no dtypes, **no layer names**
/// (each box shows its class; Keras 3 turned names off by default), top to bottom, 200 dots per
/// inch, orthogonal edges.
///
/// ```
/// # include!("doc_model.rs");
/// # fn main() -> keras_runtime::Result<()> {
/// use keras_runtime::utils::PlotModel;
/// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
/// // `model` is a `functional!` model with inputs `in_a: [6]` and `in_b: [3]`.
/// let options = PlotModel::default().show_shapes(true).show_layer_names(true).rankdir("LR");
/// let dot = options.to_dot(&model)?;
/// assert!(dot.contains("rankdir=LR;"));
/// assert!(dot.contains("<b>concat</b> (Concatenate)"));
/// assert!(dot.contains("Input shape: <b>[(None, 4), (None, 4)]</b>"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PlotModel {
    show_shapes: bool,
    show_dtype: bool,
    show_layer_names: bool,
    rankdir: String,
    expand_nested: bool,
    dpi: u32,
    show_layer_activations: bool,
    show_trainable: bool,
    splines: String,
    dot_program: PathBuf,
}

impl Default for PlotModel {
    /// Keras 3's defaults: see [`PlotModel`].
    fn default() -> Self {
        PlotModel {
            show_shapes: false,
            show_dtype: false,
            show_layer_names: false,
            rankdir: "TB".to_string(),
            expand_nested: false,
            dpi: 200,
            show_layer_activations: false,
            show_trainable: false,
            splines: "ortho".to_string(),
            dot_program: PathBuf::from("dot"),
        }
    }
}

impl PlotModel {
    /// Whether each box shows its layer's shapes (default `false`): `Input shape: (None, 6)` (a
    /// list of shapes for a merge) and `Output shape: (None, 4)`, of the layer's first call, as
    /// Keras shows them; an input shows only its output shape.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let dot = PlotModel::default().show_shapes(true).to_dot(&model)?;
    /// assert!(dot.contains("Input shape: <b>(None, 6)</b>"));
    /// assert!(dot.contains("Output shape: <b>(None, 4)</b>"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_shapes(mut self, show: bool) -> Self {
        self.show_shapes = show;
        self
    }

    /// Whether each box shows its layer's output dtype (default `false`): `float32`, or `int32`
    /// for an input that holds token ids.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let dot = PlotModel::default().show_dtype(true).to_dot(&model)?;
    /// assert!(dot.contains("Output dtype: <b>float32</b>"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_dtype(mut self, show: bool) -> Self {
        self.show_dtype = show;
        self
    }

    /// Whether each box is titled with its layer's name before the class, **`dense_a`** (Dense),
    /// or with the class alone, **Dense** (default `false`, as in Keras 3's `plot_model`).
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// assert!(PlotModel::default().to_dot(&model)?.contains("<b>Dense</b>"));
    /// assert!(PlotModel::default().show_layer_names(true).to_dot(&model)?.contains("<b>dense_a</b> (Dense)"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_layer_names(mut self, show: bool) -> Self {
        self.show_layer_names = show;
        self
    }

    /// The direction of the plot: `"TB"` (top to bottom, the default) or `"LR"` (left to
    /// right). Anything else is an `Err` when the plot is made.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// assert!(PlotModel::default().rankdir("LR").to_dot(&model)?.contains("rankdir=LR;"));
    /// assert!(PlotModel::default().rankdir("up").to_dot(&model).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn rankdir(mut self, rankdir: impl Into<String>) -> Self {
        self.rankdir = rankdir.into();
        self
    }

    /// Whether nested models are drawn as clusters of their layers (default `false`). Accepted
    /// for Keras's sake, not drawn yet: a model used as a layer (`use Encoder;`) is one node,
    /// as Keras draws it without `expand_nested` (Keras expands only nested `Sequential` and
    /// `Functional` models, not wrappers such as `Bidirectional`).
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// assert_eq!(PlotModel::default().expand_nested(true).to_dot(&model)?, PlotModel::default().to_dot(&model)?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn expand_nested(mut self, expand: bool) -> Self {
        self.expand_nested = expand;
        self
    }

    /// The resolution of a rendered PNG or PDF in dots per inch (default 200, Keras 3's): the
    /// graph's size in points times `dpi / 72` pixels. `0` is an `Err` when the plot is made.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// assert!(PlotModel::default().dpi(96).to_dot(&model)?.contains("dpi=96;"));
    /// assert!(PlotModel::default().dpi(0).to_dot(&model).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn dpi(mut self, dpi: u32) -> Self {
        self.dpi = dpi;
        self
    }

    /// Whether each box of a layer with an activation (Dense, convolutions, recurrent layers,
    /// Activation) shows it: `Activation: relu` (default `false`).
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let dot = PlotModel::default().show_layer_activations(true).to_dot(&model)?;
    /// assert!(dot.contains("Activation: <b>softmax</b>"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_layer_activations(mut self, show: bool) -> Self {
        self.show_layer_activations = show;
        self
    }

    /// Whether each box of a layer with weights shows whether it is trainable (default `false`):
    /// a green `Trainable` cell (every layer of a keras-rs model is).
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let dot = PlotModel::default().show_trainable(true).to_dot(&model)?;
    /// assert_eq!(dot.matches("<b>Trainable</b>").count(), 3); // the three Dense layers
    /// # Ok(())
    /// # }
    /// ```
    pub fn show_trainable(mut self, show: bool) -> Self {
        self.show_trainable = show;
        self
    }

    /// How edges are drawn: `"ortho"` (right angles, the default), `"curved"`, `"polyline"`,
    /// `"spline"` or `"line"`, as Keras offers; anything else is an `Err` when the plot is made.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// assert!(PlotModel::default().splines("spline").to_dot(&model)?.contains("splines=spline;"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn splines(mut self, splines: impl Into<String>) -> Self {
        self.splines = splines.into();
        self
    }

    /// The Graphviz program that renders PNG, SVG and PDF files (default `dot`, looked up on
    /// `PATH`, as pydot does): a path such as `/opt/graphviz/bin/dot` where it is elsewhere.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::{PlotModel, plot_model};
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let options = PlotModel::default().dot_program("/no/such/graphviz/dot");
    /// let err = plot_model(&model, "model.png", options).unwrap_err().to_string();
    /// assert!(err.contains("install Graphviz"), "{err}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn dot_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.dot_program = program.into();
        self
    }

    /// The DOT text of `model`'s graph (Keras's `model_to_dot`), without Graphviz: one node per
    /// layer, as Keras 3 labels it (an HTML-like table: the name and class, then the options'
    /// rows), and one edge per connection. A Sequential model's boxes are its layers, one after
    /// the other (no input box, as Keras's `model.layers`); a functional model's include its
    /// inputs, and a layer called several times is one box (with an edge to itself where it
    /// is called on its own output). Node ids are the layer names. Bad options are an `Err`.
    ///
    /// ```
    /// # include!("doc_model.rs");
    /// # fn main() -> keras_runtime::Result<()> {
    /// # use keras_runtime::utils::PlotModel;
    /// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
    /// let dot = PlotModel::default().to_dot(&model)?;
    /// assert!(dot.starts_with("digraph G {\nrankdir=TB;\nconcentrate=true;\ndpi=200;\nsplines=ortho;\nnode [shape=record];\n"));
    /// assert!(dot.contains("\"dense_a\" -> \"concat\" [penwidth=2];\n\"dense_b\" -> \"concat\" [penwidth=2];\n"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_dot<N: Network>(&self, model: &N) -> Result<String> {
        let _ = model;
        self.validate()?;
        Ok(dot_text::<N::Model>(self))
    }

    fn validate(&self) -> Result<()> {
        if self.rankdir != "TB" && self.rankdir != "LR" {
            return Err(Error::value(
                "plot_model rankdir",
                "\"TB\" (top to bottom) or \"LR\" (left to right)",
                format!("{:?}", self.rankdir),
            ));
        }
        if self.dpi == 0 {
            return Err(Error::value("plot_model dpi", "a resolution of at least 1 dot per inch", 0));
        }
        if !SPLINES.contains(&self.splines.as_str()) {
            return Err(Error::value("plot_model splines", SPLINES.map(|s| format!("{s:?}")).join(", "), format!("{:?}", self.splines)));
        }
        Ok(())
    }
}

/// What a file name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Rendered by `dot -T<name>`.
    Graphviz(&'static str),
    /// The DOT text itself.
    Dot,
}

/// The format of `path` by its extension, as Keras picks it (none: PNG).
fn format_of(path: &Path) -> Result<Format> {
    let Some(ext) = path.extension() else { return Ok(Format::Graphviz("png")) };
    match ext.to_string_lossy().to_ascii_lowercase().as_str() {
        "png" => Ok(Format::Graphviz("png")),
        "svg" => Ok(Format::Graphviz("svg")),
        "pdf" => Ok(Format::Graphviz("pdf")),
        "dot" | "gv" => Ok(Format::Dot),
        other => Err(Error::value(
            format!("plot_model file {}", path.display()),
            "a name ending in .png, .svg or .pdf (rendered by Graphviz) or .dot (the DOT text)",
            format!("the extension .{other}"),
        )),
    }
}

/// Draws `model`'s graph into `to_file`, as `keras.utils.plot_model(model, to_file, ...)`:
/// `.png`, `.svg` or `.pdf` (or no extension: PNG) are rendered by Graphviz's `dot` program
/// (`dot -T<format> -Gdpi=<dpi>`, the DOT text of [`PlotModel::to_dot`] on its input); `.dot`
/// (or `.gv`) writes the DOT text itself, and needs no Graphviz.
///
/// The file is written atomically: the image goes to a temporary file beside `to_file` that
/// replaces it only once `dot` has succeeded, so a failure leaves the previous file, if any, as
/// it was. Errors: another extension, bad options (a `rankdir` other than `"TB"`/`"LR"`, `dpi`
/// 0), `dot` missing (an [`Error::Io`] of kind `NotFound` that says to install Graphviz, e.g.
/// `apt install graphviz`, and that `PlotModel::to_dot` or a `.dot` file gives the DOT text
/// instead), or `dot` failing (its message).
///
/// `model` is a generated model or a compiled one (any [`Network`]).
///
/// ```
/// # include!("doc_model.rs");
/// # fn main() -> keras_runtime::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("keras-doc-plot-model-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use keras_runtime::utils::{PlotModel, plot_model};
/// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
/// // With Graphviz installed: plot_model(&model, "model.png", PlotModel::default().show_shapes(true))?;
/// plot_model(&model, dir.join("model.dot"), PlotModel::default().show_shapes(true))?;
/// assert!(std::fs::read_to_string(dir.join("model.dot")).unwrap().starts_with("digraph G {"));
/// assert!(plot_model(&model, dir.join("model.bmp"), PlotModel::default()).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
pub fn plot_model<N: Network>(model: &N, to_file: impl AsRef<Path>, options: impl Borrow<PlotModel>) -> Result<()> {
    let (path, options) = (to_file.as_ref(), options.borrow());
    let format = format_of(path)?;
    let dot = options.to_dot(model)?;
    match format {
        Format::Dot => {
            write_atomic(path, |w| w.write_all(dot.as_bytes()).map_err(|e| Error::Io { path: path.display().to_string(), source: e }))
        }
        Format::Graphviz(format) => render(&options.dot_program, format, options.dpi, dot, path),
    }
}

/// Keras's `model_to_dot(model, ...)`: the same as `options.to_dot(model)` (see
/// [`PlotModel::to_dot`]).
///
/// ```
/// # include!("doc_model.rs");
/// # fn main() -> keras_runtime::Result<()> {
/// use keras_runtime::utils::{PlotModel, model_to_dot};
/// # let model = <TwoTowers as keras_runtime::Model>::create(&keras_runtime::Cpu::default())?;
/// let dot = model_to_dot(&model, PlotModel::default().show_layer_names(true))?;
/// assert!(dot.contains("\"in_a\" [label=<<table border=\"0\" cellborder=\"1\" bgcolor=\"black\" cellpadding=\"10\"><tr><td colspan=\"1\" bgcolor=\"black\"><font point-size=\"16\" color=\"white\"><b>in_a</b> (InputLayer)</font></td></tr></table>>, fontname=Helvetica, border=0, margin=0];"));
/// # Ok(())
/// # }
/// ```
pub fn model_to_dot<N: Network>(model: &N, options: impl Borrow<PlotModel>) -> Result<String> {
    options.borrow().to_dot(model)
}

/// Runs `program -T<format> -Gdpi=<dpi>` on `dot` and writes what it prints to `path`, atomically.
fn render(program: &Path, format: &str, dpi: u32, dot: String, path: &Path) -> Result<()> {
    let shown = program.display().to_string();
    let io_err = |source| Error::Io { path: shown.clone(), source };
    let mut child = match Command::new(program)
        .arg(format!("-T{format}"))
        .arg(format!("-Gdpi={dpi}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let message = format!(
                "Graphviz's `dot` program was not found, and plot_model needs it to render {}: install Graphviz \
                 (Debian/Ubuntu: `apt install graphviz`; macOS: `brew install graphviz`; others: https://graphviz.org/download/), \
                 or get the DOT text without Graphviz from `PlotModel::to_dot` (or a file name ending in .dot) and render it elsewhere",
                path.display()
            );
            return Err(Error::Io { path: shown, source: std::io::Error::new(std::io::ErrorKind::NotFound, message) });
        }
        Err(e) => return Err(io_err(e)),
    };
    // Feed and drain `dot` on their own threads, so that neither pipe can fill and stall it.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(dot.as_bytes()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let drainer = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let written = write_atomic(path, |w| {
        std::io::copy(&mut stdout, w).map_err(io_err)?;
        let status = child.wait().map_err(io_err)?;
        let messages = drainer.join().unwrap_or_default();
        if !status.success() {
            return Err(Error::Config(format!(
                "plot_model: Graphviz's `{shown}` failed ({status}) rendering {}: {}",
                path.display(),
                messages.trim()
            )));
        }
        // `dot` read everything before drawing; a write error here would have failed it above.
        let _ = feeder.join();
        Ok(())
    });
    if written.is_err() {
        // The temporary file could not be made, or the copy failed: stop `dot` if it still runs.
        let _ = child.kill();
        let _ = child.wait();
    }
    written
}

/// `(None, 6)`, as Python prints a Keras tensor's shape.
fn shape(per_sample: &[usize]) -> String {
    match per_sample {
        [] => "(None,)".to_string(),
        dims => format!("(None, {})", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Text for an HTML-like label.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A quoted DOT id.
fn id(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What one box shows, beyond its layer's name and class.
struct Facts {
    /// The first call's input shape(s), `None` for an input.
    input: Option<String>,
    /// The first call's output shape.
    output: String,
    /// The output dtype.
    dtype: &'static str,
}

/// The shapes and dtype of every layer: of its first call, as Keras's `layer.input` and
/// `layer.output` give them.
fn facts<M: Model>() -> Vec<Facts> {
    let (layers, nodes) = (M::LAYERS, M::NODES);
    if nodes.is_empty() {
        // Sequential: each layer reads what the one before it made.
        return layers
            .iter()
            .enumerate()
            .map(|(i, l)| Facts {
                input: Some(shape(if i == 0 { M::INPUT_SHAPE } else { layers[i - 1].output_shape })),
                output: shape(l.output_shape),
                dtype: "float32",
            })
            .collect();
    }
    let call = |l: usize, k: usize| -> &'static [usize] {
        if layers[l].class == "InputLayer" {
            return layers[l].output_shape;
        }
        nodes.iter().filter(|n| n.layer == l).nth(k).map_or(layers[l].output_shape, |n| n.output)
    };
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if l.class == "InputLayer" {
                let ids = match M::INPUTS.iter().find(|s| s.name == l.name) {
                    Some(spec) => spec.indices.is_some(),
                    None => M::INPUT_INDICES.is_some(),
                };
                return Facts { input: None, output: shape(l.output_shape), dtype: if ids { "int32" } else { "float32" } };
            }
            let first: Option<&NodeSpec> = nodes.iter().find(|n| n.layer == i);
            let input = first.map(|n| match n.inputs {
                [one] => shape(call(one.0, one.1)),
                many => format!("[{}]", many.iter().map(|&(l, k)| shape(call(l, k))).collect::<Vec<_>>().join(", ")),
            });
            let output = first.map_or(shape(l.output_shape), |n| shape(n.output));
            Facts { input: Some(input.unwrap_or_else(|| "?".to_string())), output, dtype: "float32" }
        })
        .collect()
}

/// Keras 3's `make_layer_label`: an HTML-like table, the name and class on black, then the
/// activation, then one row of shapes, dtype and trainability.
fn label(o: &PlotModel, layer: &LayerSpec, facts: &Facts) -> String {
    let mut t = String::from(r#"<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">"#);
    let colspan = (usize::from(o.show_dtype) + usize::from(o.show_trainable) + if o.show_shapes { 2 } else { 0 }).max(1);
    let (name, class) = (html(layer.name), html(layer.class));
    let title = if o.show_layer_names { format!("<b>{name}</b> ({class})") } else { format!("<b>{class}</b>") };
    let _ = write!(t, r#"<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">{title}</font></td></tr>"#);
    if o.show_layer_activations
        && let Some((_, activation)) = layer.config.iter().find(|(key, _)| *key == "activation")
    {
        let activation = html(&activation.to_string());
        let _ = write!(
            t,
            r#"<tr><td bgcolor="white" colspan="{colspan}"><font point-size="14">Activation: <b>{activation}</b></font></td></tr>"#
        );
    }
    let mut cols = String::new();
    if o.show_shapes {
        if let Some(input) = &facts.input {
            let _ = write!(cols, r#"<td bgcolor="white"><font point-size="14">Input shape: <b>{input}</b></font></td>"#);
        }
        let _ = write!(cols, r#"<td bgcolor="white"><font point-size="14">Output shape: <b>{}</b></font></td>"#, facts.output);
    }
    if o.show_dtype {
        let _ = write!(cols, r#"<td bgcolor="white"><font point-size="14">Output dtype: <b>{}</b></font></td>"#, facts.dtype);
    }
    if o.show_trainable && layer.params > 0 {
        cols.push_str(r#"<td bgcolor="forestgreen"><font point-size="14" color="white"><b>Trainable</b></font></td>"#);
    }
    if !cols.is_empty() {
        let _ = write!(t, "<tr>{cols}</tr>");
    }
    t.push_str("</table>>");
    t
}

/// Keras 3's `model_to_dot`, as pydot writes it (node ids are the layer names rather than
/// Python object ids).
fn dot_text<M: Model>(o: &PlotModel) -> String {
    let (layers, nodes) = (M::LAYERS, M::NODES);
    let mut out = String::from("digraph G {\n");
    let _ = writeln!(out, "rankdir={};\nconcentrate=true;\ndpi={};\nsplines={};\nnode [shape=record];", o.rankdir, o.dpi, o.splines);
    for (layer, facts) in layers.iter().zip(facts::<M>()) {
        let _ = writeln!(out, "{} [label={}, fontname=Helvetica, border=0, margin=0];", id(layer.name), label(o, layer, &facts));
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    if nodes.is_empty() {
        edges.extend((1..layers.len()).map(|i| (i - 1, i)));
    } else {
        // Layer by layer, call by call, input by input; an edge drawn once however often it is used.
        for i in 0..layers.len() {
            for n in nodes.iter().filter(|n| n.layer == i) {
                for &(source, _) in n.inputs {
                    if !edges.contains(&(source, i)) {
                        edges.push((source, i));
                    }
                }
            }
        }
    }
    for (a, b) in edges {
        let _ = writeln!(out, "{} -> {} [penwidth=2];", id(layers[a].name), id(layers[b].name));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(format_of(Path::new("m.png")).unwrap(), Format::Graphviz("png"));
        assert_eq!(format_of(Path::new("dir/m.SVG")).unwrap(), Format::Graphviz("svg"));
        assert_eq!(format_of(Path::new("m.pdf")).unwrap(), Format::Graphviz("pdf"));
        assert_eq!(format_of(Path::new("model")).unwrap(), Format::Graphviz("png"));
        assert_eq!(format_of(Path::new("m.dot")).unwrap(), Format::Dot);
        let e = format_of(Path::new("m.jpeg")).unwrap_err().to_string();
        assert!(e.contains("found the extension .jpeg") && e.contains(".png, .svg or .pdf"), "{e}");
    }

    #[test]
    fn shapes_and_escapes() {
        assert_eq!(shape(&[6]), "(None, 6)");
        assert_eq!(shape(&[28, 28, 1]), "(None, 28, 28, 1)");
        assert_eq!(shape(&[]), "(None,)");
        assert_eq!(html("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
        assert_eq!(id("x\"y\\"), "\"x\\\"y\\\\\"");
    }

    #[test]
    fn options_are_checked() {
        let o = PlotModel::default();
        assert!(o.validate().is_ok());
        assert_eq!(
            o.clone().rankdir("BT").validate().unwrap_err().to_string(),
            "plot_model rankdir: expected \"TB\" (top to bottom) or \"LR\" (left to right), found \"BT\""
        );
        assert!(o.clone().dpi(0).validate().unwrap_err().to_string().starts_with("plot_model dpi: expected a resolution"));
        assert!(o.splines("wavy").validate().unwrap_err().to_string().contains("\"ortho\", \"curved\""));
    }
}
