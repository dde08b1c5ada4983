//! The scalar type the flows compute in.
//!
//! Every formula in this crate is written once, generic over [`Real`]. The device computes in
//! `f32`; the golden tests also run the same code in `f64` to check the formulas against Pyro's
//! float64 numbers at 1e-9.
//!
//! All transcendental functions go through [`libm`], on the host and on the device alike, so a
//! desktop build and a Cortex-M build give bit-identical `f32` results (`std`'s `f32::exp` calls
//! the platform's libm and differs in the last bit). With the `micromath` feature, `f32` uses
//! micromath's fast approximation of `exp` instead (see the crate docs for the measured accuracy
//! cost); `f64` always uses libm.

use core::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// A floating-point scalar: `f32` or `f64`.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + core::fmt::Debug
    + Default
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// `ln(2π)/2`, the log-normalizer of the standard Normal.
    const HALF_LN_2PI: Self;
    /// `true` for `f32`: precomputed knot tables (computed in `f32`) hold this type's values.
    const IS_F32: bool;
    /// Converts from `f32` (exact for both types).
    fn from_f32(v: f32) -> Self;
    /// Converts from `f64` (rounds to nearest for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` (exact for both types).
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near zero.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `true` unless NaN or infinite.
    fn is_finite(self) -> bool;
    /// `true` for NaN.
    fn is_nan(self) -> bool;
    /// Sine and cosine (used by the Box–Muller sampler).
    fn sin_cos(self) -> (Self, Self);
}

macro_rules! libm_real {
    ($t:ty, $exp:ident, $ln:ident, $ln1p:ident, $sqrt:ident, $sincos:ident, $fabs:ident) => {
        #[inline]
        fn exp(self) -> Self {
            libm::$exp(self)
        }
        #[inline]
        fn ln(self) -> Self {
            libm::$ln(self)
        }
        #[inline]
        fn ln_1p(self) -> Self {
            libm::$ln1p(self)
        }
        #[inline]
        fn sqrt(self) -> Self {
            libm::$sqrt(self)
        }
        #[inline]
        fn sin_cos(self) -> (Self, Self) {
            libm::$sincos(self)
        }
        #[inline]
        fn abs(self) -> Self {
            libm::$fabs(self)
        }
    };
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    const HALF_LN_2PI: Self = 0.918_938_533_204_672_8;
    const IS_F32: bool = false;
    #[inline]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    libm_real!(f64, exp, log, log1p, sqrt, sincos, fabs);
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    const HALF_LN_2PI: Self = 0.918_938_5;
    const IS_F32: bool = true;
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[cfg(not(feature = "micromath"))]
    libm_real!(f32, expf, logf, log1pf, sqrtf, sincosf, fabsf);

    // With `micromath`, only `exp` is approximated: it is most of the transcendental work (two
    // softmaxes per spline dimension). micromath's `ln` and `sqrt` are too coarse for
    // log-densities (measured: 0.12 absolute error for `ln`, 6 % for `sqrt`); they stay libm.
    #[cfg(feature = "micromath")]
    #[inline]
    fn exp(self) -> Self {
        micromath::F32Ext::exp(self)
    }
    #[cfg(feature = "micromath")]
    #[inline]
    fn ln(self) -> Self {
        libm::logf(self)
    }
    #[cfg(feature = "micromath")]
    #[inline]
    fn ln_1p(self) -> Self {
        libm::log1pf(self)
    }
    #[cfg(feature = "micromath")]
    #[inline]
    fn sqrt(self) -> Self {
        libm::sqrtf(self)
    }
    #[cfg(feature = "micromath")]
    #[inline]
    fn sin_cos(self) -> (Self, Self) {
        libm::sincosf(self)
    }
    #[cfg(feature = "micromath")]
    #[inline]
    fn abs(self) -> Self {
        libm::fabsf(self)
    }
}

/// The larger of two values; NaN-propagating is not needed here because callers check finiteness.
#[inline]
pub(crate) fn max<T: Real>(a: T, b: T) -> T {
    if a > b {
        a
    } else {
        b
    }
}
