//! The whole workflow: fit → inspect → eval → sample → plot, and a conditional model with
//! groups and anomalies.

use crate::common::*;

use crate::helpers::*;

/// fit → inspect → eval → sample → plot on a small built-in data set.
#[test]
fn fit_inspect_eval_sample_plot() {
    let dir = scratch("pipeline");
    let model = dir.join("m.nflw");
    let plots = dir.join("plots");
    let mut args = fit_args("circles", "--n 3000 --steps 400 --quiet", &model);
    args.extend(["--plots", p(&plots)]);
    let out = ok(&args);
    // "wrote <path> (<bytes> bytes, <N> parameters)"
    let wrote = out.lines().find(|l| l.starts_with("wrote ")).unwrap();
    let n_params: usize = wrote
        .split(", ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_png(&plots.join("joint.png"));
    assert_png(&plots.join("marginals.png"));

    let info = ok(&["inspect", "--model", p(&model)]);
    assert!(info.contains("kind: joint"), "{info}");
    assert!(info.contains("columns: x1, x2"), "{info}");
    assert!(info.contains("scaler: mean"), "{info}");
    assert!(
        info.contains("thresholds (log p, flow space): 0.1%"),
        "{info}"
    );
    assert_eq!(info.lines().last().unwrap(), format!("params {n_params}"));

    // Raw test values with the model's scaler vs the tutorial-scaled test values as they are:
    // the two scalers agree to ~1e-3, so the NLLs differ by Σ ln(our scale) to ~1e-2.
    let data = repo().join("data");
    let raw = dir.join("raw.csv");
    std::fs::copy(data.join("circles_test_raw.csv"), &raw).unwrap();
    let per_row = dir.join("rows.csv");
    let nll_raw = last_nll(&ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&raw),
        "--per-row",
        p(&per_row),
    ]));
    let nll_std = last_nll(&ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&data.join("circles_test_scaled.csv")),
        "--standardized",
    ]));
    let scale: f64 = info
        .lines()
        .find(|l| l.starts_with("scaler:"))
        .and_then(|l| l.split("scale [").nth(1))
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .split(", ")
        .map(|s| s.parse::<f64>().unwrap().ln())
        .sum();
    assert!(
        (nll_std - (nll_raw - scale)).abs() < 1e-2,
        "{nll_std} vs {nll_raw} - {scale}"
    );
    // A Gaussian fit scores 2·(½ ln 2πe) = 2.84 nats in standardized units; 400 steps on
    // rings are well below.
    assert!(nll_std < 2.4, "{nll_std}");
    let rows = read_column(&per_row);
    assert_eq!(rows.len(), 10_000);
    let mean = -rows.iter().sum::<f64>() / rows.len() as f64;
    assert!((mean - nll_raw).abs() < 1e-5, "{mean} vs {nll_raw}");

    // Samples: reproducible by seed, in raw units (rings of radius ≈ 1 and 0.5).
    let s1 = dir.join("s1.csv");
    let s2 = dir.join("s2.csv");
    for s in [&s1, &s2] {
        ok(&[
            "sample",
            "--model",
            p(&model),
            "-n",
            "2000",
            "--seed",
            "7",
            "--out",
            p(s),
        ]);
    }
    let text = read_text(&s1);
    assert_eq!(text, read_text(&s2));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("x1,x2"));
    let radii: Vec<f64> = lines
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            v[0].hypot(v[1])
        })
        .collect();
    assert_eq!(radii.len(), 2000);
    let near = radii
        .iter()
        .filter(|&&r| (r - 1.0).abs() < 0.2 || (r - 0.5).abs() < 0.2);
    assert!(near.count() > 1600, "samples are not on the rings");

    let pics = dir.join("pics");
    ok(&[
        "plot",
        "--model",
        p(&model),
        "--data",
        p(&raw),
        "--out",
        p(&pics),
    ]);
    assert_png(&pics.join("joint.png"));
    assert_png(&pics.join("marginals.png"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A conditional model p(x, y | temp) with a text group column; samples follow the context;
/// anomalies (rows off the curve) are ranked below normal rows.
#[test]
fn conditional_with_groups_and_anomalies() {
    let dir = scratch("conditional");
    let mut rng = Lcg(12345);
    let mut csv = String::from("run,temp,x,y\n");
    let mut anomalies = String::from("temp,x,y\n");
    for i in 0..3000 {
        let t = 10.0 + 30.0 * rng.uniform();
        let x = 0.1 * t + 0.3 * rng.normal();
        let y = x.sin() + 0.1 * rng.normal();
        csv += &format!("run{},{t},{x},{y}\n", i / 150);
        if i < 200 {
            // The same x and y ranges, but y off the curve by 0.6 and x off by 1.5 for its temp.
            anomalies += &format!("{t},{},{}\n", x + 1.5, y + 0.6);
        }
    }
    let data = dir.join("d.csv");
    let bad = dir.join("anomalies.csv");
    std::fs::write(&data, csv).unwrap();
    std::fs::write(&bad, anomalies).unwrap();
    let model = dir.join("c.nflw");
    let out = ok(&fit_args(
        p(&data),
        "--context-columns temp --group-column run --steps 1500 --quiet",
        &model,
    ));
    assert!(out.contains("validation"), "{out}");
    let info = ok(&["inspect", "--model", p(&model)]);
    assert!(
        info.contains("kind: conditional p(x | c), context 1"),
        "{info}"
    );
    assert!(info.contains("columns: x, y; context: temp"), "{info}");

    // Context in raw units: at temp 15 x ≈ 1.5, at temp 35 x ≈ 3.5 (noise 0.3).
    for (t, want) in [("15", 1.5), ("35", 3.5)] {
        let s = dir.join(format!("s{t}.csv"));
        ok(&[
            "sample",
            "--model",
            p(&model),
            "-n",
            "1000",
            "--context",
            t,
            "--out",
            p(&s),
        ]);
        let text = read_text(&s);
        let xs: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!(
            (mean - want).abs() < 0.15,
            "temp {t}: mean x {mean}, want {want}"
        );
    }
    // The group column is text, ignored by eval (the model names its columns).
    let out = eval_anomalies(&model, &data, &bad, &[]);
    let lines: Vec<&str> = out.lines().collect();
    let auroc: f64 = lines[lines.len() - 2]
        .strip_prefix("auroc ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(auroc > 0.95, "{out}");
    assert!(last_nll(&out).is_finite());
    assert!(fails(&[
        "sample",
        "--model",
        p(&model),
        "-n",
        "3",
        "--out",
        p(&dir.join("x.csv"))
    ])
    .contains("--context"));
    std::fs::remove_dir_all(&dir).unwrap();
}
