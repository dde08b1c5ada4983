//! The checks: bookkeeping, the grids, the per-point and per-case checks, and the harness
//! ([`run_case`], [`run_group`]).

use std::collections::BTreeMap;

use flow_core::{Direction, Error, StdNormal};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

use crate::eval::*;
use crate::models::*;
use crate::tolerances::*;

// =============================================================================================
// Bookkeeping.
// =============================================================================================

#[derive(Default, Clone)]
pub(crate) struct Stat {
    pub(crate) n: usize,
    pub(crate) max_err: f64,
    pub(crate) max_ratio: f64,
    /// What `worst` is ranked by: the ratio, or the error for informational keys (infinite
    /// tolerance).
    pub(crate) rank: f64,
    pub(crate) worst: String,
}

#[derive(Default)]
pub(crate) struct Acc {
    pub(crate) case: String,
    pub(crate) stats: BTreeMap<&'static str, Stat>,
    pub(crate) fails: Vec<String>,
    pub(crate) nfail: usize,
    pub(crate) outcomes: BTreeMap<String, usize>,
}

impl Acc {
    pub(crate) fn new(case: &str) -> Self {
        Acc {
            case: case.to_string(),
            ..Default::default()
        }
    }

    /// Records `err` against `tol`; a failure when `err > tol` or `err` is NaN.
    pub(crate) fn check(
        &mut self,
        key: &'static str,
        err: f64,
        tol: f64,
        what: impl FnOnce() -> String,
    ) {
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

    pub(crate) fn ok(&mut self, key: &'static str, cond: bool, what: impl FnOnce() -> String) {
        self.check(key, if cond { 0.0 } else { 1.0 }, 0.0, what);
    }

    pub(crate) fn count(&mut self, key: &'static str) {
        self.stats.entry(key).or_default().n += 1;
    }

    pub(crate) fn n(&self, key: &str) -> usize {
        self.stats.get(key).map_or(0, |s| s.n)
    }

    pub(crate) fn merge(&mut self, o: Acc) {
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

    pub(crate) fn report(&self, group: &str) {
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

    pub(crate) fn assert_clean(&self, group: &str) {
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
pub(crate) fn specials<T: Fp>(b: &Breaks<T>) -> Vec<T> {
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
pub(crate) fn grid<T: Fp>(case: &Case, dir: Direction, reps: usize, rng: &mut Rng) -> Vec<Vec<T>> {
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
pub(crate) fn accept_error<T: Fp>(
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

pub(crate) fn numerical_accepted<T: Fp>(
    case: &Case,
    p: &[T],
    dir: Direction,
    acc: &mut Acc,
) -> bool {
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
pub(crate) fn common_point<T: Fp>(
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
    pub(crate) fn fail_msg(&mut self, key: &'static str, what: impl FnOnce() -> String) {
        self.check(key, 1.0, 0.0, what);
    }
}

/// Inverse by Gauss–Jordan with partial pivoting.
pub(crate) fn mat_inv(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
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
pub(crate) fn perturb64(v: f64) -> f64 {
    16.0 * f64::EPSILON * v.abs().max(1.0)
}

/// Returns whether an FD check ran.
pub(crate) fn check_point_64(
    case: &Case,
    dir: Direction,
    p: &[f64],
    do_fd: bool,
    acc: &mut Acc,
) -> bool {
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

pub(crate) fn check_point_32(case: &Case, dir: Direction, p32: &[f32], acc: &mut Acc) {
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
pub(crate) fn check_knot_images<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
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
pub(crate) fn sweep_values<T: Fp>(specials: Vec<T>, bmax: f64) -> Vec<T> {
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
pub(crate) fn monotone_pair<T: Fp>(
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
pub(crate) fn sweep_eval<T: Fp>(case: &Case, x: &[T], acc: &mut Acc) -> Option<(Vec<T>, Vec<f64>)> {
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

pub(crate) fn check_monotone<T: Fp>(case: &Case, acc: &mut Acc) {
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
pub(crate) fn check_triangular<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
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
pub(crate) fn check_samples<T: Fp>(case: &Case, seed: u64, acc: &mut Acc) {
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
pub(crate) fn check_robustness<T: Fp>(case: &Case, rng: &mut Rng, acc: &mut Acc) {
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

pub(crate) fn run_case(case: &Case, seed: u64) -> Acc {
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

pub(crate) fn run_group(group: &str, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let mut total = Acc::new(group);
    for (k, case) in cases.iter().enumerate() {
        let seed = 0x5EED_0000 + k as u64 * 7919 + group.len() as u64;
        total.merge(run_case(case, seed));
    }
    println!("{group}: {} cases", cases.len());
    total.assert_clean(group);
}
