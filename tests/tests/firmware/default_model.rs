//! The checked-in default model.

use flow_core::{Flow, Model};
use flow_tests::firmware::{example_dir, M4F};
use flow_tests::geometry::Geometry;
use flow_tests::qemu::MPS2_AN386;

use crate::checks::*;
use crate::results::*;

// --- the checked-in default model ------------------------------------------------------------------

/// The firmware's default model is a trained one: Pyro's tutorial architecture fitted on circles
/// by `flow-train fit` (the command is in flow-device-bench/README.md), with its scaler and
/// anomaly thresholds. It runs on the M4F with the host's numbers and flags the stream's
/// shifted points.
#[test]
fn default_model_is_the_trained_circles_model() {
    let path = example_dir().join("models/circles_coupling.nflw");
    let bytes = std::fs::read(&path).expect("read models/circles_coupling.nflw");
    let model = Model::parse(&bytes).expect("the default model parses");
    let g = Geometry::of(&model).unwrap();
    assert_eq!(geometry_line(&g), "plain 2 0 0 1 20 16");
    assert!(
        model.scaler(1).is_some(),
        "the trained model stores its scaler"
    );
    assert!(
        model.threshold(0.01).is_some(),
        "and its 1 % anomaly threshold"
    );
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    let (n, m) = host.flagged.unwrap();
    assert!(0 < n && n < m, "the stream flags {n} of {m}");
    check(Case::new(
        "trained-circles-m4f",
        M4F,
        &[MPS2_AN386],
        path,
        g,
        bytes.len(),
        host,
    ));
}
