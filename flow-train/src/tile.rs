//! Batch tiles: the engine processes points `T` at a time, every per-point quantity stored as a
//! row of `T` values ("batch-innermost"), so each loop over points is a straight vector loop.

use crate::float::Float;

/// Points per tile.
pub(crate) const T: usize = 128;

/// One quantity for the `T` points of a tile.
pub(crate) type Row<F> = [F; T];

/// Lanes of the gradient accumulators that sum over points (see [`crate::dense`]).
pub(crate) const L: usize = 16;

/// A zeroed row.
#[inline(always)]
pub(crate) fn zero<F: Float>() -> Row<F> {
    [F::ZERO; T]
}

/// `n` zeroed rows.
pub(crate) fn rows<F: Float>(n: usize) -> Vec<Row<F>> {
    vec![zero(); n]
}

/// Sum of a lane accumulator.
#[inline]
pub(crate) fn lane_sum<F: Float>(a: &[F; L]) -> F {
    let mut s = F::ZERO;
    for &v in a {
        s += v;
    }
    s
}
