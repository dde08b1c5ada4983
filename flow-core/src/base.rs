//! The base distribution: a standard Normal of any dimension.
//!
//! `log N(z; 0, I) = -½ Σ z_i² - (n/2) ln 2π`.
//!
//! Sampling uses the Box–Muller transform on 24-bit uniforms from any [`rand_core::RngCore`]:
//! each pair of outputs takes two `next_u32` draws, `u1 = (a >> 8 + 1)·2⁻²⁴ ∈ (0, 1]` and
//! `u2 = (b >> 8)·2⁻²⁴ ∈ [0, 1)`, and gives `r cos φ, r sin φ` with `r = sqrt(-2 ln u1)`,
//! `φ = 2π u2`; an odd last dimension drops the sine. Box–Muller needs no tables and no
//! rejection loop, so its cost is fixed, and it is bit-identical on host and device.
//!
//! In `f32` the angle is reduced on `u2` itself — the quadrant from `round(4·u2)`, exactly —
//! and `sin`/`cos` of the remainder are polynomials (within 2.5e-7 of the exact values), so no
//! double-precision code is linked on a device (libm's `sinf`/`cosf` reduce in `f64`, ~5 KB
//! of flash with the soft-float routines). In `f64`, libm's `sin`/`cos` of `2π·u2`.

use crate::real::Real;
use rand_core::RngCore;

/// The standard Normal `N(0, I)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdNormal;

impl StdNormal {
    /// `log N(z; 0, I)` summed over the dimensions of `z`.
    #[inline]
    pub fn log_prob<T: Real>(z: &[T]) -> T {
        let mut acc = T::ZERO;
        let half = T::from_f64(0.5);
        for &v in z {
            acc += -half * v * v - T::HALF_LN_2PI;
        }
        acc
    }

    /// Fills `out` with independent standard Normal draws (Box–Muller, see the module docs).
    // Not inlined: its trigonometry's stack frame then never adds to the flow's own.
    #[inline(never)]
    pub fn sample<T: Real, R: RngCore + ?Sized>(rng: &mut R, out: &mut [T]) {
        // 24-bit integers and their products with 2^-24 are exact in f32 (and so in f64):
        // no double-precision arithmetic on cores whose FPU has none.
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        for pair in out.chunks_mut(2) {
            let a = rng.next_u32() >> 8;
            let b = rng.next_u32() >> 8;
            let u1 = T::from_f32((a + 1) as f32 * SCALE);
            let u2 = T::from_f32(b as f32 * SCALE);
            let r = (T::from_f64(-2.0) * u1.ln()).sqrt();
            let (s, c) = u2.sin_cos_2pi();
            let mut it = pair.iter_mut();
            if let Some(z0) = it.next() {
                *z0 = r * c;
            }
            if let Some(z1) = it.next() {
                *z1 = r * s;
            }
        }
    }
}
