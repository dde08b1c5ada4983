//! A full-covariance Gaussian mixture fitted by EM, the baseline of the IMU benches (`imu`,
//! `stream`): k-means++ seeding and 20 hard k-means rounds (as scikit-learn starts), `reg`
//! added to the covariance diagonals (scikit-learn's `reg_covar`), at most 300 EM
//! iterations, stopping when the mean log-likelihood changes by less than 1e-3.
//!
//! The M step (per component) and the E step (per reading) run on every core; each value is
//! computed by one thread in a fixed order, so the fit does not depend on the thread count.

use crate::gauss::{cholesky, log_density_in};
use flow_train::Dataset;

/// A fitted mixture.
pub struct Gmm {
    w: Vec<f64>,
    mu: Vec<Vec<f64>>,
    /// Cholesky factors (lower) of the covariances.
    chol: Vec<Vec<f64>>,
}

/// `f(i)` for `i` in `0..n`, in order, the indices split into one contiguous run per core.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let per = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t * per..((t + 1) * per).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("EM thread"))
            .collect()
    })
}

impl Gmm {
    /// Parameters of `k` components in `d` dimensions: means, covariances, `k - 1` weights.
    pub fn param_count(k: usize, d: usize) -> usize {
        k * (d + d * (d + 1) / 2) + k - 1
    }

    /// `log(w_c N(x; μ_c, Σ_c))`, with `z` a scratch of `x.len()` values.
    fn comp_lp(&self, c: usize, x: &[f64], z: &mut [f64]) -> f64 {
        log_density_in(x, &self.mu[c], &self.chol[c], z) + self.w[c].ln()
    }

    /// Each component's `comp_lp` of `x`.
    fn comp_lps(&self, x: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; x.len()];
        (0..self.w.len())
            .map(|c| self.comp_lp(c, x, &mut z))
            .collect()
    }

    /// The log-density of `x`.
    pub fn log_prob(&self, x: &[f64]) -> f64 {
        let lps = self.comp_lps(x);
        let mx = lps.iter().copied().fold(f64::MIN, f64::max);
        mx + lps.iter().map(|v| (v - mx).exp()).sum::<f64>().ln()
    }

    /// Fits `k` components to the rows of `data`, seeded by `seed`.
    pub fn fit(data: &Dataset, k: usize, seed: u64, reg: f64) -> Self {
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
            // M step, one component per task.
            let comps = par_map(k, |c| {
                let nk: f64 = resp.iter().map(|r| r[c]).sum::<f64>() + 1e-10;
                let mu: Vec<f64> = (0..d)
                    .map(|j| x.iter().zip(&resp).map(|(p, r)| r[c] * p[j]).sum::<f64>() / nk)
                    .collect();
                let mut cov = vec![0.0; d * d];
                let mut diff = vec![0.0; d];
                for (p, r) in x.iter().zip(&resp) {
                    // A zero responsibility adds only zeros.
                    if r[c] == 0.0 {
                        continue;
                    }
                    for a in 0..d {
                        diff[a] = p[a] - mu[a];
                    }
                    for a in 0..d {
                        let ra = r[c] * diff[a];
                        for b in 0..=a {
                            cov[a * d + b] += ra * diff[b];
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
                (nk / n as f64, mu, cholesky(&cov, d))
            });
            for (c, (w, mu, chol)) in comps.into_iter().enumerate() {
                g.w[c] = w;
                g.mu[c] = mu;
                g.chol[c] = chol;
            }
            // E step, one reading per task.
            let rows = par_map(n, |i| {
                let lps = g.comp_lps(&x[i]);
                let mx = lps.iter().copied().fold(f64::MIN, f64::max);
                let lse = mx + lps.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
                (
                    lps.iter().map(|l| (l - lse).exp()).collect::<Vec<f64>>(),
                    lse,
                )
            });
            let mut ll = 0.0;
            for (r, (ri, lse)) in resp.iter_mut().zip(rows) {
                *r = ri;
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
