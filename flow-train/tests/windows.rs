//! Windowed models end to end: `fit --window`, `inspect`, `eval` by windows (figures,
//! `--per-row`, `--json`, anomalies), `sample` of windows, reproducibility and the errors, on
//! recordings of the IMU training file.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The IMU file split by recording: every fourth recording of each class held out (8 of 28),
/// as `cli.rs`'s IMU test does. Rows as `(recording, walking, reading)`.
struct Split {
    train: Vec<(u32, [f64; 6])>,
    test: Vec<(u32, bool, [f64; 6])>,
    header: String,
}

fn split() -> Split {
    let (header, rows) = imu_split();
    let mut s = Split {
        train: Vec::new(),
        test: Vec::new(),
        header,
    };
    for (rec, walking, held, r) in rows {
        if held {
            s.test.push((rec, walking, r));
        } else {
            s.train.push((rec, r));
        }
    }
    s
}

/// A CSV of readings with the recording in a first column `rec`.
fn write(dir: &Path, name: &str, header: &str, rows: &[(u32, [f64; 6])]) -> PathBuf {
    let mut s = format!("rec,{header}\n");
    for (rec, r) in rows {
        let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        s += &format!("{rec},{}\n", cells.join(","));
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// One `fit --window 8` with every default on 20 recordings, checked on the 8 others against
/// the plain per-reading default and against proxy anomalies (no anomalous recordings exist
/// here): `amp2`, the held-out walking readings' deviations from the training mean ×2, and
/// `speed2`, every second reading of them (the same motion twice as fast: each reading alone
/// is normal, only their succession is not).
#[test]
fn windows_on_new_recordings() {
    if cfg!(debug_assertions) {
        eprintln!("windows_on_new_recordings: skipped in a debug build (run with --release)");
        return;
    }
    let s = split();
    let dir = scratch("windows");
    let n = s.train.len() as f64;
    let mut mean = [0.0; 6];
    for (_, r) in &s.train {
        for j in 0..6 {
            mean[j] += r[j] / n;
        }
    }
    let test: Vec<(u32, [f64; 6])> = s.test.iter().map(|&(g, _, r)| (g, r)).collect();
    let walking: Vec<(u32, [f64; 6])> = s
        .test
        .iter()
        .filter(|t| t.1)
        .map(|&(g, _, r)| (g, r))
        .collect();
    let amp2: Vec<(u32, [f64; 6])> = walking
        .iter()
        .map(|&(g, r)| (g, std::array::from_fn(|j| mean[j] + 2.0 * (r[j] - mean[j]))))
        .collect();
    let speed2: Vec<(u32, [f64; 6])> = walking
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, &r)| r)
        .collect();
    let train = write(&dir, "train.csv", &s.header, &s.train);
    let test_csv = write(&dir, "test.csv", &s.header, &test);
    let amp2 = write(&dir, "amp2.csv", &s.header, &amp2);
    let speed2 = write(&dir, "speed2.csv", &s.header, &speed2);
    let model = dir.join("w8.nflw");
    let fit = succeeds(&fit_args(
        p(&train),
        "--group-column rec --window 8",
        &model,
    ));
    let info = stderr(&fit);
    assert!(
        info.contains("recordings by column `rec`: 20 recording(s)"),
        "{info}"
    );
    assert!(info.contains("on two threads"), "{info}");

    // The stored window, grouping and cost; the parameter budget.
    let inspect = ok(&["inspect", "--model", p(&model)]);
    assert!(
        inspect.contains("window: 8 readings of 6 values"),
        "{inspect}"
    );
    assert!(inspect.contains("recordings by column `rec`"), "{inspect}");
    let params = line_value(&inspect, "params ");
    assert!(params <= 10_000.0, "{params} parameters");
    let instructions = line_value(&inspect, "m4f_instructions ");
    assert!(
        instructions <= 92_000.0,
        "estimated {instructions} instructions per reading"
    );

    // Every reading with 7 predecessors in its recording is one window: 8 × 93.
    let out = eval_anomalies(&model, &test_csv, &amp2, &[]);
    assert_eq!(line_value(&out, "windows "), 744.0, "{out}");
    let nll = last_nll(&out);
    let auroc_amp2 = line_value(&out, "auroc ");
    let speed = eval_anomalies(&model, &test_csv, &speed2, &[]);
    let auroc_speed2 = line_value(&speed, "auroc ");

    // The plain per-reading default on the same readings.
    let plain = dir.join("plain.nflw");
    succeeds(&fit_args(p(&train), "--group-column rec --quiet", &plain));
    let strip = |f: &Path, name: &str| {
        let t = read_text(f);
        let body: Vec<String> = t
            .lines()
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, body.join("\n") + "\n").unwrap();
        path
    };
    let (t1, a1, s1) = (
        strip(&test_csv, "t1.csv"),
        strip(&amp2, "a1.csv"),
        strip(&speed2, "s1.csv"),
    );
    let plain_out = eval_anomalies(&plain, &t1, &a1, &[]);
    let plain_nll = last_nll(&plain_out);
    let plain_amp2 = line_value(&plain_out, "auroc ");
    let plain_speed2 = line_value(&eval_anomalies(&plain, &t1, &s1, &[]), "auroc ");
    eprintln!(
        "window of 8: NLL {nll:.3} per window, AUROC amp2 {auroc_amp2:.4}, speed2 \
         {auroc_speed2:.4}; plain: NLL {plain_nll:.3} per reading (×8 = {:.3}), AUROC amp2 \
         {plain_amp2:.4}, speed2 {plain_speed2:.4}; {params} parameters, {instructions} \
         instructions",
        8.0 * plain_nll
    );
    // Readings follow each other: the window's density beats 8 independent readings under
    // the per-reading default by far (measured: 10–20 nats per window on these recordings; 5
    // leaves room for the training's run-to-run differences, ±1).
    assert!(nll < 8.0 * plain_nll - 5.0, "{nll} vs {}", 8.0 * plain_nll);
    // Faster motion with normal readings: only the window can see it (measured 0.90–0.97
    // against the plain model's 0.71–0.73 on the 4 folds of docs/streams.md).
    assert!(
        auroc_speed2 > plain_speed2 + 0.1,
        "{auroc_speed2} vs {plain_speed2}"
    );
    // Stronger motion: at least as good as the plain model (measured 0.976–1.0 against
    // 0.967–0.976), within the seeds' ±0.005.
    assert!(
        auroc_amp2 > plain_amp2 - 0.005,
        "{auroc_amp2} vs {plain_amp2}"
    );

    // --per-row: one line per reading, empty for the first 7 of each recording; the values
    // are the windows' log-densities whose mean is -nll.
    let per_row = dir.join("rows.csv");
    ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&test_csv),
        "--per-row",
        p(&per_row),
    ]);
    let text = read_text(&per_row);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "log_prob");
    assert_eq!(lines.len(), 1 + 800);
    let mut sum = 0.0f64;
    for (i, l) in lines[1..].iter().enumerate() {
        if i % 100 < 7 {
            assert!(l.is_empty(), "row {i}: {l:?}");
        } else {
            let v: f32 = l.parse().unwrap();
            sum += v as f64;
        }
    }
    assert!((-sum / 744.0 - nll).abs() < 1e-9 * nll.abs().max(1.0));
    // --json: the same figures.
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&test_csv),
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["windows"], 744);
    assert_eq!(j["rows"], 800);
    assert_eq!(j["nll"].as_f64().unwrap(), nll);
    // The stored rule is the default; giving one overrides it (here: recordings of 50 rows,
    // 16 × 43 windows).
    let halves = ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&test_csv),
        "--rows-per-group",
        "50",
    ]);
    assert_eq!(line_value(&halves, "windows "), 688.0);

    // sample: windows of 8 readings, numbered in a column `window`, which eval reads back as
    // recordings.
    let samples = dir.join("samples.csv");
    succeeds(&[
        "sample",
        "--model",
        p(&model),
        "-n",
        "40",
        "--seed",
        "3",
        "--out",
        p(&samples),
    ]);
    let text = read_text(&samples);
    assert!(text.starts_with("window,acc_x,"), "{}", &text[..40]);
    assert_eq!(text.lines().count(), 1 + 40 * 8);
    let back = ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&samples),
        "--group-column",
        "window",
    ]);
    assert_eq!(line_value(&back, "windows "), 40.0);
    assert!(last_nll(&back).is_finite());
}

/// Two runs of the same windowed fit write the same bytes: the parts train on two threads,
/// each seeded, so the threads' timing does not matter.
#[test]
fn windowed_fits_are_reproducible() {
    let s = split();
    let dir = scratch("windows-repro");
    let train = write(&dir, "train.csv", &s.header, &s.train);
    let fit = |name: &str| {
        let out = dir.join(name);
        succeeds(&fit_args(
            p(&train),
            "--rows-per-group 100 --window 4 --steps 200 --seed 5 --quiet",
            &out,
        ));
        std::fs::read(&out).unwrap()
    };
    assert_eq!(fit("a.nflw"), fit("b.nflw"));
}

#[test]
fn window_errors_are_sentences() {
    let s = split();
    let dir = scratch("windows-errors");
    let train = write(&dir, "train.csv", &s.header, &s.train[..300]);
    let out = dir.join("m.nflw");
    let t = p(&train);
    let o = p(&out);
    for (data, opts, needle) in [
        (t, "--window 1", "--window must be at least 2"),
        ("circles", "--window 4", "built-in data have no time"),
        (
            t,
            "--window 4 --flow coupling",
            "chooses its architecture itself",
        ),
        (
            t,
            "--window 4 --context-columns acc_x",
            "no --context-columns",
        ),
        (t, "--window 4 --group-column nope", "nope"),
        // Recordings shorter than the window: nothing to score, nothing written.
        (
            t,
            "--window 20 --rows-per-group 10 --steps 20",
            "no training recording has 20 readings",
        ),
    ] {
        let e = fails(&fit_args(data, opts, &out));
        assert!(e.contains(needle), "{e}");
    }
    assert!(!out.exists());
    // A windowed model and eval's options.
    succeeds(&fit_args(
        t,
        "--window 3 --group-column rec --steps 30 --quiet",
        &out,
    ));
    let e = fails(&["eval", "--model", o, "--data", t, "--standardized"]);
    assert!(e.contains("scores raw readings"), "{e}");
    // A plain model with a window's options.
    let plain = dir.join("plain.nflw");
    succeeds(&fit_args("circles", "--n 500 --steps 20 --quiet", &plain));
    let circles = dir.join("c.csv");
    std::fs::write(&circles, "x1,x2\n0.1,0.2\n0.3,0.4\n").unwrap();
    let e = fails(&[
        "eval",
        "--model",
        p(&plain),
        "--data",
        p(&circles),
        "--rows-per-group",
        "10",
    ]);
    assert!(e.contains("are for windowed models"), "{e}");
}
