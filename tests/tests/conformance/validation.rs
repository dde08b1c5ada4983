//! Robustness and validation: contexts, supports, constructor and capacity errors.

use flow_core::nn::dense_param_count;
use flow_core::spline::knots_in_place;
use flow_core::{
    encode_f32s, Affine, Capacity, ConditionalFlow, ConditionalSpline, DenseNN, Direction, Error,
    Exp, Flow, JointFlow, Layer, LayerError, Order, Permute, Spline, SplineCoupling, SplineShape,
    StdNormal, Weights, Workspace,
};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

use crate::models::*;

// =============================================================================================
// Robustness and validation.
// =============================================================================================

/// A conditional flow may mix conditional and unconditional layers (its docs say so, and
/// `ConditionalFlow::new` accepts them). Regression: an unconditional coupling inside one used
/// to fail at evaluation with `InvalidLayer(Context)`, because the chain passed the context to
/// every layer. It must give exactly what the same coupling gives in a `Flow`.
#[test]
fn conditional_flow_accepts_unconditional_coupling() {
    let mut rng = Rng::new(101);
    let sh = shape(6, 3.0, Order::Quadratic);
    let c = rand_coupling(&mut rng, 2, 1, &[5], sh, sh, 0);
    let cf: ConditionalFlow<2, 1> = ConditionalFlow::new(&[Layer::Coupling(c)]).unwrap();
    let f: Flow<2> = Flow::new(&[Layer::Coupling(c)]).unwrap();
    for _ in 0..100 {
        let x = [rng.normal(), rng.normal()];
        let ctx = [rng.normal()];
        assert_eq!(cf.log_prob(&x, &ctx), f.log_prob(&x));
        assert_eq!(
            cf.condition(&ctx).forward_and_log_det(&x),
            f.forward_and_log_det(&x)
        );
        assert_eq!(
            cf.condition(&ctx).inverse_and_log_det(&x),
            f.inverse_and_log_det(&x)
        );
    }
}

#[test]
fn non_finite_contexts_rejected() {
    let mut rng = Rng::new(102);
    let lin = shape(4, 3.0, Order::Linear);
    let cs = rand_cond_spline(&mut rng, 2, 2, &[4], lin);
    let flow: ConditionalFlow<2, 2> =
        ConditionalFlow::new(&[Layer::ConditionalSpline(cs)]).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let ctx = [0.3, bad];
        let x = [0.1, -0.2];
        assert_eq!(flow.log_prob(&x, &ctx), Err(Error::NonFiniteInput));
        let c = flow.condition(&ctx);
        assert_eq!(c.forward_and_log_det(&x), Err(Error::NonFiniteInput));
        assert_eq!(c.inverse_and_log_det(&x), Err(Error::NonFiniteInput));
        assert_eq!(
            c.sample(&mut Pcg32::seed_from_u64(1)),
            Err(Error::NonFiniteInput)
        );
        assert_eq!(
            c.sample_with_log_prob(&mut Pcg32::seed_from_u64(1)),
            Err(Error::NonFiniteInput)
        );
        let ctx32 = [0.3f32, bad as f32];
        assert_eq!(
            flow.log_prob(&[0.1f32, -0.2], &ctx32),
            Err(Error::NonFiniteInput)
        );
    }
}

/// `Exp`'s inverse exists for `y > 0` only: `log_prob` is `-inf` at `y <= 0` (including -0.0)
/// and the inverse is `Err(OutOfSupport)`; far right the forward overflows to `+inf` (a value:
/// infinities pass, only NaN is an error), with `log|J| = x`.
#[test]
fn exp_support_and_overflow() {
    let flow: Flow<2> = Flow::new(&[Layer::Exp(Exp::new(2).unwrap())]).unwrap();
    for y in [0.0, -0.0, -1e-300, -1.0, -1e30, -1e300] {
        assert_eq!(flow.log_prob(&[1.0, y]), Ok(f64::NEG_INFINITY), "{y}");
        assert_eq!(flow.inverse(&[y, 1.0]), Err(Error::OutOfSupport));
        let y32 = y as f32; // -1e300 is -inf in f32: a non-finite input instead.
        let expect = if y32.is_finite() {
            Ok(f32::NEG_INFINITY)
        } else {
            Err(Error::NonFiniteInput)
        };
        assert_eq!(flow.log_prob(&[y32, 1.0]), expect, "{y}");
    }
    assert_eq!(
        flow.inverse_and_log_det(&[1.0f32, -0.0]),
        Err(Error::OutOfSupport)
    );
    // Tiny positive values are inside: finite log-densities.
    for y in [f64::MIN_POSITIVE, 5e-324, 1e-300] {
        let lp = flow.log_prob(&[1.0, y]).unwrap();
        assert!(lp.is_finite() && lp < -1e5, "{y}: {lp}");
    }
    let (y, ld) = flow.forward_and_log_det(&[1000.0f64, 0.0]).unwrap();
    assert_eq!(y, [f64::INFINITY, 1.0]);
    assert_eq!(ld, 1000.0);
    let (y, ld) = flow.forward_and_log_det(&[100.0f32, -200.0]).unwrap();
    assert_eq!(y, [f32::INFINITY, 0.0]);
    assert_eq!(ld, -100.0);
}

#[test]
fn empty_flow_is_the_standard_normal() {
    let flow: Flow<3> = Flow::new(&[]).unwrap();
    let mut rng = Rng::new(103);
    for _ in 0..100 {
        let x = [rng.normal(), rng.normal(), rng.normal()];
        assert_eq!(flow.log_prob(&x), Ok(StdNormal::log_prob(&x)));
        assert_eq!(flow.forward_and_log_det(&x), Ok((x, 0.0)));
    }
    let s: [f64; 3] = flow.sample(&mut Pcg32::seed_from_u64(5)).unwrap();
    let mut z = [0.0f64; 3];
    StdNormal::sample(&mut Pcg32::seed_from_u64(5), &mut z);
    assert_eq!(s, z);
}

#[test]
fn constructor_validation_errors() {
    use LayerError as L;
    let inv = Error::InvalidLayer;
    // SplineShape: 2 ≤ bins ≤ 1000, finite bound > 0.
    for bins in [0, 1, 1001, usize::MAX] {
        assert_eq!(
            SplineShape::new(bins, 3.0, Order::Linear),
            Err(inv(L::Bins)),
            "{bins}"
        );
    }
    assert!(SplineShape::new(2, 3.0, Order::Quadratic).is_ok());
    assert!(SplineShape::new(1000, 3.0, Order::Linear).is_ok());
    for b in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_eq!(
            SplineShape::new(8, b, Order::Linear),
            Err(inv(L::Bound)),
            "{b}"
        );
    }
    assert!(SplineShape::new(8, f32::MIN_POSITIVE, Order::Linear).is_ok());
    // Spline: dimension, parameter count (4K-1 linear, 3K-1 quadratic per dim), finiteness.
    let lin = shape(4, 3.0, Order::Linear);
    let quad = shape(4, 3.0, Order::Quadratic);
    assert_eq!(lin.params_per_dim(), 15);
    assert_eq!(quad.params_per_dim(), 11);
    let w30 = leak(&[0.1; 30]);
    assert!(Spline::new(2, lin, w30).is_ok());
    assert_eq!(Spline::new(0, lin, w30), Err(inv(L::ZeroDim)));
    assert_eq!(
        Spline::new(2, quad, w30),
        Err(Error::ParameterCount {
            expected: 22,
            found: 30
        })
    );
    assert_eq!(
        Spline::new(2, lin, leak(&[0.1; 29])),
        Err(Error::ParameterCount {
            expected: 30,
            found: 29
        })
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = [0.1f32; 30];
        v[17] = bad;
        assert_eq!(
            Spline::new(2, lin, leak(&v)),
            Err(Error::NonFiniteParameter)
        );
    }
    // Affine.
    assert_eq!(Affine::scalar(0, 0.0, 1.0), Err(inv(L::ZeroDim)));
    for s in [0.0, -0.0, f32::NAN, f32::INFINITY] {
        assert_eq!(Affine::scalar(1, 0.0, s), Err(inv(L::Scale)), "{s}");
    }
    for l in [f32::NAN, f32::NEG_INFINITY] {
        assert_eq!(Affine::scalar(1, l, 1.0), Err(Error::NonFiniteParameter));
    }
    assert_eq!(Affine::per_dim(0, leak(&[])), Err(inv(L::ZeroDim)));
    assert_eq!(
        Affine::per_dim(2, leak(&[0.0, 0.0, 1.0])),
        Err(Error::ParameterCount {
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        Affine::per_dim(2, leak(&[0.0, 0.0, 1.0, 0.0])),
        Err(inv(L::Scale))
    );
    assert_eq!(
        Affine::per_dim(2, leak(&[f32::NAN, 0.0, 1.0, 1.0])),
        Err(Error::NonFiniteParameter)
    );
    assert_eq!(Exp::new(0), Err(inv(L::ZeroDim)));
    // Permute.
    assert_eq!(Permute::new(&[]), Err(inv(L::ZeroDim)));
    for p in [&[0u8, 0][..], &[1, 2], &[0, 2, 1, 3, 3], &[5]] {
        assert_eq!(
            Permute::new(leak_perm(p)),
            Err(inv(L::Permutation)),
            "{p:?}"
        );
    }
    let big: Vec<u8> = (0..=255u8).rev().collect();
    assert!(Permute::new(leak_perm(&big)).is_ok());
    let mut too_big = big.clone();
    too_big.push(0);
    assert_eq!(Permute::new(leak_perm(&too_big)), Err(inv(L::Permutation)));
    // DenseNN: 2 → [3] → 4 has 2·3+3 + 3·4+4 = 25 parameters.
    assert_eq!(dense_param_count(2, &[3], 4), 25);
    assert!(DenseNN::new(2, &[3], 4, leak(&[0.1; 25])).is_ok());
    assert_eq!(
        DenseNN::new(2, &[3], 4, leak(&[0.1; 24])),
        Err(Error::ParameterCount {
            expected: 25,
            found: 24
        })
    );
    assert_eq!(
        DenseNN::new(1, &[1, 1, 1, 1, 1], 1, leak(&[0.1; 12])),
        Err(Error::Capacity {
            what: Capacity::HiddenLayers,
            needed: 5,
            limit: 4
        })
    );
    assert_eq!(
        DenseNN::new(2, &[0], 4, leak(&[0.1; 4])),
        Err(inv(L::ZeroDim))
    );
    assert_eq!(
        DenseNN::new(0, &[], 4, leak(&[0.1; 4])),
        Err(inv(L::ZeroDim))
    );
    let mut v = [0.1f32; 25];
    v[3] = f32::NAN;
    assert_eq!(
        DenseNN::new(2, &[3], 4, leak(&v)),
        Err(Error::NonFiniteParameter)
    );
    // SplineCoupling: upper part non-empty; hypernet input = split + context; output =
    // upper_dim × params_per_dim.
    let low = Spline::new(1, quad, leak(&[0.1; 11])).unwrap();
    let nn_ok = DenseNN::new(1, &[], 22, leak(&[0.1; 44])).unwrap();
    assert!(SplineCoupling::new(low, 2, quad, nn_ok, 0).is_ok());
    assert_eq!(
        SplineCoupling::new(low, 0, quad, nn_ok, 0),
        Err(inv(L::Split))
    );
    assert_eq!(
        SplineCoupling::new(low, 2, quad, nn_ok, 1),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        SplineCoupling::new(low, 1, quad, nn_ok, 0),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        SplineCoupling::new(low, 2, lin, nn_ok, 0),
        Err(inv(L::HypernetShape))
    );
    // ConditionalSpline.
    let nn_c = DenseNN::new(3, &[], 22, leak(&[0.1; 88])).unwrap();
    assert!(ConditionalSpline::new(2, quad, nn_c).is_ok());
    assert_eq!(ConditionalSpline::new(0, quad, nn_c), Err(inv(L::ZeroDim)));
    assert_eq!(
        ConditionalSpline::new(1, quad, nn_c),
        Err(inv(L::HypernetShape))
    );
    assert_eq!(
        ConditionalSpline::new(2, lin, nn_c),
        Err(inv(L::HypernetShape))
    );
    // Weights and encode_f32s.
    assert!(Weights::new(&[0u8; 5]).is_none());
    assert!(Weights::new(&[0u8; 8]).is_some());
    assert_eq!(encode_f32s(&[1.0, 2.0], &mut [0u8; 7]), None);
    let mut b = [0u8; 8];
    assert_eq!(encode_f32s(&[1.0, -2.5], &mut b), Some(8));
    assert_eq!(
        Weights::new(&b).unwrap().iter().collect::<Vec<_>>(),
        vec![1.0, -2.5]
    );
}

#[test]
fn flow_construction_and_capacity_errors() {
    use LayerError as L;
    let mut rng = Rng::new(104);
    let k8 = shape(8, 3.0, Order::Linear);
    let k4 = shape(4, 3.0, Order::Quadratic);
    let s1 = Layer::Spline(rand_spline(&mut rng, 1, k8));
    let s2 = Layer::Spline(rand_spline(&mut rng, 2, k4));
    let c8 = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[8], k4, k4, 0));
    let cond_c = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k4, k4, 2));
    let cond_s = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 2, &[3], k4));
    let mixed = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k4, k8, 0));
    // Dimensions and contexts.
    assert_eq!(
        Flow::<2>::new(&[s2, s1]).map(|_| ()),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        Flow::<2>::new(&[cond_s]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        Flow::<2>::new(&[s2, cond_c]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        ConditionalFlow::<2, 3>::new(&[cond_s]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert!(ConditionalFlow::<2, 2>::new(&[cond_s, s2, cond_c, c8]).is_ok());
    // Compile-time capacities: layers L, hidden width H, bins K.
    assert_eq!(
        Flow::<2, 1>::new(&[s2, s2]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Layers,
            needed: 2,
            limit: 1
        })
    );
    assert!(Flow::<2, 2>::new(&[s2, s2]).is_ok());
    assert_eq!(
        Flow::<2, 8, 4>::new(&[c8]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 8,
            limit: 4
        })
    );
    assert!(Flow::<2, 8, 8>::new(&[c8]).is_ok());
    assert_eq!(
        Flow::<1, 8, 64, 4>::new(&[s1]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 4
        })
    );
    // A coupling's bins are the larger of its lower and upper splines'.
    assert_eq!(
        Flow::<2, 8, 64, 6>::new(&[mixed]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 6
        })
    );
    assert_eq!(
        ConditionalFlow::<2, 2, 1>::new(&[cond_s, cond_s]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Layers,
            needed: 2,
            limit: 1
        })
    );
    assert_eq!(
        ConditionalFlow::<2, 2, 8, 2>::new(&[cond_s]).map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 3,
            limit: 2
        })
    );
    // JointFlow: d₁ (the marginal's dimension) in 1..D, the conditional's layers of dimension
    // D - d₁ with context d₁.
    assert!(matches!(
        JointFlow::<4>::new(&[s2], &[s1]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        JointFlow::<4>::new(&[], &[s2]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(matches!(
        JointFlow::<2>::new(&[s2], &[s2]),
        Err(Error::DimensionMismatch { .. })
    ));
    assert!(JointFlow::<4>::new(&[s2], &[cond_s]).is_ok());
    // No conditional layers: x₂ is standard Normal, independent of x₁.
    let j = JointFlow::<4>::new(&[s2], &[]).unwrap();
    let m = Flow::<2>::new(&[s2]).unwrap();
    let x = [0.3f64, -1.2, 0.7, 2.1];
    assert_eq!(
        j.log_prob(&x),
        Ok(m.log_prob(&[0.3, -1.2]).unwrap() + StdNormal::log_prob(&[0.7, 2.1]))
    );
    let cond_s1 = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 1, &[], k4));
    assert_eq!(
        JointFlow::<4>::new(&[s2], &[cond_s1]).map(|_| ()),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        JointFlow::<4, 8, 64, 4>::new(&[s2], &[s2, Layer::Spline(rand_spline(&mut rng, 2, k8))])
            .map(|_| ()),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 4
        })
    );
}

/// `Layer::apply` checks lengths, context sizes and the workspace it is given.
#[test]
fn layer_apply_errors() {
    use LayerError as L;
    let mut rng = Rng::new(105);
    let k8 = shape(8, 3.0, Order::Linear);
    let sp = Layer::Spline(rand_spline(&mut rng, 2, k8));
    let cp = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[8], k8, k8, 0));
    let cc = Layer::Coupling(rand_coupling(&mut rng, 2, 1, &[], k8, k8, 3));
    let cs = Layer::ConditionalSpline(rand_cond_spline(&mut rng, 2, 3, &[4], k8));
    let mut ws = Workspace::<f64, 64, 32>::new();
    let mut v3 = [0.1f64; 3];
    let mut l3 = [0.0f64; 3];
    let (mut v, mut l) = ([0.1f64, 0.2], [0.0f64; 2]);
    assert_eq!(
        sp.apply(&mut v3, &[], &mut l3[..2], Direction::Forward, &mut ws),
        Err(Error::DimensionMismatch {
            expected: 2,
            found: 2
        })
    );
    assert!(matches!(
        sp.apply(&mut v, &[], &mut l3, Direction::Forward, &mut ws),
        Err(Error::DimensionMismatch { expected: 2, .. })
    ));
    assert_eq!(
        cc.apply(&mut v, &[0.0; 2], &mut l, Direction::Forward, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    assert!(cc
        .apply(&mut v, &[0.0; 3], &mut l, Direction::Forward, &mut ws)
        .is_ok());
    assert_eq!(
        cs.apply(&mut v, &[], &mut l, Direction::Inverse, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    assert_eq!(
        cp.apply(&mut v, &[1.0], &mut l, Direction::Forward, &mut ws),
        Err(Error::InvalidLayer(L::Context))
    );
    // A workspace too small for the layer: a capacity error, not a panic.
    let mut small_k = Workspace::<f64, 64, 2>::new();
    let (mut v, mut l) = ([0.1f64, 0.2], [0.0f64; 2]);
    assert_eq!(
        sp.apply(&mut v, &[], &mut l, Direction::Forward, &mut small_k),
        Err(Error::Capacity {
            what: Capacity::Bins,
            needed: 8,
            limit: 2
        })
    );
    let mut small_h = Workspace::<f32, 2, 32>::new();
    let (mut v, mut l) = ([0.1f32, 0.2], [0.0f32; 2]);
    assert_eq!(
        cp.apply(&mut v, &[], &mut l, Direction::Inverse, &mut small_h),
        Err(Error::Capacity {
            what: Capacity::Hidden,
            needed: 8,
            limit: 2
        })
    );
}

/// Known flow-core issue (inherited from Pyro's formula; reported, not fixed): exactly on an
/// interior y-knot whose derivative `δ₁` is tiny against the slope `s₀` of the bin to its left
/// (here `δ₁ ≈ 1e-3`, `s₀ ≈ 950`), the f32 quadratic inverse computes its discriminant
/// `Δy²δ₁²` as `b² - 4aq` from terms of size `4s₀²Δy²`; it rounds to ≤ 0 (clamped), `θ` comes
/// out wrong and the log of a non-positive numerator is NaN: `log_prob` and the inverse return
/// `Err(Numerical)` at a finite point inside the box. f64 is fine there (`x = x₁`,
/// `log|dx/dy| = -ln δ₁ = 6.9078`). Enable once the inverse is made stable there.
#[test]
fn f32_quadratic_inverse_on_a_steep_knot_is_finite() {
    // Regression: exactly on a y-knot whose derivative is tiny next to the left bin's slope,
    // Pyro's search sends the point to the left bin, extrapolated past its end, and the f32
    // discriminant cancels to nothing (NaN). flow-core then evaluates the bin the point lies in.
    // The log-det is discontinuous there (the extrapolated left bin against the right bin's own
    // value), so f32 and f64 may land on different sides of it; the inverse itself is the knot
    // in both and must agree.
    let sh = shape(2, 3.0, Order::Quadratic);
    // uw = [-3, 3], uh = [3, -3], ud = [-20]: bin 0 is 6.3e-3 wide and 5.96 tall.
    let s = Spline::new(1, sh, leak(&[-3.0, 3.0, 3.0, -3.0, -20.0])).unwrap();
    let flow: Flow<1> = Flow::new(&[Layer::Spline(s)]).unwrap();
    let mut yk = [3.0f32, -3.0];
    knots_in_place(&mut yk, 3.0f32);
    let y1 = yk[0]; // 2.979194
    let (x64, _) = flow.inverse_and_log_det(&[f64::from(y1)]).unwrap();
    let (x32, ld32) = flow
        .inverse_and_log_det(&[y1])
        .expect("finite inverse on a knot");
    assert!(
        (f64::from(x32[0]) - x64[0]).abs() < 1e-4,
        "{x32:?} vs {x64:?}"
    );
    assert!(ld32.is_finite());
    assert!(flow.log_prob(&[y1]).unwrap().is_finite());
}
