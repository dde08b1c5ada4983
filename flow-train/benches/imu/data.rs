//! The IMU recordings: loading, recording-level folds, standardization and the synthetic
//! anomalies of a held-out fold.

use flow_train::*;

pub(crate) use crate::imu_data::{data_dir, folds, load, Imu};

/// The number of folds: `$IMU_FOLDS`, else 4.
pub(crate) fn n_folds() -> usize {
    std::env::var("IMU_FOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// `$IMU_CLASS` (`standing` or `walking`): train and test on that class's recordings only,
/// the other class's readings (all of them, never trained on) a third, real set of anomalies.
pub(crate) fn only_class() -> Option<bool> {
    match std::env::var("IMU_CLASS").ok().as_deref() {
        None => None,
        Some("walking") => Some(true),
        Some("standing") => Some(false),
        Some(other) => panic!("IMU_CLASS={other}: standing or walking"),
    }
}

/// Per-column mean and (ddof 0) standard deviation.
pub(crate) fn moments(d: &Dataset) -> (Vec<f64>, Vec<f64>) {
    let (n, dim) = (d.len() as f64, d.dim());
    let mut m = vec![0.0; dim];
    let mut s = vec![0.0; dim];
    for i in 0..d.len() {
        for (j, &v) in d.row(i).iter().enumerate() {
            m[j] += v as f64 / n;
        }
    }
    for i in 0..d.len() {
        for (j, &v) in d.row(i).iter().enumerate() {
            s[j] += (v as f64 - m[j]).powi(2) / n;
        }
    }
    (m, s.iter().map(|v| v.sqrt()).collect())
}

pub(crate) fn scale(d: &Dataset, m: &[f64], s: &[f64]) -> Dataset {
    let v = d
        .values()
        .chunks_exact(d.dim())
        .flat_map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, &x)| ((x as f64 - m[j]) / s[j]) as f32)
        })
        .collect();
    Dataset::new(d.dim(), v).unwrap()
}

/// The synthetic anomalies of a held-out fold (see the module docs), in file units.
pub(crate) fn anomalies(
    test: &Dataset,
    walk: &[bool],
    mean: &[f64],
) -> Vec<(&'static str, Dataset)> {
    let dim = test.dim();
    let mut amp = Vec::new();
    let mut gyr = Vec::new();
    for (i, &walking) in walk.iter().enumerate() {
        let r = test.row(i);
        if walking {
            amp.extend(
                r.iter()
                    .enumerate()
                    .map(|(j, &x)| (mean[j] + 2.0 * (x as f64 - mean[j])) as f32),
            );
        }
        gyr.extend(r.iter().enumerate().map(|(j, &x)| {
            if j >= 3 {
                (mean[j] + 3.0 * (x as f64 - mean[j])) as f32
            } else {
                x
            }
        }));
    }
    vec![
        ("amp2", Dataset::new(dim, amp).unwrap()),
        ("gyr3", Dataset::new(dim, gyr).unwrap()),
    ]
}
