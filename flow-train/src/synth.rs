//! Built-in data sets: scikit-learn's `make_circles` and `make_moons`, drawn with this
//! crate's own seeded generator.
//!
//! The point sets follow scikit-learn's definitions exactly (checked against scikit-learn
//! 1.9.1 in the tests): `n` points split into `n_out = n / 2` (outer) and `n_in = n - n_out`
//! (inner);
//!
//! * **circles**: outer `(cos t, sin t)` with `t = linspace(0, 2π, n_out, endpoint=False)`,
//!   inner the same with `n_in` angles, scaled by `factor`;
//! * **moons**: outer `(cos t, sin t)`, inner `(1 - cos t, 1 - sin t - 0.5)`, each with
//!   `t = linspace(0, π, n)` (endpoint included);
//!
//! then the rows are shuffled and Gaussian noise of standard deviation `noise` is added to
//! every coordinate, in `f64`, and the result is rounded to `f32`. scikit-learn draws from
//! NumPy's Mersenne Twister; here the shuffle and the noise come from a PCG generator
//! (`rand_pcg::Pcg64`) seeded with `seed`, so the points are not scikit-learn's for the same
//! seed, but they are draws from the same distribution.

use crate::{Dataset, TrainError};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

/// Column names of the built-in data sets.
pub const COLUMNS: [&str; 2] = ["x1", "x2"];

/// NumPy's `linspace(start, stop, num, endpoint)`: `i·step + start`, and with `endpoint` the
/// last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize, endpoint: bool) -> Vec<f64> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let step = if div > 0 {
        (stop - start) / div as f64
    } else {
        f64::NAN
    };
    let mut v: Vec<f64> = (0..num)
        .map(|i| {
            if div > 0 {
                i as f64 * step + start
            } else {
                start
            }
        })
        .collect();
    if endpoint && num > 1 {
        v[num - 1] = stop;
    }
    v
}

/// The noise-free, unshuffled circles (scikit-learn's `make_circles(n, shuffle=False,
/// noise=None, factor=factor)`), row-major `[x1, x2]` in `f64`.
pub fn circles_exact(n: usize, factor: f64) -> Vec<[f64; 2]> {
    let n_out = n / 2;
    let n_in = n - n_out;
    let tau = 2.0 * std::f64::consts::PI;
    let outer = linspace(0.0, tau, n_out, false)
        .into_iter()
        .map(|t| [t.cos(), t.sin()]);
    let inner = linspace(0.0, tau, n_in, false)
        .into_iter()
        .map(|t| [t.cos() * factor, t.sin() * factor]);
    outer.chain(inner).collect()
}

/// The noise-free, unshuffled moons (scikit-learn's `make_moons(n, shuffle=False,
/// noise=None)`), row-major `[x1, x2]` in `f64`.
pub fn moons_exact(n: usize) -> Vec<[f64; 2]> {
    let n_out = n / 2;
    let n_in = n - n_out;
    let pi = std::f64::consts::PI;
    let outer = linspace(0.0, pi, n_out, true)
        .into_iter()
        .map(|t| [t.cos(), t.sin()]);
    let inner = linspace(0.0, pi, n_in, true)
        .into_iter()
        .map(|t| [1.0 - t.cos(), 1.0 - t.sin() - 0.5]);
    outer.chain(inner).collect()
}

/// A standard Normal draw (Box–Muller on two 53-bit uniforms).
fn normal(rng: &mut Pcg64) -> f64 {
    let u = |rng: &mut Pcg64| (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let u1 = 1.0 - u(rng); // (0, 1]
    let u2 = u(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Shuffles the rows, adds `noise`, rounds to `f32`.
fn finish(mut pts: Vec<[f64; 2]>, noise: f64, seed: u64) -> Result<Dataset, TrainError> {
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(TrainError::Data(format!(
            "noise must be finite and >= 0, got {noise}"
        )));
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    // Fisher–Yates, as scikit-learn's `shuffle` does before the noise.
    for i in (1..pts.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        pts.swap(i, j);
    }
    let mut values = Vec::with_capacity(pts.len() * 2);
    for p in &pts {
        for &v in p {
            let e = if noise > 0.0 {
                noise * normal(&mut rng)
            } else {
                0.0
            };
            values.push((v + e) as f32);
        }
    }
    Dataset::new(2, values)
}

/// `make_circles(n, factor=factor, noise=noise)` with our generator seeded by `seed`.
pub fn circles(n: usize, factor: f64, noise: f64, seed: u64) -> Result<Dataset, TrainError> {
    if !factor.is_finite() {
        return Err(TrainError::Data(format!(
            "factor must be finite, got {factor}"
        )));
    }
    finish(circles_exact(n, factor), noise, seed)
}

/// `make_moons(n, noise=noise)` with our generator seeded by `seed`.
pub fn moons(n: usize, noise: f64, seed: u64) -> Result<Dataset, TrainError> {
    finish(moons_exact(n), noise, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make_circles(7, shuffle=False, noise=None, factor=0.5)` and
    /// `make_moons(7, shuffle=False, noise=None)` printed by scikit-learn 1.9.1 (NumPy 2.4).
    #[test]
    fn matches_scikit_learn_definitions() {
        let circles = [
            [1.0, 0.0],
            [-0.4999999999999998, 0.8660254037844387],
            [-0.5000000000000004, -0.8660254037844384],
            [0.5, 0.0],
            [3.061616997868383e-17, 0.5],
            [-0.5, 6.123233995736766e-17],
            [-9.184850993605148e-17, -0.5],
        ];
        let moons = [
            [1.0, 0.0],
            [6.123233995736766e-17, 1.0],
            [-1.0, 1.2246467991473532e-16],
            [0.0, 0.5],
            [0.4999999999999999, -0.3660254037844386],
            [1.4999999999999998, -0.3660254037844387],
            [2.0, 0.4999999999999999],
        ];
        // Same libm-grade cos/sin on both sides: agreement to a few ulp.
        for (got, want) in [(circles_exact(7, 0.5), &circles), (moons_exact(7), &moons)] {
            assert_eq!(got.len(), 7);
            for (g, w) in got.iter().zip(want.iter()) {
                for j in 0..2 {
                    assert!((g[j] - w[j]).abs() < 1e-15, "{g:?} vs {w:?}");
                }
            }
        }
    }

    #[test]
    fn seeded_noise_has_the_requested_spread() {
        let a = circles(20_000, 0.5, 0.05, 3).unwrap();
        assert_eq!(a, circles(20_000, 0.5, 0.05, 3).unwrap());
        assert_ne!(a, circles(20_000, 0.5, 0.05, 4).unwrap());
        // Radii: half near 1, half near 0.5, each with spread ≈ the noise.
        let mut r: Vec<f64> = (0..a.len())
            .map(|i| {
                let p = a.row(i);
                (p[0] as f64).hypot(p[1] as f64)
            })
            .collect();
        r.sort_by(f64::total_cmp);
        let (inner, outer) = r.split_at(r.len() / 2);
        let ms = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
            (m, s)
        };
        let ((mi, si), (mo, so)) = (ms(inner), ms(outer));
        // Radial spread of 2-D noise of std σ around a circle of radius ≫ σ is ≈ σ.
        assert!(
            (mi - 0.5).abs() < 0.005 && (mo - 1.0).abs() < 0.005,
            "{mi} {mo}"
        );
        assert!(
            (si - 0.05).abs() < 0.005 && (so - 0.05).abs() < 0.005,
            "{si} {so}"
        );
        // Shuffled: the first half is not all outer points.
        let outer_first = (0..1000).filter(|&i| a.row(i)[0].hypot(a.row(i)[1]) > 0.75);
        assert!((400..600).contains(&outer_first.count()));
        let m = moons(100, 0.0, 1).unwrap();
        assert_eq!(m.len(), 100);
        assert!(circles(10, 0.5, f64::NAN, 0).is_err());
    }
}
