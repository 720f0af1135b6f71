//! What every part of the suite uses: moving data to and from a device, deterministic inputs,
//! and comparison with a reference.

use keras::backend::Backend;

/// The awkward sizes every kernel is tried at (one, a partial vector, past a cache line of
/// vectors, past the CPU's threading threshold for small kernels).
pub const SIZES: [usize; 4] = [1, 7, 33, 1000];

/// A buffer holding `data`.
pub fn up<B: Backend>(dev: &B, data: &[f32]) -> B::Buffer {
    let mut buf = dev.alloc(data.len()).expect("alloc");
    dev.upload(data, B::view_mut(&mut buf, 0..data.len())).expect("upload");
    buf
}

/// A buffer's contents.
pub fn down<B: Backend>(dev: &B, buf: &B::Buffer) -> Vec<f32> {
    let mut host = vec![0.0; B::len(buf)];
    dev.download(B::view(buf, 0..host.len()), &mut host).expect("download");
    host
}

/// The whole buffer as a view.
pub fn v<B: Backend>(buf: &B::Buffer) -> B::View<'_> {
    B::view(buf, 0..B::len(buf))
}

/// The whole buffer as a writable view.
pub fn vm<B: Backend>(buf: &mut B::Buffer) -> B::ViewMut<'_> {
    let n = B::len(buf);
    B::view_mut(buf, 0..n)
}

/// Deterministic values in `[lo, hi)` (a 64-bit LCG; `seed` picks the sequence).
pub fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect()
}

/// Values in `[-1, 1)`.
pub fn signed(n: usize, seed: u64) -> Vec<f32> {
    data(n, seed, -1.0, 1.0)
}

/// Asserts `got` equals the reference `want` within `rtol` at the reference's scale
/// (`|got - want| <= rtol * max(1, max |want|)` elementwise); NaN must meet NaN, and infinities
/// the same infinity.
pub fn close(what: &str, got: &[f32], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, the reference has {}", got.len(), want.len());
    let scale = want.iter().filter(|w| w.is_finite()).fold(1.0f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= rtol * scale
        };
        assert!(ok, "{what}: element {i} is {g}, the reference {w} (tolerance {rtol} at scale {scale})");
    }
}

/// [`close`] against an f32 reference.
pub fn close32(what: &str, got: &[f32], want: &[f32], rtol: f64) {
    close(what, got, &want.iter().map(|&w| w as f64).collect::<Vec<_>>(), rtol);
}

/// Asserts two results are identical, bit for bit (NaN equal to NaN): for kernels that only move
/// values.
pub fn same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, the reference has {}", got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{what}: element {i} is {g}, the reference {w}");
    }
}

/// The tolerance of single-precision arithmetic in a reduction of `n` terms.
pub fn rtol_for(n: usize) -> f64 {
    1e-6 * (n as f64).sqrt().max(4.0)
}
