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
