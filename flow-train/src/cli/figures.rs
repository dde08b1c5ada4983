//! The figures `eval` prints, for single rows and for windows: threshold counts and AUROC
//! against anomalies, then the lines (or one JSON object).

use super::info;
use super::runtime::Runtime;
use flow_train::export::auroc;
use serde_json::json;

/// How many anomalous and normal scores fall below each stored threshold (`+ shift`), on
/// stderr and in `figures` (`anomalous_<what>`, `below_thresholds`, `auroc`); returns the
/// AUROC of `normal` against `bad`.
pub fn anomalies(
    rt: &Runtime<'_>,
    normal: &[f32],
    bad: &[f32],
    shift: f32,
    what: &str,
    figures: &mut serde_json::Map<String, serde_json::Value>,
    quiet: bool,
) -> f64 {
    let below: Vec<(f32, usize, usize)> = rt
        .model
        .thresholds()
        .map(|(q, thr)| {
            let flagged = bad.iter().filter(|&&s| s < thr + shift).count();
            let n = normal.iter().filter(|&&s| s < thr + shift).count();
            (q, flagged, n)
        })
        .collect();
    for (q, flagged, n) in &below {
        info!(
            quiet,
            "below the {}% threshold: {flagged}/{} anomalous {what}, {n}/{} normal",
            q * 100.0,
            bad.len(),
            normal.len()
        );
    }
    figures.insert(format!("anomalous_{what}"), json!(bad.len()));
    figures.insert(
        "below_thresholds".into(),
        below
            .iter()
            .map(|&(q, flagged, n)| json!({"quantile": q, "anomalous": flagged, "normal": n}))
            .collect(),
    );
    let wide = |v: &[f32]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
    let value = auroc(&wide(normal), &wide(bad));
    figures.insert("auroc".into(), json!(value));
    value
}

/// The figures: one JSON object (`json`), or the text lines — `first`, then `auroc` if any,
/// last `nll` — on stdout (on stderr when the per-row CSV goes to stdout).
pub fn report(
    figures: serde_json::Map<String, serde_json::Value>,
    json: bool,
    per_row_stdout: bool,
    first: &[String],
    auroc: Option<f64>,
    nll: f64,
) {
    if json {
        println!("{}", serde_json::Value::Object(figures));
        return;
    }
    let mut lines = first.to_vec();
    if let Some(v) = auroc {
        lines.push(format!("auroc {v}"));
    }
    lines.push(format!("nll {nll}"));
    for line in lines {
        if per_row_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}
