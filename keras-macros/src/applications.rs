//! `application!`: Keras's model zoo (`keras.applications`) written in the `functional!` DSL.
//!
//! Each architecture is a builder that writes the `functional!` statements Keras's Python writes
//! (`keras/src/applications/*.py`), layer for layer and name for name, for the options a user
//! chose (input size, top or headless, pooling, classes, classifier activation, width). The
//! statements then go through `functional!`'s checker and expander, so every shape and parameter
//! count is checked and known at compile time, as for a model written by hand.
//!
//! ```text
//! item := attribute* visibility 'struct' Name '=' Arch '(' (option '=' value),* ')' ';'
//! ```

use crate::catalog;
use crate::lower;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use std::fmt::Write;
use std::str::FromStr;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Token, Visibility};

/// The architectures, with the name of the Keras function each one is.
pub const ARCHITECTURES: &[&str] = &[
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "MobileNet",
    "MobileNetV2",
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "Xception",
    "InceptionV3",
    "InceptionResNetV2",
];

/// Keras's default input size (`default_size`) and smallest (`min_size`) for `arch`.
fn sizes(arch: &str) -> (usize, usize) {
    match arch {
        "Xception" => (299, 71),
        "InceptionV3" | "InceptionResNetV2" => (299, 75),
        _ => (224, 32),
    }
}

struct Item {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    arch: Ident,
    options: Vec<(Ident, Expr)>,
}

struct Items(Vec<Item>);

impl Parse for Items {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: Visibility = input.parse()?;
            input.parse::<Token![struct]>()?;
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let arch: Ident = input.parse()?;
            let options = if input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in input);
                let pairs = Punctuated::<(Ident, Expr), Token![,]>::parse_terminated_with(&content, |p| {
                    let key: Ident = p.parse().map_err(|e| {
                        syn::Error::new(e.span(), "expected `option = value`, as in `ResNet50(include_top = false, pooling = \"avg\")`")
                    })?;
                    p.parse::<Token![=]>()?;
                    Ok((key, p.parse()?))
                })?;
                pairs.into_iter().collect()
            } else {
                Vec::new()
            };
            input.parse::<Token![;]>()?;
            items.push(Item { attrs, vis, name, arch, options });
        }
        Ok(Items(items))
    }
}

/// The options of one architecture after checking.
struct Options {
    shape: [usize; 3],
    include_top: bool,
    pooling: Option<&'static str>,
    classes: usize,
    /// The classifier's activation: a DSL activation name (`linear` for Keras's `None`).
    activation: String,
    alpha: f64,
    depth_multiplier: usize,
    dropout: f64,
}

/// Which options an architecture takes beyond the common ones.
fn extra_options(arch: &str) -> &'static [&'static str] {
    match arch {
        "MobileNet" => &["alpha", "depth_multiplier", "dropout"],
        "MobileNetV2" => &["alpha"],
        _ => &[],
    }
}

const COMMON: &[&str] = &["input_shape", "include_top", "pooling", "classes", "classifier_activation"];

pub fn application(tokens: TokenStream) -> TokenStream {
    let items = match syn::parse2::<Items>(tokens) {
        Ok(i) => i.0,
        Err(e) => return e.to_compile_error(),
    };
    items.iter().map(|item| one(item).unwrap_or_else(|e| e.to_compile_error())).collect()
}

fn one(item: &Item) -> syn::Result<TokenStream> {
    let arch = item.arch.to_string();
    if !ARCHITECTURES.contains(&arch.as_str()) {
        let hint = keras_naming::suggest(&arch, ARCHITECTURES).map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"));
        return Err(syn::Error::new(
            item.arch.span(),
            format!("unknown application `{arch}`{hint}; the applications are {}", ARCHITECTURES.join(", ")),
        ));
    }
    let opts = options(&arch, &item.options)?;
    let (body, output, keras_name) = match arch.as_str() {
        "VGG16" => vgg(&opts, &[2, 2, 3, 3, 3], "vgg16"),
        "VGG19" => vgg(&opts, &[2, 2, 4, 4, 4], "vgg19"),
        "ResNet50" => resnet(&opts, &[3, 4, 6, 3], "resnet50"),
        "ResNet101" => resnet(&opts, &[3, 4, 23, 3], "resnet101"),
        "ResNet152" => resnet(&opts, &[3, 8, 36, 3], "resnet152"),
        "MobileNet" => mobilenet(&opts),
        "MobileNetV2" => mobilenet_v2(&opts),
        "DenseNet121" => densenet(&opts, &[6, 12, 24, 16], "densenet121"),
        "DenseNet169" => densenet(&opts, &[6, 12, 32, 32], "densenet169"),
        "DenseNet201" => densenet(&opts, &[6, 12, 48, 32], "densenet201"),
        "Xception" => xception(&opts),
        "InceptionV3" => inception_v3(&opts),
        _ => inception_resnet_v2(&opts),
    };
    let body = TokenStream::from_str(&body).expect("the builders write valid tokens");
    let output = Ident::new(&output, Span::call_site());
    let [h, w, c] = opts.shape;
    let (attrs, vis, name) = (&item.attrs, &item.vis, &item.name);
    let input = Ident::new("input_layer", Span::call_site());
    let tokens = quote! {
        #(#attrs)* #vis struct #name(#input: [#h, #w, #c]) -> #output { #body }
    };
    let model = lower::functional_as(tokens, Some(&keras_name));
    let cache = weights_file(&arch, &opts).map(|file| {
        let doc = format!(
            "The model with Keras's ImageNet weights, read from `{file}` in Keras's cache \\
             (`$KERAS_HOME/models/`, or `~/.keras/models/`), where Keras keeps the file it \\
             downloads. Nothing is downloaded: a missing file is an error naming it and where it was looked for."
        );
        quote! {
            impl<B: ::keras::Backend> #name<B> {
                /// The name of Keras's published weights file for this architecture and options.
                pub const KERAS_WEIGHTS_FILE: &'static str = #file;

                #[doc = #doc]
                pub fn from_keras_cache(device: &B) -> ::keras::Result<Self> {
                    let path = ::keras::applications::keras_cache_file(#file)?;
                    let mut model = Self::try_new(device)?;
                    <Self as ::keras::Network>::load_keras(&mut model, &path)?;
                    ::core::result::Result::Ok(model)
                }
            }
        }
    });
    Ok(quote!(#model #cache))
}

/// The file Keras downloads for `arch` with these options (`weights="imagenet"`), when Keras
/// publishes one: the classifier needs 1000 classes, softmax (or logits) and the size the
/// weights were trained at; the headless files fit any size.
fn weights_file(arch: &str, o: &Options) -> Option<String> {
    let top = o.include_top;
    if top && (o.classes != 1000 || !(o.activation == "softmax" || o.activation == "linear")) {
        return None;
    }
    if o.shape[2] != 3 {
        return None;
    }
    let rows = o.shape[0];
    let notop = if top { "" } else { "_notop" };
    match arch {
        "MobileNet" => {
            let alpha = [(0.25, "2_5"), (0.5, "5_0"), (0.75, "7_5"), (1.0, "1_0")].into_iter().find(|(a, _)| *a == o.alpha)?.1;
            let sized = rows == o.shape[1] && [128, 160, 192, 224].contains(&rows);
            (sized && o.depth_multiplier == 1).then(|| format!("mobilenet_{alpha}_{rows}_tf{}.h5", if top { "" } else { "_no_top" }))
        }
        "MobileNetV2" => {
            let alpha = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4].into_iter().find(|a| *a == o.alpha)?;
            let sized = rows == o.shape[1] && [96, 128, 160, 192, 224].contains(&rows);
            sized
                .then(|| format!("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha:?}_{rows}{}.h5", if top { "" } else { "_no_top" }))
        }
        _ => {
            let size = sizes(arch).0;
            if top && o.shape != [size, size, 3] {
                return None;
            }
            let stem = match arch {
                "InceptionV3" => "inception_v3".to_string(),
                "InceptionResNetV2" => "inception_resnet_v2".to_string(),
                _ => arch.to_lowercase(),
            };
            Some(format!("{stem}_weights_tf_dim_ordering_tf_kernels{notop}.h5"))
        }
    }
}

fn options(arch: &str, given: &[(Ident, Expr)]) -> syn::Result<Options> {
    let (default_size, min_size) = sizes(arch);
    let mut o = Options {
        shape: [default_size, default_size, 3],
        include_top: true,
        pooling: None,
        classes: 1000,
        activation: "softmax".into(),
        alpha: 1.0,
        depth_multiplier: 1,
        dropout: 1e-3,
    };
    let extra = extra_options(arch);
    let mut seen: Vec<String> = Vec::new();
    let mut pooling_at = None;
    for (key, value) in given {
        let k = key.to_string();
        if seen.contains(&k) {
            return Err(syn::Error::new(key.span(), format!("`{k}` is given twice")));
        }
        seen.push(k.clone());
        let err = |what: &str| syn::Error::new_spanned(value, format!("{arch}'s `{k}` must be {what}"));
        match k.as_str() {
            "input_shape" => {
                let dims: Vec<&Expr> = match value {
                    Expr::Array(a) => a.elems.iter().collect(),
                    Expr::Tuple(t) => t.elems.iter().collect(),
                    _ => return Err(err("three dimensions, height, width and channels: `[224, 224, 3]`")),
                };
                let dims: Option<Vec<usize>> =
                    dims.iter().map(|d| catalog::int(d).filter(|v| *v >= 1 && *v <= 1 << 20).map(|v| v as usize)).collect();
                match dims.as_deref() {
                    Some(&[h, w, c]) => {
                        if h < min_size || w < min_size {
                            return Err(syn::Error::new_spanned(
                                value,
                                format!("{arch}'s input must be at least {min_size}x{min_size}, as Keras requires; found {h}x{w}"),
                            ));
                        }
                        o.shape = [h, w, c];
                    }
                    _ => return Err(err("three positive dimensions, height, width and channels: `[224, 224, 3]`")),
                }
            }
            "include_top" => o.include_top = catalog::boolean(value).ok_or_else(|| err("`true` or `false`"))?,
            "pooling" => {
                pooling_at = Some(value);
                o.pooling = match catalog::word(value).as_deref() {
                    Some("avg") => Some("avg"),
                    Some("max") => Some("max"),
                    Some("None") => None,
                    _ => return Err(err("\"avg\", \"max\" or None")),
                }
            }
            "classes" => {
                o.classes = catalog::int(value)
                    .filter(|v| *v >= 1 && *v <= 1 << 24)
                    .map(|v| v as usize)
                    .ok_or_else(|| err("a positive number of classes"))?
            }
            "classifier_activation" => {
                o.activation = match catalog::word(value) {
                    Some(w) if w == "None" => "linear".into(),
                    Some(w) if catalog::names::ACTIVATIONS.iter().any(|(n, _)| *n == w) => w,
                    _ => return Err(err("an activation (`softmax`, `sigmoid`, ...) or None (logits)")),
                }
            }
            "alpha" if extra.contains(&"alpha") => {
                o.alpha = catalog::float(value).filter(|a| *a > 0.0 && *a <= 16.0).ok_or_else(|| err("a positive width multiplier"))?
            }
            "depth_multiplier" if extra.contains(&"depth_multiplier") => {
                o.depth_multiplier =
                    catalog::int(value).filter(|v| *v >= 1 && *v <= 64).map(|v| v as usize).ok_or_else(|| err("a positive integer"))?
            }
            "dropout" if extra.contains(&"dropout") => {
                o.dropout = catalog::float(value).filter(|d| (0.0..1.0).contains(d)).ok_or_else(|| err("a rate in [0, 1)"))?
            }
            _ => {
                let all: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
                return Err(syn::Error::new(key.span(), format!("{arch} has no option `{k}`; its options are {}", all.join(", "))));
            }
        }
    }
    if o.include_top && o.pooling.is_some() {
        return Err(syn::Error::new_spanned(
            pooling_at.expect("set with pooling"),
            "`pooling` is for the headless model: add `include_top = false` (with the top, the model pools as Keras's does)",
        ));
    }
    Ok(o)
}

/// The statements of a model being written, and the shape of the last tensor.
struct Net {
    out: String,
    /// Height, width and channels of the tensor named `x` most recently.
    h: usize,
    w: usize,
    c: usize,
}

impl Net {
    fn new(o: &Options) -> Net {
        Net { out: String::new(), h: o.shape[0], w: o.shape[1], c: o.shape[2] }
    }

    /// `let var = layer(inputs);`
    fn call(&mut self, var: &str, layer: &str, inputs: &str) {
        writeln!(self.out, "let {var} = {layer}({inputs});").expect("writing to a String");
    }

    /// A convolution's output size along one axis.
    fn conv_out(size: usize, kernel: usize, stride: usize, same: bool) -> usize {
        if same { size.div_ceil(stride) } else { (size - kernel) / stride + 1 }
    }

    fn spatial(&mut self, kernel: usize, stride: usize, same: bool) {
        self.h = Net::conv_out(self.h, kernel, stride, same);
        self.w = Net::conv_out(self.w, kernel, stride, same);
    }

    /// The head Keras puts on a headless model's last tensor `x`, or the classifier; returns the
    /// name of the output tensor.
    fn pooling(&mut self, o: &Options, avg_name: Option<&str>, max_name: Option<&str>) -> String {
        let named = |n: Option<&str>| n.map_or_else(String::new, |n| format!("name = \"{n}\""));
        match o.pooling {
            Some("avg") => self.call("x", &format!("GlobalAveragePooling2D({})", named(avg_name)), "x"),
            Some(_) => self.call("x", &format!("GlobalMaxPooling2D({})", named(max_name)), "x"),
            None => {}
        }
        "x".into()
    }
}

fn fmt_f64(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') { s } else { format!("{s}.0") }
}

/// VGG16 and VGG19 (`keras/src/applications/vgg16.py`, `vgg19.py`).
fn vgg(o: &Options, convs: &[usize], name: &str) -> (String, String, String) {
    let mut n = Net::new(o);
    let mut input = "input_layer".to_string();
    for (b, (&count, filters)) in convs.iter().zip([64, 128, 256, 512, 512]).enumerate() {
        for i in 1..=count {
            n.call("x", &format!("Conv2D({filters}, (3, 3), relu, padding = \"same\", name = \"block{}_conv{i}\")", b + 1), &input);
            input = "x".into();
        }
        n.call("x", &format!("MaxPooling2D((2, 2), strides = (2, 2), name = \"block{}_pool\")", b + 1), "x");
    }
    let out = if o.include_top {
        n.call("x", "Flatten(name = \"flatten\")", "x");
        n.call("x", "Dense(4096, relu, name = \"fc1\")", "x");
        n.call("x", "Dense(4096, relu, name = \"fc2\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    (n.out, out, name.into())
}

/// ResNet50, ResNet101 and ResNet152 (`keras/src/applications/resnet.py`, the v1 blocks).
fn resnet(o: &Options, blocks: &[usize], name: &str) -> (String, String, String) {
    let mut n = Net::new(o);
    const BN: &str = "BatchNormalization(epsilon = 1.001e-5";
    n.call("x", "ZeroPadding2D(padding = ((3, 3), (3, 3)), name = \"conv1_pad\")", "input_layer");
    n.call("x", "Conv2D(64, 7, strides = 2, name = \"conv1_conv\")", "x");
    n.call("x", &format!("{BN}, name = \"conv1_bn\")"), "x");
    n.call("x", "Activation(relu, name = \"conv1_relu\")", "x");
    n.call("x", "ZeroPadding2D(padding = ((1, 1), (1, 1)), name = \"pool1_pad\")", "x");
    n.call("x", "MaxPooling2D(3, strides = 2, name = \"pool1_pool\")", "x");
    for (stage, (&count, filters)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        let stride1 = if stage == 0 { 1 } else { 2 };
        for b in 1..=count {
            let p = format!("conv{}_block{b}", stage + 2);
            let stride = if b == 1 { stride1 } else { 1 };
            let shortcut = if b == 1 {
                n.call("shortcut", &format!("Conv2D({}, 1, strides = {stride}, name = \"{p}_0_conv\")", 4 * filters), "x");
                n.call("shortcut", &format!("{BN}, name = \"{p}_0_bn\")"), "shortcut");
                "shortcut"
            } else {
                "x"
            };
            n.call("h", &format!("Conv2D({filters}, 1, strides = {stride}, name = \"{p}_1_conv\")"), "x");
            n.call("h", &format!("{BN}, name = \"{p}_1_bn\")"), "h");
            n.call("h", &format!("Activation(relu, name = \"{p}_1_relu\")"), "h");
            n.call("h", &format!("Conv2D({filters}, 3, padding = \"same\", name = \"{p}_2_conv\")"), "h");
            n.call("h", &format!("{BN}, name = \"{p}_2_bn\")"), "h");
            n.call("h", &format!("Activation(relu, name = \"{p}_2_relu\")"), "h");
            n.call("h", &format!("Conv2D({}, 1, name = \"{p}_3_conv\")", 4 * filters), "h");
            n.call("h", &format!("{BN}, name = \"{p}_3_bn\")"), "h");
            n.call("x", &format!("Add(name = \"{p}_add\")"), &format!("{shortcut}, h"));
            n.call("x", &format!("Activation(relu, name = \"{p}_out\")"), "x");
        }
    }
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(name = \"avg_pool\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, Some("avg_pool"), Some("max_pool"))
    };
    (n.out, out, name.into())
}

/// MobileNet (`keras/src/applications/mobilenet.py`): width `alpha`, `depth_multiplier`, and the
/// top's `dropout`.
fn mobilenet(o: &Options) -> (String, String, String) {
    let mut n = Net::new(o);
    let alpha = o.alpha;
    let filters = (32.0 * alpha) as usize;
    n.call(
        "x",
        &format!("Conv2D({filters}, (3, 3), padding = \"same\", use_bias = false, strides = (2, 2), name = \"conv1\")"),
        "input_layer",
    );
    n.call("x", "BatchNormalization(name = \"conv1_bn\")", "x");
    n.call("x", "ReLU(6.0, name = \"conv1_relu\")", "x");
    let blocks: [(usize, usize); 13] =
        [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
    for (i, (pointwise, stride)) in blocks.into_iter().enumerate() {
        let id = i + 1;
        let pointwise = (pointwise as f64 * alpha) as usize;
        let padding = if stride == 1 {
            "same"
        } else {
            n.call("x", &format!("ZeroPadding2D(((0, 1), (0, 1)), name = \"conv_pad_{id}\")"), "x");
            "valid"
        };
        n.call(
            "x",
            &format!(
                "DepthwiseConv2D((3, 3), padding = \"{padding}\", depth_multiplier = {}, strides = ({stride}, {stride}), use_bias = false, name = \"conv_dw_{id}\")",
                o.depth_multiplier
            ),
            "x",
        );
        n.call("x", &format!("BatchNormalization(name = \"conv_dw_{id}_bn\")"), "x");
        n.call("x", &format!("ReLU(6.0, name = \"conv_dw_{id}_relu\")"), "x");
        n.call(
            "x",
            &format!("Conv2D({pointwise}, (1, 1), padding = \"same\", use_bias = false, strides = (1, 1), name = \"conv_pw_{id}\")"),
            "x",
        );
        n.call("x", &format!("BatchNormalization(name = \"conv_pw_{id}_bn\")"), "x");
        n.call("x", &format!("ReLU(6.0, name = \"conv_pw_{id}_relu\")"), "x");
    }
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(keepdims = true)", "x");
        n.call("x", &format!("Dropout({}, name = \"dropout\")", fmt_f64(o.dropout)), "x");
        n.call("x", &format!("Conv2D({}, (1, 1), padding = \"same\", name = \"conv_preds\")", o.classes), "x");
        n.call("x", &format!("Reshape(({},), name = \"reshape_2\")", o.classes), "x");
        n.call("predictions", &format!("Activation({}, name = \"predictions\")", o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    (n.out, out, format!("mobilenet_{alpha:.2}_{}", o.shape[0]))
}

/// Keras's `_make_divisible` (MobileNetV2): `v` rounded to a multiple of `divisor`, never below
/// 90% of it.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize) / divisor * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// MobileNetV2 (`keras/src/applications/mobilenet_v2.py`): width `alpha`.
fn mobilenet_v2(o: &Options) -> (String, String, String) {
    let mut n = Net::new(o);
    let alpha = o.alpha;
    const BN: &str = "BatchNormalization(epsilon = 1e-3, momentum = 0.999";
    let first = make_divisible(32.0 * alpha, 8);
    n.call("x", &format!("Conv2D({first}, 3, strides = (2, 2), padding = \"same\", use_bias = false, name = \"Conv1\")"), "input_layer");
    n.spatial(3, 2, true);
    n.c = first;
    n.call("x", &format!("{BN}, name = \"bn_Conv1\")"), "x");
    n.call("x", "ReLU(6.0, name = \"Conv1_relu\")", "x");
    let blocks: [(usize, usize, usize); 17] = [
        (16, 1, 1),
        (24, 2, 6),
        (24, 1, 6),
        (32, 2, 6),
        (32, 1, 6),
        (32, 1, 6),
        (64, 2, 6),
        (64, 1, 6),
        (64, 1, 6),
        (64, 1, 6),
        (96, 1, 6),
        (96, 1, 6),
        (96, 1, 6),
        (160, 2, 6),
        (160, 1, 6),
        (160, 1, 6),
        (320, 1, 6),
    ];
    for (id, (filters, stride, expansion)) in blocks.into_iter().enumerate() {
        let in_channels = n.c;
        let pointwise = make_divisible(((filters as f64) * alpha) as usize as f64, 8);
        let prefix = if id == 0 { "expanded_conv_".to_string() } else { format!("block_{id}_") };
        // Block 0 has no expansion: its depthwise convolution reads `x` itself.
        let mut src = "x";
        if id > 0 {
            n.call(
                "h",
                &format!("Conv2D({}, 1, padding = \"same\", use_bias = false, name = \"{prefix}expand\")", expansion * in_channels),
                "x",
            );
            n.call("h", &format!("{BN}, name = \"{prefix}expand_BN\")"), "h");
            n.call("h", &format!("ReLU(6.0, name = \"{prefix}expand_relu\")"), "h");
            src = "h";
        }
        if stride == 2 {
            // imagenet_utils.correct_pad(x, 3)
            let (ah, aw) = (1 - n.h % 2, 1 - n.w % 2);
            n.call("h", &format!("ZeroPadding2D(padding = (({}, 1), ({}, 1)), name = \"{prefix}pad\")", 1 - ah, 1 - aw), src);
            n.h += 2 - ah;
            n.w += 2 - aw;
            src = "h";
        }
        let padding = if stride == 1 { "same" } else { "valid" };
        n.call(
            "h",
            &format!("DepthwiseConv2D(3, strides = {stride}, use_bias = false, padding = \"{padding}\", name = \"{prefix}depthwise\")"),
            src,
        );
        n.spatial(3, stride, stride == 1);
        n.call("h", &format!("{BN}, name = \"{prefix}depthwise_BN\")"), "h");
        n.call("h", &format!("ReLU(6.0, name = \"{prefix}depthwise_relu\")"), "h");
        n.call("h", &format!("Conv2D({pointwise}, 1, padding = \"same\", use_bias = false, name = \"{prefix}project\")"), "h");
        n.c = pointwise;
        if in_channels == pointwise && stride == 1 {
            n.call("h", &format!("{BN}, name = \"{prefix}project_BN\")"), "h");
            n.call("x", &format!("Add(name = \"{prefix}add\")"), "x, h");
        } else {
            n.call("x", &format!("{BN}, name = \"{prefix}project_BN\")"), "h");
        }
    }
    let last = if alpha > 1.0 { make_divisible(1280.0 * alpha, 8) } else { 1280 };
    n.call("x", &format!("Conv2D({last}, 1, use_bias = false, name = \"Conv_1\")"), "x");
    n.call("x", &format!("{BN}, name = \"Conv_1_bn\")"), "x");
    n.call("x", "ReLU(6.0, name = \"out_relu\")", "x");
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D()", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    let rows = o.shape[0];
    (n.out, out, format!("mobilenetv2_{alpha:.2}_{rows}"))
}

/// DenseNet121, DenseNet169 and DenseNet201 (`keras/src/applications/densenet.py`).
fn densenet(o: &Options, blocks: &[usize], name: &str) -> (String, String, String) {
    let mut n = Net::new(o);
    const BN: &str = "BatchNormalization(epsilon = 1.001e-5";
    n.call("x", "ZeroPadding2D(padding = ((3, 3), (3, 3)))", "input_layer");
    n.call("x", "Conv2D(64, 7, strides = 2, use_bias = false, name = \"conv1_conv\")", "x");
    n.c = 64;
    n.call("x", &format!("{BN}, name = \"conv1_bn\")"), "x");
    n.call("x", "Activation(relu, name = \"conv1_relu\")", "x");
    n.call("x", "ZeroPadding2D(padding = ((1, 1), (1, 1)))", "x");
    n.call("x", "MaxPooling2D(3, strides = 2, name = \"pool1\")", "x");
    for (stage, &count) in blocks.iter().enumerate() {
        for i in 1..=count {
            let p = format!("conv{}_block{i}", stage + 2);
            n.call("h", &format!("{BN}, name = \"{p}_0_bn\")"), "x");
            n.call("h", &format!("Activation(relu, name = \"{p}_0_relu\")"), "h");
            n.call("h", &format!("Conv2D(128, 1, use_bias = false, name = \"{p}_1_conv\")"), "h");
            n.call("h", &format!("{BN}, name = \"{p}_1_bn\")"), "h");
            n.call("h", &format!("Activation(relu, name = \"{p}_1_relu\")"), "h");
            n.call("h", &format!("Conv2D(32, 3, padding = \"same\", use_bias = false, name = \"{p}_2_conv\")"), "h");
            n.call("x", &format!("Concatenate(axis = 3, name = \"{p}_concat\")"), "x, h");
            n.c += 32;
        }
        if stage + 1 < blocks.len() {
            let p = format!("pool{}", stage + 2);
            n.call("x", &format!("{BN}, name = \"{p}_bn\")"), "x");
            n.call("x", &format!("Activation(relu, name = \"{p}_relu\")"), "x");
            n.c = (n.c as f64 * 0.5) as usize;
            n.call("x", &format!("Conv2D({}, 1, use_bias = false, name = \"{p}_conv\")", n.c), "x");
            n.call("x", &format!("AveragePooling2D(2, strides = 2, name = \"{p}_pool\")"), "x");
        }
    }
    n.call("x", &format!("{BN}, name = \"bn\")"), "x");
    n.call("x", "Activation(relu, name = \"relu\")", "x");
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(name = \"avg_pool\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, Some("avg_pool"), Some("max_pool"))
    };
    (n.out, out, name.into())
}

/// Xception (`keras/src/applications/xception.py`).
fn xception(o: &Options) -> (String, String, String) {
    let mut n = Net::new(o);
    n.call("x", "Conv2D(32, (3, 3), strides = (2, 2), use_bias = false, name = \"block1_conv1\")", "input_layer");
    n.call("x", "BatchNormalization(name = \"block1_conv1_bn\")", "x");
    n.call("x", "Activation(relu, name = \"block1_conv1_act\")", "x");
    n.call("x", "Conv2D(64, (3, 3), use_bias = false, name = \"block1_conv2\")", "x");
    n.call("x", "BatchNormalization(name = \"block1_conv2_bn\")", "x");
    n.call("x", "Activation(relu, name = \"block1_conv2_act\")", "x");
    let sep = |n: &mut Net, dst: &str, src: &str, filters: usize, name: &str| {
        n.call(dst, &format!("SeparableConv2D({filters}, (3, 3), padding = \"same\", use_bias = false, name = \"{name}\")"), src);
        n.call(dst, &format!("BatchNormalization(name = \"{name}_bn\")"), dst);
    };
    // Entry flow: blocks 2-4, a strided 1x1 convolution beside each.
    for (block, filters) in [(2, 128), (3, 256), (4, 728)] {
        n.call("residual", &format!("Conv2D({filters}, (1, 1), strides = (2, 2), padding = \"same\", use_bias = false)"), "x");
        n.call("residual", "BatchNormalization()", "residual");
        let src = if block == 2 {
            "x"
        } else {
            n.call("h", &format!("Activation(relu, name = \"block{block}_sepconv1_act\")"), "x");
            "h"
        };
        sep(&mut n, "h", src, filters, &format!("block{block}_sepconv1"));
        n.call("h", &format!("Activation(relu, name = \"block{block}_sepconv2_act\")"), "h");
        sep(&mut n, "h", "h", filters, &format!("block{block}_sepconv2"));
        n.call("h", &format!("MaxPooling2D((3, 3), strides = (2, 2), padding = \"same\", name = \"block{block}_pool\")"), "h");
        n.call("x", "Add()", "h, residual");
    }
    // Middle flow: eight residual blocks of three separable convolutions.
    for i in 0..8 {
        let p = format!("block{}", i + 5);
        n.call("h", &format!("Activation(relu, name = \"{p}_sepconv1_act\")"), "x");
        sep(&mut n, "h", "h", 728, &format!("{p}_sepconv1"));
        n.call("h", &format!("Activation(relu, name = \"{p}_sepconv2_act\")"), "h");
        sep(&mut n, "h", "h", 728, &format!("{p}_sepconv2"));
        n.call("h", &format!("Activation(relu, name = \"{p}_sepconv3_act\")"), "h");
        sep(&mut n, "h", "h", 728, &format!("{p}_sepconv3"));
        n.call("x", "Add()", "h, x");
    }
    // Exit flow.
    n.call("residual", "Conv2D(1024, (1, 1), strides = (2, 2), padding = \"same\", use_bias = false)", "x");
    n.call("residual", "BatchNormalization()", "residual");
    n.call("h", "Activation(relu, name = \"block13_sepconv1_act\")", "x");
    sep(&mut n, "h", "h", 728, "block13_sepconv1");
    n.call("h", "Activation(relu, name = \"block13_sepconv2_act\")", "h");
    sep(&mut n, "h", "h", 1024, "block13_sepconv2");
    n.call("h", "MaxPooling2D((3, 3), strides = (2, 2), padding = \"same\", name = \"block13_pool\")", "h");
    n.call("x", "Add()", "h, residual");
    sep(&mut n, "x", "x", 1536, "block14_sepconv1");
    n.call("x", "Activation(relu, name = \"block14_sepconv1_act\")", "x");
    sep(&mut n, "x", "x", 2048, "block14_sepconv2");
    n.call("x", "Activation(relu, name = \"block14_sepconv2_act\")", "x");
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(name = \"avg_pool\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    (n.out, out, "xception".into())
}

/// InceptionV3 (`keras/src/applications/inception_v3.py`).
fn inception_v3(o: &Options) -> (String, String, String) {
    let mut n = Net::new(o);
    // conv2d_bn: Conv2D (no bias) -> BatchNormalization(scale = false) -> relu, unnamed but the
    // last blocks' outputs.
    let cb = |n: &mut Net, dst: &str, src: &str, filters: usize, (r, c): (usize, usize), strides: usize, valid: bool| {
        let padding = if valid { "valid" } else { "same" };
        n.call(
            dst,
            &format!("Conv2D({filters}, ({r}, {c}), strides = ({strides}, {strides}), padding = \"{padding}\", use_bias = false)"),
            src,
        );
        n.call(dst, "BatchNormalization(scale = false)", dst);
        n.call(dst, "Activation(relu)", dst);
    };
    let avg_pool = |n: &mut Net, dst: &str| n.call(dst, "AveragePooling2D((3, 3), strides = (1, 1), padding = \"same\")", "x");
    cb(&mut n, "x", "input_layer", 32, (3, 3), 2, true);
    cb(&mut n, "x", "x", 32, (3, 3), 1, true);
    cb(&mut n, "x", "x", 64, (3, 3), 1, false);
    n.call("x", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    cb(&mut n, "x", "x", 80, (1, 1), 1, true);
    cb(&mut n, "x", "x", 192, (3, 3), 1, true);
    n.call("x", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    // mixed 0, 1, 2: 35 x 35 x 256 / 288.
    for (i, pool_filters) in [32, 64, 64].into_iter().enumerate() {
        cb(&mut n, "b1", "x", 64, (1, 1), 1, false);
        cb(&mut n, "b5", "x", 48, (1, 1), 1, false);
        cb(&mut n, "b5", "b5", 64, (5, 5), 1, false);
        cb(&mut n, "b3", "x", 64, (1, 1), 1, false);
        cb(&mut n, "b3", "b3", 96, (3, 3), 1, false);
        cb(&mut n, "b3", "b3", 96, (3, 3), 1, false);
        avg_pool(&mut n, "bp");
        cb(&mut n, "bp", "bp", pool_filters, (1, 1), 1, false);
        n.call("x", &format!("Concatenate(axis = 3, name = \"mixed{i}\")"), "b1, b5, b3, bp");
    }
    // mixed 3: 17 x 17 x 768.
    cb(&mut n, "b3", "x", 384, (3, 3), 2, true);
    cb(&mut n, "bd", "x", 64, (1, 1), 1, false);
    cb(&mut n, "bd", "bd", 96, (3, 3), 1, false);
    cb(&mut n, "bd", "bd", 96, (3, 3), 2, true);
    n.call("bp", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    n.call("x", "Concatenate(axis = 3, name = \"mixed3\")", "b3, bd, bp");
    // mixed 4, 5, 6, 7: 17 x 17 x 768.
    for (i, f) in [128, 160, 160, 192].into_iter().enumerate() {
        cb(&mut n, "b1", "x", 192, (1, 1), 1, false);
        cb(&mut n, "b7", "x", f, (1, 1), 1, false);
        cb(&mut n, "b7", "b7", f, (1, 7), 1, false);
        cb(&mut n, "b7", "b7", 192, (7, 1), 1, false);
        cb(&mut n, "bd", "x", f, (1, 1), 1, false);
        cb(&mut n, "bd", "bd", f, (7, 1), 1, false);
        cb(&mut n, "bd", "bd", f, (1, 7), 1, false);
        cb(&mut n, "bd", "bd", f, (7, 1), 1, false);
        cb(&mut n, "bd", "bd", 192, (1, 7), 1, false);
        avg_pool(&mut n, "bp");
        cb(&mut n, "bp", "bp", 192, (1, 1), 1, false);
        n.call("x", &format!("Concatenate(axis = 3, name = \"mixed{}\")", 4 + i), "b1, b7, bd, bp");
    }
    // mixed 8: 8 x 8 x 1280.
    cb(&mut n, "b3", "x", 192, (1, 1), 1, false);
    cb(&mut n, "b3", "b3", 320, (3, 3), 2, true);
    cb(&mut n, "b7", "x", 192, (1, 1), 1, false);
    cb(&mut n, "b7", "b7", 192, (1, 7), 1, false);
    cb(&mut n, "b7", "b7", 192, (7, 1), 1, false);
    cb(&mut n, "b7", "b7", 192, (3, 3), 2, true);
    n.call("bp", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    n.call("x", "Concatenate(axis = 3, name = \"mixed8\")", "b3, b7, bp");
    // mixed 9, 10: 8 x 8 x 2048.
    for i in 0..2 {
        cb(&mut n, "b1", "x", 320, (1, 1), 1, false);
        cb(&mut n, "b3", "x", 384, (1, 1), 1, false);
        cb(&mut n, "b31", "b3", 384, (1, 3), 1, false);
        cb(&mut n, "b32", "b3", 384, (3, 1), 1, false);
        n.call("b3", &format!("Concatenate(axis = 3, name = \"mixed9_{i}\")"), "b31, b32");
        cb(&mut n, "bd", "x", 448, (1, 1), 1, false);
        cb(&mut n, "bd", "bd", 384, (3, 3), 1, false);
        cb(&mut n, "bd1", "bd", 384, (1, 3), 1, false);
        cb(&mut n, "bd2", "bd", 384, (3, 1), 1, false);
        n.call("bd", "Concatenate(axis = 3)", "bd1, bd2");
        avg_pool(&mut n, "bp");
        cb(&mut n, "bp", "bp", 192, (1, 1), 1, false);
        n.call("x", &format!("Concatenate(axis = 3, name = \"mixed{}\")", 9 + i), "b1, b3, bd, bp");
    }
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(name = \"avg_pool\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    (n.out, out, "inception_v3".into())
}

/// InceptionResNetV2 (`keras/src/applications/inception_resnet_v2.py`).
fn inception_resnet_v2(o: &Options) -> (String, String, String) {
    let mut n = Net::new(o);
    // conv2d_bn: Conv2D (no bias) -> BatchNormalization(scale = false) -> relu, named `name`,
    // `name_bn`, `name_ac` when named.
    let cb =
        |n: &mut Net, dst: &str, src: &str, filters: usize, (r, c): (usize, usize), strides: usize, valid: bool, name: Option<&str>| {
            let padding = if valid { "valid" } else { "same" };
            let named = |suffix: &str| name.map_or_else(String::new, |n| format!(", name = \"{n}{suffix}\""));
            n.call(
                dst,
                &format!(
                    "Conv2D({filters}, ({r}, {c}), strides = ({strides}, {strides}), padding = \"{padding}\", use_bias = false{})",
                    named("")
                ),
                src,
            );
            n.call(dst, &format!("BatchNormalization(scale = false{})", named("_bn")), dst);
            n.call(dst, &format!("Activation(relu{})", named("_ac")), dst);
        };
    let c = |n: &mut Net, dst: &str, src: &str, filters: usize, k: (usize, usize)| cb(n, dst, src, filters, k, 1, false, None);
    // Stem: 35 x 35 x 192.
    cb(&mut n, "x", "input_layer", 32, (3, 3), 2, true, None);
    cb(&mut n, "x", "x", 32, (3, 3), 1, true, None);
    c(&mut n, "x", "x", 64, (3, 3));
    n.call("x", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    cb(&mut n, "x", "x", 80, (1, 1), 1, true, None);
    cb(&mut n, "x", "x", 192, (3, 3), 1, true, None);
    n.call("x", "MaxPooling2D((3, 3), strides = (2, 2))", "x");
    // Mixed 5b (Inception-A): 35 x 35 x 320.
    c(&mut n, "b0", "x", 96, (1, 1));
    c(&mut n, "b1", "x", 48, (1, 1));
    c(&mut n, "b1", "b1", 64, (5, 5));
    c(&mut n, "b2", "x", 64, (1, 1));
    c(&mut n, "b2", "b2", 96, (3, 3));
    c(&mut n, "b2", "b2", 96, (3, 3));
    n.call("bp", "AveragePooling2D((3, 3), strides = (1, 1), padding = \"same\")", "x");
    c(&mut n, "bp", "bp", 64, (1, 1));
    n.call("x", "Concatenate(axis = 3, name = \"mixed_5b\")", "b0, b1, b2, bp");
    // inception_resnet_block: branches, their concatenation, a 1x1 convolution with bias back to
    // the input's channels, `x + up * scale` (CustomScaleLayer), then relu but for the last.
    let block = |n: &mut Net, kind: &str, idx: usize, scale: f64, channels: usize, relu: bool| {
        let branches = match kind {
            "block35" => {
                c(n, "b0", "x", 32, (1, 1));
                c(n, "b1", "x", 32, (1, 1));
                c(n, "b1", "b1", 32, (3, 3));
                c(n, "b2", "x", 32, (1, 1));
                c(n, "b2", "b2", 48, (3, 3));
                c(n, "b2", "b2", 64, (3, 3));
                "b0, b1, b2"
            }
            "block17" => {
                c(n, "b0", "x", 192, (1, 1));
                c(n, "b1", "x", 128, (1, 1));
                c(n, "b1", "b1", 160, (1, 7));
                c(n, "b1", "b1", 192, (7, 1));
                "b0, b1"
            }
            _ => {
                c(n, "b0", "x", 192, (1, 1));
                c(n, "b1", "x", 192, (1, 1));
                c(n, "b1", "b1", 224, (1, 3));
                c(n, "b1", "b1", 256, (3, 1));
                "b0, b1"
            }
        };
        let name = format!("{kind}_{idx}");
        n.call("mixed", &format!("Concatenate(axis = 3, name = \"{name}_mixed\")"), branches);
        n.call("up", &format!("Conv2D({channels}, (1, 1), padding = \"same\", name = \"{name}_conv\")"), "mixed");
        n.call("x", &format!("CustomScaleLayer({})", fmt_f64(scale)), "x, up");
        if relu {
            n.call("x", &format!("Activation(relu, name = \"{name}_ac\")"), "x");
        }
    };
    for idx in 1..=10 {
        block(&mut n, "block35", idx, 0.17, 320, true);
    }
    // Mixed 6a (Reduction-A): 17 x 17 x 1088.
    cb(&mut n, "b0", "x", 384, (3, 3), 2, true, None);
    c(&mut n, "b1", "x", 256, (1, 1));
    c(&mut n, "b1", "b1", 256, (3, 3));
    cb(&mut n, "b1", "b1", 384, (3, 3), 2, true, None);
    n.call("bp", "MaxPooling2D((3, 3), strides = (2, 2), padding = \"valid\")", "x");
    n.call("x", "Concatenate(axis = 3, name = \"mixed_6a\")", "b0, b1, bp");
    for idx in 1..=20 {
        block(&mut n, "block17", idx, 0.1, 1088, true);
    }
    // Mixed 7a (Reduction-B): 8 x 8 x 2080.
    c(&mut n, "b0", "x", 256, (1, 1));
    cb(&mut n, "b0", "b0", 384, (3, 3), 2, true, None);
    c(&mut n, "b1", "x", 256, (1, 1));
    cb(&mut n, "b1", "b1", 288, (3, 3), 2, true, None);
    c(&mut n, "b2", "x", 256, (1, 1));
    c(&mut n, "b2", "b2", 288, (3, 3));
    cb(&mut n, "b2", "b2", 320, (3, 3), 2, true, None);
    n.call("bp", "MaxPooling2D((3, 3), strides = (2, 2), padding = \"valid\")", "x");
    n.call("x", "Concatenate(axis = 3, name = \"mixed_7a\")", "b0, b1, b2, bp");
    for idx in 1..=9 {
        block(&mut n, "block8", idx, 0.2, 2080, true);
    }
    block(&mut n, "block8", 10, 1.0, 2080, false);
    // Final convolution block: 8 x 8 x 1536.
    cb(&mut n, "x", "x", 1536, (1, 1), 1, false, Some("conv_7b"));
    let out = if o.include_top {
        n.call("x", "GlobalAveragePooling2D(name = \"avg_pool\")", "x");
        n.call("predictions", &format!("Dense({}, {}, name = \"predictions\")", o.classes, o.activation), "x");
        "predictions".into()
    } else {
        n.pooling(o, None, None)
    };
    (n.out, out, "inception_resnet_v2".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(shape: [usize; 3], include_top: bool, alpha: f64) -> Options {
        Options {
            shape,
            include_top,
            pooling: None,
            classes: 1000,
            activation: "softmax".into(),
            alpha,
            depth_multiplier: 1,
            dropout: 1e-3,
        }
    }

    #[test]
    fn weights_files_are_named_as_keras_names_them() {
        let f = |arch, o| weights_file(arch, &o);
        assert_eq!(f("ResNet50", opts([224, 224, 3], true, 1.0)).as_deref(), Some("resnet50_weights_tf_dim_ordering_tf_kernels.h5"));
        assert_eq!(f("VGG16", opts([160, 160, 3], false, 1.0)).as_deref(), Some("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"));
        assert_eq!(f("DenseNet201", opts([224, 224, 3], true, 1.0)).as_deref(), Some("densenet201_weights_tf_dim_ordering_tf_kernels.h5"));
        assert_eq!(f("MobileNet", opts([224, 224, 3], true, 0.75)).as_deref(), Some("mobilenet_7_5_224_tf.h5"));
        assert_eq!(f("MobileNet", opts([128, 128, 3], false, 0.25)).as_deref(), Some("mobilenet_2_5_128_tf_no_top.h5"));
        assert_eq!(
            f("MobileNetV2", opts([96, 96, 3], true, 0.35)).as_deref(),
            Some("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
        );
        assert_eq!(
            f("MobileNetV2", opts([224, 224, 3], false, 1.0)).as_deref(),
            Some("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
        );
        assert_eq!(
            f("InceptionResNetV2", opts([299, 299, 3], true, 1.0)).as_deref(),
            Some("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5")
        );
        assert_eq!(
            f("InceptionResNetV2", opts([150, 150, 3], false, 1.0)).as_deref(),
            Some("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5")
        );
        assert_eq!(f("InceptionResNetV2", opts([224, 224, 3], true, 1.0)), None);
        // No published file: a classifier at another size, other classes, another width.
        assert_eq!(f("ResNet50", opts([160, 160, 3], true, 1.0)), None);
        assert_eq!(f("MobileNetV2", opts([100, 100, 3], true, 1.0)), None);
        assert_eq!(f("MobileNet", opts([224, 224, 3], true, 0.3)), None);
        let mut ten = opts([224, 224, 3], true, 1.0);
        ten.classes = 10;
        assert_eq!(f("VGG19", ten), None);
    }

    #[test]
    fn make_divisible_is_keras() {
        // Keras: _make_divisible(32 * 0.35, 8) == 16, (16 * 0.35 -> int 5) -> 8, 1280 * 1.4 -> 1792.
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(5.0, 8), 8);
        assert_eq!(make_divisible(1280.0 * 1.4, 8), 1792);
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(96.0 * 0.75, 8), 72);
    }
}
