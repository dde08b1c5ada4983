//! Random and tutorial-shaped model files for the tests.

use flow_core::model::ModelBuilder;
use flow_core::nn::dense_param_count;
use flow_core::{Order, Spline, SplineShape};
use rand_core::RngCore;

/// A uniform draw in `[lo, hi)` from 24 random bits.
pub fn uniform(rng: &mut impl RngCore, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * ((rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32)
}

/// `n` parameters uniform in `[-scale, scale)`.
pub fn params(rng: &mut impl RngCore, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| uniform(rng, -scale, scale)).collect()
}

/// Hypernetwork weights in torch's default range `±1/sqrt(fan_in)`, with the last layer's
/// outputs spread a little wider (`out_scale`) so the splines are far from the identity.
pub fn hypernet(
    rng: &mut impl RngCore,
    input: usize,
    hidden: &[usize],
    output: usize,
    out_scale: f32,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(dense_param_count(input, hidden, output));
    let mut fan_in = input;
    for (i, &h) in hidden.iter().chain(std::iter::once(&output)).enumerate() {
        let s = if i == hidden.len() { out_scale } else { 1.0 } / (fan_in as f32).sqrt();
        v.extend(params(rng, fan_in * h + h, s));
        fan_in = h;
    }
    v
}

/// Pyro's tutorial `spline_coupling(2, count_bins=16)` (linear, bound 3, hidden [20, 20]) with
/// random parameters: 1846 of them, as in the tutorial.
pub fn tutorial_coupling(rng: &mut impl RngCore) -> Vec<u8> {
    let shape = SplineShape::new(16, 3.0, Order::Linear).unwrap();
    let lower = params(rng, Spline::param_count(1, &shape), 2.0);
    let nn = hypernet(rng, 1, &[20, 20], shape.params_per_dim(), 2.0);
    let mut b = ModelBuilder::plain(2);
    b.coupling(1, 1, &shape, 0, &[20, 20], &lower, &nn)
        .columns(&["x1", "x2"])
        .scaler(&[0.1, -0.2], &[0.5, 0.6])
        .thresholds(&[(0.001, -9.5), (0.01, -7.25), (0.05, -5.0)]);
    b.encode().unwrap()
}

/// The columns of one reading of `data/imu/imu_train.csv`.
pub const IMU_COLUMNS: [&str; 6] = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"];

/// A windowed model (`W = 8` readings, recordings of 100 rows) of the architecture `flow-train
/// fit --window 8` plans for the 6-D IMU readings, with random parameters of small magnitude:
/// the marginal `p(x₁)` an affine and 4 couplings (split 3, quadratic, 3 bins, bound 3.5,
/// hidden [8, 8]) with permutations between; the conditional `p(x₂ | x₁)` a conditional spline
/// (quadratic, 4 bins, bound 3.5, hidden [16, 16]) and 3 conditional couplings (4 bins, hidden
/// [16, 16]) with permutations between. No scaler and no thresholds (the caller adds them).
pub fn imu_window8(rng: &mut impl RngCore) -> ModelBuilder {
    let q3 = SplineShape::new(3, 3.5, Order::Quadratic).unwrap();
    let q4 = SplineShape::new(4, 3.5, Order::Quadratic).unwrap();
    let swap = [3, 4, 5, 0, 1, 2];
    let mut b = ModelBuilder::joint(12, 6);
    let loc = params(rng, 6, 0.1);
    let scale: Vec<f32> = params(rng, 6, 0.1).iter().map(|v| 1.0 + v).collect();
    b.affine(&loc, &scale);
    for k in 0..4 {
        if k > 0 {
            b.permute(&swap);
        }
        let lower = params(rng, Spline::param_count(3, &q3), 0.3);
        let nn = hypernet(rng, 3, &[8, 8], 3 * q3.params_per_dim(), 0.3);
        b.coupling(3, 3, &q3, 0, &[8, 8], &lower, &nn);
    }
    b.end_marginal();
    let cs = hypernet(rng, 6, &[16, 16], 6 * q4.params_per_dim(), 0.3);
    b.conditional_spline(6, &q4, 6, &[16, 16], &cs);
    for _ in 0..3 {
        b.permute(&swap);
        let lower = params(rng, Spline::param_count(3, &q4), 0.3);
        let nn = hypernet(rng, 3 + 6, &[16, 16], 3 * q4.params_per_dim(), 0.3);
        b.coupling(3, 3, &q4, 6, &[16, 16], &lower, &nn);
    }
    b.columns(&IMU_COLUMNS).window(8, Some(100), None);
    b
}

/// A joint `p(x₁)·p(x₂ | x₁)` on `R³`, `x₁ ∈ R`, with random parameters: the marginal an affine
/// and a quadratic spline (6 bins), the conditional a conditional spline (8 bins, hidden
/// `[8, 8]`), a permutation and a conditional coupling (8 bins, hidden `[10]`). The layers only:
/// the caller adds the metadata and encodes.
pub fn joint_layers(rng: &mut impl RngCore) -> ModelBuilder {
    let q6 = SplineShape::new(6, 3.0, Order::Quadratic).unwrap();
    let l8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let marg = params(rng, Spline::param_count(1, &q6), 1.5);
    let cs = hypernet(rng, 1, &[8, 8], 2 * l8.params_per_dim(), 2.0);
    let lower = params(rng, Spline::param_count(1, &l8), 1.5);
    let nn = hypernet(rng, 1 + 1, &[10], l8.params_per_dim(), 2.0);
    let mut b = ModelBuilder::joint(3, 1);
    b.affine(&[0.2], &[1.3])
        .spline(1, &q6, &marg)
        .end_marginal()
        .conditional_spline(2, &l8, 1, &[8, 8], &cs)
        .permute(&[1, 0])
        .coupling(1, 1, &l8, 1, &[10], &lower, &nn);
    b
}
