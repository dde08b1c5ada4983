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
//!
//! # Where it lives
//! Bottom-up: [`params`] (the constants, the shape and where the unconstrained parameters come
//! from), `knots` (knots, knot derivatives and `λ`s from them, lazily), `tables` (the same
//! values precomputed), [`bin`] (the formulas of one bin, shared with the trainer), `eval`
//! (one point through one dimension) and `layer` (the element-wise [`Spline`] layer).

pub mod bin;
mod eval;
mod knots;
#[cfg(feature = "wide")]
mod lanes;
mod layer;
pub mod params;
mod tables;

pub use eval::eval;
pub(crate) use eval::eval_all;
#[cfg(feature = "wide")]
pub(crate) use eval::{eval_lanes, LaneRows};
pub use knots::knots_in_place;
pub use layer::Spline;
pub(crate) use params::ParamVector;
pub use params::{
    sigmoid, softplus, BinParams, Direction, Order, RawParams, SplineShape, MAX_BINS_BY_MIN_SIZE,
    MIN_BIN_HEIGHT, MIN_BIN_WIDTH, MIN_DERIVATIVE, MIN_LAMBDA, SEARCH_EPS, SOFTPLUS_THRESHOLD,
};
