//! The IMU recordings: loading, recording-level folds, standardization and the synthetic
//! anomalies of a held-out fold.

use flow_train::*;

pub(crate) fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("FLOW_DATA_DIR") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
}

pub(crate) struct Imu {
    pub(crate) data: Dataset,
    /// Recording id per row.
    pub(crate) rec: Vec<u32>,
    /// Whether the row's recording is walking.
    pub(crate) walking: Vec<bool>,
}

pub(crate) fn load() -> Imu {
    let dir = data_dir().join("imu");
    let data = Dataset::load_csv(dir.join("imu_train.csv")).expect("imu_train.csv");
    let rows_path = dir.join("imu_train_rows.csv");
    let rows = std::fs::read_to_string(&rows_path)
        .unwrap_or_else(|e| panic!("{}: {e}", rows_path.display()));
    let (mut rec, mut walking) = (Vec::new(), Vec::new());
    for line in rows.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        rec.push(f[1].parse().expect("recording id"));
        walking.push(f[2] == "walking");
    }
    assert_eq!(rec.len(), data.len());
    Imu { data, rec, walking }
}

/// Fold (0..n) of each recording: the standing and the walking recordings, in id order, dealt
/// round-robin (walking offset by `n / 2`, so that 4 folds hold 7 recordings each).
pub(crate) fn folds(imu: &Imu, n: usize) -> Vec<(u32, usize)> {
    let mut ids: Vec<(u32, bool)> = imu.rec.iter().copied().zip(imu.walking.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let (mut s, mut w) = (0, n / 2);
    ids.iter()
        .map(|&(id, walk)| {
            let c = if walk { &mut w } else { &mut s };
            *c += 1;
            (id, (*c - 1) % n)
        })
        .collect()
}

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
