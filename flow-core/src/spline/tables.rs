//! Precomputed knot tables: the values [`knots`](super::knots) computes, stored per dimension
//! as `f32`, read in place.

use super::knots::{bin_lambda, knot_derivative, search_knots, width_scale, Axis, Knots};
use super::params::{BinParams, SplineShape, MIN_DERIVATIVE};
use crate::real::Real;

/// Entries per dimension of a precomputed knot table: the interior knots `x_1 … x_{K-1}`,
/// `y_1 … y_{K-1}`, the interior derivatives `δ_1 … δ_{K-1}` and, for the linear order,
/// `λ_0 … λ_{K-1}`: `4K - 3` (linear) or `3K - 3` (quadratic) `f32` values.
pub(crate) fn table_len_per_dim(shape: &SplineShape) -> usize {
    3 * (shape.bins - 1) + shape.lambdas_per_dim()
}

/// Calls `f` with each entry of one dimension's knot table (see [`table_len_per_dim`]),
/// computed by the same code as the lazy evaluation; stops early when `f` returns `false`.
/// `xs` and `ys` are scratch of `K` values. Returns `false` if stopped or short of scratch.
pub(crate) fn dim_table<P: BinParams<f32>>(
    shape: &SplineShape,
    p: &P,
    (xs, ys): (&mut [f32], &mut [f32]),
    f: &mut impl FnMut(f32) -> bool,
) -> bool {
    let k_bins = shape.bins;
    let (Some(xs), Some(ys)) = (xs.get_mut(..k_bins), ys.get_mut(..k_bins)) else {
        return false;
    };
    p.widths(xs);
    p.heights(ys);
    let bound = shape.bound;
    let scale = width_scale(k_bins);
    let ax = Axis::new(xs, bound, scale);
    let ay = Axis::new(ys, bound, scale);
    ax.inner_knots().all(&mut *f)
        && ay.inner_knots().all(&mut *f)
        && (1..k_bins).all(|i| f(knot_derivative(p, i, k_bins)))
        && (0..shape.lambdas_per_dim()).all(|k| f(bin_lambda(p, k)))
}

/// `true` when the next entries of `t` are one dimension's knot table (see
/// [`table_len_per_dim`]) of a valid spline of this shape: on each axis the interior knots
/// increase strictly inside `(-B, B)`, the interior derivatives are positive and finite, and
/// the `λ`s lie in `(0, 1)` — what the evaluation needs for every bin to be a monotone
/// rational function (NaN fails every test; so does a table that ends early). What
/// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables) checks instead of recomputing
/// the table.
pub(crate) fn dim_table_well_formed(
    shape: &SplineShape,
    t: &mut impl Iterator<Item = f32>,
) -> bool {
    let inner = shape.bins - 1;
    let bound = shape.bound;
    // Each part: its length, the open interval its entries lie in, and whether each entry
    // must lie above the one before (a knot axis starts above `-B`).
    let parts = [
        (inner, -bound, bound, true),
        (inner, -bound, bound, true),
        (inner, 0.0, f32::INFINITY, false),
        (shape.lambdas_per_dim(), 0.0, 1.0, false),
    ];
    parts.into_iter().all(|(n, mut lo, hi, increasing)| {
        (0..n).all(|_| {
            let Some(v) = t.next() else {
                return false;
            };
            let inside = v > lo && v < hi;
            if increasing {
                lo = v;
            }
            inside
        })
    })
}

/// One dimension's precomputed knot table, `f32` values read in place (see
/// [`table_len_per_dim`]), split into its parts; each entry is the bytes of a little-endian
/// `f32`.
pub(super) struct TableDim<'t> {
    /// The interior knots `x_1 … x_{K-1}` and `y_1 … y_{K-1}`.
    pub(super) knots: [&'t [[u8; 4]]; 2],
    /// The interior derivatives `δ_1 … δ_{K-1}`.
    pub(super) derivatives: &'t [[u8; 4]],
    /// `λ_0 … λ_{K-1}` (linear order; empty otherwise).
    pub(super) lambdas: &'t [[u8; 4]],
    pub(super) bins: usize,
    pub(super) bound: f32,
}

impl<'t> TableDim<'t> {
    /// Splits one dimension's table `w` of bins `bins` into its parts.
    #[inline]
    pub(super) fn split(w: &'t [[u8; 4]], bins: usize, bound: f32) -> Self {
        let inner = bins - 1;
        let (xk, w) = w.split_at_checked(inner).unwrap_or((w, &[]));
        let (yk, w) = w.split_at_checked(inner).unwrap_or((w, &[]));
        let (derivatives, lambdas) = w.split_at_checked(inner).unwrap_or((w, &[]));
        Self {
            knots: [xk, yk],
            derivatives,
            lambdas,
            bins,
            bound,
        }
    }

    /// Knot `i in 0..=K` of the `y` axis (`on_y`) or the `x` axis.
    #[inline]
    fn knot(&self, on_y: bool, i: usize) -> f32 {
        if i == 0 {
            -self.bound
        } else {
            entry_or(self.knots[on_y as usize], i - 1, self.bound)
        }
    }
}

/// Entry `i` of `w`, or `or` past the end.
#[inline]
fn entry_or(w: &[[u8; 4]], i: usize, or: f32) -> f32 {
    w.get(i).map_or(or, |b| f32::from_le_bytes(*b))
}

impl<T: Real> Knots<T> for TableDim<'_> {
    #[inline]
    fn search(&self, on_y: bool, v: T) -> (usize, T, T) {
        // The interior knots only: past them, the search ends in the last bin at `x_K = B`.
        let knots = self.knots[on_y as usize].iter();
        let knots = knots.map(|b| T::from_f32(f32::from_le_bytes(*b)));
        search_knots(v, T::from_f32(self.bound), self.bins, knots)
    }
    #[inline]
    fn edges(&self, on_y: bool, k: usize) -> (T, T) {
        (
            T::from_f32(self.knot(on_y, k)),
            T::from_f32(self.knot(on_y, k + 1)),
        )
    }
    #[inline]
    fn derivatives(&self, k: usize) -> (T, T) {
        // `δ_0` and `δ_K` are the end values; the table holds the ones between.
        let end = T::from_f64(1.0 - MIN_DERIVATIVE);
        let d = |i: usize| match i.checked_sub(1).and_then(|i| self.derivatives.get(i)) {
            Some(b) => T::from_f32(f32::from_le_bytes(*b)),
            None => end,
        };
        (d(k), d(k + 1))
    }
    #[inline]
    fn lambda(&self, k: usize) -> T {
        T::from_f32(entry_or(self.lambdas, k, 0.0))
    }
}
