//! `cargo bench -p flow-train --bench score [-- ROWS] [--baseline BIN] [--pyro PYTHON]`:
//! `eval` on a CSV of 1,000,000 rows (the tutorial's 10,000 standardized circles test points,
//! repeated) under the firmware's default model (Pyro's tutorial coupling, trained by `fit`),
//! on one thread and on every core, side by side in one run (interleaved, median of 3 each),
//! as wall and CPU time per row of the whole command (reading the CSV, scoring, the mean).
//!
//! Pyro's `log_prob` of the same architecture on the same rows is measured in the same
//! rounds by `benches/pyro_score.py` (one thread and torch's default; the faster of one call
//! and calls of 10,000 rows), with the Python given by `--pyro` or else `python3` when it
//! can import torch and pyro; the ratios are printed. Without such a Python the bench says so
//! and prints the ratios against Pyro's recorded figures instead (`docs/pyro-reference-runs.md`,
//! median of 20 on 10,000 points: 1.167 µs per point on one thread, 0.897 on two). With
//! `--baseline BIN`, another `flow-train` program (built from an earlier commit) is timed in
//! the same rounds, interleaved, and the ratios of the two are printed: on a shared machine
//! that ratio is the figure to trust. The load average is printed before and after.
//! docs/scoring-speed.md has the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Pyro's recorded `log_prob` of the tutorial coupling, µs per point: 11.67 ms and 8.97 ms
/// for the 10,000 test points on one and two threads (`docs/pyro-reference-runs.md`).
const PYRO_ONE: f64 = 1.167;
const PYRO_TWO: f64 = 0.897;

/// A Python that can import torch and pyro: `--pyro`'s, else `python3` if it can.
fn pyro_python(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let ok = Command::new("python3")
        .args(["-c", "import torch, pyro"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from("python3"))
}

/// One run of `pyro_score.py` on `csv`: µs per row on one thread and on torch's default
/// thread count (the same figure twice on a one-core machine).
fn pyro(python: &Path, csv: &Path) -> (f64, f64) {
    let script = repo().join("flow-train/benches/pyro_score.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(csv)
        .output()
        .expect("run pyro_score.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyro_score.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Vec<(usize, f64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["pyro", "threads", n, "us_per_row", v] => Some((n.parse().ok()?, v.parse().ok()?)),
                _ => None,
            }
        })
        .collect();
    let one = figures
        .iter()
        .find(|f| f.0 == 1)
        .expect("a one-thread figure")
        .1;
    // torch's default is the largest thread count the script ran.
    let all = figures.iter().max_by_key(|f| f.0).map_or(one, |f| f.1);
    (one, all)
}

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
fn eval(bin: &Path, model: &Path, csv: &Path, threads: usize) -> (f64, Option<f64>, String) {
    let cpu0 = children_cpu();
    let mut cmd = Command::new(bin);
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

/// The load averages over 1, 5 and 15 minutes (Linux; empty elsewhere).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Medians of one program's runs: wall and CPU seconds at one thread and at every core.
#[derive(Default)]
struct Runs {
    one: Vec<f64>,
    all: Vec<f64>,
    one_cpu: Vec<f64>,
    all_cpu: Vec<f64>,
}

impl Runs {
    fn round(&mut self, bin: &Path, model: &Path, csv: &Path, nlls: &mut Vec<String>) {
        let (s, c, n) = eval(bin, model, csv, 1);
        self.one.push(s);
        self.one_cpu.extend(c);
        nlls.push(n);
        let (s, c, n) = eval(bin, model, csv, 0);
        self.all.push(s);
        self.all_cpu.extend(c);
        nlls.push(n);
    }

    /// `(one, all, one_cpu, all_cpu)` in µs per row (CPU: NaN where unknown).
    fn per_row(&self, rows: usize) -> [f64; 4] {
        let us = |v: &Vec<f64>| {
            if v.is_empty() {
                f64::NAN
            } else {
                1e6 * median(v.clone()) / rows as f64
            }
        };
        [
            us(&self.one),
            us(&self.all),
            us(&self.one_cpu),
            us(&self.all_cpu),
        ]
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let baseline = args
        .iter()
        .position(|a| a == "--baseline")
        .map(|i| PathBuf::from(args.get(i + 1).expect("--baseline needs a program")));
    let python = pyro_python(
        args.iter()
            .position(|a| a == "--pyro")
            .map(|i| PathBuf::from(args.get(i + 1).expect("--pyro needs a Python"))),
    );
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
    let this = PathBuf::from(env!("CARGO_BIN_EXE_flow-train"));

    println!("load average before: {}", load());
    let (mut new, mut old) = (Runs::default(), Runs::default());
    let mut nlls = Vec::new();
    let (mut pyro_one, mut pyro_all) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        new.round(&this, &model, &path, &mut nlls);
        if let Some(b) = &baseline {
            old.round(b, &model, &path, &mut nlls);
        }
        if let Some(py) = &python {
            let (one, all) = pyro(py, &path);
            pyro_one.push(one);
            pyro_all.push(all);
        }
    }
    println!("load average after:  {}", load());
    assert!(
        nlls.windows(2).all(|w| w[0] == w[1]),
        "the runs give different results: {nlls:?}"
    );
    println!("eval of {rows} rows (standardized circles, the tutorial coupling), whole command:");
    let show = |name: &str, r: [f64; 4]| {
        println!("  {name}");
        println!(
            "    1 thread:  {:.3} µs per row (wall), CPU {:.3}",
            r[0], r[2]
        );
        println!(
            "    {cores} threads: {:.3} µs per row (wall; {:.2}x one thread), CPU {:.3}",
            r[1],
            r[0] / r[1],
            r[3]
        );
    };
    let n = new.per_row(rows);
    show("this build:", n);
    if let Some(b) = &baseline {
        let o = old.per_row(rows);
        show(&format!("baseline {}:", b.display()), o);
        println!(
            "  this build against the baseline: wall {:.2}x (1 thread), {:.2}x ({cores} threads); \
             CPU {:.2}x, {:.2}x",
            o[0] / n[0],
            o[1] / n[1],
            o[2] / n[2],
            o[3] / n[3]
        );
    }
    let (p_one, p_all, how) = if python.is_some() {
        let (one, all) = (median(pyro_one), median(pyro_all));
        println!(
            "  Pyro's log_prob, measured in the same rounds: {one:.3} µs per row on one thread, \
             {all:.3} with torch's default threads"
        );
        (one, all, "measured")
    } else {
        println!(
            "  (no Python with torch and pyro: pass --pyro PYTHON to measure Pyro in this run; \
             the ratios below are against Pyro's recorded figures, {PYRO_ONE} and {PYRO_TWO} µs \
             per point on one and two threads, not measured here)"
        );
        (PYRO_ONE, PYRO_TWO, "recorded")
    };
    println!(
        "  against Pyro ({how}): {:.2}x on one thread each; eval on {cores} threads {:.2}x \
         Pyro on one thread (the issue's figure), {:.2}x Pyro on its default threads",
        p_one / n[0],
        p_one / n[1],
        p_all / n[1]
    );
    println!("  {}", nlls[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
