//! Explicit SIMD for the elementwise kernels, chosen at run time: AVX-512, AVX2+FMA, or scalar.
//!
//! Kernels are written once, generic over [`Simd`], and instantiated per instruction set inside a
//! `#[target_feature]` function by [`simd_fn!`]: the kernels and the trait methods are
//! `#[inline(always)]`, so the intrinsics inline into code compiled for that instruction set. Every level computes the same
//! polynomials in the same order, so results agree across machines up to FMA contraction.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// The instruction set the CPU kernels use on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX-512F (16 lanes).
    Avx512,
    /// AVX2 with FMA (8 lanes).
    Avx2,
    /// Portable scalar code.
    Scalar,
}

/// The best level this CPU supports; `KERAS_SIMD=avx2|scalar` lowers it (for testing).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("KERAS_SIMD").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        detect(cap)
    })
}

#[cfg(target_arch = "x86_64")]
fn detect(cap: Level) -> Level {
    if cap == Level::Avx512 && is_x86_feature_detected!("avx512f") {
        Level::Avx512
    } else if cap != Level::Scalar && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect(_cap: Level) -> Level {
    Level::Scalar
}

/// Vector operations over `LANES` f32 lanes. `Mask` is the result of a lane-wise comparison.
///
/// # Safety
/// Implementors must only be instantiated on CPUs that support their instruction set; the
/// pointer methods read or write `LANES` (or `n`) consecutive floats.
pub unsafe trait Simd: Copy {
    /// A vector of `LANES` f32.
    type V: Copy;
    /// A lane mask.
    type M: Copy;
    /// Lanes per vector.
    const LANES: usize;
    /// Loads `LANES` floats.
    unsafe fn load(self, p: *const f32) -> Self::V;
    /// Stores `LANES` floats.
    unsafe fn store(self, p: *mut f32, v: Self::V);
    /// Loads `n < LANES` floats, the other lanes zero.
    unsafe fn load_part(self, p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n < LANES` lanes.
    unsafe fn store_part(self, p: *mut f32, v: Self::V, n: usize);
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `max(a, b)`; returns `b` where either is NaN.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `min(a, b)`; returns `b` where either is NaN.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Rounds to the nearest integer (ties to even).
    fn round(self, a: Self::V) -> Self::V;
    /// `2^n` for integral `n` in [-126, 127].
    fn pow2(self, n: Self::V) -> Self::V;
    /// Lanes where `a > b`.
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes where `a < b`.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `m ? a : b` lane-wise.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// `|a|`.
    fn abs(self, a: Self::V) -> Self::V;
}

/// AVX-512F, 16 lanes.
#[derive(Clone, Copy)]
pub struct Avx512(());
/// AVX2 + FMA, 8 lanes.
#[derive(Clone, Copy)]
pub struct Avx2(());
/// One lane, portable.
#[derive(Clone, Copy)]
pub struct Scalar;

#[cfg(target_arch = "x86_64")]
unsafe impl Simd for Avx512 {
    type V = __m512;
    type M = __mmask16;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m512 {
        unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m512, n: usize) {
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, v) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn pow2(self, n: __m512) -> __m512 {
        unsafe {
            let i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(i))
        }
    }
    #[inline(always)]
    fn gt(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mask_blend_ps(m, b, a) }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fff_ffff))) }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe impl Simd for Avx2 {
    type V = __m256;
    type M = __m256;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m256 {
        unsafe { _mm256_maskload_ps(p, avx2_mask(n)) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m256, n: usize) {
        unsafe { _mm256_maskstore_ps(p, avx2_mask(n), v) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn pow2(self, n: __m256) -> __m256 {
        unsafe {
            let i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(i))
        }
    }
    #[inline(always)]
    fn gt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_blendv_ps(b, a, m) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2_mask(n: usize) -> __m256i {
    const M: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    unsafe { _mm256_loadu_si256(M.as_ptr().add(8 - n) as *const __m256i) }
}

unsafe impl Simd for Scalar {
    type V = f32;
    type M = bool;
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn load_part(self, _p: *const f32, _n: usize) -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn store_part(self, _p: *mut f32, _v: f32, _n: usize) {}
    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn round(self, a: f32) -> f32 {
        a.round_ties_even()
    }
    #[inline(always)]
    fn pow2(self, n: f32) -> f32 {
        f32::from_bits((((n as i32) + 127) as u32) << 23)
    }
    #[inline(always)]
    fn gt(self, a: f32, b: f32) -> bool {
        a > b
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
    }
    #[inline(always)]
    fn abs(self, a: f32) -> f32 {
        a.abs()
    }
}

/// Whether this CPU can run code of `level`.
#[cfg(test)]
pub fn supported(level: Level) -> bool {
    detect(level) == level
}

impl Avx512 {
    /// The AVX-512 token.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[inline(always)]
    pub unsafe fn new() -> Self {
        Avx512(())
    }
}

impl Avx2 {
    /// The AVX2 token.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline(always)]
    pub unsafe fn new() -> Self {
        Avx2(())
    }
}

/// Defines a kernel `$name` that runs `$imp::<S>` (an `#[inline(always)]` function generic over
/// [`Simd`]) for the best [`Level`] of this CPU, and `$at` that runs it at a given level. Each
/// level's instance sits in its own `#[target_feature]` function, into which the generic body
/// and its intrinsics inline.
macro_rules! simd_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident / $at:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:path) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: `level()` is what this CPU supports.
            unsafe { $at($crate::backend::cpu::simd::level(), $($arg),*) }
        }

        /// The same kernel at a given level.
        ///
        /// # Safety
        /// This CPU must support `level` (see `simd::supported`).
        #[allow(dead_code, clippy::too_many_arguments)]
        $vis unsafe fn $at(level: $crate::backend::cpu::simd::Level, $($arg: $ty),*) $(-> $ret)? {
            use $crate::backend::cpu::simd::Level;
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: only called after AVX-512F was detected.
                $imp(unsafe { $crate::backend::cpu::simd::Avx512::new() }, $($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: only called after AVX2 and FMA were detected.
                $imp(unsafe { $crate::backend::cpu::simd::Avx2::new() }, $($arg),*)
            }
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller vouches for the level.
                Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller vouches for the level.
                Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => $imp($crate::backend::cpu::simd::Scalar, $($arg),*),
            }
        }
    };
}
pub(crate) use simd_fn;

/// `e^x`, Cephes' single-precision polynomial (about 1 ulp); 0 below -87.34, +inf above 88.72, NaN kept.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::V) -> S::V {
    const HI: f32 = 88.722_84;
    const LO: f32 = -87.336_55;
    let xc = s.max(s.splat(LO), s.min(s.splat(HI), x));
    let n = s.round(s.mul(xc, s.splat(std::f32::consts::LOG2_E)));
    // r = x - n ln2, in two parts for precision.
    let r = s.fma(n, s.splat(-0.693_359_4), xc);
    let r = s.fma(n, s.splat(2.121_944_4e-4), r);
    let mut p = s.splat(1.987_569_1e-4);
    p = s.fma(p, r, s.splat(1.398_199_9e-3));
    p = s.fma(p, r, s.splat(8.333_452e-3));
    p = s.fma(p, r, s.splat(4.166_579_6e-2));
    p = s.fma(p, r, s.splat(1.666_666_5e-1));
    p = s.fma(p, r, s.splat(5e-1));
    let y = s.add(s.fma(s.mul(p, r), r, r), s.splat(1.0));
    // 2^n as 2^a * 2^(n-a) keeps both factors normal for n in [-126, 128].
    let a = s.round(s.mul(n, s.splat(0.5)));
    let y = s.mul(s.mul(y, s.pow2(a)), s.pow2(s.sub(n, a)));
    let y = s.select(s.lt(x, s.splat(LO)), s.splat(0.0), y);
    s.select(s.gt(x, s.splat(HI)), s.splat(f32::INFINITY), y)
}

/// The activations with a vector form (see `kernels::vectorized`); identity for the others.
#[inline(always)]
pub fn activate<S: Simd>(s: S, v: S::V, act: crate::backend::ops::Activation) -> S::V {
    use crate::backend::ops::Activation;
    match act {
        // `max` returns its second operand where either is NaN: NaN propagates, as in Keras.
        Activation::Relu => s.max(s.splat(0.0), v),
        Activation::Sigmoid => sigmoid(s, v),
        Activation::Tanh => tanh(s, v),
        Activation::Exponential => exp(s, v),
        _ => v,
    }
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid<S: Simd>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    s.div(one, s.add(one, exp(s, s.sub(s.splat(0.0), x))))
}

/// `tanh(x)`: Cephes' odd polynomial below |x| = 0.625, `1 - 2 / (e^2|x| + 1)` above.
#[inline(always)]
pub fn tanh<S: Simd>(s: S, x: S::V) -> S::V {
    let ax = s.abs(x);
    let z = s.mul(x, x);
    let mut p = s.splat(-5.704_988_7e-3);
    p = s.fma(p, z, s.splat(2.063_909e-2));
    p = s.fma(p, z, s.splat(-5.373_971_6e-2));
    p = s.fma(p, z, s.splat(1.333_144_2e-1));
    p = s.fma(p, z, s.splat(-3.333_328e-1));
    let small = s.fma(s.mul(p, z), x, x);
    let e = exp(s, s.add(ax, ax));
    let big = s.sub(s.splat(1.0), s.div(s.splat(2.0), s.add(e, s.splat(1.0))));
    let big = s.select(s.lt(x, s.splat(0.0)), s.sub(s.splat(0.0), big), big);
    s.select(s.lt(ax, s.splat(0.625)), small, big)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `f` to `n` lanes at `src`, writing `dst` (which may equal `src`).
    ///
    /// # Safety
    /// `src` and `dst` must be valid for `n` floats.
    #[inline(always)]
    pub unsafe fn map<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize, f: impl Fn(S::V) -> S::V) {
        let mut i = 0;
        unsafe {
            while i + S::LANES <= n {
                s.store(dst.add(i), f(s.load(src.add(i))));
                i += S::LANES;
            }
            if i < n {
                s.store_part(dst.add(i), f(s.load_part(src.add(i), n - i)), n - i);
            }
        }
    }

    fn all_levels(f: impl Fn(Level)) {
        for level in [Level::Scalar, Level::Avx2, Level::Avx512] {
            if supported(level) {
                f(level);
            }
        }
    }

    #[inline(always)]
    fn exp_impl<S: Simd>(s: S, xs: &[f32], out: &mut [f32]) {
        // SAFETY: map covers exactly xs and out, which have the same length.
        unsafe { map(s, xs.as_ptr(), out.as_mut_ptr(), xs.len(), |v| exp(s, v)) }
    }
    #[inline(always)]
    fn tanh_impl<S: Simd>(s: S, xs: &[f32], out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { map(s, xs.as_ptr(), out.as_mut_ptr(), xs.len(), |v| tanh(s, v)) }
    }
    #[inline(always)]
    fn sigmoid_impl<S: Simd>(s: S, xs: &[f32], out: &mut [f32]) {
        // SAFETY: as above.
        unsafe { map(s, xs.as_ptr(), out.as_mut_ptr(), xs.len(), |v| sigmoid(s, v)) }
    }
    simd_fn!(fn exp_best / exp_at(xs: &[f32], out: &mut [f32]) => exp_impl);
    simd_fn!(fn tanh_best / tanh_at(xs: &[f32], out: &mut [f32]) => tanh_impl);
    simd_fn!(fn sigmoid_best / sigmoid_at(xs: &[f32], out: &mut [f32]) => sigmoid_impl);

    fn apply(level: Level, xs: &[f32], which: unsafe fn(Level, &[f32], &mut [f32])) -> Vec<f32> {
        assert!(supported(level));
        let mut out = vec![0.0; xs.len()];
        // SAFETY: checked above.
        unsafe { which(level, xs, &mut out) };
        out
    }

    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.045).collect();
        xs.extend([1e-6, -1e-6, 1e-3, 0.0, -0.0, 88.5, 88.72, -87.3, -100.0, 100.0, 0.62, 0.63]);
        xs
    }

    fn rel(a: f32, b: f64) -> f64 {
        if b == 0.0 { (a as f64).abs() } else { ((a as f64 - b) / b).abs() }
    }

    #[test]
    fn exp_is_within_two_ulp() {
        let _ = (exp_best, tanh_best, sigmoid_best);
        all_levels(|level| {
            let xs = grid();
            let ys = apply(level, &xs, exp_at);
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = (x as f64).exp();
                if x < -87.34 {
                    assert_eq!(y, 0.0);
                } else if x > 88.73 {
                    assert_eq!(y, f32::INFINITY);
                } else {
                    assert!(rel(y, want) < 2.5e-7, "{level:?} exp({x}) = {y}, want {want}");
                }
            }
            let nan = apply(level, &[f32::NAN; 17], exp_at);
            assert!(nan.iter().all(|v| v.is_nan()), "{level:?} exp(NaN) must be NaN");
        });
    }

    #[test]
    fn tanh_and_sigmoid_are_accurate() {
        all_levels(|level| {
            let xs = grid();
            let t = apply(level, &xs, tanh_at);
            let sg = apply(level, &xs, sigmoid_at);
            for i in 0..xs.len() {
                let x = xs[i] as f64;
                assert!(rel(t[i], x.tanh()) < 4e-7, "{level:?} tanh({x}) = {}", t[i]);
                let want = 1.0 / (1.0 + (-x).exp());
                assert!(rel(sg[i], want) < 4e-7 || (want < 1e-37 && sg[i] < 1e-37), "{level:?} sigmoid({x}) = {}", sg[i]);
            }
        });
    }

    #[test]
    fn levels_agree_bit_for_bit_on_exp() {
        let xs = grid();
        let base = apply(Level::Scalar, &xs, exp_at);
        all_levels(|level| {
            let ys = apply(level, &xs, exp_at);
            let differ = ys.iter().zip(&base).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differ, 0, "{level:?} differs from scalar in {differ} places");
        });
    }
}
