//! `keras::utils::plot_model` and `PlotModel::to_dot`: the DOT text is Keras 3.15's own
//! `model_to_dot` text (`fixtures/plot-model-keras.md`, written by `fixtures/gen_plot_model.py`),
//! node ids aside, for Sequential and functional models and three sets of options; Graphviz's
//! `dot` (Debian `graphviz`) renders it to PNG, SVG and PDF, and the SVG holds the labels; a
//! missing `dot`, a bad extension or option, and a failed render are errors that leave no file.
//!
//! The rendering tests need `dot` on `PATH`: without it they skip with a message, except under
//! `CI=true`, where `.ci/run` installs it and its absence fails.

use keras::prelude::*;
use keras::utils::{PlotModel, model_to_dot, plot_model};
use std::path::{Path, PathBuf};
use std::process::Command;

sequential! {
    /// gen_plot_model.py `mlp`.
    struct Mlp = Input(784) => Dense(32, relu) => BatchNormalization() => Dense(10, softmax);
}

sequential! {
    /// gen_plot_model.py `cnn` (examples/cnn.rs).
    struct Cnn = Input((28, 28, 1)) => Conv2D(32, (3, 3), relu) => MaxPooling2D((2, 2))
        => Flatten() => Dense(128, relu) => Dropout(0.3) => Dense(10, softmax);
}

sequential! {
    /// gen_plot_model.py `lstm` (examples/lstm.rs).
    struct SumSign = Input((24, 1)) => LSTM(32) => Dense(16, relu) => Dense(1, sigmoid);
}

functional! {
    /// gen_plot_model.py `branches`: one stem, two branches, merged twice.
    struct Branches(x: [16]) -> out {
        let stem = Dense(8, relu, name = "stem")(x);
        let left = Dense(8, relu, name = "left")(stem);
        let right = Dense(8, tanh, name = "right")(stem);
        let both = Add(name = "add")(left, right);
        let joined = Concatenate(name = "cat")(both, stem);
        let out = Dense(3, softmax, name = "out")(joined);
    }

    /// gen_plot_model.py `two_input_concat`.
    struct TwoInputConcat(in_a: [6], in_b: [3]) -> dense_out {
        let a = Dense(4, relu, name = "dense_a")(in_a);
        let b = Dense(4, relu, name = "dense_b")(in_b);
        let joined = Concatenate(name = "concat")(a, b);
        let dense_out = Dense(2, softmax, name = "dense_out")(joined);
    }

    /// gen_plot_model.py `shared_three`: a layer called three times, once on its own output.
    struct SharedThree(x: [6]) -> out {
        let h = Dense(5, tanh, name = "h")(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add(name = "add")(h, b, c);
        let out = Dense(3, softmax, name = "out")(s);
    }

    /// gen_plot_model.py `text_meta`: token ids (an int32 input) beside floats.
    struct TextMeta(ids: [6], meta: [3]) -> out {
        let e = Embedding(20, 4, name = "emb")(ids);
        let p = GlobalAveragePooling1D(name = "pool")(e);
        let m = Dense(4, relu, name = "m")(meta);
        let j = Concatenate(name = "j")(p, m);
        let out = Dense(3, softmax, name = "out")(j);
    }
}

/// The options of each fixture section: plot_model's defaults, shapes and names, everything.
fn options(key: &str) -> PlotModel {
    match key {
        "default" => PlotModel::default(),
        "shapes" => PlotModel::default().show_shapes(true).show_layer_names(true),
        "all" => PlotModel::default()
            .show_shapes(true)
            .show_dtype(true)
            .show_layer_names(true)
            .rankdir("LR")
            .dpi(96)
            .show_layer_activations(true)
            .show_trainable(true),
        _ => unreachable!("{key}"),
    }
}

/// Section `## {name}` of plot-model-keras.md: Keras's DOT text.
fn keras_dot(name: &str) -> String {
    let doc = include_str!("fixtures/plot-model-keras.md");
    let start = doc.find(&format!("## {name}\n")).unwrap_or_else(|| panic!("no section {name}"));
    let block = &doc[start..];
    let a = block.find("```dot\n").unwrap() + "```dot\n".len();
    let b = block[a..].find("```").unwrap();
    block[a..a + b].to_string()
}

/// Every model and option set gives the text Keras 3's `model_to_dot` gives, line for line
/// (node ids are the layer names here, Python object ids there).
#[test]
fn dot_text_is_keras_3s() {
    let cpu = Cpu::default();
    let check = |name: &str, dot: &dyn Fn(&PlotModel) -> String| {
        for key in ["default", "shapes", "all"] {
            let (ours, keras) = (dot(&options(key)), keras_dot(&format!("{name} {key}")));
            for (i, (o, k)) in ours.lines().zip(keras.lines()).enumerate() {
                assert_eq!(o, k, "{name} {key}, line {}", i + 1);
            }
            assert_eq!(ours, keras, "{name} {key}");
        }
    };
    let (mlp, cnn, lstm) = (Mlp::new(&cpu), Cnn::new(&cpu), SumSign::new(&cpu));
    let (branches, two, shared, text) = (Branches::new(&cpu), TwoInputConcat::new(&cpu), SharedThree::new(&cpu), TextMeta::new(&cpu));
    check("mlp", &|o| o.to_dot(&mlp).unwrap());
    check("cnn", &|o| o.to_dot(&cnn).unwrap());
    check("lstm", &|o| o.to_dot(&lstm).unwrap());
    check("branches", &|o| o.to_dot(&branches).unwrap());
    check("two_input_concat", &|o| o.to_dot(&two).unwrap());
    check("shared_three", &|o| o.to_dot(&shared).unwrap());
    check("text_meta", &|o| o.to_dot(&text).unwrap());
}

/// The lines `a -> b [penwidth=2];` of a DOT text, as pairs of names.
fn edges(dot: &str) -> Vec<(String, String)> {
    dot.lines()
        .filter_map(|l| l.strip_suffix(" [penwidth=2];"))
        .map(|l| {
            let (a, b) = l.split_once(" -> ").expect("an edge");
            (a.trim_matches('"').to_string(), b.trim_matches('"').to_string())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The graph's structure read off the DOT text: one edge per connection (a branch is two edges
/// out of one node, a merge several into one, a shared layer's calls one edge each way, drawn
/// once), the direction, the resolution; a compiled model plots as its model does.
#[test]
fn dot_structure_has_every_connection() {
    let cpu = Cpu::default();
    let dot = PlotModel::default().to_dot(&Branches::new(&cpu)).unwrap();
    assert_eq!(
        edges(&dot),
        pairs(&[
            ("x", "stem"),
            ("stem", "left"),
            ("stem", "right"),
            ("left", "add"),
            ("right", "add"),
            ("add", "cat"),
            ("stem", "cat"),
            ("cat", "out")
        ])
    );
    assert_eq!(dot.matches(" [label=<").count(), <Branches as Model>::LAYERS.len());
    assert!(dot.contains("\nrankdir=TB;\n") && dot.contains("\ndpi=200;\n"));

    let lr = PlotModel::default().rankdir("LR").dpi(96).to_dot(&TwoInputConcat::new(&cpu)).unwrap();
    assert!(lr.contains("\nrankdir=LR;\n") && lr.contains("\ndpi=96;\n"), "{lr}");
    assert_eq!(
        edges(&lr),
        pairs(&[("in_a", "dense_a"), ("in_b", "dense_b"), ("dense_a", "concat"), ("dense_b", "concat"), ("concat", "dense_out")])
    );

    let shared = PlotModel::default().to_dot(&SharedThree::new(&cpu)).unwrap();
    assert_eq!(
        edges(&shared),
        pairs(&[("x", "h"), ("h", "shared"), ("shared", "shared"), ("h", "add"), ("shared", "add"), ("add", "out")])
    );

    // A Sequential model: a chain of its layers, no input box (Keras's `model.layers`).
    let mlp = Mlp::new(&cpu);
    assert_eq!(
        edges(&model_to_dot(&mlp, PlotModel::default()).unwrap()),
        pairs(&[("dense", "batch_normalization"), ("batch_normalization", "dense_1")])
    );
    let compiled = Mlp::new(&cpu).compile(Adam::default(), "categorical_crossentropy", ["accuracy"]).unwrap();
    assert_eq!(
        PlotModel::default().show_shapes(true).to_dot(&compiled).unwrap(),
        PlotModel::default().show_shapes(true).to_dot(&mlp).unwrap()
    );
    assert_eq!(PlotModel::default().expand_nested(true).to_dot(&mlp).unwrap(), PlotModel::default().to_dot(&mlp).unwrap());
}

/// Bad options and file names are errors that say what is allowed, and write nothing.
#[test]
fn bad_options_and_extensions_are_errors() {
    let dir = scratch("errors");
    let model = Branches::new(&Cpu::default());
    let err = |o: PlotModel, file: &str| plot_model(&model, dir.join(file), o).unwrap_err().to_string();
    let e = err(PlotModel::default(), "model.bmp");
    assert!(
        e.ends_with("expected a name ending in .png, .svg or .pdf (rendered by Graphviz) or .dot (the DOT text), found the extension .bmp"),
        "{e}"
    );
    let e = err(PlotModel::default().rankdir("BT"), "model.dot");
    assert_eq!(e, "plot_model rankdir: expected \"TB\" (top to bottom) or \"LR\" (left to right), found \"BT\"");
    let e = err(PlotModel::default().dpi(0), "model.png");
    assert_eq!(e, "plot_model dpi: expected a resolution of at least 1 dot per inch, found 0");
    let e = err(PlotModel::default().splines("wavy"), "model.svg");
    assert!(e.starts_with("plot_model splines: expected \"ortho\", \"curved\", \"polyline\", \"spline\", \"line\", found \"wavy\""), "{e}");
    assert!(PlotModel::default().rankdir("tb").to_dot(&model).is_err());
    assert_eq!(entries(&dir), Vec::<String>::new(), "nothing written");

    // `.dot` needs no Graphviz: the DOT text itself, atomically.
    let options = PlotModel::default().show_shapes(true).dot_program("/no/such/dot");
    plot_model(&model, dir.join("model.dot"), &options).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("model.dot")).unwrap(), options.to_dot(&model).unwrap());
    assert_eq!(entries(&dir), ["model.dot"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without Graphviz, rendering is an `Err` (an I/O error of kind NotFound) that says to install
/// it and where the DOT text can be had; no file is left behind.
#[test]
fn missing_dot_says_to_install_graphviz() {
    let dir = scratch("missing");
    let model = TwoInputConcat::new(&Cpu::default());
    let e = plot_model(&model, dir.join("model.png"), PlotModel::default().dot_program(dir.join("no-dot-here"))).unwrap_err();
    check_missing_dot(&e, &dir.join("model.png"));
    assert_eq!(entries(&dir), Vec::<String>::new());

    // The default program, `dot`, looked up on a PATH without it: this test binary runs
    // `missing_dot_on_path_child` again with PATH set to an empty directory.
    let empty = dir.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_dot_on_path_child", "--nocapture", "--test-threads", "1"])
        .env("PATH", &empty)
        .env("KERAS_PLOT_MODEL_CHILD_DIR", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed") && text.contains("child: checked"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entries(&dir), ["empty-bin"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Run by `missing_dot_says_to_install_graphviz` with PATH empty; does nothing on its own.
#[test]
fn missing_dot_on_path_child() {
    let Some(dir) = std::env::var_os("KERAS_PLOT_MODEL_CHILD_DIR") else { return };
    let path = Path::new(&dir).join("model.svg");
    let e = plot_model(&Branches::new(&Cpu::default()), &path, PlotModel::default()).unwrap_err();
    check_missing_dot(&e, &path);
    println!("child: checked");
}

fn check_missing_dot(e: &keras::Error, path: &Path) {
    let keras::Error::Io { source, .. } = e else { panic!("expected an I/O error, found {e:?}") };
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    let text = e.to_string();
    for needle in ["Graphviz's `dot` program was not found", "install Graphviz", "apt install graphviz", "PlotModel::to_dot", ".dot"] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(!path.exists());
}

/// A `dot` that prints half an image and fails: the error carries its status and message, the
/// file that was there is left as it was, and no temporary file remains.
#[cfg(unix)]
#[test]
fn a_failed_render_leaves_the_previous_file() {
    let dir = scratch("failed");
    let fake = dir.join("fake-dot");
    std::fs::write(&fake, "#!/bin/sh\nprintf '\\211PNG half an image'\necho 'Error: out of crayons' >&2\nexit 3\n").unwrap();
    make_executable(&fake);
    let target = dir.join("model.png");
    std::fs::write(&target, b"the previous plot").unwrap();
    let model = Mlp::new(&Cpu::default());
    let e = retry_busy(|| plot_model(&model, &target, PlotModel::default().dot_program(&fake))).unwrap_err().to_string();
    assert!(e.contains("failed (exit status: 3)") && e.contains("out of crayons"), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"the previous plot");
    assert_eq!(entries(&dir), ["fake-dot", "model.png"]);

    // A directory that cannot be made (a file is in the way): an error naming it, and `dot` is
    // not left running.
    let e = retry_busy(|| plot_model(&model, dir.join("model.png/sub/model.png"), PlotModel::default().dot_program(&fake))).unwrap_err();
    assert!(matches!(e, keras::Error::Io { .. }) && e.to_string().contains("cannot create the directory"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether Graphviz's `dot` runs; panics under CI, where `.ci/run` installs it.
fn graphviz() -> bool {
    match Command::new("dot").arg("-V").output() {
        Ok(out) if out.status.success() => true,
        outcome => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Graphviz's dot is needed under CI=true (`dot -V`: {outcome:?}); .ci/run installs Debian's graphviz"
            );
            eprintln!("skipped: Graphviz's `dot` is not installed (apt install graphviz)");
            false
        }
    }
}

/// Each node of an SVG that Graphviz drew: its title (the layer name) and its text, the pieces
/// of its label joined.
fn svg_nodes(svg: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| s.replace("&#45;", "-").replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&");
    svg.split("class=\"node\">")
        .skip(1)
        .map(|chunk| {
            let chunk = &chunk[..chunk.find("</g>").expect("a node group ends")];
            let title = chunk.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).expect("a node has a title");
            let text: String =
                chunk.split("<text").skip(1).map(|t| unescape(&t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()])).collect();
            (unescape(title), text)
        })
        .collect()
}

/// The SVG's size in points, from its `viewBox` (which `dpi` does not change).
fn svg_points(svg: &str) -> (f64, f64) {
    let v = svg.split("viewBox=\"").nth(1).and_then(|v| v.split('"').next()).expect("a viewBox");
    let n: Vec<f64> = v.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (n[2], n[3])
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()))
}

/// `dot` renders a model's plot to SVG, PNG and PDF: the SVG has a node per layer labelled as
/// expected (name, class, shapes), the PNG is `dpi / 72` pixels per point of the drawing.
fn render_and_check<N: Network>(name: &str, model: &N, want: &[(&str, &str)]) {
    let dir = scratch(name);
    let options = PlotModel::default().show_shapes(true).show_layer_names(true).dpi(96);
    plot_model(model, dir.join("model.svg"), &options).unwrap();
    let svg = std::fs::read_to_string(dir.join("model.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Generated by graphviz"), "{name}: {svg}");
    // Graphviz writes the nodes in its own order.
    let mut nodes = svg_nodes(&svg);
    nodes.sort();
    let mut want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    want.sort();
    assert_eq!(nodes, want, "{name}: the SVG's nodes and their labels");
    // Every connection is drawn: an edge group per edge of the DOT text.
    assert_eq!(svg.matches("class=\"edge\"").count(), edges(&options.to_dot(model).unwrap()).len(), "{name}: edges in the SVG");

    let (w, h) = svg_points(&svg);
    for dpi in [96, 192] {
        let file = dir.join(format!("model-{dpi}.png"));
        plot_model(model, &file, options.clone().dpi(dpi)).unwrap();
        let (pw, ph) = png_size(&std::fs::read(&file).unwrap());
        let scale = f64::from(dpi) / 72.0;
        assert!(
            (f64::from(pw) - w * scale).abs() <= 2.0 && (f64::from(ph) - h * scale).abs() <= 2.0,
            "{name} at {dpi} dpi: {pw}x{ph} pixels for {w}x{h} points"
        );
    }
    plot_model(model, dir.join("model.pdf"), &options).unwrap();
    assert!(std::fs::read(dir.join("model.pdf")).unwrap().starts_with(b"%PDF-"));
    // A name without an extension is a PNG, as in Keras.
    plot_model(model, dir.join("model"), &options).unwrap();
    png_size(&std::fs::read(dir.join("model")).unwrap());
    assert_eq!(entries(&dir), ["model", "model-192.png", "model-96.png", "model.pdf", "model.svg"], "{name}: no temporary files");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn graphviz_renders_a_sequential_model() {
    if !graphviz() {
        return;
    }
    render_and_check(
        "sequential",
        &Cnn::new(&Cpu::default()),
        &[
            ("conv2d", "conv2d (Conv2D)Input shape: (None, 28, 28, 1)Output shape: (None, 26, 26, 32)"),
            ("max_pooling2d", "max_pooling2d (MaxPooling2D)Input shape: (None, 26, 26, 32)Output shape: (None, 13, 13, 32)"),
            ("flatten", "flatten (Flatten)Input shape: (None, 13, 13, 32)Output shape: (None, 5408)"),
            ("dense", "dense (Dense)Input shape: (None, 5408)Output shape: (None, 128)"),
            ("dropout", "dropout (Dropout)Input shape: (None, 128)Output shape: (None, 128)"),
            ("dense_1", "dense_1 (Dense)Input shape: (None, 128)Output shape: (None, 10)"),
        ],
    );
}

#[test]
fn graphviz_renders_a_branching_functional_model() {
    if !graphviz() {
        return;
    }
    render_and_check(
        "branches",
        &Branches::new(&Cpu::default()),
        &[
            ("x", "x (InputLayer)Output shape: (None, 16)"),
            ("stem", "stem (Dense)Input shape: (None, 16)Output shape: (None, 8)"),
            ("left", "left (Dense)Input shape: (None, 8)Output shape: (None, 8)"),
            ("right", "right (Dense)Input shape: (None, 8)Output shape: (None, 8)"),
            ("add", "add (Add)Input shape: [(None, 8), (None, 8)]Output shape: (None, 8)"),
            ("cat", "cat (Concatenate)Input shape: [(None, 8), (None, 8)]Output shape: (None, 16)"),
            ("out", "out (Dense)Input shape: (None, 16)Output shape: (None, 3)"),
        ],
    );
}

#[test]
fn graphviz_renders_multi_input_models() {
    if !graphviz() {
        return;
    }
    let cpu = Cpu::default();
    render_and_check(
        "two_inputs",
        &TwoInputConcat::new(&cpu).compile(Adam::default(), "categorical_crossentropy", ["accuracy"]).unwrap(),
        &[
            ("in_a", "in_a (InputLayer)Output shape: (None, 6)"),
            ("in_b", "in_b (InputLayer)Output shape: (None, 3)"),
            ("dense_a", "dense_a (Dense)Input shape: (None, 6)Output shape: (None, 4)"),
            ("dense_b", "dense_b (Dense)Input shape: (None, 3)Output shape: (None, 4)"),
            ("concat", "concat (Concatenate)Input shape: [(None, 4), (None, 4)]Output shape: (None, 8)"),
            ("dense_out", "dense_out (Dense)Input shape: (None, 8)Output shape: (None, 2)"),
        ],
    );
    render_and_check(
        "text_meta",
        &TextMeta::new(&cpu),
        &[
            ("ids", "ids (InputLayer)Output shape: (None, 6)"),
            ("emb", "emb (Embedding)Input shape: (None, 6)Output shape: (None, 6, 4)"),
            ("meta", "meta (InputLayer)Output shape: (None, 3)"),
            ("pool", "pool (GlobalAveragePooling1D)Input shape: (None, 6, 4)Output shape: (None, 4)"),
            ("m", "m (Dense)Input shape: (None, 3)Output shape: (None, 4)"),
            ("j", "j (Concatenate)Input shape: [(None, 4), (None, 4)]Output shape: (None, 8)"),
            ("out", "out (Dense)Input shape: (None, 8)Output shape: (None, 3)"),
        ],
    );
    // Everything shown, left to right, a shared layer's self-loop: Graphviz draws it all.
    let dir = scratch("shared");
    let all = options("all");
    plot_model(&SharedThree::new(&cpu), dir.join("model.svg"), &all).unwrap();
    let svg = std::fs::read_to_string(dir.join("model.svg")).unwrap();
    let nodes = svg_nodes(&svg);
    let node = |name: &str| nodes.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no node {name} in {svg}")).clone();
    assert_eq!(
        node("shared"),
        (
            "shared".to_string(),
            "shared (Dense)Activation: tanhInput shape: (None, 5)Output shape: (None, 5)Output dtype: float32Trainable".to_string()
        )
    );
    assert_eq!(node("add").1, "add (Add)Input shape: [(None, 5), (None, 5), (None, 5)]Output shape: (None, 5)Output dtype: float32");
    assert!(svg.contains("<title>shared&#45;&gt;shared</title>"), "the self-loop");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keras-plot-model-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn make_executable(_: &Path) {}

/// Runs `f` again while exec fails with "text file busy": another test thread's fork can hold
/// the just-written script open for a moment.
fn retry_busy<T>(mut f: impl FnMut() -> keras::Result<T>) -> keras::Result<T> {
    for _ in 0..20 {
        match f() {
            Err(keras::Error::Io { source, .. }) if source.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other,
        }
    }
    f()
}
