//! Knots, knot derivatives and `λ`s from the unconstrained parameters, computed lazily: a
//! search stops at the bin it needs.

use super::params::{
    sigmoid, softplus, BinParams, MIN_BIN_WIDTH, MIN_DERIVATIVE, MIN_LAMBDA, SEARCH_EPS,
};
#[cfg(feature = "wide")]
use crate::flat::{exp_lanes, Lanes, LANES};
use crate::real::{max, Real};

/// Turns `K` unconstrained widths (or heights) in place into the right-hand knots
/// `x_1 … x_K` of the box `[-B, B]`, with `x_K = B` exactly. (`x_0 = -B` is implied.)
///
/// Mathematically `x_k = 2B·Σ_{i<k} w_i - B` with `w_i = m + (1 - mK)·e_i/S` (`m` the minimum
/// width, `e_i = exp(u_i - max u)`, `S = Σ e_i`), which is what Pyro computes. The same value
/// is evaluated here in a form with fewer and smaller roundings, so that `f32` knots are within
/// about an ulp of the exact ones (a running sum scaled to `[-B, B]` drifts by several ulps):
/// since `Km + (1 - mK) = 1`,
///
/// ```text
/// x_k = B(1 - mK)·D_k/S + Bm·(2k - K),   D_k = Σ_{i<k} e_i - Σ_{i>=k} e_i
/// ```
///
/// with `D_k` and `S` compensated sums (`D_{k+1} = D_k + 2e_k`, `D_0 = -S`).
pub fn knots_in_place<T: Real>(u: &mut [T], bound: T) {
    let k_bins = u.len();
    let axis = Axis::new(u, bound, width_scale(k_bins));
    let mut state = axis.state();
    for v in u.iter_mut() {
        *v = state.step(*v);
    }
}

/// `1 - 1e-3·K`, the share of the box left after the minimum bin sizes, as the correctly
/// rounded quotient `(1000 - K) / 1000` of two exact integers — in `T`, so that single-precision
/// cores do no double-precision arithmetic. (Pyro computes it in double, then rounds it to the
/// tensor's type: the same value.)
#[inline]
pub(super) fn width_scale<T: Real>(bins: usize) -> T {
    let keep = 1000usize.saturating_sub(bins) as f32;
    T::from_f32(keep) / T::from_f32(1000.0)
}

/// One axis of a spline (the `x` knots from the widths, or the `y` knots from the heights):
/// the exponentials `e_i` of the softmax, their compensated total, and what turns prefix
/// sums into knots. Knots are generated lazily, so a search stops at the bin it needs.
pub(super) struct Axis<'e, T> {
    e: &'e [T],
    total: Compensated<T>,
    bound: T,
    /// `B·(1 - 1e-3·K)`.
    bs: T,
}

impl<'e, T: Real> Axis<'e, T> {
    /// Replaces the unconstrained values in `u` by `e_i = exp(u_i - max u)`.
    pub(super) fn new(u: &'e mut [T], bound: T, scale: T) -> Self {
        let mut m = T::NEG_INFINITY;
        for &v in u.iter() {
            m = max(m, v);
        }
        let mut total = Compensated::default();
        #[cfg(not(feature = "wide"))]
        for v in u.iter_mut() {
            *v = (*v - m).exp();
            total.add(*v);
        }
        // The same operations in the same order, the exponentials all at once (vectorized).
        #[cfg(feature = "wide")]
        {
            for v in u.iter_mut() {
                *v = *v - m;
            }
            T::exp_all(u);
            for &v in u.iter() {
                total.add(v);
            }
        }
        Self {
            e: u,
            total,
            bound,
            bs: bound * scale,
        }
    }

    /// The knot generator's starting state.
    fn state(&self) -> KnotState<T> {
        KnotState {
            s: self.total.value(),
            d: Compensated {
                sum: -self.total.sum,
                carry: -self.total.carry,
            },
            bs: self.bs,
            bm: self.bound * T::from_f64(MIN_BIN_WIDTH),
            steps: -T::from_f32(self.e.len() as f32),
            left: self.e.len(),
            bound: self.bound,
        }
    }

    /// The interior knots `x_1, …, x_{K-1}`, computed one by one.
    pub(super) fn inner_knots(&self) -> impl Iterator<Item = T> + '_ {
        let mut state = self.state();
        let inner = self.e.split_last().map_or(&[][..], |(_, inner)| inner);
        inner.iter().map(move |&e| {
            state.add(e);
            state.interior()
        })
    }

    /// The bin `k` of `v` by Pyro's search, with its edges (see [`search_knots`]).
    fn search(&self, v: T) -> (usize, T, T) {
        search_knots(v, self.bound, self.e.len(), self.inner_knots())
    }

    /// The edges `(x_k, x_{k+1})` of bin `k`.
    fn edges(&self, k: usize) -> (T, T) {
        let mut state = self.state();
        let (before, from_k) = self.e.split_at_checked(k).unwrap_or((self.e, &[]));
        // The knots below x_k are not needed: only their sums.
        for &e in before {
            state.add(e);
        }
        let lo = if k == 0 { -self.bound } else { state.knot() };
        let hi = match from_k.first() {
            Some(&e) => {
                state.add(e);
                state.knot()
            }
            None => self.bound,
        };
        (lo, hi)
    }
}

/// The bin `k` of `v` by Pyro's search, `#{j in 0..=K : v >= x_j + 1e-6} - 1` clamped to
/// `0..K`, with its edges `(x_k, x_{k+1})`; `knots` yields the interior knots `x_1, …,
/// x_{K-1}` (`x_0 = -B`, `x_K = B`). The knots increase strictly (every bin is at least
/// `2B·1e-3` wide), so the count stops at the first knot above `v`. Neither end needs a test:
/// below `x_0 + 1e-6`, `v` is below `x_1 + 1e-6` too, and both counts give bin 0; past
/// `x_{K-1}`, the count is clamped to the last bin whether or not `v >= x_K + 1e-6`.
pub(super) fn search_knots<T: Real>(
    v: T,
    bound: T,
    k_bins: usize,
    knots: impl Iterator<Item = T>,
) -> (usize, T, T) {
    let eps = T::from_f64(SEARCH_EPS);
    let mut lo = -bound;
    // Find the first knot x_j (j >= 1) with v < x_j + eps.
    let mut k = 0usize;
    for x in knots {
        if v >= x + eps {
            k += 1;
            lo = x;
        } else {
            return (k, lo, x);
        }
    }
    (k.min(k_bins.saturating_sub(1)), lo, bound)
}

/// The running state that turns the exponentials `e_0, e_1, …` into the knots `x_1, x_2, …`
/// (see [`knots_in_place`] for the formula).
struct KnotState<T> {
    s: T,
    d: Compensated<T>,
    bs: T,
    bm: T,
    /// `2j - K` once `j` exponentials are in, an exact running value (small integers are
    /// exact).
    steps: T,
    /// `K - j`.
    left: usize,
    bound: T,
}

impl<T: Real> KnotState<T> {
    /// Takes in the next exponential `e_j`, moving on to knot `x_{j+1}`.
    #[inline]
    fn add(&mut self, e: T) {
        self.left = self.left.saturating_sub(1);
        self.d.add(e + e);
        self.steps += T::ONE + T::ONE;
    }

    /// The current knot `x_j` (`j >= 1`; `x_K = B` exactly).
    #[inline]
    fn knot(&self) -> T {
        if self.left == 0 {
            self.bound
        } else {
            self.interior()
        }
    }

    /// The current knot by the formula (`0 < j < K`).
    #[inline]
    fn interior(&self) -> T {
        self.bs * (self.d.value() / self.s) + self.bm * self.steps
    }

    /// The next knot, given the next exponential.
    #[inline]
    fn step(&mut self, e: T) -> T {
        self.add(e);
        self.knot()
    }
}

/// Kahan–Babuška (Neumaier) compensated summation.
#[derive(Default, Clone, Copy)]
struct Compensated<T> {
    sum: T,
    carry: T,
}

impl<T: Real> Compensated<T> {
    #[inline]
    fn add(&mut self, v: T) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.carry += (self.sum - t) + v;
        } else {
            self.carry += (v - t) + self.sum;
        }
        self.sum = t;
    }

    #[inline]
    fn value(&self) -> T {
        self.sum + self.carry
    }
}

/// Derivative `δ_i` at knot `i in 0..=K`.
#[inline]
pub(super) fn knot_derivative<T: Real, P: BinParams<T>>(p: &P, i: usize, bins: usize) -> T {
    if i == 0 || i >= bins {
        T::from_f64(1.0 - MIN_DERIVATIVE)
    } else {
        T::from_f64(MIN_DERIVATIVE) + softplus(p.derivative(i - 1))
    }
}

/// `λ_k = 0.95·sigmoid(ul_k) + 0.025` of bin `k` (linear order).
#[inline]
pub(super) fn bin_lambda<T: Real, P: BinParams<T>>(p: &P, k: usize) -> T {
    T::from_f64(1.0 - 2.0 * MIN_LAMBDA) * sigmoid(p.lambda(k)) + T::from_f64(MIN_LAMBDA)
}

/// Where one spline dimension's knots, knot derivatives and `λ`s come from: computed from the
/// unconstrained parameters on the way ([`Lazy`]), or read from a precomputed table
/// ([`TableDim`]). Both give the same values, bit for bit.
pub(super) trait Knots<T> {
    /// The bin of `v` on the `y` axis (`on_y`) or the `x` axis, with its edges.
    fn search(&self, on_y: bool, v: T) -> (usize, T, T);
    /// The edges of bin `k` on the `y` axis (`on_y`) or the `x` axis.
    fn edges(&self, on_y: bool, k: usize) -> (T, T);
    /// The derivatives `(δ_k, δ_{k+1})` at the ends of bin `k`.
    fn derivatives(&self, k: usize) -> (T, T);
    /// `λ_k` of bin `k` (linear order).
    fn lambda(&self, k: usize) -> T;
}

/// Knots computed from the unconstrained parameters, lazily (a search stops at its bin).
pub(super) struct Lazy<'e, 'p, T, P> {
    pub(super) ax: Axis<'e, T>,
    pub(super) ay: Axis<'e, T>,
    pub(super) p: &'p P,
    pub(super) bins: usize,
}

impl<T: Real, P: BinParams<T>> Knots<T> for Lazy<'_, '_, T, P> {
    #[inline]
    fn search(&self, on_y: bool, v: T) -> (usize, T, T) {
        if on_y {
            self.ay.search(v)
        } else {
            self.ax.search(v)
        }
    }
    #[inline]
    fn edges(&self, on_y: bool, k: usize) -> (T, T) {
        if on_y {
            self.ay.edges(k)
        } else {
            self.ax.edges(k)
        }
    }
    #[inline]
    fn derivatives(&self, k: usize) -> (T, T) {
        if k >= 1 && k + 1 < self.bins {
            // Both interior: one request for the two adjacent parameters.
            let mut u = [T::ZERO; 2];
            self.p.derivatives(k - 1, &mut u);
            let min = T::from_f64(MIN_DERIVATIVE);
            (min + softplus(u[0]), min + softplus(u[1]))
        } else {
            // An end bin (`k = 0` or `k = K - 1`, `K >= 2`): one end knot, one interior.
            let end = T::from_f64(1.0 - MIN_DERIVATIVE);
            let d = knot_derivative(self.p, k.max(1), self.bins);
            if k == 0 {
                (end, d)
            } else {
                (d, end)
            }
        }
    }
    #[inline]
    fn lambda(&self, k: usize) -> T {
        bin_lambda(self.p, k)
    }
}

/// [`Axis::new`] and [`Axis::inner_knots`] on [`LANES`] axes at once: row `i` of `u` holds
/// entry `i` of every lane's `K` unconstrained widths (or heights). On return rows `0..K-1`
/// hold each lane's interior knots `x_1 … x_{K-1}` (row `K - 1` its last exponential): each
/// lane's values are those of the single axis, bit for bit — the same operations in the same
/// order, lane by lane.
#[cfg(feature = "wide")]
#[inline(always)] // see `block::log_prob_many`
pub(crate) fn lane_inner_knots(u: &mut [Lanes], bound: f32, scale: f32) {
    let mut m = [f32::NEG_INFINITY; LANES];
    for row in u.iter() {
        for (m, &v) in m.iter_mut().zip(row) {
            *m = max(*m, v);
        }
    }
    for row in u.iter_mut() {
        for (v, &m) in row.iter_mut().zip(&m) {
            *v -= m;
        }
        exp_lanes(row);
    }
    // `Compensated` and `KnotState`, one field per lane (so that each step is one vector
    // operation across the lanes), with the same operations in the same order.
    let (mut sum, mut carry) = ([0f32; LANES], [0f32; LANES]);
    for row in u.iter() {
        lane_add(&mut sum, &mut carry, row);
    }
    let bins = u.len();
    let bs = bound * scale;
    let bm = bound * MIN_BIN_WIDTH as f32;
    let mut steps = -(bins as f32);
    let mut s = [0f32; LANES];
    for r in 0..LANES {
        s[r] = sum[r] + carry[r];
    }
    let (mut d_sum, mut d_carry) = (sum.map(|v| -v), carry.map(|v| -v));
    if let Some((_, inner)) = u.split_last_mut() {
        for row in inner {
            let mut twice = [0f32; LANES];
            for r in 0..LANES {
                twice[r] = row[r] + row[r];
            }
            lane_add(&mut d_sum, &mut d_carry, &twice);
            steps += 1.0 + 1.0;
            for r in 0..LANES {
                row[r] = bs * ((d_sum[r] + d_carry[r]) / s[r]) + bm * steps;
            }
        }
    }
}

/// [`Compensated::add`] of `v[r]` to lane `r` of `(sum, carry)`, for every lane.
#[cfg(feature = "wide")]
#[inline(always)]
fn lane_add(sum: &mut Lanes, carry: &mut Lanes, v: &Lanes) {
    for r in 0..LANES {
        let t = sum[r] + v[r];
        let abs = |x: f32| f32::from_bits(x.to_bits() & 0x7fff_ffff);
        let c = if abs(sum[r]) >= abs(v[r]) {
            (sum[r] - t) + v[r]
        } else {
            (v[r] - t) + sum[r]
        };
        carry[r] += c;
        sum[r] = t;
    }
}

/// The unconstrained knot derivatives and `λ`s of one lane of a block (rows as
/// [`lane_inner_knots`] takes them). Its knots come precomputed: it has no widths or heights.
#[cfg(feature = "wide")]
pub(crate) struct LaneParams<'b> {
    /// `ud[0..K-1]`, one row each.
    pub(crate) derivatives: &'b [Lanes],
    /// `ul[0..K]` (linear order; empty otherwise).
    pub(crate) lambdas: &'b [Lanes],
    /// The lane.
    pub(crate) lane: usize,
}

#[cfg(feature = "wide")]
impl BinParams<f32> for LaneParams<'_> {
    fn widths(&self, _: &mut [f32]) {}
    fn heights(&self, _: &mut [f32]) {}
    #[inline]
    fn derivative(&self, j: usize) -> f32 {
        self.derivatives.get(j).map_or(0.0, |r| r[self.lane])
    }
    #[inline]
    fn lambda(&self, k: usize) -> f32 {
        self.lambdas.get(k).map_or(0.0, |r| r[self.lane])
    }
}

/// One lane's knots from [`lane_inner_knots`] with its [`LaneParams`]: the same values as
/// [`Lazy`] gives for that point, bit for bit (the search reads the interior knots as
/// [`TableDim`](super::tables::TableDim) does; derivatives and `λ` are computed as `Lazy`
/// computes them, for the bin found).
#[cfg(feature = "wide")]
pub(crate) struct LaneKnots<'b> {
    /// The interior knots `x_1 … x_{K-1}` and `y_1 … y_{K-1}`, one row each.
    pub(crate) knots: [&'b [Lanes]; 2],
    pub(crate) params: LaneParams<'b>,
    pub(crate) bins: usize,
    pub(crate) bound: f32,
}

#[cfg(feature = "wide")]
impl LaneKnots<'_> {
    /// Knot `i in 0..=K` of the `y` axis (`on_y`) or the `x` axis.
    #[inline]
    fn knot(&self, on_y: bool, i: usize) -> f32 {
        let inner = self.knots[on_y as usize]
            .get(..self.bins - 1)
            .unwrap_or(&[]);
        match i.checked_sub(1) {
            None => -self.bound,
            Some(i) => inner.get(i).map_or(self.bound, |r| r[self.params.lane]),
        }
    }
}

#[cfg(feature = "wide")]
impl Knots<f32> for LaneKnots<'_> {
    #[inline]
    fn search(&self, on_y: bool, v: f32) -> (usize, f32, f32) {
        let inner = self.knots[on_y as usize]
            .get(..self.bins - 1)
            .unwrap_or(&[]);
        let lane = self.params.lane;
        search_knots(v, self.bound, self.bins, inner.iter().map(|r| r[lane]))
    }
    #[inline]
    fn edges(&self, on_y: bool, k: usize) -> (f32, f32) {
        (self.knot(on_y, k), self.knot(on_y, k + 1))
    }
    #[inline]
    fn derivatives(&self, k: usize) -> (f32, f32) {
        // `Lazy`'s values: each end knot's, each interior one `1e-3 + softplus(ud)`.
        let d = |i: usize| knot_derivative(&self.params, i, self.bins);
        (d(k), d(k + 1))
    }
    #[inline]
    fn lambda(&self, k: usize) -> f32 {
        bin_lambda(&self.params, k)
    }
}

#[cfg(all(test, feature = "wide", not(feature = "micromath")))]
mod tests {
    use super::*;

    /// With `wide`, an axis holds exactly what the single-value loop (the device's: `libm`'s
    /// `expf` of each `u_i - max u`, summed as it goes) gives: every exponential and the
    /// compensated total, bit for bit, for 20,000 random parameter vectors of 1 to 64 bins
    /// (values up to ±60, so some exponentials underflow to subnormals and zero).
    #[test]
    fn wide_axis_equals_the_single_value_loop() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        for case in 0..20_000usize {
            let bins = 1 + case % 64;
            let spread = [1.0f32, 8.0, 60.0][case % 3];
            let mut u = [0f32; 64];
            for v in &mut u[..bins] {
                *v = spread * (2.0 * next() - 1.0);
            }
            let u = &mut u[..bins];
            let mut want = [0f32; 64];
            let mut m = f32::NEG_INFINITY;
            for &v in u.iter() {
                m = max(m, v);
            }
            let mut total = Compensated::default();
            for (w, &v) in want.iter_mut().zip(u.iter()) {
                *w = libm::expf(v - m);
                total.add(*w);
            }
            let ax = Axis::new(u, 3.0, width_scale(bins));
            assert!(ax
                .e
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert_eq!(ax.total.sum.to_bits(), total.sum.to_bits());
            assert_eq!(ax.total.carry.to_bits(), total.carry.to_bits());
        }
    }
}
