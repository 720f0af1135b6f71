//! Numbers that a user's own loss is written over, so that it is written once and
//! differentiated for free.
//!
//! A [`CustomLoss`](crate::losses::CustomLoss) is a function generic over [`Real`]. The runtime
//! evaluates it with `f32` when only the value is needed, with [`Dual`] numbers (forward-mode
//! automatic differentiation: each number carries its derivative along one direction) to get the
//! gradient, and at `f64` precision to check that gradient by finite differences
//! ([`check_gradient`](crate::losses::check_gradient)).
//!
//! `Real` has the arithmetic of `f32` between two numbers of the type and with an `f32` on the
//! right (`x * 2.0`, `x - t`), comparisons with either, and the usual functions as methods
//! (`x.exp()`, `x.ln()`, `x.max(y)`, ...). Constants enter with [`Real::from_f32`].
//!
//! ```
//! use keras_runtime::autodiff::{Dual, Real};
//!
//! fn softplus<T: Real>(x: T) -> T {
//!     (x.exp() + 1.0).ln()
//! }
//! // The value and the derivative d/dx at x = 0.5, in one evaluation.
//! let y = softplus(Dual::variable(0.5));
//! assert!((y.value() - 0.974_077_4).abs() < 1e-6);
//! assert!((y.derivative() - 0.622_459_3).abs() < 1e-6); // sigmoid(0.5)
//! ```

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A number a user's loss is generic over: `f32`, [`Dual`], or the `f64` precision of gradient
/// checks. Binary operators take the same type or an `f32` on the right.
pub trait Real:
    Copy
    + Debug
    + PartialEq
    + PartialOrd
    + PartialEq<f32>
    + PartialOrd<f32>
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f32, Output = Self>
    + Sub<f32, Output = Self>
    + Mul<f32, Output = Self>
    + Div<f32, Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Send
    + Sync
    + 'static
{
    /// A constant (its derivative is 0).
    fn from_f32(x: f32) -> Self;
    /// The value as an `f32` (a dual number's derivative is dropped).
    fn value(self) -> f32;
    /// `e^self`.
    fn exp(self) -> Self;
    /// The natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
    /// `self` raised to a constant power.
    fn powf(self, p: f32) -> Self;
    /// `self` raised to an integer power.
    fn powi(self, n: i32) -> Self;
    /// The hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The sine.
    fn sin(self) -> Self;
    /// The cosine.
    fn cos(self) -> Self;
    /// The absolute value (its derivative at 0 is 1, as JAX's).
    fn abs(self) -> Self;

    /// 0.
    fn zero() -> Self {
        Self::from_f32(0.0)
    }
    /// 1.
    fn one() -> Self {
        Self::from_f32(1.0)
    }
    /// `self * self`.
    fn square(self) -> Self {
        self * self
    }
    /// The larger of the two; NaN if either is NaN (as Keras's `ops.maximum`). At a tie the
    /// derivative is the mean of both (as JAX's), so `x.max(T::zero())` at 0 has slope 0.5.
    fn max(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            if self.is_nan() { self } else { other }
        } else if self > other {
            self
        } else if other > self {
            other
        } else if self.value().is_infinite() {
            self
        } else {
            // Equal values: `self` exactly, the derivatives averaged.
            self + (other - self) * 0.5
        }
    }
    /// The smaller of the two; NaN if either is NaN. At a tie the derivative is the mean of
    /// both, as JAX's.
    fn min(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            if self.is_nan() { self } else { other }
        } else if self < other {
            self
        } else if other < self {
            other
        } else if self.value().is_infinite() {
            self
        } else {
            // Equal values: `self` exactly, the derivatives averaged.
            self + (other - self) * 0.5
        }
    }
    /// `self` limited to `[lo, hi]` (NaN stays NaN), as Keras's `ops.clip`.
    fn clip(self, lo: f32, hi: f32) -> Self {
        self.max(Self::from_f32(lo)).min(Self::from_f32(hi))
    }
    /// `1 / (1 + e^-self)`.
    fn sigmoid(self) -> Self {
        Self::one() / ((-self).exp() + 1.0)
    }
    /// `ln(1 + e^self)`, computed without overflow.
    fn softplus(self) -> Self {
        // ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|).
        self.max(Self::zero()) + (-self.abs()).exp().ln_1p()
    }
    /// Whether the value is NaN.
    fn is_nan(self) -> bool {
        self.value().is_nan()
    }
}

impl Real for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn value(self) -> f32 {
        self
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn ln_1p(self) -> Self {
        f32::ln_1p(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn powf(self, p: f32) -> Self {
        f32::powf(self, p)
    }
    fn powi(self, n: i32) -> Self {
        f32::powi(self, n)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn sin(self) -> Self {
        f32::sin(self)
    }
    fn cos(self) -> Self {
        f32::cos(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
}

/// A dual number `value + derivative·ε` (ε² = 0): arithmetic on it carries the derivative
/// along, so evaluating a function at [`Dual::variable`]`(x)` gives `f(x)` and `f'(x)` at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dual {
    /// The value.
    pub v: f32,
    /// The derivative along the direction being differentiated.
    pub d: f32,
}

impl Dual {
    /// A constant: derivative 0.
    pub fn constant(v: f32) -> Self {
        Dual { v, d: 0.0 }
    }
    /// The variable being differentiated: derivative 1.
    pub fn variable(v: f32) -> Self {
        Dual { v, d: 1.0 }
    }
    /// The value.
    pub fn value(self) -> f32 {
        self.v
    }
    /// The derivative.
    pub fn derivative(self) -> f32 {
        self.d
    }
    /// `f(v)` with derivative `f'(v) · d` (the chain rule). A constant stays a constant where
    /// `f'` is infinite (`sqrt` at 0): its derivative is 0, not `inf · 0`.
    fn chain(self, v: f32, dv: f32) -> Self {
        Dual { v, d: if self.d == 0.0 { 0.0 } else { dv * self.d } }
    }
}

/// The arithmetic of a dual-like type over a scalar `$s`: with itself and with `f32`.
macro_rules! dual_arithmetic {
    ($t:ident, $s:ty) => {
        impl Add for $t {
            type Output = $t;
            fn add(self, o: $t) -> $t {
                $t { v: self.v + o.v, d: self.d + o.d }
            }
        }
        impl Sub for $t {
            type Output = $t;
            fn sub(self, o: $t) -> $t {
                $t { v: self.v - o.v, d: self.d - o.d }
            }
        }
        impl Mul for $t {
            type Output = $t;
            fn mul(self, o: $t) -> $t {
                $t { v: self.v * o.v, d: self.d * o.v + self.v * o.d }
            }
        }
        impl Div for $t {
            type Output = $t;
            fn div(self, o: $t) -> $t {
                let v = self.v / o.v;
                $t { v, d: (self.d - v * o.d) / o.v }
            }
        }
        impl Neg for $t {
            type Output = $t;
            fn neg(self) -> $t {
                $t { v: -self.v, d: -self.d }
            }
        }
        impl Add<f32> for $t {
            type Output = $t;
            fn add(self, o: f32) -> $t {
                $t { v: self.v + o as $s, d: self.d }
            }
        }
        impl Sub<f32> for $t {
            type Output = $t;
            fn sub(self, o: f32) -> $t {
                $t { v: self.v - o as $s, d: self.d }
            }
        }
        impl Mul<f32> for $t {
            type Output = $t;
            fn mul(self, o: f32) -> $t {
                $t { v: self.v * o as $s, d: self.d * o as $s }
            }
        }
        impl Div<f32> for $t {
            type Output = $t;
            fn div(self, o: f32) -> $t {
                $t { v: self.v / o as $s, d: self.d / o as $s }
            }
        }
        impl AddAssign for $t {
            fn add_assign(&mut self, o: $t) {
                *self = *self + o;
            }
        }
        impl SubAssign for $t {
            fn sub_assign(&mut self, o: $t) {
                *self = *self - o;
            }
        }
        impl MulAssign for $t {
            fn mul_assign(&mut self, o: $t) {
                *self = *self * o;
            }
        }
        impl DivAssign for $t {
            fn div_assign(&mut self, o: $t) {
                *self = *self / o;
            }
        }
        impl Sum for $t {
            fn sum<I: Iterator<Item = $t>>(iter: I) -> $t {
                iter.fold($t { v: 0.0, d: 0.0 }, |a, b| a + b)
            }
        }
        /// Numbers compare by value (as `PartialOrd` does), so that a loss branches alike on
        /// `f32` and on dual numbers.
        impl PartialEq for $t {
            fn eq(&self, o: &$t) -> bool {
                self.v == o.v
            }
        }
        impl PartialOrd for $t {
            fn partial_cmp(&self, o: &$t) -> Option<std::cmp::Ordering> {
                self.v.partial_cmp(&o.v)
            }
        }
        impl PartialEq<f32> for $t {
            fn eq(&self, o: &f32) -> bool {
                self.v == *o as $s
            }
        }
        impl PartialOrd<f32> for $t {
            fn partial_cmp(&self, o: &f32) -> Option<std::cmp::Ordering> {
                self.v.partial_cmp(&(*o as $s))
            }
        }
    };
}

dual_arithmetic!(Dual, f32);

/// The elementary functions of a dual-like type, each with its derivative.
macro_rules! dual_functions {
    ($s:ty) => {
        fn exp(self) -> Self {
            let e = self.v.exp();
            self.chain(e, e)
        }
        fn ln(self) -> Self {
            self.chain(self.v.ln(), 1.0 / self.v)
        }
        fn ln_1p(self) -> Self {
            self.chain(self.v.ln_1p(), 1.0 / (1.0 + self.v))
        }
        fn sqrt(self) -> Self {
            let r = self.v.sqrt();
            self.chain(r, 0.5 / r)
        }
        fn powf(self, p: f32) -> Self {
            let p = p as $s;
            self.chain(self.v.powf(p), p * self.v.powf(p - 1.0))
        }
        fn powi(self, n: i32) -> Self {
            if n == 0 {
                return self.chain(1.0, 0.0);
            }
            self.chain(self.v.powi(n), n as $s * self.v.powi(n - 1))
        }
        fn sigmoid(self) -> Self {
            // Stable on both sides: e^-|v| never overflows.
            let e = (-self.v.abs()).exp();
            let s = if self.v >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            self.chain(s, s * (1.0 - s))
        }
        fn softplus(self) -> Self {
            let e = (-self.v.abs()).exp();
            let s = if self.v >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            let v = if self.v.is_nan() { self.v } else { self.v.max(0.0) + e.ln_1p() };
            self.chain(v, s)
        }
        fn tanh(self) -> Self {
            let t = self.v.tanh();
            self.chain(t, 1.0 - t * t)
        }
        fn sin(self) -> Self {
            self.chain(self.v.sin(), self.v.cos())
        }
        fn cos(self) -> Self {
            self.chain(self.v.cos(), -self.v.sin())
        }
        fn abs(self) -> Self {
            // At 0 the slope is 1, as JAX's.
            let s = if self.v >= 0.0 {
                1.0
            } else if self.v < 0.0 {
                -1.0
            } else {
                self.v
            };
            self.chain(self.v.abs(), s)
        }
    };
}

impl Real for Dual {
    fn from_f32(x: f32) -> Self {
        Dual::constant(x)
    }
    fn value(self) -> f32 {
        self.v
    }
    dual_functions!(f32);
}

/// A number at `f64` precision (no derivative), for finite-difference checks of `f32` gradients.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Wide {
    v: f64,
    /// Always 0: present so that [`Wide`] shares [`Dual`]'s arithmetic.
    d: f64,
}

impl Wide {
    pub(crate) fn new(v: f64) -> Self {
        Wide { v, d: 0.0 }
    }
    pub(crate) fn get(self) -> f64 {
        self.v
    }
    fn chain(self, v: f64, _dv: f64) -> Self {
        Wide::new(v)
    }
}

dual_arithmetic!(Wide, f64);

impl Real for Wide {
    fn from_f32(x: f32) -> Self {
        Wide::new(x as f64)
    }
    fn value(self) -> f32 {
        self.v as f32
    }
    dual_functions!(f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each function's dual derivative against a central difference at f64.
    #[test]
    fn dual_derivatives_match_finite_differences() {
        type F = fn(Dual) -> Dual;
        type W = fn(Wide) -> Wide;
        let cases: [(&str, F, W, f32); 16] = [
            ("exp", |x| x.exp(), |x| x.exp(), 0.3),
            ("ln", |x| x.ln(), |x| x.ln(), 1.7),
            ("ln_1p", |x| x.ln_1p(), |x| x.ln_1p(), 0.2),
            ("sqrt", |x| x.sqrt(), |x| x.sqrt(), 2.5),
            ("powf", |x| x.powf(1.5), |x| x.powf(1.5), 1.3),
            ("powi", |x| x.powi(3), |x| x.powi(3), -0.7),
            ("tanh", |x| x.tanh(), |x| x.tanh(), 0.4),
            ("sin", |x| x.sin(), |x| x.sin(), 0.9),
            ("cos", |x| x.cos(), |x| x.cos(), 0.9),
            ("abs", |x| x.abs(), |x| x.abs(), -0.6),
            ("sigmoid", |x| x.sigmoid(), |x| x.sigmoid(), -1.2),
            ("softplus", |x| x.softplus(), |x| x.softplus(), 0.8),
            ("div", |x| Dual::constant(2.0) / (x * x + 1.0), |x| Wide::from_f32(2.0) / (x * x + 1.0), 0.7),
            ("max", |x| x.max(Dual::constant(0.1)) * x, |x| x.max(Wide::from_f32(0.1)) * x, 0.5),
            ("min", |x| x.min(Dual::constant(0.1)) - x * 3.0, |x| x.min(Wide::from_f32(0.1)) - x * 3.0, 0.5),
            ("clip", |x| x.clip(-1.0, 1.0).square(), |x| x.clip(-1.0, 1.0).square(), 0.3),
        ];
        for (name, f, w, x) in cases {
            let d = f(Dual::variable(x));
            let h = 1e-6;
            let numeric = (w(Wide::new(x as f64 + h)).get() - w(Wide::new(x as f64 - h)).get()) / (2.0 * h);
            assert!((d.v as f64 - w(Wide::new(x as f64)).get()).abs() < 1e-6, "{name} value");
            assert!((d.d as f64 - numeric).abs() < 1e-5 * numeric.abs().max(1.0), "{name}: dual {} vs numeric {numeric}", d.d);
        }
    }

    /// Where a function's derivative is infinite or overflows, a constant stays a constant and
    /// the smooth functions keep their derivative: no `inf · 0` NaN.
    #[test]
    fn edges_give_no_spurious_nan() {
        // sqrt of a constant 0 (a target of 0) beside a variable.
        let (t, p) = (Dual::constant(0.0), Dual::variable(4.0));
        let loss = (p.sqrt() - t.sqrt()).square();
        assert_eq!((loss.v, loss.d), (4.0, 1.0));
        assert_eq!(Dual::constant(0.0).ln().d, 0.0);
        assert_eq!(Dual::variable(0.0).powi(0).v, 1.0);
        assert_eq!(Dual::variable(0.0).powi(0).d, 0.0);
        // sigmoid and softplus far out and at 0.
        let s = Dual::variable(-100.0).sigmoid();
        assert!(s.v >= 0.0 && s.d.is_finite() && s.d >= 0.0, "{s:?}");
        let s = Dual::variable(100.0).sigmoid();
        assert!((s.v - 1.0).abs() < 1e-6 && s.d.is_finite(), "{s:?}");
        assert_eq!(Dual::variable(0.0).softplus().d, 0.5);
        assert!((Dual::variable(0.0).softplus().v - std::f32::consts::LN_2).abs() < 1e-7);
        assert!(Dual::variable(-100.0).softplus().d.is_finite());
        assert!(Dual::constant(f32::NAN).softplus().v.is_nan());
        // Equality is by value, as ordering is.
        assert_eq!(Dual::variable(1.0), Dual::constant(1.0));
    }

    #[test]
    fn kinks_are_jax_kinks() {
        // jax.grad at the kinks: a tie splits the slope, |x| has slope 1 at 0.
        let zero = Dual::variable(0.0);
        assert_eq!(zero.max(Dual::constant(0.0)).d, 0.5);
        assert_eq!(zero.min(Dual::constant(0.0)).d, 0.5);
        assert_eq!(zero.clip(0.0, 6.0).d, 0.5);
        assert_eq!(Dual::variable(6.0).clip(0.0, 6.0).d, 0.5);
        assert_eq!(Dual::variable(3.0).clip(0.0, 6.0).d, 1.0);
        assert_eq!(zero.abs().d, 1.0);
        assert_eq!(Dual::variable(-2.0).abs().d, -1.0);
        // The value at a tie is exact, infinities included.
        assert_eq!(Real::max(f32::INFINITY, f32::INFINITY), f32::INFINITY);
        assert_eq!(Real::max(f32::MAX, f32::MAX), f32::MAX);
        assert_eq!(Real::min(1e-45f32, 1e-45), 1e-45);
    }

    #[test]
    fn max_min_and_clip_keep_nan() {
        let nan = Dual::constant(f32::NAN);
        assert!(nan.max(Dual::constant(0.0)).v.is_nan());
        assert!(Dual::constant(0.0).max(nan).v.is_nan());
        assert!(nan.min(Dual::constant(0.0)).v.is_nan());
        assert!(Dual::constant(0.0).min(nan).v.is_nan());
        assert!(f32::NAN.clip(0.0, 6.0).is_nan());
        assert_eq!(Real::max(2.0f32, 3.0), 3.0);
        assert_eq!(Real::min(2.0f32, 3.0), 2.0);
    }
}
