//! The scalars, the random parameters, and the models under test behind one object-safe
//! interface per scalar type.

use std::f64::consts::TAU;

use flow_core::nn::dense_param_count;
use flow_core::{
    encode_f32s, ConditionalFlow, ConditionalSpline, DenseNN, Density, Direction, Error, Flow,
    Layer, Order, Real, Spline, SplineCoupling, SplineShape, Weights,
};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

// =============================================================================================
// Scalars.
// =============================================================================================

pub(crate) trait Fp:
    Real + std::fmt::Display + std::fmt::LowerExp + Send + Sync + 'static
{
    const NAME: &'static str;
    const EPS: f64;
    /// Huge finite values for the robustness checks.
    const HUGE: &'static [f64];
    fn up(self) -> Self;
    fn down(self) -> Self;
    fn bits(self) -> u64;
    fn normal(self) -> bool;
    fn model(case: &Case) -> &dyn Model<Self>;
    fn ulp(self) -> f64;
}

impl Fp for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    const HUGE: &'static [f64] = &[1e30, 3.402_823_466_385_288_6e38, 1e300, f64::MAX];
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn normal(self) -> bool {
        self.is_normal()
    }
    fn model(case: &Case) -> &dyn Model<f64> {
        case.model.as_ref()
    }
    fn ulp(self) -> f64 {
        (self.abs().next_up() - self.abs()).max(f64::MIN_POSITIVE)
    }
}

impl Fp for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    const HUGE: &'static [f64] = &[1e30, 3.402_823_466_385_288_6e38];
    fn up(self) -> Self {
        self.next_up()
    }
    fn down(self) -> Self {
        self.next_down()
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn normal(self) -> bool {
        self.is_normal()
    }
    fn model(case: &Case) -> &dyn Model<f32> {
        case.model.as_ref()
    }
    fn ulp(self) -> f64 {
        f64::from(self.abs().next_up() - self.abs()).max(f64::from(f32::MIN_POSITIVE))
    }
}

pub(crate) fn bits_eq<T: Fp>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits() == y.bits())
}

pub(crate) fn widen<T: Fp>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

pub(crate) fn flip(dir: Direction) -> Direction {
    match dir {
        Direction::Forward => Direction::Inverse,
        Direction::Inverse => Direction::Forward,
    }
}

pub(crate) fn dtag(dir: Direction) -> &'static str {
    match dir {
        Direction::Forward => "fwd",
        Direction::Inverse => "inv",
    }
}

// =============================================================================================
// Random numbers and parameters.
// =============================================================================================

pub(crate) struct Rng(Pcg32);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(Pcg32::seed_from_u64(seed))
    }
    /// U[0, 1) with 53 bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    pub(crate) fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }
    /// N(0, 1) by our own Box–Muller (independent of the library's sampler).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// Encodes `vals` with `encode_f32s` into leaked bytes and views them with `Weights::new`.
pub(crate) fn leak(vals: &[f32]) -> Weights<'static> {
    let mut bytes = vec![0u8; vals.len() * 4];
    assert_eq!(encode_f32s(vals, &mut bytes), Some(vals.len() * 4));
    Weights::new(Box::leak(bytes.into_boxed_slice())).expect("multiple of 4")
}

pub(crate) fn leak_perm(p: &[u8]) -> &'static [u8] {
    Box::leak(p.to_vec().into_boxed_slice())
}

pub(crate) fn shape(bins: usize, bound: f32, order: Order) -> SplineShape {
    SplineShape::new(bins, bound, order).expect("valid shape")
}

/// Unconstrained spline parameters: widths, heights, derivatives ~ N(0, 1), lambdas ~ U(-2, 2).
pub(crate) fn spline_params(rng: &mut Rng, dim: usize, sh: &SplineShape) -> Vec<f32> {
    let k = sh.bins();
    let mut v: Vec<f32> = (0..2 * dim * k + dim * (k - 1))
        .map(|_| rng.normal() as f32)
        .collect();
    v.extend((0..dim * sh.lambdas_per_dim()).map(|_| rng.range(-2.0, 2.0) as f32));
    v
}

pub(crate) fn rand_spline(rng: &mut Rng, dim: usize, sh: SplineShape) -> Spline<'static> {
    Spline::new(dim, sh, leak(&spline_params(rng, dim, &sh))).expect("spline")
}

/// A dense network with weights ~ N(0, 0.7²/fan_in) and biases ~ N(0, 0.3²): its outputs have
/// std ≲ 1 for inputs in the box (as the golden README recommends), so the splines it
/// parameterizes are far from the identity but not degenerate.
pub(crate) fn rand_nn(
    rng: &mut Rng,
    input: usize,
    hidden: &[usize],
    output: usize,
) -> DenseNN<'static> {
    let mut v = Vec::new();
    let mut prev = input;
    for &h in hidden.iter().chain(std::iter::once(&output)) {
        let s = 0.7 / (prev as f64).sqrt();
        v.extend((0..prev * h).map(|_| (rng.normal() * s) as f32));
        v.extend((0..h).map(|_| (rng.normal() * 0.3) as f32));
        prev = h;
    }
    assert_eq!(v.len(), dense_param_count(input, hidden, output));
    DenseNN::new(input, hidden, output, leak(&v)).expect("dense nn")
}

pub(crate) fn rand_coupling(
    rng: &mut Rng,
    dim: usize,
    split: usize,
    hidden: &[usize],
    lower: SplineShape,
    upper: SplineShape,
    context: usize,
) -> SplineCoupling<'static> {
    let low = rand_spline(rng, split, lower);
    let up = dim - split;
    let nn = rand_nn(rng, split + context, hidden, up * upper.params_per_dim());
    SplineCoupling::new(low, up, upper, nn, context).expect("coupling")
}

pub(crate) fn rand_cond_spline(
    rng: &mut Rng,
    dim: usize,
    context: usize,
    hidden: &[usize],
    sh: SplineShape,
) -> ConditionalSpline<'static> {
    let nn = rand_nn(rng, context, hidden, dim * sh.params_per_dim());
    ConditionalSpline::new(dim, sh, nn).expect("conditional spline")
}

// =============================================================================================
// The models under test, behind one object-safe interface per scalar type.
// =============================================================================================

/// The transforms of a model (forward, inverse, with and without `log|J|`) and, through
/// flow-core's [`Density`], its density and sampler.
pub(crate) trait Model<T: Fp> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error>;
    /// The separate (non-fused) call, where the API has one.
    fn fwd(&self, x: &[T]) -> Option<Result<Vec<T>, Error>>;
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error>;
    fn inv(&self, y: &[T]) -> Option<Result<Vec<T>, Error>>;
    fn log_prob(&self, x: &[T]) -> Result<T, Error>;
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error>;
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error>;
}

pub(crate) trait AnyModel: Model<f32> + Model<f64> + Send + Sync {}
impl<M: Model<f32> + Model<f64> + Send + Sync> AnyModel for M {}

pub(crate) fn arr<T: Copy, const D: usize>(x: &[T]) -> [T; D] {
    x.try_into().expect("point has the model's dimension")
}

pub(crate) struct FlowModel<const D: usize>(Flow<'static, D>);

impl<T: Fp, const D: usize> Model<T> for FlowModel<D> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error> {
        let (y, l) = self.0.forward_and_log_det(&arr::<T, D>(x))?;
        Ok((y.to_vec(), l))
    }
    fn fwd(&self, x: &[T]) -> Option<Result<Vec<T>, Error>> {
        Some(self.0.forward(&arr::<T, D>(x)).map(|y| y.to_vec()))
    }
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self.0.inverse_and_log_det(&arr::<T, D>(y))?;
        Ok((x.to_vec(), l))
    }
    fn inv(&self, y: &[T]) -> Option<Result<Vec<T>, Error>> {
        Some(self.0.inverse(&arr::<T, D>(y)).map(|x| x.to_vec()))
    }
    fn log_prob(&self, x: &[T]) -> Result<T, Error> {
        Density::log_prob(&self.0, &arr::<T, D>(x), &[])
    }
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error> {
        Ok(Density::sample::<T, _>(&self.0, rng, &[])?.to_vec())
    }
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self.0.sample_with_log_prob::<T, _>(rng)?;
        Ok((x.to_vec(), l))
    }
}

/// A `ConditionalFlow` with a fixed context (f32 values, so the f64 and f32 models see the
/// same context).
pub(crate) struct CondModel<const D: usize, const C: usize>(
    ConditionalFlow<'static, D, C>,
    [f64; C],
);

impl<const D: usize, const C: usize> CondModel<D, C> {
    pub(crate) fn ctx<T: Fp>(&self) -> [T; C] {
        std::array::from_fn(|i| T::from_f64(self.1[i]))
    }
}

impl<T: Fp, const D: usize, const C: usize> Model<T> for CondModel<D, C> {
    fn fwd_ld(&self, x: &[T]) -> Result<(Vec<T>, T), Error> {
        let c = self.ctx::<T>();
        let (y, l) = self.0.condition(&c).forward_and_log_det(&arr::<T, D>(x))?;
        Ok((y.to_vec(), l))
    }
    fn fwd(&self, _: &[T]) -> Option<Result<Vec<T>, Error>> {
        None // `Conditioned` has only the fused calls.
    }
    fn inv_ld(&self, y: &[T]) -> Result<(Vec<T>, T), Error> {
        let c = self.ctx::<T>();
        let (x, l) = self.0.condition(&c).inverse_and_log_det(&arr::<T, D>(y))?;
        Ok((x.to_vec(), l))
    }
    fn inv(&self, _: &[T]) -> Option<Result<Vec<T>, Error>> {
        None
    }
    fn log_prob(&self, x: &[T]) -> Result<T, Error> {
        let c = self.ctx::<T>();
        let a = Density::log_prob(&self.0, &arr::<T, D>(x), &c);
        // The two entry points must agree bit for bit.
        let b = self.0.condition(&c).log_prob(&arr::<T, D>(x));
        match (a, b) {
            (Ok(u), Ok(v)) if u.bits() != v.bits() => Err(Error::Numerical),
            _ => a,
        }
    }
    fn sample(&self, rng: &mut Pcg32) -> Result<Vec<T>, Error> {
        Ok(Density::sample(&self.0, rng, &self.ctx::<T>())?.to_vec())
    }
    fn sample_lp(&self, rng: &mut Pcg32) -> Result<(Vec<T>, T), Error> {
        let (x, l) = self
            .0
            .condition(&self.ctx::<T>())
            .sample_with_log_prob(rng)?;
        Ok((x.to_vec(), l))
    }
}

pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) dim: usize,
    pub(crate) layers: Vec<Layer<'static>>,
    /// The fixed context (f32-exact values), empty for unconditional cases.
    pub(crate) ctx: Vec<f64>,
    pub(crate) model: Box<dyn AnyModel>,
    /// Element-wise cases: the direction of monotonicity per dimension (+1 or -1).
    pub(crate) monotone: Option<Vec<f64>>,
    /// A single coupling: each output coordinate is increasing in its own input coordinate.
    pub(crate) triangular: bool,
    /// Contains `Exp` (always as the last layer): outputs may overflow, the inverse has a
    /// restricted support.
    pub(crate) has_exp: bool,
}

impl Case {
    pub(crate) fn ctx_t<T: Fp>(&self) -> Vec<T> {
        self.ctx.iter().map(|&c| T::from_f64(c)).collect()
    }
    /// The largest spline bound in the case (3 when there is none).
    pub(crate) fn bmax(&self) -> f64 {
        let mut b: f64 = 0.0;
        for l in &self.layers {
            match l {
                Layer::Spline(s) => b = b.max(f64::from(s.shape().bound())),
                Layer::Coupling(c) => {
                    b = b
                        .max(f64::from(c.lower().shape().bound()))
                        .max(f64::from(c.upper_shape().bound()))
                }
                Layer::ConditionalSpline(s) => b = b.max(f64::from(s.shape().bound())),
                _ => {}
            }
        }
        if b == 0.0 {
            3.0
        } else {
            b
        }
    }
}

pub(crate) fn flow_case(
    name: &str,
    layers: Vec<Layer<'static>>,
    monotone: Option<Vec<f64>>,
) -> Case {
    let dim = layers[0].dim();
    let model: Box<dyn AnyModel> = match dim {
        1 => Box::new(FlowModel::<1>(Flow::new(&layers).expect(name))),
        2 => Box::new(FlowModel::<2>(Flow::new(&layers).expect(name))),
        3 => Box::new(FlowModel::<3>(Flow::new(&layers).expect(name))),
        4 => Box::new(FlowModel::<4>(Flow::new(&layers).expect(name))),
        5 => Box::new(FlowModel::<5>(Flow::new(&layers).expect(name))),
        _ => panic!("dimension {dim} not wired up"),
    };
    finish_case(name, layers, Vec::new(), model, monotone)
}

pub(crate) fn cond_case(
    name: &str,
    layers: Vec<Layer<'static>>,
    ctx: Vec<f32>,
    monotone: Option<Vec<f64>>,
) -> Case {
    let dim = layers[0].dim();
    let c64: Vec<f64> = ctx.iter().map(|&c| f64::from(c)).collect();
    macro_rules! wire {
        ($(($d:literal, $c:literal)),*) => {
            match (dim, ctx.len()) {
                $(($d, $c) => Box::new(CondModel::<$d, $c>(
                    ConditionalFlow::new(&layers).expect(name),
                    arr::<f64, $c>(&c64),
                )) as Box<dyn AnyModel>,)*
                _ => panic!("(dim, context) = ({dim}, {}) not wired up", ctx.len()),
            }
        };
    }
    let model = wire!(
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 1),
        (3, 2),
        (3, 3),
        (4, 2)
    );
    finish_case(name, layers, c64, model, monotone)
}

pub(crate) fn finish_case(
    name: &str,
    layers: Vec<Layer<'static>>,
    ctx: Vec<f64>,
    model: Box<dyn AnyModel>,
    monotone: Option<Vec<f64>>,
) -> Case {
    let has_exp = layers.iter().any(|l| matches!(l, Layer::Exp(_)));
    if has_exp {
        assert!(
            matches!(layers.last(), Some(Layer::Exp(_))),
            "Exp must be last"
        );
    }
    let triangular = layers.len() == 1 && matches!(layers[0], Layer::Coupling(_));
    Case {
        name: name.to_string(),
        dim: layers[0].dim(),
        layers,
        ctx,
        model,
        monotone,
        triangular,
        has_exp,
    }
}
