//! MNIST: 70,000 28x28 grayscale images of handwritten digits.

use super::{ImageSplits, load_idx_splits};
use crate::Result;

/// `((x_train, y_train), (x_test, y_test))`: 60,000 training and 10,000 test images
/// `(n, 28, 28)` of bytes 0-255, labels 0-9, as `keras.datasets.mnist.load_data()`.
///
/// Read from `~/.keras/datasets/mnist/` or `/usr/share/datasets/mnist/`; the error says where to
/// get the files when neither has them.
pub fn load_data() -> Result<ImageSplits> {
    load_idx_splits(
        "MNIST",
        "mnist",
        &["/usr/share/datasets/mnist"],
        "put the four IDX files of https://yann.lecun.org/exdb/mnist/ (or a mirror) in ~/.keras/datasets/mnist/",
    )
}
