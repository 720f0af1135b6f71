//! A small convnet on Fashion-MNIST: Conv2D => MaxPooling2D => Flatten => Dense, as in the
//! Keras examples. Needs the data set: `sudo apt-get install dataset-fashion-mnist`.
//!
//! `cargo run --release --example cnn` (test accuracy 0.913 after 10 epochs, seed 7).

use keras::prelude::*;

sequential! {
    /// 32 3x3 filters, 2x2 max pooling, a hidden layer of 128, dropout, a softmax over the 10
    /// classes.
    struct Cnn = Input((28, 28, 1))
        => Conv2D(32, (3, 3), relu) => MaxPooling2D((2, 2))
        => Flatten() => Dense(128, relu) => Dropout(0.3) => Dense(10, softmax);
}

fn main() -> keras::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = match keras::datasets::fashion_mnist::load_data() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("skipping: Fashion-MNIST is not available ({e})");
            return Ok(());
        }
    };
    keras::utils::set_random_seed(7);
    // (n, 28, 28) bytes -> (n, 28, 28, 1) floats in [0, 1]: one channel, NHWC.
    let images = |x: keras::ndarray::Array3<u8>| x.mapv(|p| p as f32 / 255.0).insert_axis(keras::ndarray::Axis(3));
    let (x_train, x_test) = (images(x_train), images(x_test));
    // Adam with its rate annealed to zero over the run (cosine decay): the last epochs fine-tune.
    let (epochs, batch_size) = (10, 128);
    let steps = (epochs * x_train.shape()[0].div_ceil(batch_size)) as u64;
    let adam = Adam::new(keras::optimizers::CosineDecay::new(1e-3, steps));
    let mut model = Cnn::new(&Cpu::default()).compile(adam, "sparse_categorical_crossentropy", ["accuracy"])?;
    println!("{}", model.summary());
    model.fit(&x_train, &y_train, FitArgs::default().epochs(epochs).batch_size(batch_size).verbose(2))?;
    println!("test accuracy: {:.4}", model.evaluate(&x_test, &y_test)?["accuracy"]);
    Ok(())
}
