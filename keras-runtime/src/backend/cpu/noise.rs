//! Noise kernels: Gaussian noise and dropout of whole channels, from the counter-based generator
//! of `kernels::dropout` (element `i` of a call draws from `(seed, stream, i)` alone, so the result
//! does not depend on how the work is split over threads).

use super::kernels::{Rows, for_rows, mix};

/// The generator's key for a call.
#[inline(always)]
fn key(seed: u64, stream: u64) -> u64 {
    mix(seed ^ mix(stream.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// A uniform number in `[0, 1)` with 24 random bits, drawn for counter `i` (as dropout draws).
#[inline(always)]
fn uniform(key: u64, i: u64) -> f32 {
    (mix(key.wrapping_add(i)) >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// A standard normal number for counter `i` (Box-Muller on the two halves of one draw).
#[inline(always)]
fn normal(key: u64, i: u64) -> f32 {
    let bits = mix(key.wrapping_add(i));
    let u1 = ((bits >> 40) + 1) as f32 * (1.0 / (1u64 << 24) as f32);
    let u2 = (bits & 0x00ff_ffff) as f32 * (1.0 / (1u64 << 24) as f32);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// See `Backend::gaussian_noise`.
pub fn gaussian_noise(x: &[f32], y: &mut [f32], noise: Option<&mut [f32]>, stddev: f32, seed: u64, stream: u64) {
    let (n, key) = (x.len(), key(seed, stream));
    let y = Rows::new(&mut y[..n], 1);
    let noise = noise.map(|m| Rows::new(&mut m[..n], 1));
    for_rows(n, 1, |r| {
        // SAFETY: the ranges are disjoint.
        let ys = unsafe { y.rows(&r) };
        let xs = &x[r.clone()];
        match noise {
            Some(m) => {
                // SAFETY: as above.
                let ms = unsafe { m.rows(&r) };
                for (k, ((y, m), &x)) in ys.iter_mut().zip(ms.iter_mut()).zip(xs).enumerate() {
                    *m = 1.0 + stddev * normal(key, (r.start + k) as u64);
                    *y = x * *m;
                }
            }
            None => {
                for (k, (y, &x)) in ys.iter_mut().zip(xs).enumerate() {
                    *y = x + stddev * normal(key, (r.start + k) as u64);
                }
            }
        }
    });
}

/// `out = a * b`.
pub fn multiply(a: &[f32], b: &[f32], out: &mut [f32]) {
    let n = out.len();
    let o = Rows::new(out, 1);
    for_rows(n, 1, |r| {
        // SAFETY: the ranges are disjoint.
        let os = unsafe { o.rows(&r) };
        for ((o, &a), &b) in os.iter_mut().zip(&a[r.clone()]).zip(&b[r.clone()]) {
            *o = a * b;
        }
    });
}

/// See `Backend::spatial_dropout`.
#[allow(clippy::too_many_arguments)]
pub fn spatial_dropout(x: &[f32], y: &mut [f32], mask: &mut [f32], rows: usize, channels: usize, rate: f32, seed: u64, stream: u64) {
    let (keep, key) = (1.0 - rate, key(seed, stream));
    let sample = x.len() / rows.max(1);
    let y = Rows::new(&mut y[..rows * sample], sample);
    let mask = Rows::new(&mut mask[..rows * channels], channels);
    for_rows(rows, sample, |r| {
        // SAFETY: the sample ranges are disjoint.
        let (ys, ms) = unsafe { (y.rows(&r), mask.rows(&r)) };
        for (k, m) in ms.iter_mut().enumerate() {
            *m = (uniform(key, (r.start * channels + k) as u64) >= rate) as u8 as f32;
        }
        let xs = &x[r.start * sample..r.end * sample];
        for ((ys, xs), ms) in ys.chunks_exact_mut(sample).zip(xs.chunks_exact(sample)).zip(ms.chunks_exact(channels)) {
            for (yp, xp) in ys.chunks_exact_mut(channels).zip(xs.chunks_exact(channels)) {
                for ((y, &x), &m) in yp.iter_mut().zip(xp).zip(ms) {
                    *y = if m != 0.0 { x / keep } else { 0.0 };
                }
            }
        }
    });
}

/// See `Backend::spatial_dropout_backward`.
pub fn spatial_dropout_backward(g: &[f32], mask: &[f32], dx: &mut [f32], rows: usize, channels: usize, rate: f32) {
    let keep = 1.0 - rate;
    let sample = g.len() / rows.max(1);
    let dx = Rows::new(&mut dx[..rows * sample], sample);
    for_rows(rows, sample, |r| {
        // SAFETY: the sample ranges are disjoint.
        let ds = unsafe { dx.rows(&r) };
        let gs = &g[r.start * sample..r.end * sample];
        let ms = &mask[r.start * channels..r.end * channels];
        for ((ds, gs), ms) in ds.chunks_exact_mut(sample).zip(gs.chunks_exact(sample)).zip(ms.chunks_exact(channels)) {
            for (dp, gp) in ds.chunks_exact_mut(channels).zip(gs.chunks_exact(channels)) {
                for ((d, &g), &m) in dp.iter_mut().zip(gp).zip(ms) {
                    *d = if m != 0.0 { g / keep } else { 0.0 };
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_noise_has_the_asked_moments() {
        let n = 200_000;
        let x = vec![1.0f32; n];
        let mut y = vec![0.0f32; n];
        gaussian_noise(&x, &mut y, None, 0.5, 7, 3);
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01 && (var - 0.25).abs() < 0.01, "mean {mean} variance {var}");
        let mut noise = vec![0.0f32; n];
        let mut y2 = vec![0.0f32; n];
        gaussian_noise(&x, &mut y2, Some(&mut noise), 0.5, 7, 3);
        // The same draws: multiplicative noise is 1 + the additive noise.
        assert!(y.iter().zip(&noise).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn spatial_dropout_drops_whole_channels() {
        let (rows, positions, channels) = (64, 5, 8);
        let x: Vec<f32> = (0..rows * positions * channels).map(|i| 1.0 + i as f32).collect();
        let (mut y, mut mask) = (vec![0.0; x.len()], vec![0.0; rows * channels]);
        spatial_dropout(&x, &mut y, &mut mask, rows, channels, 0.25, 1, 2);
        for (i, (&y, &x)) in y.iter().zip(&x).enumerate() {
            let m = mask[(i / (positions * channels)) * channels + i % channels];
            assert_eq!(y, if m != 0.0 { x / 0.75 } else { 0.0 });
        }
        let kept = mask.iter().sum::<f32>() / mask.len() as f32;
        assert!((kept - 0.75).abs() < 0.08, "kept {kept}");
    }
}
