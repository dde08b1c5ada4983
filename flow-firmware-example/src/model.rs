//! The model seam: builds the flow from the embedded blob.
//!
//! For now the blob is a raw parameter block for Pyro's tutorial architecture
//! `spline_coupling(2, count_bins=16)` (linear order, bound 3), little-endian `f32`:
//!
//! ```text
//! lower Spline(1, K=16):        1 × (4·16 − 1)            =   63 values
//! DenseNN(1 → [20, 20] → 63):   (1·20+20) + (20·20+20) + (20·63+63) = 1783 values
//! ```
//!
//! 1846 values, 7384 bytes, no header. This module is the only place that knows the layout; it
//! is to be replaced by flow-core's validating model-file loader. The host test
//! (`tests/tests/firmware.rs`) compiles this same file to build the reference flow.

use flow_core::{DenseNN, Error, Flow, Layer, Order, Spline, SplineCoupling, SplineShape, Weights};

/// Compile-time capacities of the firmware's flow.
///
/// - `L = 4` layers: the tutorial model has one coupling; 4 leaves room for the stacked
///   coupling + permute models the real loader will bring, at ~90 bytes of `Flow` per slot.
/// - `H = 20`: Pyro's default hidden width for `spline_coupling(2)` is `[10·2, 10·2]`. The
///   per-call scratch is `(2H + 2K)·4 = 288` bytes; a wider model is refused at load time
///   with `Error::Capacity`, never at evaluation time.
/// - `K = 16` bins: the tutorial's `count_bins`.
pub type Model = Flow<'static, 2, 4, 20, 16>;

/// Spline bins.
pub const BINS: usize = 16;
/// Spline box `[-B, B]`.
pub const BOUND: f32 = 3.0;
/// Hidden widths of the hypernetwork.
pub const HIDDEN: [usize; 2] = [20, 20];

/// Parameters of the lower spline (1 dimension).
pub const LOWER_PARAMS: usize = 4 * BINS - 1;
/// Parameters of the hypernetwork `1 → [20, 20] → 63`.
pub const NN_PARAMS: usize =
    (HIDDEN[0] + HIDDEN[0]) + (HIDDEN[0] * HIDDEN[1] + HIDDEN[1]) + (HIDDEN[1] + 1) * LOWER_PARAMS;
/// Values in the blob.
pub const TOTAL_PARAMS: usize = LOWER_PARAMS + NN_PARAMS;

/// Builds the flow; every check is flow-core's (counts, finiteness, shapes, capacities).
pub fn load(blob: &'static [u8]) -> Result<Model, Error> {
    let count = Error::ParameterCount {
        expected: TOTAL_PARAMS,
        found: blob.len() / 4,
    };
    let w = Weights::new(blob).ok_or(count)?;
    if w.len() != TOTAL_PARAMS {
        return Err(count);
    }
    let (lower_w, nn_w) = w.split(LOWER_PARAMS).ok_or(count)?;
    let shape = SplineShape::new(BINS, BOUND, Order::Linear)?;
    let lower = Spline::new(1, shape, lower_w)?;
    let nn = DenseNN::new(1, &HIDDEN, shape.params_per_dim(), nn_w)?;
    let coupling = SplineCoupling::new(lower, 1, shape, nn, 0)?;
    Flow::new(&[Layer::Coupling(coupling)])
}
