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
//! inlined `…_inlined` form), evaluated with [`Lanes`]: the trainer's vectorizable `ln` and a `pick` that computes both branches and
//! blends, so that the per-point loops compile to SIMD code. The adjoints are this file's own.
//!
//! Two evaluation modes share the per-point math:
//! * [`SharedSpline`]: parameters shared by all points (the element-wise `Spline` layer and a
//!   coupling's lower spline). Knots are computed once per step; per-point adjoints are summed
//!   per bin and mapped to the raw parameters once per step.
//! * [`cond_fwd`]/[`cond_bwd`]: parameters per point, as rows of a hypernetwork's output.

use crate::float::{fmax, sel, sigmoid, Float};
use crate::tile::{zero, Row, T};
use flow_core::spline::bin::{Bin, BinOps};
use flow_core::spline::{MIN_BIN_WIDTH, MIN_DERIVATIVE, MIN_LAMBDA, SEARCH_EPS};
use flow_core::{Order, SplineShape};

/// Points per register chunk in the selection loops.
const V: usize = 16;

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

// ------------------------------------------------------------------------------------------
// Shared parameters

/// One dimension of a spline whose parameters all points share.
#[derive(Clone, Debug)]
pub(crate) struct SharedSpline<F> {
    c: Consts<F>,
    order: Order,
    /// `y` knots `y_0 … y_K`.
    yknots: Vec<F>,
    bins: Vec<BinQ<F>>,
    pw: Vec<F>,
    ph: Vec<F>,
    /// `sigmoid(ud_j)`, the slope of `δ_{j+1}`.
    dslope: Vec<F>,
    /// `∂λ_k/∂ul_k`.
    lslope: Vec<F>,
    /// Per-bin adjoints summed over the step's points.
    adj: Vec<BinQ<F>>,
}

/// Softmax-normalized `p`, and knots `-B = k_0 < … < k_K = B` from `u`, as flow-core does.
fn knots<F: Float>(c: &Consts<F>, u: &[F], p: &mut [F], knots: &mut [F]) {
    let mut m = u[0];
    for &v in u {
        m = fmax(m, v);
    }
    let mut sum = F::ZERO;
    for (pi, &v) in p.iter_mut().zip(u) {
        *pi = (v - m).exp();
        sum += *pi;
    }
    let inv = F::ONE / sum;
    let mut cum = F::ZERO;
    knots[0] = -c.b;
    for (i, pi) in p.iter_mut().enumerate() {
        *pi *= inv;
        cum += c.min + c.scale * *pi;
        knots[i + 1] = c.two_b * cum - c.b;
    }
    knots[c.bins] = c.b;
}

/// `∂L/∂u` of [`knots`] given `∂L/∂knot_j` (`g[0]` and `g[K]` are ignored: the end knots are fixed).
fn knots_grad<F: Float>(c: &Consts<F>, p: &[F], g: &[F], out: &mut [F]) {
    let k = c.bins;
    // a_i = scale·2B·Σ_{j=i+1}^{K-1} g_j
    let mut suffix = F::ZERO;
    for i in (0..k).rev() {
        if i + 1 < k {
            suffix += g[i + 1];
        }
        out[i] = c.scale * c.two_b * suffix;
    }
    let mut dot = F::ZERO;
    for (pi, ai) in p.iter().zip(out.iter()) {
        dot += *pi * *ai;
    }
    for (o, pi) in out.iter_mut().zip(p) {
        *o = *pi * (*o - dot);
    }
}

impl<F: Float> SharedSpline<F> {
    pub fn new(shape: &SplineShape) -> Self {
        let k = shape.bins();
        Self {
            c: Consts::new(shape),
            order: shape.order(),
            yknots: vec![F::ZERO; k + 1],
            bins: vec![BinQ::default(); k],
            pw: vec![F::ZERO; k],
            ph: vec![F::ZERO; k],
            dslope: vec![F::ZERO; k.saturating_sub(1)],
            lslope: vec![F::ZERO; k],
            adj: vec![BinQ::default(); k],
        }
    }

    /// Computes the bins from this dimension's raw parameters `uw, uh, ud, ul` (`ul` empty for
    /// quadratic) and clears the adjoints.
    pub fn prepare(&mut self, uw: &[F], uh: &[F], ud: &[F], ul: &[F]) {
        let k = self.c.bins;
        let mut xk = vec![F::ZERO; k + 1];
        knots(&self.c, uw, &mut self.pw, &mut xk);
        knots(&self.c, uh, &mut self.ph, &mut self.yknots);
        let mut d = vec![self.c.end_d; k + 1];
        for (j, &u) in ud.iter().enumerate() {
            let (sp, slope) = softplus_and_slope(u);
            d[j + 1] = self.c.min_d + sp;
            self.dslope[j] = slope;
        }
        for (i, b) in self.bins.iter_mut().enumerate() {
            let lam = match ul.get(i) {
                Some(&u) => {
                    let s = sigmoid(u);
                    self.lslope[i] = self.c.lam_scale * s * (F::ONE - s);
                    self.c.lam_scale * s + self.c.min_lam
                }
                None => F::ZERO,
            };
            *b = BinQ {
                xk: xk[i],
                dx: xk[i + 1] - xk[i],
                yk: self.yknots[i],
                dy: self.yknots[i + 1] - self.yknots[i],
                d0: d[i],
                d1: d[i + 1],
                lam,
            };
        }
        for a in &mut self.adj {
            *a = BinQ::default();
        }
    }

    /// Adds this dimension's raw-parameter gradients (from the summed adjoints) to
    /// `gw, gh, gd, gl`.
    pub fn finish(&self, gw: &mut [F], gh: &mut [F], gd: &mut [F], gl: &mut [F]) {
        let k = self.c.bins;
        let mut gx = vec![F::ZERO; k + 1];
        let mut gy = vec![F::ZERO; k + 1];
        let mut gdk = vec![F::ZERO; k + 1];
        for (i, a) in self.adj.iter().enumerate() {
            gx[i] += a.xk - a.dx;
            gx[i + 1] += a.dx;
            gy[i] += a.yk - a.dy;
            gy[i + 1] += a.dy;
            gdk[i] += a.d0;
            gdk[i + 1] += a.d1;
        }
        let mut tmp = vec![F::ZERO; k];
        knots_grad(&self.c, &self.pw, &gx, &mut tmp);
        for (g, t) in gw.iter_mut().zip(&tmp) {
            *g += *t;
        }
        knots_grad(&self.c, &self.ph, &gy, &mut tmp);
        for (g, t) in gh.iter_mut().zip(&tmp) {
            *g += *t;
        }
        for (j, g) in gd.iter_mut().enumerate() {
            *g += gdk[j + 1] * self.dslope[j];
        }
        for ((g, a), s) in gl.iter_mut().zip(&self.adj).zip(&self.lslope) {
            *g += a.lam * *s;
        }
    }

    /// Inverse on a tile row in place, adding `log|dx/dy|` to `ld`; saves what
    /// [`bwd`](Self::bwd) needs in `sv`.
    #[inline(always)]
    pub fn fwd(&self, u: &mut Row<F>, ld: &mut Row<F>, sv: &mut SharedSave<F>) {
        let c = &self.c;
        // Bin search and selection, 16 points at a time with the selections in registers.
        for c0 in (0..T).step_by(V) {
            let uc: [F; V] = u[c0..c0 + V].try_into().unwrap();
            let mut bin = [0u32; V];
            let mut q = [[F::ZERO; V]; 7];
            for (k, bq) in self.bins.iter().enumerate() {
                let edge = self.yknots[k] + c.eps;
                let v = [bq.xk, bq.dx, bq.yk, bq.dy, bq.d0, bq.d1, bq.lam];
                for l in 0..V {
                    let take = k == 0 || uc[l] >= edge;
                    bin[l] = sel(take, k as u32, bin[l]);
                    for (qi, &vi) in q.iter_mut().zip(&v) {
                        qi[l] = sel(take, vi, qi[l]);
                    }
                }
            }
            sv.bin[c0..c0 + V].copy_from_slice(&bin);
            let r = c0..c0 + V;
            sv.q.xk[r.clone()].copy_from_slice(&q[0]);
            sv.q.dx[r.clone()].copy_from_slice(&q[1]);
            sv.q.yk[r.clone()].copy_from_slice(&q[2]);
            sv.q.dy[r.clone()].copy_from_slice(&q[3]);
            sv.q.d0[r.clone()].copy_from_slice(&q[4]);
            sv.q.d1[r.clone()].copy_from_slice(&q[5]);
            sv.q.lam[r].copy_from_slice(&q[6]);
        }
        sv.u = *u;
        match self.order {
            Order::Linear => cond_eval::<F, true>(c.b, u, ld, &sv.q),
            Order::Quadratic => cond_eval::<F, false>(c.b, u, ld, &sv.q),
        }
    }

    /// Backward of [`fwd`](Self::fwd): `g` holds `∂L/∂x` on entry and `∂L/∂y` on exit; `gld`
    /// is `∂L/∂log|dx/dy|`. The parameter adjoints are summed into the step's accumulators.
    #[inline(always)]
    pub fn bwd(&mut self, g: &mut Row<F>, gld: &Row<F>, sv: &SharedSave<F>) {
        let mut a = QRows::default();
        match self.order {
            Order::Linear => bwd_eval::<F, true>(self.c.b, g, gld, &sv.u, &sv.q, &mut a),
            Order::Quadratic => bwd_eval::<F, false>(self.c.b, g, gld, &sv.u, &sv.q, &mut a),
        }
        for t in 0..T {
            if let Some(acc) = self.adj.get_mut(sv.bin[t] as usize) {
                acc.add(&a.get(t));
            }
        }
    }
}

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

/// What [`SharedSpline::bwd`] needs from the forward pass of one tile row.
#[derive(Clone, Debug)]
pub(crate) struct SharedSave<F> {
    u: Row<F>,
    bin: [u32; T],
    q: QRows<F>,
}

impl<F: Float> Default for SharedSave<F> {
    fn default() -> Self {
        Self {
            u: zero(),
            bin: [0; T],
            q: QRows::default(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Per-point parameters

/// The rows of one dimension's raw parameters within a hypernetwork output of `dims`
/// dimensions: `(widths, heights, derivatives, lambdas)` row ranges.
pub(crate) fn raw_rows(
    shape: &SplineShape,
    dims: usize,
    j: usize,
) -> (
    core::ops::Range<usize>,
    core::ops::Range<usize>,
    core::ops::Range<usize>,
    core::ops::Range<usize>,
) {
    let k = shape.bins();
    let w0 = j * k;
    let h0 = (dims + j) * k;
    let d0 = 2 * dims * k + j * (k - 1);
    let l0 = 2 * dims * k + dims * (k - 1) + j * k;
    let nl = shape.lambdas_per_dim();
    // Quadratic: an empty lambda range right after this dimension's derivatives, so that it
    // never points past the end of the vector.
    let l0 = if nl == 0 { d0 + k - 1 } else { l0 };
    (w0..w0 + k, h0..h0 + k, d0..d0 + k - 1, l0..l0 + nl)
}

/// What [`cond_bwd`] needs from [`cond_fwd`] for one dimension of one tile.
#[derive(Clone, Debug)]
pub(crate) struct CondSave<F> {
    pw: Vec<Row<F>>,
    ph: Vec<Row<F>>,
    u: Row<F>,
    bin: Row<F>,
    q: QRows<F>,
    slope0: Row<F>,
    slope1: Row<F>,
    lslope: Row<F>,
}

impl<F: Float> CondSave<F> {
    pub fn new(bins: usize) -> Self {
        Self {
            pw: vec![zero(); bins],
            ph: vec![zero(); bins],
            u: zero(),
            bin: zero(),
            q: QRows::default(),
            slope0: zero(),
            slope1: zero(),
            lslope: zero(),
        }
    }
}

/// Inverse of one dimension with per-point raw parameters (rows `rw, rh, rd, rl` of a
/// hypernetwork output) on a tile row in place, adding `log|dx/dy|` to `ld`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn cond_fwd<F: Float>(
    c: &Consts<F>,
    linear: bool,
    rw: &[Row<F>],
    rh: &[Row<F>],
    rd: &[Row<F>],
    rl: &[Row<F>],
    u: &mut Row<F>,
    ld: &mut Row<F>,
    sv: &mut CondSave<F>,
) {
    let k_bins = c.bins;
    let (b, two_b, mn, sc, eps) = (c.b, c.two_b, c.min, c.scale, c.eps);
    let mut rd0: Row<F> = zero();
    let mut rd1: Row<F> = zero();
    let mut rlam: Row<F> = zero();
    let zrow: Row<F> = zero();
    for c0 in (0..T).step_by(V) {
        let ch = |r: &Row<F>| -> [F; V] { r[c0..c0 + V].try_into().unwrap() };
        // Softmax of the widths and heights, with the maxima and sums in registers.
        let mut mw = ch(&rw[0]);
        let mut mh = ch(&rh[0]);
        for k in 1..k_bins {
            let (a, bb) = (ch(&rw[k]), ch(&rh[k]));
            for l in 0..V {
                mw[l] = fmax(mw[l], a[l]);
                mh[l] = fmax(mh[l], bb[l]);
            }
        }
        let mut sw = [F::ZERO; V];
        let mut sh = [F::ZERO; V];
        for k in 0..k_bins {
            let (a, bb) = (ch(&rw[k]), ch(&rh[k]));
            let mut ew = [F::ZERO; V];
            let mut eh = [F::ZERO; V];
            for l in 0..V {
                ew[l] = (a[l] - mw[l]).exp();
                eh[l] = (bb[l] - mh[l]).exp();
                sw[l] += ew[l];
                sh[l] += eh[l];
            }
            sv.pw[k][c0..c0 + V].copy_from_slice(&ew);
            sv.ph[k][c0..c0 + V].copy_from_slice(&eh);
        }
        for l in 0..V {
            sw[l] = F::ONE / sw[l];
            sh[l] = F::ONE / sh[l];
        }
        // Knots and the bin search over the y knots, selections in registers.
        let uc = ch(u);
        let mut cx = [F::ZERO; V];
        let mut cy = [F::ZERO; V];
        let mut xl = [-b; V];
        let mut yl = [-b; V];
        let mut bin = [F::ZERO; V];
        let mut qxk = [F::ZERO; V];
        let mut qdx = [F::ZERO; V];
        let mut qyk = [F::ZERO; V];
        let mut qdy = [F::ZERO; V];
        let mut d0 = [F::ZERO; V];
        let mut d1 = [F::ZERO; V];
        let mut lm = [F::ZERO; V];
        for k in 0..k_bins {
            let last = k + 1 == k_bins;
            let d_lo = ch(if k >= 1 { &rd[k - 1] } else { &zrow });
            let d_hi = ch(if !last { &rd[k] } else { &zrow });
            let l_k = ch(if linear { &rl[k] } else { &zrow });
            let kf = F::of(k as f64);
            let mut pw = ch(&sv.pw[k]);
            let mut ph = ch(&sv.ph[k]);
            for l in 0..V {
                pw[l] *= sw[l];
                ph[l] *= sh[l];
                cx[l] += mn + sc * pw[l];
                cy[l] += mn + sc * ph[l];
                let xr = sel(last, b, two_b * cx[l] - b);
                let yr = sel(last, b, two_b * cy[l] - b);
                let take = k == 0 || uc[l] >= yl[l] + eps;
                bin[l] = sel(take, kf, bin[l]);
                qxk[l] = sel(take, xl[l], qxk[l]);
                qdx[l] = sel(take, xr - xl[l], qdx[l]);
                qyk[l] = sel(take, yl[l], qyk[l]);
                qdy[l] = sel(take, yr - yl[l], qdy[l]);
                d0[l] = sel(take, d_lo[l], d0[l]);
                d1[l] = sel(take, d_hi[l], d1[l]);
                lm[l] = sel(take, l_k[l], lm[l]);
                xl[l] = xr;
                yl[l] = yr;
            }
            sv.pw[k][c0..c0 + V].copy_from_slice(&pw);
            sv.ph[k][c0..c0 + V].copy_from_slice(&ph);
        }
        sv.bin[c0..c0 + V].copy_from_slice(&bin);
        sv.q.xk[c0..c0 + V].copy_from_slice(&qxk);
        sv.q.dx[c0..c0 + V].copy_from_slice(&qdx);
        sv.q.yk[c0..c0 + V].copy_from_slice(&qyk);
        sv.q.dy[c0..c0 + V].copy_from_slice(&qdy);
        rd0[c0..c0 + V].copy_from_slice(&d0);
        rd1[c0..c0 + V].copy_from_slice(&d1);
        rlam[c0..c0 + V].copy_from_slice(&lm);
    }
    let top = F::of(k_bins as f64 - 2.0);
    for t in 0..T {
        let bin = sv.bin[t];
        let (sp0, s0) = softplus_and_slope(rd0[t]);
        let (sp1, s1) = softplus_and_slope(rd1[t]);
        let has0 = bin >= F::ONE;
        let has1 = bin <= top;
        let q = &mut sv.q;
        q.d0[t] = sel(has0, c.min_d + sp0, c.end_d);
        q.d1[t] = sel(has1, c.min_d + sp1, c.end_d);
        sv.slope0[t] = sel(has0, s0, F::ZERO);
        sv.slope1[t] = sel(has1, s1, F::ZERO);
        let sl = sigmoid(rlam[t]);
        q.lam[t] = c.lam_scale * sl + c.min_lam;
        sv.lslope[t] = c.lam_scale * sl * (F::ONE - sl);
    }
    sv.u = *u;
    if linear {
        cond_eval::<F, true>(b, u, ld, &sv.q);
    } else {
        cond_eval::<F, false>(b, u, ld, &sv.q);
    }
}

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

/// Backward of [`cond_fwd`]: `g` holds `∂L/∂x` on entry and `∂L/∂y` on exit; writes the
/// gradients of the raw parameter rows into `gw, gh, gd, gl`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn cond_bwd<F: Float>(
    c: &Consts<F>,
    linear: bool,
    g: &mut Row<F>,
    gld: &Row<F>,
    sv: &CondSave<F>,
    gw: &mut [Row<F>],
    gh: &mut [Row<F>],
    gd: &mut [Row<F>],
    gl: &mut [Row<F>],
) {
    let k_bins = c.bins;
    let mut a = QRows::default();
    if linear {
        bwd_eval::<F, true>(c.b, g, gld, &sv.u, &sv.q, &mut a);
    } else {
        bwd_eval::<F, false>(c.b, g, gld, &sv.u, &sv.q, &mut a);
    }
    let top = F::of(k_bins as f64 - 2.0);
    // Knot adjoints: left knot (fixed at -B in bin 0) and right knot (fixed at B in bin K-1).
    let mut gxl: Row<F> = zero();
    let mut gxr: Row<F> = zero();
    let mut gyl: Row<F> = zero();
    let mut gyr: Row<F> = zero();
    let mut g0: Row<F> = zero();
    let mut g1: Row<F> = zero();
    let mut glam: Row<F> = zero();
    let f = c.scale * c.two_b;
    for t in 0..T {
        let bin = sv.bin[t];
        let has0 = bin >= F::ONE;
        let has1 = bin <= top;
        let at = a.get(t);
        gxl[t] = sel(has0, f * (at.xk - at.dx), F::ZERO);
        gxr[t] = sel(has1, f * at.dx, F::ZERO);
        gyl[t] = sel(has0, f * (at.yk - at.dy), F::ZERO);
        gyr[t] = sel(has1, f * at.dy, F::ZERO);
        g0[t] = at.d0 * sv.slope0[t];
        g1[t] = at.d1 * sv.slope1[t];
        glam[t] = at.lam * sv.lslope[t];
    }
    for c0 in (0..T).step_by(V) {
        let ch = |r: &Row<F>| -> [F; V] { r[c0..c0 + V].try_into().unwrap() };
        let (bin, g0, g1, glam) = (ch(&sv.bin), ch(&g0), ch(&g1), ch(&glam));
        for (j, gdj) in gd.iter_mut().enumerate() {
            let lo = F::of(j as f64 + 1.0);
            let hi = F::of(j as f64);
            let o: &mut [F; V] = (&mut gdj[c0..c0 + V]).try_into().unwrap();
            for l in 0..V {
                o[l] = sel(bin[l] == lo, g0[l], F::ZERO) + sel(bin[l] == hi, g1[l], F::ZERO);
            }
        }
        if linear {
            for (k, glk) in gl.iter_mut().enumerate() {
                let kf = F::of(k as f64);
                let o: &mut [F; V] = (&mut glk[c0..c0 + V]).try_into().unwrap();
                for l in 0..V {
                    o[l] = sel(bin[l] == kf, glam[l], F::ZERO);
                }
            }
        }
    }
    softmax_knots_bwd(&sv.bin, &sv.pw, &gxl, &gxr, gw);
    softmax_knots_bwd(&sv.bin, &sv.ph, &gyl, &gyr, gh);
}

/// Raw-parameter gradients of per-point knots: `a_i = gl·[i < bin] + gr·[i <= bin]` (already
/// scaled by `2B·(1 - 1e-3·K)`), through the softmax.
#[inline(always)]
fn softmax_knots_bwd<F: Float>(
    bin: &Row<F>,
    p: &[Row<F>],
    gl: &Row<F>,
    gr: &Row<F>,
    out: &mut [Row<F>],
) {
    for c0 in (0..T).step_by(V) {
        let ch = |r: &Row<F>| -> [F; V] { r[c0..c0 + V].try_into().unwrap() };
        let (bin, gl, gr) = (ch(bin), ch(gl), ch(gr));
        let mut dot = [F::ZERO; V];
        for (i, pi) in p.iter().enumerate() {
            let fi = F::of(i as f64);
            let pc = ch(pi);
            for l in 0..V {
                let ai = sel(fi < bin[l], gl[l], F::ZERO) + sel(fi <= bin[l], gr[l], F::ZERO);
                dot[l] += pc[l] * ai;
            }
        }
        for (i, (pi, o)) in p.iter().zip(out.iter_mut()).enumerate() {
            let fi = F::of(i as f64);
            let pc = ch(pi);
            let o: &mut [F; V] = (&mut o[c0..c0 + V]).try_into().unwrap();
            for l in 0..V {
                let ai = sel(fi < bin[l], gl[l], F::ZERO) + sel(fi <= bin[l], gr[l], F::ZERO);
                o[l] = pc[l] * (ai - dot[l]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_core::spline::{eval, knots_in_place, sigmoid, softplus, Direction, RawParams};

    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 11) as f64 / (1u64 << 53) as f64) * 6.0 - 3.0
    }

    /// The trainer's per-point inverse and flow-core's `eval` agree bit for bit, `x` and
    /// `log|dx/dy|`, on a grid over the box, for both orders and several random splines: the
    /// trainer is given flow-core's knots, derivatives and `λ`s, and both evaluate flow-core's
    /// bin formulas, with the same `ln` (libm's) in `f64`. (`f32` training uses a faster `ln`
    /// on purpose.)
    #[test]
    fn trainer_inverse_equals_flow_core_bit_for_bit() {
        let mut st = 7u64;
        let bound = 3.0f32;
        let b = bound as f64;
        let mut points = 0usize;
        for order in [Order::Linear, Order::Quadratic] {
            for k in [2usize, 5, 8, 16] {
                let shape = SplineShape::new(k, bound, order).unwrap();
                for _ in 0..8 {
                    let u: Vec<f64> = (0..4 * k).map(|_| lcg(&mut st)).collect();
                    let lambdas = match order {
                        Order::Linear => &u[3 * k - 1..4 * k - 1],
                        Order::Quadratic => &u[..0],
                    };
                    let raw = RawParams {
                        widths: &u[..k],
                        heights: &u[k..2 * k],
                        derivatives: &u[2 * k..3 * k - 1],
                        lambdas,
                    };
                    // flow-core's knots `x_0 = -B, x_1 … x_K`, derivatives and λs.
                    let mut xs = vec![-b; k + 1];
                    let mut ys = vec![-b; k + 1];
                    xs[1..].copy_from_slice(raw.widths);
                    ys[1..].copy_from_slice(raw.heights);
                    knots_in_place(&mut xs[1..], b);
                    knots_in_place(&mut ys[1..], b);
                    let end = 1.0 - MIN_DERIVATIVE;
                    let d = |i: usize| {
                        if i == 0 || i == k {
                            end
                        } else {
                            MIN_DERIVATIVE + softplus(raw.derivatives[i - 1])
                        }
                    };
                    let lam = |i: usize| {
                        lambdas
                            .get(i)
                            .map_or(0.0, |&l| (1.0 - 2.0 * MIN_LAMBDA) * sigmoid(l) + MIN_LAMBDA)
                    };
                    let (mut sx, mut sy) = (vec![0.0; k], vec![0.0; k]);
                    for i in 0..=600 {
                        let y = -b + 2.0 * b * i as f64 / 600.0;
                        let want =
                            eval(&shape, &raw, y, Direction::Inverse, true, &mut sx, &mut sy)
                                .unwrap();
                        // Pyro's search on the y knots, as flow-core and the trainer do it.
                        let bin = (1..k).take_while(|&j| y >= ys[j] + SEARCH_EPS).count();
                        let q = BinQ {
                            xk: xs[bin],
                            dx: xs[bin + 1] - xs[bin],
                            yk: ys[bin],
                            dy: ys[bin + 1] - ys[bin],
                            d0: d(bin),
                            d1: d(bin + 1),
                            lam: lam(bin),
                        };
                        let got = match order {
                            Order::Linear => inv::<f64, true>(&q, y),
                            Order::Quadratic => inv::<f64, false>(&q, y),
                        };
                        assert_eq!(
                            (got.0.to_bits(), got.1.to_bits()),
                            (want.0.to_bits(), want.1.to_bits()),
                            "{order:?} K={k} y={y}: trainer {got:?}, flow-core {want:?}"
                        );
                        points += 1;
                    }
                }
            }
        }
        assert_eq!(points, 2 * 4 * 8 * 601);
    }
}
