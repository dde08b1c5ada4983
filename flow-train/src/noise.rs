//! The nearest-neighbour input-noise rule: how spread out the data are around each row.
//! [`local_spread`] sets the base noise width of the automatic settings and [`row_noise`]
//! scales it per row (see [`crate::defaults`]; the cross-validation behind it is in the
//! repository's `docs/imu.md`).

use crate::Dataset;

/// Rows among which the neighbour distances are measured.
const KNN_ROWS: usize = 1_000;
/// The neighbour whose distance is the local spread.
const KNN_K: usize = 5;

/// The data's local spread ([`DataSummary::knn`](crate::defaults::DataSummary::knn)): the
/// median distance from a row to its 5th nearest neighbour among 1,000 evenly spaced rows
/// (all rows when there are fewer), `z(i, j)` being row `i`'s standardized value `j` (`n`
/// rows, `d` columns); 1 when no row has 5 neighbours.
pub fn local_spread(n: usize, d: usize, z: impl Fn(usize, usize) -> f64 + Copy) -> f64 {
    let refs: Vec<usize> = spaced(n, KNN_ROWS);
    let queries = &refs;
    let zr: Vec<f64> = refs
        .iter()
        .flat_map(|&i| (0..d).map(move |j| z(i, j)))
        .collect();
    let mut best = [f64::INFINITY; KNN_K];
    let mut dists: Vec<f64> = Vec::with_capacity(queries.len());
    for &q in queries {
        let zq: Vec<f64> = (0..d).map(|j| z(q, j)).collect();
        nearest_sq(&zq, q, &refs, &zr, d, &mut best);
        if best[KNN_K - 1].is_finite() {
            dists.push(best[KNN_K - 1].sqrt());
        }
    }
    if dists.is_empty() {
        1.0
    } else {
        let m = dists.len() / 2;
        *dists.select_nth_unstable_by(m, f64::total_cmp).1
    }
}

/// The exponent of [`row_noise`] in the automatic settings for 3-D and more.
pub const NOISE_ALPHA: f64 = 0.5;

/// Rows among which [`row_noise`] measures each row's neighbour distance.
const SPREAD_ROWS: usize = 3_000;

/// Per-row factors on the input noise: each row's distance (standardized units) to its 5th
/// nearest neighbour among up to 3,000 evenly spaced rows (all rows when there are fewer),
/// relative to the median such distance, to the power `alpha`, clamped to `[0.05, 5]`.
/// Where the data are dense (a sensor at rest) the noise is small, where they are sparse
/// (motion, outliers) it is large: a variable-bandwidth blur instead of one width for all.
/// `O(rows · 3,000 · dim)`.
pub fn row_noise(data: &Dataset, alpha: f64) -> Vec<f32> {
    let (n, d) = (data.len(), data.dim());
    if n == 0 {
        return Vec::new();
    }
    let (mean, std) = data.column_moments();
    let inv: Vec<f64> = std
        .iter()
        .map(|&s| {
            if s > 0.0 && s.is_finite() {
                1.0 / s
            } else {
                1.0
            }
        })
        .collect();
    let z = |i: usize| -> Vec<f64> {
        data.row(i)
            .iter()
            .enumerate()
            .map(|(j, &v)| (v as f64 - mean[j]) * inv[j])
            .collect()
    };
    let refs = spaced(n, SPREAD_ROWS);
    let zr: Vec<f64> = refs.iter().flat_map(|&i| z(i)).collect();
    let mut best = [f64::INFINITY; KNN_K];
    let dist: Vec<f64> = (0..n)
        .map(|q| {
            let zq = z(q);
            nearest_sq(&zq, q, &refs, &zr, d, &mut best);
            best.iter()
                .rev()
                .find(|v| v.is_finite())
                .map_or(0.0, |v| v.sqrt())
        })
        .collect();
    let mut sorted = dist.clone();
    let m = n / 2;
    let med = *sorted.select_nth_unstable_by(m, f64::total_cmp).1;
    if med <= 0.0 || !med.is_finite() {
        return vec![1.0; n];
    }
    dist.iter()
        .map(|&x| ((x / med).powf(alpha)).clamp(0.05, 5.0) as f32)
        .collect()
}

/// `m` evenly spaced indices of `0..n` (all of them when `n <= m`).
fn spaced(n: usize, m: usize) -> Vec<usize> {
    if n <= m {
        (0..n).collect()
    } else {
        (0..m).map(|i| i * n / m).collect()
    }
}

/// The `KNN_K` smallest squared distances from `zq` (row `q`) to the reference rows `refs`
/// (their values `zr`, `d` per row; `q` itself skipped), ascending, into `best` (∞ where
/// there are fewer).
fn nearest_sq(zq: &[f64], q: usize, refs: &[usize], zr: &[f64], d: usize, best: &mut [f64; KNN_K]) {
    best.fill(f64::INFINITY);
    for (r, row) in refs.iter().zip(zr.chunks_exact(d.max(1))) {
        if *r == q {
            continue;
        }
        let mut s = 0.0;
        for (a, b) in zq.iter().zip(row) {
            s += (a - b) * (a - b);
        }
        if s < best[KNN_K - 1] {
            // Insert into the sorted list of the k smallest.
            let mut p = KNN_K - 1;
            while p > 0 && best[p - 1] > s {
                best[p] = best[p - 1];
                p -= 1;
            }
            best[p] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Per-row noise factors: small in a dense cluster, large for sparse rows, median 1,
    /// independent of the data's units.
    #[test]
    fn row_noise_follows_density() {
        let mut r = Rng::new(9);
        // 400 rows in a tight cluster, 400 spread wide, in 4-D.
        let v: Vec<f32> = (0..800)
            .flat_map(|i| {
                let w = if i < 400 { 0.05 } else { 2.0 };
                (0..4).map(|_| w * r.normal()).collect::<Vec<_>>()
            })
            .collect();
        let d = Dataset::new(4, v.clone()).unwrap();
        let f = row_noise(&d, 1.0);
        assert_eq!(f.len(), 800);
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
        let (dense, sparse) = (mean(&f[..400]), mean(&f[400..]));
        assert!(dense < 0.2 && sparse > 2.0, "{dense} {sparse}");
        let mut sorted = f.clone();
        sorted.sort_by(f32::total_cmp);
        assert!((0.9..1.1).contains(&sorted[400]), "{}", sorted[400]);
        assert!(f.iter().all(|x| (0.05..=5.0).contains(x)));
        // Units do not matter; a smaller exponent pulls the factors towards 1.
        let scaled = Dataset::new(4, v.iter().map(|x| x * 100.0).collect()).unwrap();
        let g = row_noise(&scaled, 1.0);
        assert!(f
            .iter()
            .zip(&g)
            .all(|(a, b)| (a - b).abs() < 1e-4 * a.max(1.0)));
        let h = row_noise(&d, 0.5);
        assert!(f
            .iter()
            .zip(&h)
            .all(|(a, b)| (b - 1.0).abs() <= (a - 1.0).abs() + 1e-6));
    }
}
