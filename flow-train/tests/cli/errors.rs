//! Failure paths: bad CSV rows, a diverging run, invalid model files.

use crate::common::*;

/// A bad CSV row is named by line and column, for fit and eval; nothing is written.
#[test]
fn bad_csv_rows_name_line_and_column() {
    let dir = scratch("bad-csv");
    let model = dir.join("m.nflw");
    for (text, needle) in [
        (
            "x1,x2\n0.1,0.2\n0.3,abc\n",
            "line 3, column 2 (`x2`): `abc` is not a number",
        ),
        (
            "x1,x2\n0.1,0.2\n0.3,0.1\nnan,1\n",
            "line 4, column 1 (`x1`): `nan` is not a finite",
        ),
        (
            "x1,x2\n0.1,0.2\n0.3\n",
            "line 3: 1 fields, the header has 2",
        ),
        ("0.1,0.2\n0.3,0.4\n", "header"),
    ] {
        let csv = dir.join("bad.csv");
        std::fs::write(&csv, text).unwrap();
        let err = fails(&["fit", "--data", p(&csv), "--steps", "5", "--out", p(&model)]);
        assert!(err.contains(needle), "{err} lacks {needle}");
        assert!(!model.exists());
    }
    // eval too, on a model from good data.
    let good = dir.join("good.csv");
    let mut text = String::from("x1,x2\n");
    for i in 0..200 {
        let t = i as f64 * 0.1;
        text += &format!("{},{}\n", t.cos(), t.sin());
    }
    std::fs::write(&good, text).unwrap();
    ok(&fit_args(p(&good), "--steps 20 -q", &model));
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "x1,x2\n0.1,0.2\n0.3,1e999\n").unwrap();
    let err = fails(&["eval", "--model", p(&model), "--data", p(&csv)]);
    assert!(err.contains("line 3, column 2 (`x2`)"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A diverging run (learning rate 1e6) fails and leaves an existing model file untouched,
/// with and without a validation split; so does a run that overflows to NaN.
#[test]
fn diverging_run_leaves_the_model_untouched() {
    let dir = scratch("diverge");
    let model = dir.join("m.nflw");
    ok(&fit_args("circles", "--n 1000 --steps 50 -q", &model));
    let before = std::fs::read(&model).unwrap();
    for extra in [
        &["--lr", "1e6"][..],
        &["--lr", "1e6", "--val-fraction", "0"],
        &["--lr", "1e30"],
    ] {
        let mut args = fit_args("circles", "--n 1000 --steps 300 -q", &model);
        args.extend_from_slice(extra);
        let err = fails(&args);
        assert!(
            err.contains("diverged") && err.contains("was not written"),
            "{err}"
        );
        assert_eq!(std::fs::read(&model).unwrap(), before, "{extra:?}");
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(names.len(), 1, "temporary files left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Invalid model files: inspect, eval and sample exit 1 with flow-core's typed error.
#[test]
fn invalid_model_files_are_typed_errors() {
    let dir = scratch("invalid");
    let model = dir.join("m.nflw");
    ok(&fit_args("circles", "--n 500 --steps 5 -q", &model));
    let good = std::fs::read(&model).unwrap();
    let csv = dir.join("x.csv");
    std::fs::write(&csv, "x1,x2\n0.1,0.2\n").unwrap();
    let mut flipped = good.clone();
    flipped[40] ^= 0x10;
    let mut newer = good.clone();
    newer[4] = 9; // the format version varint
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "invalid model file"),
        (flipped, "checksum mismatch"),
        (b"NOPE, not a model".to_vec(), "bad magic"),
        (Vec::new(), "invalid model file"),
        (newer, "format version 9 is newer"),
    ];
    for (bytes, needle) in cases {
        let bad = dir.join("bad.nflw");
        std::fs::write(&bad, &bytes).unwrap();
        for args in [
            vec!["inspect", "--model", p(&bad)],
            vec!["eval", "--model", p(&bad), "--data", p(&csv)],
            vec![
                "sample",
                "--model",
                p(&bad),
                "-n",
                "2",
                "--out",
                p(&dir.join("s.csv")),
            ],
        ] {
            let err = fails(&args);
            assert!(
                err.contains(needle) && err.contains("bad.nflw"),
                "{args:?}: {err}"
            );
            // Words, not Rust's Debug text such as `Format(Magic)`.
            assert!(!err.contains("Format(") && !err.contains("Error"), "{err}");
        }
    }
    assert!(!dir.join("s.csv").exists());
    let err = fails(&["inspect", "--model", p(&dir.join("missing.nflw"))]);
    assert!(err.contains("missing.nflw"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
