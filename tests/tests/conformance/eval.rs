//! Test-side evaluation: layers one at a time, spline geometry, conditioning, finite
//! differences.

use std::ops::Range;

use flow_core::spline::{knots_in_place, sigmoid, softplus};
use flow_core::{DenseNN, Direction, Error, Layer, Order, SplineShape, Weights, Workspace};

use crate::models::*;
use crate::tolerances::*;

// =============================================================================================
// Test-side evaluation helpers: layers one at a time, spline geometry, finite differences.
// =============================================================================================

pub(crate) fn go<T: Fp>(m: &dyn Model<T>, dir: Direction, x: &[T]) -> Result<(Vec<T>, T), Error> {
    match dir {
        Direction::Forward => m.fwd_ld(x),
        Direction::Inverse => m.inv_ld(x),
    }
}

pub(crate) fn go_sep<T: Fp>(
    m: &dyn Model<T>,
    dir: Direction,
    x: &[T],
) -> Option<Result<Vec<T>, Error>> {
    match dir {
        Direction::Forward => m.fwd(x),
        Direction::Inverse => m.inv(x),
    }
}

/// One layer through the public `Layer::apply`; unconditional layers get no context.
pub(crate) fn apply_layer<T: Fp>(
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
pub(crate) fn walk<T: Fp>(
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
pub(crate) struct Geom<T> {
    /// `x_0 = -B, x_1, …, x_K = B`.
    pub(crate) xk: Vec<T>,
    pub(crate) yk: Vec<T>,
    /// `δ_0 … δ_K`.
    pub(crate) d: Vec<T>,
    /// `λ_k` (linear order only).
    pub(crate) lam: Vec<T>,
    pub(crate) bound: T,
    pub(crate) quadratic: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Breaks<T> {
    pub(crate) interior: Vec<T>,
    pub(crate) bound: Option<T>,
    pub(crate) junctions: Vec<T>,
}

impl<T: Fp> Breaks<T> {
    pub(crate) fn all(&self) -> Vec<T> {
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
pub(crate) fn geom<T: Fp>(sh: &SplineShape, raw: &[T], dims: usize, j: usize) -> Geom<T> {
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
pub(crate) fn breaks_of<T: Fp>(g: &Geom<T>, dir: Direction) -> Breaks<T> {
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

/// `v` in `f64` and the bin Pyro's search picks for it in `dir`; `None` outside the box.
fn searched_bin<T: Fp>(g: &Geom<T>, v: T, dir: Direction) -> Option<(f64, usize)> {
    let (v, bd) = (v.to_f64(), g.bound.to_f64());
    if !(v >= -bd && v <= bd) {
        return None;
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
    Some((v, count.saturating_sub(1).min(kk - 1)))
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
pub(crate) fn formula_kappa<T: Fp>(g: &Geom<T>, v: T, dir: Direction) -> f64 {
    let Some((v, k)) = searched_bin(g, v, dir) else {
        return 1.0;
    };
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
pub(crate) fn knot_cancel<T: Fp>(g: &Geom<T>, v: T, dir: Direction) -> f64 {
    let Some((_, k)) = searched_bin(g, v, dir) else {
        return 0.0;
    };
    let c = |a: &[T]| {
        let (lo, hi) = (a[k].to_f64(), a[k + 1].to_f64());
        (lo.abs() + hi.abs()) / (hi - lo)
    };
    2.0 * (c(&g.xk) + c(&g.yk))
}

pub(crate) fn nn_out<T: Fp>(nn: &DenseNN, a: &[T], b: &[T]) -> Vec<T> {
    let w = nn.max_hidden().max(1);
    let (mut h0, mut h1) = (vec![T::ZERO; w], vec![T::ZERO; w]);
    let mut out = vec![T::ZERO; nn.output_len()];
    nn.forward(a, b, &mut h0, &mut h1, &mut out)
        .expect("hypernet forward");
    out
}

/// What acts on each coordinate of a layer's input.
pub(crate) struct LayerGeom<T> {
    /// Per coordinate, the spline geometry acting on it, if any.
    pub(crate) dims: Vec<Option<Geom<T>>>,
    /// The largest |hypernetwork output| (0 without a hypernetwork).
    pub(crate) max_raw: f64,
}

/// The geometry of `layer` at `input` (in `dir`). A coupling's upper geometry depends on `x1`:
/// the input's lower part going forward, the lower spline's inverse of it going back.
pub(crate) fn layer_geoms<T: Fp>(
    layer: &Layer,
    input: &[T],
    ctx: &[T],
    dir: Direction,
) -> LayerGeom<T> {
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
pub(crate) fn relu_margin(nn: &DenseNN, input: &[f64]) -> f64 {
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

pub(crate) fn dist<T: Fp>(v: T, pts: &[T]) -> f64 {
    pts.iter()
        .map(|p| (v.to_f64() - p.to_f64()).abs())
        .fold(f64::INFINITY, f64::min)
}

/// What a point is near, walking it through the layers in `dir` (in `T`, with `T`'s knots).
#[derive(Default)]
pub(crate) struct Class {
    /// Within [`NEAR_KNOT`] of an interior knot at some layer (input side in `dir`'s knots,
    /// output side in the other's).
    pub(crate) near_knot: bool,
    /// Within [`NEAR_KNOT`] of `±B` at some layer (input or output side).
    pub(crate) near_bound: bool,
    /// In `(knot, knot + 1e-6]` of an interior knot at some layer: evaluated by Pyro's search
    /// in the bin to the left, extrapolated beyond `θ = 1`.
    pub(crate) eps_window: bool,
    /// Some hypernetwork output beyond [`EXTREME_RAW`].
    pub(crate) extreme: bool,
    /// The largest |hypernetwork output| met.
    pub(crate) max_raw: f64,
    /// The knot-differencing amplification ([`knot_cancel`]) summed over the coordinates and
    /// layers met.
    pub(crate) knot_cancel: f64,
    /// Far enough from every break point (and later ReLU kinks) for the FD stencil.
    pub(crate) fd_ok: bool,
    /// The largest formula amplification factor met (see [`formula_kappa`]; 1 if none).
    pub(crate) kappa: f64,
}

pub(crate) fn classify<T: Fp>(layers: &[Layer], ctx: &[T], p: &[T], dir: Direction) -> Class {
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
pub(crate) fn fd_step(x: f64) -> f64 {
    let h = FD_REL_STEP * x.abs().max(1.0);
    2f64.powi(h.log2().round() as i32)
}

/// Five-point central-difference Jacobian of `f` at `x`, steps `fd_step(x_c) · scale`.
pub(crate) fn fd_jacobian(
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
pub(crate) fn log_abs_det(mut a: Vec<Vec<f64>>) -> f64 {
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
pub(crate) fn spread(
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
pub(crate) fn perturb32(case: &Case) -> impl Fn(f64) -> f64 {
    let b = case.bmax();
    move |v: f64| PERTURB32 * f32::EPS * v.abs().max(1.0).max(b)
}
