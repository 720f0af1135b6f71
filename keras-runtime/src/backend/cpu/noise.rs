//! Random draws on the CPU: dropout (of elements or of whole channels) and Gaussian noise, from
//! a counter-based generator: element `i` of a call draws from `(seed, step, i)` alone, so the
//! result does not depend on how the work is split over threads, and a step's draws are known
//! from the model's [`RandomStream`] alone.

use super::kernels::{Rows, for_rows, mix};
use crate::backend::ops::{Draw, RandomStream, decode_u64, encode_u64};

/// The generator's key for a layer's draw at the stream's step.
#[inline(always)]
fn key(d: &Draw, stream: RandomStream) -> u64 {
    let seed = if d.fixed { d.key } else { stream.seed ^ d.key };
    mix(seed ^ mix(stream.step.wrapping_add(0x9e37_79b9_7f4a_7c15))).wrapping_add(d.first)
}

/// A uniform number in `[0, 1)` with 24 random bits, drawn for counter `i`.
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

/// See `RandomOps::dropout`.
pub fn dropout(d: &Draw, stream: RandomStream, x: &[f32], y: &mut [f32], mask: &mut [f32]) {
    let (rate, keep, key) = (d.rate, 1.0 - d.rate, key(d, stream));
    if d.channels == 0 {
        for (i, ((y, m), &x)) in y.iter_mut().zip(mask.iter_mut()).zip(x).enumerate() {
            let kept = uniform(key, i as u64) >= rate;
            *m = kept as u8 as f32;
            *y = if kept { x / keep } else { 0.0 };
        }
        return;
    }
    let (rows, channels) = (d.rows, d.channels);
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

/// See `RandomOps::dropout_backward`.
pub fn dropout_backward(d: &Draw, g: &[f32], mask: &[f32], dx: &mut [f32]) {
    let keep = 1.0 - d.rate;
    if d.channels == 0 {
        for ((dx, &m), &g) in dx.iter_mut().zip(mask).zip(g) {
            *dx = if m != 0.0 { g / keep } else { 0.0 };
        }
        return;
    }
    let (rows, channels) = (d.rows, d.channels);
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

/// See `RandomOps::gaussian_noise`.
pub fn gaussian_noise(d: &Draw, stream: RandomStream, x: &[f32], y: &mut [f32], noise: Option<&mut [f32]>) {
    let (n, key, stddev) = (x.len(), key(d, stream), d.rate);
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

/// See `RandomOps::advance`: the stream's step count plus one.
pub fn advance(stream: &mut [f32]) {
    let at = RandomStream::STEP;
    let step = decode_u64(&stream[at..]).wrapping_add(1);
    stream[at..at + 2].copy_from_slice(&encode_u64(step));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(rate: f32, key: u64, rows: usize, channels: usize) -> Draw {
        Draw { rate, key, fixed: true, rows, channels, first: 0 }
    }

    #[test]
    fn gaussian_noise_has_the_asked_moments() {
        let n = 200_000;
        let x = vec![1.0f32; n];
        let mut y = vec![0.0f32; n];
        let stream = RandomStream { seed: 0, step: 3 };
        gaussian_noise(&draw(0.5, 7, 0, 0), stream, &x, &mut y, None);
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01 && (var - 0.25).abs() < 0.01, "mean {mean} variance {var}");
        let mut noise = vec![0.0f32; n];
        let mut y2 = vec![0.0f32; n];
        gaussian_noise(&draw(0.5, 7, 0, 0), stream, &x, &mut y2, Some(&mut noise));
        // The same draws: multiplicative noise is 1 + the additive noise.
        assert!(y.iter().zip(&noise).all(|(a, b)| (a - b).abs() < 1e-6));
    }

    #[test]
    fn spatial_dropout_drops_whole_channels() {
        let (rows, positions, channels) = (64, 5, 8);
        let x: Vec<f32> = (0..rows * positions * channels).map(|i| 1.0 + i as f32).collect();
        let (mut y, mut mask) = (vec![0.0; x.len()], vec![0.0; rows * channels]);
        dropout(&draw(0.25, 1, rows, channels), RandomStream { seed: 0, step: 2 }, &x, &mut y, &mut mask);
        for (i, (&y, &x)) in y.iter().zip(&x).enumerate() {
            let m = mask[(i / (positions * channels)) * channels + i % channels];
            assert_eq!(y, if m != 0.0 { x / 0.75 } else { 0.0 });
        }
        let kept = mask.iter().sum::<f32>() / mask.len() as f32;
        assert!((kept - 0.75).abs() < 0.08, "kept {kept}");
    }

    #[test]
    fn dropout_keeps_about_one_minus_rate_and_scales() {
        let x = vec![1.0f32; 100_000];
        let (mut y, mut mask) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        let d = Draw { rate: 0.3, key: 5, fixed: false, rows: 0, channels: 0, first: 0 };
        let stream = RandomStream { seed: 42, step: 7 };
        dropout(&d, stream, &x, &mut y, &mut mask);
        let kept = mask.iter().filter(|&&m| m == 1.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
        assert!(y.iter().zip(&mask).all(|(&y, &m)| if m == 1.0 { y == 1.0 / 0.7 } else { y == 0.0 }));
        let mut again = vec![0.0; x.len()];
        dropout(&d, stream, &x, &mut y, &mut again);
        assert_eq!(mask, again, "same seed and step, same mask");
        let mut buf = stream.encode();
        advance(&mut buf);
        assert_eq!(RandomStream::decode(&buf), RandomStream { seed: 42, step: 8 });
        dropout(&d, RandomStream::decode(&buf), &x, &mut y, &mut again);
        assert_ne!(mask, again, "the next step, another mask");
    }
}
