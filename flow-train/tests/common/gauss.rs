//! A full-covariance Gaussian through the Cholesky factor of its covariance: the baseline the
//! IMU flow is held against (`tests/cli`, and per mixture component in `benches/imu/`).

/// The lower Cholesky factor of the `d × d` row-major symmetric matrix `a` (pivots clamped at
/// 1e-300, so a singular covariance gives a huge density instead of NaN).
pub fn cholesky(a: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            l[i * d + j] = if i == j {
                s.max(1e-300).sqrt()
            } else {
                s / l[j * d + j]
            };
        }
    }
    l
}

/// `ln N(x; mu, L·Lᵀ)` for the lower Cholesky factor `l` (row-major, `x.len()` squared).
pub fn log_density(x: &[f64], mu: &[f64], l: &[f64]) -> f64 {
    log_density_in(x, mu, l, &mut vec![0.0; x.len()])
}

/// [`log_density`] with `z`, `x.len()` values of scratch, given (no allocation).
pub fn log_density_in(x: &[f64], mu: &[f64], l: &[f64], z: &mut [f64]) -> f64 {
    let d = x.len();
    let mut logdet = 0.0;
    for i in 0..d {
        let mut s = x[i] - mu[i];
        for k in 0..i {
            s -= l[i * d + k] * z[k];
        }
        z[i] = s / l[i * d + i];
        logdet += l[i * d + i].ln();
    }
    -0.5 * z.iter().map(|v| v * v).sum::<f64>()
        - logdet
        - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
}
