//! Differentiable rational splines in the inverse direction (`y → x`, as `log_prob` needs),
//! with exactly flow-core's (and Pyro 1.9.2's) parameterization; see `flow_core::spline` for
//! every formula.
//!
//! A point's output depends on the parameters only through the seven quantities of the bin it
//! falls in ([`BinQ`]: left knots `x_k`, `y_k`, widths `Δx`, `Δy`, knot derivatives `δ_k`,
//! `δ_{k+1}`, and `λ_k`). The backward pass first takes the adjoints of these seven (hand-derived
//! reverse mode of the formulas below), then maps them to the unconstrained parameters:
//!
//! * knots `x_j = 2B·Σ_{i<j} w_i - B` with `w_i = 1e-3 + (1 - 1e-3·K)·softmax(uw)_i`, the end
//!   knots fixed at `∓B` (no gradient): `∂L/∂w_i = 2B·Σ_{j>i, 0<j<K} ∂L/∂x_j`, then the softmax
//!   Jacobian `∂L/∂uw_i = p_i (a_i - Σ_j p_j a_j)`;
//! * `δ_j = 1e-3 + softplus(ud_{j-1})` (end derivatives fixed at 0.999): `∂δ/∂ud = sigmoid(ud)`
//!   (1 above torch's threshold 20);
//! * `λ = 0.95·sigmoid(ul) + 0.025`: `∂λ/∂ul = 0.95·σ(1-σ)`.
//!
//! Outside `[-B, B]` the spline is the identity and contributes no parameter gradient. The bin
//! search follows flow-core's absolute `1e-6` rule exactly.
//!
//! The bin formulas themselves are flow-core's ([`flow_core::spline::bin`], their always
//! inlined `…_inlined` form), evaluated with [`Lanes`]: the trainer's vectorizable `ln` and a
//! `pick` that computes both branches and blends, so that the per-point loops compile to SIMD
//! code. The adjoints are this module's own.
//!
//! Two evaluation modes (one module each) share the per-point math of this one:
//! * [`SharedSpline`](shared::SharedSpline): parameters shared by all points (the element-wise `Spline` layer and a
//!   coupling's lower spline). Knots are computed once per step; per-point adjoints are summed
//!   per bin and mapped to the raw parameters once per step.
//! * [`cond_fwd`](cond::cond_fwd)/[`cond_bwd`](cond::cond_bwd): parameters per point, as rows of a hypernetwork's output.

use crate::float::{sel, Float};
use crate::tile::{zero, Row, T};
use flow_core::spline::bin::{Bin, BinOps};
use flow_core::spline::{MIN_BIN_WIDTH, MIN_DERIVATIVE, MIN_LAMBDA, SEARCH_EPS};
use flow_core::SplineShape;

/// Points per register chunk in the selection loops.
pub(crate) const V: usize = 16;

/// The trainer's [`BinOps`] for flow-core's bin formulas: [`Float`]'s functions (branch-free
/// approximations for `f32`) and a `pick` that computes both sides and blends, so that a loop
/// over points vectorizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lanes;

impl<F: Float> BinOps<F> for Lanes {
    #[inline(always)]
    fn lit(v: f64) -> F {
        F::of(v)
    }
    #[inline(always)]
    fn ln(v: F) -> F {
        v.ln()
    }
    #[inline(always)]
    fn sqrt(v: F) -> F {
        v.sqrt()
    }
    #[inline(always)]
    fn abs(v: F) -> F {
        v.abs()
    }
    #[inline(always)]
    fn pick<R: Copy>(c: bool, a: impl FnOnce() -> R, b: impl FnOnce() -> R) -> R {
        let (a, b) = (a(), b());
        sel(c, a, b)
    }
}

/// The quantities of one bin (or their adjoints).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct BinQ<F> {
    pub xk: F,
    pub dx: F,
    pub yk: F,
    pub dy: F,
    pub d0: F,
    pub d1: F,
    pub lam: F,
}

impl<F: Float> BinQ<F> {
    /// flow-core's [`Bin`] of these quantities.
    #[inline(always)]
    pub(crate) fn bin(&self) -> Bin<F> {
        Bin::new(self.xk, self.dx, self.yk, self.dy, self.d0, self.d1)
    }

    #[inline(always)]
    fn masked(self, keep: bool) -> Self {
        let z = F::ZERO;
        BinQ {
            xk: sel(keep, self.xk, z),
            dx: sel(keep, self.dx, z),
            yk: sel(keep, self.yk, z),
            dy: sel(keep, self.dy, z),
            d0: sel(keep, self.d0, z),
            d1: sel(keep, self.d1, z),
            lam: sel(keep, self.lam, z),
        }
    }

    #[inline(always)]
    fn add(&mut self, o: &Self) {
        self.xk += o.xk;
        self.dx += o.dx;
        self.yk += o.yk;
        self.dy += o.dy;
        self.d0 += o.d0;
        self.d1 += o.d1;
        self.lam += o.lam;
    }
}

/// [`BinQ`] for the points of a tile, one row per quantity (structure of arrays).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QRows<F> {
    xk: Row<F>,
    dx: Row<F>,
    yk: Row<F>,
    dy: Row<F>,
    d0: Row<F>,
    d1: Row<F>,
    lam: Row<F>,
}

impl<F: Float> Default for QRows<F> {
    fn default() -> Self {
        Self {
            xk: zero(),
            dx: zero(),
            yk: zero(),
            dy: zero(),
            d0: zero(),
            d1: zero(),
            lam: zero(),
        }
    }
}

impl<F: Float> QRows<F> {
    #[inline(always)]
    fn get(&self, t: usize) -> BinQ<F> {
        BinQ {
            xk: self.xk[t],
            dx: self.dx[t],
            yk: self.yk[t],
            dy: self.dy[t],
            d0: self.d0[t],
            d1: self.d1[t],
            lam: self.lam[t],
        }
    }

    #[inline(always)]
    fn set(&mut self, t: usize, q: BinQ<F>) {
        self.xk[t] = q.xk;
        self.dx[t] = q.dx;
        self.yk[t] = q.yk;
        self.dy[t] = q.dy;
        self.d0[t] = q.d0;
        self.d1[t] = q.d1;
        self.lam[t] = q.lam;
    }
}

/// `(x, log|dx/dy|)` of the linear-rational inverse in bin `q` (flow-core's formula).
#[inline(always)]
pub(crate) fn inv_linear<F: Float>(q: &BinQ<F>, y: F) -> (F, F) {
    q.bin()
        .linear_inlined::<Lanes>(q.lam)
        .inverse_inlined::<Lanes>(y, true)
}

/// Adjoints of [`inv_linear`]: given `gx = ∂L/∂x` and `gld = ∂L/∂log|dx/dy|`, returns
/// `(∂L/∂q, ∂L/∂y)`.
#[inline(always)]
pub(crate) fn inv_linear_grad<F: Float>(q: &BinQ<F>, y: F, gx: F, gld: F) -> (BinQ<F>, F) {
    let one = F::ONE;
    let two = F::of(2.0);
    let (l, d0, d1, dx, ya) = (q.lam, q.d0, q.d1, q.dx, q.yk);
    let bin = q.bin();
    let s = bin.s;
    let r = d0 / d1;
    let lb = bin.linear_inlined::<Lanes>(l);
    let (wb, wc, yb, yc) = (lb.wb, lb.wc, lb.yb, lb.yc);
    let oml = one - l;
    let ycd = oml + l * wb;
    let lo = y <= yc;
    // num = a1·y + a0, den = b1·y + b0 in either branch.
    let a1 = sel(lo, -l, wc - l * wb);
    let a0 = sel(lo, l * ya, l * wb * yb - wc * yc);
    let b1 = sel(lo, wc - one, wc - wb);
    let b0 = sel(lo, ya - wc * yc, wb * yb - wc * yc);
    let e_a = yc - ya;
    let e_b = yb - yc;
    let dn = sel(lo, wc * l * e_a, wb * wc * oml * e_b);
    let num = a1 * y + a0;
    let den = b1 * y + b0;
    let theta = num / den;

    let g_th = gx * dx;
    let mut g_dx = gx * theta + gld / dx;
    let g_num = g_th / den;
    let g_den = -(g_th * theta + two * gld) / den;
    let g_dn = gld / dn;
    let (g_a1, g_a0, g_b1, g_b0) = (g_num * y, g_num, g_den * y, g_den);
    let g_y = g_num * a1 + g_den * b1;

    // Branch A: a1 = -λ, a0 = λ ya, b1 = wc - 1, b0 = ya - wc yc, dn = wc λ (yc - ya).
    let la_lam = -g_a1 + g_a0 * ya + g_dn * wc * e_a;
    let la_ya = g_a0 * l + g_b0 - g_dn * wc * l;
    let la_wc = g_b1 - g_b0 * yc + g_dn * l * e_a;
    let la_yc = -g_b0 * wc + g_dn * wc * l;
    // Branch B: a1 = wc - λ wb, a0 = λ wb yb - wc yc, b1 = wc - wb, b0 = wb yb - wc yc,
    // dn = wb wc (1-λ)(yb - yc).
    let lb_wc = g_a1 - g_a0 * yc + g_b1 - g_b0 * yc + g_dn * wb * oml * e_b;
    let lb_lam = -g_a1 * wb + g_a0 * wb * yb - g_dn * wb * wc * e_b;
    let lb_wb = -g_a1 * l + g_a0 * l * yb - g_b1 + g_b0 * yb + g_dn * wc * oml * e_b;
    let lb_yb = g_a0 * l * wb + g_b0 * wb + g_dn * wb * wc * oml;
    let lb_yc = -(g_a0 + g_b0) * wc - g_dn * wb * wc * oml;
    let z = F::ZERO;
    let mut g_lam = sel(lo, la_lam, lb_lam);
    let mut g_ya = sel(lo, la_ya, z);
    let g_wc = sel(lo, la_wc, lb_wc);
    let g_yc = sel(lo, la_yc, lb_yc);
    let mut g_wb = sel(lo, z, lb_wb);
    let mut g_yb = sel(lo, z, lb_yb);

    // yc = ycn / ycd, ycn = (1-λ) ya + λ wb yb, ycd = (1-λ) + λ wb.
    let g_ycn = g_yc / ycd;
    let g_ycd = -g_yc * yc / ycd;
    g_lam += g_ycn * (wb * yb - ya) + g_ycd * (wb - one);
    g_ya += g_ycn * oml;
    g_wb += g_ycn * l * yb + g_ycd * l;
    g_yb += g_ycn * l * wb;
    // yb = Δy + ya.
    let mut g_dy = g_yb;
    g_ya += g_yb;
    // wc = wcn / s, wcn = λ δ0 + (1-λ) wb δ1.
    let g_wcn = g_wc / s;
    let g_s = -g_wc * wc / s;
    g_lam += g_wcn * (d0 - wb * d1);
    let mut g_d0 = g_wcn * l;
    let mut g_d1 = g_wcn * oml * wb;
    g_wb += g_wcn * oml * d1;
    // wb = sqrt(δ0/δ1).
    let g_r = g_wb / (two * wb);
    g_d0 += g_r / d1;
    g_d1 -= g_r * r / d1;
    // s = Δy/Δx.
    g_dy += g_s / dx;
    g_dx -= g_s * s / dx;
    (
        BinQ {
            xk: gx,
            dx: g_dx,
            yk: g_ya,
            dy: g_dy,
            d0: g_d0,
            d1: g_d1,
            lam: g_lam,
        },
        g_y,
    )
}

/// `(x, log|dx/dy|)` of the rational-quadratic inverse in bin `q` (flow-core's formula).
#[inline(always)]
pub(crate) fn inv_quad<F: Float>(q: &BinQ<F>, y: F) -> (F, F) {
    q.bin().quadratic_inverse_inlined::<Lanes>(y, true)
}

/// Adjoints of [`inv_quad`], as [`inv_linear_grad`]. `lam` gets no gradient.
#[inline(always)]
pub(crate) fn inv_quad_grad<F: Float>(q: &BinQ<F>, y: F, gx: F, gld: F) -> (BinQ<F>, F) {
    let one = F::ONE;
    let two = F::of(2.0);
    let four = F::of(4.0);
    let (d0, d1, dx, dy) = (q.d0, q.d1, q.dx, q.dy);
    let s = dy / dx;
    let delta = y - q.yk;
    let c = d0 + d1 - (s + s);
    let a = delta * c + dy * (s - d0);
    let b = dy * d0 - delta * c;
    let qq = -s * delta;
    let disc = b * b - four * a * qq;
    let pos = disc > F::ZERO;
    let disc = sel(pos, disc, F::ZERO);
    let sd = disc.sqrt();
    let dd = -b - sd;
    let theta = (qq + qq) / dd;
    let t = theta * (one - theta);
    let den = s + c * t;
    let om = one - theta;
    let m = d1 * theta * theta + two * s * t + d0 * om * om;
    let num = s * s * m;

    let mut g_dx = gx * theta;
    let mut g_th = gx * dx;
    let g_num = -gld / num;
    let g_den = two * gld / den;
    let mut g_s = g_num * two * s * m;
    let g_m = g_num * s * s;
    let mut g_d1 = g_m * theta * theta;
    g_s += g_m * two * t;
    let mut g_t = g_m * two * s;
    let mut g_d0 = g_m * om * om;
    g_th += g_m * two * (d1 * theta - d0 * om);
    g_s += g_den;
    let mut g_c = g_den * t;
    g_t += g_den * c;
    g_th += g_t * (one - two * theta);
    // θ = 2qq / dd, dd = -b - sqrt(disc).
    let mut g_qq = g_th * two / dd;
    let g_dd = -g_th * theta / dd;
    let mut g_b = -g_dd;
    let g_disc = sel(pos, -g_dd / (two * sd), F::ZERO);
    g_b += g_disc * two * b;
    let g_a = -four * qq * g_disc;
    g_qq += -four * a * g_disc;
    // qq = -s Δ.
    g_s += -delta * g_qq;
    let mut g_delta = -s * g_qq;
    // b = Δy δ0 - Δ c.
    let mut g_dy = d0 * g_b;
    g_d0 += dy * g_b;
    g_delta -= c * g_b;
    g_c -= delta * g_b;
    // a = Δ c + Δy (s - δ0).
    g_delta += c * g_a;
    g_c += delta * g_a;
    g_dy += (s - d0) * g_a;
    g_s += dy * g_a;
    g_d0 -= dy * g_a;
    // c = δ0 + δ1 - 2s.
    g_d0 += g_c;
    g_d1 += g_c;
    g_s -= two * g_c;
    // s = Δy/Δx.
    g_dy += g_s / dx;
    g_dx -= g_s * s / dx;
    (
        BinQ {
            xk: gx,
            dx: g_dx,
            yk: -g_delta,
            dy: g_dy,
            d0: g_d0,
            d1: g_d1,
            lam: F::ZERO,
        },
        g_delta,
    )
}

/// Inverse of the spline of `order` in bin `q`.
#[inline(always)]
pub(crate) fn inv<F: Float, const LINEAR: bool>(q: &BinQ<F>, y: F) -> (F, F) {
    if LINEAR {
        inv_linear(q, y)
    } else {
        inv_quad(q, y)
    }
}

/// Adjoints of [`inv`].
#[inline(always)]
pub(crate) fn inv_grad<F: Float, const LINEAR: bool>(
    q: &BinQ<F>,
    y: F,
    gx: F,
    gld: F,
) -> (BinQ<F>, F) {
    if LINEAR {
        inv_linear_grad(q, y, gx, gld)
    } else {
        inv_quad_grad(q, y, gx, gld)
    }
}

/// Constants of a shape, in `F`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consts<F> {
    pub bins: usize,
    pub b: F,
    pub two_b: F,
    pub min: F,
    pub scale: F,
    pub eps: F,
    pub end_d: F,
    pub min_d: F,
    pub lam_scale: F,
    pub min_lam: F,
}

impl<F: Float> Consts<F> {
    pub fn new(shape: &SplineShape) -> Self {
        let b = F::from_f32(shape.bound());
        Self {
            bins: shape.bins(),
            b,
            two_b: b + b,
            min: F::of(MIN_BIN_WIDTH),
            scale: F::of(1.0 - MIN_BIN_WIDTH * shape.bins() as f64),
            eps: F::of(SEARCH_EPS),
            end_d: F::of(1.0 - MIN_DERIVATIVE),
            min_d: F::of(MIN_DERIVATIVE),
            lam_scale: F::of(1.0 - 2.0 * MIN_LAMBDA),
            min_lam: F::of(MIN_LAMBDA),
        }
    }
}

/// `(softplus(u), sigmoid(u))` sharing one `exp`; the sigmoid is softplus' derivative
/// (exactly 1 above torch's threshold 20).
#[inline(always)]
fn softplus_and_slope<F: Float>(u: F) -> (F, F) {
    let e = u.exp();
    let big = u > F::of(20.0);
    (sel(big, u, e.ln_1p()), sel(big, F::ONE, e / (F::ONE + e)))
}

/// The inverse at every point of a tile row `u` (the identity outside the box), adding each
/// `log|dx/dy|` to `ld`.
#[inline(always)]
fn cond_eval<F: Float, const LIN: bool>(b: F, u: &mut Row<F>, ld: &mut Row<F>, q: &QRows<F>) {
    for t in 0..T {
        let y = u[t];
        let inside = y >= -b && y <= b;
        let (x, l) = inv::<F, LIN>(&q.get(t), y);
        u[t] = sel(inside, x, y);
        ld[t] += sel(inside, l, F::ZERO);
    }
}

/// Adjoints of every point of a tile row: `g` holds `∂L/∂x` on entry and `∂L/∂y` on exit (the
/// identity outside the box); the bins' adjoints go to `a`.
#[inline(always)]
fn bwd_eval<F: Float, const LIN: bool>(
    b: F,
    g: &mut Row<F>,
    gld: &Row<F>,
    u: &Row<F>,
    q: &QRows<F>,
    a: &mut QRows<F>,
) {
    for t in 0..T {
        let y = u[t];
        let inside = y >= -b && y <= b;
        let (adj, gy) = inv_grad::<F, LIN>(&q.get(t), y, g[t], gld[t]);
        a.set(t, adj.masked(inside));
        g[t] = sel(inside, gy, g[t]);
    }
}

pub(crate) mod cond;
pub(crate) mod shared;
#[cfg(test)]
mod tests;
