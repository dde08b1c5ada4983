//! Running the binary and reading what it writes.

use crate::common::*;
use std::path::Path;

/// Runs and expects success; returns stderr (status and warnings).
pub(crate) fn fit_stderr(args: &[&str]) -> String {
    stderr(&succeeds(args))
}

/// Runs with `input` on stdin and expects success; returns (stdout, stderr).
pub(crate) fn ok_stdin(args: &[&str], input: &[u8]) -> (String, String) {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running flow-train");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "flow-train {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    (stdout(&o), stderr(&o))
}

pub(crate) fn read_column(path: &Path) -> Vec<f64> {
    let text = read_text(path);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("log_prob"));
    lines.map(|l| l.parse().unwrap()).collect()
}

pub(crate) fn assert_png(path: &Path) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(b.len() > 10_000, "{}: {} bytes", path.display(), b.len());
}

/// A small seeded generator for test data (64-bit LCG, top 53 bits).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn normal(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
