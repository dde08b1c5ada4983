//! One dimension of a spline whose parameters all points share.

use super::{bwd_eval, cond_eval, softplus_and_slope, BinQ, Consts, QRows, V};
use crate::float::{fmax, sel, sigmoid, Float};
use crate::tile::{zero, Row, T};
use flow_core::{Order, SplineShape};

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
