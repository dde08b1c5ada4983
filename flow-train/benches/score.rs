//! `cargo bench -p flow-train --bench score [-- ROWS]`: `eval` on a CSV of 1,000,000 rows (the
//! tutorial's 10,000 standardized circles test points, repeated) under the firmware's default
//! model (Pyro's tutorial coupling, trained by `fit`), on one thread and on every core, side by
//! side in one run (interleaved, median of 3 each), as wall time per row of the whole command
//! (reading the CSV, scoring, the mean). Prints both, their ratio, and the ratio against
//! Pyro's `log_prob` of the same architecture: 1.3–1.6 µs per point on one thread, recorded on
//! a 2-vCPU machine of the same kind (`docs/pyro-reference-runs.md`; torch could not be
//! installed beside this bench). docs/scoring-speed.md has the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// CPU seconds (user + system) of this process's waited-for children so far, from
/// `/proc/self/stat` (Linux; `None` elsewhere), in clock ticks of 10 ms.
fn children_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses; cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(13)?.parse::<f64>().ok()? + f.get(14)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Wall and CPU seconds of one `eval` run with `threads` (0: the default, every core); its
/// `nll` line.
fn eval(model: &Path, csv: &Path, threads: usize) -> (f64, Option<f64>, String) {
    let cpu0 = children_cpu();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flow-train"));
    cmd.args(["eval", "--standardized", "--model"])
        .arg(model)
        .arg("--data")
        .arg(csv);
    if threads > 0 {
        cmd.args(["--threads", &threads.to_string()]);
    }
    let t = Instant::now();
    let out = cmd.output().expect("run flow-train eval");
    let s = t.elapsed().as_secs_f64();
    let cpu = children_cpu().zip(cpu0).map(|(b, a)| b - a);
    assert!(
        out.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nll = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("nll "))
        .expect("an nll line")
        .to_string();
    (s, cpu, nll)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let src = repo().join("data/circles_test_scaled.csv");
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("a header line");
    let body: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let mut csv = String::with_capacity(rows * 40);
    csv.push_str(header);
    csv.push('\n');
    for i in 0..rows {
        csv.push_str(body[i % body.len()]);
        csv.push('\n');
    }
    let dir = std::env::temp_dir().join(format!("flow-train-score-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let path = dir.join("rows.csv");
    std::fs::write(&path, csv).expect("write the CSV");
    let model = repo().join("flow-firmware-example/models/circles_coupling.nflw");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let (mut one, mut all) = (Vec::new(), Vec::new());
    let (mut one_cpu, mut all_cpu) = (Vec::new(), Vec::new());
    let mut nlls = Vec::new();
    for _ in 0..3 {
        let (s, c, n) = eval(&model, &path, 1);
        one.push(s);
        one_cpu.extend(c);
        nlls.push(n);
        let (s, c, n) = eval(&model, &path, 0);
        all.push(s);
        all_cpu.extend(c);
        nlls.push(n);
    }
    assert!(
        nlls.windows(2).all(|w| w[0] == w[1]),
        "one thread and {cores} give different results: {nlls:?}"
    );
    let us = |s: f64| 1e6 * s / rows as f64;
    let (one, all) = (us(median(one)), us(median(all)));
    println!("eval of {rows} rows (standardized circles, the tutorial coupling), whole command:");
    println!("  1 thread:   {one:.3} µs per row (wall)");
    println!(
        "  {cores} threads:  {all:.3} µs per row (wall; {:.2}x one thread)",
        one / all
    );
    if !one_cpu.is_empty() && !all_cpu.is_empty() {
        println!(
            "  CPU time per row: 1 thread {:.3} µs, {cores} threads {:.3} µs (user + system)",
            us(median(one_cpu)),
            us(median(all_cpu))
        );
    }
    println!(
        "  against Pyro's log_prob, 1.3-1.6 µs per point on one thread (recorded): {:.1}x-{:.1}x",
        1.3 / all,
        1.6 / all
    );
    println!("  {}", nlls[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
