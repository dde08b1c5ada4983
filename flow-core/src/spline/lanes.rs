//! One spline dimension on a block of points at once (feature `wide`, host tools): the bin
//! search, the bin's knots, derivatives and `λ`, and the bin's formulas, each lane of the block
//! one point, with no branch on a lane's values, so that the loops over the lanes compile to
//! vector instructions.
//!
//! Each lane computes what [`eval_dim`](super::eval::eval_dim) computes for its point, with the
//! same operations in the same order: the search as a count over the interior knots that
//! stops where the single-point search returns; the bin's edges and parameters picked from
//! every knot by comparing indices; the bin formulas ([`Bin`]'s, always inlined) with
//! [`FlatOps`], whose functions return the device's bits. A lane whose result is not finite
//! (where the single-point evaluation may move to the next bin, or a NaN may differ in
//! payload) is reported back, and the caller evaluates that point on the single-point path.

use super::bin::{Bin, BinOps};
use super::params::{Direction, Order, SplineShape, MIN_DERIVATIVE, MIN_LAMBDA, SEARCH_EPS};
use crate::flat::{logf_flat, sigmoid_flat, softplus_flat, sqrt_flat, Lanes, LANES};

/// The bin formulas' operations on lanes: [`crate::flat`]'s functions, and a `pick` that
/// computes both sides and selects (the closures are pure, so the value is the same).
struct FlatOps;

impl BinOps<f32> for FlatOps {
    #[inline(always)]
    fn lit(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn ln(v: f32) -> f32 {
        logf_flat(v)
    }
    #[inline(always)]
    fn sqrt(v: f32) -> f32 {
        sqrt_flat(v)
    }
    #[inline(always)]
    fn abs(v: f32) -> f32 {
        f32::from_bits(v.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    fn pick<R: Copy>(c: bool, a: impl FnOnce() -> R, b: impl FnOnce() -> R) -> R {
        let (a, b) = (a(), b());
        if c {
            a
        } else {
            b
        }
    }
}

/// Bin indices, one per lane.
pub(crate) type Bins = [u32; LANES];

/// Where a block's spline dimension gets its knots and bin parameters.
pub(crate) trait LaneSource {
    /// The interior knot `x_{j+1}` (or `y_{j+1}` when `on_y`), `j in 0..K-1`, of every lane.
    fn inner(&self, on_y: bool, j: usize) -> Lanes;
    /// The number of interior knots, `K - 1`.
    fn len(&self) -> usize;
    /// Each lane's `(δ_k, δ_{k+1}, λ_k)` for its bin `k` (`λ` 0 for the quadratic order),
    /// each computed as the single-point evaluation computes it.
    fn bin_params(&self, k: &Bins, shape: &SplineShape) -> [Lanes; 3];
}

/// `rows[j][r]` for the `j` with `j + shift == k[r]`, else `or` (by comparisons, for every
/// lane at once).
#[inline(always)]
pub(crate) fn pick_row(rows: impl Iterator<Item = Lanes>, k: &Bins, shift: u32, or: f32) -> Lanes {
    let mut out = [or; LANES];
    for (j, row) in (shift..).zip(rows) {
        for r in 0..LANES {
            out[r] = if k[r] == j { row[r] } else { out[r] };
        }
    }
    out
}

/// `(δ_k, δ_{k+1})` from each lane's unconstrained interior derivatives `ud[j]` (rows
/// `0..K-1`): `1e-3 + softplus(ud[k-1])` and `1e-3 + softplus(ud[k])`, the end knots'
/// `1 - 1e-3` at `k = 0` and `k + 1 = K`.
#[inline(always)]
pub(crate) fn derivatives_from_raw(
    rows: impl Iterator<Item = Lanes> + Clone,
    k: &Bins,
    bins: u32,
) -> (Lanes, Lanes) {
    let lo = pick_row(rows.clone(), k, 1, 0.0);
    let hi = pick_row(rows, k, 0, 0.0);
    let min = MIN_DERIVATIVE as f32;
    let end = (1.0 - MIN_DERIVATIVE) as f32;
    let (mut d_k, mut d_k1) = ([0f32; LANES], [0f32; LANES]);
    for r in 0..LANES {
        let a = min + softplus_flat(lo[r]);
        let b = min + softplus_flat(hi[r]);
        d_k[r] = if k[r] == 0 { end } else { a };
        d_k1[r] = if k[r] + 1 == bins { end } else { b };
    }
    (d_k, d_k1)
}

/// `λ_k = 0.95·sigmoid(ul[k]) + 0.025` from each lane's unconstrained `ul` (rows `0..K`).
#[inline(always)]
pub(crate) fn lambda_from_raw(rows: impl Iterator<Item = Lanes>, k: &Bins) -> Lanes {
    let u = pick_row(rows, k, 0, 0.0);
    let mut out = [0f32; LANES];
    for r in 0..LANES {
        out[r] = (1.0 - 2.0 * MIN_LAMBDA) as f32 * sigmoid_flat(u[r]) + MIN_LAMBDA as f32;
    }
    out
}

/// Knots `k[r]` and `k[r] + 1` of every lane on the `y` axis (`on_y`) or the `x` axis.
#[inline(always)]
fn edges<S: LaneSource>(src: &S, on_y: bool, k: &Bins, bound: f32) -> (Lanes, Lanes) {
    let (mut lo, mut hi) = ([-bound; LANES], [bound; LANES]);
    for (i, j) in (1u32..).zip(0..src.len()) {
        let x = src.inner(on_y, j);
        for r in 0..LANES {
            lo[r] = if k[r] == i { x[r] } else { lo[r] };
            hi[r] = if k[r] + 1 == i { x[r] } else { hi[r] };
        }
    }
    (lo, hi)
}

/// One spline dimension at `v` for every lane: `v[r]` becomes the output and `ld[r]` the
/// `log|J|` of lane `r` (`(v, 0)` outside the box, as [`eval`](super::eval)). Returns the
/// lanes whose result is not finite: the caller evaluates those on the single-point path.
#[inline(always)]
pub(crate) fn eval_flat<S: LaneSource>(
    shape: &SplineShape,
    src: &S,
    v: &mut Lanes,
    ld: &mut Lanes,
    dir: Direction,
) -> [bool; LANES] {
    let bound = shape.bound;
    let on_y = dir == Direction::Inverse;
    let eps = SEARCH_EPS as f32;
    // The search (`search_knots`): the count of knots below `v` up to the first one above.
    let (mut k, mut alive) = ([0u32; LANES], [1u32; LANES]);
    for j in 0..src.len() {
        let x = src.inner(on_y, j);
        for r in 0..LANES {
            alive[r] &= u32::from(v[r] >= x[r] + eps);
            k[r] += alive[r];
        }
    }
    // The bin's edges on both axes: knots `k` and `k + 1` (`∓B` at the ends); on the search
    // axis, the last knot below `v` and the first above, as the search returns them.
    let (lo, hi) = edges(src, on_y, &k, bound);
    let (o_lo, o_hi) = edges(src, !on_y, &k, bound);
    let [d_k, d_k1, lambda] = src.bin_params(&k, shape);
    let ((x_lo, x_hi), (y_lo, y_hi)) = if on_y {
        ((o_lo, o_hi), (lo, hi))
    } else {
        ((lo, hi), (o_lo, o_hi))
    };
    let mut redo = [false; LANES];
    macro_rules! lanes {
        (|$bin:ident, $lambda:ident, $x:ident| $f:expr) => {
            for r in 0..LANES {
                let $bin = Bin::from_edges((x_lo[r], x_hi[r]), (y_lo[r], y_hi[r]), d_k[r], d_k1[r]);
                let ($lambda, $x) = (lambda[r], v[r]);
                let (y, l) = $f;
                let inside = (v[r] >= -bound) & (v[r] <= bound);
                redo[r] = inside & !(y.is_finite() & l.is_finite());
                v[r] = if inside { y } else { v[r] };
                ld[r] = if inside { l } else { 0.0 };
            }
        };
    }
    match (shape.order, dir) {
        #[cfg(feature = "quadratic")]
        (Order::Quadratic, Direction::Forward) => {
            lanes!(|bin, _l, x| bin.quadratic_forward_inlined::<FlatOps>(x, true))
        }
        #[cfg(feature = "quadratic")]
        (Order::Quadratic, Direction::Inverse) => {
            lanes!(|bin, _l, x| bin.quadratic_inverse_inlined::<FlatOps>(x, true))
        }
        (_, Direction::Forward) => lanes!(|bin, l, x| bin
            .linear_inlined::<FlatOps>(l)
            .forward_inlined::<FlatOps>(x, true)),
        (_, Direction::Inverse) => lanes!(|bin, l, x| bin
            .linear_inlined::<FlatOps>(l)
            .inverse_inlined::<FlatOps>(x, true)),
    }
    redo
}

/// A block's own knots and parameters, one row per entry and one lane per point: the
/// interior knots from [`lane_inner_knots`](super::knots::lane_inner_knots) and the
/// unconstrained derivatives and `λ`s (a hypernetwork's outputs).
pub(crate) struct RowSource<'b> {
    /// The interior knots `x_1 … x_{K-1}` and `y_1 … y_{K-1}`, one row each.
    pub(crate) knots: [&'b [Lanes]; 2],
    /// `ud[0..K-1]`.
    pub(crate) derivatives: &'b [Lanes],
    /// `ul[0..K]` (linear order; empty otherwise).
    pub(crate) lambdas: &'b [Lanes],
    pub(crate) bound: f32,
}

impl LaneSource for RowSource<'_> {
    #[inline(always)]
    fn inner(&self, on_y: bool, j: usize) -> Lanes {
        self.knots[usize::from(on_y)]
            .get(j)
            .copied()
            .unwrap_or([self.bound; LANES])
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.knots[0].len()
    }
    #[inline(always)]
    fn bin_params(&self, k: &Bins, shape: &SplineShape) -> [Lanes; 3] {
        let (d_k, d_k1) =
            derivatives_from_raw(self.derivatives.iter().copied(), k, shape.bins as u32);
        let lambda = match shape.order {
            Order::Linear => lambda_from_raw(self.lambdas.iter().copied(), k),
            Order::Quadratic => [0.0; LANES],
        };
        [d_k, d_k1, lambda]
    }
}

impl LaneSource for super::tables::TableDim<'_> {
    #[inline(always)]
    fn inner(&self, on_y: bool, j: usize) -> Lanes {
        let x = self.knots[usize::from(on_y)]
            .get(j)
            .map_or(self.bound, |b| f32::from_le_bytes(*b));
        [x; LANES]
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.bins - 1
    }
    #[inline(always)]
    fn bin_params(&self, k: &Bins, _: &SplineShape) -> [Lanes; 3] {
        let end = (1.0 - MIN_DERIVATIVE) as f32;
        // The table holds `δ_1 … δ_{K-1}`; `δ_0` and `δ_K` are the end values.
        let d_k = pick_row(rows(self.derivatives), k, 1, end);
        let d_k1 = pick_row(rows(self.derivatives), k, 0, end);
        let lambda = pick_row(rows(self.lambdas), k, 0, 0.0);
        [d_k, d_k1, lambda]
    }
}

/// A table's entries, each as a row of equal lanes.
#[inline(always)]
fn rows(w: &[[u8; 4]]) -> impl Iterator<Item = Lanes> + '_ {
    w.iter().map(|b| [f32::from_le_bytes(*b); LANES])
}
