//! The element-wise spline's knots, its identity outside the box, its shape checks and its
//! errors, through the public `flow_core::spline` functions.

use flow_core::spline::{eval, knots_in_place, sigmoid, softplus, RawParams};
use flow_core::{Direction, Error, Order, SplineShape};

/// Pyro's own arithmetic: softmax, minimum width, running sum, `2B·cum - B`.
fn pyro_knots(u: &[f64], b: f64) -> [f64; 64] {
    let m = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = u.iter().map(|v| (v - m).exp()).sum();
    let k = u.len() as f64;
    let mut out = [0.0; 64];
    let mut cum = 0.0;
    for (o, v) in out.iter_mut().zip(u) {
        cum += 1e-3 + (1.0 - 1e-3 * k) * (v - m).exp() / s;
        *o = 2.0 * b * cum - b;
    }
    out[u.len() - 1] = b;
    out
}

fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) * 8.0 - 4.0
}

#[test]
fn knots_equal_pyros_formula_and_are_increasing() {
    let mut st = 1u64;
    for k in [2usize, 3, 4, 7, 8, 16, 33, 64] {
        for _ in 0..50 {
            let u: [f64; 64] = core::array::from_fn(|_| lcg(&mut st));
            let mut mine = u;
            knots_in_place(&mut mine[..k], 3.0);
            let want = pyro_knots(&u[..k], 3.0);
            for j in 0..k {
                // Same value, fewer roundings: agreement to a few f64 ulps of the box.
                assert!((mine[j] - want[j]).abs() < 1e-13, "k={k} j={j}");
            }
            assert_eq!(mine[k - 1], 3.0);
            let mut prev = -3.0;
            for &x in &mine[..k] {
                // Every bin is at least the minimum width 2B·1e-3 wide.
                assert!(x - prev >= 6.0 * 1e-3 * (1.0 - 1e-9), "k={k}");
                prev = x;
            }
            // The same in f32: within 2 ulps of the exact knots.
            let mut m32: [f32; 64] = core::array::from_fn(|i| u[i] as f32);
            knots_in_place(&mut m32[..k], 3.0f32);
            let mut exact: [f64; 64] = core::array::from_fn(|i| m32[i] as f64);
            let u32_as_64: [f64; 64] = core::array::from_fn(|i| (u[i] as f32) as f64);
            exact[..k].copy_from_slice(&pyro_knots(&u32_as_64[..k], 3.0)[..k]);
            for j in 0..k {
                let ulp = f32::EPSILON as f64 * exact[j].abs().max(1.0);
                assert!(
                    (m32[j] as f64 - exact[j]).abs() <= 2.0 * ulp,
                    "k={k} j={j}: {} vs {}",
                    m32[j],
                    exact[j]
                );
            }
        }
    }
}

fn raw(u: &[f64; 16]) -> RawParams<'_, f64> {
    RawParams {
        widths: &u[0..4],
        heights: &u[4..8],
        derivatives: &u[8..11],
        lambdas: &u[11..15],
    }
}

#[test]
fn identity_outside_the_box_and_for_nan() {
    let u = [
        0.3, -1.0, 0.5, 2.0, 1.0, 0.1, -0.4, 0.2, 0.7, -0.3, 1.2, 0.1, 0.9, -2.0, 0.4, 0.0,
    ];
    for order in [Order::Linear, Order::Quadratic] {
        let shape = SplineShape::new(4, 2.0, order).unwrap();
        let (mut xs, mut ys) = ([0.0; 4], [0.0; 4]);
        for v in [2.000_000_1, -2.5, 1e300, -1e300] {
            for dir in [Direction::Forward, Direction::Inverse] {
                let r = eval(&shape, &raw(&u), v, dir, true, &mut xs, &mut ys).unwrap();
                assert_eq!(r, (v, 0.0));
            }
        }
        let (y, ld) = eval(
            &shape,
            &raw(&u),
            f64::NAN,
            Direction::Forward,
            true,
            &mut xs,
            &mut ys,
        )
        .unwrap();
        assert!(y.is_nan() && ld == 0.0);
        // ±B map to ±B; log|J| there is ln(0.999), Pyro's end derivative.
        for b in [-2.0, 2.0] {
            let (y, ld) = eval(
                &shape,
                &raw(&u),
                b,
                Direction::Forward,
                true,
                &mut xs,
                &mut ys,
            )
            .unwrap();
            assert!((y - b).abs() < 1e-12, "{order:?} {b}: {y}");
            assert!((ld - 0.999f64.ln()).abs() < 1e-9, "{order:?} {b}: {ld}");
        }
    }
}

#[test]
fn too_little_scratch_is_an_error_not_a_panic() {
    let u = [0.0; 16];
    let shape = SplineShape::new(4, 3.0, Order::Linear).unwrap();
    let (mut xs, mut ys) = ([0.0; 3], [0.0; 4]);
    let r = eval(
        &shape,
        &raw(&u),
        0.5,
        Direction::Forward,
        true,
        &mut xs,
        &mut ys,
    );
    assert!(matches!(r, Err(Error::Capacity { .. })));
}

#[test]
fn shapes_are_validated() {
    assert!(SplineShape::new(1, 3.0, Order::Linear).is_err());
    assert!(SplineShape::new(1001, 3.0, Order::Linear).is_err());
    assert!(SplineShape::new(1000, 3.0, Order::Linear).is_ok());
    for b in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(SplineShape::new(8, b, Order::Quadratic).is_err());
    }
    let s = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    assert_eq!(s.params_per_dim(), 31);
    let s = SplineShape::new(8, 3.0, Order::Quadratic).unwrap();
    assert_eq!(s.params_per_dim(), 23);
}

#[test]
fn softplus_follows_torch_threshold() {
    assert_eq!(softplus(25.0f64), 25.0);
    assert!((softplus(0.0f64) - 2f64.ln()).abs() < 1e-15);
    assert!((softplus(20.0f64) - (1.0 + 20f64.exp()).ln()).abs() < 1e-12);
    assert!((sigmoid(0.0f64) - 0.5).abs() < 1e-15);
}
