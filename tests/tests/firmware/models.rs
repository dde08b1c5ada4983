//! The model files the firmware embeds: the tutorial coupling, conditional, joint and IMU-shaped
//! flows, with their seeds.

use crate::workload;
use flow_core::model::ModelBuilder;
use flow_core::{ConditionalFlow, Flow, Model, Order, Spline, SplineShape};
use flow_tests::models::{hypernet, joint_layers, params};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use std::path::PathBuf;

/// Seed of the tutorial model the comparison tests embed.
pub(crate) const TEST_SEED: u64 = 0xF10F_C0DE;

// --- the model files -------------------------------------------------------------------------

/// `n` uniforms in `[-a, a)` from 24-bit draws.
pub(crate) fn uniforms(rng: &mut Pcg32, n: usize, a: f32) -> impl Iterator<Item = f32> + '_ {
    (0..n).map(move |_| {
        let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        (2.0 * u - 1.0) * a
    })
}

/// Empirical `(quantile, log_prob)` thresholds of a flow from its own samples, as the trainer
/// stores them (there from validation data).
pub(crate) fn thresholds(mut lps: Vec<f32>) -> Vec<(f32, f32)> {
    lps.retain(|v| v.is_finite());
    lps.sort_by(f32::total_cmp);
    [0.001f32, 0.01, 0.05]
        .iter()
        .map(|&q| (q, lps[((q * lps.len() as f32) as usize).min(lps.len() - 1)]))
        .collect()
}

/// The [`thresholds`] of the log-densities of 4000 samples of `flow` (drawn from a `Pcg32`
/// seeded with `seed ^ 0x7157`; a conditional flow's at the workload's contexts in turn).
fn sampled_thresholds<const D: usize, const C: usize, F: workload::Density<D, C>>(
    flow: &F,
    seed: u64,
) -> Vec<(f32, f32)> {
    let mut rng = Pcg32::seed_from_u64(seed ^ 0x7157);
    let lps = (0..4000)
        .map(|i| {
            let c: [f32; C] = workload::widen(&workload::CONTEXTS[i % workload::CONTEXTS.len()]);
            let x = flow.draw(&mut rng, &c).unwrap();
            flow.score(&x, &c).unwrap()
        })
        .collect();
    thresholds(lps)
}

/// Pyro's tutorial `spline_coupling(2, count_bins=16)` (linear, bound 3, hidden [20, 20]) with
/// moderate random parameters: lower spline in `[-1.5, 1.5)`, hypernetwork layers in
/// `±1.5/sqrt(fan_in)` (1.5 × torch's default init), so that the splines are far from the
/// identity yet finite. With a scaler and the 0.1 %, 1 % and 5 % log-density quantiles of 4000
/// of its own samples as thresholds.
pub(crate) fn tutorial_model(seed: u64) -> Vec<u8> {
    let shape = SplineShape::new(16, 3.0, Order::Linear).unwrap();
    let mut rng = Pcg32::seed_from_u64(seed);
    let lower: Vec<f32> = uniforms(&mut rng, Spline::param_count(1, &shape), 1.5).collect();
    let mut nn = Vec::new();
    let sizes = [1, 20, 20, shape.params_per_dim()];
    for w in sizes.windows(2) {
        let a = 1.5 / (w[0] as f32).sqrt();
        nn.extend(uniforms(&mut rng, w[0] * w[1] + w[1], a));
    }
    let mut b = ModelBuilder::plain(2);
    b.coupling(1, 1, &shape, 0, &[20, 20], &lower, &nn)
        .columns(&["accel_x", "accel_y"])
        .scaler(&[0.25, -0.5], &[0.8, 1.6]);
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    b.thresholds(&sampled_thresholds(&flow, seed));
    b.encode().unwrap()
}

/// A conditional flow on `R²` with a 2-value context: a conditional spline (linear, 8 bins,
/// hidden [12]), a permutation and a conditional coupling (quadratic, 8 bins, hidden
/// [10, 10]); scaler and thresholds (from samples at the workload's contexts).
pub(crate) fn conditional_model(seed: u64) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(seed);
    let lin = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let quad = SplineShape::new(8, 2.5, Order::Quadratic).unwrap();
    let cs = hypernet(&mut rng, 2, &[12], 2 * lin.params_per_dim(), 2.0);
    let lower = params(&mut rng, Spline::param_count(1, &quad), 1.5);
    let nn = hypernet(&mut rng, 1 + 2, &[10, 10], quad.params_per_dim(), 2.0);
    let mut b = ModelBuilder::conditional(2, 2);
    b.conditional_spline(2, &lin, 2, &[12], &cs)
        .permute(&[1, 0])
        .coupling(1, 1, &quad, 2, &[10, 10], &lower, &nn)
        .columns(&["x", "y", "temp", "load"])
        .scaler(&[1.0, -1.0], &[2.0, 0.5]);
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: ConditionalFlow<2, 2, 3, 12, 8> = model.conditional_flow().unwrap();
    b.thresholds(&sampled_thresholds(&flow, seed));
    b.encode().unwrap()
}

/// [`joint_layers`] with columns, a scaler, and thresholds without the 1 % quantile (the
/// firmware then uses the lowest).
pub(crate) fn joint_model(seed: u64) -> Vec<u8> {
    let mut b = joint_layers(&mut Pcg32::seed_from_u64(seed));
    b.columns(&["a", "b", "c"])
        .scaler(&[0.0, 10.0, -5.0], &[1.0, 4.0, 0.25])
        .thresholds(&[(0.05, -6.0), (0.2, -4.5)]);
    b.encode().unwrap()
}

/// A 6-D plain flow shaped like the IMU anomaly detector to come (accelerometer and gyroscope,
/// 3 axes each): two couplings (3 | 3, linear, 8 bins, hidden [24]) around a permutation, a
/// scaler in sensor units, and thresholds from 4000 of its own samples.
pub(crate) fn imu_model(seed: u64) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(seed);
    let l8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let mut b = ModelBuilder::plain(6);
    for k in 0..2 {
        let lower = params(&mut rng, Spline::param_count(3, &l8), 1.5);
        let nn = hypernet(&mut rng, 3, &[24], 3 * l8.params_per_dim(), 2.0);
        b.coupling(3, 3, &l8, 0, &[24], &lower, &nn);
        if k == 0 {
            b.permute(&[3, 4, 5, 0, 1, 2]);
        }
    }
    b.columns(&["ax", "ay", "az", "gx", "gy", "gz"]).scaler(
        &[0.0, 0.0, 9.81, 0.0, 0.0, 0.0],
        &[0.5, 0.5, 0.5, 0.2, 0.2, 0.2],
    );
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<6, 3, 24, 8> = model.flow().unwrap();
    b.thresholds(&sampled_thresholds(&flow, seed));
    b.encode().unwrap()
}

/// A `FLOW_STREAM` file for the IMU model: 60 rows in sensor units (samples of the flow, every
/// 8th with a spike on one axis), plus a row with a NaN and one with an infinity.
pub(crate) fn imu_stream(flow: &Flow<6, 3, 24, 8>, model: &Model<'_>) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(0x57EA);
    let mut rows: Vec<[f32; 6]> = (0..60)
        .map(|i| {
            let mut x: [f32; 6] = flow.sample(&mut rng).unwrap();
            if i % 8 == 7 {
                x[i % 6] += 7.0;
            }
            model.unstandardize(&x)
        })
        .collect();
    rows.insert(9, [0.1, 0.2, f32::NAN, 0.0, 0.0, 0.0]);
    rows.insert(30, [0.0, 0.0, 9.8, f32::INFINITY, 0.0, 0.0]);
    rows.iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The test's own directory for its model files, builds and reports.
pub(crate) fn work_dir() -> PathBuf {
    flow_tests::firmware::work_dir(env!("CARGO_TARGET_TMPDIR"), "firmware")
}

/// Writes `bytes` to `work_dir()/name` unless the file already holds them (an unchanged file
/// keeps its mtime, so cargo does not rebuild the firmware for it).
pub(crate) fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    flow_tests::firmware::write_file(&work_dir(), name, bytes)
}

/// Pyro's own trained tutorial flows, imported from their state dicts, run on the device with
/// the host's numbers: (b) `spline_coupling(2, 16)` on the M4F and (c) the joint
/// `spline(1) + conditional_spline(1)` on the M0.
pub(crate) fn pyro_trained(file: &str, description: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pyro-trained")
        .join(file);
    let sd = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flow_train::pyro::import(&sd, description).unwrap()
}

pub(crate) const PYRO_A: &str = r#"{"dim": 2, "layers": [{"type": "spline", "count_bins": 16}]}"#;
pub(crate) const PYRO_C: &str = r#"{"flow": "joint", "dim": 2, "context_dim": 1, "marginal_layers": 1,
    "layers": [{"type": "spline", "prefix": "0.", "count_bins": 8},
               {"type": "conditional_spline", "prefix": "1.", "count_bins": 8}]}"#;
