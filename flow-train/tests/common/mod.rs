//! What the end-to-end tests of the `flow-train` program share: running it, its outputs, scratch
//! directories and the repository's files. Each test file uses a part of it.
#![allow(dead_code)]

pub mod gauss;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `flow-train` program Cargo built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flow-train"))
}

/// The repository's top folder (data in `data/`, Pyro's trained flows in `tests/pyro-trained`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file's text; a missing or unreadable file fails the test naming the path.
pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh scratch directory per test (and per test process).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("flow-train-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    d
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the program; a panic (exit code 101) fails the test: every failure must be a
/// reported error (exit code 1).
pub fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("running flow-train");
    assert_ne!(out.status.code(), Some(101), "panicked: {}", stderr(&out));
    out
}

/// Runs and expects success.
pub fn succeeds(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "flow-train {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Runs and expects success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    stdout(&succeeds(args))
}

/// Runs and expects failure (exit code 1); returns stderr.
pub fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "flow-train {args:?} should fail:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

/// `eval` of `model` on `data` with the anomalies `anomalies` and the further arguments
/// `extra`; expects success and returns stdout.
pub fn eval_anomalies(model: &Path, data: &Path, anomalies: &Path, extra: &[&str]) -> String {
    let mut a = vec![
        "eval",
        "--model",
        p(model),
        "--data",
        p(data),
        "--anomalies",
        p(anomalies),
    ];
    a.extend_from_slice(extra);
    ok(&a)
}

/// The value of the last stdout line `nll <value>`.
pub fn last_nll(out: &str) -> f64 {
    let last = out.lines().last().expect("output");
    let v = last
        .strip_prefix("nll ")
        .unwrap_or_else(|| panic!("last line is not `nll <value>`: {last:?}"));
    v.parse().unwrap()
}

/// The value of the stdout line starting with `key` (e.g. `"auroc "`).
pub fn line_value(out: &str, key: &str) -> f64 {
    let line = out.lines().find_map(|l| l.strip_prefix(key));
    let line = line.unwrap_or_else(|| panic!("no line {key:?} in {out:?}"));
    line.parse().unwrap()
}

/// One IMU row: its recording, whether it is walking, whether it is held out, the reading.
pub type ImuRow = (u32, bool, bool, [f64; 6]);

/// The IMU training file split by recording: every fourth recording of each class (in id
/// order) held out, 8 of 28. Returns the CSV header and every row as (recording, walking,
/// held out, reading).
pub fn imu_split() -> (String, Vec<ImuRow>) {
    let imu = repo().join("data/imu");
    let text = read_text(&imu.join("imu_train.csv"));
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let x: Vec<[f64; 6]> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            v.try_into().unwrap()
        })
        .collect();
    let meta: Vec<(u32, bool)> = read_text(&imu.join("imu_train_rows.csv"))
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2] == "walking")
        })
        .collect();
    assert_eq!((x.len(), meta.len()), (2800, 2800));
    let mut held = Vec::new();
    for class in [false, true] {
        let mut ids: Vec<u32> = meta.iter().filter(|m| m.1 == class).map(|m| m.0).collect();
        ids.sort_unstable();
        ids.dedup();
        held.extend(ids.iter().step_by(4));
    }
    let rows = x
        .iter()
        .zip(&meta)
        .map(|(r, m)| (m.0, m.1, held.contains(&m.0), *r))
        .collect();
    (header, rows)
}

/// The arguments of `fit` on `data` (a built-in data set's name or a CSV file) writing `out`,
/// with the further options `opts` (words separated by spaces).
pub fn fit_args<'a>(data: &'a str, opts: &'a str, out: &'a Path) -> Vec<&'a str> {
    let mut a = vec!["fit", "--data", data];
    a.extend(opts.split_whitespace());
    a.extend(["--out", p(out)]);
    a
}
