//! `import-pyro`: Pyro's log-densities reproduced, and its errors.

use crate::common::*;
use serde_json::Value;
use std::path::PathBuf;

use crate::helpers::*;

/// Pyro's three tutorial models imported; `eval --per-row` on the first 50 test points
/// reproduces Pyro's recorded joint log_prob.
#[test]
fn import_pyro_reproduces_pyro_log_probs() {
    let dir = scratch("pyro");
    let descriptions = [
        (
            "a_spline",
            r#"{"dim": 2, "layers": [{"type": "spline", "count_bins": 16}]}"#,
        ),
        (
            "b_spline_coupling",
            r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
        ),
        (
            "c_conditional",
            r#"{"flow": "joint", "dim": 2, "context_dim": 1, "marginal_layers": 1,
                "layers": [{"type": "spline", "prefix": "0.", "count_bins": 8},
                           {"type": "conditional_spline", "prefix": "1.", "count_bins": 8}]}"#,
        ),
    ];
    for (name, desc) in descriptions {
        let sd = repo().join(format!("tests/pyro-trained/{name}_params.json"));
        let v: Value = serde_json::from_str(&read_text(&sd)).unwrap();
        let d = dir.join(format!("{name}.json"));
        std::fs::write(&d, desc).unwrap();
        let model = dir.join(format!("{name}.nflw"));
        ok(&[
            "import-pyro",
            "--state-dict",
            p(&sd),
            "--description",
            p(&d),
            "--out",
            p(&model),
        ]);
        // The 50 points as a CSV, written with Rust's shortest round-trip f64 form, so the
        // CLI reads exactly the stored values (then rounds to f32 as torch did).
        let mut csv = String::from("x1,x2\n");
        for r in v["test_first50_x"].as_array().unwrap() {
            csv += &format!("{},{}\n", r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        }
        let pts = dir.join(format!("{name}_x.csv"));
        std::fs::write(&pts, csv).unwrap();
        let rows = dir.join(format!("{name}_lp.csv"));
        ok(&[
            "eval",
            "--model",
            p(&model),
            "--data",
            p(&pts),
            "--per-row",
            p(&rows),
        ]);
        let got = read_column(&rows);
        let want: Vec<f64> =
            serde_json::from_value(v["test_first50_joint_log_prob"].clone()).unwrap();
        assert_eq!(got.len(), 50);
        // Tolerance 1e-4 relative: both sides evaluate in f32 from identical float32
        // parameters and inputs, so they differ only by rounding order (transcendentals,
        // sums, the knot cumsum); on the golden vectors Pyro's own f32 log_prob deviates from
        // the exact value by up to ~1e-5 relative at well-conditioned points. Any parameter
        // layout error would be off by orders of magnitude more.
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / w.abs())
            .fold(0.0, f64::max);
        println!("{name}: max relative error {worst:.2e} over 50 points");
        assert!(worst < 1e-4, "{name}: {worst}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Import errors name the key (and shapes); the output file is not created, an existing one
/// is left as it was.
#[test]
fn import_errors_name_the_key_and_write_nothing() {
    let dir = scratch("import-errors");
    let sd_path = repo().join("tests/pyro-trained/b_spline_coupling_params.json");
    let sd: Value = serde_json::from_str(&read_text(&sd_path)).unwrap();
    let desc = dir.join("d.json");
    std::fs::write(
        &desc,
        r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
    )
    .unwrap();
    let out = dir.join("m.nflw");
    let existing = dir.join("existing.nflw");
    std::fs::write(&existing, b"previous contents").unwrap();
    let variant = |name: &str, f: &dyn Fn(&mut Value)| -> PathBuf {
        let mut v = sd.clone();
        f(&mut v);
        let path = dir.join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    };
    let key = "upper_spline.nn.layers.1.weight";
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            variant("missing.json", &|v| {
                v["state_dict"].as_object_mut().unwrap().remove(key);
            }),
            vec!["missing key", key],
        ),
        (
            variant("unknown.json", &|v| {
                v["state_dict"]["extra.bias"] =
                    serde_json::json!({"shape": [2], "values": [0.0, 1.0]});
            }),
            vec!["unknown key", "extra.bias"],
        ),
        (
            variant("shape.json", &|v| {
                let t = &mut v["state_dict"]["lower_spline.unnormalized_widths"];
                t["shape"] = serde_json::json!([2, 8]);
            }),
            vec!["lower_spline.unnormalized_widths", "[2, 8]", "[1, 16]"],
        ),
    ];
    for (sd, needles) in cases {
        for target in [&out, &existing] {
            let err = fails(&[
                "import-pyro",
                "--state-dict",
                p(&sd),
                "--description",
                p(&desc),
                "--out",
                p(target),
            ]);
            for n in &needles {
                assert!(err.contains(n), "{err} lacks {n}");
            }
        }
        assert!(!out.exists());
        assert_eq!(std::fs::read(&existing).unwrap(), b"previous contents");
    }
    // Nothing else (no temporary files) was left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "d.json",
            "existing.nflw",
            "missing.json",
            "shape.json",
            "unknown.json"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
