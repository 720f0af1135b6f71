//! Fashion-MNIST, the Keras tutorial: 28x28 images of clothing, a 128-unit hidden layer.
//! Needs the data set: `sudo apt-get install dataset-fashion-mnist`.
//!
//! `cargo run --release --example fashion_mnist`

use keras::prelude::*;

sequential! { struct Classifier = Input((28, 28)) => Flatten() => Dense(128, relu) => Dense(10, softmax); }

fn main() -> keras::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = keras::datasets::fashion_mnist::load_data()?;
    let (x_train, x_test) = (x_train.mapv(|p| p as f32 / 255.0), x_test.mapv(|p| p as f32 / 255.0));
    let mut model = Classifier::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
    model.fit(&x_train, &y_train, FitArgs::default().epochs(5))?;
    println!("test accuracy: {:.4}", model.evaluate(&x_test, &y_test)?["accuracy"]);
    Ok(())
}
