//! The macro's logic, tested without a compiler run.

use crate::diag::Diag;
use crate::lower;
use crate::parse::{Input, parse};
use proc_macro2::TokenStream;
use std::str::FromStr;

fn checked(src: &str) -> (Option<usize>, Vec<String>) {
    let Input::Items(items) = parse(TokenStream::from_str(src).unwrap()).unwrap() else { panic!("items expected") };
    let mut diag = Diag::default();
    let m = lower::sequential(&items[0].chain, items[0].params.as_ref(), "Net", &mut diag, &[]);
    (m.map(|m| m.params().value().expect("no custom layers")), diag.messages())
}

#[test]
fn counts_parameters_as_keras() {
    assert_eq!(checked("struct Mlp = Dense(32, in = 784, sigmoid) => Dense(10, sigmoid) => Dense(1, sigmoid);").0, Some(25_461));
    assert_eq!(checked("struct W = Input(784) => Dense(1024, relu) => Dense(1024, relu) => Dense(10, softmax);").0, Some(1_863_690));
    assert_eq!(checked("struct N = Dense(4, in = 3, use_bias = false);").0, Some(12));
    assert_eq!(checked("struct S = Input((10, 32)) => Dense(8) => Flatten() => Dense(2);").0, Some(264 + 162));
}

#[test]
fn reports_every_mistake_once() {
    let (_, m) = checked("struct N = Dense(8, in = 4, rleu) => Dense(0) => Dense(4, in = 9) => Dropout(2.0);");
    assert_eq!(m.len(), 3, "{m:?}");
    assert!(m[0].starts_with("unknown activation `rleu`; did you mean `relu`?"));
    assert_eq!(m[1], "Dense needs at least 1 unit, found 0");
    assert_eq!(m[2], "Dropout's rate must be in [0, 1), found 2.0");
}

#[test]
fn shape_mismatch_names_both_shapes() {
    let (_, m) = checked("struct B = Dense(32, in = 784) => Dense(10, in = 64);");
    assert_eq!(m, ["Dense expects input shape (None, 64), but the previous layer `dense` outputs (None, 32)"]);
    let (_, m) = checked("struct B = Input((28, 28)) => Dense(10, in = (28, 27));");
    assert_eq!(m, ["Dense expects input shape (None, 28, 27), but the model's input is (None, 28, 28)"]);
}

/// A layer with a bad name is still checked, and so are the layers after it; within a layer,
/// its `in` is checked before its name, as the chain reads.
#[test]
fn a_bad_name_stops_no_check() {
    let (_, m) = checked("#[params(5)] struct N = Dense(8, in = 4, name = \"a b\") => Dense(2) => Dense(3, in = 5);");
    assert_eq!(
        m,
        [
            "layer names must be non-empty, without `/` or spaces, found \"a b\"",
            "Dense expects input shape (None, 5), but the previous layer `dense` outputs (None, 2)",
            "`Net` has 67 parameters, not 5",
        ]
    );
    let (_, m) = checked("struct N = Dense(8, in = 4) => Dense(2, in = 3, name = \"dense\");");
    assert_eq!(
        m,
        [
            "Dense expects input shape (None, 3), but the previous layer `dense` outputs (None, 8)",
            "duplicate layer name `dense`: layer 1 of this model is already named `dense`; layer names must be unique",
        ]
    );
}

#[test]
fn model_count_is_checked_beside_other_errors() {
    let (_, m) = checked("#[params(10)] struct N = Dense(8, in = 4, params = 41) => Dense(1);");
    assert_eq!(m, ["Dense `dense` has 40 parameters, not 41", "`Net` has 49 parameters, not 10"]);
}

/// Every token-level truncation and many odd argument values: the macro answers with errors,
/// never a panic.
#[test]
fn never_panics() {
    let sources = [
        "#[params(49)] pub struct Net = Input((3, 4)) => Dense(8, relu, in = (3, 4), name = \"a\", kernel_initializer = random_normal(mean = 0.0, stddev = 0.1)) => Dropout(0.5, seed = 3) => Flatten() => Activation(softmax) => Dense(1, params = 9);",
        "Input(4) => Dense(3, softmax)",
        "struct C = Input((8, 8, 4)) => DepthwiseConv2D(3, relu, depth_multiplier = 4, strides = 3) => SeparableConv2D(8, 3, padding = \"same\") => Conv2DTranspose(4, 3, strides = 3, name = \"a\") => Reshape((-1, 4)) => Conv1D(8, 3, padding = \"causal\", dilation_rate = 4) => MaxPooling1D(3) => AveragePooling1D(4, padding = \"same\") => GlobalMaxPooling1D() => Dense(3);",
        "struct T = Input((3, 4)) => Conv2DTranspose(8, (3, 4), dilation_rate = 3) => GlobalAveragePooling1D()",
        "struct R = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2), interpolation = \"bilinear\") => ZeroPadding2D(((1, 0), (2, 1))) => Cropping2D(1) => SpatialDropout2D(0.5, seed = 3) => GaussianNoise(0.5) => GaussianDropout(0.5) => TimeDistributed(Dense(8, name = \"a\", relu)) => Flatten() => RepeatVector(4) => TimeDistributed(Conv2D(3, 1, in = 4));",
    ];
    let values = [
        "0",
        "-1",
        "1e40",
        "99999999999999999999999999",
        "4294967296",
        "\"x\"",
        "true",
        "()",
        "[1, 2]",
        "(0, 1)",
        "relu",
        "f(x)",
        "-0.0",
        "1.5",
        "NaN",
        "x = 1",
        "|x| x",
    ];
    let mut runs = 0;
    for src in sources {
        let tokens: Vec<String> = TokenStream::from_str(src).unwrap().into_iter().map(|t| t.to_string()).collect();
        for cut in 0..=tokens.len() {
            run(&tokens[..cut].join(" "));
            runs += 1;
        }
        for v in values {
            for target in ["8", "0.5", "3", "4", "relu", "\"a\""] {
                run(&src.replacen(target, v, 1));
                runs += 1;
            }
        }
    }
    assert!(runs > 100);
}

fn run(src: &str) {
    let Ok(tokens) = TokenStream::from_str(src) else { return };
    let out = std::panic::catch_unwind(|| lower::sequential_macro(tokens).to_string());
    assert!(out.is_ok(), "the macro panicked on: {src}");
}

#[test]
fn windows_are_placed_as_keras_places_them() {
    use crate::catalog::conv2d::{Padding, Window};
    let place = |n: usize, k: usize, s: usize, d: usize, same: bool| {
        let padding = if same { Padding::Same } else { Padding::Valid };
        let w = Window { rank: 2, size: (k, k), strides: (s, s), dilation: (d, d), padding };
        w.place("Conv2D", "kernel", &[n, n, 1]).map(|p| (p.out.0, p.pad.0))
    };
    assert_eq!(place(28, 3, 1, 1, false), Ok((26, 0)));
    assert_eq!(place(6, 3, 2, 1, false), Ok((2, 0)));
    assert_eq!(place(9, 3, 1, 2, false), Ok((5, 0)));
    // "same": ceil(n / s) outputs, the total padding split with the smaller half first.
    assert_eq!(place(6, 3, 1, 1, true), Ok((6, 1)));
    assert_eq!(place(6, 3, 2, 1, true), Ok((3, 0)));
    assert_eq!(place(7, 3, 2, 1, true), Ok((4, 1)));
    assert_eq!(place(7, 4, 1, 1, true), Ok((7, 1)));
    assert_eq!(place(5, 3, 1, 3, true), Ok((5, 3)));
    assert!(place(2, 3, 1, 1, false).is_err());
    // "causal" (Conv1D): all the padding before, ceil(n / s) outputs.
    let causal = |n: usize, k: usize, s: usize, d: usize| {
        let w = Window { rank: 1, size: (1, k), strides: (1, s), dilation: (1, d), padding: Padding::Causal };
        w.place("Conv1D", "kernel", &[n, 1]).map(|p| (p.out.1, p.pad.1))
    };
    assert_eq!(causal(8, 3, 1, 1), Ok((8, 2)));
    assert_eq!(causal(8, 3, 2, 1), Ok((4, 2)));
    assert_eq!(causal(8, 3, 1, 2), Ok((8, 4)));
    assert_eq!(
        checked("struct C = Input((28, 28, 1)) => Conv2D(32, (3, 3), relu) => MaxPooling2D(2) => Flatten() => Dense(10);").0,
        Some(320 + 5408 * 10 + 10)
    );
    let (_, m) = checked("struct C = Input(784) => GlobalAveragePooling2D();");
    assert_eq!(m, ["GlobalAveragePooling2D expects a 3-D per-sample input (height, width, channels), found (None, 784)"]);
}

#[test]
fn a_layer_argument_is_parsed_as_a_call() {
    let Input::Items(items) =
        parse(TokenStream::from_str("struct N = Input((5, 4)) => TimeDistributed(Dense(8, in = 4, relu), name = \"td\");").unwrap())
            .unwrap()
    else {
        panic!("items expected")
    };
    let wrapper = &items[0].chain.calls[1];
    let inner = wrapper.args[0].layer.as_ref().expect("the argument is a layer call");
    assert_eq!(inner.kind.to_string(), "Dense");
    assert_eq!(inner.args.len(), 3);
    assert_eq!(inner.args[1].key().map(ToString::to_string).as_deref(), Some("in"));
    // Not a Rust expression (`in = 4`): kept verbatim, so messages can still quote it.
    assert!(matches!(wrapper.args[0].value, syn::Expr::Verbatim(_)));
    assert!(wrapper.args[1].layer.is_none());
    // A call that is an expression stays one, for initializers and regularizers.
    let Input::Items(items) =
        parse(TokenStream::from_str("struct N = Dense(8, in = 4, kernel_initializer = random_normal(stddev = 0.1));").unwrap()).unwrap()
    else {
        panic!("items expected")
    };
    let arg = &items[0].chain.calls[0].args[2];
    assert!(matches!(arg.value, syn::Expr::Call(_)));
    assert_eq!(arg.layer.as_ref().map(|c| c.kind.to_string()).as_deref(), Some("random_normal"));
}

#[test]
fn reshaping_layers_follow_keras_shapes() {
    let shape = |src: &str| {
        let Input::Items(items) = parse(TokenStream::from_str(src).unwrap()).unwrap() else { panic!("items expected") };
        let mut diag = Diag::default();
        let m = lower::sequential(&items[0].chain, None, "Net", &mut diag, &[]).unwrap_or_else(|| panic!("{:?}", diag.messages()));
        m.nodes
            .iter()
            .map(|n| (m.uniques[n.unique].name.clone(), n.output.clone(), m.uniques[n.unique].params.value().unwrap()))
            .collect::<Vec<_>>()
    };
    let got = shape(
        "struct N = Input((4, 6, 2)) => Permute((2, 1, 3)) => UpSampling2D((1, 2)) => ZeroPadding2D(((1, 0), (2, 1))) => Cropping2D(1) \
         => ZeroPadding2D((0, 1)) => Cropping2D((1, 2)) => TimeDistributed(Dense(3)) => Flatten() => RepeatVector(2) => Dense(4);",
    );
    let want: Vec<(&str, Vec<usize>, usize)> = vec![
        ("permute", vec![6, 4, 2], 0),
        ("up_sampling2d", vec![6, 8, 2], 0),
        ("zero_padding2d", vec![7, 11, 2], 0),
        ("cropping2d", vec![5, 9, 2], 0),
        ("zero_padding2d_1", vec![5, 11, 2], 0),
        ("cropping2d_1", vec![3, 7, 2], 0),
        ("time_distributed", vec![3, 7, 3], 9),
        ("flatten", vec![63], 0),
        ("repeat_vector", vec![2, 63], 0),
        // The wrapped Dense took `dense`.
        ("dense_1", vec![2, 4], 256),
    ];
    let want: Vec<(String, Vec<usize>, usize)> = want.into_iter().map(|(n, s, p)| (n.to_string(), s, p)).collect();
    assert_eq!(got, want);
    // Keras's defaults: pad 1, upsample 2, crop nothing; the wrapper takes `in`.
    let got = shape(
        "struct D = TimeDistributed(Flatten(), in = (3, 2, 2, 1)) => Reshape((3, 2, 2)) => ZeroPadding2D() => UpSampling2D() => Cropping2D();",
    );
    let outputs: Vec<Vec<usize>> = got.into_iter().map(|(_, s, _)| s).collect();
    assert_eq!(outputs, [vec![3, 4], vec![3, 2, 2], vec![5, 4, 2], vec![10, 8, 2], vec![10, 8, 2]]);
    let (_, m) = checked("struct P = Input((2, 3, 4)) => Permute((1, 1, 2));");
    assert_eq!(m, ["Permute's `dims` must be a permutation of (1, 2, 3), the axes of its input (None, 2, 3, 4), found dims=(1, 1, 2)"]);
    let (_, m) = checked("struct T = Input((5, 4)) => TimeDistributed(BatchNormalization());");
    assert_eq!(m, ["TimeDistributed(BatchNormalization) is not supported: Keras normalizes each step separately"]);
    let (_, m) = checked("struct G = Input(4) => GaussianNoise() => SpatialDropout2D(rate = 0.5, seed = -1);");
    assert_eq!(
        m,
        [
            "GaussianNoise needs a `stddev`, as in `GaussianNoise(0.1)`",
            "SpatialDropout2D's `seed` expects a non-negative integer, found `- 1`"
        ]
    );
    let (_, m) = checked("struct T = Input((5, 4, 3)) => TimeDistributed(TimeDistributed(Dense(2)));");
    assert_eq!(m, ["TimeDistributed cannot wrap another TimeDistributed: reshape the steps into one axis first"]);
}

/// Keras's default layer names (`dense`, `up_sampling2d`, `simple_rnn`, ..), as Keras 3 names
/// each class, come from the one shared `snake_case`.
#[test]
fn default_names_are_keras_snake_case() {
    let keras = [
        ("Dense", "dense"),
        ("Activation", "activation"),
        ("Dropout", "dropout"),
        ("Flatten", "flatten"),
        ("BatchNormalization", "batch_normalization"),
        ("LayerNormalization", "layer_normalization"),
        ("Reshape", "reshape"),
        ("ActivityRegularization", "activity_regularization"),
        ("Conv2D", "conv2d"),
        ("MaxPooling2D", "max_pooling2d"),
        ("AveragePooling2D", "average_pooling2d"),
        ("GlobalAveragePooling2D", "global_average_pooling2d"),
        ("GlobalMaxPooling2D", "global_max_pooling2d"),
        ("Conv1D", "conv1d"),
        ("MaxPooling1D", "max_pooling1d"),
        ("AveragePooling1D", "average_pooling1d"),
        ("GlobalAveragePooling1D", "global_average_pooling1d"),
        ("GlobalMaxPooling1D", "global_max_pooling1d"),
        ("DepthwiseConv2D", "depthwise_conv2d"),
        ("SeparableConv2D", "separable_conv2d"),
        ("Conv2DTranspose", "conv2d_transpose"),
        ("Permute", "permute"),
        ("RepeatVector", "repeat_vector"),
        ("UpSampling2D", "up_sampling2d"),
        ("ZeroPadding2D", "zero_padding2d"),
        ("Cropping2D", "cropping2d"),
        ("GaussianNoise", "gaussian_noise"),
        ("GaussianDropout", "gaussian_dropout"),
        ("SpatialDropout2D", "spatial_dropout2d"),
        ("TimeDistributed", "time_distributed"),
        ("Embedding", "embedding"),
        ("SimpleRNN", "simple_rnn"),
        ("LSTM", "lstm"),
        ("GRU", "gru"),
        ("Bidirectional", "bidirectional"),
        ("Normalization", "normalization"),
        ("Rescaling", "rescaling"),
        ("ReLU", "re_lu"),
        ("LeakyReLU", "leaky_re_lu"),
        ("ELU", "elu"),
        ("PReLU", "p_re_lu"),
        ("Softmax", "softmax"),
        ("Lambda", "lambda"),
        ("Add", "add"),
        ("Subtract", "subtract"),
        ("Multiply", "multiply"),
        ("Average", "average"),
        ("Maximum", "maximum"),
        ("Minimum", "minimum"),
        ("Concatenate", "concatenate"),
    ];
    for (class, snake) in keras {
        assert_eq!(crate::catalog::Layer::snake(class), snake, "{class}");
    }
    // Every class the DSL knows is listed, with the name Keras gives it.
    for entry in crate::catalog::REGISTRY {
        assert!(keras.iter().any(|(c, _)| *c == entry.class), "{} is missing from the table", entry.class);
    }
}

/// The macro's own cost on a model of the user's (`KERAS_EXPAND_FILE`: the body of a
/// `functional!` invocation), median of 5 expansions; run by `scripts/compile_time.sh`.
#[test]
#[ignore]
fn expansion_time() {
    let Ok(path) = std::env::var("KERAS_EXPAND_FILE") else { return };
    let src = std::fs::read_to_string(&path).unwrap();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let tokens = TokenStream::from_str(&src).unwrap();
            let t0 = std::time::Instant::now();
            let out = lower::functional_macro(tokens);
            let t = t0.elapsed().as_secs_f64();
            assert!(!out.to_string().contains("compile_error"), "the model does not check");
            t
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("expansion of {path}: {:.1} ms (median of 5)", times[2] * 1e3);
}

/// `functional!`'s graph checks.
mod graphs {
    use crate::diag::Diag;
    use crate::graph::{Entry, concat_axis};
    use crate::lower;
    use crate::parse::Items;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn errors(tokens: TokenStream) -> Vec<String> {
        let items = syn::parse2::<Items>(tokens).expect("parses");
        let mut diag = Diag::default();
        for item in &items.0 {
            lower::functional(item, &mut diag, &[]);
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
        let c = lower::functional(&items.0[0], &mut diag, &[]).expect("checks");
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

/// Models used as layers: the preamble, the callback, the items' tokens, Keras's name counters.
mod nesting {
    use crate::diag::Diag;
    use crate::lower;
    use crate::nest::{Resolved, callback, export, preamble, split_items};
    use crate::parse::{Input, parse};
    use proc_macro2::TokenStream;
    use quote::quote;

    #[test]
    fn the_preamble_is_split_off() {
        let (p, rest) = preamble(quote! {
            @model Enc = sequential { struct Enc = Input(2) => Dense(1); }
            use Enc;
            use crate::nets::Dec;
            pub struct Net = Input(2) => Enc() => Dense(1);
        })
        .unwrap();
        assert_eq!(p.resolved.len(), 1);
        assert_eq!(p.resolved[0].name, "Enc");
        assert_eq!(p.resolved[0].kind, "sequential");
        assert_eq!(p.uses.len(), 2);
        assert_eq!(rest.to_string(), quote!(pub struct Net = Input(2) => Enc() => Dense(1);).to_string());
        // The model whose tokens have not come yet is asked for, by its path.
        let all = quote!(use Enc; use crate::nets::Dec; pub struct Net = Input(2) => Dense(1););
        let call = callback("sequential", &p, &all).expect("Dec is missing").to_string();
        assert!(call.starts_with(&quote!(crate::nets::__keras_model_Dec!).to_string()), "{call}");
        assert!(call.contains(&quote!(sequential { #all }).to_string()), "{call}");
        // Once every model has come, nothing is asked for, and only `use`d ones are callable.
        let (p, _) =
            preamble(quote!(@model Dec = functional { } @model Other = sequential { } use Dec; struct N = Dense(1, in = 2);)).unwrap();
        assert!(callback("sequential", &p, &TokenStream::new()).is_none());
        assert_eq!(p.models().iter().map(|r| r.name.to_string()).collect::<Vec<_>>(), ["Dec"]);
    }

    #[test]
    fn a_bad_preamble_is_an_error() {
        for src in [quote!(use; struct N = Dense(1, in = 2);), quote!(use Enc struct N = Dense(1, in = 2)), quote!(@mode X = sequential {})]
        {
            assert!(preamble(src.clone()).is_err(), "{src}");
        }
    }

    #[test]
    fn items_are_split_at_their_ends() {
        let seq = split_items(quote!(#[params(3)] pub struct A = Dense(1, in = 2); struct B = Input(3) => Dense(2);), false);
        assert_eq!(seq.len(), 2);
        assert_eq!(seq[1].to_string(), quote!(struct B = Input(3) => Dense(2);).to_string());
        let fun = split_items(
            quote!(struct A(x: [2]) -> y { let y = Dense(1)(x); } pub struct B(x: [3]) -> (a, b) { let a = Dense(1)(x); let b = Dense(2)(x); }),
            true,
        );
        assert_eq!(fun.len(), 2);
        assert!(fun[1].to_string().starts_with("pub struct B"));
        // The callback holds the model's own preamble and item.
        let cb = export(
            &syn::parse_quote!(A),
            "sequential",
            &quote!(
                use E;
            ),
            &seq[0],
        )
        .to_string();
        assert!(cb.contains("macro_rules ! __keras_model_A"), "{cb}");
        assert!(cb.contains(&quote!(@model A = sequential { use E; #[params(3)] pub struct A = Dense(1, in = 2); }).to_string()), "{cb}");
    }

    fn names(models: &[(&str, TokenStream)], src: TokenStream) -> Vec<String> {
        let models: Vec<Resolved> = models
            .iter()
            .map(|(name, body)| Resolved { name: syn::parse_str(name).unwrap(), kind: syn::parse_quote!(sequential), body: body.clone() })
            .collect();
        let Input::Items(items) = parse(src).unwrap() else { panic!("items expected") };
        let mut diag = Diag::default();
        let g = lower::sequential(&items[0].chain, None, "Net", &mut diag, &models).unwrap_or_else(|| panic!("{:?}", diag.messages()));
        g.order
            .iter()
            .filter_map(|e| match e {
                crate::graph::Entry::Unique(u) => Some(g.uniques[*u].name.clone()),
                crate::graph::Entry::Input(_) => None,
            })
            .collect()
    }

    #[test]
    fn default_names_continue_keras_counters() {
        let enc = quote!(struct Enc = Input(2) => Dense(3) => Dense(3, name = "dense_7") => Dense(2););
        let other = quote!(struct Other = Input(2) => Dense(2););
        // Two default-named Dense in Enc (a given name takes no number): the next is dense_2.
        assert_eq!(names(&[("Enc", enc.clone())], quote!(struct N = Input(2) => Enc() => Dense(1);)), ["enc", "dense_2"]);
        // Every model brought in counts: three before this model's first.
        assert_eq!(
            names(&[("Enc", enc), ("Other", other)], quote!(struct N = Input(2) => Enc() => Other() => Dense(1);)),
            ["enc", "other", "dense_3"]
        );
    }
}
