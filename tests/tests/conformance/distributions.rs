//! The tutorial's LogNormal (closed-form density, sample moments) and the Box–Muller base.

use std::f64::consts::TAU;

use flow_core::{Affine, Error, Exp, Flow, Layer, StdNormal};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

use crate::models::*;

// =============================================================================================
// The tutorial's LogNormal: Normal(0, 1) → Affine(3, 0.5) → Exp.
// =============================================================================================

const LN_MU: f64 = 3.0;
const LN_SIGMA: f64 = 0.5;

fn lognormal_flow() -> Flow<'static, 1> {
    Flow::new(&[
        Layer::Affine(Affine::scalar(1, LN_MU as f32, LN_SIGMA as f32).unwrap()),
        Layer::Exp(Exp::new(1).unwrap()),
    ])
    .unwrap()
}

/// The closed form, in f64: `-(ln x - μ)²/(2σ²) - ln x - ln σ - ½ ln 2π`.
fn lognormal_closed(x: f64) -> f64 {
    let z = (x.ln() - LN_MU) / LN_SIGMA;
    -0.5 * z * z - x.ln() - LN_SIGMA.ln() - 0.5 * (TAU).ln()
}

#[test]
fn lognormal_log_prob_matches_closed_form() {
    let flow = lognormal_flow();
    let mut worst64: f64 = 0.0;
    let mut worst32: f64 = 0.0;
    let mut n = 0;
    // Log-spaced over 1e-300 … 1e300 (f64) and the f32 range, plus points near the mode.
    let xs: Vec<f64> = (0..=600)
        .map(|k| 10f64.powf(-300.0 + k as f64))
        .chain((0..=400).map(|k| (LN_MU - 4.0 + 8.0 * k as f64 / 400.0).exp()))
        .collect();
    for &x in &xs {
        let lp = flow.log_prob(&[x]).unwrap();
        let closed = lognormal_closed(x);
        let z = (x.ln() - LN_MU) / LN_SIGMA;
        // f64: both sides are a few roundings of terms of size ≤ z²/2 + |ln x| + 2; 16 ulps of
        // that sum.
        let tol = 16.0 * f64::EPSILON * (0.5 * z * z + x.ln().abs() + 2.0);
        assert!((lp - closed).abs() <= tol, "f64 x={x:e}: {lp} vs {closed}");
        worst64 = worst64.max((lp - closed).abs() / tol);
        let x32 = x as f32;
        if x32.is_normal() {
            // f32: ln x is rounded (|ln x|·ε), which moves z by 2·ε(|ln x| + 3) and log N(z) by
            // |z| times that; plus rounding of the sum. 8× that first-order bound.
            let xw = f64::from(x32);
            let z = (xw.ln() - LN_MU) / LN_SIGMA;
            let l = xw.ln().abs();
            let tol32 = 8.0 * f32::EPS * (z.abs() * 2.0 * (l + 3.0) + 0.5 * z * z + l + 2.0);
            let lp32 = flow.log_prob(&[x32]).unwrap();
            let closed32 = lognormal_closed(xw);
            assert!(
                (f64::from(lp32) - closed32).abs() <= tol32,
                "f32 x={x32:e}: {lp32} vs {closed32}"
            );
            worst32 = worst32.max((f64::from(lp32) - closed32).abs() / tol32);
        }
        n += 1;
    }
    println!(
        "lognormal closed form: {n} points, worst err/tol f64 {worst64:.3e}, f32 {worst32:.3e}"
    );
    // Outside the support: -inf, in both precisions.
    for y in [0.0, -0.0, -1.0, -1e30, -f64::from(f32::MIN_POSITIVE)] {
        assert_eq!(flow.log_prob(&[y]), Ok(f64::NEG_INFINITY), "{y}");
        assert_eq!(flow.log_prob(&[y as f32]), Ok(f32::NEG_INFINITY), "{y}");
        assert_eq!(flow.inverse(&[y]), Err(Error::OutOfSupport), "{y}");
        assert_eq!(
            flow.inverse_and_log_det(&[y as f32]),
            Err(Error::OutOfSupport)
        );
    }
}

/// Sample moments of 200k draws against LogNormal(3, 0.5): mean and standard deviation of
/// `ln x`, and the mean of `x`, each within 5 standard errors (computed from the true
/// distribution, so the test does not depend on the sample's own spread). With a fixed seed
/// the outcome is deterministic; a wrong sampler (e.g. a biased Box–Muller, or the affine
/// applied after the Exp) misses by far more.
fn check_lognormal_moments<T: Fp>(flow: &Flow<1>, seed: u64) {
    let n = 200_000usize;
    let mut rng = Pcg32::seed_from_u64(seed);
    let (mut s1, mut s2, mut sx) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..n {
        let x = flow.sample::<T, _>(&mut rng).unwrap()[0].to_f64();
        assert!(x > 0.0 && x.is_finite(), "{x}");
        let l = x.ln();
        s1 += l;
        s2 += l * l;
        sx += x;
    }
    let nf = n as f64;
    let mean = s1 / nf;
    let sd = (s2 / nf - mean * mean).sqrt();
    let mx = sx / nf;
    let se_mean = LN_SIGMA / nf.sqrt();
    let se_sd = LN_SIGMA / (2.0 * nf).sqrt();
    let var_x = ((LN_SIGMA * LN_SIGMA).exp() - 1.0) * (2.0 * LN_MU + LN_SIGMA * LN_SIGMA).exp();
    let se_mx = var_x.sqrt() / nf.sqrt();
    let ex = (LN_MU + 0.5 * LN_SIGMA * LN_SIGMA).exp();
    println!(
        "{} lognormal moments: mean ln x {mean:.5} ({:.2} SE), sd {sd:.5} ({:.2} SE), mean x {mx:.4} vs {ex:.4} ({:.2} SE)",
        T::NAME,
        (mean - LN_MU) / se_mean,
        (sd - LN_SIGMA) / se_sd,
        (mx - ex) / se_mx
    );
    assert!((mean - LN_MU).abs() <= 5.0 * se_mean, "mean of ln x {mean}");
    assert!((sd - LN_SIGMA).abs() <= 5.0 * se_sd, "sd of ln x {sd}");
    assert!((mx - ex).abs() <= 5.0 * se_mx, "mean of x {mx} vs {ex}");
}

#[test]
fn lognormal_sample_moments_f64() {
    check_lognormal_moments::<f64>(&lognormal_flow(), 2024);
}

#[test]
fn lognormal_sample_moments_f32() {
    check_lognormal_moments::<f32>(&lognormal_flow(), 2025);
}

// =============================================================================================
// The Box–Muller base.
// =============================================================================================

/// Φ(x) through erfc (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: far below the KS
/// threshold of ~4e-3 used here).
fn std_normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// 200k draws: mean, variance, third and fourth moments within 5 standard errors of 0, 1, 0, 3
/// (SEs `1/√n`, `√(2/n)`, `√(15/n)`, `√(96/n)`), the correlation of the two halves of each
/// Box–Muller pair within 5/√n of 0, and the Kolmogorov–Smirnov distance below 1.95/√n
/// (the α = 0.001 critical value). Every draw is finite and at most `√(-2 ln 2⁻²⁴)` ≈ 5.77
/// in size (`u₁ ≥ 2⁻²⁴`).
fn check_box_muller<T: Fp>(seed: u64) {
    let n = 200_000usize;
    let mut rng = Pcg32::seed_from_u64(seed);
    let mut z = vec![T::ZERO; n];
    StdNormal::sample(&mut rng, &mut z);
    let z: Vec<f64> = widen(&z);
    let zmax = (-2.0 * (2f64.powi(-24)).ln()).sqrt();
    assert!(z
        .iter()
        .all(|v| v.is_finite() && v.abs() <= zmax * (1.0 + 1e-6)));
    let nf = n as f64;
    let m1 = z.iter().sum::<f64>() / nf;
    let m2 = z.iter().map(|v| v * v).sum::<f64>() / nf;
    let m3 = z.iter().map(|v| v * v * v).sum::<f64>() / nf;
    let m4 = z.iter().map(|v| v * v * v * v).sum::<f64>() / nf;
    let pairs = n / 2;
    let corr = (0..pairs).map(|i| z[2 * i] * z[2 * i + 1]).sum::<f64>() / pairs as f64;
    let mut s = z.clone();
    s.sort_by(f64::total_cmp);
    let ks = s
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = std_normal_cdf(v);
            (f - i as f64 / nf)
                .abs()
                .max(((i + 1) as f64 / nf - f).abs())
        })
        .fold(0.0, f64::max);
    println!(
        "{} Box-Muller: mean {m1:.2e}, var {m2:.5}, m3 {m3:.2e}, m4 {m4:.4}, pair corr {corr:.2e}, KS {ks:.2e} (limit {:.2e})",
        T::NAME,
        1.95 / nf.sqrt()
    );
    assert!(m1.abs() <= 5.0 / nf.sqrt(), "mean {m1}");
    assert!((m2 - 1.0).abs() <= 5.0 * (2.0 / nf).sqrt(), "variance {m2}");
    assert!(m3.abs() <= 5.0 * (15.0 / nf).sqrt(), "third moment {m3}");
    assert!(
        (m4 - 3.0).abs() <= 5.0 * (96.0 / nf).sqrt(),
        "fourth moment {m4}"
    );
    assert!(
        corr.abs() <= 5.0 / (pairs as f64).sqrt(),
        "pair correlation {corr}"
    );
    assert!(ks <= 1.95 / nf.sqrt(), "KS distance {ks}");
}

#[test]
fn box_muller_moments_and_ks_f64() {
    check_box_muller::<f64>(7);
}

#[test]
fn box_muller_moments_and_ks_f32() {
    check_box_muller::<f32>(8);
}

/// The documented construction: two `next_u32` per pair, `u₁ = ((a >> 8) + 1)·2⁻²⁴`,
/// `u₂ = (b >> 8)·2⁻²⁴`, `r cos φ, r sin φ`; an odd last dimension drops the sine (and still
/// takes two draws). Compared with std's ln/sin/cos (flow-core uses libm) to 1e-14.
#[test]
fn box_muller_follows_its_documented_construction() {
    for seed in 0..50u64 {
        let mut a = Pcg32::seed_from_u64(seed);
        let mut z = [0.0f64; 5];
        StdNormal::sample(&mut a, &mut z);
        let mut b = Pcg32::seed_from_u64(seed);
        let mut expect = Vec::new();
        for _ in 0..3 {
            let ua = b.next_u32() >> 8;
            let ub = b.next_u32() >> 8;
            let u1 = (ua as f64 + 1.0) * 2f64.powi(-24);
            let u2 = ub as f64 * 2f64.powi(-24);
            let r = (-2.0 * u1.ln()).sqrt();
            expect.push(r * (TAU * u2).cos());
            expect.push(r * (TAU * u2).sin());
        }
        for i in 0..5 {
            assert!(
                (z[i] - expect[i]).abs() <= 1e-14,
                "seed {seed} dim {i}: {} vs {}",
                z[i],
                expect[i]
            );
        }
        // Both generators consumed six u32 draws.
        assert_eq!(a.next_u32(), b.next_u32(), "seed {seed}: draws consumed");
    }
}
