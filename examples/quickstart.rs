//! Quickstart: define a model with the macro, print its summary, train it with a progress bar
//! and a validation split, plot its training curves, evaluate it, and predict, on the 8x8
//! handwritten digits embedded in keras-rs (no download).
//!
//! `cargo run --release --example quickstart`

use keras::datasets::digits;
use keras::ndarray::s;
use keras::prelude::*;

sequential! {
    /// A small classifier for 8x8 digit images.
    pub struct DigitClassifier = Input((8, 8)) => Flatten() => Dense(64, relu) => Dropout(0.2) => Dense(10, softmax);
}

fn main() -> keras::Result<()> {
    keras::utils::set_random_seed(42);
    let ((x_train, y_train), (x_test, y_test)) = digits::load_data();
    let (x_train, x_test) = (x_train.mapv(|p| p as f32 / 16.0), x_test.mapv(|p| p as f32 / 16.0));

    let model = DigitClassifier::new(&Cpu::default());
    println!("{}", model.summary());

    let mut model = model.compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
    let history = model.fit(&x_train, &y_train, FitArgs::default().epochs(30).validation_split(0.1))?;
    println!("validation accuracy by epoch: {:.3?}", &history["val_accuracy"]);
    // The training curves, as a Keras tutorial plots `history.history` (loss and accuracy charts).
    let plot = std::env::temp_dir().join("quickstart-history.svg");
    history.plot().all().title("DigitClassifier").save(&plot)?;
    println!("training curves: {}", plot.display());

    let logs = model.evaluate(&x_test, &y_test)?;
    println!("test loss: {:.4} - test accuracy: {:.4}", logs.loss(), logs["accuracy"]);

    let probabilities = model.predict(&x_test.slice(s![..8, .., ..]))?;
    let predicted: Vec<usize> = probabilities.outer_iter().map(|p| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)).collect();
    println!("first test digits: {:?}, predicted: {predicted:?}", y_test.slice(s![..8]).to_vec());
    Ok(())
}
