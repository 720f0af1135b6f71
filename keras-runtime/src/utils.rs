//! Random seeds, the random generator, and small helpers (`keras.utils`).

use std::sync::Mutex;

/// The process-wide generator that hands out seeds to new models, initializers and shuffles.
static GLOBAL: Mutex<Option<Rng>> = Mutex::new(None);

/// Seeds every random choice keras-rs makes after this call (weight initialization, dropout
/// masks, shuffling), like `keras.utils.set_random_seed`: the same seed and thread count give
/// bit-identical training on the CPU.
pub fn set_random_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Rng::new(seed));
}

/// A fresh seed from the process-wide generator (seeded from the clock if [`set_random_seed`]
/// was never called).
pub fn next_seed() -> u64 {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let rng = g.get_or_insert_with(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Rng::new(t ^ (std::process::id() as u64).rotate_left(32))
    });
    rng.next_u64()
}

/// Sets the number of CPU threads; see [`crate::backend::cpu::set_num_threads`].
pub use crate::backend::cpu::set_num_threads;

/// A small, fast, seedable generator (xoshiro256++), with the distributions initializers need.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole state derives from `seed` (through SplitMix64).
    pub fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..100_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
    }

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

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..1000).collect();
        Rng::new(3).shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_ne!(v, s);
    }
}
