//! Parity with Pyro 1.9.2: every case in the golden folder (`tests/golden`, or the
//! folder named by `FLOW_GOLDEN_DIR`) is rebuilt from its unconstrained parameters and checked.
//!
//! # Tolerances
//! * **f64 vs Pyro's float64 section: `1e-9`**, absolute, or relative to `|v|` where `|v| > 1`
//!   (the golden README's suggestion). Pyro's own float64 numbers agree with an independent
//!   NumPy port to 3.5e-11, so 1e-9 leaves room only for the order of floating-point operations.
//!   This is the check that the formulas are Pyro's.
//! * **f32: `4 × deviation + 8 ulp + sensitivity`**, comparing flow-core's f32 result with the
//!   exact value (flow-core's f64 result on the same f32 inputs, itself checked against Pyro
//!   above). `deviation` is the case's recorded `deviation_from_float64_on_same_inputs` for
//!   that quantity (`max_rel_to_max(1,|f64|)`: Pyro's own float32 error, relative to
//!   `max(1, |v|)`); the golden README suggests 2–4 × it. `sensitivity` is how far the exact
//!   value moves when one f32 input moves by 2 ulp ([`sensitivity`]): no f32 code can do better
//!   than its inputs' conditioning. It is negligible at well-conditioned points and dominates
//!   exactly at the points the README calls ill-conditioned in f32 — inputs inside the 1e-6
//!   search window of a knot (evaluated at `θ > 1`) and inverses through flat regions. The
//!   summary counts those checks separately. The tolerance is never widened per case.
//! * **f32 round trip** (`inverse(forward(x))`): within `4 ×` Pyro's own float32 round-trip
//!   error recorded in the case (`float32.roundtrip_max_abs_err`) plus 8 ulp.
//! * Our f32 results are also compared with Pyro's float32 numbers; that gap is reported, not
//!   gated (two f32 implementations round differently).
//!
//! The test fails when the folder has no case. It prints one summary line.

use flow_core::{
    ConditionalSpline, DenseNN, Direction, Layer, Order, Permute, Spline, SplineCoupling,
    SplineShape, StdNormal, Weights, Workspace,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    match std::env::var_os("FLOW_GOLDEN_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden"),
    }
}

/// A case's parameter blocks as little-endian bytes, owned so layers can borrow them.
struct Blocks {
    bytes: Vec<Vec<u8>>,
}

impl Blocks {
    fn push(&mut self, vals: &[f32]) -> usize {
        let mut b = vec![0u8; vals.len() * 4];
        flow_core::encode_f32s(vals, &mut b).unwrap();
        self.bytes.push(b);
        self.bytes.len() - 1
    }
    fn weights(&self, i: usize) -> Weights<'_> {
        Weights::new(&self.bytes[i]).unwrap()
    }
}

fn params(case: &Value, key: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let p = case["params"].get(key)?;
    let shape = p["shape"]
        .as_array()?
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    // Parameters are float32 values written as their exact float64 widening: the cast is exact.
    let vals = p["values"]
        .as_array()?
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    Some((shape, vals))
}

fn order_of(cfg: &Value) -> Order {
    match cfg["order"].as_str().unwrap_or("linear") {
        "linear" => Order::Linear,
        "quadratic" => Order::Quadratic,
        o => panic!("unknown order {o}"),
    }
}

fn shape_of(cfg: &Value) -> SplineShape {
    SplineShape::new(
        cfg["count_bins"].as_u64().unwrap_or(8) as usize,
        cfg["bound"].as_f64().unwrap_or(3.0) as f32,
        order_of(cfg),
    )
    .unwrap()
}

/// Unconstrained spline parameters under `prefix`, in flow-core's layout.
fn spline_block(case: &Value, prefix: &str, order: Order) -> (usize, Vec<f32>) {
    let (shape, mut v) = params(case, &format!("{prefix}unnormalized_widths")).unwrap();
    v.extend(
        params(case, &format!("{prefix}unnormalized_heights"))
            .unwrap()
            .1,
    );
    v.extend(
        params(case, &format!("{prefix}unnormalized_derivatives"))
            .unwrap()
            .1,
    );
    if order == Order::Linear {
        v.extend(
            params(case, &format!("{prefix}unnormalized_lambdas"))
                .unwrap()
                .1,
        );
    }
    (shape[0], v)
}

/// DenseNN weights under `prefix` (`{prefix}layers.{i}.weight/bias`): (input, hidden, output, block).
fn dense_block(case: &Value, prefix: &str) -> (usize, Vec<usize>, usize, Vec<f32>) {
    let mut sizes = Vec::new();
    let mut block = Vec::new();
    let mut i = 0;
    while let Some((shape, w)) = params(case, &format!("{prefix}layers.{i}.weight")) {
        let (_, b) = params(case, &format!("{prefix}layers.{i}.bias")).unwrap();
        if sizes.is_empty() {
            sizes.push(shape[1]);
        }
        sizes.push(shape[0]);
        block.extend(w);
        block.extend(b);
        i += 1;
    }
    assert!(i > 0, "no hypernet layers under {prefix}");
    let output = sizes.pop().unwrap();
    let input = sizes.remove(0);
    (input, sizes, output, block)
}

/// One layer description, built against the blocks once they are all pushed.
enum Spec {
    Spline {
        dim: usize,
        block: usize,
    },
    Coupling {
        lower_dim: usize,
        lower: usize,
        input: usize,
        hidden: Vec<usize>,
        output: usize,
        nn: usize,
    },
    CondSpline {
        dim: usize,
        input: usize,
        hidden: Vec<usize>,
        output: usize,
        nn: usize,
    },
    Permute(Vec<u8>),
}

fn coupling_spec(case: &Value, blocks: &mut Blocks, prefix: &str, order: Order) -> Spec {
    let (lower_dim, lower) = spline_block(case, &format!("{prefix}lower_spline."), order);
    let (input, hidden, output, nn) = dense_block(case, &format!("{prefix}upper_spline.nn."));
    Spec::Coupling {
        lower_dim,
        lower: blocks.push(&lower),
        input,
        hidden,
        output,
        nn: blocks.push(&nn),
    }
}

fn build<'a>(specs: &'a [Spec], blocks: &'a Blocks, shape: SplineShape) -> Vec<Layer<'a>> {
    specs
        .iter()
        .map(|s| match s {
            Spec::Spline { dim, block } => {
                Layer::Spline(Spline::new(*dim, shape, blocks.weights(*block)).unwrap())
            }
            Spec::Coupling {
                lower_dim,
                lower,
                input,
                hidden,
                output,
                nn,
            } => {
                let lower = Spline::new(*lower_dim, shape, blocks.weights(*lower)).unwrap();
                let net = DenseNN::new(*input, hidden, *output, blocks.weights(*nn)).unwrap();
                let upper_dim = output / shape.params_per_dim();
                let context = input - lower_dim;
                Layer::Coupling(SplineCoupling::new(lower, upper_dim, shape, net, context).unwrap())
            }
            Spec::CondSpline {
                dim,
                input,
                hidden,
                output,
                nn,
            } => {
                let net = DenseNN::new(*input, hidden, *output, blocks.weights(*nn)).unwrap();
                Layer::ConditionalSpline(ConditionalSpline::new(*dim, shape, net).unwrap())
            }
            Spec::Permute(p) => Layer::Permute(Permute::new(p).unwrap()),
        })
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|r| match r {
            Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
            x => vec![x.as_f64().unwrap()],
        })
        .collect()
}

fn scalars(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Runs the layers over one row: forward (list order) or inverse (reverse order), with
/// per-dimension log-dets of the last layer applied and the total.
fn run<T: flow_core::Real>(
    layers: &[Layer<'_>],
    x: &[T],
    ctx: &[T],
    dir: Direction,
) -> (Vec<T>, Vec<T>, T) {
    let mut ws = Workspace::<T, 64, 32>::new();
    let mut v = x.to_vec();
    let mut lds = vec![T::ZERO; x.len()];
    let mut all = vec![T::ZERO; x.len()];
    let mut total = T::ZERO;
    let order: Vec<&Layer> = match dir {
        Direction::Forward => layers.iter().collect(),
        Direction::Inverse => layers.iter().rev().collect(),
    };
    for l in order {
        let c: &[T] = if l.context_dim() > 0 { ctx } else { &[] };
        total += l.apply(&mut v, c, &mut lds, dir, &mut ws).unwrap();
        for (a, &b) in all.iter_mut().zip(&lds) {
            *a += b;
        }
    }
    (v, all, total)
}

/// Largest error and check count per quantity.
#[derive(Default)]
struct Tally {
    checks: usize,
    /// f32 checks whose input sensitivity exceeded the deviation-based tolerance.
    ill_conditioned: usize,
    worst: BTreeMap<String, f64>,
    failures: Vec<String>,
}

impl Tally {
    /// f64 check at 1e-9 (abs, or relative above 1).
    fn f64(&mut self, case: &str, what: &str, row: usize, got: f64, want: f64) {
        self.checks += 1;
        let err = if want.is_infinite() && got == want {
            0.0
        } else {
            (got - want).abs() / want.abs().max(1.0)
        };
        let w = self.worst.entry(format!("f64 {what}")).or_insert(0.0);
        *w = w.max(err);
        if err.is_nan() || err > 1e-9 {
            self.failures.push(format!(
                "{case} row {row} f64 {what}: got {got:e}, want {want:e} (rel err {err:e} > 1e-9)"
            ));
        }
    }

    /// Records (without gating) how far our f32 result is from Pyro's own f32 result.
    fn pyro32(&mut self, got: f32, pyro: f64) {
        let err = (got as f64 - pyro).abs() / pyro.abs().max(1.0);
        let w = self
            .worst
            .entry("f32 vs Pyro f32 (rel, info)".into())
            .or_insert(0.0);
        *w = w.max(err);
    }

    /// f32 check: within `4 × dev` of the reference, relative to max(1, |ref|), plus 8 ulp.
    /// Records the error as a fraction of the tolerance.
    #[allow(clippy::too_many_arguments)] // one call per checked value; a struct would only rename them
    fn f32(
        &mut self,
        case: &str,
        what: &str,
        row: usize,
        got: f32,
        want: f64,
        dev: f64,
        sens: f64,
    ) {
        self.checks += 1;
        let scale = want.abs().max(1.0);
        let base = 4.0 * dev * scale + 8.0 * f32::EPSILON as f64 * scale;
        if sens > base {
            self.ill_conditioned += 1;
        }
        let tol = base + sens;
        let err = (got as f64 - want).abs();
        let w = self
            .worst
            .entry(format!("f32 {what} (err/tol)"))
            .or_insert(0.0);
        *w = w.max(err / tol);
        if err.is_nan() || err > tol {
            self.failures.push(format!(
                "{case} row {row} f32 {what}: got {got:e}, want {want:e} (err {err:e} > tol {tol:e})"
            ));
        }
    }
}

fn dev(sec: &Value, key: &str) -> f64 {
    sec["deviation_from_float64_on_same_inputs"][key]["max_rel_to_max(1,|f64|)"]
        .as_f64()
        .unwrap_or_else(|| panic!("no recorded f32 deviation for {key}"))
}

/// One ulp of `v` as an `f32`.
fn ulp32(v: f64) -> f64 {
    let f = (v as f32).abs();
    (f32::from_bits(f.to_bits() + 1) - f) as f64
}

/// How far the f64 reference `f(x, ctx)` moves, per output, when any one f32 input (of `x` or
/// `ctx`) moves by 2 ulp: the part of an f32 error that belongs to the conditioning of the
/// point, not to the code. It is large exactly where the golden README warns that f32 is
/// ill-conditioned: points inside the 1e-6 search window of a knot, and flat spline regions
/// seen through an inverse.
fn sensitivity(x: &[f64], ctx: &[f64], f: impl Fn(&[f64], &[f64]) -> Vec<f64>) -> Vec<f64> {
    let base = f(x, ctx);
    let mut out = vec![0.0f64; base.len()];
    for which in 0..x.len() + ctx.len() {
        for sign in [-2.0, 2.0] {
            let (mut xp, mut cp) = (x.to_vec(), ctx.to_vec());
            let v = if which < x.len() {
                &mut xp[which]
            } else {
                &mut cp[which - x.len()]
            };
            *v += sign * ulp32(*v);
            for ((o, r), b) in out.iter_mut().zip(f(&xp, &cp)).zip(&base) {
                *o = o.max((r - b).abs());
            }
        }
    }
    out
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn check_case(case: &Value, t: &mut Tally) {
    let id = case["case_id"].as_str().unwrap().to_string();
    let kind = case["kind"].as_str().unwrap();
    let cfg = &case["config"];
    let shape = shape_of(cfg);
    let mut blocks = Blocks { bytes: Vec::new() };
    let specs: Vec<Spec> = match kind {
        "Spline" => {
            let (dim, b) = spline_block(case, "", shape.order());
            vec![Spec::Spline {
                dim,
                block: blocks.push(&b),
            }]
        }
        "SplineCoupling" => vec![coupling_spec(case, &mut blocks, "", shape.order())],
        "ConditionalSpline" => {
            let (input, hidden, output, nn) = dense_block(case, "nn.");
            vec![Spec::CondSpline {
                dim: cfg["input_dim"].as_u64().unwrap() as usize,
                input,
                hidden,
                output,
                nn: blocks.push(&nn),
            }]
        }
        "Flow3" => {
            let perm = case["permutation"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as u8)
                .collect();
            vec![
                coupling_spec(case, &mut blocks, "layer0.", shape.order()),
                Spec::Permute(perm),
                coupling_spec(case, &mut blocks, "layer2.", shape.order()),
            ]
        }
        k => panic!("{id}: unknown kind {k}"),
    };
    let layers = build(&specs, &blocks, shape);
    let d = layers[0].dim();
    let (s64, s32) = (&case["float64"], &case["float32"]);

    match kind {
        "Spline" | "SplineCoupling" | "ConditionalSpline" => {
            let ctx64 = s64.get("context").map(rows);
            let ctx32 = s32.get("context").map(rows);
            let ld_key = if kind == "Spline" {
                "forward_log_abs_det_jacobian"
            } else {
                "forward_log_abs_det_jacobian_elementwise"
            };
            // float64: forward y, per-dim and total log|J|, round trip, inverse of x, log_prob.
            let x = rows(&s64["x"]);
            let fy = rows(&s64["forward_y"]);
            let fld = rows(&s64[ld_key]);
            let inv = rows(&s64["inverse_of_forward_y"]);
            for (i, xi) in x.iter().enumerate() {
                let c = ctx64.as_ref().map_or(&[][..], |c| &c[i][..]);
                let (y, lds, total) = run(&layers, xi, c, Direction::Forward);
                for j in 0..d {
                    t.f64(&id, "forward y", i, y[j], fy[i][j]);
                    t.f64(&id, "log|J| per dim", i, lds[j], fld[i][j]);
                }
                let want_total: f64 = match s64.get("forward_log_abs_det_jacobian") {
                    Some(v) if kind == "SplineCoupling" => scalars(v)[i],
                    _ => fld[i].iter().sum(),
                };
                t.f64(&id, "log|J| total", i, total, want_total);
                let (xb, _, _) = run(&layers, &fy[i], c, Direction::Inverse);
                for j in 0..d {
                    t.f64(&id, "inverse", i, xb[j], inv[i][j]);
                }
            }
            if kind != "SplineCoupling" {
                // Element-wise kinds: the inverse at x itself, and the element-wise log_prob.
                let ix = rows(&s64["inverse_of_x"]);
                let lpe = rows(&s64["log_prob_x_elementwise_std_normal_base"]);
                let lps = scalars(&s64["log_prob_x_sum_over_dims"]);
                for (i, xi) in x.iter().enumerate() {
                    let c = ctx64.as_ref().map_or(&[][..], |c| &c[i][..]);
                    let (z, lds, total) = run(&layers, xi, c, Direction::Inverse);
                    for j in 0..d {
                        t.f64(&id, "inverse", i, z[j], ix[i][j]);
                        let lp = StdNormal::log_prob(&[z[j]]) + lds[j];
                        t.f64(&id, "log_prob", i, lp, lpe[i][j]);
                    }
                    t.f64(&id, "log_prob", i, StdNormal::log_prob(&z) + total, lps[i]);
                }
                if let Some(ild) = s64.get("inverse_of_x_log_abs_det_dx_dy") {
                    let ild = rows(ild);
                    for (i, xi) in x.iter().enumerate() {
                        let (_, lds, _) = run(&layers, xi, &[], Direction::Inverse);
                        for j in 0..d {
                            t.f64(&id, "inverse log|J|", i, lds[j], ild[i][j]);
                        }
                    }
                }
            } else {
                check_joint_log_prob(&id, &layers, s64, s32, t);
            }
            // float32: forward y and log|J| (well-conditioned), element-wise log_prob, round trip.
            let x = rows(&s32["x"]);
            let fy = rows(&s32["forward_y"]);
            let fld = rows(&s32[ld_key]);
            let dy = dev(s32, "forward_y");
            // Pyro records the f32 deviation of the per-dimension log|J| for element-wise kinds
            // and of the total for couplings; each is checked against its own deviation.
            let per_dim = s32["deviation_from_float64_on_same_inputs"]
                .get(ld_key)
                .is_some();
            let dld = dev(
                s32,
                if per_dim {
                    ld_key
                } else {
                    "forward_log_abs_det_jacobian"
                },
            );
            let rt = s32["roundtrip_max_abs_err"].as_f64().unwrap();
            for (i, xi) in x.iter().enumerate() {
                let c = ctx32.as_ref().map_or(vec![], |c| to32(&c[i]));
                let (y, lds, total) = run(&layers, &to32(xi), &c, Direction::Forward);
                let (xb, _, _) = run(&layers, &y, &c, Direction::Inverse);
                let c64 = to64(&c);
                let (ry, rlds, rtotal) = run(&layers, xi, &c64, Direction::Forward);
                let sens = sensitivity(xi, &c64, |x, c| {
                    let (y, l, tot) = run(&layers, x, c, Direction::Forward);
                    [y, l, vec![tot]].concat()
                });
                for j in 0..d {
                    t.f32(&id, "forward y", i, y[j], ry[j], dy, sens[j]);
                    t.pyro32(y[j], fy[i][j]);
                    if per_dim {
                        t.f32(&id, "log|J| per dim", i, lds[j], rlds[j], dld, sens[d + j]);
                        t.pyro32(lds[j], fld[i][j]);
                    }
                    t.f32(&id, "round trip", i, xb[j], xi[j], rt, 0.0);
                }
                if !per_dim {
                    t.f32(&id, "log|J| total", i, total, rtotal, dld, sens[2 * d]);
                }
            }
            if let Some(lpe) = s32.get("log_prob_x_elementwise_std_normal_base") {
                let lpe = rows(lpe);
                let dlp = dev(s32, "log_prob_x_elementwise_std_normal_base");
                for (i, xi) in x.iter().enumerate() {
                    let c = ctx32.as_ref().map_or(vec![], |c| to32(&c[i]));
                    let (z, lds, _) = run(&layers, &to32(xi), &c, Direction::Inverse);
                    let lp64 = |x: &[f64], c: &[f64]| {
                        let (z, l, _) = run(&layers, x, c, Direction::Inverse);
                        (0..d)
                            .map(|j| StdNormal::log_prob(&[z[j]]) + l[j])
                            .collect::<Vec<f64>>()
                    };
                    let want = lp64(xi, &to64(&c));
                    let sens = sensitivity(xi, &to64(&c), lp64);
                    for j in 0..d {
                        let lp = StdNormal::log_prob(&[z[j]]) + lds[j];
                        t.f32(&id, "log_prob", i, lp, want[j], dlp, sens[j]);
                        t.pyro32(lp, lpe[i][j]);
                    }
                }
            }
        }
        "Flow3" => {
            let z = rows(&s64["z"]);
            let x = rows(&s64["x"]);
            let l0 = scalars(&s64["log_abs_det_layer0"]);
            let l2 = scalars(&s64["log_abs_det_layer2"]);
            let inv = rows(&s64["inverse_of_x"]);
            for (i, zi) in z.iter().enumerate() {
                let (h, _, ld0) = run(&layers[..1], zi, &[], Direction::Forward);
                let (hp, _, _) = run(&layers[1..2], &h, &[], Direction::Forward);
                let (y, _, ld2) = run(&layers[2..], &hp, &[], Direction::Forward);
                t.f64(&id, "log|J| total", i, ld0, l0[i]);
                t.f64(&id, "log|J| total", i, ld2, l2[i]);
                for j in 0..d {
                    t.f64(&id, "forward y", i, y[j], x[i][j]);
                }
                let (zb, _, _) = run(&layers, &x[i], &[], Direction::Inverse);
                for j in 0..d {
                    t.f64(&id, "inverse", i, zb[j], inv[i][j]);
                }
            }
            let z32 = rows(&s32["z"]);
            let x32 = rows(&s32["x"]);
            let (dx, d0, d2) = (
                dev(s32, "x"),
                dev(s32, "log_abs_det_layer0"),
                dev(s32, "log_abs_det_layer2"),
            );
            let l0 = scalars(&s32["log_abs_det_layer0"]);
            let l2 = scalars(&s32["log_abs_det_layer2"]);
            let rt = s32["roundtrip_max_abs_err"].as_f64().unwrap();
            for (i, z64) in z32.iter().enumerate() {
                let zi = to32(z64);
                let (h, _, ld0) = run(&layers[..1], &zi, &[], Direction::Forward);
                let (hp, _, _) = run(&layers[1..2], &h, &[], Direction::Forward);
                let (y, _, ld2) = run(&layers[2..], &hp, &[], Direction::Forward);
                let flow3 = |z: &[f64], _: &[f64]| {
                    let (rh, _, rld0) = run(&layers[..1], z, &[], Direction::Forward);
                    let (rhp, _, _) = run(&layers[1..2], &rh, &[], Direction::Forward);
                    let (ry, _, rld2) = run(&layers[2..], &rhp, &[], Direction::Forward);
                    [ry, vec![rld0, rld2]].concat()
                };
                let r = flow3(z64, &[]);
                let sens = sensitivity(z64, &[], flow3);
                t.f32(&id, "log|J| total", i, ld0, r[d], d0, sens[d]);
                t.f32(&id, "log|J| total", i, ld2, r[d + 1], d2, sens[d + 1]);
                t.pyro32(ld0, l0[i]);
                t.pyro32(ld2, l2[i]);
                let (zb, _, _) = run(&layers, &y, &[], Direction::Inverse);
                for j in 0..d {
                    t.f32(&id, "forward y", i, y[j], r[j], dx, sens[j]);
                    t.pyro32(y[j], x32[i][j]);
                    t.f32(&id, "round trip", i, zb[j], zi[j] as f64, rt, 0.0);
                }
            }
            check_joint_log_prob(&id, &layers, s64, s32, t);
        }
        _ => unreachable!(),
    }
}

/// `log p(x)` of a whole flow at `log_prob_points`, through [`flow_core::Flow`] itself.
fn check_joint_log_prob(id: &str, layers: &[Layer<'_>], s64: &Value, s32: &Value, t: &mut Tally) {
    let pts = rows(&s64["log_prob_points"]);
    let want = scalars(&s64["log_prob_std_normal_base"]);
    let inv = rows(&s64["inverse_of_log_prob_points"]);
    for (i, p) in pts.iter().enumerate() {
        t.f64(id, "log_prob", i, flow_log_prob(layers, p), want[i]);
        let (z, _, _) = run(layers, p, &[], Direction::Inverse);
        for (j, zj) in z.iter().enumerate() {
            t.f64(id, "inverse", i, *zj, inv[i][j]);
        }
    }
    let pts = rows(&s32["log_prob_points"]);
    let want = scalars(&s32["log_prob_std_normal_base"]);
    let dlp = dev(s32, "log_prob_std_normal_base");
    for (i, p) in pts.iter().enumerate() {
        let lp = flow_log_prob(layers, &to32(p));
        let sens = sensitivity(p, &[], |x, _| vec![flow_log_prob(layers, x)]);
        t.f32(
            id,
            "log_prob",
            i,
            lp,
            flow_log_prob(layers, p),
            dlp,
            sens[0],
        );
        t.pyro32(lp, want[i]);
    }
}

/// `Flow::<D>::log_prob`, dispatching the runtime dimension to the const generic.
fn flow_log_prob<T: flow_core::Real>(layers: &[Layer<'_>], x: &[T]) -> T {
    fn go<T: flow_core::Real, const D: usize>(layers: &[Layer<'_>], x: &[T]) -> T {
        let flow = flow_core::Flow::<D>::new(layers).unwrap();
        flow.log_prob(&<[T; D]>::try_from(x).unwrap()).unwrap()
    }
    match x.len() {
        1 => go::<T, 1>(layers, x),
        2 => go::<T, 2>(layers, x),
        3 => go::<T, 3>(layers, x),
        4 => go::<T, 4>(layers, x),
        5 => go::<T, 5>(layers, x),
        6 => go::<T, 6>(layers, x),
        7 => go::<T, 7>(layers, x),
        8 => go::<T, 8>(layers, x),
        d => panic!("dimension {d} not dispatched"),
    }
}

#[test]
fn pyro_golden_cases() {
    let dir = golden_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read golden folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut t = Tally::default();
    let mut cases = 0;
    for f in &files {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if v.get("case_id").is_none() || v.get("kind").is_none() {
            continue; // index.json, checks.json
        }
        check_case(&v, &mut t);
        cases += 1;
    }
    assert!(cases > 0, "no golden case in {}", dir.display());
    let worst: Vec<String> = t
        .worst
        .iter()
        .map(|(k, v)| format!("{k} {v:.2e}"))
        .collect();
    println!(
        "golden: {cases} cases, {} checks ({} f32 checks at ill-conditioned points), {} failed; \
         largest error: {}",
        t.checks,
        t.ill_conditioned,
        t.failures.len(),
        worst.join(", ")
    );
    assert!(
        t.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        t.failures.len(),
        t.checks,
        t.failures[..t.failures.len().min(40)].join("\n")
    );
}
