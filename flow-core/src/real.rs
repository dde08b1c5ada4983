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
    /// Sine and cosine.
    fn sin_cos(self) -> (Self, Self);
    /// `(sin 2πu, cos 2πu)` of `u = self` in `[0, 1)`, the angle of the Box–Muller sampler.
    ///
    /// `f64`: libm's `sin`/`cos` of `2π·u`. `f32`: reduced on `u` itself — the quadrant from
    /// `round(4u)`, exact — and a polynomial on the remainder (see `sin_cos_turns_f32`), so
    /// no double-precision code is linked (libm's `sinf`/`cosf` reduce in `f64`).
    fn sin_cos_2pi(self) -> (Self, Self);
}

/// `(sin 2πu, cos 2πu)` in `f32` for `u` in `[0, 1)`, within 2.5e-7 of the exact values.
///
/// `4u = q + r` with `q = round(4u)` and `r` in `[-1/2, 1/2]` (exact for any `f32` `u` in
/// `[0, 1)`: `4u` is exact and the subtraction of a nearby integer is too); then
/// `sin(πr/2)` and `cos(πr/2)` by their Taylor polynomials (degree 9 and 10: the remainder
/// terms are below 2e-9 and 2e-10 for `|r| <= 1/2`), rotated by the quadrant `q mod 4`.
/// Outside `[0, 1)` the quadrant wraps, so any finite `u` gives a point on the unit circle
/// up to rounding.
#[inline]
pub(crate) fn sin_cos_turns_f32(u: f32) -> (f32, f32) {
    let t = 4.0 * u;
    // Round half up without libm: `t + 0.5` is exact for `t` in [0, 4); for `t` beyond the
    // `i32` range the cast saturates and the result stays bounded.
    let q = (t + 0.5) as i32 - i32::from(t + 0.5 < 0.0);
    let r = t - q as f32;
    let r2 = r * r;
    let s = r
        * (1.570_796_4
            + r2 * (-0.645_964_1
                + r2 * (0.079_692_62 + r2 * (-0.004_681_754 + r2 * 1.604_411_8e-4))));
    let c = 1.0
        + r2 * (-1.233_700_5
            + r2 * (0.253_669_5
                + r2 * (-0.020_863_48 + r2 * (9.192_603e-4 + r2 * -2.520_204_2e-5))));
    match q & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
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
    #[inline]
    fn sin_cos_2pi(self) -> (Self, Self) {
        libm::sincos(core::f64::consts::TAU * self)
    }
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
    #[inline]
    fn sin_cos_2pi(self) -> (Self, Self) {
        sin_cos_turns_f32(self)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 7th of the sampler's 2²⁴ angles, and the quadrant edges: within 2.5e-7 of the
    /// double-precision values, and on the unit circle to 5e-7.
    #[test]
    fn sin_cos_turns_f32_is_accurate() {
        let scale = 1.0 / (1u32 << 24) as f32;
        let mut worst = 0.0f64;
        let edges = (0..=8u32).flat_map(|k| {
            let b = k << 21;
            [b.wrapping_sub(1), b, b + 1]
        });
        for b in (0..1u32 << 24).step_by(7).chain(edges) {
            if b >= 1 << 24 {
                continue;
            }
            let u = b as f32 * scale;
            let (s, c) = sin_cos_turns_f32(u);
            let (es, ec) = libm::sincos(core::f64::consts::TAU * f64::from(u));
            worst = worst
                .max((f64::from(s) - es).abs())
                .max((f64::from(c) - ec).abs());
            let norm = f64::from(s) * f64::from(s) + f64::from(c) * f64::from(c);
            assert!((norm - 1.0).abs() < 5e-7, "u = {u}: {s}, {c}");
        }
        assert!(worst < 2.5e-7, "largest error {worst}");
    }
}
