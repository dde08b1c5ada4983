//! The conditional flows: [`ConditionalFlow`] (with [`Conditioned`], a flow with its context
//! fixed) and [`JointFlow`], the tutorial's `p(x₁)·p(x₂ | x₁)`; their layers may be
//! [`ConditionalSpline`]s and conditional couplings.

use crate::chain::{unseal, Chain, Layer};
pub use crate::conditional_spline::ConditionalSpline;
use crate::density::Density;
use crate::error::{Error, LayerError};
use crate::real::Real;
use crate::spline::Direction;
use crate::weights::Weights;
use crate::workspace::Workspace;
use rand_core::RngCore;

/// A conditional normalizing flow `p(x | c)` on `R^D` with a context `c ∈ R^C`: layers may be
/// conditional (context size `C`) or not. [`condition`](Self::condition) fixes a context and
/// gives a distribution to score and sample, as Pyro's `ConditionalTransformedDistribution`.
#[derive(Clone, Debug)]
pub struct ConditionalFlow<
    'a,
    const D: usize,
    const C: usize,
    const L: usize = 8,
    const H: usize = 64,
    const K: usize = 32,
> {
    chain: Chain<'a, L>,
}

impl<'a, const D: usize, const C: usize, const L: usize, const H: usize, const K: usize>
    ConditionalFlow<'a, D, C, L, H, K>
{
    /// A conditional flow through `layers` in forward order.
    pub fn new(layers: &[Layer<'a>]) -> Result<Self, Error> {
        Self::from_layers(layers.iter().map(|l| Ok(*l)))
    }

    /// As [`new`](Self::new), from fallible layers.
    pub fn from_layers(
        layers: impl IntoIterator<Item = Result<Layer<'a>, Error>>,
    ) -> Result<Self, Error> {
        Ok(Self::of(Chain::from_layers(layers, D, C, H, K)?))
    }

    /// The flow of `chain`, built for `D` dimensions, context size `C` and the capacities
    /// `H`, `K` ([`from_layers`](Self::from_layers), or the model loader).
    pub(crate) fn of(chain: Chain<'a, L>) -> Self {
        const {
            assert!(
                D >= 1 && C >= 1 && L >= 1 && K >= 2,
                "need D, C, L >= 1, K >= 2"
            )
        };
        Self { chain }
    }

    /// The layers, in forward order.
    pub fn layers(&self) -> &[Layer<'a>] {
        self.chain.layers()
    }

    /// Number of `f32` entries of the flow's knot tables (see [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    pub fn table_len(&self) -> usize {
        self.chain.table_len()
    }

    /// Writes the flow's knot tables (see [`Flow::write_tables`]).
    ///
    /// [`Flow::write_tables`]: crate::Flow::write_tables
    pub fn write_tables(&self, out: &mut [u8]) -> Option<usize> {
        self.chain.write_all_tables::<K>(out)
    }

    /// Uses precomputed knot tables (see [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    // Not inlined: its scratch and the recomputation stay out of the caller's frame.
    #[inline(never)]
    pub fn set_tables(&mut self, tables: &'a [u8]) -> Result<(), Error> {
        self.chain.set_table_bytes::<K>(tables)
    }

    /// Uses sealed knot tables, checked without recomputing them (see
    /// [`Flow::set_sealed_tables`]).
    ///
    /// [`Flow::set_sealed_tables`]: crate::Flow::set_sealed_tables
    pub fn set_sealed_tables(
        &mut self,
        sealed: &'a [u8],
        model_checksum: u32,
    ) -> Result<(), Error> {
        self.chain
            .set_well_formed_tables(unseal(sealed, model_checksum)?)
    }

    /// The distribution `p(· | context)`.
    pub fn condition<T: Real>(&self, context: &[T; C]) -> Conditioned<'_, 'a, T, D, C, L, H, K> {
        Conditioned {
            flow: self,
            context: *context,
        }
    }

    /// `log p(x | context)`.
    pub fn log_prob<T: Real>(&self, x: &[T; D], context: &[T; C]) -> Result<T, Error> {
        self.condition(context).log_prob(x)
    }

    /// [`log_prob`](Self::log_prob) of many points (feature `wide`, for host tools): `out[i]`
    /// becomes `self.log_prob(&xs[i], &contexts[i])` in `f32`, the same bits and the same
    /// errors, evaluated in blocks as [`Flow::log_prob_many`](crate::Flow::log_prob_many) does. `contexts` and `out` must
    /// be as long as `xs` ([`Error::DimensionMismatch`] otherwise, and nothing written).
    #[cfg(feature = "wide")]
    #[inline(always)] // a caller may compile it for a wider instruction set
    pub fn log_prob_many(
        &self,
        xs: &[[f32; D]],
        contexts: &[[f32; C]],
        out: &mut [Result<f32, Error>],
    ) -> Result<(), Error> {
        if contexts.len() != xs.len() {
            return Err(Error::DimensionMismatch {
                expected: xs.len(),
                found: contexts.len(),
            });
        }
        crate::block::log_prob_many::<D, C, L, H, K>(&self.chain, xs, contexts, out)
    }
}

/// A [`ConditionalFlow`] with its context fixed.
#[derive(Clone, Debug)]
pub struct Conditioned<
    'f,
    'a,
    T,
    const D: usize,
    const C: usize,
    const L: usize,
    const H: usize,
    const K: usize,
> {
    flow: &'f ConditionalFlow<'a, D, C, L, H, K>,
    context: [T; C],
}

impl<T: Real, const D: usize, const C: usize, const L: usize, const H: usize, const K: usize>
    Conditioned<'_, '_, T, D, C, L, H, K>
{
    /// `log p(x | context)`.
    pub fn log_prob(&self, x: &[T; D]) -> Result<T, Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        self.flow
            .chain
            .log_prob(&mut v, &self.context, &mut lds, &mut ws.scratch())
    }

    /// One sample `x ~ p(· | context)`.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> Result<[T; D], Error> {
        Ok(self.sample_impl(rng, false)?.0)
    }

    /// One sample with its `log p(x | context)`.
    pub fn sample_with_log_prob<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<([T; D], T), Error> {
        self.sample_impl(rng, true)
    }

    fn sample_impl<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        lp: bool,
    ) -> Result<([T; D], T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = ([T::ZERO; D], [T::ZERO; D]);
        let l =
            self.flow
                .chain
                .sample(rng, &mut v, &self.context, &mut lds, lp, &mut ws.scratch())?;
        Ok((v, l))
    }

    /// `x = f(z; context)` and `log|det ∂x/∂z|`.
    pub fn forward_and_log_det(&self, z: &[T; D]) -> Result<([T; D], T), Error> {
        self.transform(z, Direction::Forward)
    }

    /// `z = f⁻¹(x; context)` and `log|det ∂z/∂x|`.
    pub fn inverse_and_log_det(&self, x: &[T; D]) -> Result<([T; D], T), Error> {
        self.transform(x, Direction::Inverse)
    }

    fn transform(&self, x: &[T; D], dir: Direction) -> Result<([T; D], T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        let ld =
            self.flow
                .chain
                .transform(&mut v, &self.context, &mut lds, dir, &mut ws.scratch())?;
        Ok((v, ld))
    }
}

/// The joint `p(x) = p(x₁) · p(x₂ | x₁)` of Pyro's tutorial: a flow for the first `d₁`
/// coordinates and a conditional flow for the other `D - d₁` with `x₁` as its context, scored
/// and sampled as one distribution on `R^D`.
#[derive(Clone, Debug)]
pub struct JointFlow<
    'a,
    const D: usize,
    const L: usize = 8,
    const H: usize = 64,
    const K: usize = 32,
> {
    pub(crate) marginal: Chain<'a, L>,
    pub(crate) conditional: Chain<'a, L>,
}

impl<'a, const D: usize, const L: usize, const H: usize, const K: usize> JointFlow<'a, D, L, H, K> {
    /// `marginal` acts on `x₁` (its layers' dimension is `d₁`), `conditional` on `x₂` with
    /// context `x₁`. `d₁ + d₂` must equal `D`.
    pub fn new(marginal: &[Layer<'a>], conditional: &[Layer<'a>]) -> Result<Self, Error> {
        let d1 = marginal.first().map_or(0, Layer::dim);
        Self::from_layers(
            d1,
            marginal.iter().map(|l| Ok(*l)),
            conditional.iter().map(|l| Ok(*l)),
        )
    }

    /// As [`new`](Self::new), from fallible layers, with `d₁` given.
    pub fn from_layers(
        d1: usize,
        marginal: impl IntoIterator<Item = Result<Layer<'a>, Error>>,
        conditional: impl IntoIterator<Item = Result<Layer<'a>, Error>>,
    ) -> Result<Self, Error> {
        let d2 = Self::upper_dim(d1)?;
        Ok(Self {
            marginal: Chain::from_layers(marginal, d1, 0, H, K)?,
            conditional: Chain::from_layers(conditional, d2, d1, H, K)?,
        })
    }

    /// `D - d₁`, the size of `x₂`, for a `d₁` in `1..D` (else `DimensionMismatch`): the
    /// first check of [`from_layers`](Self::from_layers) and of the model loader.
    pub(crate) fn upper_dim(d1: usize) -> Result<usize, Error> {
        const { assert!(D >= 2 && L >= 1 && K >= 2, "need D >= 2, L >= 1, K >= 2") };
        if d1 == 0 || d1 >= D {
            return Err(Error::DimensionMismatch {
                expected: D,
                found: d1,
            });
        }
        Ok(D - d1)
    }

    /// The marginal's layers `p(x₁)`.
    pub fn marginal_layers(&self) -> &[Layer<'a>] {
        self.marginal.layers()
    }

    /// The conditional's layers `p(x₂ | x₁)`.
    pub fn conditional_layers(&self) -> &[Layer<'a>] {
        self.conditional.layers()
    }

    /// Number of `f32` entries of the flow's knot tables: the marginal's, then the
    /// conditional's (see [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    pub fn table_len(&self) -> usize {
        self.marginal
            .table_len()
            .saturating_add(self.conditional.table_len())
    }

    /// Writes the flow's knot tables (see [`Flow::write_tables`]).
    ///
    /// [`Flow::write_tables`]: crate::Flow::write_tables
    pub fn write_tables(&self, out: &mut [u8]) -> Option<usize> {
        let (mut xs, mut ys) = ([0f32; K], [0f32; K]);
        let mut at = 0;
        (self.marginal.write_tables(out, &mut at, (&mut xs, &mut ys))
            && self
                .conditional
                .write_tables(out, &mut at, (&mut xs, &mut ys)))
        .then_some(at)
    }

    /// Uses precomputed knot tables, the marginal's then the conditional's (see
    /// [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    // Not inlined: its scratch and the recomputation stay out of the caller's frame.
    #[inline(never)]
    pub fn set_tables(&mut self, tables: &'a [u8]) -> Result<(), Error> {
        let t = Weights::new(tables).ok_or(Error::InvalidLayer(LayerError::Tables))?;
        let (mut xs, mut ys) = ([0f32; K], [0f32; K]);
        self.set_split_tables(t, |c, t| c.set_tables(t, (&mut xs, &mut ys)))
    }

    /// Uses sealed knot tables, the marginal's then the conditional's, checked without
    /// recomputing them (see [`Flow::set_sealed_tables`]).
    ///
    /// [`Flow::set_sealed_tables`]: crate::Flow::set_sealed_tables
    pub fn set_sealed_tables(
        &mut self,
        sealed: &'a [u8],
        model_checksum: u32,
    ) -> Result<(), Error> {
        let t = unseal(sealed, model_checksum)?;
        self.set_split_tables(t, Chain::set_well_formed_tables)
    }

    /// Hands the marginal's part of `tables` (its [`table_len`](Chain::table_len) entries) and
    /// the conditional's (the rest) to `set`, in that order; on a failure the marginal keeps
    /// the tables it had. Both setters leave a chain as it was when they fail.
    fn set_split_tables(
        &mut self,
        tables: Weights<'a>,
        mut set: impl FnMut(&mut Chain<'a, L>, Weights<'a>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (head, tail) = tables
            .split(self.marginal.table_len())
            .ok_or(Error::InvalidLayer(LayerError::Tables))?;
        let marginal = self.marginal.tables;
        set(&mut self.marginal, head)?;
        set(&mut self.conditional, tail).inspect_err(|_| self.marginal.tables = marginal)
    }

    /// `d₁`, the size of `x₁`.
    pub fn split(&self) -> usize {
        self.marginal.dim()
    }

    /// `log p(x₁) + log p(x₂ | x₁)`.
    pub fn log_prob<T: Real>(&self, x: &[T; D]) -> Result<T, Error> {
        let (lp1, lp2) = self.log_prob_parts(x)?;
        Ok(lp1 + lp2)
    }

    /// `(log p(x₁), log p(x₂ | x₁))`, the two terms of [`log_prob`](Self::log_prob): what a
    /// windowed model's [`WindowScorer`](crate::stream::WindowScorer) reuses.
    pub fn log_prob_parts<T: Real>(&self, x: &[T; D]) -> Result<(T, T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let mut s = ws.scratch();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        let d1 = self.split();
        let x1 = x.get(..d1).ok_or(Error::Numerical)?;
        let (v1, v2) = v.split_at_mut_checked(d1).ok_or(Error::Numerical)?;
        let (l1, l2) = lds.split_at_mut_checked(d1).ok_or(Error::Numerical)?;
        let lp2 = self.conditional.log_prob(v2, x1, l2, &mut s)?;
        let lp1 = self.marginal.log_prob(v1, &[], l1, &mut s)?;
        Ok((lp1, lp2))
    }

    /// One joint sample: `x₁ ~ p(x₁)`, then `x₂ ~ p(x₂ | x₁)`.
    pub fn sample<T: Real, R: RngCore + ?Sized>(&self, rng: &mut R) -> Result<[T; D], Error> {
        Ok(self.sample_impl(rng, false)?.0)
    }

    /// One joint sample with its `log p(x)`.
    pub fn sample_with_log_prob<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<([T; D], T), Error> {
        self.sample_impl(rng, true)
    }

    fn sample_impl<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        want: bool,
    ) -> Result<([T; D], T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let mut s = ws.scratch();
        let (mut v, mut lds) = ([T::ZERO; D], [T::ZERO; D]);
        let d1 = self.split();
        let (v1, v2) = v.split_at_mut_checked(d1).ok_or(Error::Numerical)?;
        let (l1, l2) = lds.split_at_mut_checked(d1).ok_or(Error::Numerical)?;
        let lp1 = self.marginal.sample(rng, v1, &[], l1, want, &mut s)?;
        let lp2 = self.conditional.sample(rng, v2, v1, l2, want, &mut s)?;
        Ok((v, lp1 + lp2))
    }
}

impl<const D: usize, const C: usize, const L: usize, const H: usize, const K: usize> Density<D, C>
    for ConditionalFlow<'_, D, C, L, H, K>
{
    #[inline]
    fn log_prob<T: Real>(&self, x: &[T; D], context: &[T; C]) -> Result<T, Error> {
        ConditionalFlow::log_prob(self, x, context)
    }

    #[inline]
    fn sample<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        context: &[T; C],
    ) -> Result<[T; D], Error> {
        self.condition(context).sample(rng)
    }
}

impl<const D: usize, const L: usize, const H: usize, const K: usize> Density<D, 0>
    for JointFlow<'_, D, L, H, K>
{
    #[inline]
    fn log_prob<T: Real>(&self, x: &[T; D], _: &[T; 0]) -> Result<T, Error> {
        JointFlow::log_prob(self, x)
    }

    #[inline]
    fn sample<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        _: &[T; 0],
    ) -> Result<[T; D], Error> {
        JointFlow::sample(self, rng)
    }
}
