//! The full-covariance Gaussian mixture baseline, fitted by EM.

use crate::gauss;
use flow_train::*;

use crate::cv::*;

/// A full-covariance Gaussian mixture fitted by EM (k-means++ seeding, `reg` added to the
/// covariance diagonals, as sklearn's `reg_covar`).
pub(crate) struct Gmm {
    pub(crate) w: Vec<f64>,
    pub(crate) mu: Vec<Vec<f64>>,
    /// Cholesky factors (lower) of the covariances.
    pub(crate) chol: Vec<Vec<f64>>,
}

impl Gmm {
    pub(crate) fn comp_lp(&self, c: usize, x: &[f64]) -> f64 {
        gauss::log_density(x, &self.mu[c], &self.chol[c]) + self.w[c].ln()
    }

    pub(crate) fn fit(data: &Dataset, k: usize, seed: u64, reg: f64) -> Self {
        let (n, d) = (data.len(), data.dim());
        let x: Vec<Vec<f64>> = (0..n)
            .map(|i| data.row(i).iter().map(|&v| v as f64).collect())
            .collect();
        let mut rng = flow_train::init::Rng::new(seed);
        let dist =
            |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f64>();
        let mut mu = vec![x[rng.below(n)].clone()];
        while mu.len() < k {
            let dd: Vec<f64> = x
                .iter()
                .map(|p| mu.iter().map(|m| dist(p, m)).fold(f64::MAX, f64::min))
                .collect();
            let tot: f64 = dd.iter().sum();
            let mut r = rng.uniform() as f64 * tot;
            let mut pick = n - 1;
            for (i, v) in dd.iter().enumerate() {
                r -= v;
                if r <= 0.0 {
                    pick = i;
                    break;
                }
            }
            mu.push(x[pick].clone());
        }
        // Hard k-means assignments to start, as sklearn.
        let mut resp = vec![vec![0.0; k]; n];
        for _ in 0..20 {
            for (i, p) in x.iter().enumerate() {
                let c = (0..k)
                    .min_by(|&a, &b| dist(p, &mu[a]).total_cmp(&dist(p, &mu[b])))
                    .unwrap();
                resp[i].iter_mut().for_each(|r| *r = 0.0);
                resp[i][c] = 1.0;
            }
            for (c, m) in mu.iter_mut().enumerate() {
                let nk: f64 = resp.iter().map(|r| r[c]).sum();
                if nk > 0.0 {
                    for j in 0..d {
                        m[j] = x.iter().zip(&resp).map(|(p, r)| r[c] * p[j]).sum::<f64>() / nk;
                    }
                }
            }
        }
        let mut g = Gmm {
            w: vec![1.0 / k as f64; k],
            mu,
            chol: vec![vec![0.0; d * d]; k],
        };
        let mut prev = f64::MIN;
        for _ in 0..300 {
            // M step.
            for c in 0..k {
                let nk: f64 = resp.iter().map(|r| r[c]).sum::<f64>() + 1e-10;
                g.w[c] = nk / n as f64;
                for j in 0..d {
                    g.mu[c][j] = x.iter().zip(&resp).map(|(p, r)| r[c] * p[j]).sum::<f64>() / nk;
                }
                let mut cov = vec![0.0; d * d];
                for (p, r) in x.iter().zip(&resp) {
                    for a in 0..d {
                        for b in 0..=a {
                            cov[a * d + b] += r[c] * (p[a] - g.mu[c][a]) * (p[b] - g.mu[c][b]);
                        }
                    }
                }
                for a in 0..d {
                    for b in 0..=a {
                        cov[a * d + b] /= nk;
                        cov[b * d + a] = cov[a * d + b];
                    }
                    cov[a * d + a] += reg;
                }
                g.chol[c] = gauss::cholesky(&cov, d);
            }
            // E step.
            let mut ll = 0.0;
            for (p, r) in x.iter().zip(resp.iter_mut()) {
                let lps: Vec<f64> = (0..k).map(|c| g.comp_lp(c, p)).collect();
                let mx = lps.iter().copied().fold(f64::MIN, f64::max);
                let lse = mx + lps.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                for c in 0..k {
                    r[c] = (lps[c] - lse).exp();
                }
                ll += lse;
            }
            ll /= n as f64;
            if (ll - prev).abs() < 1e-3 {
                break;
            }
            prev = ll;
        }
        g
    }
}

impl Fitted for Gmm {
    fn log_probs(&self, x: &Dataset) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let p: Vec<f64> = x.row(i).iter().map(|&v| v as f64).collect();
                let lps: Vec<f64> = (0..self.w.len()).map(|c| self.comp_lp(c, &p)).collect();
                let mx = lps.iter().copied().fold(f64::MIN, f64::max);
                mx + lps.iter().map(|v| (v - mx).exp()).sum::<f64>().ln()
            })
            .collect()
    }
}
