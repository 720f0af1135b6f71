//! Data-parallel training over MPI: the same program on every rank, each computing its slice of
//! every global batch (see `keras::distribution`). Trains a digit classifier with batch
//! normalization and dropout on the 8x8 digits embedded in keras-rs, with a checkpoint and a
//! backup each epoch (rank 0 writes them), then evaluates and predicts on every rank.
//!
//! ```text
//! cargo build --release --features mpi --example distributed
//! mpirun -np 4 target/release/examples/distributed                       # 4 ranks on this machine
//! mpirun -np 8 --hostfile hosts target/release/examples/distributed      # over several machines
//! ```
//!
//! Needs MPI (Debian: `openmpi-bin libopenmpi-dev libclang-dev`). A rank started on its own
//! (`target/release/examples/distributed`) is a job of one.

use keras::callbacks::{BackupAndRestore, ModelCheckpoint};
use keras::datasets::digits;
use keras::distribution::DataParallel;
use keras::prelude::*;

sequential! {
    /// A small classifier for 8x8 digit images.
    pub struct DigitClassifier = Input((8, 8)) => Flatten() => Dense(64) => BatchNormalization() => Activation(relu)
        => Dropout(0.2) => Dense(10, softmax);
}

fn main() -> keras::Result<()> {
    // Keep the job alive until the end of main: MPI is finalized when it is dropped.
    let job = DataParallel::mpi()?;
    keras::utils::set_random_seed(42);
    let ((x_train, y_train), (x_test, y_test)) = digits::load_data();
    let (x_train, x_test) = (x_train.mapv(|p| p as f32 / 16.0), x_test.mapv(|p| p as f32 / 16.0));

    // Rank 0's initial weights go to every rank; from here on the program is the usual one.
    let mut model = DigitClassifier::new(&Cpu::default())
        .compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?
        .distribute(&job)?;
    if job.is_chief() {
        println!("{} ranks; each computes 1/{} of every batch of 64", job.size(), job.size());
    }
    let dir = std::env::temp_dir().join("keras-distributed-example");
    let mut checkpoint = ModelCheckpoint::new(dir.join("digits.safetensors").display().to_string());
    let mut backup = BackupAndRestore::new(dir.join("backup"));
    let args = FitArgs::default().epochs(20).batch_size(64).validation_split(0.1).callback(&mut checkpoint).callback(&mut backup);
    let history = model.fit(&x_train, &y_train, args)?;

    // Every rank logged the job's values; evaluate and predict are sharded and gathered.
    let test = model.evaluate(&x_test, &y_test)?;
    let predictions = model.predict(&x_test)?;
    let (reduces, reduce_time) = job.all_reduce_time();
    if job.is_chief() {
        println!("validation accuracy by epoch: {:.3?}", &history["val_accuracy"]);
        println!("test accuracy {:.4}, loss {:.4}", test["accuracy"], test.loss());
        let first = predictions.row(0).iter().enumerate().fold((0, f32::MIN), |best, (i, &p)| if p > best.1 { (i, p) } else { best }).0;
        println!("{} predictions on every rank; the first test image is a {first} (label {})", predictions.nrows(), y_test[0]);
        println!(
            "{reduces} gradient all-reduces, {:.3} ms each on rank 0 (waiting for the slowest rank included)",
            reduce_time.as_secs_f64() * 1e3 / reduces.max(1) as f64
        );
        println!("checkpoint: {}", dir.join("digits.safetensors").display());
    }
    Ok(())
}
