//! Conformance suite for `flow-core`.
//!
//! One harness ([`run_case`]) runs over every transform type — `Affine` (scalar and per-dim),
//! `Exp`, `Spline` (linear and quadratic), `SplineCoupling` (plain and conditional),
//! `ConditionalSpline`, `Permute`, whole `Flow`s and `ConditionalFlow`s — each wrapped in a
//! `Flow`/`ConditionalFlow` with random parameters. On dense grids (every knot exactly,
//! knot ± 5e-7…1e-3, the `λ` junctions of the linear order, `±B` exactly and one ulp / 1e-7 /
//! 1e-4 either side, far tails ±10, ±1e3, ±1e6, random points), in both directions and in
//! both `f64` and `f32`, it checks:
//!
//! * round trips `inverse(forward(x)) ≈ x` and `forward(inverse(y)) ≈ y`;
//! * `log|det J|` against a finite-difference Jacobian (`f64`), and `f32` against `f64`;
//! * fused calls against separate calls, and the `Flow` against its layers applied one by one
//!   through the public `Layer::apply` (bit for bit);
//! * `log|det|` of the inverse against minus that of the forward;
//! * `log_prob` against `StdNormal::log_prob(z) + inverse log-det`;
//! * sampling: `sample_with_log_prob` against `sample`, against `forward` of the base draw,
//!   and against `log_prob`;
//! * monotonicity of element-wise transforms and of each coordinate of a coupling;
//! * that every knot maps to its `y` knot with `log|J| = ln δ_k`;
//! * non-finite inputs (`Error::NonFiniteInput`) and huge finite inputs (never a panic, never
//!   a NaN in an `Ok`).
//!
//! Further tests: the tutorial's LogNormal (closed-form density and sample moments), the
//! Box–Muller base, `JointFlow`, and constructor/capacity validation.
//!
//! Where flow-core legitimately cannot do better the harness says so instead of skipping
//! silently: `Err(Numerical)` is accepted only inside Pyro's 1e-6 bin-search window above a
//! knot, where a formula has lost every digit (`κ·ε` large, see `formula_kappa`), or where a
//! hypernetwork output is extreme (a coupling fed ±1e3/±1e6); accuracy checks are replaced by
//! conditioning-aware ones at ill-conditioned points. Each such case is counted in the summary.
//! `f32_quadratic_inverse_on_a_steep_knot_is_finite` is the regression test for the one failure
//! of "finite on every knot" found (now evaluated in the bin the point lies in).
//!
//! The harness prints a summary per group (run with `--nocapture`): per check, how many
//! points, the largest error and the largest error/tolerance ratio (with the worst point).

#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::f64::consts::TAU;
use std::ops::Range;

use flow_core::nn::dense_param_count;
use flow_core::spline::{knots_in_place, sigmoid, softplus};
use flow_core::{
    encode_f32s, Affine, Capacity, ConditionalFlow, ConditionalSpline, DenseNN, Density, Direction,
    Error, Exp, Flow, JointFlow, Layer, LayerError, Order, Permute, Real, Spline, SplineCoupling,
    SplineShape, StdNormal, Weights, Workspace,
};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

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
const RT64: f64 = 1e-9;
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
const RT64_NEAR_KNOT: f64 = 1e-5;
/// Distance to an interior knot within which the eps-window mismatch above can occur (the
/// window is 1e-6 wide; 1e-5 covers it for slopes up to 10).
const NEAR_KNOT: f64 = 1e-5;
/// Pyro's absolute bin-search offset.
const SEARCH_EPS: f64 = 1e-6;
/// `|ld_inverse(y) + ld_forward(x)|`, relative to `max(1, |ld|)`, away from knots and `±B`:
/// the same closed form evaluated at `x` and at `x(1 ± 1e-13)`.
const LDSYM64: f64 = 1e-9;
/// Near an interior knot the two sides may use adjacent bins (see [`RT64_NEAR_KNOT`]), and
/// within one ulp of `±B` the inverse may land on the other side of the box edge, where
/// `log|J|` jumps from `ln 0.999` to 0 (Pyro pads the end derivatives with 0.999). There we allow
/// [`LDSYM64`] plus twice the variation of the log-det when the input moves by this much
/// (covering the 1e-6 window), measured on both sides.
const LDSYM_WINDOW: f64 = 2e-6;
/// `log_prob(x)` vs `StdNormal::log_prob(z) + ld_inverse(x)`: the flow computes exactly this
/// sum from the same inverse pass; we allow 4 ulps of the summands' magnitude.
const LP_ULPS: f64 = 4.0;
/// `log|det|` of a five-point central-difference Jacobian against the analytic value. With step
/// `h ≈ 1e-5` the truncation error is `O(h⁴)` and rounding ~`ε|y|/h` ≈ 1e-11 relative to
/// slopes ≳ 1e-5: 1e-6 in `log|det|` has a wide margin. The FD value is taken at `h/4` and
/// accepted as a reference only if it agrees with the one at `h` to `FD64/2` (converged);
/// points whose stencil could straddle a knot, `±B`, a `λ` junction (where the derivative or
/// `f''` jumps) or, after a coupling, a ReLU kink of a later hypernetwork are skipped.
const FD64: f64 = 1e-6;
/// Relative FD step.
const FD_REL_STEP: f64 = 1e-5;
/// The FD check is skipped where the first-order bound of the FD's own rounding on `ln|det|`
/// exceeds this (Jacobian entries so small — `|log det|` ≳ 25 — that differences of O(1)
/// outputs over a step of 2.5e-6 cannot resolve them); below it, the tolerance is
/// `FD64 + bound`.
const FD_ROUND_MAX: f64 = 1e-3;
/// How far from a break point the inputs of later layers must be for FD (the stencil's reach
/// of `2h = 2e-5` times up to 50 for the slope of the earlier layers).
const FD_MARGIN_LATER: f64 = 1e-3;
/// A hypernetwork pre-activation below this (after a coupling) may flip sign within the stencil.
const RELU_MARGIN: f64 = 2e-3;
/// Hypernetwork outputs beyond this are "extreme" (our hypernets have outputs of std ≲ 1 in the
/// box; a coupling's lower coordinate at ±1e3 or ±1e6 drives them to ~1e3–1e6). The splines are
/// then numerically degenerate — knot derivatives up to 1e6 next to bins of slope 1e-3 give
/// local slopes near 1e-12, so no inverse is accurate — and such points get the structural
/// checks only (no panic, no NaN in an `Ok`, documented errors, fused = separate, flow = layers,
/// log_prob = base + log-det), not the accuracy checks.
const EXTREME_RAW: f64 = 10.0;
/// A knot's image (f64), of `max(1, B)`: `θ = 1` exactly going forward, a few roundings of
/// values ≤ B; going back `θ` is solved for. Multiplied by the point's `κ` ([`formula_kappa`]).
const KNOT_Y64: f64 = 1e-12;
/// `log|J|` at a knot vs `ln δ_k` (f64), relative to `max(1, |ln δ|)`: logs of `s²δ` and `s²`
/// cancel; going back, a θ error of ~1e-14·κ times `d ld/dθ` (up to ~1e4 where `δ ≪ s`).
/// Multiplied by `κ`.
const KNOT_LD64: f64 = 1e-9;

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
const PERTURB32: f64 = 4.0;
/// f32 output vs f64.
const C32_OUT: f64 = 16.0;
/// f32 log-det vs f64.
const C32_LD: f64 = 16.0;
/// f32 round trip beyond the f64 model's own round trip of the f32 output.
const C32_RT: f64 = 16.0;
/// f64: the multiple of the back pass's response to a 16-ulp perturbation (see
/// [`perturb64`]) allowed as round-trip and log-det-symmetry error at ill-conditioned points.
const C64: f64 = 16.0;
/// A knot's image in f32 going forward (θ = 1 exactly): 32 ulps of `max(1, B)`.
const KNOT_Y32: f64 = 32.0;
/// `log|J|` at a knot in f32 going forward: 128 ulps of `max(1, |ln δ|)`, times `κ` (the linear
/// order's `y_b - y_c` may cancel; see [`formula_kappa`]).
const KNOT_LD32: f64 = 128.0;

/// Grid sizes.
const RANDOM_POINTS: usize = 120;
const FD_POINTS_MAX: usize = 150;
const SAMPLES_PER_CASE: usize = 40;

/// Offsets from each interior knot: inside the `+1e-6` window, on its edge, just past it, and
/// further out.
const KNOT_OFFSETS: [f64; 13] = [
    5e-7, 1e-6, -1e-6, 1.5e-6, 2e-6, 3e-6, -3e-6, 1e-5, -1e-5, 1e-4, -1e-4, 1e-3, -1e-3,
];
/// Values every coordinate takes at least once: the origin and the far tails.
const TAILS: [f64; 9] = [0.0, 10.0, -10.0, 1e3, -1e3, 1e6, -1e6, 7.25, -7.25];

// =============================================================================================
// Scalars.
// =============================================================================================

trait Fp: Real + std::fmt::Display + std::fmt::LowerExp + Send + Sync + 'static {
    const NAME: &'static str;
    const EPS: f64;
    /// Huge finite values for the robustness checks.
    const HUGE: &'static [f64];
    fn up(self) -> Self;
    fn down(self) -> Self;
    fn bits(self) -> u64;
    fn normal(self) -> bool;
    fn model(case: &Case) -> &dyn Model<Self>;
    fn ulp(self) -> f64;
}

impl Fp for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    const HUGE: &'static [f64] = &[1e30, 3.402_823_466_385_288_6e38, 1e300, f64::MAX];
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn normal(self) -> bool {
        self.is_normal()
    }
    fn model(case: &Case) -> &dyn Model<f64> {
        case.model.as_ref()
    }
    fn ulp(self) -> f64 {
        (self.abs().next_up() - self.abs()).max(f64::MIN_POSITIVE)
    }
}

impl Fp for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    const HUGE: &'static [f64] = &[1e30, 3.402_823_466_385_288_6e38];
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn normal(self) -> bool {
        self.is_normal()
    }
    fn model(case: &Case) -> &dyn Model<f32> {
        case.model.as_ref()
    }
    fn ulp(self) -> f64 {
        f64::from(self.abs().next_up() - self.abs()).max(f64::from(f32::MIN_POSITIVE))
    }
}

fn bits_eq<T: Fp>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits() == y.bits())
}

fn widen<T: Fp>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

fn flip(dir: Direction) -> Direction {
    match dir {
        Direction::Forward => Direction::Inverse,
        Direction::Inverse => Direction::Forward,
    }
}

fn dtag(dir: Direction) -> &'static str {
    match dir {
        Direction::Forward => "fwd",
        Direction::Inverse => "inv",
    }
}

// =============================================================================================
// Random numbers and parameters.
// =============================================================================================

struct Rng(Pcg32);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(Pcg32::seed_from_u64(seed))
    }
    /// U[0, 1) with 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }
    /// N(0, 1) by our own Box–Muller (independent of the library's sampler).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// Encodes `vals` with `encode_f32s` into leaked bytes and views them with `Weights::new`.
fn leak(vals: &[f32]) -> Weights<'static> {
    let mut bytes = vec![0u8; vals.len() * 4];
    assert_eq!(encode_f32s(vals, &mut bytes), Some(vals.len() * 4));
    Weights::new(Box::leak(bytes.into_boxed_slice())).expect("multiple of 4")
}

fn leak_perm(p: &[u8]) -> &'static [u8] {
    Box::leak(p.to_vec().into_boxed_slice())
}

fn shape(bins: usize, bound: f32, order: Order) -> SplineShape {
    SplineShape::new(bins, bound, order).expect("valid shape")
}

/// Unconstrained spline parameters: widths, heights, derivatives ~ N(0, 1), lambdas ~ U(-2, 2).
fn spline_params(rng: &mut Rng, dim: usize, sh: &SplineShape) -> Vec<f32> {
    let k = sh.bins();
    let mut v: Vec<f32> = (0..2 * dim * k + dim * (k - 1))
        .map(|_| rng.normal() as f32)
        .collect();
    v.extend((0..dim * sh.lambdas_per_dim()).map(|_| rng.range(-2.0, 2.0) as f32));
    v
}

fn rand_spline(rng: &mut Rng, dim: usize, sh: SplineShape) -> Spline<'static> {
    Spline::new(dim, sh, leak(&spline_params(rng, dim, &sh))).expect("spline")
}

/// A dense network with weights ~ N(0, 0.7²/fan_in) and biases ~ N(0, 0.3²): its outputs have
/// std ≲ 1 for inputs in the box (as the golden README recommends), so the splines it
/// parameterizes are far from the identity but not degenerate.
fn rand_nn(rng: &mut Rng, input: usize, hidden: &[usize], output: usize) -> DenseNN<'static> {
    let mut v = Vec::new();
    let mut prev = input;
    for &h in hidden.iter().chain(std::iter::once(&output)) {
        let s = 0.7 / (prev as f64).sqrt();
        v.extend((0..prev * h).map(|_| (rng.normal() * s) as f32));
        v.extend((0..h).map(|_| (rng.normal() * 0.3) as f32));
        prev = h;
    }
    assert_eq!(v.len(), dense_param_count(input, hidden, output));
    DenseNN::new(input, hidden, output, leak(&v)).expect("dense nn")
}

fn rand_coupling(
    rng: &mut Rng,
    dim: usize,
    split: usize,
    hidden: &[usize],
    lower: SplineShape,
    upper: SplineShape,
    context: usize,
) -> SplineCoupling<'static> {
    let low = rand_spline(rng, split, lower);
    let up = dim - split;
    let nn = rand_nn(rng, split + context, hidden, up * upper.params_per_dim());
    SplineCoupling::new(low, up, upper, nn, context).expect("coupling")
}

fn rand_cond_spline(
    rng: &mut Rng,
    dim: usize,
    context: usize,
    hidden: &[usize],
    sh: SplineShape,
) -> ConditionalSpline<'static> {
    let nn = rand_nn(rng, context, hidden, dim * sh.params_per_dim());
    ConditionalSpline::new(dim, sh, nn).expect("conditional spline")
}

// =============================================================================================
// The models under test, behind one object-safe interface per scalar type.
// =============================================================================================

/// The transforms of a model (forward, inverse, with and without `log|J|`) and, through
/// flow-core's [`Density`], its density and sampler.
trait Model<T: Fp> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error>;
    /// The separate (non-fused) call, where the API has one.
    fn fwd(&self, x: &[T]) -> Option<Result<Vec<T>, Error>>;
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error>;
    fn inv(&self, y: &[T]) -> Option<Result<Vec<T>, Error>>;
    fn log_prob(&self, x: &[T]) -> Result<T, Error>;
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error>;
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error>;
}

trait AnyModel: Model<f32> + Model<f64> + Send + Sync {}
impl<M: Model<f32> + Model<f64> + Send + Sync> AnyModel for M {}

fn arr<T: Copy, const D: usize>(x: &[T]) -> [T; D] {
    x.try_into().expect("point has the model's dimension")
}

struct FlowModel<const D: usize>(Flow<'static, D>);

impl<T: Fp, const D: usize> Model<T> for FlowModel<D> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error> {
        let (y, l) = self.0.forward_and_log_det(&arr::<T, D>(x))?;
        Ok((y.to_vec(), l))
    }
    fn fwd(&self, x: &[T]) -> Option<Result<Vec<T>, Error>> {
        Some(self.0.forward(&arr::<T, D>(x)).map(|y| y.to_vec()))
    }
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self.0.inverse_and_log_det(&arr::<T, D>(y))?;
        Ok((x.to_vec(), l))
    }
    fn inv(&self, y: &[T]) -> Option<Result<Vec<T>, Error>> {
        Some(self.0.inverse(&arr::<T, D>(y)).map(|x| x.to_vec()))
    }
    fn log_prob(&self, x: &[T]) -> Result<T, Error> {
        Density::log_prob(&self.0, &arr::<T, D>(x), &[])
    }
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error> {
        Ok(Density::sample::<T, _>(&self.0, rng, &[])?.to_vec())
    }
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self.0.sample_with_log_prob::<T, _>(rng)?;
        Ok((x.to_vec(), l))
    }
}

/// A `ConditionalFlow` with a fixed context (f32 values, so the f64 and f32 models see the
/// same context).
struct CondModel<const D: usize, const C: usize>(ConditionalFlow<'static, D, C>, [f64; C]);

impl<const D: usize, const C: usize> CondModel<D, C> {
    fn ctx<T: Fp>(&self) -> [T; C] {
        std::array::from_fn(|i| T::from_f64(self.1[i]))
    }
}

impl<T: Fp, const D: usize, const C: usize> Model<T> for CondModel<D, C> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error> {
        let c = self.ctx::<T>();
        let (y, l) = self.0.condition(&c).forward_and_log_det(&arr::<T, D>(x))?;
        Ok((y.to_vec(), l))
    }
    fn fwd(&self, _: &[T]) -> Option<Result<Vec<T>, Error>> {
        None // `Conditioned` has only the fused calls.
    }
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error> {
        let c = self.ctx::<T>();
        let (x, l) = self.0.condition(&c).inverse_and_log_det(&arr::<T, D>(y))?;
        Ok((x.to_vec(), l))
    }
    fn inv(&self, _: &[T]) -> Option<Result<Vec<T>, Error>> {
        None
    }
    fn log_prob(&self, x: &[T]) -> Result<T, Error> {
        let c = self.ctx::<T>();
        let a = Density::log_prob(&self.0, &arr::<T, D>(x), &c);
        // The two entry points must agree bit for bit.
        let b = self.0.condition(&c).log_prob(&arr::<T, D>(x));
        match (a, b) {
            (Ok(u), Ok(v)) if u.bits() != v.bits() => Err(Error::Numerical),
            _ => a,
        }
    }
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error> {
        Ok(Density::sample(&self.0, rng, &self.ctx::<T>())?.to_vec())
    }
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self
            .0
            .condition(&self.ctx::<T>())
            .sample_with_log_prob(rng)?;
        Ok((x.to_vec(), l))
    }
}

struct Case {
    name: String,
    dim: usize,
    layers: Vec<Layer<'static>>,
    /// The fixed context (f32-exact values), empty for unconditional cases.
    ctx: Vec<f64>,
    model: Box<dyn AnyModel>,
    /// Element-wise cases: the direction of monotonicity per dimension (+1 or -1).
    monotone: Option<Vec<f64>>,
    /// A single coupling: each output coordinate is increasing in its own input coordinate.
    triangular: bool,
    /// Contains `Exp` (always as the last layer): outputs may overflow, the inverse has a
    /// restricted support.
    has_exp: bool,
}

impl Case {
    fn ctx_t<T: Fp>(&self) -> Vec<T> {
        self.ctx.iter().map(|&c| T::from_f64(c)).collect()
    }
    /// The largest spline bound in the case (3 when there is none).
    fn bmax(&self) -> f64 {
        let mut b: f64 = 0.0;
        for l in &self.layers {
            match l {
                Layer::Spline(s) => b = b.max(f64::from(s.shape().bound())),
                Layer::Coupling(c) => {
                    b = b
                        .max(f64::from(c.lower().shape().bound()))
                        .max(f64::from(c.upper_shape().bound()))
                }
                Layer::ConditionalSpline(s) => b = b.max(f64::from(s.shape().bound())),
                _ => {}
            }
        }
        if b == 0.0 {
            3.0
        } else {
            b
        }
    }
}

fn flow_case(name: &str, layers: Vec<Layer<'static>>, monotone: Option<Vec<f64>>) -> Case {
    let dim = layers[0].dim();
    let model: Box<dyn AnyModel> = match dim {
        1 => Box::new(FlowModel::<1>(Flow::new(&layers).expect(name))),
        2 => Box::new(FlowModel::<2>(Flow::new(&layers).expect(name))),
        3 => Box::new(FlowModel::<3>(Flow::new(&layers).expect(name))),
        4 => Box::new(FlowModel::<4>(Flow::new(&layers).expect(name))),
        5 => Box::new(FlowModel::<5>(Flow::new(&layers).expect(name))),
        _ => panic!("dimension {dim} not wired up"),
    };
    finish_case(name, layers, Vec::new(), model, monotone)
}

fn cond_case(
    name: &str,
    layers: Vec<Layer<'static>>,
    ctx: Vec<f32>,
    monotone: Option<Vec<f64>>,
) -> Case {
    let dim = layers[0].dim();
    let c64: Vec<f64> = ctx.iter().map(|&c| f64::from(c)).collect();
    macro_rules! wire {
        ($(($d:literal, $c:literal)),*) => {
            match (dim, ctx.len()) {
                $(($d, $c) => Box::new(CondModel::<$d, $c>(
                    ConditionalFlow::new(&layers).expect(name),
                    arr::<f64, $c>(&c64),
                )) as Box<dyn AnyModel>,)*
                _ => panic!("(dim, context) = ({dim}, {}) not wired up", ctx.len()),
            }
        };
    }
    let model = wire!(
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 1),
        (3, 2),
        (3, 3),
        (4, 2)
    );
    finish_case(name, layers, c64, model, monotone)
}

fn finish_case(
    name: &str,
    layers: Vec<Layer<'static>>,
    ctx: Vec<f64>,
    model: Box<dyn AnyModel>,
    monotone: Option<Vec<f64>>,
) -> Case {
    let has_exp = layers.iter().any(|l| matches!(l, Layer::Exp(_)));
    if has_exp {
        assert!(
            matches!(layers.last(), Some(Layer::Exp(_))),
            "Exp must be last"
        );
    }
    let triangular = layers.len() == 1 && matches!(layers[0], Layer::Coupling(_));
    Case {
        name: name.to_string(),
        dim: layers[0].dim(),
        layers,
        ctx,
        model,
        monotone,
        triangular,
        has_exp,
    }
}

// =============================================================================================
// Test-side evaluation helpers: layers one at a time, spline geometry, finite differences.
// =============================================================================================

fn go<T: Fp>(m: &dyn Model<T>, dir: Direction, x: &[T]) -> Result<(Vec<T>, T), Error> {
    match dir {
        Direction::Forward => m.fwd_ld(x),
        Direction::Inverse => m.inv_ld(x),
    }
}

fn go_sep<T: Fp>(m: &dyn Model<T>, dir: Direction, x: &[T]) -> Option<Result<Vec<T>, Error>> {
    match dir {
        Direction::Forward => m.fwd(x),
        Direction::Inverse => m.inv(x),
    }
}

/// One layer through the public `Layer::apply`; unconditional layers get no context.
fn apply_layer<T: Fp>(
    layer: &Layer,
    v: &mut [T],
    ctx: &[T],
    dir: Direction,
    lds: &mut [T],
) -> Result<T, Error> {
    let mut ws = Workspace::<T, 64, 32>::new();
    let c = if layer.context_dim() > 0 { ctx } else { &[] };
    layer.apply(v, c, lds, dir, &mut ws)
}

/// Applies `layers[range]` in `dir`'s order (reversed for the inverse).
fn walk<T: Fp>(
    layers: &[Layer],
    ctx: &[T],
    x: &[T],
    dir: Direction,
    range: Range<usize>,
) -> Result<(Vec<T>, T), Error> {
    let mut v = x.to_vec();
    let mut lds = vec![T::ZERO; v.len()];
    let mut total = T::ZERO;
    let idx: Vec<usize> = match dir {
        Direction::Forward => range.collect(),
        Direction::Inverse => range.rev().collect(),
    };
    for i in idx {
        total += apply_layer(&layers[i], &mut v, ctx, dir, &mut lds)?;
    }
    Ok((v, total))
}

/// One spline dimension's derived quantities, computed as spline.rs documents them (with the
/// public `knots_in_place`, `softplus` and `sigmoid`).
#[derive(Clone, Debug)]
struct Geom<T> {
    /// `x_0 = -B, x_1, …, x_K = B`.
    xk: Vec<T>,
    yk: Vec<T>,
    /// `δ_0 … δ_K`.
    d: Vec<T>,
    /// `λ_k` (linear order only).
    lam: Vec<T>,
    bound: T,
    quadratic: bool,
}

#[derive(Clone, Debug, Default)]
struct Breaks<T> {
    interior: Vec<T>,
    bound: Option<T>,
    junctions: Vec<T>,
}

impl<T: Fp> Breaks<T> {
    fn all(&self) -> Vec<T> {
        let mut v = self.interior.clone();
        v.extend(&self.junctions);
        if let Some(b) = self.bound {
            v.push(b);
            v.push(-b);
        }
        v
    }
}

/// Geometry of dimension `j` of a parameter vector laid out as `[uw | uh | ud | ul]`, each
/// block row-major over `dims` dimensions (the layout of `Spline` weights and hypernet outputs).
fn geom<T: Fp>(sh: &SplineShape, raw: &[T], dims: usize, j: usize) -> Geom<T> {
    let k = sh.bins();
    let b = T::from_f32(sh.bound());
    let mut w = raw[j * k..(j + 1) * k].to_vec();
    knots_in_place(&mut w, b);
    let mut h = raw[(dims + j) * k..(dims + j + 1) * k].to_vec();
    knots_in_place(&mut h, b);
    let mut xk = vec![-b];
    xk.extend(w);
    let mut yk = vec![-b];
    yk.extend(h);
    let end = T::from_f64(1.0 - 1e-3);
    let db = 2 * dims * k + j * (k - 1);
    let mut d = vec![end];
    d.extend((0..k - 1).map(|i| T::from_f64(1e-3) + softplus(raw[db + i])));
    d.push(end);
    let lb = 2 * dims * k + dims * (k - 1) + j * k;
    let lam = (0..sh.lambdas_per_dim())
        .map(|i| T::from_f64(0.95) * sigmoid(raw[lb + i]) + T::from_f64(0.025))
        .collect();
    Geom {
        xk,
        yk,
        d,
        lam,
        bound: b,
        quadratic: sh.order() == Order::Quadratic,
    }
}

/// Break points of one dimension in the input space of `dir`: interior knots, `±B`, and the
/// linear order's junctions (`x_k + λ_k Δx_k` forward, `y_c` of bin `k` going back), where `f''`
/// jumps and the formula switches branch.
fn breaks_of<T: Fp>(g: &Geom<T>, dir: Direction) -> Breaks<T> {
    let k = g.xk.len() - 1;
    let knots = match dir {
        Direction::Forward => &g.xk,
        Direction::Inverse => &g.yk,
    };
    let junctions = g
        .lam
        .iter()
        .enumerate()
        .map(|(i, &l)| match dir {
            Direction::Forward => g.xk[i] + l * (g.xk[i + 1] - g.xk[i]),
            Direction::Inverse => {
                let (ya, dy) = (g.yk[i], g.yk[i + 1] - g.yk[i]);
                let yb = dy + ya;
                let wb = (g.d[i] / g.d[i + 1]).sqrt();
                ((T::ONE - l) * ya + l * wb * yb) / ((T::ONE - l) + l * wb)
            }
        })
        .collect();
    Breaks {
        interior: knots[1..k].to_vec(),
        bound: Some(g.bound),
        junctions,
    }
}

/// The rounding-error amplification of the formula Pyro evaluates at `v` (in `dir`, in the bin
/// its search picks), beyond what a perturbation of the input explains; 1 outside the box.
///
/// * Quadratic inverse: `θ = 2q/(-b - √disc)` cancels when `b < 0`, and `disc = b² - 4aq`
///   cancels when the knot derivative is small against the bin slope:
///   `κ = (|b| + √disc)/|b + √disc| + √disc/|b + √disc| · (b² + |4aq|)/(2 disc)`.
/// * Linear order: `log|J|` needs `y_c - y_a` (or `y_b - y_c`), computed from `y_c`, which lies
///   within a tiny fraction of a bin from `y_a` (`y_b`) when `λ` or `w_b` are extreme:
///   `κ = (|y_a| + |y_c|)/|y_c - y_a|`; the inverse's `θ = num/den` has the terms of `num` and
///   `den` large against `den`: `κ = (Σ|num terms| + |θ| Σ|den terms|)/|den|`.
/// * Quadratic forward: every term is positive (`den > s/2`): 1.
fn formula_kappa<T: Fp>(g: &Geom<T>, v: T, dir: Direction) -> f64 {
    let (v, bd) = (v.to_f64(), g.bound.to_f64());
    if !(v >= -bd && v <= bd) {
        return 1.0;
    }
    let knots = match dir {
        Direction::Forward => &g.xk,
        Direction::Inverse => &g.yk,
    };
    let kk = knots.len() - 1;
    let count = knots
        .iter()
        .filter(|&&t| v >= t.to_f64() + SEARCH_EPS)
        .count();
    let k = count.saturating_sub(1).min(kk - 1);
    let f = |a: &[T], i: usize| a[i].to_f64();
    let (xa, dx) = (f(&g.xk, k), f(&g.xk, k + 1) - f(&g.xk, k));
    let (ya, dy) = (f(&g.yk, k), f(&g.yk, k + 1) - f(&g.yk, k));
    let s = dy / dx;
    let (d0, d1) = (f(&g.d, k), f(&g.d, k + 1));
    let ratio = |terms: f64, val: f64| {
        if val == 0.0 {
            f64::INFINITY
        } else {
            (terms / val.abs()).max(1.0)
        }
    };
    if g.quadratic {
        if dir == Direction::Forward {
            return 1.0;
        }
        let delta = v - ya;
        let c = d0 + d1 - 2.0 * s;
        let a = delta * c + dy * (s - d0);
        let b = dy * d0 - delta * c;
        let q = -s * delta;
        let disc = b * b - 4.0 * a * q;
        let r = disc.max(0.0).sqrt();
        // `-b - √disc` cancels when `b < 0`; and `disc` itself cancels when `δ_{k+1} ≪ s`
        // (at a knot `disc = Δy²δ²` from terms of size `4s²Δy²`), its relative error reaching
        // √disc through the square root halved.
        let outer = ratio(b.abs() + r, -b - r);
        let inner = if disc > 0.0 {
            ratio(r, -b - r) * 0.5 * (b * b + (4.0 * a * q).abs()) / disc
        } else {
            f64::INFINITY
        };
        return outer + inner;
    }
    let l = f(&g.lam, k);
    let wb = (d0 / d1).sqrt();
    let wc = (l * d0 + (1.0 - l) * wb * d1) / s;
    let yb = dy + ya;
    let yc = ((1.0 - l) * ya + l * wb * yb) / ((1.0 - l) + l * wb);
    let left = ratio(ya.abs() + yc.abs(), yc - ya);
    let right = ratio(yb.abs() + yc.abs(), yb - yc);
    match dir {
        Direction::Forward => {
            if (v - xa) / dx <= l {
                left
            } else {
                right
            }
        }
        Direction::Inverse => {
            let (num_terms, den, den_terms, kld) = if v <= yc {
                (
                    l * (ya.abs() + v.abs()),
                    (wc - 1.0) * v + ya - wc * yc,
                    ((wc - 1.0) * v).abs() + ya.abs() + (wc * yc).abs(),
                    left,
                )
            } else {
                (
                    ((wc - l * wb) * v).abs() + (l * wb * yb).abs() + (wc * yc).abs(),
                    (wc - wb) * v + wb * yb - wc * yc,
                    ((wc - wb) * v).abs() + (wb * yb).abs() + (wc * yc).abs(),
                    right,
                )
            };
            let theta = if v <= yc {
                l * (ya - v) / den
            } else {
                ((wc - l * wb) * v + l * wb * yb - wc * yc) / den
            };
            kld.max(ratio(num_terms + theta.abs() * den_terms, den))
        }
    }
}

/// How much rounding of the knots is amplified in the bin used at `v` (0 outside the box):
/// `Δx = x_{k+1} - x_k` is a difference of values up to `B` apart by as little as `2B·1e-3`, so
/// its relative error is `ε (|x_k| + |x_{k+1}|)/Δx`, likewise `Δy`; `log|J|` contains
/// `ln s² = 2 ln Δy - 2 ln Δx`.
fn knot_cancel<T: Fp>(g: &Geom<T>, v: T, dir: Direction) -> f64 {
    let (v, bd) = (v.to_f64(), g.bound.to_f64());
    if !(v >= -bd && v <= bd) {
        return 0.0;
    }
    let knots = match dir {
        Direction::Forward => &g.xk,
        Direction::Inverse => &g.yk,
    };
    let kk = knots.len() - 1;
    let count = knots
        .iter()
        .filter(|&&t| v >= t.to_f64() + SEARCH_EPS)
        .count();
    let k = count.saturating_sub(1).min(kk - 1);
    let c = |a: &[T]| {
        let (lo, hi) = (a[k].to_f64(), a[k + 1].to_f64());
        (lo.abs() + hi.abs()) / (hi - lo)
    };
    2.0 * (c(&g.xk) + c(&g.yk))
}

fn nn_out<T: Fp>(nn: &DenseNN, a: &[T], b: &[T]) -> Vec<T> {
    let w = nn.max_hidden().max(1);
    let (mut h0, mut h1) = (vec![T::ZERO; w], vec![T::ZERO; w]);
    let mut out = vec![T::ZERO; nn.output_len()];
    nn.forward(a, b, &mut h0, &mut h1, &mut out)
        .expect("hypernet forward");
    out
}

/// What acts on each coordinate of a layer's input.
struct LayerGeom<T> {
    /// Per coordinate, the spline geometry acting on it, if any.
    dims: Vec<Option<Geom<T>>>,
    /// The largest |hypernetwork output| (0 without a hypernetwork).
    max_raw: f64,
}

/// The geometry of `layer` at `input` (in `dir`). A coupling's upper geometry depends on `x1`:
/// the input's lower part going forward, the lower spline's inverse of it going back.
fn layer_geoms<T: Fp>(layer: &Layer, input: &[T], ctx: &[T], dir: Direction) -> LayerGeom<T> {
    let raw_of = |w: Weights| -> Vec<T> { w.iter().map(T::from_f32).collect() };
    let maxabs = |v: &[T]| v.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max);
    match layer {
        Layer::Spline(s) => {
            let raw = raw_of(s.weights());
            LayerGeom {
                dims: (0..s.dim())
                    .map(|j| Some(geom(s.shape(), &raw, s.dim(), j)))
                    .collect(),
                max_raw: 0.0,
            }
        }
        Layer::Coupling(c) => {
            let sp = c.split();
            let raw = raw_of(c.lower().weights());
            let mut dims: Vec<Option<Geom<T>>> = (0..sp)
                .map(|j| Some(geom(c.lower().shape(), &raw, sp, j)))
                .collect();
            let mut x1 = input[..sp].to_vec();
            if dir == Direction::Inverse {
                let mut lds = vec![T::ZERO; sp];
                apply_layer(&Layer::Spline(*c.lower()), &mut x1, &[], dir, &mut lds)
                    .expect("lower inverse");
            }
            let cctx = if c.context_dim() > 0 { ctx } else { &[] };
            let out = nn_out(c.hypernet(), &x1, cctx);
            let up = c.upper_dim();
            dims.extend((0..up).map(|j| Some(geom(c.upper_shape(), &out, up, j))));
            LayerGeom {
                dims,
                max_raw: maxabs(&out),
            }
        }
        Layer::ConditionalSpline(s) => {
            let out = nn_out(s.hypernet(), ctx, &[]);
            LayerGeom {
                dims: (0..s.dim())
                    .map(|j| Some(geom(s.shape(), &out, s.dim(), j)))
                    .collect(),
                max_raw: maxabs(&out),
            }
        }
        _ => LayerGeom {
            dims: vec![None; layer.dim()],
            max_raw: 0.0,
        },
    }
}

/// The smallest |pre-activation| of the hidden layers of `nn` at `input` (∞ without hidden layers).
fn relu_margin(nn: &DenseNN, input: &[f64]) -> f64 {
    let w: Vec<f64> = nn.weights().iter().map(f64::from).collect();
    let mut prev = input.to_vec();
    let mut off = 0;
    let mut m = f64::INFINITY;
    for &h in nn.hidden_sizes() {
        let n_in = prev.len();
        let next: Vec<f64> = (0..h)
            .map(|r| {
                let a: f64 = (0..n_in)
                    .map(|i| w[off + r * n_in + i] * prev[i])
                    .sum::<f64>()
                    + w[off + h * n_in + r];
                m = m.min(a.abs());
                a.max(0.0)
            })
            .collect();
        off += h * n_in + h;
        prev = next;
    }
    m
}

fn dist<T: Fp>(v: T, pts: &[T]) -> f64 {
    pts.iter()
        .map(|p| (v.to_f64() - p.to_f64()).abs())
        .fold(f64::INFINITY, f64::min)
}

/// What a point is near, walking it through the layers in `dir` (in `T`, with `T`'s knots).
#[derive(Default)]
struct Class {
    /// Within [`NEAR_KNOT`] of an interior knot at some layer (input side in `dir`'s knots,
    /// output side in the other's).
    near_knot: bool,
    /// Within [`NEAR_KNOT`] of `±B` at some layer (input or output side).
    near_bound: bool,
    /// In `(knot, knot + 1e-6]` of an interior knot at some layer: evaluated by Pyro's search
    /// in the bin to the left, extrapolated beyond `θ = 1`.
    eps_window: bool,
    /// Some hypernetwork output beyond [`EXTREME_RAW`].
    extreme: bool,
    /// The largest |hypernetwork output| met.
    max_raw: f64,
    /// The knot-differencing amplification ([`knot_cancel`]) summed over the coordinates and
    /// layers met.
    knot_cancel: f64,
    /// Far enough from every break point (and later ReLU kinks) for the FD stencil.
    fd_ok: bool,
    /// The largest formula amplification factor met (see [`formula_kappa`]; 1 if none).
    kappa: f64,
}

fn classify<T: Fp>(layers: &[Layer], ctx: &[T], p: &[T], dir: Direction) -> Class {
    let n = layers.len();
    let order: Vec<usize> = match dir {
        Direction::Forward => (0..n).collect(),
        Direction::Inverse => (0..n).rev().collect(),
    };
    let mut cur = p.to_vec();
    let mut lds = vec![T::ZERO; p.len()];
    let mut c = Class {
        fd_ok: true,
        kappa: 1.0,
        ..Default::default()
    };
    let mut mixed = false;
    for (step, &li) in order.iter().enumerate() {
        let layer = &layers[li];
        let lg = layer_geoms(layer, &cur, ctx, dir);
        c.extreme |= lg.max_raw > EXTREME_RAW;
        c.max_raw = c.max_raw.max(lg.max_raw);
        for (i, g) in lg.dims.iter().enumerate() {
            let Some(g) = g else { continue };
            let br = breaks_of(g, dir);
            let v = cur[i];
            c.eps_window |= br.interior.iter().any(|&k| {
                let o = v.to_f64() - k.to_f64();
                // Strictly above the knot (on it θ = 1 exactly: the suite requires a finite
                // result there), up to the window's edge plus rounding. In f32 the window holds
                // only the two or three floats just above the knot.
                let u = 2.0 * k.ulp();
                o > 0.0 && o <= SEARCH_EPS * (1.0 + 1e-6) + u
            });
            c.near_knot |= dist(v, &br.interior) < NEAR_KNOT;
            c.near_bound |= (v.to_f64().abs() - g.bound.to_f64()).abs() < NEAR_KNOT;
            // The first layer sees the stencil itself (reach 2h); later layers an image of it.
            let margin = if step == 0 {
                6.0 * fd_step(v.to_f64())
            } else {
                FD_MARGIN_LATER
            };
            if dist(v, &br.all()) < margin {
                c.fd_ok = false;
            }
            c.kappa = c.kappa.max(formula_kappa(g, v, dir));
            c.knot_cancel += knot_cancel(g, v, dir);
        }
        let mut next = cur.clone();
        if apply_layer(layer, &mut next, ctx, dir, &mut lds).is_err() {
            c.fd_ok = false;
            return c;
        }
        for (i, g) in lg.dims.iter().enumerate() {
            let Some(g) = g else { continue };
            let br = breaks_of(g, flip(dir));
            c.near_knot |= dist(next[i], &br.interior) < NEAR_KNOT;
            c.near_bound |= (next[i].to_f64().abs() - g.bound.to_f64()).abs() < NEAR_KNOT;
        }
        // A ReLU kink in the hypernet of a coupling that follows another coupling makes the FD
        // columns mix Jacobians from both sides of the kink, which changes the determinant (for
        // the first coupling, or after element-wise layers and permutations, a kink only
        // touches the below-diagonal block and leaves the determinant alone).
        if let Layer::Coupling(cp) = layer {
            if mixed {
                let x1 = match dir {
                    Direction::Forward => &cur[..cp.split()],
                    Direction::Inverse => &next[..cp.split()],
                };
                let mut input = widen(x1);
                if cp.context_dim() > 0 {
                    input.extend(widen(ctx));
                }
                if relu_margin(cp.hypernet(), &input) < RELU_MARGIN {
                    c.fd_ok = false;
                }
            }
            mixed = true;
        }
        cur = next;
    }
    c
}

/// A power-of-two step ≈ `FD_REL_STEP · max(1, |x|)` (so `x ± h` are exact in most cases).
fn fd_step(x: f64) -> f64 {
    let h = FD_REL_STEP * x.abs().max(1.0);
    2f64.powi(h.log2().round() as i32)
}

/// Five-point central-difference Jacobian of `f` at `x`, steps `fd_step(x_c) · scale`.
fn fd_jacobian(
    f: &dyn Fn(&[f64]) -> Option<Vec<f64>>,
    x: &[f64],
    scale: f64,
) -> Option<Vec<Vec<f64>>> {
    let d = x.len();
    let mut j = vec![vec![0.0; d]; d];
    for c in 0..d {
        let h = fd_step(x[c]) * scale;
        let at = |s: f64| {
            let mut p = x.to_vec();
            p[c] += s * h;
            f(&p)
        };
        let (m2, m1, p1, p2) = (at(-2.0)?, at(-1.0)?, at(1.0)?, at(2.0)?);
        for r in 0..d {
            j[r][c] = (m2[r] - 8.0 * m1[r] + 8.0 * p1[r] - p2[r]) / (12.0 * h);
        }
    }
    Some(j)
}

/// `ln|det a|` by LU with partial pivoting.
fn log_abs_det(mut a: Vec<Vec<f64>>) -> f64 {
    let n = a.len();
    let mut s = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("non-empty");
        a.swap(c, p);
        let piv = a[c][c];
        if piv == 0.0 {
            return f64::NEG_INFINITY;
        }
        s += piv.abs().ln();
        for r in c + 1..n {
            let f = a[r][c] / piv;
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
        }
    }
    s
}

/// How much the f64 model's outputs (per coordinate) and log-det move when one input
/// coordinate moves by `±delta(x_j)`, summed over the coordinates `j`. A perturbed point where
/// the model errs (an accepted `Numerical` in an eps window) is left out; `None` if all are.
#[allow(clippy::type_complexity)]
fn spread(
    m: &dyn Model<f64>,
    dir: Direction,
    p: &[f64],
    base: &(Vec<f64>, f64),
    delta: &dyn Fn(f64) -> f64,
) -> Option<(Vec<f64>, f64)> {
    let d = p.len();
    let mut so = vec![0.0; d];
    let mut sl = 0.0;
    let mut any = false;
    for j in 0..d {
        let mut mo = vec![0.0f64; d];
        let mut ml = 0.0f64;
        for sgn in [1.0, -1.0] {
            let mut pp = p.to_vec();
            pp[j] += sgn * delta(p[j]);
            let Ok((q, l)) = go(m, dir, &pp) else {
                continue;
            };
            any = true;
            for i in 0..d {
                mo[i] = mo[i].max((q[i] - base.0[i]).abs());
            }
            ml = ml.max((l - base.1).abs());
        }
        for i in 0..d {
            so[i] += mo[i];
        }
        sl += ml;
    }
    any.then_some((so, sl))
}

/// The f32 conditioning probe for `case`: `PERTURB32` f32-ulps of `max(1, |v|, B)` — the knots
/// are computed at the scale of the bound `B`, and an error of a few ulps of `B` in a knot acts
/// like a shift of the input by as much.
fn perturb32(case: &Case) -> impl Fn(f64) -> f64 {
    let b = case.bmax();
    move |v: f64| PERTURB32 * f32::EPS * v.abs().max(1.0).max(b)
}

// =============================================================================================
// Bookkeeping.
// =============================================================================================

#[derive(Default, Clone)]
struct Stat {
    n: usize,
    max_err: f64,
    max_ratio: f64,
    /// What `worst` is ranked by: the ratio, or the error for informational keys (infinite
    /// tolerance).
    rank: f64,
    worst: String,
}

#[derive(Default)]
struct Acc {
    case: String,
    stats: BTreeMap<&'static str, Stat>,
    fails: Vec<String>,
    nfail: usize,
    outcomes: BTreeMap<String, usize>,
}

impl Acc {
    fn new(case: &str) -> Self {
        Acc {
            case: case.to_string(),
            ..Default::default()
        }
    }

    /// Records `err` against `tol`; a failure when `err > tol` or `err` is NaN.
    fn check(&mut self, key: &'static str, err: f64, tol: f64, what: impl FnOnce() -> String) {
        let err = if err.is_nan() { f64::INFINITY } else { err };
        let ratio = if tol > 0.0 {
            err / tol
        } else if err > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let st = self.stats.entry(key).or_default();
        st.n += 1;
        st.max_err = st.max_err.max(err);
        st.max_ratio = st.max_ratio.max(ratio);
        let rank = if tol.is_infinite() { err } else { ratio };
        let new_worst = rank > st.rank;
        if new_worst {
            st.rank = rank;
        }
        let fail = err > tol; // err is never NaN here
        if new_worst || fail {
            let msg = format!("[{}] {}", self.case, what());
            if new_worst {
                self.stats.get_mut(key).expect("present").worst = msg.clone();
            }
            if fail {
                self.nfail += 1;
                if self.fails.len() < 40 {
                    self.fails
                        .push(format!("{key}: err {err:.3e} > tol {tol:.3e}: {msg}"));
                }
            }
        }
    }

    fn ok(&mut self, key: &'static str, cond: bool, what: impl FnOnce() -> String) {
        self.check(key, if cond { 0.0 } else { 1.0 }, 0.0, what);
    }

    fn count(&mut self, key: &'static str) {
        self.stats.entry(key).or_default().n += 1;
    }

    fn n(&self, key: &str) -> usize {
        self.stats.get(key).map_or(0, |s| s.n)
    }

    fn merge(&mut self, o: Acc) {
        for (k, s) in o.stats {
            let t = self.stats.entry(k).or_default();
            t.n += s.n;
            t.max_err = t.max_err.max(s.max_err);
            t.max_ratio = t.max_ratio.max(s.max_ratio);
            if s.rank > t.rank || t.worst.is_empty() {
                t.rank = s.rank;
                t.worst = s.worst;
            }
        }
        self.nfail += o.nfail;
        for f in o.fails {
            if self.fails.len() < 40 {
                self.fails.push(f);
            }
        }
        for (k, v) in o.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }

    fn report(&self, group: &str) {
        println!("=== {group}: {} failures", self.nfail);
        for (k, s) in &self.stats {
            println!(
                "  {k:<40} n={:<7} max_err={:<10.3e} max_err/tol={:<10.3e} {}",
                s.n,
                s.max_err,
                s.max_ratio,
                if s.rank > 0.0 { &s.worst } else { "" }
            );
        }
        for (k, v) in &self.outcomes {
            println!("  outcome {k}: {v}");
        }
    }

    fn assert_clean(&self, group: &str) {
        self.report(group);
        assert!(
            self.nfail == 0,
            "{group}: {} failures, first ones:\n{}",
            self.nfail,
            self.fails.join("\n")
        );
    }
}

// =============================================================================================
// The grids.
// =============================================================================================

/// Special values for one coordinate with these break points.
fn specials<T: Fp>(b: &Breaks<T>) -> Vec<T> {
    let mut s = Vec::new();
    for &k in &b.interior {
        s.extend([k, k.up(), k.down()]);
        s.extend(KNOT_OFFSETS.iter().map(|&o| k + T::from_f64(o)));
    }
    if let Some(bd) = b.bound {
        for e in [bd, -bd] {
            s.extend([e, e.up(), e.down()]);
            for o in [1e-7, -1e-7, 1e-4, -1e-4] {
                s.push(e + T::from_f64(o));
            }
        }
    }
    for &j in &b.junctions {
        s.extend([
            j,
            j.up(),
            j.down(),
            j + T::from_f64(1e-6),
            j - T::from_f64(1e-6),
        ]);
    }
    s
}

/// Points in the input space of `dir` (the flow's input for `Forward`, its output for
/// `Inverse`). For each layer and coordinate and each of `reps` random bases (uniform in the
/// box, then N(0, 1.5²)), the coordinate takes every special value of that layer — computed at
/// the layer's own input, so exact for the first layer met in `dir`, and mapped through the
/// layers before it otherwise — the other coordinates keeping the base's values; the first base
/// also gets the tails. Then every coordinate at the same tail or at ±B, and random points.
fn grid<T: Fp>(case: &Case, dir: Direction, reps: usize, rng: &mut Rng) -> Vec<Vec<T>> {
    let ctx = case.ctx_t::<T>();
    let d = case.dim;
    let n = case.layers.len();
    let bmax = case.bmax();
    let mut pts: Vec<Vec<T>> = Vec::new();
    for l in 0..n {
        for i in 0..d {
            for rep in 0..reps {
                let base: Vec<T> = (0..d)
                    .map(|_| {
                        T::from_f64(if rep == 0 {
                            rng.range(-1.1 * bmax, 1.1 * bmax)
                        } else {
                            1.5 * rng.normal()
                        })
                    })
                    .collect();
                let geoms = layer_geoms(&case.layers[l], &base, &ctx, dir).dims;
                let mut sp = geoms[i]
                    .as_ref()
                    .map(|g| specials(&breaks_of(g, dir)))
                    .unwrap_or_default();
                if rep == 0 {
                    sp.extend(TAILS.iter().map(|&t| T::from_f64(t)));
                    sp.extend((0..4).map(|_| T::from_f64(rng.range(-bmax, bmax))));
                }
                for s in sp {
                    let mut h = base.clone();
                    h[i] = s;
                    let mapped = match dir {
                        Direction::Forward => {
                            walk(&case.layers, &ctx, &h, Direction::Inverse, 0..l)
                        }
                        Direction::Inverse => {
                            walk(&case.layers, &ctx, &h, Direction::Forward, l + 1..n)
                        }
                    };
                    if let Ok((p, _)) = mapped {
                        if p.iter().all(|v| v.is_finite()) {
                            pts.push(p);
                        }
                    }
                }
            }
        }
    }
    for &t in TAILS.iter().chain(&[bmax, -bmax]) {
        pts.push(vec![T::from_f64(t); d]);
    }
    for k in 0..RANDOM_POINTS {
        pts.push(
            (0..d)
                .map(|_| {
                    T::from_f64(if k % 2 == 0 {
                        rng.range(-1.2 * bmax, 1.2 * bmax)
                    } else {
                        2.0 * rng.normal()
                    })
                })
                .collect(),
        );
    }
    if case.has_exp && dir == Direction::Inverse {
        // Exp is last: fold the grid onto its support (0 stays, as an out-of-support point).
        for p in &mut pts {
            for v in p.iter_mut() {
                *v = v.abs();
            }
        }
        pts.push(vec![-T::ONE; d]);
    }
    pts
}

// =============================================================================================
// Per-point checks.
// =============================================================================================

/// An `Err` from the model at `p` is accepted only as:
/// * `OutOfSupport` from the inverse of an Exp case at a point outside `(0, ∞)` (then
///   `log_prob` must be `-inf`);
/// * `Numerical` inside Pyro's 1e-6 bin-search window just above an interior knot: the bin to
///   the left is extrapolated there, and its rational function may not reach the point at all
///   (the quadratic inverse's discriminant is negative — Pyro asserts, flow-core clamps it to
///   0 and the log-det becomes the log of a non-positive number); where a hypernetwork output
///   is extreme (see [`EXTREME_RAW`]); or where the formula's cancellation factor `κ`
///   ([`formula_kappa`]) exceeds `1/(16ε)`, so that no reliable digit of the result is left.
fn accept_error<T: Fp>(
    case: &Case,
    m: &dyn Model<T>,
    dir: Direction,
    p: &[T],
    e: Error,
    acc: &mut Acc,
) {
    let outside = case.has_exp && dir == Direction::Inverse && p.iter().any(|v| *v <= T::ZERO);
    if outside {
        acc.ok("errors_are_documented", e == Error::OutOfSupport, || {
            format!("{} {} at {p:?}: {e:?}", T::NAME, dtag(dir))
        });
        let lp = m.log_prob(p);
        acc.ok(
            "exp_log_prob_neg_inf_outside_support",
            lp == Ok(T::NEG_INFINITY),
            || format!("{} log_prob at {p:?} = {lp:?}", T::NAME),
        );
        return;
    }
    let accepted = e == Error::Numerical && numerical_accepted(case, p, dir, acc);
    acc.ok("errors_are_documented", accepted, || {
        format!("{} {} at {p:?}: {e:?}", T::NAME, dtag(dir))
    });
}

fn numerical_accepted<T: Fp>(case: &Case, p: &[T], dir: Direction, acc: &mut Acc) -> bool {
    let c = classify(&case.layers, &case.ctx_t::<T>(), p, dir);
    if c.eps_window {
        acc.count(if T::NAME == "f64" {
            "accepted Err(Numerical) f64: eps window"
        } else {
            "accepted Err(Numerical) f32: eps window"
        });
        true
    } else if c.extreme {
        acc.count("accepted Err(Numerical): extreme hypernet");
        true
    } else if c.kappa * T::EPS > 1.0 / 16.0 {
        // The formula has no reliable digit left: its result carries a relative error of a few
        // (the number of roundings, ≲ 16) times κ·ε. E.g. exactly on (or a few ulps below) a
        // y-knot whose derivative δ is below ~1e-3 of the left bin's slope, the f32 quadratic
        // inverse's discriminant `Δy²δ²`, computed as a difference of terms `4s²Δy²`, rounds to
        // ≤ 0 (see `f32_quadratic_inverse_on_a_steep_knot_is_finite`).
        acc.count(if T::NAME == "f64" {
            "accepted Err(Numerical) f64: formula cancellation (16 kappa eps > 1)"
        } else {
            "accepted Err(Numerical) f32: formula cancellation (16 kappa eps > 1)"
        });
        true
    } else {
        false
    }
}

/// Checks shared by f64 and f32; returns `(q, ld, r, ld_back)` when the point and its round
/// trip are in range. `cls` is the point's classification in `dir`.
#[allow(clippy::type_complexity)]
fn common_point<T: Fp>(
    case: &Case,
    dir: Direction,
    p: &[T],
    cls: &Class,
    acc: &mut Acc,
) -> Option<(Vec<T>, T, Vec<T>, T)> {
    let m = T::model(case);
    let nm = T::NAME;
    let tag = dtag(dir);
    let (q, ld) = match go(m, dir, p) {
        Ok(r) => r,
        Err(e) => {
            accept_error(case, m, dir, p, e, acc);
            return None;
        }
    };
    if case.has_exp && dir == Direction::Inverse && p.iter().any(|v| *v <= T::ZERO) {
        acc.fail_msg("errors_are_documented", || {
            format!("{nm} inverse at {p:?} outside Exp's support gave Ok")
        });
    }
    acc.ok(
        "ok_results_have_no_nan",
        q.iter().all(|v| !v.is_nan()) && !ld.is_nan(),
        || format!("{nm} {tag} {p:?} -> {q:?}, {ld:?}"),
    );
    let in_range = q.iter().all(|v| v.is_finite()) && ld.is_finite();
    if case.has_exp && !(in_range && q.iter().all(|v| v.normal())) {
        // Exp over/underflowed (e.g. e^1000 = inf): a value, not an error; nothing to invert.
        acc.count("exp_overflow_points_skipped");
        return None;
    }
    if cls.extreme && !in_range {
        // A degenerate spline (see EXTREME_RAW) can underflow its derivative: ld = -inf.
        acc.count("extreme_hypernet_infinite_results");
        return None;
    }
    acc.ok("finite_in_finite_out", in_range, || {
        format!("{nm} {tag} {p:?} -> {q:?}, {ld:?}")
    });
    if let Some(sep) = go_sep(m, dir, p) {
        acc.ok(
            "fused_equals_separate_bitwise",
            matches!(&sep, Ok(v) if bits_eq(v, &q)),
            || format!("{nm} {tag} {p:?}: fused {q:?} vs separate {sep:?}"),
        );
    }
    let ctx = case.ctx_t::<T>();
    let w = walk(&case.layers, &ctx, p, dir, 0..case.layers.len());
    acc.ok(
        "flow_equals_layer_by_layer_bitwise",
        matches!(&w, Ok((v, l)) if bits_eq(v, &q) && l.bits() == ld.bits()),
        || format!("{nm} {tag} {p:?}: flow ({q:?}, {ld:?}) vs layers {w:?}"),
    );
    let back = flip(dir);
    let (r, ld_back) = match go(m, back, &q) {
        Ok(v) => v,
        Err(e) => {
            accept_error(case, m, back, &q, e, acc);
            return None;
        }
    };
    if let Some(sep) = go_sep(m, back, &q) {
        acc.ok(
            "fused_equals_separate_bitwise",
            matches!(&sep, Ok(v) if bits_eq(v, &r)),
            || format!("{nm} {} {q:?}: fused {r:?} vs separate {sep:?}", dtag(back)),
        );
    }
    // log_prob(data) = log N(z) + ld_inverse(data), from the same inverse pass.
    let (data, z, ldi) = match dir {
        Direction::Forward => (q.clone(), &r, ld_back),
        Direction::Inverse => (p.to_vec(), &q, ld),
    };
    let base = StdNormal::log_prob(z);
    let expect = base + ldi;
    match m.log_prob(&data) {
        Ok(lp) => {
            let scale = base.to_f64().abs() + ldi.to_f64().abs() + 1.0;
            acc.check(
                "log_prob_eq_base_plus_inverse_logdet",
                (lp.to_f64() - expect.to_f64()).abs(),
                LP_ULPS * T::EPS * scale,
                || format!("{nm} at {data:?}: log_prob {lp:?} vs {expect:?}"),
            );
        }
        Err(e) => acc.fail_msg("log_prob_ok", || format!("{nm} log_prob {data:?}: {e:?}")),
    }
    if cls.extreme {
        acc.count("accuracy_skipped_extreme_hypernet");
        return None;
    }
    Some((q, ld, r, ld_back))
}

impl Acc {
    fn fail_msg(&mut self, key: &'static str, what: impl FnOnce() -> String) {
        self.check(key, 1.0, 0.0, what);
    }
}

/// Inverse by Gauss–Jordan with partial pivoting.
fn mat_inv(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = r.clone();
            row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        m.swap(c, p);
        let piv = m[c][c];
        if piv == 0.0 || !piv.is_finite() {
            return None;
        }
        for k in 0..2 * n {
            m[c][k] /= piv;
        }
        for r in 0..n {
            if r != c {
                let f = m[r][c];
                for k in 0..2 * n {
                    m[r][k] -= f * m[c][k];
                }
            }
        }
    }
    Some(m.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// A perturbation of 16 f64 ulps of `max(1, |v|)`: the f64 conditioning probe.
fn perturb64(v: f64) -> f64 {
    16.0 * f64::EPSILON * v.abs().max(1.0)
}

/// Returns whether an FD check ran.
fn check_point_64(case: &Case, dir: Direction, p: &[f64], do_fd: bool, acc: &mut Acc) -> bool {
    let cls = classify(&case.layers, &case.ctx, p, dir);
    let Some((q, ld, r, ld_back)) = common_point::<f64>(case, dir, p, &cls, acc) else {
        return false;
    };
    let tag = dtag(dir);
    let back = flip(dir);
    let m = <f64 as Fp>::model(case);
    let d = p.len();
    // How much the back pass moves when its input moves by 16 ulps: where this exceeds the
    // fixed tolerances the point is ill-conditioned (log|det| far from 0: the golden README
    // saw log|J| = -11.6; our flows reach ±40), and we allow C64 times it instead.
    let cond = spread(m, back, &q, &(r.clone(), ld_back), &perturb64);
    if cond.is_none() {
        acc.count("conditioning_probe_undefined (fixed tolerances used)");
    }
    // Near a knot, how much the back pass moves over the eps window: the two bins' rational
    // functions differ there by a second-order term, far below this first-order variation.
    // Near a knot, the variation of each pass over the eps window (inputs moved by
    // ±LDSYM_WINDOW), which includes the jump where the window ends: the back pass's own, and
    // the forward pass's mapped back through the back pass's slope (≈ its variation / window).
    let (window, window_fwd) = if cls.near_knot || cls.near_bound {
        (
            spread(m, back, &q, &(r.clone(), ld_back), &|_| LDSYM_WINDOW),
            spread(m, dir, p, &(q.clone(), ld), &|_| LDSYM_WINDOW),
        )
    } else {
        (None, None)
    };
    let jump = window_fwd
        .as_ref()
        .map_or(0.0, |w| w.0.iter().copied().fold(0.0, f64::max));
    for i in 0..d {
        let err = (r[i] - p[i]).abs();
        let base = p[i].abs().max(1.0) * if cls.near_knot { RT64_NEAR_KNOT } else { RT64 };
        let base = if cls.near_knot {
            base.max(
                window
                    .as_ref()
                    .map_or(0.0, |w| 2.0 * (w.0[i] + w.0[i] / LDSYM_WINDOW * jump)),
            )
        } else {
            base
        };
        let ctol = cond.as_ref().map_or(0.0, |c| C64 * c.0[i]);
        let what = || format!("f64 {tag} {p:?} -> {q:?} -> {r:?} (dim {i})");
        if ctol > base {
            acc.check("rt64_ill_conditioned (units of tol)", err / ctol, 1.0, what);
        } else if cls.near_knot {
            acc.check("rt64_near_knot (units of tol)", err / base, 1.0, what);
            acc.check(
                "rt64_near_knot (abs, informational)",
                err,
                f64::INFINITY,
                what,
            );
        } else {
            acc.check("rt64 (rel)", err / p[i].abs().max(1.0), RT64, what);
        }
    }
    let err = (ld + ld_back).abs();
    let what = || format!("f64 {tag} {p:?}: ld {ld:e}, back {ld_back:e}");
    let ctol = cond.as_ref().map_or(0.0, |c| C64 * c.1);
    if cls.near_knot || cls.near_bound {
        match (window_fwd, window) {
            (Some((_, a)), Some((_, b))) => acc.check(
                "ldsym64_near_knot_or_bound (abs)",
                err,
                LDSYM64 * ld.abs().max(1.0) + 2.0 * (a + b) + ctol,
                what,
            ),
            _ => acc.count("ldsym64_skipped_window_undefined"),
        }
    } else if ctol > LDSYM64 * ld.abs().max(1.0) {
        acc.check(
            "ldsym64_ill_conditioned (units of tol)",
            err / ctol,
            1.0,
            what,
        );
    } else {
        acc.check("ldsym64 (rel)", err / ld.abs().max(1.0), LDSYM64, what);
    }
    if !do_fd {
        return false;
    }
    if !cls.fd_ok {
        acc.count("fd64_skipped_near_break");
        return false;
    }
    {
        let f = |pt: &[f64]| go(m, dir, pt).ok().map(|v| v.0);
        let (Some(j1), Some(j2)) = (fd_jacobian(&f, p, 1.0), fd_jacobian(&f, p, 0.25)) else {
            acc.count("fd64_skipped_domain");
            return false;
        };
        let Some(jinv) = mat_inv(&j2) else {
            acc.count("fd64_skipped_domain");
            return false;
        };
        // Rounding in the five-point formula: ≤ 1.5 ε |y_i| / h_j per entry; its first-order
        // effect on ln|det| is Σ_ij |(J⁻¹)_ji| δJ_ij. Small slopes make it matter.
        let mut round = 0.0;
        for i in 0..d {
            for j in 0..d {
                let h = fd_step(p[j]) * 0.25;
                round += jinv[j][i].abs() * 2.0 * f64::EPSILON * q[i].abs().max(1.0) / h;
            }
        }
        if round > FD_ROUND_MAX {
            // Tiny Jacobian entries (|log det| ≳ 25): FD cannot resolve the log-det here.
            acc.count("fd64_skipped_rounding_dominated");
            return false;
        }
        let (fd1, fd2) = (log_abs_det(j1), log_abs_det(j2));
        if (fd1 - fd2).abs() > 0.5 * FD64 + 4.0 * round {
            acc.count("fd64_skipped_not_converged");
            return false;
        }
        let tol = FD64 + round;
        let what =
            || format!("f64 {tag} {p:?}: ld {ld:.12e}, FD {fd2:.12e} ({fd1:.12e}), tol {tol:e}");
        acc.check(
            "fd64_logdet (units of tol)",
            (fd2 - ld).abs() / tol,
            1.0,
            what,
        );
        acc.check(
            "fd64_logdet (abs, informational)",
            (fd2 - ld).abs(),
            f64::INFINITY,
            what,
        );
    }
    true
}

fn check_point_32(case: &Case, dir: Direction, p32: &[f32], acc: &mut Acc) {
    let ctx32 = case.ctx_t::<f32>();
    let cls = classify(&case.layers, &ctx32, p32, dir);
    let Some((q, ld, r, _)) = common_point::<f32>(case, dir, p32, &cls, acc) else {
        return;
    };
    let tag = dtag(dir);
    let back = flip(dir);
    let m64 = <f64 as Fp>::model(case);
    let e32 = f32::EPS;
    let d = p32.len();
    // Spline formulas add and subtract knots of size up to B: rounding is ε·max(|v|, B, 1).
    let bmax = case.bmax();
    let mag = |v: f64| v.abs().max(1.0).max(bmax);
    let p = widen(p32);
    let reference = |pt: &[f64], dr: Direction, acc: &mut Acc| match go(m64, dr, pt) {
        Ok(v) => Some(v),
        Err(Error::Numerical) if numerical_accepted(case, pt, dr, acc) => None,
        Err(e) => {
            acc.fail_msg("f64_reference_ok", || {
                format!("f64 {} {pt:?}: {e:?}", dtag(dr))
            });
            None
        }
    };
    let Some((q64, ld64)) = reference(&p, dir, acc) else {
        return;
    };
    let pert = perturb32(case);
    let Some((so, sl)) = spread(m64, dir, &p, &(q64.clone(), ld64), &pert) else {
        acc.count("f32_skipped_reference_undefined_nearby");
        return;
    };
    let kap = cls.kappa;
    for i in 0..d {
        let err = (f64::from(q[i]) - q64[i]).abs();
        acc.check(
            "f32_output_vs_f64 (units of tol)",
            err / (C32_OUT * kap * (so[i] + e32 * mag(q64[i]))),
            1.0,
            || format!("{tag} {p32:?}: f32 {q:?} vs f64 {q64:?} (dim {i}), kappa {kap:e}"),
        );
        acc.check(
            "f32_output_vs_f64 (abs, informational)",
            err,
            f64::INFINITY,
            || format!("{tag} {p32:?}: f32 {q:?} vs f64 {q64:?} (dim {i}), kappa {kap:e}"),
        );
    }
    // Besides the input, f32 rounds the spline parameters (hypernet outputs up to
    // `max_raw`): the log-det, a sum of logs of softmax widths/heights and softplus
    // derivatives over D dimensions and L layers, moves by ~ε per unit of parameter size; and
    // it contains `ln s²` of bin widths and heights obtained by differencing knots.
    let nl = case.layers.len() as f64;
    let lerr = (f64::from(ld) - ld64).abs();
    let lscale = sl + e32 * (d as f64 * nl * (1.0 + cls.max_raw) + ld64.abs() + cls.knot_cancel);
    acc.check(
        "f32_logdet_vs_f64 (units of tol)",
        lerr / (C32_LD * kap * lscale),
        1.0,
        || format!("{tag} {p32:?}: f32 ld {ld:e} vs f64 {ld64:e}, spread {sl:e}, kappa {kap:e}"),
    );
    acc.check(
        "f32_logdet_vs_f64 (abs, informational)",
        lerr,
        f64::INFINITY,
        || format!("{tag} {p32:?}: f32 ld {ld:e} vs f64 {ld64:e}, spread {sl:e}, kappa {kap:e}"),
    );
    // Round trip: the f32 back pass at the f32 output, against the f64 back pass there.
    let qw = widen(&q);
    let Some((r64, ldb64)) = reference(&qw, back, acc) else {
        return;
    };
    let Some((sob, _)) = spread(m64, back, &qw, &(r64.clone(), ldb64), &pert) else {
        acc.count("f32_skipped_reference_undefined_nearby");
        return;
    };
    let kb = classify(&case.layers, &ctx32, &q, back).kappa;
    for i in 0..d {
        let err = (f64::from(r[i]) - p[i]).abs();
        let tol = (r64[i] - p[i]).abs() + C32_RT * kb * (sob[i] + e32 * mag(r64[i]));
        acc.check("f32_round_trip (units of tol)", err / tol, 1.0, || {
            format!("{tag} {p32:?} -> {q:?} -> {r:?} (dim {i}); f64 back {r64:?}, kappa {kb:e}")
        });
        acc.check(
            "f32_round_trip (abs, informational)",
            err,
            f64::INFINITY,
            || format!("{tag} {p32:?} -> {q:?} -> {r:?} (dim {i})"),
        );
    }
}

// =============================================================================================
// Per-case checks beyond the grids.
// =============================================================================================

/// Each knot maps to its image knot with `log|J| = ln δ_k` (and back, in f64), through
/// `Layer::apply` of the first layer; `±B` included (`δ = 0.999` there, as Pyro pads it).
/// Outside the box the layer is the identity, bit for bit, with `log|J| = 0`.
fn check_knot_images<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
    let layer = &case.layers[0];
    let ctx = case.ctx_t::<T>();
    let d = case.dim;
    let is64 = T::NAME == "f64";
    let dirs: &[Direction] = if is64 {
        &[Direction::Forward, Direction::Inverse]
    } else {
        // The f32 quadratic inverse is not backward stable (see the f32 tolerances); the f32
        // grids check it, with the cancellation factor.
        &[Direction::Forward]
    };
    for _ in 0..3 {
        let bmax = case.bmax();
        let base: Vec<T> = (0..d)
            .map(|_| T::from_f64(rng.range(-bmax, bmax)))
            .collect();
        for &dir in dirs {
            let lg = layer_geoms(layer, &base, &ctx, dir);
            for (i, g) in lg.dims.iter().enumerate() {
                let Some(g) = g else { continue };
                for k in 0..g.xk.len() {
                    let (src, dst, ld_expect) = match dir {
                        Direction::Forward => (g.xk[k], g.yk[k], g.d[k].ln()),
                        Direction::Inverse => (g.yk[k], g.xk[k], -g.d[k].ln()),
                    };
                    let mut v = base.clone();
                    v[i] = src;
                    let mut lds = vec![T::ZERO; d];
                    if let Err(e) = apply_layer(layer, &mut v, &ctx, dir, &mut lds) {
                        acc.fail_msg("knot_images_ok", || format!("{e:?}"));
                        continue;
                    }
                    let scale = g.bound.to_f64().max(1.0);
                    // Times the formula's cancellation factor (the quadratic inverse's
                    // `-b - √disc`, the linear order's `y_b - y_c`).
                    let kap = formula_kappa(g, src, dir);
                    let (ty, tl) = if is64 {
                        (KNOT_Y64 * kap, KNOT_LD64 * kap)
                    } else {
                        (KNOT_Y32 * f32::EPS * kap, KNOT_LD32 * f32::EPS * kap)
                    };
                    acc.check(
                        "knot_maps_to_knot (abs/max(1,B))",
                        (v[i].to_f64() - dst.to_f64()).abs() / scale,
                        ty,
                        || {
                            format!(
                                "{} {} dim {i} knot {k}: {src:?} -> {:?}, expected {dst:?}",
                                T::NAME,
                                dtag(dir),
                                v[i]
                            )
                        },
                    );
                    acc.check(
                        "knot_logdet_is_ln_delta (rel)",
                        (lds[i].to_f64() - ld_expect.to_f64()).abs()
                            / ld_expect.to_f64().abs().max(1.0),
                        tl,
                        || {
                            format!(
                                "{} {} dim {i} knot {k}: ld {:?}, expected {ld_expect:?}",
                                T::NAME,
                                dtag(dir),
                                lds[i]
                            )
                        },
                    );
                }
                for o in [1e-4, 0.5, 10.0, 1e6] {
                    for sgn in [1.0, -1.0] {
                        let src = T::from_f64(sgn * (g.bound.to_f64() + o));
                        let mut v = base.clone();
                        v[i] = src;
                        let mut lds = vec![T::ONE; d];
                        let ok = apply_layer(layer, &mut v, &ctx, dir, &mut lds).is_ok();
                        acc.ok(
                            "identity_outside_box_bitwise",
                            ok && v[i].bits() == src.bits() && lds[i].bits() == T::ZERO.bits(),
                            || format!("{} {} dim {i}: {src:?} -> {:?}", T::NAME, dtag(dir), v[i]),
                        );
                    }
                }
            }
        }
    }
}

/// Sorted grid over `[-B-1, B+1]`, every special value, and the tails.
fn sweep_values<T: Fp>(specials: Vec<T>, bmax: f64) -> Vec<T> {
    let mut ts = specials;
    let n = 3001;
    ts.extend(
        (0..n).map(|k| T::from_f64(-bmax - 1.0 + (2.0 * bmax + 2.0) * k as f64 / (n - 1) as f64)),
    );
    ts.extend(TAILS.iter().map(|&t| T::from_f64(t)));
    ts.retain(|t| t.is_finite());
    ts.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    ts.dedup_by(|a, b| a.bits() == b.bits());
    ts
}

/// Consecutive points `t0 < t1` of a monotone sweep with outputs `a`, `b` (and the f64 model's
/// `a64`, `b64` at the same inputs), oriented by `sign`.
///
/// Non-decreasing up to rounding: a rational function evaluated in floating point is monotone
/// only up to its rounding error, which shows between inputs one or two ulps apart (e.g. just
/// below `B` the output `y_k + Δy·r` can round 2–3 ulps above `B`, while `B` maps to `B`). We
/// allow 8 ulps in f64 and 32 in f32 of `max(|y|, scale)` (`scale` = the spline bound: the
/// formulas add terms of size ~B, so near y = 0 the error is an ulp of B, not of y). Strictly
/// increasing where the inputs are far enough apart for rounding not to matter: in f64 when they
/// differ by more than 1e-9 relative and both outputs are finite and non-zero (Exp
/// under/overflows in the tails) — the random splines here have slopes ≳ 1e-5, so the outputs
/// then differ by many ulps; in f32 where the f64 outputs at the same inputs differ by more than
/// 64 f32-ulps of `max(|y|, scale)`.
fn monotone_pair<T: Fp>(
    (t0, t1): (T, T),
    (a, b): (T, T),
    (a64, b64): (f64, f64),
    sign: f64,
    scale: f64,
    acc: &mut Acc,
    what: impl Fn() -> String,
) {
    let ulp = T::from_f64(a.to_f64().abs().max(b.to_f64().abs()).max(scale)).ulp();
    let (a, b) = (sign * a.to_f64(), sign * b.to_f64());
    let (a64, b64) = (sign * a64, sign * b64);
    let is64 = T::NAME == "f64";
    acc.check(
        "monotone_non_decreasing (ulps of violation)",
        if a.is_finite() && b.is_finite() {
            (a - b).max(0.0) / ulp
        } else if b >= a {
            0.0
        } else {
            f64::INFINITY
        },
        if is64 { 8.0 } else { 32.0 },
        &what,
    );
    let strict_expected = if is64 {
        (t1.to_f64() - t0.to_f64()) > 1e-9 * t0.to_f64().abs().max(1.0)
            && a.is_finite()
            && b.is_finite()
            && a != 0.0
            && b != 0.0
    } else {
        let u = T::from_f64(a64.abs().max(b64.abs()).max(scale)).ulp();
        b64 - a64 > 64.0 * u && a64.is_finite() && b64.is_finite()
    };
    if strict_expected {
        acc.ok("monotone_strict", b > a, &what);
    }
}

/// The forward pass at `x` in `T` and in f64 for a monotone sweep; an error is accepted (and
/// the point left out) only as in [`accept_error`].
fn sweep_eval<T: Fp>(case: &Case, x: &[T], acc: &mut Acc) -> Option<(Vec<T>, Vec<f64>)> {
    let m = T::model(case);
    let m64 = <f64 as Fp>::model(case);
    let xw = widen(x);
    let y = match m.fwd_ld(x) {
        Ok(v) => v.0,
        Err(e) => {
            accept_error(case, m, Direction::Forward, x, e, acc);
            return None;
        }
    };
    match m64.fwd_ld(&xw) {
        Ok(v) => Some((y, v.0)),
        Err(e) => {
            accept_error(case, m64, Direction::Forward, &xw, e, acc);
            None
        }
    }
}

fn check_monotone<T: Fp>(case: &Case, acc: &mut Acc) {
    let Some(signs) = &case.monotone else { return };
    let ctx = case.ctx_t::<T>();
    let d = case.dim;
    let zero = vec![T::ZERO; d];
    let mut sp = Vec::new();
    for layer in &case.layers {
        for g in layer_geoms(layer, &zero, &ctx, Direction::Forward)
            .dims
            .into_iter()
            .flatten()
        {
            sp.extend(specials(&breaks_of(&g, Direction::Forward)));
        }
    }
    let bmax = case.bmax();
    let ts = sweep_values(sp, bmax);
    let mut prev: Option<(T, Vec<T>, Vec<f64>)> = None;
    for &t in &ts {
        let x = vec![t; d];
        let Some((y, y64)) = sweep_eval(case, &x, acc) else {
            continue;
        };
        if let Some((t0, y0, y640)) = &prev {
            for j in 0..d {
                monotone_pair(
                    (*t0, t),
                    (y0[j], y[j]),
                    (y640[j], y64[j]),
                    signs[j],
                    bmax,
                    acc,
                    || {
                        format!(
                            "{} dim {j}: x {t0:?} -> {:?}, x {t:?} -> {:?}",
                            T::NAME,
                            y0[j],
                            y[j]
                        )
                    },
                );
            }
        }
        prev = Some((t, y, y64));
    }
}

/// A single coupling: `y_i` is increasing in `x_i` with the other coordinates fixed.
fn check_triangular<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
    if !case.triangular {
        return;
    }
    let ctx = case.ctx_t::<T>();
    let d = case.dim;
    let bmax = case.bmax();
    for i in 0..d {
        let base: Vec<T> = (0..d)
            .map(|_| T::from_f64(rng.range(-bmax, bmax)))
            .collect();
        let g = layer_geoms(&case.layers[0], &base, &ctx, Direction::Forward).dims;
        let sp = g[i]
            .as_ref()
            .map(|g| specials(&breaks_of(g, Direction::Forward)))
            .unwrap_or_default();
        let mut prev: Option<(T, T, f64)> = None;
        for t in sweep_values(sp, bmax) {
            let mut x = base.clone();
            x[i] = t;
            let Some((y, y64)) = sweep_eval(case, &x, acc) else {
                continue;
            };
            if let Some((t0, a, a64)) = prev {
                monotone_pair((t0, t), (a, y[i]), (a64, y64[i]), 1.0, bmax, acc, || {
                    format!(
                        "{} coord {i} at base {base:?}: {t0:?} -> {a:?}, {t:?} -> {:?}",
                        T::NAME,
                        y[i]
                    )
                });
            }
            prev = Some((t, y[i], y64[i]));
        }
    }
}

/// Sampling: `sample` equals `sample_with_log_prob`'s sample; both equal `forward` of the base
/// draw `StdNormal::sample` from the same RNG; the log-density equals `log N(z) - ld_forward`
/// and agrees with `log_prob` of the sample (f64) or with the f64 model (f32).
fn check_samples<T: Fp>(case: &Case, seed: u64, acc: &mut Acc) {
    let m = T::model(case);
    let m64 = <f64 as Fp>::model(case);
    let nm = T::NAME;
    for s in 0..SAMPLES_PER_CASE {
        let sd = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(s as u64);
        let (x, lp) = match m.sample_lp(&mut Pcg32::seed_from_u64(sd)) {
            Ok(v) => v,
            Err(e) => {
                acc.fail_msg("sample_ok", || format!("{nm} seed {sd}: {e:?}"));
                continue;
            }
        };
        let x2 = m.sample(&mut Pcg32::seed_from_u64(sd));
        acc.ok(
            "sample_equals_sample_with_log_prob_bitwise",
            matches!(&x2, Ok(v) if bits_eq(v, &x)),
            || format!("{nm} seed {sd}: {x:?} vs {x2:?}"),
        );
        let mut z = vec![T::ZERO; case.dim];
        StdNormal::sample(&mut Pcg32::seed_from_u64(sd), &mut z);
        let Ok((xf, ldf)) = m.fwd_ld(&z) else {
            acc.fail_msg("sample_ok", || format!("{nm} forward of base draw {z:?}"));
            continue;
        };
        acc.ok(
            "sample_is_forward_of_base_draw_bitwise",
            bits_eq(&xf, &x),
            || format!("{nm} z {z:?}: sample {x:?}, forward {xf:?}"),
        );
        let base = StdNormal::log_prob(&z);
        let expect = base - ldf;
        acc.check(
            "sample_log_prob_eq_base_minus_fwd_logdet",
            (lp.to_f64() - expect.to_f64()).abs(),
            LP_ULPS * T::EPS * (base.to_f64().abs() + ldf.to_f64().abs() + 1.0),
            || format!("{nm} z {z:?}: {lp:?} vs {expect:?}"),
        );
        let z64 = widen(&z);
        if T::NAME == "f64" {
            let lpx = match m.log_prob(&x) {
                Ok(v) => v,
                Err(e) => {
                    accept_error(case, m, Direction::Inverse, &x, e, acc);
                    continue;
                }
            };
            let cls = classify(&case.layers, &case.ctx, &z64, Direction::Forward);
            // log_prob goes through the inverse: z' = z(1 ± RT64) moves log N(z) by
            // ≲ |z|²·RT64 ≤ 34·RT64 (|z| ≤ 5.8 for this sampler); we allow 100·RT64 relative
            // to max(1, |lp|), or RT64_NEAR_KNOT near knots.
            let tol = if cls.near_knot {
                RT64_NEAR_KNOT
            } else {
                100.0 * RT64
            };
            acc.check(
                "sample_log_prob_vs_log_prob64 (rel)",
                (lpx.to_f64() - lp.to_f64()).abs() / lp.to_f64().abs().max(1.0),
                tol,
                || format!("z {z:?} x {x:?}: sample lp {lp:?}, log_prob {lpx:?}"),
            );
        } else {
            let Ok((y64, ld64)) = m64.fwd_ld(&z64) else {
                acc.fail_msg("sample_ok", || format!("f64 forward of {z64:?}"));
                continue;
            };
            let pert = perturb32(case);
            let Some((_, sl)) = spread(m64, Direction::Forward, &z64, &(y64, ld64), &pert) else {
                acc.count("f32_skipped_reference_undefined_nearby");
                continue;
            };
            let b64 = StdNormal::log_prob(&z64);
            let lp64 = b64 - ld64;
            // As for f32_logdet_vs_f64, plus the base density's rounding.
            let cls = classify(&case.layers, &case.ctx_t::<T>(), &z, Direction::Forward);
            let nl = case.layers.len() as f64;
            let scale = case.dim as f64 * nl * (1.0 + cls.max_raw)
                + ld64.abs()
                + b64.abs()
                + cls.knot_cancel;
            let tol = C32_LD * cls.kappa * (sl + f32::EPS * scale);
            acc.check(
                "f32_sample_log_prob_vs_f64 (units of tol)",
                (lp.to_f64() - lp64).abs() / tol,
                1.0,
                || format!("z {z:?}: f32 lp {lp:?}, f64 {lp64:e}"),
            );
        }
    }
}

/// NaN/±inf anywhere: `NonFiniteInput` from every entry point. Huge finite values: never a
/// panic; an `Ok` never holds a NaN; an `Err` is `Numerical` (a NaN arose inside, e.g. in a
/// hypernetwork fed 1e38) or, for the inverse of an Exp case, `OutOfSupport`.
fn check_robustness<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
    let m = T::model(case);
    let d = case.dim;
    let nm = T::NAME;
    for i in 0..d {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut p: Vec<T> = (0..d).map(|_| T::from_f64(rng.range(-3.0, 3.0))).collect();
            p[i] = T::from_f64(bad);
            let nf = Err::<(), Error>(Error::NonFiniteInput);
            let what = || format!("{nm} at {p:?}");
            acc.ok(
                "non_finite_input_rejected",
                m.fwd_ld(&p).map(|_| ()) == nf,
                what,
            );
            acc.ok(
                "non_finite_input_rejected",
                m.inv_ld(&p).map(|_| ()) == nf,
                what,
            );
            acc.ok(
                "non_finite_input_rejected",
                m.log_prob(&p).map(|_| ()) == nf,
                what,
            );
            if let Some(r) = m.fwd(&p) {
                acc.ok("non_finite_input_rejected", r.map(|_| ()) == nf, what);
            }
            if let Some(r) = m.inv(&p) {
                acc.ok("non_finite_input_rejected", r.map(|_| ()) == nf, what);
            }
        }
    }
    let record = |acc: &mut Acc, op: &str, r: Result<(Vec<T>, T), Error>, p: &[T]| {
        let kind = match &r {
            Ok((v, l)) => {
                acc.ok(
                    "huge_input_ok_has_no_nan",
                    v.iter().all(|x| !x.is_nan()) && !l.is_nan(),
                    || format!("{nm} {op} {p:?} -> {v:?} {l:?}"),
                );
                if v.iter().all(|x| x.is_finite()) && l.is_finite() {
                    "Ok(finite)"
                } else {
                    "Ok(with inf)"
                }
            }
            Err(Error::Numerical) => "Err(Numerical)",
            Err(Error::OutOfSupport) => {
                acc.ok("huge_input_documented_error", case.has_exp, || {
                    format!("{nm} {op} {p:?}: OutOfSupport without Exp")
                });
                "Err(OutOfSupport)"
            }
            Err(e) => {
                acc.fail_msg("huge_input_documented_error", || {
                    format!("{nm} {op} {p:?}: {e:?}")
                });
                "Err(other)"
            }
        };
        *acc.outcomes
            .entry(format!("{nm} huge {op}: {kind}"))
            .or_default() += 1;
    };
    for &h in T::HUGE {
        for sgn in [1.0, -1.0] {
            for i in 0..=d {
                let mut p: Vec<T> = (0..d).map(|_| T::from_f64(rng.range(-3.0, 3.0))).collect();
                if i == d {
                    p.iter_mut().for_each(|v| *v = T::from_f64(sgn * h));
                } else {
                    p[i] = T::from_f64(sgn * h);
                }
                record(acc, "forward", m.fwd_ld(&p), &p);
                record(acc, "inverse", m.inv_ld(&p), &p);
                record(acc, "log_prob", m.log_prob(&p).map(|l| (Vec::new(), l)), &p);
            }
        }
    }
}

// =============================================================================================
// The harness.
// =============================================================================================

fn run_case(case: &Case, seed: u64) -> Acc {
    let mut acc = Acc::new(&case.name);
    let mut rng = Rng::new(seed);
    for dir in [Direction::Forward, Direction::Inverse] {
        let g64: Vec<Vec<f64>> = grid(case, dir, 2, &mut rng);
        // FD on at most FD_POINTS_MAX points per direction, spread evenly over the grid: a
        // point eligible for FD gets it when fewer than the pro-rata share have had it so far.
        let n = g64.len();
        let mut fd_done = 0;
        for (k, p) in g64.iter().enumerate() {
            let want_fd = fd_done * n < FD_POINTS_MAX * (k + 1);
            if check_point_64(case, dir, p, want_fd, &mut acc) {
                fd_done += 1;
            }
        }
        // f32: one random base per (layer, coordinate) instead of two (the f32 checks cost
        // several f64 evaluations per point).
        let g32: Vec<Vec<f32>> = grid(case, dir, 1, &mut rng);
        for p in &g32 {
            check_point_32(case, dir, p, &mut acc);
        }
    }
    if case.layers[0].bins() > 0 {
        check_knot_images::<f64>(case, &mut rng, &mut acc);
        check_knot_images::<f32>(case, &mut rng, &mut acc);
    }
    check_monotone::<f64>(case, &mut acc);
    check_monotone::<f32>(case, &mut acc);
    check_triangular::<f64>(case, &mut rng, &mut acc);
    check_triangular::<f32>(case, &mut rng, &mut acc);
    check_samples::<f64>(case, seed, &mut acc);
    check_samples::<f32>(case, seed, &mut acc);
    check_robustness::<f64>(case, &mut rng, &mut acc);
    check_robustness::<f32>(case, &mut rng, &mut acc);
    // Coverage: the grids cannot have been skipped wholesale.
    let (rt, fd, f32rt) = (
        acc.n("rt64 (rel)")
            + acc.n("rt64_near_knot (units of tol)")
            + acc.n("rt64_ill_conditioned (units of tol)"),
        acc.n("fd64_logdet (units of tol)"),
        acc.n("f32_round_trip (units of tol)"),
    );
    acc.ok("coverage", rt >= 100 && fd >= 40 && f32rt >= 100, || {
        format!("only {rt} f64 round trips, {fd} FD checks, {f32rt} f32 round trips")
    });
    acc
}

fn run_group(group: &str, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let mut total = Acc::new(group);
    for (k, case) in cases.iter().enumerate() {
        let seed = 0x5EED_0000 + k as u64 * 7919 + group.len() as u64;
        total.merge(run_case(case, seed));
    }
    println!("{group}: {} cases", cases.len());
    total.assert_clean(group);
}

// =============================================================================================
// The cases.
// =============================================================================================

fn affine_cases() -> Vec<Case> {
    let mut rng = Rng::new(11);
    let mut v = vec![
        flow_case(
            "affine_scalar_d1(3,0.5)",
            vec![Layer::Affine(Affine::scalar(1, 3.0, 0.5).unwrap())],
            Some(vec![1.0]),
        ),
        flow_case(
            "affine_scalar_d3(-1.25,2)",
            vec![Layer::Affine(Affine::scalar(3, -1.25, 2.0).unwrap())],
            Some(vec![1.0; 3]),
        ),
        flow_case(
            "affine_scalar_d2_negative(0.5,-1.5)",
            vec![Layer::Affine(Affine::scalar(2, 0.5, -1.5).unwrap())],
            Some(vec![-1.0; 2]),
        ),
    ];
    let loc: Vec<f32> = (0..4).map(|_| rng.range(-2.0, 2.0) as f32).collect();
    let scale = [0.3f32, -2.0, 1.7, -0.05];
    let params: Vec<f32> = loc.iter().chain(&scale).copied().collect();
    v.push(flow_case(
        "affine_per_dim_d4",
        vec![Layer::Affine(Affine::per_dim(4, leak(&params)).unwrap())],
        Some(scale.iter().map(|s| f64::from(s.signum())).collect()),
    ));
    v.push(flow_case(
        "affine_per_dim_d1_large_scale",
        vec![Layer::Affine(
            Affine::per_dim(1, leak(&[1e-3, 250.0])).unwrap(),
        )],
        Some(vec![1.0]),
    ));
    v
}

fn exp_cases() -> Vec<Case> {
    vec![
        flow_case(
            "exp_d1",
            vec![Layer::Exp(Exp::new(1).unwrap())],
            Some(vec![1.0]),
        ),
        flow_case(
            "exp_d2",
            vec![Layer::Exp(Exp::new(2).unwrap())],
            Some(vec![1.0; 2]),
        ),
        flow_case(
            "lognormal_affine(3,0.5)_exp",
            vec![
                Layer::Affine(Affine::scalar(1, 3.0, 0.5).unwrap()),
                Layer::Exp(Exp::new(1).unwrap()),
            ],
            Some(vec![1.0]),
        ),
        flow_case(
            "affine_per_dim_exp_d2",
            vec![
                Layer::Affine(Affine::per_dim(2, leak(&[-0.5, 1.0, 0.8, -1.3])).unwrap()),
                Layer::Exp(Exp::new(2).unwrap()),
            ],
            Some(vec![1.0, -1.0]),
        ),
    ]
}

fn spline_cases(order: Order) -> Vec<Case> {
    let mut rng = Rng::new(if order == Order::Linear { 21 } else { 22 });
    let mut v = Vec::new();
    let mut n = 0;
    for k in [2usize, 3, 5, 8, 16] {
        for b in [1.0f32, 3.0, 5.0] {
            let dim = 1 + n % 3;
            n += 1;
            let sh = shape(k, b, order);
            let s = rand_spline(&mut rng, dim, sh);
            v.push(flow_case(
                &format!("spline_{order:?}_k{k}_b{b}_d{dim}"),
                vec![Layer::Spline(s)],
                Some(vec![1.0; dim]),
            ));
        }
    }
    v
}

fn coupling_cases(order: Order) -> Vec<Case> {
    let mut rng = Rng::new(if order == Order::Linear { 31 } else { 32 });
    let mut v = Vec::new();
    let ks = [2usize, 4, 8, 16, 5];
    let bs = [1.0f32, 3.0, 5.0];
    let mut n = 0;
    for d in 2..=5 {
        for split in 1..d {
            for hidden in [&[][..], &[4 * d, 4 * d][..]] {
                let k = ks[n % ks.len()];
                let b = bs[n % bs.len()];
                // Every third case has a lower spline of a different shape than the upper.
                let lower = if n % 3 == 2 {
                    shape(ks[(n + 2) % ks.len()], bs[(n + 1) % bs.len()], order)
                } else {
                    shape(k, b, order)
                };
                n += 1;
                let c = rand_coupling(&mut rng, d, split, hidden, lower, shape(k, b, order), 0);
                v.push(flow_case(
                    &format!(
                        "coupling_{order:?}_d{d}_s{split}_h{}_k{k}_b{b}",
                        hidden.len()
                    ),
                    vec![Layer::Coupling(c)],
                    None,
                ));
            }
        }
    }
    v
}

fn rand_ctx(rng: &mut Rng, c: usize) -> Vec<f32> {
    (0..c).map(|_| rng.range(-2.0, 2.0) as f32).collect()
}

type CondCouplingSpec = (usize, usize, usize, Order, &'static [usize], usize, f32);
type CondSplineSpec = (usize, usize, Order, &'static [usize], usize, f32);
type FlowSpec = (usize, Order, usize, f32, &'static [usize], &'static [u8]);

fn conditional_coupling_cases() -> Vec<Case> {
    let mut rng = Rng::new(41);
    // (D, split, context, order, hidden, K, B)
    let specs: [CondCouplingSpec; 5] = [
        (2, 1, 1, Order::Linear, &[6, 6], 8, 3.0),
        (3, 2, 3, Order::Quadratic, &[], 4, 1.0),
        (4, 1, 2, Order::Linear, &[8], 16, 5.0),
        (3, 1, 2, Order::Quadratic, &[10, 10], 2, 3.0),
        (2, 1, 2, Order::Quadratic, &[5], 16, 3.0),
    ];
    specs
        .iter()
        .map(|&(d, split, c, order, hidden, k, b)| {
            let sh = shape(k, b, order);
            let cp = rand_coupling(&mut rng, d, split, hidden, sh, sh, c);
            let ctx = rand_ctx(&mut rng, c);
            cond_case(
                &format!(
                    "cond_coupling_{order:?}_d{d}_s{split}_c{c}_h{}_k{k}",
                    hidden.len()
                ),
                vec![Layer::Coupling(cp)],
                ctx,
                None,
            )
        })
        .collect()
}

fn conditional_spline_cases() -> Vec<Case> {
    let mut rng = Rng::new(51);
    // (D, context, order, hidden, K, B)
    let specs: [CondSplineSpec; 5] = [
        (1, 2, Order::Linear, &[6, 6], 8, 3.0),
        (3, 1, Order::Quadratic, &[], 4, 1.0),
        (2, 3, Order::Linear, &[8], 16, 5.0),
        (1, 1, Order::Quadratic, &[4], 2, 3.0),
        (2, 2, Order::Quadratic, &[7, 5], 16, 3.0),
    ];
    specs
        .iter()
        .map(|&(d, c, order, hidden, k, b)| {
            let s = rand_cond_spline(&mut rng, d, c, hidden, shape(k, b, order));
            let ctx = rand_ctx(&mut rng, c);
            cond_case(
                &format!(
                    "cond_spline_{order:?}_d{d}_c{c}_h{}_k{k}_b{b}",
                    hidden.len()
                ),
                vec![Layer::ConditionalSpline(s)],
                ctx,
                Some(vec![1.0; d]),
            )
        })
        .collect()
}

fn permute_cases() -> Vec<Case> {
    [
        &[0u8][..],
        &[1, 0],
        &[2, 0, 1],
        &[3, 1, 0, 2],
        &[4, 3, 2, 1, 0],
    ]
    .iter()
    .map(|p| {
        flow_case(
            &format!("permute_{p:?}"),
            vec![Layer::Permute(Permute::new(leak_perm(p)).unwrap())],
            None,
        )
    })
    .collect()
}

fn flow_cases() -> Vec<Case> {
    let mut rng = Rng::new(61);
    let mut v = Vec::new();
    // (D, order, K, B, hidden, permutation)
    let specs: [FlowSpec; 5] = [
        (2, Order::Linear, 8, 3.0, &[8, 8], &[1, 0]),
        (3, Order::Quadratic, 4, 1.0, &[12, 12], &[2, 0, 1]),
        (4, Order::Linear, 16, 5.0, &[], &[3, 1, 0, 2]),
        (5, Order::Quadratic, 8, 3.0, &[20], &[4, 3, 2, 1, 0]),
        (3, Order::Linear, 2, 3.0, &[6, 6], &[1, 2, 0]),
    ];
    for &(d, order, k, b, hidden, perm) in &specs {
        let sh = shape(k, b, order);
        let c0 = rand_coupling(&mut rng, d, d / 2, hidden, sh, sh, 0);
        let c2 = rand_coupling(&mut rng, d, d - d / 2, hidden, sh, sh, 0);
        v.push(flow_case(
            &format!("flow_{order:?}_d{d}_k{k}_b{b}_coupling_permute_coupling"),
            vec![
                Layer::Coupling(c0),
                Layer::Permute(Permute::new(leak_perm(perm)).unwrap()),
                Layer::Coupling(c2),
            ],
            None,
        ));
    }
    // Every unconditional layer type in one flow.
    let d = 3;
    let lin = shape(8, 3.0, Order::Linear);
    let quad = shape(5, 2.0, Order::Quadratic);
    let aff = [0.2f32, -0.1, 0.3, 1.5, 0.7, -1.1];
    v.push(flow_case(
        "flow_kitchen_sink_d3",
        vec![
            Layer::Affine(Affine::per_dim(d, leak(&aff)).unwrap()),
            Layer::Spline(rand_spline(&mut rng, d, quad)),
            Layer::Coupling(rand_coupling(&mut rng, d, 1, &[8, 8], lin, quad, 0)),
            Layer::Permute(Permute::new(leak_perm(&[2, 0, 1])).unwrap()),
            Layer::Coupling(rand_coupling(&mut rng, d, 2, &[6], quad, lin, 0)),
            Layer::Affine(Affine::scalar(d, -0.5, 1.25).unwrap()),
        ],
        None,
    ));
    v
}

fn conditional_flow_cases() -> Vec<Case> {
    let mut rng = Rng::new(71);
    let lin = shape(8, 3.0, Order::Linear);
    let quad = shape(4, 2.0, Order::Quadratic);
    let mut v = Vec::new();
    // D = 2, C = 1: conditional coupling, permute, conditional spline, spline.
    let ctx = rand_ctx(&mut rng, 1);
    v.push(cond_case(
        "cond_flow_d2_c1",
        vec![
            Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[6, 6], lin, lin, 1)),
            Layer::Permute(Permute::new(leak_perm(&[1, 0])).unwrap()),
            Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 1, &[5], quad)),
            Layer::Spline(rand_spline(&mut rng, 2, lin)),
        ],
        ctx,
        None,
    ));
    // D = 3, C = 2: conditional spline, an unconditional coupling, permute, conditional
    // coupling — a conditional flow may mix conditional and unconditional layers.
    let ctx = rand_ctx(&mut rng, 2);
    v.push(cond_case(
        "cond_flow_d3_c2_mixed",
        vec![
            Layer::ConditionalSpline(rand_cond_spline(&mut rng, 3, 2, &[8, 8], lin)),
            Layer::Coupling(rand_coupling(&mut rng, 3, 1, &[8], quad, quad, 0)),
            Layer::Permute(Permute::new(leak_perm(&[1, 2, 0])).unwrap()),
            Layer::Coupling(rand_coupling(&mut rng, 3, 2, &[], lin, quad, 2)),
        ],
        ctx,
        None,
    ));
    // D = 1, C = 2: element-wise only.
    let ctx = rand_ctx(&mut rng, 2);
    v.push(cond_case(
        "cond_flow_d1_c2_elementwise",
        vec![
            Layer::ConditionalSpline(rand_cond_spline(&mut rng, 1, 2, &[6], quad)),
            Layer::Affine(Affine::scalar(1, 0.25, 0.8).unwrap()),
            Layer::ConditionalSpline(rand_cond_spline(&mut rng, 1, 2, &[6, 6], lin)),
        ],
        ctx,
        Some(vec![1.0]),
    ));
    v
}

// =============================================================================================
// The conformance tests, one per transform family.
// =============================================================================================

#[test]
fn conformance_affine() {
    run_group("affine", affine_cases());
}

#[test]
fn conformance_exp_and_lognormal_flow() {
    run_group("exp", exp_cases());
}

#[test]
fn conformance_spline_linear() {
    run_group("spline_linear", spline_cases(Order::Linear));
}

#[test]
fn conformance_spline_quadratic() {
    run_group("spline_quadratic", spline_cases(Order::Quadratic));
}

#[test]
fn conformance_coupling_linear() {
    run_group("coupling_linear", coupling_cases(Order::Linear));
}

#[test]
fn conformance_coupling_quadratic() {
    run_group("coupling_quadratic", coupling_cases(Order::Quadratic));
}

#[test]
fn conformance_conditional_coupling() {
    run_group("conditional_coupling", conditional_coupling_cases());
}

#[test]
fn conformance_conditional_spline() {
    run_group("conditional_spline", conditional_spline_cases());
}

#[test]
fn conformance_permute() {
    run_group("permute", permute_cases());
}

#[test]
fn conformance_flow() {
    run_group("flow", flow_cases());
}

#[test]
fn conformance_conditional_flow() {
    run_group("conditional_flow", conditional_flow_cases());
}

// =============================================================================================
// Permute, Affine and Exp semantics.
// =============================================================================================

/// `y[i] = x[perm[i]]` (Pyro's `index_select`), the inverse puts it back, `log|J| = 0`; all
/// exact. `[2, 0, 1]` is not an involution, so it tells `perm` from its inverse.
#[test]
fn permute_affine_exp_semantics_exact() {
    let mut rng = Rng::new(81);
    let perm: &'static [u8] = leak_perm(&[2, 0, 1]);
    let flow: Flow<3> = Flow::new(&[Layer::Permute(Permute::new(perm).unwrap())]).unwrap();
    for _ in 0..200 {
        let x: [f64; 3] = std::array::from_fn(|_| rng.normal() * 10.0);
        let (y, ld) = flow.forward_and_log_det(&x).unwrap();
        assert_eq!(y, [x[2], x[0], x[1]]);
        assert_eq!(ld, 0.0);
        let (back, ldi) = flow.inverse_and_log_det(&y).unwrap();
        assert_eq!(back, x);
        assert_eq!(ldi, 0.0);
        let x32 = x.map(|v| v as f32);
        assert_eq!(flow.forward(&x32).unwrap(), [x32[2], x32[0], x32[1]]);
    }
    // Affine: y = loc + scale·x with the f32 parameters widened, bit for bit; log|J| = ln|scale|.
    let params = [0.25f32, -1.5, 2.0, -0.125];
    let aff: Flow<2> =
        Flow::new(&[Layer::Affine(Affine::per_dim(2, leak(&params)).unwrap())]).unwrap();
    for _ in 0..200 {
        let x = [rng.normal() * 5.0, rng.normal() * 5.0];
        let (y, ld) = aff.forward_and_log_det(&x).unwrap();
        assert_eq!(y, [0.25 + 2.0 * x[0], -1.5 + -0.125 * x[1]]);
        assert_eq!(ld, 2f64.ln() + 0.125f64.ln());
        let (xi, ldi) = aff.inverse_and_log_det(&y).unwrap();
        assert_eq!(xi, [(y[0] - 0.25) / 2.0, (y[1] + 1.5) / -0.125]);
        assert_eq!(ldi, -(2f64.ln()) + -(0.125f64.ln()));
    }
    // Exp: y = e^x, log|J| = x; back: ln y, -ln y. Compared with std's exp/ln (flow-core uses
    // libm): within 1 ulp.
    let exp: Flow<1> = Flow::new(&[Layer::Exp(Exp::new(1).unwrap())]).unwrap();
    for _ in 0..200 {
        let x = rng.range(-50.0, 50.0);
        let (y, ld) = exp.forward_and_log_det(&[x]).unwrap();
        assert!(
            (y[0] - x.exp()).abs() <= x.exp() * 2.0 * f64::EPSILON,
            "{x}: {y:?}"
        );
        assert_eq!(ld, x);
        let (z, ldi) = exp.inverse_and_log_det(&y).unwrap();
        assert!((z[0] - x).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0));
        assert_eq!(ldi, -z[0]);
    }
}

// =============================================================================================
// The tutorial's LogNormal: Normal(0, 1) → Affine(3, 0.5) → Exp.
// =============================================================================================

const LN_MU: f64 = 3.0;
const LN_SIGMA: f64 = 0.5;

fn lognormal_flow() -> Flow<'static, 1> {
    Flow::new(&[
        Layer::Affine(Affine::scalar(1, LN_MU as f32, LN_SIGMA as f32).unwrap()),
        Layer::Exp(Exp::new(1).unwrap()),
    ])
    .unwrap()
}

/// The closed form, in f64: `-(ln x - μ)²/(2σ²) - ln x - ln σ - ½ ln 2π`.
fn lognormal_closed(x: f64) -> f64 {
    let z = (x.ln() - LN_MU) / LN_SIGMA;
    -0.5 * z * z - x.ln() - LN_SIGMA.ln() - 0.5 * (TAU).ln()
}

#[test]
fn lognormal_log_prob_matches_closed_form() {
    let flow = lognormal_flow();
    let mut worst64: f64 = 0.0;
    let mut worst32: f64 = 0.0;
    let mut n = 0;
    // Log-spaced over 1e-300 … 1e300 (f64) and the f32 range, plus points near the mode.
    let xs: Vec<f64> = (0..=600)
        .map(|k| 10f64.powf(-300.0 + k as f64))
        .chain((0..=400).map(|k| (LN_MU - 4.0 + 8.0 * k as f64 / 400.0).exp()))
        .collect();
    for &x in &xs {
        let lp = flow.log_prob(&[x]).unwrap();
        let closed = lognormal_closed(x);
        let z = (x.ln() - LN_MU) / LN_SIGMA;
        // f64: both sides are a few roundings of terms of size ≤ z²/2 + |ln x| + 2; 16 ulps of
        // that sum.
        let tol = 16.0 * f64::EPSILON * (0.5 * z * z + x.ln().abs() + 2.0);
        assert!((lp - closed).abs() <= tol, "f64 x={x:e}: {lp} vs {closed}");
        worst64 = worst64.max((lp - closed).abs() / tol);
        let x32 = x as f32;
        if x32.is_normal() {
            // f32: ln x is rounded (|ln x|·ε), which moves z by 2·ε(|ln x| + 3) and log N(z) by
            // |z| times that; plus rounding of the sum. 8× that first-order bound.
            let xw = f64::from(x32);
            let z = (xw.ln() - LN_MU) / LN_SIGMA;
            let l = xw.ln().abs();
            let tol32 = 8.0 * f32::EPS * (z.abs() * 2.0 * (l + 3.0) + 0.5 * z * z + l + 2.0);
            let lp32 = flow.log_prob(&[x32]).unwrap();
            let closed32 = lognormal_closed(xw);
            assert!(
                (f64::from(lp32) - closed32).abs() <= tol32,
                "f32 x={x32:e}: {lp32} vs {closed32}"
            );
            worst32 = worst32.max((f64::from(lp32) - closed32).abs() / tol32);
        }
        n += 1;
    }
    println!(
        "lognormal closed form: {n} points, worst err/tol f64 {worst64:.3e}, f32 {worst32:.3e}"
    );
    // Outside the support: -inf, in both precisions.
    for y in [0.0, -0.0, -1.0, -1e30, -f64::from(f32::MIN_POSITIVE)] {
        assert_eq!(flow.log_prob(&[y]), Ok(f64::NEG_INFINITY), "{y}");
        assert_eq!(flow.log_prob(&[y as f32]), Ok(f32::NEG_INFINITY), "{y}");
        assert_eq!(flow.inverse(&[y]), Err(Error::OutOfSupport), "{y}");
        assert_eq!(
            flow.inverse_and_log_det(&[y as f32]),
            Err(Error::OutOfSupport)
        );
    }
}

/// Sample moments of 200k draws against LogNormal(3, 0.5): mean and standard deviation of
/// `ln x`, and the mean of `x`, each within 5 standard errors (computed from the true
/// distribution, so the test does not depend on the sample's own spread). With a fixed seed
/// the outcome is deterministic; a wrong sampler (e.g. a biased Box–Muller, or the affine
/// applied after the Exp) misses by far more.
fn check_lognormal_moments<T: Fp>(flow: &Flow<1>, seed: u64) {
    let n = 200_000usize;
    let mut rng = Pcg32::seed_from_u64(seed);
    let (mut s1, mut s2, mut sx) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..n {
        let x = flow.sample::<T, _>(&mut rng).unwrap()[0].to_f64();
        assert!(x > 0.0 && x.is_finite(), "{x}");
        let l = x.ln();
        s1 += l;
        s2 += l * l;
        sx += x;
    }
    let nf = n as f64;
    let mean = s1 / nf;
    let sd = (s2 / nf - mean * mean).sqrt();
    let mx = sx / nf;
    let se_mean = LN_SIGMA / nf.sqrt();
    let se_sd = LN_SIGMA / (2.0 * nf).sqrt();
    let var_x = ((LN_SIGMA * LN_SIGMA).exp() - 1.0) * (2.0 * LN_MU + LN_SIGMA * LN_SIGMA).exp();
    let se_mx = var_x.sqrt() / nf.sqrt();
    let ex = (LN_MU + 0.5 * LN_SIGMA * LN_SIGMA).exp();
    println!(
        "{} lognormal moments: mean ln x {mean:.5} ({:.2} SE), sd {sd:.5} ({:.2} SE), mean x {mx:.4} vs {ex:.4} ({:.2} SE)",
        T::NAME,
        (mean - LN_MU) / se_mean,
        (sd - LN_SIGMA) / se_sd,
        (mx - ex) / se_mx
    );
    assert!((mean - LN_MU).abs() <= 5.0 * se_mean, "mean of ln x {mean}");
    assert!((sd - LN_SIGMA).abs() <= 5.0 * se_sd, "sd of ln x {sd}");
    assert!((mx - ex).abs() <= 5.0 * se_mx, "mean of x {mx} vs {ex}");
}

#[test]
fn lognormal_sample_moments_f64() {
    check_lognormal_moments::<f64>(&lognormal_flow(), 2024);
}

#[test]
fn lognormal_sample_moments_f32() {
    check_lognormal_moments::<f32>(&lognormal_flow(), 2025);
}

// =============================================================================================
// The Box–Muller base.
// =============================================================================================

/// Φ(x) through erfc (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: far below the KS
/// threshold of ~4e-3 used here).
fn std_normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// 200k draws: mean, variance, third and fourth moments within 5 standard errors of 0, 1, 0, 3
/// (SEs `1/√n`, `√(2/n)`, `√(15/n)`, `√(96/n)`), the correlation of the two halves of each
/// Box–Muller pair within 5/√n of 0, and the Kolmogorov–Smirnov distance below 1.95/√n
/// (the α = 0.001 critical value). Every draw is finite and at most `√(-2 ln 2⁻²⁴)` ≈ 5.77
/// in size (`u₁ ≥ 2⁻²⁴`).
fn check_box_muller<T: Fp>(seed: u64) {
    let n = 200_000usize;
    let mut rng = Pcg32::seed_from_u64(seed);
    let mut z = vec![T::ZERO; n];
    StdNormal::sample(&mut rng, &mut z);
    let z: Vec<f64> = widen(&z);
    let zmax = (-2.0 * (2f64.powi(-24)).ln()).sqrt();
    assert!(z
        .iter()
        .all(|v| v.is_finite() && v.abs() <= zmax * (1.0 + 1e-6)));
    let nf = n as f64;
    let m1 = z.iter().sum::<f64>() / nf;
    let m2 = z.iter().map(|v| v * v).sum::<f64>() / nf;
    let m3 = z.iter().map(|v| v * v * v).sum::<f64>() / nf;
    let m4 = z.iter().map(|v| v * v * v * v).sum::<f64>() / nf;
    let pairs = n / 2;
    let corr = (0..pairs).map(|i| z[2 * i] * z[2 * i + 1]).sum::<f64>() / pairs as f64;
    let mut s = z.clone();
    s.sort_by(f64::total_cmp);
    let ks = s
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let f = std_normal_cdf(v);
            (f - i as f64 / nf)
                .abs()
                .max(((i + 1) as f64 / nf - f).abs())
        })
        .fold(0.0, f64::max);
    println!(
        "{} Box-Muller: mean {m1:.2e}, var {m2:.5}, m3 {m3:.2e}, m4 {m4:.4}, pair corr {corr:.2e}, KS {ks:.2e} (limit {:.2e})",
        T::NAME,
        1.95 / nf.sqrt()
    );
    assert!(m1.abs() <= 5.0 / nf.sqrt(), "mean {m1}");
    assert!((m2 - 1.0).abs() <= 5.0 * (2.0 / nf).sqrt(), "variance {m2}");
    assert!(m3.abs() <= 5.0 * (15.0 / nf).sqrt(), "third moment {m3}");
    assert!(
        (m4 - 3.0).abs() <= 5.0 * (96.0 / nf).sqrt(),
        "fourth moment {m4}"
    );
    assert!(
        corr.abs() <= 5.0 / (pairs as f64).sqrt(),
        "pair correlation {corr}"
    );
    assert!(ks <= 1.95 / nf.sqrt(), "KS distance {ks}");
}

#[test]
fn box_muller_moments_and_ks_f64() {
    check_box_muller::<f64>(7);
}

#[test]
fn box_muller_moments_and_ks_f32() {
    check_box_muller::<f32>(8);
}

/// The documented construction: two `next_u32` per pair, `u₁ = ((a >> 8) + 1)·2⁻²⁴`,
/// `u₂ = (b >> 8)·2⁻²⁴`, `r cos φ, r sin φ`; an odd last dimension drops the sine (and still
/// takes two draws). Compared with std's ln/sin/cos (flow-core uses libm) to 1e-14.
#[test]
fn box_muller_follows_its_documented_construction() {
    for seed in 0..50u64 {
        let mut a = Pcg32::seed_from_u64(seed);
        let mut z = [0.0f64; 5];
        StdNormal::sample(&mut a, &mut z);
        let mut b = Pcg32::seed_from_u64(seed);
        let mut expect = Vec::new();
        for _ in 0..3 {
            let ua = b.next_u32() >> 8;
            let ub = b.next_u32() >> 8;
            let u1 = (ua as f64 + 1.0) * 2f64.powi(-24);
            let u2 = ub as f64 * 2f64.powi(-24);
            let r = (-2.0 * u1.ln()).sqrt();
            expect.push(r * (TAU * u2).cos());
            expect.push(r * (TAU * u2).sin());
        }
        for i in 0..5 {
            assert!(
                (z[i] - expect[i]).abs() <= 1e-14,
                "seed {seed} dim {i}: {} vs {}",
                z[i],
                expect[i]
            );
        }
        // Both generators consumed six u32 draws.
        assert_eq!(a.next_u32(), b.next_u32(), "seed {seed}: draws consumed");
    }
}

// =============================================================================================
// JointFlow: p(x₁)·p(x₂ | x₁).
// =============================================================================================

#[allow(clippy::type_complexity)]
fn joint_parts(seed: u64, d1: usize, d2: usize) -> (Vec<Layer<'static>>, Vec<Layer<'static>>) {
    let mut rng = Rng::new(seed);
    let lin = shape(8, 3.0, Order::Linear);
    let quad = shape(5, 2.5, Order::Quadratic);
    let mut marg = vec![Layer::Spline(rand_spline(&mut rng, d1, quad))];
    if d1 >= 2 {
        marg.push(Layer::Coupling(rand_coupling(
            &mut rng,
            d1,
            1,
            &[8, 8],
            lin,
            lin,
            0,
        )));
    } else {
        marg.push(Layer::Affine(Affine::scalar(1, 0.3, 1.7).unwrap()));
    }
    let cond = vec![
        Layer::ConditionalSpline(rand_cond_spline(&mut rng, d2, d1, &[8], lin)),
        Layer::Coupling(rand_coupling(&mut rng, d2, 1, &[6], quad, quad, d1)),
        Layer::Permute(Permute::new(leak_perm(&[1, 0])).unwrap()),
        // An unconditional coupling inside the conditional part.
        Layer::Coupling(rand_coupling(
            &mut rng,
            d2,
            1,
            &[],
            lin,
            shape(4, 3.0, Order::Linear),
            0,
        )),
    ];
    (marg, cond)
}

/// `log p(x | c)` of any of the three flow types, through [`Density`].
fn density_lp<T: Real, const N: usize, const M: usize>(
    d: &impl Density<N, M>,
    x: &[T; N],
    c: &[T; M],
) -> Result<T, Error> {
    d.log_prob(x, c)
}

fn check_joint<const D: usize, const D1: usize, const D2: usize>(seed: u64, acc: &mut Acc) {
    let (ml, cl) = joint_parts(seed, D1, D2);
    let joint: JointFlow<D> = JointFlow::new(&ml, &cl).expect("joint");
    assert_eq!(joint.split(), D1);
    let marg: Flow<D1> = Flow::new(&ml).unwrap();
    let cond: ConditionalFlow<D2, D1> = ConditionalFlow::new(&cl).unwrap();
    let mut rng = Rng::new(seed + 1);
    let bmax = 3.0;
    // Points: random, the marginal's inverse-direction knots at x₁, the conditional's at x₂,
    // and tails.
    let mut pts: Vec<[f64; D]> = Vec::new();
    for k in 0..400 {
        pts.push(std::array::from_fn(|_| {
            if k % 2 == 0 {
                rng.range(-1.2 * bmax, 1.2 * bmax)
            } else {
                2.0 * rng.normal()
            }
        }));
    }
    for _ in 0..4 {
        let base: [f64; D] = std::array::from_fn(|_| rng.range(-bmax, bmax));
        let last_m = ml.len() - 1;
        let gm = layer_geoms(&ml[last_m], &base[..D1], &[], Direction::Inverse).dims;
        let gc = layer_geoms(
            &cl[cl.len() - 1],
            &base[D1..],
            &base[..D1],
            Direction::Inverse,
        )
        .dims;
        for (off, gs) in [(0usize, gm), (D1, gc)] {
            for (i, g) in gs.iter().enumerate() {
                let Some(g) = g else { continue };
                for s in specials(&breaks_of(g, Direction::Inverse)) {
                    let mut p = base;
                    p[off + i] = s;
                    pts.push(p);
                }
            }
        }
    }
    for t in [10.0, -10.0, 1e3, -1e6] {
        pts.push([t; D]);
    }
    for x in &pts {
        let (x1, x2): ([f64; D1], [f64; D2]) = (arr(&x[..D1]), arr(&x[D1..]));
        let j = density_lp(&joint, x, &[]);
        let m = density_lp(&marg, &x1, &[]);
        let c = density_lp(&cond, &x2, &x1);
        // Same arithmetic, same order: the joint density is exactly the sum of its parts.
        match (j, m, c) {
            (Ok(j), Ok(m), Ok(c)) => {
                acc.ok(
                    "joint_log_prob_eq_marginal_plus_conditional_bitwise",
                    j.to_bits() == (m + c).to_bits(),
                    || format!("{x:?}: {j} vs {m} + {c}"),
                );
            }
            (Err(Error::Numerical), _, _) => {
                let ok = m == Err(Error::Numerical) || c == Err(Error::Numerical);
                acc.ok("joint_error_comes_from_a_part", ok, || {
                    format!("{x:?}: {m:?} {c:?}")
                });
                continue;
            }
            other => {
                acc.fail_msg("joint_log_prob_ok", || format!("{x:?}: {other:?}"));
                continue;
            }
        }
        let j = j.unwrap();
        // f32: the same identity.
        let x32 = x.map(|v| v as f32);
        let (x1f, x2f): ([f32; D1], [f32; D2]) = (arr(&x32[..D1]), arr(&x32[D1..]));
        if let (Ok(jf), Ok(mf), Ok(cf)) = (
            density_lp(&joint, &x32, &[]),
            density_lp(&marg, &x1f, &[]),
            density_lp(&cond, &x2f, &x1f),
        ) {
            acc.ok(
                "joint_log_prob_eq_parts_bitwise_f32",
                jf.to_bits() == (mf + cf).to_bits(),
                || format!("{x32:?}: {jf} vs {mf} + {cf}"),
            );
        }
        // The change of variables in full: z = G(x) = (f₁⁻¹(x₁), f₂⁻¹(x₂; x₁)), and
        // log p(x) = log N(z) + ln|det ∂G/∂x| with the D×D Jacobian (including ∂z₂/∂x₁) by
        // finite differences — away from break points of either part (see `classify`).
        let cm = classify(&ml, &[], &x1, Direction::Inverse);
        let cc = classify(&cl, &x1, &x2, Direction::Inverse);
        if !(cm.fd_ok && cc.fd_ok) || cm.extreme || cc.extreme {
            acc.count("joint_fd_skipped_near_break");
            continue;
        }
        let g = |p: &[f64]| -> Option<Vec<f64>> {
            let (p1, p2): ([f64; D1], [f64; D2]) = (arr(&p[..D1]), arr(&p[D1..]));
            let z1 = marg.inverse(&p1).ok()?;
            let (z2, _) = cond.condition(&p1).inverse_and_log_det(&p2).ok()?;
            Some(z1.iter().chain(z2.iter()).copied().collect())
        };
        let (Some(j1), Some(j2)) = (fd_jacobian(&g, x, 1.0), fd_jacobian(&g, x, 0.25)) else {
            acc.count("joint_fd_skipped_domain");
            continue;
        };
        let z = g(x).unwrap();
        let Some(jinv) = mat_inv(&j2) else { continue };
        let (fd1, fd2) = (log_abs_det(j1), log_abs_det(j2));
        let mut round = 0.0;
        for r in 0..D {
            for c in 0..D {
                round += jinv[c][r].abs() * 2.0 * f64::EPSILON * z[r].abs().max(1.0)
                    / (fd_step(x[c]) * 0.25);
            }
        }
        if round > FD_ROUND_MAX {
            acc.count("joint_fd_skipped_rounding_dominated");
            continue;
        }
        if (fd1 - fd2).abs() > 0.5 * FD64 + 4.0 * round {
            acc.count("joint_fd_skipped_not_converged");
            continue;
        }
        let expect = StdNormal::log_prob(&z) + fd2;
        acc.check(
            "joint_log_prob_vs_fd_change_of_variables (abs)",
            (j - expect).abs(),
            FD64 + round,
            || format!("{x:?}: log_prob {j}, FD {expect}"),
        );
    }
    // Sampling: x₁ ~ p(x₁) from the first base draws, then x₂ ~ p(x₂ | x₁) from the next.
    for s in 0..200u64 {
        let (x, lp) = joint
            .sample_with_log_prob::<f64, _>(&mut Pcg32::seed_from_u64(s))
            .unwrap();
        let x2s = joint
            .sample::<f64, _>(&mut Pcg32::seed_from_u64(s))
            .unwrap();
        acc.ok(
            "joint_sample_eq_sample_with_log_prob_bitwise",
            x == x2s,
            || format!("{x:?} {x2s:?}"),
        );
        let mut r = Pcg32::seed_from_u64(s);
        let mut z1 = [0.0f64; D1];
        let mut z2 = [0.0f64; D2];
        StdNormal::sample(&mut r, &mut z1);
        StdNormal::sample(&mut r, &mut z2);
        let (y1, l1) = marg.forward_and_log_det(&z1).unwrap();
        let (y2, l2) = cond.condition(&y1).forward_and_log_det(&z2).unwrap();
        acc.ok(
            "joint_sample_is_parts_forward_bitwise",
            x[..D1] == y1[..] && x[D1..] == y2[..],
            || format!("{x:?} vs {y1:?} {y2:?}"),
        );
        let expect = (StdNormal::log_prob(&z1) - l1) + (StdNormal::log_prob(&z2) - l2);
        acc.check(
            "joint_sample_log_prob_eq_parts",
            (lp - expect).abs(),
            4.0 * f64::EPSILON * (lp.abs() + 10.0),
            || format!("{lp} vs {expect}"),
        );
        let lpx = joint.log_prob(&x).unwrap();
        // Through the inverses: see sample_log_prob_vs_log_prob64.
        acc.check(
            "joint_sample_log_prob_vs_log_prob (rel)",
            (lpx - lp).abs() / lp.abs().max(1.0),
            RT64_NEAR_KNOT,
            || format!("{x:?}: {lp} vs {lpx}"),
        );
        let (xf, lpf) = joint
            .sample_with_log_prob::<f32, _>(&mut Pcg32::seed_from_u64(s))
            .unwrap();
        acc.ok(
            "joint_f32_sample_finite",
            xf.iter().all(|v| v.is_finite()) && lpf.is_finite(),
            || format!("{xf:?}"),
        );
    }
    // Non-finite anywhere: NonFiniteInput (x₁ is also the conditional's context).
    for i in 0..D {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut x = [0.5f64; D];
            x[i] = bad;
            acc.ok(
                "joint_non_finite_rejected",
                joint.log_prob(&x) == Err(Error::NonFiniteInput),
                || format!("{x:?}"),
            );
            let x32 = x.map(|v| v as f32);
            acc.ok(
                "joint_non_finite_rejected",
                joint.log_prob(&x32) == Err(Error::NonFiniteInput),
                || format!("{x32:?}"),
            );
        }
    }
}

#[test]
fn conformance_joint_flow() {
    let mut acc = Acc::new("joint");
    check_joint::<4, 2, 2>(91, &mut acc);
    check_joint::<3, 1, 2>(92, &mut acc);
    acc.assert_clean("joint");
    assert!(acc.n("joint_log_prob_vs_fd_change_of_variables (abs)") >= 200);
}

/// The parts of a joint flow through the full harness: the marginal as a `Flow`, the
/// conditional as a `ConditionalFlow` at several contexts `x₁`.
#[test]
fn conformance_joint_flow_parts() {
    let mut cases = Vec::new();
    let (ml, cl) = joint_parts(91, 2, 2);
    cases.push(flow_case("joint_marginal_d2", ml, None));
    let mut rng = Rng::new(93);
    for k in 0..2 {
        let ctx = rand_ctx(&mut rng, 2);
        cases.push(cond_case(
            &format!("joint_conditional_d2_ctx{k}"),
            cl.clone(),
            ctx,
            None,
        ));
    }
    run_group("joint_parts", cases);
}

// =============================================================================================
// Robustness and validation.
// =============================================================================================

/// A conditional flow may mix conditional and unconditional layers (its docs say so, and
/// `ConditionalFlow::new` accepts them). Regression: an unconditional coupling inside one used
/// to fail at evaluation with `InvalidLayer(Context)`, because the chain passed the context to
/// every layer. It must give exactly what the same coupling gives in a `Flow`.
#[test]
fn conditional_flow_accepts_unconditional_coupling() {
    let mut rng = Rng::new(101);
    let sh = shape(6, 3.0, Order::Quadratic);
    let c = rand_coupling(&mut rng, 2, 1, &[5], sh, sh, 0);
    let cf: ConditionalFlow<2, 1> = ConditionalFlow::new(&[Layer::Coupling(c)]).unwrap();
    let f: Flow<2> = Flow::new(&[Layer::Coupling(c)]).unwrap();
    for _ in 0..100 {
        let x = [rng.normal(), rng.normal()];
        let ctx = [rng.normal()];
        assert_eq!(cf.log_prob(&x, &ctx), f.log_prob(&x));
        assert_eq!(
            cf.condition(&ctx).forward_and_log_det(&x),
            f.forward_and_log_det(&x)
        );
        assert_eq!(
            cf.condition(&ctx).inverse_and_log_det(&x),
            f.inverse_and_log_det(&x)
        );
    }
}

#[test]
fn non_finite_contexts_rejected() {
    let mut rng = Rng::new(102);
    let lin = shape(4, 3.0, Order::Linear);
    let cs = rand_cond_spline(&mut rng, 2, 2, &[4], lin);
    let flow: ConditionalFlow<2, 2> =
        ConditionalFlow::new(&[Layer::ConditionalSpline(cs)]).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let ctx = [0.3, bad];
        let x = [0.1, -0.2];
        assert_eq!(flow.log_prob(&x, &ctx), Err(Error::NonFiniteInput));
        let c = flow.condition(&ctx);
        assert_eq!(c.forward_and_log_det(&x), Err(Error::NonFiniteInput));
        assert_eq!(c.inverse_and_log_det(&x), Err(Error::NonFiniteInput));
        assert_eq!(
            c.sample(&mut Pcg32::seed_from_u64(1)),
            Err(Error::NonFiniteInput)
        );
        assert_eq!(
            c.sample_with_log_prob(&mut Pcg32::seed_from_u64(1)),
            Err(Error::NonFiniteInput)
        );
        let ctx32 = [0.3f32, bad as f32];
        assert_eq!(
            flow.log_prob(&[0.1f32, -0.2], &ctx32),
            Err(Error::NonFiniteInput)
        );
    }
}

/// `Exp`'s inverse exists for `y > 0` only: `log_prob` is `-inf` at `y <= 0` (including -0.0)
/// and the inverse is `Err(OutOfSupport)`; far right the forward overflows to `+inf` (a value:
/// infinities pass, only NaN is an error), with `log|J| = x`.
#[test]
fn exp_support_and_overflow() {
    let flow: Flow<2> = Flow::new(&[Layer::Exp(Exp::new(2).unwrap())]).unwrap();
    for y in [0.0, -0.0, -1e-300, -1.0, -1e30, -1e300] {
        assert_eq!(flow.log_prob(&[1.0, y]), Ok(f64::NEG_INFINITY), "{y}");
        assert_eq!(flow.inverse(&[y, 1.0]), Err(Error::OutOfSupport));
        let y32 = y as f32; // -1e300 is -inf in f32: a non-finite input instead.
        let expect = if y32.is_finite() {
            Ok(f32::NEG_INFINITY)
        } else {
            Err(Error::NonFiniteInput)
        };
        assert_eq!(flow.log_prob(&[y32, 1.0]), expect, "{y}");
    }
    assert_eq!(
        flow.inverse_and_log_det(&[1.0f32, -0.0]),
        Err(Error::OutOfSupport)
    );
    // Tiny positive values are inside: finite log-densities.
    for y in [f64::MIN_POSITIVE, 5e-324, 1e-300] {
        let lp = flow.log_prob(&[1.0, y]).unwrap();
        assert!(lp.is_finite() && lp < -1e5, "{y}: {lp}");
    }
    let (y, ld) = flow.forward_and_log_det(&[1000.0f64, 0.0]).unwrap();
    assert_eq!(y, [f64::INFINITY, 1.0]);
    assert_eq!(ld, 1000.0);
    let (y, ld) = flow.forward_and_log_det(&[100.0f32, -200.0]).unwrap();
    assert_eq!(y, [f32::INFINITY, 0.0]);
    assert_eq!(ld, -100.0);
}

#[test]
fn empty_flow_is_the_standard_normal() {
    let flow: Flow<3> = Flow::new(&[]).unwrap();
    let mut rng = Rng::new(103);
    for _ in 0..100 {
        let x = [rng.normal(), rng.normal(), rng.normal()];
        assert_eq!(flow.log_prob(&x), Ok(StdNormal::log_prob(&x)));
        assert_eq!(flow.forward_and_log_det(&x), Ok((x, 0.0)));
    }
    let s: [f64; 3] = flow.sample(&mut Pcg32::seed_from_u64(5)).unwrap();
    let mut z = [0.0f64; 3];
    StdNormal::sample(&mut Pcg32::seed_from_u64(5), &mut z);
    assert_eq!(s, z);
}

#[test]
fn constructor_validation_errors() {
    use LayerError as L;
    let inv = Error::InvalidLayer;
    // SplineShape: 2 ≤ bins ≤ 1000, finite bound > 0.
    for bins in [0, 1, 1001, usize::MAX] {
        assert_eq!(
            SplineShape::new(bins, 3.0, Order::Linear),
            Err(inv(L::Bins)),
            "{bins}"
        );
    }
    assert!(SplineShape::new(2, 3.0, Order::Quadratic).is_ok());
    assert!(SplineShape::new(1000, 3.0, Order::Linear).is_ok());
    for b in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_eq!(
            SplineShape::new(8, b, Order::Linear),
            Err(inv(L::Bound)),
            "{b}"
        );
    }
    assert!(SplineShape::new(8, f32::MIN_POSITIVE, Order::Linear).is_ok());
    // Spline: dimension, parameter count (4K-1 linear, 3K-1 quadratic per dim), finiteness.
    let lin = shape(4, 3.0, Order::Linear);
    let quad = shape(4, 3.0, Order::Quadratic);
    assert_eq!(lin.params_per_dim(), 15);
    assert_eq!(quad.params_per_dim(), 11);
    let w30 = leak(&[0.1; 30]);
    assert!(Spline::new(2, lin, w30).is_ok());
    assert_eq!(Spline::new(0, lin, w30), Err(inv(L::ZeroDim)));
    assert_eq!(
        Spline::new(2, quad, w30),
        Err(Error::ParameterCount {
            expected: 22,
            found: 30
        })
    );
    assert_eq!(
        Spline::new(2, lin, leak(&[0.1; 29])),
        Err(Error::ParameterCount {
            expected: 30,
            found: 29
        })
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = [0.1f32; 30];
        v[17] = bad;
        assert_eq!(
            Spline::new(2, lin, leak(&v)),
            Err(Error::NonFiniteParameter)
        );
    }
    // Affine.
    assert_eq!(Affine::scalar(0, 0.0, 1.0), Err(inv(L::ZeroDim)));
    for s in [0.0, -0.0, f32::NAN, f32::INFINITY] {
        assert_eq!(Affine::scalar(1, 0.0, s), Err(inv(L::Scale)), "{s}");
    }
    for l in [f32::NAN, f32::NEG_INFINITY] {
        assert_eq!(Affine::scalar(1, l, 1.0), Err(Error::NonFiniteParameter));
    }
    assert_eq!(Affine::per_dim(0, leak(&[])), Err(inv(L::ZeroDim)));
    assert_eq!(
        Affine::per_dim(2, leak(&[0.0, 0.0, 1.0])),
        Err(Error::ParameterCount {
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        Affine::per_dim(2, leak(&[0.0, 0.0, 1.0, 0.0])),
        Err(inv(L::Scale))
    );
    assert_eq!(
        Affine::per_dim(2, leak(&[f32::NAN, 0.0, 1.0, 1.0])),
        Err(Error::NonFiniteParameter)
    );
    assert_eq!(Exp::new(0), Err(inv(L::ZeroDim)));
    // Permute.
    assert_eq!(Permute::new(&[]), Err(inv(L::ZeroDim)));
    for p in [&[0u8, 0][..], &[1, 2], &[0, 2, 1, 3, 3], &[5]] {
        assert_eq!(
            Permute::new(leak_perm(p)),
            Err(inv(L::Permutation)),
            "{p:?}"
        );
    }
    let big: Vec<u8> = (0..=255u8).rev().collect();
    assert!(Permute::new(leak_perm(&big)).is_ok());
    let mut too_big = big.clone();
    too_big.push(0);
    assert_eq!(Permute::new(leak_perm(&too_big)), Err(inv(L::Permutation)));
    // DenseNN: 2 → [3] → 4 has 2·3+3 + 3·4+4 = 25 parameters.
    assert_eq!(dense_param_count(2, &[3], 4), 25);
    assert!(DenseNN::new(2, &[3], 4, leak(&[0.1; 25])).is_ok());
    assert_eq!(
        DenseNN::new(2, &[3], 4, leak(&[0.1; 24])),
        Err(Error::ParameterCount {
            expected: 25,
            found: 24
        })
    );
    assert_eq!(
        DenseNN::new(1, &[1, 1, 1, 1, 1], 1, leak(&[0.1; 12])),
        Err(Error::Capacity {
            what: Capacity::HiddenLayers,
            needed: 5,
            limit: 4
        })
    );
    assert_eq!(
        DenseNN::new(2, &[0], 4, leak(&[0.1; 4])),
        Err(inv(L::ZeroDim))
    );
    assert_eq!(
        DenseNN::new(0, &[], 4, leak(&[0.1; 4])),
        Err(inv(L::ZeroDim))
    );
    let mut v = [0.1f32; 25];
    v[3] = f32::NAN;
    assert_eq!(
        DenseNN::new(2, &[3], 4, leak(&v)),
        Err(Error::NonFiniteParameter)
    );
    // SplineCoupling: upper part non-empty; hypernet input = split + context; output =
    // upper_dim × params_per_dim.
    let low = Spline::new(1, quad, leak(&[0.1; 11])).unwrap();
    let nn_ok = DenseNN::new(1, &[], 22, leak(&[0.1; 44])).unwrap();
    assert!(SplineCoupling::new(low, 2, quad, nn_ok, 0).is_ok());
    assert_eq!(
        SplineCoupling::new(low, 0, quad, nn_ok, 0),
        Err(inv(L::Split))
    );
    assert_eq!(
        SplineCoupling::new(low, 2, quad, nn_ok, 1),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        SplineCoupling::new(low, 1, quad, nn_ok, 0),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        SplineCoupling::new(low, 2, lin, nn_ok, 0),
        Err(inv(L::HypernetShape))
    );
    // ConditionalSpline.
    let nn_c = DenseNN::new(3, &[], 22, leak(&[0.1; 88])).unwrap();
    assert!(ConditionalSpline::new(2, quad, nn_c).is_ok());
    assert_eq!(ConditionalSpline::new(0, quad, nn_c), Err(inv(L::ZeroDim)));
    assert_eq!(
        ConditionalSpline::new(1, quad, nn_c),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        ConditionalSpline::new(2, lin, nn_c),
        Err(inv(L::HypernetShape))
    );
    // Weights and encode_f32s.
    assert!(Weights::new(&[0u8; 5]).is_none());
    assert!(Weights::new(&[0u8; 8]).is_some());
    assert_eq!(encode_f32s(&[1.0, 2.0], &mut [0u8; 7]), None);
    let mut b = [0u8; 8];
    assert_eq!(encode_f32s(&[1.0, -2.5], &mut b), Some(8));
    assert_eq!(
        Weights::new(&b).unwrap().iter().collect::<Vec<_>>(),
        vec![1.0, -2.5]
    );
}

#[test]
fn flow_construction_and_capacity_errors() {
    use LayerError as L;
    let mut rng = Rng::new(104);
    let k8 = shape(8, 3.0, Order::Linear);
    let k4 = shape(4, 3.0, Order::Quadratic);
    let s1 = Layer::Spline(rand_spline(&mut rng, 1, k8));
    let s2 = Layer::Spline(rand_spline(&mut rng, 2, k4));
    let c8 = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[8], k4, k4, 0));
    let cond_c = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k4, k4, 2));
    let cond_s = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 2, &[3], k4));
    let mixed = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k4, k8, 0));
    // Dimensions and contexts.
    assert_eq!(
        Flow::<2>::new(&[s2, s1]).map(|_| ()),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        Flow::<2>::new(&[cond_s]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        Flow::<2>::new(&[s2, cond_c]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        ConditionalFlow::<2, 3>::new(&[cond_s]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert!(ConditionalFlow::<2, 2>::new(&[cond_s, s2, cond_c, c8]).is_ok());
    // Compile-time capacities: layers L, hidden width H, bins K.
    assert_eq!(
        Flow::<2, 1>::new(&[s2, s2]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Layers,
            needed: 2,
            limit: 1
        })
    );
    assert!(Flow::<2, 2>::new(&[s2, s2]).is_ok());
    assert_eq!(
        Flow::<2, 8, 4>::new(&[c8]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 8,
            limit: 4
        })
    );
    assert!(Flow::<2, 8, 8>::new(&[c8]).is_ok());
    assert_eq!(
        Flow::<1, 8, 64, 4>::new(&[s1]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 4
        })
    );
    // A coupling's bins are the larger of its lower and upper splines'.
    assert_eq!(
        Flow::<2, 8, 64, 6>::new(&[mixed]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 6
        })
    );
    assert_eq!(
        ConditionalFlow::<2, 2, 1>::new(&[cond_s, cond_s]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Layers,
            needed: 2,
            limit: 1
        })
    );
    assert_eq!(
        ConditionalFlow::<2, 2, 8, 2>::new(&[cond_s]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 3,
            limit: 2
        })
    );
    // JointFlow: d₁ (the marginal's dimension) in 1..D, the conditional's layers of dimension
    // D - d₁ with context d₁.
    assert!(matches!(
        JointFlow::<4>::new(&[s2], &[s1]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        JointFlow::<4>::new(&[], &[s2]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        JointFlow::<2>::new(&[s2], &[s2]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(JointFlow::<4>::new(&[s2], &[cond_s]).is_ok());
    // No conditional layers: x₂ is standard Normal, independent of x₁.
    let j = JointFlow::<4>::new(&[s2], &[]).unwrap();
    let m = Flow::<2>::new(&[s2]).unwrap();
    let x = [0.3f64, -1.2, 0.7, 2.1];
    assert_eq!(
        j.log_prob(&x),
        Ok(m.log_prob(&[0.3, -1.2]).unwrap() + StdNormal::log_prob(&[0.7, 2.1]))
    );
    let cond_s1 = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 1, &[], k4));
    assert_eq!(
        JointFlow::<4>::new(&[s2], &[cond_s1]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        JointFlow::<4, 8, 64, 4>::new(&[s2], &[s2, Layer::Spline(rand_spline(&mut rng, 2, k8))])
            .map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 4
        })
    );
}

/// `Layer::apply` checks lengths, context sizes and the workspace it is given.
#[test]
fn layer_apply_errors() {
    use LayerError as L;
    let mut rng = Rng::new(105);
    let k8 = shape(8, 3.0, Order::Linear);
    let sp = Layer::Spline(rand_spline(&mut rng, 2, k8));
    let cp = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[8], k8, k8, 0));
    let cc = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k8, k8, 3));
    let cs = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 3, &[4], k8));
    let mut ws = Workspace::<f64, 64, 32>::new();
    let mut v3 = [0.1f64; 3];
    let mut l3 = [0.0f64; 3];
    let (mut v, mut l) = ([0.1f64, 0.2], [0.0f64; 2]);
    assert_eq!(
        sp.apply(&mut v3, &[], &mut l3[..2], Direction::Forward, &mut ws),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 2
        })
    );
    assert!(matches!(
        sp.apply(&mut v, &[], &mut l3, Direction::Forward, &mut ws),
        Err(Error::DimensionMismatch { expected: 2, .. })
    ));
    assert_eq!(
        cc.apply(&mut v, &[0.0; 2], &mut l, Direction::Forward, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    assert!(cc
        .apply(&mut v, &[0.0; 3], &mut l, Direction::Forward, &mut ws)
        .is_ok());
    assert_eq!(
        cs.apply(&mut v, &[], &mut l, Direction::Inverse, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        cp.apply(&mut v, &[1.0], &mut l, Direction::Forward, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    // A workspace too small for the layer: a capacity error, not a panic.
    let mut small_k = Workspace::<f64, 64, 2>::new();
    let (mut v, mut l) = ([0.1f64, 0.2], [0.0f64; 2]);
    assert_eq!(
        sp.apply(&mut v, &[], &mut l, Direction::Forward, &mut small_k),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 2
        })
    );
    let mut small_h = Workspace::<f32, 2, 32>::new();
    let (mut v, mut l) = ([0.1f32, 0.2], [0.0f32; 2]);
    assert_eq!(
        cp.apply(&mut v, &[], &mut l, Direction::Inverse, &mut small_h),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 8,
            limit: 2
        })
    );
}

/// Known flow-core issue (inherited from Pyro's formula; reported, not fixed): exactly on an
/// interior y-knot whose derivative `δ₁` is tiny against the slope `s₀` of the bin to its left
/// (here `δ₁ ≈ 1e-3`, `s₀ ≈ 950`), the f32 quadratic inverse computes its discriminant
/// `Δy²δ₁²` as `b² - 4aq` from terms of size `4s₀²Δy²`; it rounds to ≤ 0 (clamped), `θ` comes
/// out wrong and the log of a non-positive numerator is NaN: `log_prob` and the inverse return
/// `Err(Numerical)` at a finite point inside the box. f64 is fine there (`x = x₁`,
/// `log|dx/dy| = -ln δ₁ = 6.9078`). Enable once the inverse is made stable there.
#[test]
fn f32_quadratic_inverse_on_a_steep_knot_is_finite() {
    // Regression: exactly on a y-knot whose derivative is tiny next to the left bin's slope,
    // Pyro's search sends the point to the left bin, extrapolated past its end, and the f32
    // discriminant cancels to nothing (NaN). flow-core then evaluates the bin the point lies in.
    // The log-det is discontinuous there (the extrapolated left bin against the right bin's own
    // value), so f32 and f64 may land on different sides of it; the inverse itself is the knot
    // in both and must agree.
    let sh = shape(2, 3.0, Order::Quadratic);
    // uw = [-3, 3], uh = [3, -3], ud = [-20]: bin 0 is 6.3e-3 wide and 5.96 tall.
    let s = Spline::new(1, sh, leak(&[-3.0, 3.0, 3.0, -3.0, -20.0])).unwrap();
    let flow: Flow<1> = Flow::new(&[Layer::Spline(s)]).unwrap();
    let mut yk = [3.0f32, -3.0];
    knots_in_place(&mut yk, 3.0f32);
    let y1 = yk[0]; // 2.979194
    let (x64, _) = flow.inverse_and_log_det(&[f64::from(y1)]).unwrap();
    let (x32, ld32) = flow
        .inverse_and_log_det(&[y1])
        .expect("finite inverse on a knot");
    assert!(
        (f64::from(x32[0]) - x64[0]).abs() < 1e-4,
        "{x32:?} vs {x64:?}"
    );
    assert!(ld32.is_finite());
    assert!(flow.log_prob(&[y1]).unwrap().is_finite());
}
