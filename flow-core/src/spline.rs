//! Monotonic rational splines, element-wise — exactly Pyro 1.9.2's `_monotonic_rational_spline`.
//!
//! # Parameterization
//! One spline dimension with `K` bins on the box `[-B, B] × [-B, B]` has unconstrained parameters
//! `uw[K]`, `uh[K]`, `ud[K-1]` and, for the linear order only, `ul[K]`. From them:
//!
//! 1. `w~ = softmax(uw)`, `h~ = softmax(uh)`, `d~ = softplus(ud)` (torch's: `u` for `u > 20`,
//!    else `ln(1 + e^u)`), `l~ = sigmoid(ul)`.
//! 2. Minimum sizes: `w_k = 1e-3 + (1 - 1e-3·K)·w~_k`, likewise `h_k`; `d_j = 1e-3 + d~_j`.
//! 3. Knots `x_k = 2B·(w_0 + … + w_{k-1}) - B`, with `x_0 = -B` and `x_K = +B` set exactly;
//!    `Δx_k = x_{k+1} - x_k`. The `y` knots come from `h` the same way.
//! 4. Knot derivatives `δ_0 = δ_K = 1 - 1e-3 = 0.999` (as Pyro pads them) and `δ_k = d_{k-1}`.
//! 5. Linear order: `λ_k = 0.95·l~_k + 0.025`.
//! 6. Bin slope `s_k = Δy_k / Δx_k`.
//!
//! A value `v` is inside when `-B <= v <= B`; outside (and for NaN) the spline is the identity
//! with `log|J| = 0`. The bin is `k = #{j in 0..=K : v >= knot_j + 1e-6} - 1`, clamped to
//! `0..K`, searching the `x` knots going forward and the `y` knots going back. The absolute
//! `1e-6` means a point on an interior knot is evaluated in the bin to its left at `θ = 1`.
//! Where that left bin, extrapolated past its end, never reaches the point (Pyro returns NaN
//! there: the log of a non-positive number, or a discriminant lost to rounding), flow-core
//! evaluates the bin the point lies in instead; wherever Pyro's value is finite, the two agree.
//!
//! # Quadratic order (Durkan et al., 2019)
//! With `θ = (x - x_k)/Δx_k`, `t = θ(1-θ)` and `c = δ_k + δ_{k+1} - 2s_k`:
//!
//! ```text
//! den    = s_k + c·t
//! y      = y_k + Δy_k (s_k θ² + δ_k t) / den
//! dy/dx  = s_k² (δ_{k+1} θ² + 2 s_k t + δ_k (1-θ)²) / den²
//! ```
//!
//! Inverse, with `Δ = y - y_k`: `a = Δc + Δy_k(s_k - δ_k)`, `b = Δy_k δ_k - Δc`, `q = -s_k Δ`,
//! `θ = 2q / (-b - sqrt(b² - 4aq))`, `x = x_k + θ Δx_k`. The discriminant is `>= 0` in exact
//! arithmetic; a negative rounding residue is clamped to 0 (Pyro asserts instead).
//!
//! # Linear order (Dolatabadi et al., 2020)
//! With `wa = 1`, `wb = sqrt(δ_k/δ_{k+1})`, `wc = (λ δ_k + (1-λ) wb δ_{k+1}) / s_k`,
//! `ya = y_k`, `yb = y_k + Δy_k`, `yc = ((1-λ) ya + λ wb yb) / ((1-λ) + λ wb)`:
//!
//! ```text
//! θ <= λ: y = (ya (λ-θ) + wc yc θ) / ((λ-θ) + wc θ),          dy/dx = wc λ (yc-ya) / (Δx den²)
//! θ >  λ: y = (wc yc (1-θ) + wb yb (θ-λ)) / (wc (1-θ) + wb (θ-λ)), dy/dx = wb wc (1-λ)(yb-yc) / (Δx den²)
//! ```
//!
//! and the inverse, branching on `y <= yc`:
//!
//! ```text
//! y <= yc: θ = λ (ya - y) / ((wc - 1) y + ya - wc yc),              dx/dy = Δx wc λ (yc-ya) / den²
//! y >  yc: θ = ((wc - λ wb) y + λ wb yb - wc yc) / ((wc - wb) y + wb yb - wc yc),
//!                                                                     dx/dy = Δx wb wc (1-λ)(yb-yc) / den²
//! ```
//!
//! In every case `log|J| = ln(derivative numerator) - 2 ln|den|`, as Pyro computes it.

use crate::error::{Capacity, Error, LayerError};
use crate::real::{max, Real};
use crate::weights::Weights;
use crate::workspace::Scratch;

/// Minimum bin width, as a fraction of the box (Pyro's `min_bin_width`).
pub const MIN_BIN_WIDTH: f64 = 1e-3;
/// Minimum bin height, as a fraction of the box (Pyro's `min_bin_height`).
pub const MIN_BIN_HEIGHT: f64 = 1e-3;
/// Minimum knot derivative (Pyro's `min_derivative`).
pub const MIN_DERIVATIVE: f64 = 1e-3;
/// Minimum `λ` of the linear order (Pyro's `min_lambda`).
pub const MIN_LAMBDA: f64 = 0.025;
/// The absolute offset of the bin search (Pyro's `eps`).
pub const SEARCH_EPS: f64 = 1e-6;
/// The largest bin count: `1e-3·K <= 1` must hold for the minimum sizes.
pub const MAX_BINS_BY_MIN_SIZE: usize = 1000;
/// torch's softplus threshold: above it, `softplus(u) = u`.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// The spline's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Linear-rational (Dolatabadi et al.), Pyro's default; `4K - 1` parameters per dimension.
    Linear,
    /// Rational-quadratic (Durkan et al.); `3K - 1` parameters per dimension.
    Quadratic,
}

/// Bins, bound and order of a spline: everything but its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplineShape {
    bins: usize,
    bound: f32,
    order: Order,
}

impl SplineShape {
    /// A validated shape: `2 <= bins <= 1000` and a finite `bound > 0`; the quadratic order
    /// needs the `quadratic` feature (else `Error::Unsupported`).
    pub fn new(bins: usize, bound: f32, order: Order) -> Result<Self, Error> {
        if order == Order::Quadratic && !cfg!(feature = "quadratic") {
            return Err(Error::Unsupported(crate::error::Feature::Quadratic));
        }
        if !(2..=MAX_BINS_BY_MIN_SIZE).contains(&bins) {
            return Err(Error::InvalidLayer(LayerError::Bins));
        }
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::InvalidLayer(LayerError::Bound));
        }
        Ok(Self { bins, bound, order })
    }

    /// Number of bins `K`.
    #[inline]
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The bound `B`.
    #[inline]
    pub fn bound(&self) -> f32 {
        self.bound
    }

    /// The order.
    #[inline]
    pub fn order(&self) -> Order {
        self.order
    }

    /// Unconstrained parameters per dimension: `4K - 1` (linear) or `3K - 1` (quadratic).
    #[inline]
    pub fn params_per_dim(&self) -> usize {
        match self.order {
            Order::Linear => 4 * self.bins - 1,
            Order::Quadratic => 3 * self.bins - 1,
        }
    }

    /// Number of `λ` parameters per dimension: `K` for linear, 0 for quadratic.
    #[inline]
    pub fn lambdas_per_dim(&self) -> usize {
        match self.order {
            Order::Linear => self.bins,
            Order::Quadratic => 0,
        }
    }
}

/// Which way to evaluate a spline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `x → y`, returning `log|dy/dx|`.
    Forward,
    /// `y → x`, returning `log|dx/dy|`.
    Inverse,
}

/// The unconstrained parameters of one spline dimension, wherever they come from: stored
/// weights, or a hypernetwork's output computed on demand.
pub trait BinParams<T: Real> {
    /// Writes the `K` unconstrained widths `uw` into `out` (`out.len() == K`).
    fn widths(&self, out: &mut [T]);
    /// Writes the `K` unconstrained heights `uh` into `out`.
    fn heights(&self, out: &mut [T]);
    /// The unconstrained derivative `ud[j]` of interior knot `j + 1`, `j in 0..K-1`.
    fn derivative(&self, j: usize) -> T;
    /// `ud[j..j + out.len()]` into `out`.
    fn derivatives(&self, j: usize, out: &mut [T]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.derivative(j + i);
        }
    }
    /// The unconstrained `ul[k]` of bin `k` (linear order only).
    fn lambda(&self, k: usize) -> T;
}

/// Unconstrained parameters of one dimension held in slices (`lambdas` empty for quadratic).
#[derive(Clone, Copy, Debug)]
pub struct RawParams<'p, T> {
    /// `uw[K]`.
    pub widths: &'p [T],
    /// `uh[K]`.
    pub heights: &'p [T],
    /// `ud[K-1]`.
    pub derivatives: &'p [T],
    /// `ul[K]`, linear order only.
    pub lambdas: &'p [T],
}

impl<T: Real> BinParams<T> for RawParams<'_, T> {
    fn widths(&self, out: &mut [T]) {
        for (o, &v) in out.iter_mut().zip(self.widths) {
            *o = v;
        }
    }
    fn heights(&self, out: &mut [T]) {
        for (o, &v) in out.iter_mut().zip(self.heights) {
            *o = v;
        }
    }
    fn derivative(&self, j: usize) -> T {
        self.derivatives.get(j).copied().unwrap_or(T::ZERO)
    }
    fn lambda(&self, k: usize) -> T {
        self.lambdas.get(k).copied().unwrap_or(T::ZERO)
    }
}

/// torch's softplus with `beta = 1`, `threshold = 20`.
#[inline]
pub fn softplus<T: Real>(u: T) -> T {
    if u > T::from_f64(SOFTPLUS_THRESHOLD) {
        u
    } else {
        u.exp().ln_1p()
    }
}

/// The logistic sigmoid `1 / (1 + e^-u)`.
#[inline]
pub fn sigmoid<T: Real>(u: T) -> T {
    T::ONE / (T::ONE + (-u).exp())
}

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
fn width_scale<T: Real>(bins: usize) -> T {
    let keep = 1000usize.saturating_sub(bins) as f32;
    T::from_f32(keep) / T::from_f32(1000.0)
}

/// One axis of a spline (the `x` knots from the widths, or the `y` knots from the heights):
/// the exponentials `e_i` of the softmax, their compensated total, and what turns prefix
/// sums into knots. Knots are generated lazily, so a search stops at the bin it needs.
struct Axis<'e, T> {
    e: &'e [T],
    total: Compensated<T>,
    bound: T,
    /// `B·(1 - 1e-3·K)`.
    bs: T,
}

impl<'e, T: Real> Axis<'e, T> {
    /// Replaces the unconstrained values in `u` by `e_i = exp(u_i - max u)`.
    fn new(u: &'e mut [T], bound: T, scale: T) -> Self {
        let mut m = T::NEG_INFINITY;
        for &v in u.iter() {
            m = max(m, v);
        }
        let mut total = Compensated::default();
        for v in u.iter_mut() {
            *v = (*v - m).exp();
            total.add(*v);
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
    fn inner_knots(&self) -> impl Iterator<Item = T> + '_ {
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
fn search_knots<T: Real>(
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
fn knot_derivative<T: Real, P: BinParams<T>>(p: &P, i: usize, bins: usize) -> T {
    if i == 0 || i >= bins {
        T::from_f64(1.0 - MIN_DERIVATIVE)
    } else {
        T::from_f64(MIN_DERIVATIVE) + softplus(p.derivative(i - 1))
    }
}

/// `λ_k = 0.95·sigmoid(ul_k) + 0.025` of bin `k` (linear order).
#[inline]
fn bin_lambda<T: Real, P: BinParams<T>>(p: &P, k: usize) -> T {
    T::from_f64(1.0 - 2.0 * MIN_LAMBDA) * sigmoid(p.lambda(k)) + T::from_f64(MIN_LAMBDA)
}

/// Where one spline dimension's knots, knot derivatives and `λ`s come from: computed from the
/// unconstrained parameters on the way ([`Lazy`]), or read from a precomputed table
/// ([`TableDim`]). Both give the same values, bit for bit.
trait Knots<T> {
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
struct Lazy<'e, 'p, T, P> {
    ax: Axis<'e, T>,
    ay: Axis<'e, T>,
    p: &'p P,
    bins: usize,
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
struct TableDim<'t> {
    /// The interior knots `x_1 … x_{K-1}` and `y_1 … y_{K-1}`.
    knots: [&'t [[u8; 4]]; 2],
    /// The interior derivatives `δ_1 … δ_{K-1}`.
    derivatives: &'t [[u8; 4]],
    /// `λ_0 … λ_{K-1}` (linear order; empty otherwise).
    lambdas: &'t [[u8; 4]],
    bins: usize,
    bound: f32,
}

impl<'t> TableDim<'t> {
    /// Splits one dimension's table `w` of bins `bins` into its parts.
    #[inline]
    fn split(w: &'t [[u8; 4]], bins: usize, bound: f32) -> Self {
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
fn eval_dim<T: Real, S: Knots<T>>(
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
    let (dx, dy) = (x_k1 - x_k, y_k1 - y_k);
    let s = dy / dx;
    let bin = Bin {
        x_k,
        dx,
        y_k,
        dy,
        s,
        d_k,
        d_k1,
    };
    // Without the `quadratic` feature no quadratic shape exists (`SplineShape::new`).
    match shape.order {
        Order::Quadratic if cfg!(feature = "quadratic") => match dir {
            Direction::Forward => bin.quadratic_forward(v, want_log_det),
            Direction::Inverse => bin.quadratic_inverse(v, want_log_det),
        },
        _ => {
            let lin = bin.linear(lambda);
            match dir {
                Direction::Forward => lin.forward(v, want_log_det),
                Direction::Inverse => lin.inverse(v, want_log_det),
            }
        }
    }
}

/// The quantities of the bin a point falls in.
struct Bin<T> {
    x_k: T,
    dx: T,
    y_k: T,
    dy: T,
    s: T,
    d_k: T,
    d_k1: T,
}

/// A bin of the linear-rational spline, with its weights.
struct LinearBin<T> {
    x_k: T,
    dx: T,
    lambda: T,
    wb: T,
    wc: T,
    ya: T,
    yb: T,
    yc: T,
}

impl<T: Real> Bin<T> {
    /// `den = s + c·t`, evaluated as `s (θ² + (1-θ)²) + (δ_k + δ_{k+1}) t`: the same value
    /// as a sum of non-negative terms for `θ` in `[0, 1]`, so no cancellation.
    #[inline]
    fn quadratic_den(&self, theta: T, t: T) -> T {
        let one_m = T::ONE - theta;
        self.s * (theta * theta + one_m * one_m) + (self.d_k + self.d_k1) * t
    }

    /// `ln(s² (δ_{k+1} θ² + 2 s t + δ_k (1-θ)²)) - 2 ln(den)`.
    #[inline]
    fn quadratic_log_det(&self, theta: T, t: T, den: T) -> T {
        let one_m = T::ONE - theta;
        let num = self.s
            * self.s
            * (self.d_k1 * theta * theta + (self.s + self.s) * t + self.d_k * one_m * one_m);
        num.ln() - (den.ln() + den.ln())
    }

    fn quadratic_forward(&self, x: T, want: bool) -> (T, T) {
        let theta = (x - self.x_k) / self.dx;
        let t = theta * (T::ONE - theta);
        let den = self.quadratic_den(theta, t);
        let y = self.y_k + self.dy * (self.s * theta * theta + self.d_k * t) / den;
        let ld = if want {
            self.quadratic_log_det(theta, t, den)
        } else {
            T::ZERO
        };
        (y, ld)
    }

    fn quadratic_inverse(&self, y: T, want: bool) -> (T, T) {
        let delta = y - self.y_k;
        let c = self.d_k + self.d_k1 - (self.s + self.s);
        let a = delta * c + self.dy * (self.s - self.d_k);
        let b = self.dy * self.d_k - delta * c;
        let q = -self.s * delta;
        let disc = b * b - T::from_f64(4.0) * a * q;
        let disc = if disc > T::ZERO { disc } else { T::ZERO };
        let theta = (q + q) / (-b - disc.sqrt());
        let x = theta * self.dx + self.x_k;
        let ld = if want {
            let t = theta * (T::ONE - theta);
            -self.quadratic_log_det(theta, t, self.quadratic_den(theta, t))
        } else {
            T::ZERO
        };
        (x, ld)
    }

    fn linear(&self, lambda: T) -> LinearBin<T> {
        let wb = (self.d_k / self.d_k1).sqrt();
        let one_m_l = T::ONE - lambda;
        let wc = (lambda * self.d_k + one_m_l * wb * self.d_k1) / self.s;
        let ya = self.y_k;
        let yb = self.dy + self.y_k;
        let yc = (one_m_l * ya + lambda * wb * yb) / (one_m_l + lambda * wb);
        LinearBin {
            x_k: self.x_k,
            dx: self.dx,
            lambda,
            wb,
            wc,
            ya,
            yb,
            yc,
        }
    }
}

impl<T: Real> LinearBin<T> {
    // The rational functions are evaluated in a rearranged but algebraically identical form
    // that subtracts nearby `y` values first (e.g. `ya (λ-θ) + wc yc θ = ya·den + wc θ (yc-ya)`),
    // so that `f32` keeps its precision where the spline is flat or `y` is close to a weight point.

    fn forward(&self, x: T, want: bool) -> (T, T) {
        let (l, wb, wc, ya, yb, yc) = (self.lambda, self.wb, self.wc, self.ya, self.yb, self.yc);
        let theta = (x - self.x_k) / self.dx;
        let (y, den, dnum) = if theta <= l {
            let den = (l - theta) + wc * theta;
            (ya + wc * theta * (yc - ya) / den, den, wc * l * (yc - ya))
        } else {
            let den = wc * (T::ONE - theta) + wb * (theta - l);
            (
                yc + wb * (theta - l) * (yb - yc) / den,
                den,
                wb * wc * (T::ONE - l) * (yb - yc),
            )
        };
        let ld = if want {
            let lden = den.abs().ln();
            (dnum / self.dx).ln() - (lden + lden)
        } else {
            T::ZERO
        };
        (y, ld)
    }

    fn inverse(&self, y: T, want: bool) -> (T, T) {
        let (l, wb, wc, ya, yb, yc) = (self.lambda, self.wb, self.wc, self.ya, self.yb, self.yc);
        // y <= yc: num = λ (ya - y),               den = wc (y - yc) + (ya - y)
        // y >  yc: num = wc (y - yc) + λ wb (yb - y), den = wc (y - yc) + wb (yb - y)
        let (num, den, dnum) = if y <= yc {
            (l * (ya - y), wc * (y - yc) + (ya - y), wc * l * (yc - ya))
        } else {
            let (a, b) = (wc * (y - yc), yb - y);
            (
                a + l * wb * b,
                a + wb * b,
                wb * wc * (T::ONE - l) * (yb - yc),
            )
        };
        let theta = num / den;
        let x = theta * self.dx + self.x_k;
        let ld = if want {
            let lden = den.abs().ln();
            (dnum * self.dx).ln() - (lden + lden)
        } else {
            T::ZERO
        };
        (x, ld)
    }
}

/// A flat parameter vector laid out as Pyro splits a hypernetwork's output, for `dims`
/// dimensions of `K` bins: `[widths (dims×K) | heights (dims×K) | derivatives (dims×(K-1)) |
/// lambdas (dims×K, linear only)]`, each block row-major by dimension. The element-wise
/// [`Spline`]'s stored parameters use the same layout.
pub(crate) trait ParamVector<T> {
    /// Entries `start..start + out.len()`.
    fn fill(&self, start: usize, out: &mut [T]);
}

impl<T: Real> ParamVector<T> for Weights<'_> {
    #[inline]
    fn fill(&self, start: usize, out: &mut [T]) {
        let src = self.slice(start, out.len()).unwrap_or(Weights::empty());
        for (o, v) in out.iter_mut().zip(src.iter()) {
            *o = T::from_f32(v);
        }
    }
}

/// Dimension `j`'s view into a [`ParamVector`].
pub(crate) struct DimParams<'v, V: ?Sized> {
    pub(crate) v: &'v V,
    pub(crate) dims: usize,
    pub(crate) bins: usize,
    pub(crate) j: usize,
}

/// Entry `r` of `v`, as a request of one entry (a vector needs no code of its own for
/// single entries).
#[inline]
fn entry<T: Real, V: ParamVector<T> + ?Sized>(v: &V, r: usize) -> T {
    let mut out = [T::ZERO];
    v.fill(r, &mut out);
    out[0]
}

impl<T: Real, V: ParamVector<T> + ?Sized> BinParams<T> for DimParams<'_, V> {
    #[inline]
    fn widths(&self, out: &mut [T]) {
        self.v.fill(self.j * self.bins, out);
    }
    #[inline]
    fn heights(&self, out: &mut [T]) {
        self.v.fill((self.dims + self.j) * self.bins, out);
    }
    #[inline]
    fn derivative(&self, i: usize) -> T {
        entry(
            self.v,
            2 * self.dims * self.bins + self.j * (self.bins - 1) + i,
        )
    }
    #[inline]
    fn derivatives(&self, i: usize, out: &mut [T]) {
        self.v.fill(
            2 * self.dims * self.bins + self.j * (self.bins - 1) + i,
            out,
        );
    }
    #[inline]
    fn lambda(&self, k: usize) -> T {
        entry(
            self.v,
            2 * self.dims * self.bins + self.dims * (self.bins - 1) + self.j * self.bins + k,
        )
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

/// The learnable element-wise spline (Pyro's `Spline(dim, count_bins, bound, order)`), each
/// dimension with its own parameters, stored as `[uw (dim×K) | uh (dim×K) | ud (dim×(K-1)) |
/// ul (dim×K), linear only]` — the order of Pyro's `unnormalized_widths`, `_heights`,
/// `_derivatives`, `_lambdas`, each row-major.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spline<'a> {
    dim: usize,
    shape: SplineShape,
    weights: Weights<'a>,
}

impl<'a> Spline<'a> {
    /// A spline over `dim` dimensions; checks the parameter count and that each is finite.
    pub fn new(dim: usize, shape: SplineShape, weights: Weights<'a>) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        let expected = Self::param_count(dim, &shape);
        if weights.len() != expected {
            return Err(Error::ParameterCount {
                expected,
                found: weights.len(),
            });
        }
        if !weights.all_finite() {
            return Err(Error::NonFiniteParameter);
        }
        Ok(Self {
            dim,
            shape,
            weights,
        })
    }

    /// Parameters of a `dim`-dimensional spline of this shape.
    pub fn param_count(dim: usize, shape: &SplineShape) -> usize {
        dim.saturating_mul(shape.params_per_dim())
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bins, bound, order.
    #[inline]
    pub fn shape(&self) -> &SplineShape {
        &self.shape
    }

    /// The stored parameters.
    #[inline]
    pub fn weights(&self) -> Weights<'a> {
        self.weights
    }

    /// Entries of its precomputed knot table: `dim × (4K - 3)` (linear) or `dim × (3K - 3)`
    /// (quadratic) `f32` values, dimension by dimension (see [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    pub fn table_len(&self) -> usize {
        self.dim.saturating_mul(table_len_per_dim(&self.shape))
    }

    /// Calls `f` with each entry of its knot table, in order; stops when `f` returns `false`
    /// (then returns `false`, as when `xs`/`ys` hold fewer than `K` values).
    pub(crate) fn table_entries(
        &self,
        (xs, ys): (&mut [f32], &mut [f32]),
        f: &mut impl FnMut(f32) -> bool,
    ) -> bool {
        (0..self.dim).all(|j| {
            let p = DimParams {
                v: &self.weights,
                dims: self.dim,
                bins: self.shape.bins,
                j,
            };
            dim_table(&self.shape, &p, (&mut *xs, &mut *ys), f)
        })
    }

    /// `true` when the next [`table_len`](Self::table_len) entries of `t` are, dimension by
    /// dimension, well-formed knot tables (see
    /// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables)).
    pub(crate) fn table_well_formed(&self, t: &mut impl Iterator<Item = f32>) -> bool {
        (0..self.dim).all(|_| dim_table_well_formed(&self.shape, t))
    }

    /// Applies the spline to each dimension of `v` (see [`eval_all`]); with `table` of
    /// [`table_len`](Self::table_len) entries and `T = f32`, the knots, derivatives and `λ`s
    /// are read from it instead of computed (same values, bit for bit).
    pub(crate) fn apply<T: Real>(
        &self,
        v: &mut [T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
        table: Weights<'_>,
    ) -> Result<T, Error> {
        let per_dim = table_len_per_dim(&self.shape);
        if !(T::IS_F32 && table.len() == self.table_len()) {
            return eval_all(
                &self.shape,
                &self.weights,
                v,
                lds,
                dir,
                want_log_det,
                (s.xs, s.ys),
            );
        }
        let bound = T::from_f32(self.shape.bound);
        let mut total = T::ZERO;
        let mut rest = table.as_bytes().as_chunks::<4>().0;
        for (x, ld) in v.iter_mut().zip(lds.iter_mut()) {
            let (w, next) = rest.split_at_checked(per_dim).unwrap_or((rest, &[]));
            rest = next;
            if !(*x >= -bound && *x <= bound) {
                *ld = T::ZERO;
                continue;
            }
            let src = TableDim::split(w, self.shape.bins, self.shape.bound);
            let (y, l) = eval_dim(&self.shape, &src, *x, dir, want_log_det);
            *x = y;
            *ld = l;
            total += l;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pyro's own arithmetic: softmax, minimum width, running sum, `2B·cum - B`.
    fn pyro_knots(u: &[f64], b: f64) -> [f64; 64] {
        let m = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = u.iter().map(|v| (v - m).exp()).sum();
        let k = u.len() as f64;
        let mut out = [0.0; 64];
        let mut cum = 0.0;
        for (o, v) in out.iter_mut().zip(u) {
            cum += 1e-3 + (1.0 - 1e-3 * k) * (v - m).exp() / s;
            *o = 2.0 * b * cum - b;
        }
        out[u.len() - 1] = b;
        out
    }

    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 11) as f64 / (1u64 << 53) as f64) * 8.0 - 4.0
    }

    #[test]
    fn knots_equal_pyros_formula_and_are_increasing() {
        let mut st = 1u64;
        for k in [2usize, 3, 4, 7, 8, 16, 33, 64] {
            for _ in 0..50 {
                let u: [f64; 64] = core::array::from_fn(|_| lcg(&mut st));
                let mut mine = u;
                knots_in_place(&mut mine[..k], 3.0);
                let want = pyro_knots(&u[..k], 3.0);
                for j in 0..k {
                    // Same value, fewer roundings: agreement to a few f64 ulps of the box.
                    assert!((mine[j] - want[j]).abs() < 1e-13, "k={k} j={j}");
                }
                assert_eq!(mine[k - 1], 3.0);
                let mut prev = -3.0;
                for &x in &mine[..k] {
                    // Every bin is at least the minimum width 2B·1e-3 wide.
                    assert!(x - prev >= 6.0 * 1e-3 * (1.0 - 1e-9), "k={k}");
                    prev = x;
                }
                // The same in f32: within 2 ulps of the exact knots.
                let mut m32: [f32; 64] = core::array::from_fn(|i| u[i] as f32);
                knots_in_place(&mut m32[..k], 3.0f32);
                let mut exact: [f64; 64] = core::array::from_fn(|i| m32[i] as f64);
                let u32_as_64: [f64; 64] = core::array::from_fn(|i| (u[i] as f32) as f64);
                exact[..k].copy_from_slice(&pyro_knots(&u32_as_64[..k], 3.0)[..k]);
                for j in 0..k {
                    let ulp = f32::EPSILON as f64 * exact[j].abs().max(1.0);
                    assert!(
                        (m32[j] as f64 - exact[j]).abs() <= 2.0 * ulp,
                        "k={k} j={j}: {} vs {}",
                        m32[j],
                        exact[j]
                    );
                }
            }
        }
    }

    fn raw(u: &[f64; 16]) -> RawParams<'_, f64> {
        RawParams {
            widths: &u[0..4],
            heights: &u[4..8],
            derivatives: &u[8..11],
            lambdas: &u[11..15],
        }
    }

    #[test]
    fn identity_outside_the_box_and_for_nan() {
        let u = [
            0.3, -1.0, 0.5, 2.0, 1.0, 0.1, -0.4, 0.2, 0.7, -0.3, 1.2, 0.1, 0.9, -2.0, 0.4, 0.0,
        ];
        for order in [Order::Linear, Order::Quadratic] {
            let shape = SplineShape::new(4, 2.0, order).unwrap();
            let (mut xs, mut ys) = ([0.0; 4], [0.0; 4]);
            for v in [2.000_000_1, -2.5, 1e300, -1e300] {
                for dir in [Direction::Forward, Direction::Inverse] {
                    let r = eval(&shape, &raw(&u), v, dir, true, &mut xs, &mut ys).unwrap();
                    assert_eq!(r, (v, 0.0));
                }
            }
            let (y, ld) = eval(
                &shape,
                &raw(&u),
                f64::NAN,
                Direction::Forward,
                true,
                &mut xs,
                &mut ys,
            )
            .unwrap();
            assert!(y.is_nan() && ld == 0.0);
            // ±B map to ±B; log|J| there is ln(0.999), Pyro's end derivative.
            for b in [-2.0, 2.0] {
                let (y, ld) = eval(
                    &shape,
                    &raw(&u),
                    b,
                    Direction::Forward,
                    true,
                    &mut xs,
                    &mut ys,
                )
                .unwrap();
                assert!((y - b).abs() < 1e-12, "{order:?} {b}: {y}");
                assert!((ld - 0.999f64.ln()).abs() < 1e-9, "{order:?} {b}: {ld}");
            }
        }
    }

    #[test]
    fn too_little_scratch_is_an_error_not_a_panic() {
        let u = [0.0; 16];
        let shape = SplineShape::new(4, 3.0, Order::Linear).unwrap();
        let (mut xs, mut ys) = ([0.0; 3], [0.0; 4]);
        let r = eval(
            &shape,
            &raw(&u),
            0.5,
            Direction::Forward,
            true,
            &mut xs,
            &mut ys,
        );
        assert!(matches!(r, Err(Error::Capacity { .. })));
    }

    #[test]
    fn shapes_are_validated() {
        assert!(SplineShape::new(1, 3.0, Order::Linear).is_err());
        assert!(SplineShape::new(1001, 3.0, Order::Linear).is_err());
        assert!(SplineShape::new(1000, 3.0, Order::Linear).is_ok());
        for b in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(SplineShape::new(8, b, Order::Quadratic).is_err());
        }
        let s = SplineShape::new(8, 3.0, Order::Linear).unwrap();
        assert_eq!(s.params_per_dim(), 31);
        let s = SplineShape::new(8, 3.0, Order::Quadratic).unwrap();
        assert_eq!(s.params_per_dim(), 23);
    }

    #[test]
    fn softplus_follows_torch_threshold() {
        assert_eq!(softplus(25.0f64), 25.0);
        assert!((softplus(0.0f64) - 2f64.ln()).abs() < 1e-15);
        assert!((softplus(20.0f64) - (1.0 + 20f64.exp()).ln()).abs() < 1e-12);
        assert!((sigmoid(0.0f64) - 0.5).abs() < 1e-15);
    }
}
