//! Spline parameters per point, as rows of a hypernetwork's output.

use super::{bwd_eval, cond_eval, softplus_and_slope, Consts, QRows, V};
use crate::float::{fmax, sel, sigmoid, Float};
use crate::tile::{zero, Row, T};
use flow_core::SplineShape;

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
