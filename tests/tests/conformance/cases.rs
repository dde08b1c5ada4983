//! The cases: random instances of every transform family.

use flow_core::{Affine, Exp, Layer, Order, Permute};

use crate::models::*;

// =============================================================================================
// The cases.
// =============================================================================================

pub(crate) fn affine_cases() -> Vec<Case> {
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

pub(crate) fn exp_cases() -> Vec<Case> {
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

pub(crate) fn spline_cases(order: Order) -> Vec<Case> {
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

pub(crate) fn coupling_cases(order: Order) -> Vec<Case> {
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

pub(crate) fn rand_ctx(rng: &mut Rng, c: usize) -> Vec<f32> {
    (0..c).map(|_| rng.range(-2.0, 2.0) as f32).collect()
}

pub(crate) type CondCouplingSpec = (usize, usize, usize, Order, &'static [usize], usize, f32);
pub(crate) type CondSplineSpec = (usize, usize, Order, &'static [usize], usize, f32);
pub(crate) type FlowSpec = (usize, Order, usize, f32, &'static [usize], &'static [u8]);

pub(crate) fn conditional_coupling_cases() -> Vec<Case> {
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

pub(crate) fn conditional_spline_cases() -> Vec<Case> {
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

pub(crate) fn permute_cases() -> Vec<Case> {
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

pub(crate) fn flow_cases() -> Vec<Case> {
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

pub(crate) fn conditional_flow_cases() -> Vec<Case> {
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
