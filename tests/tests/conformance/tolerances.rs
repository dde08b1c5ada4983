//! The tolerances of the conformance checks, f64 and f32, each explained where it is defined.

// =============================================================================================
// Tolerances (f64). Each is explained where it is defined.
// =============================================================================================

/// f64 round trip, relative to `max(1, |x|)`: the Pyro port's golden tolerance. Both
/// directions evaluate closed forms in f64 from the same knots, so where the map is reasonably
/// conditioned the error is ~1e-16 × the condition number. Where it is not — random splines
/// can have bins of width 0.01 and height 2.4 with knot derivatives 0.004, i.e. interior slopes
/// of ~1e5, and flows reach `|log|det|| ≈ 40` — the point is checked against [`C64`] times the
/// back pass's measured response to a 16-ulp perturbation of its input instead (a
/// backward-stability bound), whenever that is the larger; those points are counted apart
/// (`rt64_ill_conditioned`).
pub(crate) const RT64: f64 = 1e-9;
/// f64 round trip for points within [`NEAR_KNOT`] of an interior knot (in `x` going forward or
/// in `y` going back, at any layer). Forward and inverse each use Pyro's *absolute* `+1e-6`
/// bin-search window, the forward on `x` and the inverse on `y`: a point just right of `x_k`
/// can be evaluated in bin `k` forward but, its image lying within 1e-6 of `y_k`, in bin `k-1`
/// (extrapolated at `θ > 1`) going back, or the other way round. The two rational functions
/// agree at the knot to first order only, so the round trip is off by a second-order term. The
/// golden README §4 measured up to 3.2e-7 for Pyro itself; we allow 1e-5, or, where larger,
/// twice the variation of the passes over the window (inputs moved by `±LDSYM_WINDOW`, which
/// crosses the window's edge and so includes the jump there), the forward's mapped back through
/// the back pass's slope: in steep, strongly curved bins the extrapolation error exceeds 1e-5.
pub(crate) const RT64_NEAR_KNOT: f64 = 1e-5;
/// Distance to an interior knot within which the eps-window mismatch above can occur (the
/// window is 1e-6 wide; 1e-5 covers it for slopes up to 10).
pub(crate) const NEAR_KNOT: f64 = 1e-5;
/// Pyro's absolute bin-search offset.
pub(crate) const SEARCH_EPS: f64 = 1e-6;
/// `|ld_inverse(y) + ld_forward(x)|`, relative to `max(1, |ld|)`, away from knots and `±B`:
/// the same closed form evaluated at `x` and at `x(1 ± 1e-13)`.
pub(crate) const LDSYM64: f64 = 1e-9;
/// Near an interior knot the two sides may use adjacent bins (see [`RT64_NEAR_KNOT`]), and
/// within one ulp of `±B` the inverse may land on the other side of the box edge, where
/// `log|J|` jumps from `ln 0.999` to 0 (Pyro pads the end derivatives with 0.999). There we allow
/// [`LDSYM64`] plus twice the variation of the log-det when the input moves by this much
/// (covering the 1e-6 window), measured on both sides.
pub(crate) const LDSYM_WINDOW: f64 = 2e-6;
/// `log_prob(x)` vs `StdNormal::log_prob(z) + ld_inverse(x)`: the flow computes exactly this
/// sum from the same inverse pass; we allow 4 ulps of the summands' magnitude.
pub(crate) const LP_ULPS: f64 = 4.0;
/// `log|det|` of a five-point central-difference Jacobian against the analytic value. With step
/// `h ≈ 1e-5` the truncation error is `O(h⁴)` and rounding ~`ε|y|/h` ≈ 1e-11 relative to
/// slopes ≳ 1e-5: 1e-6 in `log|det|` has a wide margin. The FD value is taken at `h/4` and
/// accepted as a reference only if it agrees with the one at `h` to `FD64/2` (converged);
/// points whose stencil could straddle a knot, `±B`, a `λ` junction (where the derivative or
/// `f''` jumps) or, after a coupling, a ReLU kink of a later hypernetwork are skipped.
pub(crate) const FD64: f64 = 1e-6;
/// Relative FD step.
pub(crate) const FD_REL_STEP: f64 = 1e-5;
/// The FD check is skipped where the first-order bound of the FD's own rounding on `ln|det|`
/// exceeds this (Jacobian entries so small — `|log det|` ≳ 25 — that differences of O(1)
/// outputs over a step of 2.5e-6 cannot resolve them); below it, the tolerance is
/// `FD64 + bound`.
pub(crate) const FD_ROUND_MAX: f64 = 1e-3;
/// How far from a break point the inputs of later layers must be for FD (the stencil's reach
/// of `2h = 2e-5` times up to 50 for the slope of the earlier layers).
pub(crate) const FD_MARGIN_LATER: f64 = 1e-3;
/// A hypernetwork pre-activation below this (after a coupling) may flip sign within the stencil.
pub(crate) const RELU_MARGIN: f64 = 2e-3;
/// Hypernetwork outputs beyond this are "extreme" (our hypernets have outputs of std ≲ 1 in the
/// box; a coupling's lower coordinate at ±1e3 or ±1e6 drives them to ~1e3–1e6). The splines are
/// then numerically degenerate — knot derivatives up to 1e6 next to bins of slope 1e-3 give
/// local slopes near 1e-12, so no inverse is accurate — and such points get the structural
/// checks only (no panic, no NaN in an `Ok`, documented errors, fused = separate, flow = layers,
/// log_prob = base + log-det), not the accuracy checks.
pub(crate) const EXTREME_RAW: f64 = 10.0;
/// A knot's image (f64), of `max(1, B)`: `θ = 1` exactly going forward, a few roundings of
/// values ≤ B; going back `θ` is solved for. Multiplied by the point's `κ` ([`formula_kappa`]).
pub(crate) const KNOT_Y64: f64 = 1e-12;
/// `log|J|` at a knot vs `ln δ_k` (f64), relative to `max(1, |ln δ|)`: logs of `s²δ` and `s²`
/// cancel; going back, a θ error of ~1e-14·κ times `d ld/dθ` (up to ~1e4 where `δ ≪ s`).
/// Multiplied by `κ`.
pub(crate) const KNOT_LD64: f64 = 1e-9;

// =============================================================================================
// Tolerances (f32). The f32 results are compared with the f64 results at the same (f32)
// input. The allowed error is a multiple of the f64 model's own sensitivity to a perturbation of
// the input by `PERTURB32` f32-ulps per coordinate (the spread of the outputs and of the
// log-det), plus `ε₃₂` times the size of the value: the usual first-order bound of a
// backward-stable evaluation. It also covers a bin chosen differently by the two precisions
// near the eps window (the spread then includes the jump). Pyro's formulas are not all
// backward stable — the quadratic inverse's `-b - √disc` and the linear order's `y_b - y_c`
// can cancel — so the tolerances are multiplied by the point's cancellation factor `κ ≥ 1`
// ([`formula_kappa`], the largest met along the walk). Where a spline is too steep for f32 to
// resolve (an input ulp moving the output by 1e-2) the measured spread, and so the tolerance,
// is large: f32 and f64 then legitimately differ by O(1).
// =============================================================================================

/// Perturbation of the input, in f32 ulps of `max(1, |x|)`, whose effect bounds the f32 error.
pub(crate) const PERTURB32: f64 = 4.0;
/// f32 output vs f64.
pub(crate) const C32_OUT: f64 = 16.0;
/// f32 log-det vs f64.
pub(crate) const C32_LD: f64 = 16.0;
/// f32 round trip beyond the f64 model's own round trip of the f32 output.
pub(crate) const C32_RT: f64 = 16.0;
/// f64: the multiple of the back pass's response to a 16-ulp perturbation (see
/// [`perturb64`]) allowed as round-trip and log-det-symmetry error at ill-conditioned points.
pub(crate) const C64: f64 = 16.0;
/// A knot's image in f32 going forward (θ = 1 exactly): 32 ulps of `max(1, B)`.
pub(crate) const KNOT_Y32: f64 = 32.0;
/// `log|J|` at a knot in f32 going forward: 128 ulps of `max(1, |ln δ|)`, times `κ` (the linear
/// order's `y_b - y_c` may cancel; see [`formula_kappa`]).
pub(crate) const KNOT_LD32: f64 = 128.0;

/// Grid sizes.
pub(crate) const RANDOM_POINTS: usize = 120;
pub(crate) const FD_POINTS_MAX: usize = 150;
pub(crate) const SAMPLES_PER_CASE: usize = 40;

/// Offsets from each interior knot: inside the `+1e-6` window, on its edge, just past it, and
/// further out.
pub(crate) const KNOT_OFFSETS: [f64; 13] = [
    5e-7, 1e-6, -1e-6, 1.5e-6, 2e-6, 3e-6, -3e-6, 1e-5, -1e-5, 1e-4, -1e-4, 1e-3, -1e-3,
];
/// Values every coordinate takes at least once: the origin and the far tails.
pub(crate) const TAILS: [f64; 9] = [0.0, 10.0, -10.0, 1e3, -1e3, 1e6, -1e6, 7.25, -7.25];
