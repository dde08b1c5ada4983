//! Command-line conventions: warnings and `--strict`, standard streams, exit codes.

use crate::common::*;
use serde_json::Value;

use crate::helpers::*;

/// Suspicious data: one warning line each on stderr naming the column and line; `--strict`
/// makes them errors (exit 1, nothing written).
#[test]
fn suspicious_data_warns_and_strict_refuses() {
    let dir = scratch("suspicious");
    let mut rng = Lcg(99);
    let mut csv = String::from("a,b,flag\n");
    for i in 0..400 {
        let a = rng.normal();
        // Line i + 2; line 102 holds a typing error (a value 1e6 times too large).
        let b = if i == 100 {
            5e6
        } else {
            a + 0.5 * rng.normal()
        };
        csv += &format!("{a},{b},1\n");
    }
    let data = dir.join("d.csv");
    std::fs::write(&data, &csv).unwrap();
    let model = dir.join("m.nflw");
    let args = fit_args(p(&data), "--steps 20 --flow spline", &model);
    let err = fit_stderr(&args);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("column `b`, line 102: 5000000 is") && warnings[0].contains("MADs"),
        "{err}"
    );
    assert!(
        warnings[1].contains("column `flag` is constant")
            && warnings[1].contains("line 2 to line 401"),
        "{err}"
    );
    assert!(model.exists());
    std::fs::remove_file(&model).unwrap();
    let mut strict = args.to_vec();
    strict.push("--strict");
    let err = fails(&strict);
    assert!(
        err.contains("error: ") && err.contains("--strict: 2 problem(s)"),
        "{err}"
    );
    assert!(!model.exists(), "--strict wrote the model");

    // Duplicates and fewer rows than parameters.
    let mut csv = String::from("x,y\n");
    for i in 0..60 {
        let v = if i < 40 { 1.0 } else { i as f64 };
        csv += &format!("{v},{}\n", -v);
    }
    std::fs::write(&data, &csv).unwrap();
    let err = fails(&fit_args(p(&data), "--steps 5 --strict", &model));
    assert!(
        err.contains("39 of the 60 rows are exact copies of an earlier row (the first: line 3 repeats line 2)"),
        "{err}"
    );
    assert!(err.contains("60 rows (to line 61) for a model of"), "{err}");
    assert!(!model.exists());
    // Clean data: no warnings.
    let err = fit_stderr(&fit_args("circles", "--n 20000 --steps 5 --strict", &model));
    assert!(!err.contains("warning"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Results on stdout, status on stderr; `--json`; `-` for stdin and stdout; writing into a
/// link to a descriptor instead of replacing it; negative option values without `=`; range
/// errors in words.
#[test]
fn unix_conventions() {
    let dir = scratch("unix");
    let model = dir.join("m.nflw");
    ok(&fit_args("circles", "--n 2000 --steps 50 -q", &model));
    let test = repo().join("data/circles_test_raw.csv");
    let text = read_text(&test);
    let head: String = text.lines().take(301).map(|l| format!("{l}\n")).collect();

    // eval: stdout holds only the figures; status on stderr.
    let o = run(&["eval", "--model", p(&model), "--data", p(&test)]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(stdout(&o).starts_with("nll "));
    assert!(stderr(&o).contains("scoring 10000 rows"), "{}", stderr(&o));
    let nll = last_nll(&stdout(&o));

    // --json: one object, the same figures.
    let j: Value = serde_json::from_str(&ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&test),
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["nll"].as_f64().unwrap(), nll);
    assert_eq!(j["rows"], 10000);
    let text_info = ok(&["inspect", "--model", p(&model)]);
    let j: Value = serde_json::from_str(&ok(&["inspect", "--model", p(&model), "--json"])).unwrap();
    assert_eq!(
        text_info.lines().last().unwrap(),
        format!("params {}", j["params"])
    );
    assert_eq!(j["kind"], "joint");
    assert_eq!(j["columns"], serde_json::json!(["x1", "x2"]));
    assert_eq!(j["thresholds"].as_array().unwrap().len(), 3);
    assert_eq!(j["layers"].as_array().unwrap().len(), 2);

    // `-`: data from stdin, per-row log-densities to stdout (the figures then on stderr).
    let (out, err) = ok_stdin(
        &[
            "eval",
            "--model",
            p(&model),
            "--data",
            "-",
            "--per-row",
            "-",
        ],
        head.as_bytes(),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "log_prob");
    assert_eq!(lines.len(), 301);
    assert!(err.contains("nll "), "{err}");
    let (out, _) = ok_stdin(
        &[
            "eval",
            "--model",
            p(&model),
            "--data",
            p(&test),
            "--anomalies",
            "-",
        ],
        head.as_bytes(),
    );
    assert!(out.starts_with("auroc "), "{out}");
    assert!(fails(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        "-",
        "--anomalies",
        "-"
    ])
    .contains("only one input"));
    let (out, _) = ok_stdin(
        &["sample", "--model", p(&model), "-n", "5", "--out", "-"],
        b"",
    );
    assert_eq!(out.lines().count(), 6, "{out}");
    assert_eq!(out.lines().next(), Some("x1,x2"));

    // A link to this process's stdout (as /dev/stdout is) is written into, not replaced.
    #[cfg(target_os = "linux")]
    {
        let link = dir.join("stdout");
        std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
        let out = ok(&["sample", "--model", p(&model), "-n", "4", "--out", p(&link)]);
        assert_eq!(out.lines().count(), 5, "{out}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        // With stdout redirected to a file, the link leads to that file: the per-row CSV and
        // then the figures follow each other in it, neither overwriting the other.
        let redirected = dir.join("redirected.txt");
        let small = dir.join("small.csv");
        std::fs::write(&small, &head).unwrap();
        let status = bin()
            .args([
                "eval",
                "--model",
                p(&model),
                "--data",
                p(&small),
                "--per-row",
                p(&link),
            ])
            .stdout(std::fs::File::create(&redirected).unwrap())
            .status()
            .unwrap();
        assert!(status.success());
        let text = read_text(&redirected);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 302, "{text}");
        assert_eq!(lines[0], "log_prob");
        assert!(lines[301].starts_with("nll "), "{text}");
    }

    // Negative numbers as option values, without `=`; out-of-range values name the range.
    let err = fails(&fit_args("circles", "--flow spline --bound -1", &model));
    assert!(
        err.contains("--bound must be a positive number (got -1)"),
        "{err}"
    );
    let err = fails(&fit_args("circles", "--flow spline --bins 1", &model));
    assert!(
        err.contains("--bins must be between 2 and 1000 (got 1)"),
        "{err}"
    );
    let mut csv = String::from("c,x\n");
    let mut rng = Lcg(5);
    for _ in 0..500 {
        let c = rng.normal();
        csv += &format!("{c},{}\n", c + 0.1 * rng.normal());
    }
    let data = dir.join("cond.csv");
    std::fs::write(&data, csv).unwrap();
    let cond = dir.join("c.nflw");
    ok(&fit_args(
        p(&data),
        "--context-columns c --steps 300 -q",
        &cond,
    ));
    let out = ok(&[
        "sample",
        "--model",
        p(&cond),
        "-n",
        "400",
        "--context",
        "-1.5",
        "--out",
        "-",
    ]);
    let xs: Vec<f64> = out.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    assert!((mean + 1.5).abs() < 0.3, "x | c = -1.5: mean {mean}");
    std::fs::remove_dir_all(&dir).unwrap();
}
