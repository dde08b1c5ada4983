//! The accuracy cost of flow-core's `micromath` feature: f32 log_prob with micromath's `exp`,
//! `ln` and `sqrt` against the exact value (flow-core in f64, which always uses libm), on the
//! tutorial coupling model at points spread over its support. Run with
//! `cargo test -p flow-tests --release --features micromath --test micromath -- --nocapture`.
#![cfg(feature = "micromath")]

use flow_core::{Flow, Model};
use flow_tests::models::{tutorial_coupling, uniform};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

#[test]
fn micromath_log_prob_error() {
    let bytes = tutorial_coupling(&mut Pcg32::seed_from_u64(42));
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<2, 4, 32, 16> = model.flow().unwrap();
    let mut rng = Pcg32::seed_from_u64(3);
    let (mut worst, mut sum, n) = (0f64, 0f64, 20_000);
    for _ in 0..n {
        let x = [uniform(&mut rng, -3.5, 3.5), uniform(&mut rng, -3.5, 3.5)];
        let fast = flow.log_prob(&x).unwrap() as f64;
        let exact = flow.log_prob(&x.map(f64::from)).unwrap();
        let err = (fast - exact).abs();
        worst = worst.max(err);
        sum += err;
    }
    println!(
        "micromath: log_prob abs error over {n} points: max {worst:.2e}, mean {:.2e} nats",
        sum / n as f64
    );
    // micromath's `exp` has a relative error of about 2.4e-3 (measured over [-20, 20]); the
    // feature uses it for `exp` only. An error ε in each softmax term moves the knots by about
    // ε·B, which moves a log-density by ε times its sensitivity to the knots: about ε on
    // average, unbounded where the spline is flat (a steep inverse). So the mean error is
    // held to 1e-2 nats (4ε) and the maximum only reported, with a loose 1 nat bound that
    // still catches a broken approximation.
    assert!(
        sum / (n as f64) < 1e-2,
        "mean micromath error {}",
        sum / n as f64
    );
    assert!(worst < 1.0, "micromath error {worst}");
}
