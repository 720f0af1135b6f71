//! A small convnet on Fashion-MNIST: Conv2D => MaxPooling2D => Flatten => Dense, as in the
//! Keras examples. Needs the data set: `sudo apt-get install dataset-fashion-mnist`.
//!
//! `cargo run --release --example cnn`

use keras::prelude::*;

sequential! {
    /// 32 3x3 filters, 2x2 max pooling, a softmax over the 10 classes.
    struct Cnn = Input((28, 28, 1)) => Conv2D(32, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(10, softmax);
}

fn main() -> keras::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = match keras::datasets::fashion_mnist::load_data() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("skipping: Fashion-MNIST is not available ({e})");
            return Ok(());
        }
    };
    // (n, 28, 28) bytes -> (n, 28, 28, 1) floats in [0, 1]: one channel, NHWC.
    let images = |x: keras::ndarray::Array3<u8>| x.mapv(|p| p as f32 / 255.0).insert_axis(keras::ndarray::Axis(3));
    let (x_train, x_test) = (images(x_train), images(x_test));
    let mut model = Cnn::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
    println!("{}", model.summary());
    model.fit(&x_train, &y_train, FitArgs::default().epochs(3).batch_size(128))?;
    println!("test accuracy: {:.4}", model.evaluate(&x_test, &y_test)?["accuracy"]);
    Ok(())
}
