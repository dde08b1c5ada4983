//! Parity with Pyro: the parameters Pyro trained in the tutorial runs
//! (`tests/pyro-trained/*.json`), laid out by this crate, give Pyro's recorded `log_prob`s —
//! through flow-core's exact code and through the training engine.

use crate::engine::Engine;
use crate::export::Exported;
use crate::isa::Isa;
use crate::spec::ModelSpec;
use serde_json::Value;

fn trained(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pyro-trained")
        .join(format!("{name}_params.json"));
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tensor(v: &Value, key: &str) -> Vec<f32> {
    v["state_dict"][key]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("missing {key}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn spline_params(v: &Value, prefix: &str) -> Vec<f32> {
    let mut p = Vec::new();
    for k in ["widths", "heights", "derivatives", "lambdas"] {
        p.extend(tensor(v, &format!("{prefix}unnormalized_{k}")));
    }
    p
}

fn dense_params(v: &Value, prefix: &str, layers: usize) -> Vec<f32> {
    let mut p = Vec::new();
    for i in 0..layers {
        p.extend(tensor(v, &format!("{prefix}nn.layers.{i}.weight")));
        p.extend(tensor(v, &format!("{prefix}nn.layers.{i}.bias")));
    }
    p
}

/// Checks flow-core (f32, f64) and the engine (f32, f64) against Pyro's float32 log_probs of
/// the first 50 test points.
fn check(v: &Value, spec: &ModelSpec, params: &[f32]) {
    let x: Vec<f32> = v["test_first50_x"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    let want: Vec<f64> = v["test_first50_joint_log_prob"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let e = Exported::new(spec, params).unwrap();
    let lp64 = e.log_probs::<f64>(&x).unwrap();
    let lp32 = e.log_probs::<f32>(&x).unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for ((a, b), w) in lp64.iter().zip(&lp32).zip(&want) {
        worst.0 = worst.0.max((a - w).abs() / w.abs().max(1.0));
        worst.1 = worst.1.max((b - w).abs() / w.abs().max(1.0));
    }
    println!(
        "flow-core vs Pyro (f32 torch): f64 worst {:.2e}, f32 worst {:.2e}",
        worst.0, worst.1
    );
    // Pyro computed in float32 with its own summation orders; the golden README puts float32
    // log|J| noise at ~1e-4 and these models measure 2e-5 at worst (1e-4 relative allowed).
    assert!(worst.0 < 1e-4 && worst.1 < 1e-4, "{worst:?}");
    let idx: Vec<usize> = (0..want.len()).collect();
    let mean = -want.iter().sum::<f64>() / want.len() as f64;
    let got32 = Engine::<f32>::new(spec)
        .unwrap()
        .loss(Isa::detect(), params, &x, &idx);
    let p64: Vec<f64> = params.iter().map(|&p| p as f64).collect();
    let got64 = Engine::<f64>::new(spec)
        .unwrap()
        .loss(Isa::Baseline, &p64, &x, &idx);
    println!("mean NLL: Pyro {mean:.7}, engine f32 {got32:.7}, engine f64 {got64:.7}");
    assert!((got32 - mean).abs() < 2e-5 && (got64 - mean).abs() < 2e-5);
}

#[test]
fn pyro_a_spline() {
    let v = trained("a_spline");
    check(
        &v,
        &ModelSpec::tutorial_spline(2, 16),
        &spline_params(&v, ""),
    );
}

#[test]
fn pyro_b_spline_coupling() {
    let v = trained("b_spline_coupling");
    let mut p = spline_params(&v, "lower_spline.");
    p.extend(dense_params(&v, "upper_spline.", 3));
    check(&v, &ModelSpec::tutorial_coupling(2, 16), &p);
}

#[test]
fn pyro_c_conditional() {
    let v = trained("c_conditional");
    let mut p = spline_params(&v, "0.");
    p.extend(dense_params(&v, "1.", 3));
    check(&v, &ModelSpec::tutorial_joint(8), &p);
}
