//! The scalar type the engine computes in, with branch-free `exp`/`ln` for `f32`.
//!
//! The engine is written once, generic over [`Float`]. Training runs in `f32`; the gradient
//! checks run the very same code in `f64`, where finite differences are accurate to ~1e-8.
//!
//! `f32`'s [`Float::exp`] and [`Float::ln`] are Cephes-style polynomial approximations
//! (max error about 2 ulp over the range the splines use) written without branches or calls, so
//! the per-point loops of the engine vectorize. They are used for *training only*: every NLL the
//! crate reports is computed by `flow-core`'s exact code on the exported parameters. `f64`
//! uses [`libm`]'s functions, as flow-core does: the `f64` checks then compute each spline
//! bin bit for bit as flow-core does (both evaluate flow-core's bin formulas,
//! `flow_core::spline::bin`).

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar the engine computes in: `f32` (training) or `f64` (checks).
pub trait Float:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// `ln(2π)/2`.
    const HALF_LN_2PI: Self;
    /// Converts from `f64` (rounding for `f32`).
    fn of(v: f64) -> Self;
    /// Converts from `f32` (exact).
    fn from_f32(v: f32) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts to `f32` (rounding for `f64`).
    fn to_f32(self) -> f32;
    /// `e^self` (a fast approximation for `f32`).
    fn exp(self) -> Self;
    /// Natural logarithm (a fast approximation for `f32`); `-inf` at 0, NaN below.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `true` unless NaN or infinite.
    fn is_finite(self) -> bool;
    /// `a·b + c`, fused when `FMA` (only ever true where the CPU has FMA).
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        a * b + c
    }
    /// `ln(1 + self)` for `self >= 0`, accurate near 0.
    #[inline(always)]
    fn ln_1p(self) -> Self {
        let w = Self::ONE + self;
        let d = w - Self::ONE;
        // ln(w)·x/(w-1) corrects the rounding of 1 + x (Goldberg's trick).
        let r = w.ln() * (self / d);
        sel(d == Self::ZERO, self, r)
    }
}

/// `if c { a } else { b }`, written so it compiles to a blend.
#[inline(always)]
pub fn sel<F: Copy>(c: bool, a: F, b: F) -> F {
    if c {
        a
    } else {
        b
    }
}

/// The larger of `a` and `b` (`b` when either is NaN).
#[inline(always)]
pub fn fmax<F: Float>(a: F, b: F) -> F {
    sel(a > b, a, b)
}

/// torch's softplus (`beta = 1`, `threshold = 20`).
#[inline(always)]
pub fn softplus<F: Float>(u: F) -> F {
    let small = u.exp().ln_1p();
    sel(u > F::of(20.0), u, small)
}

/// The logistic sigmoid.
#[inline(always)]
pub fn sigmoid<F: Float>(u: F) -> F {
    F::ONE / (F::ONE + (-u).exp())
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF_LN_2PI: Self = 0.918_938_533_204_672_8;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn exp(self) -> Self {
        libm::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        libm::log(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        libm::log1p(self)
    }
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF_LN_2PI: Self = 0.918_938_5;
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        ln_f32(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::from_bits(self.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
}

/// `e^x` for `f32`: Cephes `expf` (range reduction by `ln 2` in two parts, degree-6
/// polynomial), branch-free. NaN propagates; overflows to `inf`, underflows to ~1e-38.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = sel(x > 88.0, 88.0, x);
    let x = sel(x < -87.0, -87.0, x);
    // Round to nearest with the 1.5·2^23 trick (no SSE4.1 `round` needed).
    const MAGIC: f32 = 12_582_912.0;
    let shifted = x * core::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    // The integer n sits in the low mantissa bits of `shifted`: no float-to-int conversion.
    let ni = shifted.to_bits().wrapping_sub(MAGIC.to_bits());
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let p = p * r2 + r + 1.0;
    let bits = ni.wrapping_add(127) << 23;
    p * f32::from_bits(bits)
}

/// `ln x` for `f32`: Cephes `logf` (mantissa in `[√½, √2)`, degree-8 polynomial), branch-free.
/// `ln 0 = -inf`, `ln(x < 0) = NaN`, `ln inf = inf`; subnormal inputs are not handled exactly.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 as f32 - 126.0;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < core::f32::consts::FRAC_1_SQRT_2;
    let e = sel(small, e - 1.0, e);
    let m = sel(small, m + m - 1.0, m - 1.0);
    let z = m * m;
    let mut y = ((((((((7.037_683_6e-2 * m - 1.151_461e-1) * m + 1.167_699_9e-1) * m
        - 1.242_014_1e-1)
        * m
        + 1.424_932_3e-1)
        * m
        - 1.666_805_8e-1)
        * m
        + 2.000_071_4e-1)
        * m
        - 2.499_999_4e-1)
        * m
        + 3.333_333e-1)
        * m
        * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    let r = m + y + 0.693_359_4 * e;
    let r = sel(x == f32::INFINITY, f32::INFINITY, r);
    let r = sel(x == 0.0, f32::NEG_INFINITY, r);
    sel(x >= 0.0, r, f32::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> f64 {
        ((a as f64 - b as f64) / (b as f64 * f32::EPSILON as f64)).abs()
    }

    /// Both approximations stay within 3 ulp of the correctly rounded value over the range the
    /// splines use (softmax exponents in [-87, 0], derivatives up to ~88, logs of 1e-30..1e30).
    #[test]
    fn fast_exp_ln_within_3_ulp() {
        let mut worst = (0.0f64, 0.0f64);
        let mut x = -87.0f32;
        while x < 88.0 {
            let e = ulps(exp_f32(x), (x as f64).exp() as f32);
            worst.0 = worst.0.max(e);
            x += 0.000_731;
        }
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            let got = ln_f32(x) as f64;
            // Near x = 1 the result is tiny: compare absolutely there.
            let err = (got - want).abs() / (want.abs().max(1e-3) * f32::EPSILON as f64);
            worst.1 = worst.1.max(err);
            x *= 1.000_37;
        }
        assert!(worst.0 <= 3.0, "exp worst {} ulp", worst.0);
        assert!(worst.1 <= 3.0, "ln worst {} ulp", worst.1);
    }

    #[test]
    fn special_values() {
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert!(ln_f32(-1.0).is_nan());
        assert!(ln_f32(f32::NAN).is_nan());
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) < 1e-37);
        assert!(exp_f32(1000.0) > 1e38);
    }

    #[test]
    fn softplus_and_ln_1p_match_std() {
        for i in -400..=400 {
            let u = i as f32 * 0.07;
            let want = (u as f64).exp().ln_1p();
            let got = softplus(u) as f64;
            assert!(
                (got - want).abs() <= 4.0 * f32::EPSILON as f64 * want,
                "{u}: {got} {want}"
            );
        }
        assert_eq!(softplus(25.0f32), 25.0);
        assert!((1e-9f32.ln_1p() - 1e-9).abs() < 1e-16);
    }
}
