//! What the example scores and draws (also read by the host test, `tests/tests/firmware/`,
//! which computes the same numbers with flow-core and compares them with the printed ones).

/// Sensor readings in the model's raw units (a reading of `D` values takes value `j` from
/// column `j % 2`): around the circles the tutorial model was trained on, and a few far off.
pub const READINGS: [[f32; 2]; 8] = [
    [0.5, 0.0],
    [0.0, -1.0],
    [-0.7, 0.7],
    [0.25, 0.45],
    [0.0, 0.0],
    [1.5, 1.5],
    [-2.0, 0.3],
    [25.0, -40.0],
];

/// The stored anomaly threshold used: the 1 % quantile of the training data's `log_prob`.
pub const QUANTILE: f32 = 0.01;
/// Seed of the sample generator (PCG-64, `Pcg64::seed_from_u64`), as `flow-train sample --seed`.
pub const SAMPLE_SEED: u64 = 0;
/// Samples drawn.
pub const SAMPLES: usize = 4;
