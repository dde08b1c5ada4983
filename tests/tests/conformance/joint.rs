//! `JointFlow`: `p(x₁)·p(x₂ | x₁)`.

use flow_core::{
    Affine, ConditionalFlow, Density, Direction, Error, Flow, JointFlow, Layer, Order, Permute,
    Real, StdNormal,
};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

use crate::cases::*;
use crate::checks::*;
use crate::eval::*;
use crate::models::*;
use crate::tolerances::*;

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
