//! Scratch memory for one evaluation, sized by compile-time capacities.

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
