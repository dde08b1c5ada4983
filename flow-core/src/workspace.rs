//! Scratch memory for one evaluation, sized by compile-time capacities.

#[cfg(feature = "wide")]
use crate::flat::{Lanes, LANES};
use crate::real::Real;

/// Stack scratch for evaluating a flow: two hidden-activation buffers of `H` values and two
/// knot buffers of `K` values.
///
/// `H` bounds the widest hidden layer of any hypernetwork, `K` the bin count of any spline.
/// [`Flow`](crate::Flow) and friends make one per call; use it directly to call single layers.
#[derive(Clone, Debug)]
pub struct Workspace<T, const H: usize, const K: usize> {
    h0: [T; H],
    h1: [T; H],
    xs: [T; K],
    ys: [T; K],
}

impl<T: Real, const H: usize, const K: usize> Workspace<T, H, K> {
    const CAPACITY_OK: () = assert!(K >= 2, "a spline needs at least 2 bins of scratch");

    /// A zeroed workspace.
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        Self {
            h0: [T::ZERO; H],
            h1: [T::ZERO; H],
            xs: [T::ZERO; K],
            ys: [T::ZERO; K],
        }
    }

    /// The buffers as slices, for the layer code (which is not generic over `H` and `K`).
    pub(crate) fn scratch(&mut self) -> Scratch<'_, T> {
        Scratch {
            h0: &mut self.h0,
            h1: &mut self.h1,
            xs: &mut self.xs,
            ys: &mut self.ys,
        }
    }
}

impl<T: Real, const H: usize, const K: usize> Default for Workspace<T, H, K> {
    fn default() -> Self {
        Self::new()
    }
}

/// Borrowed scratch buffers.
pub(crate) struct Scratch<'w, T> {
    pub(crate) h0: &'w mut [T],
    pub(crate) h1: &'w mut [T],
    pub(crate) xs: &'w mut [T],
    pub(crate) ys: &'w mut [T],
}

impl<T> Scratch<'_, T> {
    /// Reborrows for a shorter lifetime.
    pub(crate) fn reborrow(&mut self) -> Scratch<'_, T> {
        Scratch {
            h0: self.h0,
            h1: self.h1,
            xs: self.xs,
            ys: self.ys,
        }
    }
}

/// Scratch for evaluating a block of points together (feature `wide`; see
/// [`Flow::log_prob_many`](crate::Flow::log_prob_many)): two hidden-activation buffers of `H`
/// rows and four parameter buffers of `K` rows, each row one value of every point of the
/// block. About `(2H + 4K) × 64` bytes: a host's, not a device's.
#[cfg(feature = "wide")]
#[derive(Clone, Debug)]
pub(crate) struct BlockWorkspace<const H: usize, const K: usize> {
    h0: [Lanes; H],
    h1: [Lanes; H],
    rows: [[Lanes; K]; 4],
}

#[cfg(feature = "wide")]
impl<const H: usize, const K: usize> BlockWorkspace<H, K> {
    /// A zeroed workspace.
    pub(crate) fn new() -> Self {
        Self {
            h0: [[0.0; LANES]; H],
            h1: [[0.0; LANES]; H],
            rows: [[[0.0; LANES]; K]; 4],
        }
    }

    /// The buffers as slices.
    pub(crate) fn scratch(&mut self) -> LaneScratch<'_> {
        let [w, h, d, l] = &mut self.rows;
        LaneScratch {
            h0: &mut self.h0,
            h1: &mut self.h1,
            rows: [w, h, d, l],
        }
    }
}

/// Borrowed block scratch (see [`BlockWorkspace`]).
#[cfg(feature = "wide")]
pub(crate) struct LaneScratch<'w> {
    pub(crate) h0: &'w mut [Lanes],
    pub(crate) h1: &'w mut [Lanes],
    /// A spline dimension's widths, heights, derivatives and `λ`s.
    pub(crate) rows: [&'w mut [Lanes]; 4],
}
