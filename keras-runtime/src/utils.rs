//! Random seeds, the random generator, and small helpers (`keras.utils`).

pub use crate::random::{Rng, next_seed, set_random_seed};

/// Sets the number of CPU threads; see [`crate::backend::cpu::set_num_threads`].
pub use crate::backend::cpu::set_num_threads;

/// Images in, as `keras.utils.load_img` and `img_to_array`.
pub use crate::io::img::{ColorMode, Image, Interpolation, LoadImg, img_to_array, load_img};

/// A directory of images by class as a dataset, as `keras.utils.image_dataset_from_directory`.
pub use crate::datasets::{ImageDirectory, image_dataset_from_directory};

/// A model's graph drawn by Graphviz, as `keras.utils.plot_model` draws it; see [`plot_model`].
pub use crate::plot_model::{PlotModel, model_to_dot, plot_model};

/// One-hot encodes integer class labels, like `keras.utils.to_categorical`: `(n,)` labels in
/// `0..num_classes` become an `(n, num_classes)` array.
pub fn to_categorical<A: crate::train::Element, S: ndarray::Data<Elem = A>>(
    labels: &ndarray::ArrayBase<S, ndarray::Ix1>,
    num_classes: usize,
) -> crate::Result<ndarray::Array2<f32>> {
    let mut out = ndarray::Array2::zeros((labels.len(), num_classes));
    for (i, &l) in labels.iter().enumerate() {
        let v = l.to_f32();
        if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < num_classes) {
            return Err(crate::Error::value(format!("label {i}"), format!("an integer in [0, {num_classes})"), v));
        }
        out[[i, v as usize]] = 1.0;
    }
    Ok(out)
}

/// Scales `x` to unit norm along `axis` (negative counts from the end), like
/// `keras.utils.normalize(x, axis=-1, order=2)`: each slice is divided by its `order`-norm
/// (`order` 1 or 2, or any p >= 1); zero slices are left as they are.
pub fn normalize<S: ndarray::Data<Elem = f32>, D: ndarray::Dimension>(
    x: &ndarray::ArrayBase<S, D>,
    axis: isize,
    order: f32,
) -> crate::Result<ndarray::Array<f32, D>> {
    let rank = x.ndim() as isize;
    let ax = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&ax) {
        return Err(crate::Error::value("normalize axis", format!("an axis of a rank-{rank} array, in [-{rank}, {rank})"), axis));
    }
    if !(order >= 1.0 && order.is_finite()) {
        return Err(crate::Error::value("normalize order", "a finite number >= 1", order));
    }
    let mut out = x.to_owned();
    for mut lane in out.lanes_mut(ndarray::Axis(ax as usize)) {
        let norm = if order == 2.0 {
            lane.iter().map(|v| v * v).sum::<f32>().sqrt()
        } else if order == 1.0 {
            lane.iter().map(|v| v.abs()).sum::<f32>()
        } else {
            lane.iter().map(|v| v.abs().powf(order)).sum::<f32>().powf(1.0 / order)
        };
        if norm != 0.0 {
            lane.mapv_inplace(|v| v / norm);
        }
    }
    Ok(out)
}

/// Training and test sets: `((x_train, y_train), (x_test, y_test))`.
pub type Split<A, D, B, D2> = ((ndarray::Array<A, D>, ndarray::Array<B, D2>), (ndarray::Array<A, D>, ndarray::Array<B, D2>));

/// Splits samples (the first axis of `x` and `y`) into a training and a test set, shuffled with
/// `keras::utils::set_random_seed`'s generator, the last `test_fraction` of the shuffled samples
/// going to the test set (as scikit-learn's `train_test_split`, which Keras tutorials use).
pub fn train_test_split<A, B, S, S2, D, D2>(
    x: &ndarray::ArrayBase<S, D>,
    y: &ndarray::ArrayBase<S2, D2>,
    test_fraction: f64,
) -> crate::Result<Split<A, D, B, D2>>
where
    A: Clone,
    B: Clone,
    S: ndarray::Data<Elem = A>,
    S2: ndarray::Data<Elem = B>,
    D: ndarray::RemoveAxis,
    D2: ndarray::RemoveAxis,
{
    let n = x.shape().first().copied().unwrap_or(0);
    let ny = y.shape().first().copied().unwrap_or(0);
    if n != ny {
        return Err(crate::Error::Shape {
            what: "y".to_string(),
            expected: format!("{n} samples, as x has"),
            found: format!("{ny} samples"),
        });
    }
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(crate::Error::value("test_fraction", "a fraction in (0, 1)", test_fraction));
    }
    let n_test = (n as f64 * test_fraction).ceil() as usize;
    if n_test == 0 || n_test >= n {
        return Err(crate::Error::value(
            "test_fraction",
            format!("a fraction that leaves samples on both sides of the split of {n} samples"),
            test_fraction,
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(next_seed()).shuffle(&mut order);
    let (train, test) = order.split_at(n - n_test);
    let take = |idx: &[usize]| (x.select(ndarray::Axis(0), idx), y.select(ndarray::Axis(0), idx));
    Ok((take(train), take(test)))
}

/// Keras's `naming.to_snake_case` of a class name (see [`keras_naming::snake_case`]).
pub use keras_naming::snake_case;

/// The closest name to a mistyped one (see [`keras_naming::suggest`]).
pub use keras_naming::suggest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_keras() {
        let x = ndarray::array![[3.0f32, 4.0], [0.0, 0.0], [1.0, -1.0]];
        let n = normalize(&x, -1, 2.0).unwrap();
        assert_eq!(n, ndarray::array![[0.6, 0.8], [0.0, 0.0], [1.0 / 2f32.sqrt(), -1.0 / 2f32.sqrt()]]);
        let n = normalize(&x, 0, 1.0).unwrap();
        assert_eq!(n.column(0).to_vec(), [0.75, 0.0, 0.25]);
        assert!(normalize(&x, 2, 2.0).is_err());
        assert!(normalize(&x, -1, 0.5).is_err());
    }

    #[test]
    fn train_test_split_partitions_the_samples() {
        let x = ndarray::Array2::from_shape_fn((10, 2), |(i, j)| (i * 2 + j) as f32);
        let y = ndarray::Array1::from_shape_fn(10, |i| i as u8);
        let ((xt, yt), (xv, yv)) = train_test_split(&x, &y, 0.3).unwrap();
        assert_eq!((xt.shape(), xv.shape()), (&[7, 2][..], &[3, 2][..]));
        let mut all: Vec<u8> = yt.iter().chain(yv.iter()).copied().collect();
        for (row, &label) in xt.outer_iter().zip(yt.iter()) {
            assert_eq!(row[0], label as f32 * 2.0, "rows stay with their labels");
        }
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<u8>>());
        assert!(train_test_split(&x, &y.slice(ndarray::s![..9]), 0.3).is_err());
        assert!(train_test_split(&x, &y, 1.0).is_err());
    }
}
