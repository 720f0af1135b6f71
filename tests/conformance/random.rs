//! Random draws: dropout (of elements and of whole channels) and its backward pass, Gaussian
//! noise (additive and multiplicative), and the stream's step counter. The generator is the
//! backend's own, so draws are checked by their statistics and by what keys them: element `i`
//! draws from `(seed, step, i)` alone, `seed` the layer's key (with `fixed`) or the key mixed with
//! the stream's seed.

use crate::support::*;
use keras::backend::{Backend, Draw, RandomStream};

pub fn suite<B: Backend>(dev: &B) {
    dropout(dev);
    dropout_keys(dev);
    spatial_dropout(dev);
    dropout_backward(dev);
    gaussian_noise(dev);
    gaussian_noise_keys(dev);
    advance(dev);
}

/// Elements in the statistical checks.
const DRAWS: usize = 100_000;

/// An elementwise draw keyed by the model's seed.
fn draw(rate: f32, key: u64) -> Draw {
    Draw { rate, key, fixed: false, rows: 0, channels: 0, first: 0 }
}

/// A stream buffer holding `seed` and `step`.
fn stream<B: Backend>(dev: &B, seed: u64, step: u64) -> B::Buffer {
    up(dev, &RandomStream { seed, step }.encode())
}

/// `dropout` of `x` (outputs pre-filled with NaN, so every value must be written): `(y, mask)`.
fn run_dropout<B: Backend>(dev: &B, d: &Draw, s: &B::Buffer, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mask_len = if d.channels == 0 { x.len() } else { d.rows * d.channels };
    let xb = up(dev, x);
    let (mut y, mut mask) = (up(dev, &vec![f32::NAN; x.len()]), up(dev, &vec![f32::NAN; mask_len]));
    dev.dropout(d, v::<B>(s), v::<B>(&xb), vm::<B>(&mut y), vm::<B>(&mut mask));
    (down(dev, &y), down(dev, &mask))
}

/// `gaussian_noise` of `x`: `y`, and the noise when multiplicative.
fn run_noise<B: Backend>(dev: &B, d: &Draw, s: &B::Buffer, x: &[f32], multiplicative: bool) -> (Vec<f32>, Option<Vec<f32>>) {
    let xb = up(dev, x);
    let mut y = up(dev, &vec![f32::NAN; x.len()]);
    let mut noise = multiplicative.then(|| up(dev, &vec![f32::NAN; x.len()]));
    dev.gaussian_noise(d, v::<B>(s), v::<B>(&xb), vm::<B>(&mut y), noise.as_mut().map(vm::<B>));
    (down(dev, &y), noise.map(|n| down(dev, &n)))
}

/// The fraction of positions where two masks differ.
fn differ(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).filter(|(a, b)| a != b).count() as f64 / a.len() as f64
}

/// The fraction of kept values of a mask, after checking every value is 0 or 1.
fn kept(what: &str, mask: &[f32]) -> f64 {
    assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0), "{what}: mask values other than 0 and 1");
    mask.iter().filter(|&&m| m == 1.0).count() as f64 / mask.len() as f64
}

/// Asserts two masks of keep probability `keep` are independent draws: they differ where one of
/// two independent draws keeps and the other drops.
fn independent(what: &str, a: &[f32], b: &[f32], keep: f64) {
    let (got, want) = (differ(a, b), 2.0 * keep * (1.0 - keep));
    assert!((got - want).abs() < 0.015, "{what}: the masks differ at {got} of the positions, independent draws at {want}");
}

/// Elementwise dropout: a 0/1 mask kept at `1 - rate`, `y = mask ? x / (1 - rate) : 0`,
/// neighbours independent, and element `i`'s draw independent of the length (every size agrees
/// with the first values of a large call).
fn dropout<B: Backend>(dev: &B) {
    let x = data(DRAWS, 1, -2.0, 2.0);
    let s = stream(dev, 42, 7);
    for rate in [0.0f32, 0.1, 0.3, 0.5, 0.9] {
        let d = draw(rate, 5);
        let (y, mask) = run_dropout(dev, &d, &s, &x);
        let keep = 1.0 - rate as f64;
        let k = kept(&format!("dropout {rate}"), &mask);
        assert!((k - keep).abs() < 0.01, "dropout {rate}: kept {k}, expected {keep}");
        let want: Vec<f32> = x.iter().zip(&mask).map(|(&x, &m)| if m == 1.0 { x / (1.0 - rate) } else { 0.0 }).collect();
        close32(&format!("dropout {rate}: y"), &y, &want, 1e-6);
        assert!(y.iter().zip(&mask).all(|(y, &m)| m == 1.0 || *y == 0.0), "dropout {rate}: a dropped value is not 0");
        let same_pair = mask.windows(2).filter(|w| w[0] == w[1]).count() as f64 / (DRAWS - 1) as f64;
        let want_pair = keep * keep + (1.0 - keep) * (1.0 - keep);
        assert!((same_pair - want_pair).abs() < 0.01, "dropout {rate}: neighbours agree at {same_pair}, independent draws at {want_pair}");
        for n in SIZES {
            let (ys, ms) = run_dropout(dev, &d, &s, &x[..n]);
            same(&format!("dropout {rate} of {n} values: the mask of the first {n} of {DRAWS}"), &ms, &mask[..n]);
            same(&format!("dropout {rate} of {n} values: y"), &ys, &y[..n]);
        }
    }
}

/// What keys a dropout mask: the same stream and key give the same mask; the next step
/// (`advance`), another seed or another layer key give an independent one; a `fixed` draw
/// ignores the stream's seed but not its step; every bit of the seed and step words counts (words
/// that read as NaN included).
fn dropout_keys<B: Backend>(dev: &B) {
    let x = vec![1.0f32; DRAWS];
    let (rate, keep) = (0.4f32, 0.6f64);
    let d = draw(rate, 5);
    let mut s = stream(dev, 42, 7);
    let base = run_dropout(dev, &d, &s, &x).1;
    same("the same stream, the same mask", &run_dropout(dev, &d, &stream(dev, 42, 7), &x).1, &base);
    independent("another seed", &base, &run_dropout(dev, &d, &stream(dev, 43, 7), &x).1, keep);
    independent("another layer key", &base, &run_dropout(dev, &draw(rate, 6), &s, &x).1, keep);
    dev.advance(vm::<B>(&mut s));
    let next = run_dropout(dev, &d, &s, &x).1;
    independent("the next step", &base, &next, keep);
    same("an advanced stream draws as one uploaded at its step", &run_dropout(dev, &d, &stream(dev, 42, 8), &x).1, &next);

    let fixed = Draw { fixed: true, ..d };
    let f = run_dropout(dev, &fixed, &stream(dev, 42, 7), &x).1;
    same("a fixed draw ignores the model's seed", &run_dropout(dev, &fixed, &stream(dev, 0xdead_beef, 7), &x).1, &f);
    independent("a fixed draw at the next step", &f, &run_dropout(dev, &fixed, &stream(dev, 42, 8), &x).1, keep);
    independent("a fixed draw and a keyed one", &f, &base, keep);

    // 0x7fc0_0001 and 0x7fc0_0002 are NaN payloads as f32; 0xffff_ffff too.
    let nan_seed = |low: u64| 0xffff_ffff_0000_0000 | low;
    let a = run_dropout(dev, &d, &stream(dev, nan_seed(0x7fc0_0001), 0x7fc0_0001), &x).1;
    same(
        "NaN-pattern words: the same stream, the same mask",
        &run_dropout(dev, &d, &stream(dev, nan_seed(0x7fc0_0001), 0x7fc0_0001), &x).1,
        &a,
    );
    independent("NaN-pattern seeds one bit apart", &a, &run_dropout(dev, &d, &stream(dev, nan_seed(0x7fc0_0002), 0x7fc0_0001), &x).1, keep);
    independent("NaN-pattern steps one bit apart", &a, &run_dropout(dev, &d, &stream(dev, nan_seed(0x7fc0_0001), 0x7fc0_0002), &x).1, keep);
}

/// Spatial dropout (`channels > 0`): one 0/1 draw per (sample, channel), kept at `1 - rate`,
/// applied at every position of the sample; keyed by the stream as elementwise dropout.
fn spatial_dropout<B: Backend>(dev: &B) {
    for (rows, positions, channels, rate) in [(1, 1, 1, 0.5f32), (7, 33, 3, 0.25), (33, 1, 7, 0.5), (400, 9, 50, 0.4), (3, 1000, 2, 0.2)] {
        let what = format!("spatial dropout of {rows} samples x {positions} positions x {channels} channels at {rate}");
        let d = Draw { rate, key: 11, fixed: false, rows, channels, first: 0 };
        let x = signed(rows * positions * channels, rows as u64);
        let mut s = stream(dev, 9, 3);
        let (y, mask) = run_dropout(dev, &d, &s, &x);
        assert_eq!(mask.len(), rows * channels);
        let k = kept(&what, &mask);
        if rows * channels >= 10_000 {
            assert!((k - (1.0 - rate as f64)).abs() < 0.02, "{what}: kept {k}");
        }
        let want: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let (sample, channel) = (i / (positions * channels), i % channels);
                if mask[sample * channels + channel] == 1.0 { x / (1.0 - rate) } else { 0.0 }
            })
            .collect();
        close32(&format!("{what}: y"), &y, &want, 1e-6);
        same(&format!("{what}: the same stream, the same mask"), &run_dropout(dev, &d, &s, &x).1, &mask);
        if rows * channels >= 10_000 {
            dev.advance(vm::<B>(&mut s));
            independent(&format!("{what}: the next step"), &mask, &run_dropout(dev, &d, &s, &x).1, 1.0 - rate as f64);
        }
    }
}

/// `dropout_backward`: `dx = mask ? g / (1 - rate) : 0`, elementwise and per (sample, channel).
fn dropout_backward<B: Backend>(dev: &B) {
    let run = |d: &Draw, g: &[f32], mask: &[f32]| {
        let (gb, mb) = (up(dev, g), up(dev, mask));
        let mut dx = up(dev, &vec![f32::NAN; g.len()]);
        dev.dropout_backward(d, v::<B>(&gb), v::<B>(&mb), vm::<B>(&mut dx));
        down(dev, &dx)
    };
    let mask_of = |n: usize, seed: u64| -> Vec<f32> { data(n, seed, 0.0, 1.0).iter().map(|&u| (u < 0.7) as u8 as f32).collect() };
    for n in [1, 7, 33, 1000, 70_001] {
        let rate = 0.3f32;
        let (g, mask) = (signed(n, n as u64), mask_of(n, 3));
        let want: Vec<f32> = g.iter().zip(&mask).map(|(&g, &m)| if m == 1.0 { g / (1.0 - rate) } else { 0.0 }).collect();
        close32(&format!("dropout backward of {n}"), &run(&draw(rate, 1), &g, &mask), &want, 1e-6);
    }
    for (rows, positions, channels) in [(1, 1, 1), (7, 33, 3), (33, 1, 7), (400, 9, 50)] {
        let rate = 0.6f32;
        let d = Draw { rate, key: 1, fixed: false, rows, channels, first: 0 };
        let (g, mask) = (signed(rows * positions * channels, 4), mask_of(rows * channels, 5));
        let want: Vec<f32> = g
            .iter()
            .enumerate()
            .map(|(i, &g)| if mask[i / (positions * channels) * channels + i % channels] == 1.0 { g / (1.0 - rate) } else { 0.0 })
            .collect();
        close32(&format!("spatial dropout backward of {rows} x {positions} x {channels}"), &run(&d, &g, &mask), &want, 1e-6);
    }
}

/// Gaussian noise: additive `y = x + rate n` with `n` standard normal (mean, variance, the mass
/// within one deviation, the fourth moment, neighbours uncorrelated, over 200k draws), the same
/// draws whatever `x` and the length; multiplicative noise is `1 + rate n` with the same draws and
/// `y = x * noise`.
fn gaussian_noise<B: Backend>(dev: &B) {
    let n = 200_000;
    let s = stream(dev, 7, 3);
    for rate in [0.5f32, 2.0] {
        let d = draw(rate, 21);
        let what = format!("gaussian noise of deviation {rate}");
        let (zero_y, _) = run_noise(dev, &d, &s, &vec![0.0; n], false);
        let z: Vec<f64> = zero_y.iter().map(|&y| y as f64 / rate as f64).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        let fourth = z.iter().map(|z| z.powi(4)).sum::<f64>() / n as f64;
        let within = z.iter().filter(|z| z.abs() < 1.0).count() as f64 / n as f64;
        let lag = z.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (n - 1) as f64;
        assert!(mean.abs() < 0.01, "{what}: mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "{what}: variance {var}");
        assert!((fourth - 3.0).abs() < 0.1, "{what}: fourth moment {fourth}");
        assert!((within - 0.682_689).abs() < 0.006, "{what}: {within} of the draws within one deviation");
        assert!(lag.abs() < 0.01, "{what}: neighbours correlate at {lag}");

        let x = signed(n, 8);
        let (y, _) = run_noise(dev, &d, &s, &x, false);
        let want: Vec<f64> = x.iter().zip(&zero_y).map(|(&x, &e)| x as f64 + e as f64).collect();
        close(&format!("{what}: additive, the same draws whatever x"), &y, &want, 1e-6);
        let (y, noise) = run_noise(dev, &d, &s, &x, true);
        let noise = noise.expect("the noise");
        let want: Vec<f64> = zero_y.iter().map(|&e| 1.0 + e as f64).collect();
        close(&format!("{what}: multiplicative noise is 1 + the additive noise"), &noise, &want, 1e-6);
        let want: Vec<f64> = x.iter().zip(&noise).map(|(&x, &m)| x as f64 * m as f64).collect();
        close(&format!("{what}: y = x * noise"), &y, &want, 1e-6);
        for len in SIZES {
            let (ys, _) = run_noise(dev, &d, &s, &vec![0.0; len], false);
            same(&format!("{what} of {len} values: the first {len} draws of {n}"), &ys, &zero_y[..len]);
            let (ym, m) = run_noise(dev, &d, &s, &x[..len], true);
            same(&format!("{what} of {len} values: multiplicative noise"), &m.expect("the noise"), &noise[..len]);
            same(&format!("{what} of {len} values: multiplicative y"), &ym, &y[..len]);
        }
    }
}

/// What keys Gaussian noise: the same stream gives the same draws; the next step, another seed,
/// another key give others; a fixed draw ignores the seed.
fn gaussian_noise_keys<B: Backend>(dev: &B) {
    let x = vec![0.0f32; DRAWS];
    let d = draw(1.0, 3);
    let mut s = stream(dev, 5, 0);
    let base = run_noise(dev, &d, &s, &x, false).0;
    same("gaussian noise: the same stream, the same draws", &run_noise(dev, &d, &stream(dev, 5, 0), &x, false).0, &base);
    let fresh = |what: &str, other: &[f32]| {
        let agree = base.iter().zip(other).filter(|(a, b)| a == b).count();
        assert!(agree < 10, "gaussian noise, {what}: {agree} of {DRAWS} draws repeat");
    };
    fresh("another seed", &run_noise(dev, &d, &stream(dev, 6, 0), &x, false).0);
    fresh("another key", &run_noise(dev, &draw(1.0, 4), &s, &x, false).0);
    dev.advance(vm::<B>(&mut s));
    fresh("the next step", &run_noise(dev, &d, &s, &x, false).0);
    let fixed = Draw { fixed: true, ..d };
    let f = run_noise(dev, &fixed, &stream(dev, 5, 0), &x, false).0;
    same("gaussian noise: a fixed draw ignores the seed", &run_noise(dev, &fixed, &stream(dev, 99, 0), &x, false).0, &f);
}

/// `advance` adds one to the step, a `u64` held as two `u32` bit patterns: across the 2^32
/// boundary, through words that read as NaN, the seed untouched bit for bit.
fn advance<B: Backend>(dev: &B) {
    let starts = [
        (0u64, 0u64),
        (42, u32::MAX as u64 - 1),
        (0x7fc0_0000_ffff_ffff, 0x7f80_0001),
        (0xffff_ffff_7fc0_0001, (5 << 32) | 0xffff_fffe),
        (u64::MAX, 1 << 40),
    ];
    for (seed, step) in starts {
        let mut s = stream(dev, seed, step);
        for k in 1..=3 {
            dev.advance(vm::<B>(&mut s));
            let want = RandomStream { seed, step: step + k };
            let got = down(dev, &s);
            assert_eq!(RandomStream::decode(&got), want, "advance {k} times from seed {seed:#x}, step {step:#x}");
            same(&format!("advance {k} times from seed {seed:#x}, step {step:#x}: the words"), &got, &want.encode());
        }
    }
}
