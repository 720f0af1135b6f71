//! `summary()` prints Keras 3's table character for character (`tests/fixtures/keras-text.md`
//! holds Keras's own output), titled after the struct.

use keras::prelude::*;

sequential! {
    /// The model of keras-text.md section (a).
    pub struct Mlp = Dense(32, in = 784, sigmoid) => Dense(10, sigmoid) => Dense(1, sigmoid);
}

sequential! {
    /// The W-fmnist model, keras-text.md section (b).
    struct FashionNet = Input(784) => Dense(128, relu) => Dense(10, softmax);
}

const _: () = assert!(Mlp::PARAMS == 25_461);

/// Section `(x)` of keras-text.md: the text block after its heading.
fn keras_text(section: &str) -> String {
    let doc = include_str!("fixtures/keras-text.md");
    let start = doc.find(&format!("## ({section})")).expect("section");
    let block = &doc[start..];
    let a = block.find("```text\n").unwrap() + "```text\n".len();
    let b = block[a..].find("```").unwrap();
    block[a..a + b].to_string()
}

#[test]
fn mlp_summary_is_keras_text_a() {
    let model = Mlp::new(&Cpu::default());
    let want = keras_text("a").replacen("Model: \"sequential\"", "Model: \"mlp\"", 1);
    assert_eq!(model.summary().to_string(), want);
}

#[test]
fn fmnist_summary_is_keras_text_b() {
    let model = FashionNet::new(&Cpu::default());
    let want = keras_text("b").replacen("Model: \"sequential\"", "Model: \"fashion_net\"", 1);
    assert_eq!(model.summary().to_string(), want);
}

#[test]
fn expression_form_is_titled_sequential() {
    let model = sequential!(Input(784) => Dense(128, relu) => Dense(10, softmax));
    assert_eq!(model.summary().to_string(), keras_text("b"));
}

#[test]
fn consts_describe_the_model() {
    assert_eq!(Mlp::TRAINABLE_PARAMS, 25_461);
    assert_eq!(Mlp::NON_TRAINABLE_PARAMS, 0);
    assert_eq!(Mlp::INPUT_SHAPE, &[784]);
    assert_eq!(Mlp::OUTPUT_SHAPE, &[1]);
    assert_eq!(Mlp::LAYER_NAMES, &["dense", "dense_1", "dense_2"]);
    assert_eq!(<Mlp as Model>::NAME, "mlp");
}

keras::sequential! {
    struct Normalized = Dense(32, in = 784, relu) => BatchNormalization() => Dense(10, softmax);
}

/// Batch normalization's moving statistics are the "Non-trainable params" of Keras's table; the
/// expected text is Keras 3.15's own `summary()` of the same model.
#[test]
fn batch_normalization_counts_non_trainable_params() {
    use keras::Network;
    const KERAS: &str = "Model: \"normalized\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 32)             │        25,120 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ batch_normalization             │ (None, 32)             │           128 │
│ (BatchNormalization)            │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           330 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 25,578 (99.91 KB)
 Trainable params: 25,514 (99.66 KB)
 Non-trainable params: 64 (256.00 B)
";
    let ours = Normalized::new(&keras::Cpu::default()).summary().to_string();
    let trim = |t: &str| t.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(trim(&ours), trim(KERAS));
}
