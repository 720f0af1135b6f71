//! Fashion-MNIST, the Keras tutorial: 28x28 images of clothing, a 128-unit hidden layer
//! (workload W-fmnist). Trains for 5 epochs, saves the model as a Keras 3 `.keras` file, then
//! starts a second process of this program that loads the file into a fresh model and predicts
//! the test set; the first process checks that those predictions are bit-identical to its own.
//! Training writes TensorBoard logs under `logs/fit/` (`tensorboard --logdir logs/fit`).
//! Needs the data set: `sudo apt-get install dataset-fashion-mnist`.
//!
//! `cargo run --release --example fashion_mnist` (`-- --epochs N` to train for N epochs)

use keras::callbacks::TensorBoard;
use keras::ndarray::{Array2, Axis};
use keras::prelude::*;
use std::path::Path;
use std::process::Command;

sequential! { struct Classifier = Input((28, 28)) => Flatten() => Dense(128, relu) => Dense(10, softmax); }

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, model, predictions] if flag == "--predict" => predict(Path::new(model), Path::new(predictions)),
        [] => train(5),
        [flag, n] if flag == "--epochs" => train(n.parse().map_err(|_| format!("--epochs expects a whole number, found `{n}`"))?),
        _ => Err("usage: fashion_mnist [--epochs N] (or, as the second process, --predict MODEL.keras PREDICTIONS)".into()),
    }
}

/// The first process: trains, saves, has a second process reload and predict, compares.
fn train(epochs: usize) -> AnyResult<()> {
    let ((x_train, y_train), (x_test, y_test)) = keras::datasets::fashion_mnist::load_data()?;
    let (x_train, x_test) = (x_train.mapv(|p| p as f32 / 255.0), x_test.mapv(|p| p as f32 / 255.0));
    let mut model = Classifier::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;

    // TensorBoard, as in its tutorial: logs of this run under logs/fit/<time>, with the weights'
    // histograms and the test set as validation data. Then `tensorboard --logdir logs/fit`.
    let log_dir = format!("logs/fit/{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs());
    let mut tensorboard = TensorBoard::new(&log_dir).histogram_freq(1);
    model.fit(&x_train, &y_train, FitArgs::default().epochs(epochs).validation_data(&x_test, &y_test).callback(&mut tensorboard))?;
    println!("TensorBoard logs written to {log_dir}: see them with `tensorboard --logdir logs/fit`");

    println!("test accuracy: {:.4}", model.evaluate(&x_test, &y_test)?["accuracy"]);
    let ours = model.predict(&x_test)?;

    let dir = std::env::temp_dir().join(format!("keras-fashion-mnist-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (saved, theirs_path) = (dir.join("classifier.keras"), dir.join("predictions.f32"));
    model.save_keras(&saved)?;
    println!("saved {} ({} bytes)", saved.display(), std::fs::metadata(&saved)?.len());

    let status = Command::new(std::env::current_exe()?).arg("--predict").arg(&saved).arg(&theirs_path).status()?;
    if !status.success() {
        return Err(format!("the second process failed ({status})").into());
    }
    let theirs = read_f32(&theirs_path)?;
    std::fs::remove_dir_all(&dir)?;
    let differing = ours.iter().zip(&theirs).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    if theirs.len() != ours.len() || differing > 0 {
        return Err(format!(
            "the second process's predictions differ from this one's: {} values against {}, {differing} of them not bit-identical",
            theirs.len(),
            ours.len()
        )
        .into());
    }
    println!("the second process's {} predictions are bit-identical to this process's", ours.nrows());
    Ok(())
}

/// The second process: a fresh model, the saved weights, predictions on the test set.
fn predict(saved: &Path, out: &Path) -> AnyResult<()> {
    let (_, (x_test, y_test)) = keras::datasets::fashion_mnist::load_data()?;
    let x_test = x_test.mapv(|p| p as f32 / 255.0);
    let mut model = Classifier::new(&Cpu::default());
    model.load_keras(saved)?;
    let predictions: Array2<f32> = model.predict(&x_test)?;
    let correct = predictions
        .axis_iter(Axis(0))
        .zip(&y_test)
        .filter(|(row, label)| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i) == Some(usize::from(**label)))
        .count();
    println!(
        "second process (pid {}): loaded {}, test accuracy {:.4}",
        std::process::id(),
        saved.display(),
        correct as f64 / y_test.len() as f64
    );
    std::fs::write(out, predictions.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    Ok(())
}

/// Little-endian f32 values, as [`predict`] writes them.
fn read_f32(path: &Path) -> AnyResult<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() % 4 != 0 {
        return Err(format!("{}: {} bytes is not a whole number of f32 values", path.display(), bytes.len()).into());
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
