//! Branch-free `f32` functions for blocks of points (feature `wide`, host tools): libm's
//! `expf` and `logf`, flow-core's correctly rounded square root and its `ln(1 + x)`, each
//! written with every branch turned into a select, so that a loop over the lanes of a block
//! compiles to vector instructions — and each returning exactly the bits of the function the
//! device calls (the tests compare them on every branch edge and millions of inputs; by hand,
//! on all 2³² inputs). On top of them, the spline's `softplus` and `sigmoid` as the device
//! writes them.
//!
//! A select here is an `if` whose both sides are plain values: the compiler computes both
//! and blends. Results are the device's bit for bit wherever the device's are not NaN; a NaN
//! may carry another payload (the callers recompute any non-finite result on the single-point
//! path).

/// How many points a block evaluates together (feature `wide`; see `Flow::log_prob_many`).
pub(crate) const LANES: usize = 16;

/// How many points the tests have seen a block hand back to the single-point path (a
/// non-finite bin result): the tests check that the path is taken.
#[cfg(test)]
pub(crate) static REDONE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Counts a point handed back to the single-point path (tests only; nothing otherwise).
#[inline(always)]
pub(crate) fn count_redone() {
    #[cfg(test)]
    REDONE.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// One value of each point of a block: lane `r` belongs to point `r`. Loops over the lanes
/// apply the single-point operations to each lane in the same order, so that every lane's
/// value is the single-point value, bit for bit, and the compiler vectorizes across points.
pub(crate) type Lanes = [f32; LANES];

/// [`Real::exp`] of each lane, the same bits: libm's `expf` as [`expf_flat`] (micromath's
/// `exp` with `micromath`), on a fixed-length row so that it compiles to vector code.
#[inline(always)]
pub(crate) fn exp_lanes(v: &mut Lanes) {
    for x in v.iter_mut() {
        #[cfg(not(feature = "micromath"))]
        {
            *x = expf_flat(*x);
        }
        #[cfg(feature = "micromath")]
        {
            *x = crate::real::Real::exp(*x);
        }
    }
}

/// libm's `expf` without branches: the same algorithm (FreeBSD's `e_expf.c`, as libm 0.2
/// ports it) with the same constants and the same operations in the same order, every case
/// computed and the result selected, so that a loop over many values compiles to vector
/// instructions. The result is libm's `expf` bit for bit on every `f32` input, NaNs included
/// (the tests compare the two on 10⁷ inputs and, by hand, on all 2³²).
///
/// Branches of libm's `expf` and how they are met here:
/// - `|x| <= 2⁻¹⁴`: `1 + x`.
/// - the argument reduction `x = k·ln2 + r`: `k` the truncation of `x/ln2 ± 1/2` above
///   `1.5 ln2`, `±1` above `0.5 ln2`, `0` below (where `hi = x`, `lo = 0`, which the general
///   formulas give exactly with `k = 0`);
/// - `scalbnf(y, k)` for `k` in `[-150, 128]`: a first factor `2¹²⁷` above `k = 127`, `2⁻¹⁰²`
///   below `k = -126`, then `2ⁿ` from its bits, as libm's `scalbn` multiplies;
/// - NaN: `x` itself; `x >= 88.722839`: `+∞` (libm's `x·2¹²⁷`); `x <= -103.972084`: `+0`.
#[cfg(not(feature = "micromath"))]
#[inline(always)]
pub(crate) fn expf_flat(x: f32) -> f32 {
    // libm's constants, by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575195e-01
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286067653e-06
    const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
    const P1: f32 = f32::from_bits(0x3e2a_aa8f); // 1.6666625440e-1
    const P2: f32 = f32::from_bits(0xbb35_5215); // -2.7667332906e-3
    let bits = x.to_bits();
    let neg = bits >> 31 != 0;
    let hx = bits & 0x7fff_ffff;
    let half = if neg { -0.5 } else { 0.5 };
    // `t as i32` (toward zero) without a saturating cast, which would keep the loop from
    // vectorizing: `t + 1.5·2²³` rounds `t` to the nearest integer `r` (exact for
    // `|t| < 2²²`), read from its bits, then stepped toward zero where it rounded away.
    // Larger `|t|` (and NaN) take 0: their results are special cases selected below.
    let t = INV_LN2 * x + half;
    let t = if t.to_bits() & 0x7fff_ffff < 0x4a80_0000 {
        t
    } else {
        0.0
    };
    let m = t + 12_582_912.0;
    let r = m - 12_582_912.0;
    let k_far = (m.to_bits() as i32).wrapping_sub(0x4b40_0000) - i32::from(r > t && t > 0.0)
        + i32::from(r < t && t < 0.0);
    let k_near = if neg { -1 } else { 1 };
    let k = if hx > 0x3f85_1592 {
        k_far
    } else if hx > 0x3eb1_7218 {
        k_near
    } else {
        0
    };
    // Outside [-150, 128] the result is one of the special cases below.
    let k = k.clamp(-150, 128);
    let kf = k as f32;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let xx = r * r;
    let c = r - xx * (P1 + xx * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    let (pre, n) = if k > 127 {
        (f32::from_bits(0x7f00_0000), k - 127)
    } else if k < -126 {
        (f32::from_bits(0x0c80_0000), k + 102)
    } else {
        (1.0, k)
    };
    let scaled = y * pre * f32::from_bits(((127 + n) as u32) << 23);
    let mut out = if hx <= 0x3900_0000 { 1.0 + x } else { scaled };
    if hx >= 0x42b1_7218 && !neg {
        out = f32::INFINITY;
    }
    if hx >= 0x42cf_f1b5 && neg {
        out = 0.0;
    }
    if hx > 0x7f80_0000 {
        out = x;
    }
    out
}

/// libm's `logf` (FreeBSD's `e_logf.c`, as libm 0.2 ports it) without branches: the same
/// constants and operations in the same order; the subnormal rescaling, `±0`, negative
/// numbers, `+∞`, NaN and `1` are selected as libm returns them.
#[inline(always)]
pub(crate) fn logf_flat(x: f32) -> f32 {
    // libm's constants (its decimal literals), by their bits.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180); // 6.9313812256e-01
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1); // 9.0580006145e-06
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa); // 0.66666662693
    const LG2: f32 = f32::from_bits(0x3ecc_ce13); // 0.40000972152
    const LG3: f32 = f32::from_bits(0x3e91_e9ee); // 0.28498786688
    const LG4: f32 = f32::from_bits(0x3e78_9e26); // 0.24279078841
    let x1p25 = f32::from_bits(0x4c00_0000);
    let ix0 = x.to_bits();
    // A positive subnormal is scaled up by 2²⁵ first.
    let sub = ix0 < 0x0080_0000;
    let xs = if sub { x * x1p25 } else { x };
    let k0: i32 = if sub { -25 } else { 0 };
    // Reduce into [sqrt(2)/2, sqrt(2)].
    let ix = xs.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = k0 + ((ix >> 23) as i32 - 0x7f);
    let xr = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3);
    let f = xr - 1.;
    let s = f / (2. + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let main = s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
    let neg_inf = -1. / (x * x);
    #[allow(clippy::eq_op)] // libm's expression, for libm's NaN
    let nan = (x - x) / 0.;
    if ix0 << 1 == 0 {
        neg_inf
    } else if ix0 >> 31 != 0 {
        nan
    } else if ix0 >= 0x7f80_0000 {
        x
    } else if ix0 == 0x3f80_0000 {
        0.
    } else {
        main
    }
}

/// flow-core's square root ([`sqrt_f32`](crate::real::sqrt_f32), correctly rounded) without
/// branches. A positive subnormal `x` is taken as `sqrt(x·2²⁴)·2⁻¹²` (both scalings exact,
/// the root normal); the estimate is within one unit of the rounded root for every
/// significand (`sqrt_f32`'s loop takes at most one step), so one correction step is made.
#[inline(always)]
pub(crate) fn sqrt_flat(x: f32) -> f32 {
    let bits0 = x.to_bits();
    let sub = bits0 < 0x0080_0000;
    let bits = if sub {
        (x * f32::from_bits(0x4b80_0000)).to_bits()
    } else {
        bits0
    };
    let m = (bits & 0x007f_ffff) | 0x0080_0000;
    let k = (bits >> 23) as i32 - 127;
    let a = m << (1 + (k & 1));
    // `a < 2²⁶`: exact through `i32`, which converts in vector code.
    let fa = a as i32 as f32;
    let mut y = f32::from_bits((fa.to_bits() >> 1) + 0x1fbd_1df5);
    for _ in 0..3 {
        y = 0.5 * (y + fa / y);
    }
    let yb = y.to_bits();
    let r = yb.wrapping_sub(138 << 23);
    let d = (a << 24).wrapping_sub(r.wrapping_mul(r) << 2) as i32;
    let w = (r << 2) as i32;
    let yb = yb
        .wrapping_add(u32::from(d > w))
        .wrapping_sub(u32::from(d <= -w));
    let root = f32::from_bits(yb.wrapping_add((((k >> 1) - 12) as u32) << 23));
    let root = if sub {
        root * f32::from_bits(0x3980_0000)
    } else {
        root
    };
    if bits0 << 1 == 0 || bits0 == 0x7f80_0000 {
        x
    } else if bits0 > 0x7f80_0000 {
        f32::NAN
    } else {
        root
    }
}

/// flow-core's `ln(1 + x)` ([`ln_1p_f32`](crate::real::ln_1p_f32)) without branches.
#[inline(always)]
pub(crate) fn ln_1p_flat(x: f32) -> f32 {
    let u = 1.0 + x;
    let v = logf_flat(u) * (x / (u - 1.0));
    if u == 1.0 || u == f32::INFINITY {
        x
    } else {
        v
    }
}

/// `e^x` as the device computes it: libm's `expf` ([`expf_flat`]), micromath's with
/// `micromath`.
#[inline(always)]
pub(crate) fn exp_flat(x: f32) -> f32 {
    #[cfg(not(feature = "micromath"))]
    {
        expf_flat(x)
    }
    #[cfg(feature = "micromath")]
    {
        crate::real::Real::exp(x)
    }
}

/// The spline's [`softplus`](crate::spline::softplus) in `f32`, the same bits.
#[inline(always)]
pub(crate) fn softplus_flat(u: f32) -> f32 {
    let v = ln_1p_flat(exp_flat(u));
    if u > 20.0 {
        u
    } else {
        v
    }
}

/// The spline's [`sigmoid`](crate::spline::sigmoid) in `f32`, the same bits.
#[inline(always)]
pub(crate) fn sigmoid_flat(u: f32) -> f32 {
    1.0 / (1.0 + exp_flat(-u))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(feature = "micromath"))]
    use crate::real::Real;
    #[cfg(not(feature = "micromath"))]
    use alloc::vec;
    use alloc::vec::Vec;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg32;

    /// `expf_flat` against libm's `expf` on the bit pattern `b`: the same bits (NaNs too).
    #[cfg(not(feature = "micromath"))]
    fn check_expf(b: u32) {
        let x = f32::from_bits(b);
        let (got, want) = (expf_flat(x), libm::expf(x));
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "expf({x:e}) (bits {b:#010x})"
        );
    }

    /// The edges of every branch of libm's `expf` and of its `scalbnf` (±64 bit patterns
    /// around each), both signs of every exponent (the first and last 256 significands),
    /// every 509th bit pattern (8.4 million), 10⁶ random ones, and each through `exp_all`.
    #[cfg(not(feature = "micromath"))]
    #[test]
    fn expf_flat_matches_libm() {
        let edges = [
            0x0000_0000u32,
            0x0000_0001,
            0x0080_0000,
            0x3900_0000,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x7f80_0000,
            0x7fc0_0000,
        ];
        // x where k = (x/ln2 ± 1/2) changes, around k = 127/128 and -126/-150.
        let ks = [
            -151.0f32, -150.0, -149.0, -127.0, -126.0, -125.0, 126.0, 127.0, 128.0,
        ];
        let k_edges = ks
            .iter()
            .map(|k| ((k - 0.5) * core::f32::consts::LN_2).abs().to_bits());
        for e in edges.into_iter().chain(k_edges) {
            for d in 0..=128u32 {
                let b = (e + d).wrapping_sub(64);
                check_expf(b);
                check_expf(b | 0x8000_0000);
            }
        }
        for exp in 0..256u32 {
            for m in (0..256u32).chain((1 << 23) - 256..1 << 23) {
                let b = (exp << 23) | m;
                check_expf(b);
                check_expf(b | 0x8000_0000);
            }
        }
        for b in (0..=u32::MAX).step_by(509) {
            check_expf(b);
        }
        let mut rng = Pcg32::seed_from_u64(17);
        let mut v: Vec<f32> = (0..1_000_000)
            .map(|_| f32::from_bits(rng.next_u32()))
            .collect();
        // Ordinary arguments, as the softmaxes see them.
        v.extend((0..100_000).map(|i| -0.001 * i as f32));
        let want: Vec<u32> = v.iter().map(|&x| libm::expf(x).to_bits()).collect();
        for &x in &v {
            check_expf(x.to_bits());
        }
        f32::exp_all(&mut v);
        assert!(v.iter().zip(&want).all(|(x, &w)| x.to_bits() == w));
    }

    /// Every one of the 2^32 bit patterns (about a minute in release mode:
    /// `cargo test -p flow-core --release --features wide -- --ignored expf_flat_exhaustive`).
    #[cfg(not(feature = "micromath"))]
    #[test]
    #[ignore]
    fn expf_flat_exhaustive() {
        let mut v = vec![0f32; 1 << 16];
        for hi in 0..=u16::MAX as u32 {
            for (lo, x) in v.iter_mut().enumerate() {
                *x = f32::from_bits(hi << 16 | lo as u32);
            }
            f32::exp_all(&mut v);
            for (lo, x) in v.iter().enumerate() {
                let b = hi << 16 | lo as u32;
                let want = libm::expf(f32::from_bits(b));
                assert_eq!(x.to_bits(), want.to_bits(), "expf bits {b:#010x}");
            }
        }
    }

    /// `f` against `g` on the bit pattern `b`: the same bits, or both NaN when `nan_any`.
    fn check_same(name: &str, f: fn(f32) -> f32, g: fn(f32) -> f32, b: u32, nan_any: bool) {
        let x = f32::from_bits(b);
        let (got, want) = (f(x), g(x));
        if nan_any && got.is_nan() && want.is_nan() {
            return;
        }
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{name}({x:e}) (bits {b:#010x})"
        );
    }

    fn ln_1p_device(x: f32) -> f32 {
        crate::real::ln_1p_f32(x)
    }

    /// Bit patterns that meet every branch: ±64 around each edge, both signs, the first and
    /// last 256 significands of every exponent, every 509th pattern, 10⁶ random ones.
    fn patterns(edges: &[u32]) -> Vec<u32> {
        let mut v = Vec::new();
        for &e in edges {
            for d in 0..=128u32 {
                let b = e.wrapping_add(d).wrapping_sub(64);
                v.extend([b, b | 0x8000_0000]);
            }
        }
        for exp in 0..256u32 {
            for m in (0..256u32).chain((1 << 23) - 256..1 << 23) {
                let b = (exp << 23) | m;
                v.extend([b, b | 0x8000_0000]);
            }
        }
        v.extend((0..=u32::MAX).step_by(509));
        let mut rng = Pcg32::seed_from_u64(29);
        v.extend((0..1_000_000).map(|_| rng.next_u32()));
        v
    }

    /// `logf_flat` is libm's `logf`, `sqrt_flat` flow-core's `sqrt_f32` (the same NaN too:
    /// both return `f32::NAN`), `ln_1p_flat` flow-core's `ln_1p_f32`, bit for bit; for
    /// `logf`, NaN results may differ in payload only.
    #[test]
    fn flat_functions_match_the_device_ones() {
        let edges = [
            0x0000_0000u32,
            0x0080_0000,
            0x3f35_04f3,
            0x3f80_0000,
            0x7f80_0000,
            0x7fc0_0000,
            0xbf80_0000,
        ];
        for b in patterns(&edges) {
            check_same("logf", logf_flat, libm::logf, b, true);
            check_same("sqrt", sqrt_flat, crate::real::sqrt_f32, b, false);
            check_same("ln_1p", ln_1p_flat, ln_1p_device, b, true);
        }
    }

    /// `softplus` and `sigmoid` as the spline computes them, on every 64th `f32` in
    /// `[-120, 120]` and random patterns.
    #[test]
    fn softplus_and_sigmoid_match() {
        let sp = |u: f32| crate::spline::softplus(u);
        let sg = |u: f32| crate::spline::sigmoid(u);
        let lo = (-120f32).to_bits();
        let ordinary = (120f32.to_bits()..lo)
            .step_by(64)
            .chain((0..120f32.to_bits()).step_by(64));
        for b in ordinary.chain(patterns(&[0x41a0_0000])) {
            check_same("softplus", softplus_flat, sp, b, true);
            check_same("sigmoid", sigmoid_flat, sg, b, true);
        }
    }

    /// Every one of the 2^32 bit patterns, for `logf`, `sqrt` and `ln(1 + x)` (a few minutes
    /// in release mode: `cargo test -p flow-core --release --features wide -- --ignored
    /// flat_exhaustive`).
    #[test]
    #[ignore]
    fn flat_exhaustive() {
        for b in 0..=u32::MAX {
            check_same("logf", logf_flat, libm::logf, b, true);
            check_same("sqrt", sqrt_flat, crate::real::sqrt_f32, b, false);
            check_same("ln_1p", ln_1p_flat, ln_1p_device, b, true);
        }
    }
}
