//! [`Layer`] and [`Flow`]: a standard Normal base pushed through an ordered list of layers.
//!
//! As in Pyro's `TransformedDistribution`, the list order is the forward order: a sample is
//! `x = f_L(… f_1(z))`, and the density is
//!
//! ```text
//! log p(x) = log N(z; 0, I) + Σ_l log|det ∂f_l⁻¹/∂y|,   z = f_1⁻¹(… f_L⁻¹(x))
//! ```

pub use crate::chain::{table_seal, write_tables, Layer};
use crate::chain::{unseal, Chain};
use crate::density::Density;
use crate::error::Error;
use crate::real::Real;
use crate::spline::Direction;
use crate::workspace::Workspace;
use rand_core::RngCore;

/// A normalizing flow on `R^D`: a standard Normal base and up to `L` layers.
///
/// The capacities are compile-time: `L` layers, hidden layers up to `H` wide, splines of up to
/// `K` bins. Scratch for one call is `2H + 2K` scalars on the stack plus a few `[T; D]`.
///
/// Inputs must be finite ([`Error::NonFiniteInput`] otherwise). Values far outside the spline
/// box pass through the identity tails; a density too small for `T` is `-inf`, and a point
/// outside the support of an [`Exp`](crate::Exp) layer has `log_prob = -inf`. A NaN arising inside (e.g.
/// a hypernetwork overflowing on a finite but huge input) is [`Error::Numerical`].
#[derive(Clone, Debug)]
pub struct Flow<'a, const D: usize, const L: usize = 8, const H: usize = 64, const K: usize = 32> {
    chain: Chain<'a, L>,
}

impl<'a, const D: usize, const L: usize, const H: usize, const K: usize> Flow<'a, D, L, H, K> {
    /// A flow through `layers` in forward order. Each layer must act on `D` dimensions, need no
    /// context, and fit the capacities.
    pub fn new(layers: &[Layer<'a>]) -> Result<Self, Error> {
        Self::from_layers(layers.iter().map(|l| Ok(*l)))
    }

    /// As [`new`](Self::new), from fallible layers (as [`Model::layers`](crate::Model::layers)
    /// yields them).
    pub fn from_layers(
        layers: impl IntoIterator<Item = Result<Layer<'a>, Error>>,
    ) -> Result<Self, Error> {
        Ok(Self::of(Chain::from_layers(layers, D, 0, H, K)?))
    }

    /// The flow of `chain`, built for `D` dimensions, no context and the capacities `H`, `K`
    /// ([`from_layers`](Self::from_layers), or the model loader).
    pub(crate) fn of(chain: Chain<'a, L>) -> Self {
        const { assert!(D >= 1 && L >= 1 && K >= 2, "need D >= 1, L >= 1, K >= 2") };
        Self { chain }
    }

    /// The layers, in forward order.
    pub fn layers(&self) -> &[Layer<'a>] {
        self.chain.layers()
    }

    /// Number of `f32` entries of the flow's precomputed knot tables (see
    /// [`set_tables`](Self::set_tables)); 0 when no layer has a fixed-parameter spline.
    pub fn table_len(&self) -> usize {
        self.chain.table_len()
    }

    /// Writes the flow's knot tables into `out` as little-endian `f32`; returns the number of
    /// bytes written (`4 × table_len()`), or `None` when `out` is too short.
    pub fn write_tables(&self, out: &mut [u8]) -> Option<usize> {
        self.chain.write_all_tables::<K>(out)
    }

    /// From now on, reads the knots, knot derivatives and `λ`s of the flow's fixed-parameter
    /// splines from `tables` instead of computing them on every call.
    ///
    /// An element-wise [`Spline`](crate::Spline) layer and a coupling's lower spline have parameters that do
    /// not depend on the input, so everything but the evaluation of the bin is the same on
    /// every call: per dimension, the interior knots `x_1 … x_{K-1}` and `y_1 … y_{K-1}` (two
    /// softmaxes, `2K` exponentials), the interior derivatives `δ_1 … δ_{K-1}` (softplus) and,
    /// for the linear order, `λ_0 … λ_{K-1}` (sigmoid). `tables` holds them as little-endian
    /// `f32`, `4K - 3` (linear) or `3K - 3` (quadratic) per dimension, layer by layer in
    /// forward order: exactly what [`write_tables`](Self::write_tables) writes, e.g. on the
    /// host at build time, so that they can stay in flash. They are read in place.
    ///
    /// Every entry is recomputed here and compared bit for bit (a one-time cost of the
    /// knots' computation per spline dimension), so results are exactly those without
    /// tables; tables of another flow (or of another `exp`, e.g. the `micromath` feature)
    /// are [`LayerError::Tables`](crate::LayerError::Tables), as is a wrong length (the flow
    /// is then left as it was). Only `f32` evaluation uses them; `f64` computes as before.
    // Not inlined: its scratch and the recomputation stay out of the caller's frame.
    #[inline(never)]
    pub fn set_tables(&mut self, tables: &'a [u8]) -> Result<(), Error> {
        self.chain.set_table_bytes::<K>(tables)
    }

    /// Like [`set_tables`](Self::set_tables), but checks the tables without recomputing
    /// them: `sealed` is the tables followed by their [`table_seal`] for the model file whose
    /// checksum is `model_checksum` ([`Model::checksum`](crate::Model::checksum)), 4 bytes
    /// little endian.
    ///
    /// The seal must match (the tables' CRC-32 XOR the model's checksum: any corruption of a
    /// few bytes, and tables sealed for another model file, fail it), the length must be
    /// the flow's, and every table must be well formed: on each axis the interior knots
    /// increase strictly inside `(-B, B)`, the derivatives are positive and finite, the `λ`s
    /// lie in `(0, 1)`, so that every bin is a monotone rational function. Anything else is
    /// [`LayerError::Tables`](crate::LayerError::Tables) and leaves the flow as it was.
    ///
    /// Where [`set_tables`](Self::set_tables) proves the tables are this flow's own, entry by
    /// entry, this trusts whoever sealed them as far as the model file's own CRC trusts its
    /// writer: tables written by [`write_tables`](Self::write_tables) and sealed for this
    /// model give exactly the results without tables. It exists for flash: the recomputation
    /// (the knots' computation for fixed splines: about 0.9 KB more flash on the tutorial
    /// firmware) is not linked.
    pub fn set_sealed_tables(
        &mut self,
        sealed: &'a [u8],
        model_checksum: u32,
    ) -> Result<(), Error> {
        self.chain
            .set_well_formed_tables(unseal(sealed, model_checksum)?)
    }

    /// `log p(x)`.
    pub fn log_prob<T: Real>(&self, x: &[T; D]) -> Result<T, Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        self.chain
            .log_prob(&mut v, &[], &mut lds, &mut ws.scratch())
    }

    /// [`log_prob`](Self::log_prob) of many points (feature `wide`, for host tools): `out[i]`
    /// becomes `self.log_prob(&xs[i])` in `f32`, the same bits and the same errors. The
    /// points are evaluated in blocks of sixteen whose arithmetic vectorizes across the points
    /// (spline couplings with their knot tables set; other layers point by point). Scratch of
    /// about `(2H + 4K) × 64` bytes is on the stack. `out` must be as long as `xs`
    /// ([`Error::DimensionMismatch`] otherwise, and nothing written).
    #[cfg(feature = "wide")]
    #[inline(always)] // a caller may compile it for a wider instruction set
    pub fn log_prob_many(
        &self,
        xs: &[[f32; D]],
        out: &mut [Result<f32, Error>],
    ) -> Result<(), Error> {
        crate::block::log_prob_many::<D, 0, L, H, K>(&self.chain, xs, &[], out)
    }

    /// One sample `x`.
    pub fn sample<T: Real, R: RngCore + ?Sized>(&self, rng: &mut R) -> Result<[T; D], Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = ([T::ZERO; D], [T::ZERO; D]);
        self.chain
            .sample(rng, &mut v, &[], &mut lds, false, &mut ws.scratch())?;
        Ok(v)
    }

    /// One sample with its `log p(x)`, computed on the way forward (no inverse needed).
    pub fn sample_with_log_prob<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<([T; D], T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = ([T::ZERO; D], [T::ZERO; D]);
        let lp = self
            .chain
            .sample(rng, &mut v, &[], &mut lds, true, &mut ws.scratch())?;
        Ok((v, lp))
    }

    /// `x = f(z)` and `log|det ∂x/∂z|`.
    pub fn forward_and_log_det<T: Real>(&self, z: &[T; D]) -> Result<([T; D], T), Error> {
        self.transform(z, Direction::Forward)
    }

    /// `z = f⁻¹(x)` and `log|det ∂z/∂x|`.
    pub fn inverse_and_log_det<T: Real>(&self, x: &[T; D]) -> Result<([T; D], T), Error> {
        self.transform(x, Direction::Inverse)
    }

    /// `log|det ∂x/∂z|` at `z` (Pyro's `log_abs_det_jacobian`).
    pub fn log_abs_det_jacobian<T: Real>(&self, z: &[T; D]) -> Result<T, Error> {
        Ok(self.forward_and_log_det(z)?.1)
    }

    /// `x = f(z)`.
    pub fn forward<T: Real>(&self, z: &[T; D]) -> Result<[T; D], Error> {
        Ok(self.forward_and_log_det(z)?.0)
    }

    /// `z = f⁻¹(x)`.
    pub fn inverse<T: Real>(&self, x: &[T; D]) -> Result<[T; D], Error> {
        Ok(self.inverse_and_log_det(x)?.0)
    }

    fn transform<T: Real>(&self, x: &[T; D], dir: Direction) -> Result<([T; D], T), Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        let ld = self
            .chain
            .transform(&mut v, &[], &mut lds, dir, &mut ws.scratch())?;
        Ok((v, ld))
    }
}

impl<const D: usize, const L: usize, const H: usize, const K: usize> Density<D, 0>
    for Flow<'_, D, L, H, K>
{
    #[inline]
    fn log_prob<T: Real>(&self, x: &[T; D], _: &[T; 0]) -> Result<T, Error> {
        Flow::log_prob(self, x)
    }

    #[inline]
    fn sample<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        _: &[T; 0],
    ) -> Result<[T; D], Error> {
        Flow::sample(self, rng)
    }
}
