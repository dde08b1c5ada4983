//! The trainer's spline against flow-core's.

use super::*;
use flow_core::spline::{eval, knots_in_place, sigmoid, softplus, Direction, RawParams};
use flow_core::Order;

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
                        eval(&shape, &raw, y, Direction::Inverse, true, &mut sx, &mut sy).unwrap();
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
