//! Fisher's iris data (150 samples, 4 features, 3 species), embedded.

use ndarray::{Array1, Array2};

/// The species names, by label.
pub const CLASS_NAMES: [&str; 3] = ["setosa", "versicolor", "virginica"];

const CSV: &str = include_str!("iris.csv");

/// `(x, y)`: measurements `(150, 4)` in centimetres (sepal length, sepal width, petal length,
/// petal width) and species labels 0-2, in the order of scikit-learn's `load_iris`.
pub fn load_data() -> (Array2<f32>, Array1<u8>) {
    let mut x = Vec::with_capacity(600);
    let mut y = Vec::with_capacity(150);
    for line in CSV.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        x.extend(fields[..4].iter().map(|v| v.parse::<f32>().expect("embedded iris data")));
        y.push(fields[4].parse::<u8>().expect("embedded iris data"));
    }
    (Array2::from_shape_vec((y.len(), 4), x).expect("embedded iris data"), Array1::from(y))
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_150_samples_50_per_class() {
        let (x, y) = super::load_data();
        assert_eq!(x.shape(), [150, 4]);
        for c in 0..3 {
            assert_eq!(y.iter().filter(|&&l| l == c).count(), 50);
        }
        assert_eq!(x.row(0).to_vec(), [5.1, 3.5, 1.4, 0.2]);
    }
}
