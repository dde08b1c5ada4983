//! The smartwatch IMU training file and its recordings (`data/imu`), and the
//! recording-level folds the IMU benches (`imu`, `stream`) share.

use flow_train::Dataset;

/// The data directory: `$FLOW_DATA_DIR`, else the repository's `data/`.
pub fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("FLOW_DATA_DIR") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
}

/// `imu/imu_train.csv` with its rows' recordings (`imu/imu_train_rows.csv`).
pub struct Imu {
    pub data: Dataset,
    /// Recording id per row.
    pub rec: Vec<u32>,
    /// Whether the row's recording is walking.
    pub walking: Vec<bool>,
}

pub fn load() -> Imu {
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
pub fn folds(imu: &Imu, n: usize) -> Vec<(u32, usize)> {
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
