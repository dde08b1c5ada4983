//! The scalar type the flows compute in.
//!
//! Every formula in this crate is written once, generic over [`Real`]. The device computes in
//! `f32`; the golden tests also run the same code in `f64` to check the formulas against Pyro's
//! float64 numbers at 1e-9.
//!
//! All transcendental functions go through [`libm`], on the host and on the device alike, so a
//! desktop build and a Cortex-M build give bit-identical `f32` results (`std`'s `f32::exp` calls
//! the platform's libm and differs in the last bit). Two `f32` functions are this crate's own,
//! for flash, and likewise the same on every target: the square root, correctly rounded, so
//! exactly libm's bits without libm's 256-byte table; and `ln(1 + x)`, through libm's `logf`
//! (see [`ln_1p_f32`] for its accuracy). With the `micromath` feature, `f32` uses
//! micromath's fast approximation of `exp` instead (see the crate docs for the measured accuracy
//! cost); `f64` always uses libm. With the `wide` feature (host builds), the softmax
//! exponentials of a spline are computed together by `flat::expf_flat`, libm's `expf` written
//! without branches so that it vectorizes: the same bits (tested on all 2³² inputs); with
//! `micromath` too, they stay micromath's.

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
    /// `e^v` of every value in `v`, in place: [`Real::exp`] of each, the same bits. `f32`
    /// evaluates them with libm's `expf` written without branches, which the compiler turns
    /// into vector instructions.
    #[cfg(feature = "wide")]
    #[inline]
    fn exp_all(v: &mut [Self]) {
        for x in v {
            *x = x.exp();
        }
    }
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

/// `ln(1 + x)` for `f32`, accurate where `1 + x` is not: `ln(u)·x/(u - 1)` with `u = 1 + x`
/// rounded (Kahan's device; the quotient corrects the rounding of `u`), and `x` itself when
/// `u` rounds to 1 or overflows to `+∞`.
///
/// Exists for flash: it reuses `logf`, which `log_prob` links anyway, instead of libm's
/// `log1pf` (372 B on Cortex-M). Relative error below 2⁻²² — measured at most 1.45·2⁻²³
/// against `f64` on every 64th `u` in `[-104, 20]`, the `x = e^u` a spline's softplus takes
/// (libm's `log1pf`: below 1 ulp).
#[inline(never)]
pub(crate) fn ln_1p_f32(x: f32) -> f32 {
    let u = 1.0 + x;
    if u == 1.0 || u == f32::INFINITY {
        x
    } else {
        libm::logf(u) * (x / (u - 1.0))
    }
}

/// The square root of `x`, correctly rounded (IEEE 754 round-to-nearest), for `f32`.
///
/// Exists for flash: libm's `sqrtf` takes its first approximation from a 256-byte table and
/// is 480 B with it on Cortex-M; this function needs no table and is less than half that, at
/// no more instructions on a core with an FPU (on soft-float cores its three `f32` divisions
/// cost about a thousand instructions more per call). A correctly rounded square root is one
/// well-defined function, so the result is bit for bit libm's (also correctly rounded), on
/// the host and every device; the tests compare the two over all 2³² inputs.
///
/// Method: `x = m·2^(k-23)` with `m` in `[2²³, 2²⁴)`, so `sqrt(x) = sqrt(a)·2^(⌊k/2⌋-12)`
/// with the integer `a = m·2^(1 + k mod 2)` in `[2²⁴, 2²⁶)`. An `f32` estimate of `sqrt(a)`
/// (the exponent halved in the bits, then three Newton steps `y = (y + a/y)/2`) is within one
/// unit in the last place of the rounded root for every `a`; its significand `r` (that is
/// `y·2¹¹`) is then corrected by whole units until it passes the exact integer test of
/// round-to-nearest, `(2r-1)² < a·2²⁴ < (2r+1)²`. Equality is impossible (the squares are odd, `a·2²⁴` even),
/// which is why a square root never needs a tie-break. The `f32` operations are IEEE ones,
/// the same on every target, and only steer the search: the result is exact by the test.
///
/// Special values as libm's `sqrtf`: `±0` and `+∞` are returned unchanged (`sqrt(-0) = -0`);
/// negative numbers, `-∞` and NaN give the quiet NaN `f32::NAN`; a subnormal `x` is
/// normalized first (its `m` shifted up, `k` below `-126`).
#[inline(never)]
pub(crate) fn sqrt_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    // One comparison for zero, subnormal, infinite, NaN and negative inputs.
    let (m, k) = if bits.wrapping_sub(0x0080_0000) >= 0x7f00_0000 {
        if bits << 1 == 0 || bits == 0x7f80_0000 {
            return x;
        }
        if bits > 0x7f80_0000 {
            return f32::NAN;
        }
        // Positive subnormal: shift the leading one up to bit 23, the exponent down as far.
        let shift = bits.leading_zeros() - 8;
        (bits << shift, -126 - shift as i32)
    } else {
        (
            (bits & 0x007f_ffff) | 0x0080_0000,
            (bits >> 23) as i32 - 127,
        )
    };
    // a in [2²⁴, 2²⁶) has at most 24 significant bits, so it is exact in f32; its root lies
    // in [2¹², 2¹³]. The estimate below ends within one unit of r for every a (measured over
    // all 2²⁵ of them), so the correction takes at most one step.
    let a = m << (1 + (k & 1));
    // An estimate y of sqrt(a): the exponent halved in the bits (within 4 %), then Newton.
    let fa = a as f32;
    let mut y = f32::from_bits((fa.to_bits() >> 1) + 0x1fbd_1df5);
    for _ in 0..3 {
        y = 0.5 * (y + fa / y);
    }
    // y's bits step by one unit of r = y·2¹¹ in [2¹², 2¹³), and run on past both ends.
    let mut yb = y.to_bits();
    // The exact correction. With d = a·2²⁴ - 4r², both even: r is too small iff d > 4r, too
    // large iff d <= -4r. With s = sqrt(a)·2¹¹ the exact root, |d| = 4|s - r|(s + r) < 2³¹
    // while r is within 15 of s (each step moves r towards s), so d is computed modulo 2³².
    loop {
        let r = yb.wrapping_sub(138 << 23);
        let d = (a << 24).wrapping_sub(r.wrapping_mul(r) << 2) as i32;
        let w = (r << 2) as i32;
        if d > w {
            yb += 1;
        } else if d <= -w {
            yb -= 1;
        } else {
            break;
        }
    }
    // The result is y·2^(⌊k/2⌋-12), an exponent shift of y's bits.
    f32::from_bits(yb.wrapping_add((((k >> 1) - 12) as u32) << 23))
}

macro_rules! libm_real {
    ($t:ty, $exp:ident, $ln:ident, $sqrt:path, $sincos:ident, $fabs:ident) => {
        #[inline]
        fn exp(self) -> Self {
            libm::$exp(self)
        }
        #[inline]
        fn ln(self) -> Self {
            libm::$ln(self)
        }
        #[inline]
        fn sqrt(self) -> Self {
            $sqrt(self)
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
    libm_real!(f64, exp, log, libm::sqrt, sincos, fabs);
    #[inline]
    fn ln_1p(self) -> Self {
        libm::log1p(self)
    }
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
    libm_real!(f32, expf, logf, sqrt_f32, sincosf, fabsf);
    #[inline]
    fn ln_1p(self) -> Self {
        ln_1p_f32(self)
    }
    #[inline]
    fn sin_cos_2pi(self) -> (Self, Self) {
        sin_cos_turns_f32(self)
    }
    #[cfg(all(feature = "wide", not(feature = "micromath")))]
    #[inline]
    fn exp_all(v: &mut [Self]) {
        for x in v {
            *x = crate::flat::expf_flat(*x);
        }
    }

    // With `micromath`, only `exp` is approximated: it is most of the transcendental work (two
    // softmaxes per spline dimension). micromath's `ln` and `sqrt` are too coarse for
    // log-densities (measured: 0.12 absolute error for `ln`, 6 % for `sqrt`); they stay exact
    // (libm's `ln`, the correctly rounded `sqrt_f32`).
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
    fn sqrt(self) -> Self {
        sqrt_f32(self)
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
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg32;

    /// `sqrt_f32` against libm's `sqrtf` on the bit pattern `b`: the same bits, or for a NaN
    /// result the quiet NaN `f32::NAN` (libm's generic `sqrtf`, the one on Cortex-M, returns
    /// that; a hardware square root used by libm on some hosts may set the sign or keep the
    /// input's payload).
    fn check_sqrt(b: u32) {
        let x = f32::from_bits(b);
        let (got, want) = (sqrt_f32(x), libm::sqrtf(x));
        if want.is_nan() {
            assert_eq!(got.to_bits(), f32::NAN.to_bits(), "sqrt({x:e}) [{b:#010x}]");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "sqrt({x:e}) [{b:#010x}]");
        }
    }

    /// `ln_1p_f32` against `ln(1 + x)` in `f64`: relative error below 1.5·2⁻²³ on every
    /// `x = e^u` of a softplus (`u` in `[-104, 20]`, every 64th `f32`), and the edge cases.
    #[test]
    fn ln_1p_f32_is_accurate() {
        let mut u = -104.0f32;
        let mut n = 0;
        while u <= 20.0 {
            let x = libm::expf(u);
            let exact = libm::log1p(f64::from(x));
            let got = f64::from(ln_1p_f32(x));
            assert!(
                (got - exact).abs() <= 1.5 * f64::from(f32::EPSILON) * exact.abs(),
                "ln_1p({x:e}) = {got:e}, exact {exact:e}"
            );
            n += 1;
            // The next 64th float up (through 0 from the negative side).
            u = if u < 0.0 && u.to_bits() & 0x7fff_ffff > 64 {
                f32::from_bits(u.to_bits() - 64)
            } else if u < 0.0 {
                0.0
            } else {
                f32::from_bits(u.to_bits() + 64)
            };
        }
        assert!(n > 30_000_000);
        for (x, want) in [
            (0.0f32, 0.0f32),
            (-0.0, -0.0),
            (1e-30, 1e-30),
            (f32::INFINITY, f32::INFINITY),
            (-1.0, f32::NEG_INFINITY),
        ] {
            assert_eq!(ln_1p_f32(x).to_bits(), want.to_bits(), "ln_1p({x})");
        }
        assert!(ln_1p_f32(f32::NAN).is_nan() && ln_1p_f32(-2.0).is_nan());
    }

    /// Special values, the edges of every exponent, subnormals, exact squares and their
    /// neighbours, the points where the root is nearest a rounding midpoint, and 4 million
    /// random bit patterns: `sqrt_f32` is bit-identical to libm's `sqrtf`.
    #[test]
    fn sqrt_f32_matches_libm() {
        let special = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            1.0,
            -1.0,
            2.0,
            4.0,
            0.25,
            0.5,
        ];
        for x in special {
            check_sqrt(x.to_bits());
        }
        assert_eq!(sqrt_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sqrt_f32(0.0).to_bits(), 0);
        assert_eq!(sqrt_f32(f32::INFINITY), f32::INFINITY);
        for b in [
            0x7f80_0001u32,
            0x7fbf_ffff,
            0x7fc0_0001,
            0xff80_0001,
            0xffff_ffff,
        ] {
            check_sqrt(b);
        }
        // Both signs, every exponent: the first and last 64 significands.
        for sign in [0u32, 1 << 31] {
            for e in 0..256u32 {
                for f in (0..64u32).chain((1 << 23) - 64..1 << 23) {
                    check_sqrt(sign | e << 23 | f);
                }
            }
        }
        // All positive subnormals in steps of 7, and every one of the 2^16 smallest.
        for b in (1..1u32 << 23).step_by(7).chain(1..1 << 16) {
            check_sqrt(b);
        }
        // Exact squares of 24-bit integers (in steps of 3), scaled to several exponents, and
        // their neighbours two units in the last place either side.
        for n in (1u64..1 << 24).step_by(3) {
            let sq = (n * n) as f32; // rounded when n ≥ 2^12: its neighbours are checked anyway
            for scale in [1.0f32, 0.5, 2.0f32.powi(-100), 2.0f32.powi(40)] {
                let b = (sq * scale).to_bits();
                for d in 0..5u32 {
                    check_sqrt((b + d).wrapping_sub(2));
                }
            }
        }
        // Near-midpoints: x nearest (q + 1/2)² for 24-bit q, so that the root is within a
        // fraction of an ulp of halfway between two floats, with neighbours.
        let mut rng = Pcg32::seed_from_u64(0x5eed_5a27);
        for _ in 0..1 << 20 {
            let q = (rng.next_u32() >> 8) | 1 << 23;
            let mid = (f64::from(q) + 0.5) * (f64::from(q) + 0.5);
            let e = (rng.next_u32() % 200) as i32 - 100;
            let x = (mid * libm::exp2(f64::from(e) - 46.0)) as f32;
            for d in 0..3u32 {
                check_sqrt((x.to_bits() + d).wrapping_sub(1));
            }
        }
        // Random bit patterns.
        for _ in 0..1 << 22 {
            check_sqrt(rng.next_u32());
        }
    }

    /// Every one of the 2^32 bit patterns (a few minutes in release mode:
    /// `cargo test -p flow-core --release -- --ignored sqrt_f32_exhaustive`).
    #[test]
    #[ignore]
    fn sqrt_f32_exhaustive() {
        for b in 0..=u32::MAX {
            check_sqrt(b);
        }
    }

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
