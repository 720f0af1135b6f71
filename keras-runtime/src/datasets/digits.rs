//! The 8x8 handwritten digits of UCI (scikit-learn's `load_digits`), embedded: 1,797 images of
//! pixel intensities 0-16.

use ndarray::{Array1, Array3, s};

const DATA: &[u8] = include_bytes!("digits.bin");
const SAMPLES: usize = 1797;
/// Samples in the training split; the rest are the test split.
pub const TRAIN: usize = 1500;

/// `((x_train, y_train), (x_test, y_test))`: images `(n, 8, 8)` of intensities 0-16 and labels
/// 0-9; the first 1,500 samples train, the last 297 test.
pub fn load_data() -> super::ImageSplits {
    let (pixels, labels) = DATA.split_at(SAMPLES * 64);
    let x = Array3::from_shape_vec((SAMPLES, 8, 8), pixels.to_vec()).expect("embedded digits");
    let y = Array1::from(labels.to_vec());
    (
        (x.slice(s![..TRAIN, .., ..]).to_owned(), y.slice(s![..TRAIN]).to_owned()),
        (x.slice(s![TRAIN.., .., ..]).to_owned(), y.slice(s![TRAIN..]).to_owned()),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_and_ranges() {
        let ((xt, yt), (xv, yv)) = super::load_data();
        assert_eq!((xt.shape(), xv.shape()), (&[1500, 8, 8][..], &[297, 8, 8][..]));
        assert_eq!((yt.len(), yv.len()), (1500, 297));
        assert!(xt.iter().all(|&p| p <= 16) && yt.iter().all(|&l| l <= 9));
        assert_eq!(&yt.as_slice().unwrap()[..10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
}
