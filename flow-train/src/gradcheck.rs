//! Finite-difference checks of the engine's gradients (in `f64`), and agreement of its loss with
//! flow-core's exact `log_prob` (in `f32`).

use crate::engine::Engine;
use crate::export::Exported;
use crate::init::{identity_params, init_params, Rng};
use crate::isa::Isa;
use crate::spec::{FlowSpec, LayerSpec, ModelSpec, Permutation, SplineSpec};
use crate::Dataset;

/// Points drawn from N(0, s²) per coordinate, a few of them placed outside the spline box.
fn data(n: usize, dim: usize, s: f32, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n * dim).map(|_| s * r.normal()).collect()
}

/// Pyro's init, perturbed so the splines are far from the identity and the nets not tiny.
fn params(spec: &ModelSpec, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed ^ 0x5eed);
    init_params(spec, seed)
        .into_iter()
        .map(|p| p + 0.3 * r.normal())
        .collect()
}

/// Central differences at `h` on every parameter (or every `stride`-th), against the analytic
/// gradient. Returns the worst `|fd - an| / (|an| + 1e-4)`.
fn check(spec: &ModelSpec, n: usize, s: f32, seed: u64) -> f64 {
    check_at(spec, &params(spec, seed), n, s, seed)
}

/// [`check`], its worst ratio printed (seen with `--nocapture`) after `name`.
fn check_named(name: &str, spec: &ModelSpec, n: usize, s: f32, seed: u64) {
    let w = check(spec, n, s, seed);
    println!("{name}: worst {w:.2e}");
}

/// [`check`] at the parameters `p32`.
fn check_at(spec: &ModelSpec, p32: &[f32], n: usize, s: f32, seed: u64) -> f64 {
    let p: Vec<f64> = p32.iter().map(|&v| v as f64).collect();
    let x = data(n, spec.dim(), s, seed + 1);
    let idx: Vec<usize> = (0..n).collect();
    let mut e = Engine::<f64>::new(spec).unwrap();
    let mut g = vec![0.0; p.len()];
    let l0 = e.loss_grad(Isa::Baseline, &p, &x, &idx, &mut g);
    assert!(l0.is_finite());
    // The loss without the gradient pass is the same number.
    assert_eq!(e.loss(Isa::Baseline, &p, &x, &idx), l0);
    let h = 1e-6;
    let mut worst = 0.0f64;
    let mut q = p.clone();
    for i in 0..p.len() {
        q[i] = p[i] + h;
        let lp = e.loss(Isa::Baseline, &q, &x, &idx);
        q[i] = p[i] - h;
        let lm = e.loss(Isa::Baseline, &q, &x, &idx);
        q[i] = p[i];
        let fd = (lp - lm) / (2.0 * h);
        let err = (fd - g[i]).abs() / (g[i].abs() + 1e-4);
        if err > worst {
            worst = err;
        }
        assert!(
            err < 1e-4,
            "param {i}: finite difference {fd:e}, analytic {:e}",
            g[i]
        );
    }
    worst
}

fn flow(dim: usize, layers: Vec<LayerSpec>) -> ModelSpec {
    ModelSpec::Flow(FlowSpec {
        dim,
        context: 0,
        layers,
    })
}

/// The joint `p(x₁)·p(x₂, x₃ | x₁)`: one spline `s` for `x₁`, then `layers` on `(x₂, x₃)`
/// with `x₁` as the context.
fn joint(s: SplineSpec, layers: Vec<LayerSpec>) -> ModelSpec {
    ModelSpec::Joint {
        marginal: FlowSpec::spline(1, s),
        conditional: FlowSpec {
            dim: 2,
            context: 1,
            layers,
        },
    }
}

fn cond_spline(hidden: &[usize], s: SplineSpec) -> LayerSpec {
    LayerSpec::ConditionalSpline {
        hidden: hidden.to_vec(),
        spline: s,
    }
}

fn coupling(split: usize, hidden: &[usize], s: SplineSpec) -> LayerSpec {
    LayerSpec::Coupling {
        split,
        hidden: hidden.to_vec(),
        spline: s,
    }
}

// Tolerance: with h = 1e-6 in f64 the central difference has truncation error ~h²·|f'''| ≈ 1e-12
// and rounding error ~1e-16·|L|/h ≈ 1e-10, so an agreement to 1e-4 relative (+1e-4 absolute
// floor against cancellation) is loose by orders of magnitude for a correct gradient and tight
// for any wrong term (a missing or mis-signed term is O(1) relative). The measured worst ratios
// are printed with --nocapture.

#[test]
fn spline_linear() {
    // σ = 1.6 with bound 2.5 puts ~12% of coordinates outside the box (identity tails).
    let spec = flow(2, vec![LayerSpec::Spline(SplineSpec::linear(5, 2.5))]);
    check_named("spline linear", &spec, 150, 1.6, 1);
}

#[test]
fn spline_quadratic() {
    let spec = flow(2, vec![LayerSpec::Spline(SplineSpec::quadratic(6, 2.5))]);
    check_named("spline quadratic", &spec, 150, 1.6, 2);
}

#[test]
fn coupling_linear_then_spline() {
    // The data-side spline's gradient flows through the coupling's input gradient.
    let s = SplineSpec::linear(4, 3.0);
    let spec = flow(3, vec![coupling(1, &[6, 5], s), LayerSpec::Spline(s)]);
    check_named("coupling linear", &spec, 130, 1.4, 3);
}

#[test]
fn coupling_quadratic_split2() {
    let s = SplineSpec::quadratic(5, 2.0);
    let spec = flow(3, vec![coupling(2, &[7], s), LayerSpec::Spline(s)]);
    check_named("coupling quadratic", &spec, 100, 1.2, 4);
}

#[test]
fn stack_with_permute_and_affine() {
    let s = SplineSpec::linear(4, 2.5);
    let spec = flow(
        3,
        vec![
            LayerSpec::Affine {
                loc: vec![0.1, -0.2, 0.3],
                scale: vec![1.2, 0.7, -0.9],
                learnable: true,
            },
            coupling(1, &[5, 4], s),
            LayerSpec::Permute(vec![2, 0, 1]),
            coupling(2, &[6], SplineSpec::quadratic(3, 2.0)),
            LayerSpec::Affine {
                loc: vec![0.5, 0.0, -0.5],
                scale: vec![2.0, 1.5, 0.5],
                learnable: false,
            },
            LayerSpec::Spline(s),
        ],
    );
    check_named("stack", &spec, 140, 1.3, 5);
}

#[test]
fn joint_with_conditional_layers() {
    let s = SplineSpec::linear(4, 2.5);
    let spec = joint(
        s,
        vec![
            cond_spline(&[5, 4], s),
            LayerSpec::Permute(vec![1, 0]),
            coupling(1, &[4], SplineSpec::quadratic(4, 2.5)),
            cond_spline(&[3], SplineSpec::quadratic(3, 2.0)),
        ],
    );
    check_named("joint", &spec, 120, 1.3, 6);
}

/// `auto_config`'s 6-D architecture: mixing couplings (lower parts of different sizes, three
/// permutations) and the data-side ActNorm affine, at perturbed parameters and at the identity
/// initialization (hypernetwork output weights exactly zero, equal bins, unit derivatives).
#[test]
fn mixing_stack_with_act_norm() {
    let x = data(200, 5, 1.0, 30);
    let shifted: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % 5) as f32 * 0.4) + (i % 5) as f32 - 2.0)
        .collect();
    let mut f = FlowSpec::coupling_stack(
        5,
        3,
        &[5, 4],
        SplineSpec::quadratic(4, 2.5),
        Permutation::Mixing,
    );
    f.layers
        .push(LayerSpec::act_norm(&Dataset::new(5, shifted).unwrap()));
    let spec = ModelSpec::Flow(f);
    let w = check(&spec, 120, 2.0, 7);
    let w0 = check_at(&spec, &identity_params(&spec, 8), 120, 2.0, 8);
    println!("mixing stack: worst {w:.2e}; at the identity init {w0:.2e}");
}

/// At [`identity_params`] every spline is the identity but in its two end bins (Pyro fixes
/// the end derivatives at 0.999): a flow is its affines alone, so `log p(x)` is the standard
/// Normal's at the standardized point minus `Σ log scale` — to 1e-7 (the `f32` rounding of
/// `ud`) when every coordinate is in the inner bins or outside the box, within 1e-3 per spline
/// otherwise; for every layer kind and both orders.
#[test]
fn identity_init_is_the_identity() {
    let rows = data(300, 3, 1.7, 40);
    let act = LayerSpec::act_norm(&Dataset::new(3, rows.clone()).unwrap());
    let LayerSpec::Affine { loc, scale, .. } = &act else {
        unreachable!()
    };
    let s = SplineSpec::linear(5, 2.0);
    let q = SplineSpec::quadratic(4, 2.0);
    let plain = flow(
        3,
        vec![
            LayerSpec::Spline(q),
            coupling(1, &[6, 5], s),
            LayerSpec::Permute(vec![2, 0, 1]),
            coupling(2, &[4], q),
            act.clone(),
        ],
    );
    let joint = joint(s, vec![cond_spline(&[5], q), coupling(1, &[3, 3], s)]);
    let log_n = |z: &[f64]| {
        z.iter()
            .map(|v| -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln())
            .sum::<f64>()
    };
    for (spec, affine) in [(&plain, true), (&joint, false)] {
        let p = identity_params(spec, 3);
        assert_eq!(p.len(), spec.param_count());
        let lp = Exported::new(spec, &p)
            .unwrap()
            .log_probs::<f64>(&rows)
            .unwrap();
        let mut exact = 0;
        for (row, lp) in rows.chunks_exact(3).zip(&lp) {
            let (z, log_s): (Vec<f64>, f64) = if affine {
                (
                    (0..3)
                        .map(|j| (row[j] as f64 - loc[j] as f64) / scale[j] as f64)
                        .collect(),
                    scale.iter().map(|&s| (s as f64).ln()).sum(),
                )
            } else {
                (row.iter().map(|&v| v as f64).collect(), 0.0)
            };
            let want = log_n(&z) - log_s;
            // Inner bins: |z| < 1 (K = 4 and 5 on [-2, 2]); outside the box: |z| > 2.
            let tol = if z.iter().all(|v| v.abs() < 1.0 || v.abs() > 2.0) {
                exact += 1;
                1e-7
            } else {
                1e-3 * 9.0
            };
            assert!((lp - want).abs() < tol, "{row:?}: {lp} vs {want}");
        }
        assert!(exact > 30, "{exact}");
    }
}

/// The engine's f32 loss (fast exp/ln, any instruction set) equals flow-core's exact f32
/// `log_prob` on the exported parameters.
#[test]
fn f32_loss_matches_flow_core() {
    let s = SplineSpec::linear(8, 3.0);
    let specs = [
        ModelSpec::tutorial_spline(2, 16),
        ModelSpec::tutorial_coupling(2, 16),
        ModelSpec::tutorial_joint(8),
        flow(
            4,
            vec![
                coupling(2, &[16, 16], s),
                LayerSpec::Permute(vec![3, 1, 0, 2]),
                coupling(2, &[12], SplineSpec::quadratic(8, 3.0)),
                LayerSpec::Spline(SplineSpec::quadratic(6, 3.0)),
            ],
        ),
    ];
    for (k, spec) in specs.iter().enumerate() {
        let p = params(spec, 10 + k as u64);
        let x = data(500, spec.dim(), 1.3, 20 + k as u64);
        let idx: Vec<usize> = (0..500).collect();
        let exact64 = Exported::new(spec, &p).unwrap().nll::<f64>(&x).unwrap();
        let exact32 = Exported::new(spec, &p).unwrap().nll::<f32>(&x).unwrap();
        for isa in [Isa::Baseline, Isa::detect()] {
            let mut e = Engine::<f32>::new(spec).unwrap();
            let got = e.loss(isa, &p, &x, &idx);
            println!(
                "spec {k} {isa:?}: engine {got:.7} flow-core f32 {exact32:.7} f64 {exact64:.7}"
            );
            // Per point, f32 evaluation noise is ~1e-6 relative on well-conditioned points;
            // the mean over 500 points agrees to 2e-5 nats.
            assert!((got - exact32).abs() < 2e-5, "{got} vs {exact32}");
        }
        let mut e = Engine::<f64>::new(spec).unwrap();
        let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        let got = e.loss(Isa::Baseline, &p64, &x, &idx);
        // The f64 engine and flow-core in f64 implement the same formulas: 1e-10.
        assert!((got - exact64).abs() < 1e-10, "{got} vs {exact64}");
    }
}
