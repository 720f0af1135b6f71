//! The macro's logic, tested without a compiler run.

use crate::check::check;
use crate::diag::Diag;
use crate::expand;
use crate::parse::{Input, parse};
use proc_macro2::TokenStream;
use std::str::FromStr;

fn checked(src: &str) -> (Option<usize>, Vec<String>) {
    let Input::Items(items) = parse(TokenStream::from_str(src).unwrap()).unwrap() else { panic!("items expected") };
    let mut diag = Diag::default();
    let m = check(&items[0].chain, items[0].params.as_ref(), "Net", &mut diag);
    (m.map(|m| m.params()), diag.messages())
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
    let out = std::panic::catch_unwind(|| expand::sequential(tokens).to_string());
    assert!(out.is_ok(), "the macro panicked on: {src}");
}

#[test]
fn windows_are_placed_as_keras_places_them() {
    use crate::catalog::conv2d::Window;
    let place = |n: usize, k: usize, s: usize, d: usize, same: bool| {
        let w = Window { size: (k, k), strides: (s, s), dilation: (d, d), same };
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
        parse(TokenStream::from_str("struct N = Input((5, 4)) => TimeDistributed(Dense(8, in = 4, relu), name = \"td\");").unwrap()).unwrap()
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
