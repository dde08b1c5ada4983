//! What the firmware computes, shared with the host test (`tests/tests/firmware.rs` compiles
//! this file too), so device and host run the same inputs through the same code.

use crate::model::Model;
use flow_core::Error;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

/// Embedded points scored with `log_prob`: inside the box `[-3, 3]²`, on its edges and
/// corners, just inside and outside them, and far in the tails.
pub const POINTS: [[f32; 2]; 20] = [
    // inside the box
    [0.0, 0.0],
    [0.5, -0.25],
    [-1.2, 2.1],
    [2.5, -2.9],
    [-0.01, 0.7],
    [1.75, 1.75],
    // on the edges and corners of the box
    [3.0, 0.0],
    [-3.0, 1.0],
    [0.4, 3.0],
    [1.0, -3.0],
    [3.0, -3.0],
    [-3.0, -3.0],
    // just inside and just outside
    [2.999_999, -2.999_999],
    [3.000_001, 0.5],
    [-0.5, -3.000_001],
    // tails: one or both coordinates outside the box, some very far
    [5.0, 0.0],
    [0.0, -7.5],
    [-12.0, 40.0],
    [1.0e3, -1.0e3],
    [-1.0e6, 2.0],
];

/// How many of `POINTS` (the first ones) lie strictly inside the box; the instruction count
/// per `log_prob` is measured on these (the tails are cheaper: identity outside the box).
pub const INSIDE_POINTS: usize = 6;

/// Seed of the `Pcg32` the samples are drawn from.
pub const SAMPLE_SEED: u64 = 0x5EED_F10E;
/// Number of samples printed.
pub const N_SAMPLES: usize = 16;

/// Seed of the anomaly-scoring stream.
pub const STREAM_SEED: u64 = 0xA11_0E1;
/// Length of the anomaly-scoring stream.
pub const STREAM_LEN: usize = 48;
/// Every `OUTLIER_EVERY`-th point of the stream is pushed off the model's mass.
pub const OUTLIER_EVERY: usize = 6;
/// The shift applied to an outlier.
pub const OUTLIER_SHIFT: [f32; 2] = [4.5, -4.5];
/// A point whose `log_prob` is below this is flagged. A constant for now; a trained model will
/// bring its own (e.g. a low quantile of its training log-likelihoods).
pub const LOG_PROB_THRESHOLD: f32 = -7.0;

/// The random generator of the samples.
pub fn sample_rng() -> Pcg32 {
    Pcg32::seed_from_u64(SAMPLE_SEED)
}

/// The anomaly-scoring stream: samples of the model itself (inliers), every
/// `OUTLIER_EVERY`-th shifted by `OUTLIER_SHIFT` (outliers). Stands in for sensor readings.
pub struct Stream {
    rng: Pcg32,
    i: usize,
}

impl Stream {
    /// The stream from its start.
    pub fn new() -> Self {
        Self {
            rng: Pcg32::seed_from_u64(STREAM_SEED),
            i: 0,
        }
    }

    /// The next point, or `None` after `STREAM_LEN` points.
    pub fn next_point(&mut self, flow: &Model) -> Option<Result<[f32; 2], Error>> {
        if self.i >= STREAM_LEN {
            return None;
        }
        let outlier = self.i % OUTLIER_EVERY == OUTLIER_EVERY - 1;
        self.i += 1;
        Some(flow.sample::<f32, _>(&mut self.rng).map(|x| {
            if outlier {
                [x[0] + OUTLIER_SHIFT[0], x[1] + OUTLIER_SHIFT[1]]
            } else {
                x
            }
        }))
    }
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

/// `true` when a point with this `log_prob` is flagged as anomalous.
pub fn is_anomalous(log_prob: f32) -> bool {
    // NaN is flagged too (flow-core never returns it as a value).
    log_prob.is_nan() || log_prob < LOG_PROB_THRESHOLD
}
