//! Fashion-MNIST: 70,000 28x28 grayscale images of clothing in 10 classes.

use super::{ImageSplits, load_idx_splits};
use crate::Result;

/// The class names, by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// `((x_train, y_train), (x_test, y_test))`: 60,000 training and 10,000 test images
/// `(n, 28, 28)` of bytes 0-255, labels 0-9, as `keras.datasets.fashion_mnist.load_data()`.
///
/// Read from `~/.keras/datasets/fashion-mnist/` or `/usr/share/datasets/fashion-mnist/` (Debian's
/// `dataset-fashion-mnist`); the error says how to install it when neither has the files.
pub fn load_data() -> Result<ImageSplits> {
    load_idx_splits(
        "Fashion-MNIST",
        "fashion-mnist",
        &["/usr/share/datasets/fashion-mnist"],
        "install it with `sudo apt-get install dataset-fashion-mnist` (Debian, Ubuntu) or put the files from https://github.com/zalandoresearch/fashion-mnist in ~/.keras/datasets/fashion-mnist/",
    )
}
