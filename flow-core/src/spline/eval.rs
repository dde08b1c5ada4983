//! One point through one spline dimension: the bin search, then the bin's formulas.

use super::bin::{Bin, RealOps};
#[cfg(feature = "wide")]
use super::knots::{lane_inner_knots, LaneKnots, LaneParams};
use super::knots::{width_scale, Axis, Knots, Lazy};
#[cfg(feature = "wide")]
use super::lanes::{eval_flat, RowSource};
use super::params::{BinParams, DimParams, Direction, Order, ParamVector, SplineShape};
use crate::error::{Capacity, Error};
#[cfg(feature = "wide")]
use crate::flat::{Lanes, LANES};
use crate::real::Real;

/// Evaluates one spline dimension at `v`, returning `(output, log|J|)`.
///
/// `Forward` gives `(y, log|dy/dx|)`, `Inverse` gives `(x, log|dx/dy|)`. With `want_log_det`
/// false the log-determinant is not computed and returned as 0. `xs` and `ys` are scratch for
/// the knots and must each hold `K` values; otherwise `Error::Capacity` is returned. NaN inputs
/// lie outside the box and are returned unchanged.
pub fn eval<T: Real, P: BinParams<T>>(
    shape: &SplineShape,
    p: &P,
    v: T,
    dir: Direction,
    want_log_det: bool,
    xs: &mut [T],
    ys: &mut [T],
) -> Result<(T, T), Error> {
    let bound = T::from_f32(shape.bound);
    if !(v >= -bound && v <= bound) {
        return Ok((v, T::ZERO));
    }
    let k_bins = shape.bins;
    let cap = Error::Capacity {
        what: Capacity::Bins,
        needed: k_bins,
        limit: xs.len().min(ys.len()),
    };
    let xs = xs.get_mut(..k_bins).ok_or(cap)?;
    let ys = ys.get_mut(..k_bins).ok_or(cap)?;
    p.widths(xs);
    p.heights(ys);
    let scale = width_scale(k_bins);
    let src = Lazy {
        ax: Axis::new(xs, bound, scale),
        ay: Axis::new(ys, bound, scale),
        p,
        bins: k_bins,
    };
    Ok(eval_dim(shape, &src, v, dir, want_log_det))
}

/// [`eval`] once the knots are at hand (`v` inside the box).
#[inline]
pub(super) fn eval_dim<T: Real, S: Knots<T>>(
    shape: &SplineShape,
    src: &S,
    v: T,
    dir: Direction,
    want_log_det: bool,
) -> (T, T) {
    let k_bins = shape.bins;
    let on_y = dir == Direction::Inverse;
    let (k, s_lo, s_hi) = src.search(on_y, v);
    // The bin's parameters are fetched here rather than inside `eval_bin`: a hypernetwork
    // computes them, and its frame then does not sit on top of `eval_bin`'s.
    let params = |k: usize| {
        let (d_k, d_k1) = src.derivatives(k);
        let lambda = match shape.order {
            Order::Linear => src.lambda(k),
            Order::Quadratic => T::ZERO,
        };
        (d_k, d_k1, lambda)
    };
    let r = eval_bin(
        shape,
        params(k),
        v,
        dir,
        want_log_det,
        (s_lo, s_hi),
        src.edges(!on_y, k),
    );
    // Inside the 1e-6 window above an interior knot the search picks the bin to the left and
    // extrapolates it past its end, as Pyro does. Where that extrapolation breaks down (the
    // rational function never reaches `v`: a log of a non-positive number, or a discriminant
    // lost to rounding), Pyro returns NaN; here the point is evaluated in the bin it lies in
    // instead. Wherever Pyro's value is finite this changes nothing.
    let broken = !(r.0.is_finite() && r.1.is_finite());
    if broken && v >= s_hi && k + 1 < k_bins {
        let k1 = k + 1;
        return eval_bin(
            shape,
            params(k1),
            v,
            dir,
            want_log_det,
            src.edges(on_y, k1),
            src.edges(!on_y, k1),
        );
    }
    r
}

/// Evaluates a bin at `v`, given its knot derivatives `δ_k`, `δ_{k+1}` and `λ_k` (0 for the
/// quadratic order), and its edges on the search axis and on the other axis.
fn eval_bin<T: Real>(
    shape: &SplineShape,
    (d_k, d_k1, lambda): (T, T, T),
    v: T,
    dir: Direction,
    want_log_det: bool,
    (s_lo, s_hi): (T, T),
    (o_lo, o_hi): (T, T),
) -> (T, T) {
    let ((x_k, x_k1), (y_k, y_k1)) = match dir {
        Direction::Forward => ((s_lo, s_hi), (o_lo, o_hi)),
        Direction::Inverse => ((o_lo, o_hi), (s_lo, s_hi)),
    };
    let bin = Bin::from_edges((x_k, x_k1), (y_k, y_k1), d_k, d_k1);
    // Without the `quadratic` feature no quadratic shape exists (`SplineShape::new`).
    match shape.order {
        Order::Quadratic if cfg!(feature = "quadratic") => match dir {
            Direction::Forward => bin.quadratic_forward::<RealOps>(v, want_log_det),
            Direction::Inverse => bin.quadratic_inverse::<RealOps>(v, want_log_det),
        },
        _ => {
            let lin = bin.linear::<RealOps>(lambda);
            match dir {
                Direction::Forward => lin.forward::<RealOps>(v, want_log_det),
                Direction::Inverse => lin.inverse::<RealOps>(v, want_log_det),
            }
        }
    }
}

/// A spline dimension's unconstrained parameters for a block of points, one row per entry
/// and one lane per point (see [`eval_lanes`]).
#[cfg(feature = "wide")]
pub(crate) struct LaneRows<'b> {
    /// `uw[0..K]`; overwritten with the `x` knots.
    pub(crate) widths: &'b mut [Lanes],
    /// `uh[0..K]`; overwritten with the `y` knots.
    pub(crate) heights: &'b mut [Lanes],
    /// `ud[0..K-1]`.
    pub(crate) derivatives: &'b [Lanes],
    /// `ul[0..K]` (linear order; empty otherwise).
    pub(crate) lambdas: &'b [Lanes],
}

/// [`eval`] of one spline dimension at the points of a block, lane `r` at `v[r]` with lane
/// `r` of `p`'s rows, for the lanes where `live` is `true` (the others hold no meaning on
/// return): `(v[r], lds[r])` become each lane's `eval` result, bit for bit. The knots are
/// computed for all the lanes together ([`lane_inner_knots`]) and the bins evaluated on all
/// of them ([`eval_flat`]); a lane whose result is not finite is evaluated again alone, by
/// the single-point code.
#[cfg(feature = "wide")]
#[inline(always)] // see `block::log_prob_many`
pub(crate) fn eval_lanes(
    shape: &SplineShape,
    p: LaneRows<'_>,
    v: &mut Lanes,
    lds: &mut Lanes,
    dir: Direction,
    live: &[bool; LANES],
) {
    let k_bins = shape.bins;
    let bound = shape.bound;
    let widths = p.widths.get_mut(..k_bins).unwrap_or(&mut []);
    let heights = p.heights.get_mut(..k_bins).unwrap_or(&mut []);
    let scale = width_scale(k_bins);
    lane_inner_knots(widths, bound, scale);
    lane_inner_knots(heights, bound, scale);
    let inner = k_bins - 1;
    let (widths, heights) = (
        &widths[..inner.min(widths.len())],
        &heights[..inner.min(heights.len())],
    );
    let src = RowSource {
        knots: [widths, heights],
        derivatives: p.derivatives,
        lambdas: p.lambdas,
        bound,
    };
    let start = *v;
    let redo = eval_flat(shape, &src, v, lds, dir);
    for (lane, _) in redo
        .iter()
        .zip(live)
        .enumerate()
        .filter(|(_, (&r, &l))| r && l)
    {
        crate::flat::count_redone();
        let src = LaneKnots {
            knots: [widths, heights],
            params: LaneParams {
                derivatives: p.derivatives,
                lambdas: p.lambdas,
                lane,
            },
            bins: k_bins,
            bound,
        };
        (v[lane], lds[lane]) = eval_dim(shape, &src, start[lane], dir, true);
    }
}

/// Applies a spline to each of `v`'s dimensions, with dimension `j`'s parameters from `params`
/// (laid out as in [`ParamVector`]); writes each `log|J|` to `lds` and returns their sum (0
/// when `want_log_det` is false).
// `params` is a trait object: one copy of the evaluation serves stored parameters and
// hypernetwork outputs alike (a few indirect calls per dimension; less flash).
pub(crate) fn eval_all<T: Real>(
    shape: &SplineShape,
    params: &dyn ParamVector<T>,
    v: &mut [T],
    lds: &mut [T],
    dir: Direction,
    want_log_det: bool,
    (xs, ys): (&mut [T], &mut [T]),
) -> Result<T, Error> {
    let dims = v.len();
    let mut total = T::ZERO;
    for (j, (x, ld)) in v.iter_mut().zip(lds.iter_mut()).enumerate() {
        let p = DimParams {
            v: params,
            dims,
            bins: shape.bins,
            j,
        };
        let (y, l) = eval(shape, &p, *x, dir, want_log_det, xs, ys)?;
        *x = y;
        *ld = l;
        total += l;
    }
    Ok(total)
}
