//! [`Layer`] and [`Flow`]: a standard Normal base pushed through an ordered list of layers.
//!
//! As in Pyro's `TransformedDistribution`, the list order is the forward order: a sample is
//! `x = f_L(… f_1(z))`, and the density is
//!
//! ```text
//! log p(x) = log N(z; 0, I) + Σ_l log|det ∂f_l⁻¹/∂y|,   z = f_1⁻¹(… f_L⁻¹(x))
//! ```

use crate::affine::{Affine, Exp};
use crate::base::StdNormal;
use crate::conditional::ConditionalSpline;
use crate::coupling::SplineCoupling;
use crate::error::{check_capacity, Capacity, Error, LayerError};
use crate::permute::Permute;
use crate::real::Real;
use crate::spline::{Direction, Spline};
use crate::workspace::{Scratch, Workspace};
use rand_core::RngCore;

/// One layer of a flow. Every variant borrows its parameters.
///
/// Each variant is there only with its cargo feature (all in the default features, see the
/// crate docs): a build without, say, `affine` has no `Layer::Affine`, and its loader rejects
/// a model file with an affine layer as [`Error::Unsupported`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer<'a> {
    /// `y = loc + scale·x`.
    #[cfg(feature = "affine")]
    Affine(Affine<'a>),
    /// `y = e^x`.
    #[cfg(feature = "exp")]
    Exp(Exp),
    /// Learnable element-wise rational spline.
    #[cfg(feature = "spline")]
    Spline(Spline<'a>),
    /// Spline coupling (conditional when its context size is not 0).
    #[cfg(feature = "coupling")]
    Coupling(SplineCoupling<'a>),
    /// Reordering of the dimensions.
    #[cfg(feature = "permute")]
    Permute(Permute<'a>),
    /// Element-wise spline with parameters from the context.
    #[cfg(feature = "conditional-spline")]
    ConditionalSpline(ConditionalSpline<'a>),
    /// Never constructed: keeps the lifetime in a build without any layer kind that borrows.
    #[cfg(not(any(
        feature = "affine",
        feature = "spline",
        feature = "coupling",
        feature = "permute",
        feature = "conditional-spline"
    )))]
    #[doc(hidden)]
    __Lifetime(core::convert::Infallible, core::marker::PhantomData<&'a ()>),
}

// With some layer kinds left out, a `_` arm below may match nothing (or only the uninhabited
// `__Lifetime`): hence the `unreachable_patterns` allowances.
impl Layer<'_> {
    /// The dimension the layer acts on.
    pub fn dim(&self) -> usize {
        match self {
            #[cfg(feature = "affine")]
            Layer::Affine(l) => l.dim(),
            #[cfg(feature = "exp")]
            Layer::Exp(l) => l.dim(),
            #[cfg(feature = "spline")]
            Layer::Spline(l) => l.dim(),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.dim(),
            #[cfg(feature = "permute")]
            Layer::Permute(l) => l.dim(),
            #[cfg(feature = "conditional-spline")]
            Layer::ConditionalSpline(l) => l.dim(),
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }

    /// The context size it needs (0 for an unconditional layer).
    pub fn context_dim(&self) -> usize {
        match self {
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.context_dim(),
            #[cfg(feature = "conditional-spline")]
            Layer::ConditionalSpline(l) => l.context_dim(),
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }

    /// The widest hidden layer of its hypernetwork (0 if it has none).
    pub fn max_hidden(&self) -> usize {
        match self {
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.hypernet().max_hidden(),
            #[cfg(feature = "conditional-spline")]
            Layer::ConditionalSpline(l) => l.hypernet().max_hidden(),
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }

    /// The largest spline bin count in the layer (0 if it has no spline).
    pub fn bins(&self) -> usize {
        match self {
            #[cfg(feature = "spline")]
            Layer::Spline(l) => l.shape().bins(),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.lower().shape().bins().max(l.upper_shape().bins()),
            #[cfg(feature = "conditional-spline")]
            Layer::ConditionalSpline(l) => l.shape().bins(),
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }

    /// Applies the layer in place: forward gives `y` and `log|dy/dx|` per dimension in `lds`,
    /// inverse gives `x` and `log|dx/dy|`. Returns the sum of `lds`.
    ///
    /// `v` and `lds` must have the layer's dimension and `ctx` its context size.
    pub fn apply<T: Real, const H: usize, const K: usize>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        ws: &mut Workspace<T, H, K>,
    ) -> Result<T, Error> {
        if v.len() != self.dim() || lds.len() != self.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                found: v.len().min(lds.len()),
            });
        }
        self.apply_scratch(v, ctx, lds, dir, true, &mut ws.scratch())
    }

    #[allow(unused_variables)] // with some layer kinds left out
    pub(crate) fn apply_scratch<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
    ) -> Result<T, Error> {
        let inverse = dir == Direction::Inverse;
        match self {
            #[cfg(feature = "affine")]
            Layer::Affine(l) => Ok(l.apply(v, lds, inverse)),
            #[cfg(feature = "exp")]
            Layer::Exp(l) => l.apply(v, lds, inverse),
            #[cfg(feature = "spline")]
            Layer::Spline(l) => l.apply(v, lds, dir, want_log_det, s),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.apply(v, ctx, lds, dir, want_log_det, s),
            #[cfg(feature = "permute")]
            Layer::Permute(l) => {
                // `lds` doubles as the copy buffer; a permutation's log|J| is 0.
                l.apply(v, lds, inverse);
                for ld in lds.iter_mut() {
                    *ld = T::ZERO;
                }
                Ok(T::ZERO)
            }
            #[cfg(feature = "conditional-spline")]
            Layer::ConditionalSpline(l) => l.apply(v, ctx, lds, dir, want_log_det, s),
            #[allow(unreachable_patterns)]
            _ => Ok(T::ZERO),
        }
    }
}

/// An ordered list of layers on a `dim`-dimensional space with an optional context; the
/// common engine of [`Flow`], [`ConditionalFlow`](crate::ConditionalFlow) and
/// [`JointFlow`](crate::JointFlow).
#[derive(Clone, Debug)]
pub(crate) struct Chain<'a, const L: usize> {
    layers: heapless::Vec<Layer<'a>, L>,
    dim: usize,
    context: usize,
}

impl<'a, const L: usize> Chain<'a, L> {
    /// Checks that every layer has dimension `dim`, needs either no context or exactly
    /// `context`, and fits the capacities `H` (hidden width) and `K` (bins).
    pub(crate) fn from_layers(
        layers: impl IntoIterator<Item = Result<Layer<'a>, Error>>,
        dim: usize,
        context: usize,
        max_hidden: usize,
        max_bins: usize,
    ) -> Result<Self, Error> {
        let mut v = heapless::Vec::new();
        for (i, l) in layers.into_iter().enumerate() {
            let l = l?;
            if l.dim() != dim {
                return Err(Error::DimensionMismatch {
                    expected: dim,
                    found: l.dim(),
                });
            }
            if l.context_dim() != 0 && l.context_dim() != context {
                return Err(Error::InvalidLayer(LayerError::Context));
            }
            check_capacity(Capacity::Hidden, l.max_hidden(), max_hidden)?;
            check_capacity(Capacity::Bins, l.bins(), max_bins)?;
            if v.push(l).is_err() {
                return Err(Error::Capacity {
                    what: Capacity::Layers,
                    needed: i + 1,
                    limit: L,
                });
            }
        }
        Ok(Self {
            layers: v,
            dim,
            context,
        })
    }

    pub(crate) fn layers(&self) -> &[Layer<'a>] {
        &self.layers
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Runs every layer in `dir`'s order; returns the summed log-determinant.
    pub(crate) fn run<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
    ) -> Result<T, Error> {
        if v.len() != self.dim || lds.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                found: v.len().min(lds.len()),
            });
        }
        if ctx.len() != self.context {
            return Err(Error::DimensionMismatch {
                expected: self.context,
                found: ctx.len(),
            });
        }
        let mut total = T::ZERO;
        let n = self.layers.len();
        for i in 0..n {
            let idx = match dir {
                Direction::Forward => i,
                Direction::Inverse => n - 1 - i,
            };
            let Some(l) = self.layers.get(idx) else {
                continue;
            };
            // An unconditional layer in a conditional chain gets no context (a coupling with
            // context size 0 rejects a non-empty one).
            let c = if l.context_dim() == 0 { &[][..] } else { ctx };
            total += l.apply_scratch(v, c, lds, dir, want_log_det, &mut s.reborrow())?;
        }
        Ok(total)
    }

    /// `log p(x | ctx)` with `v` holding `x` (left holding `z`); `-inf` outside the support.
    pub(crate) fn log_prob<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        s: &mut Scratch<'_, T>,
    ) -> Result<T, Error> {
        if !v.iter().chain(ctx).all(|x| x.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let ld = match self.run(v, ctx, lds, Direction::Inverse, true, s) {
            Ok(ld) => ld,
            Err(Error::OutOfSupport) => return Ok(T::NEG_INFINITY),
            Err(e) => return Err(e),
        };
        finite_or_numerical(StdNormal::log_prob(v) + ld)
    }

    /// Draws `z ~ N(0, I)` into `v` and pushes it forward; returns `log p(x | ctx)` when
    /// `want_log_prob` (else 0).
    pub(crate) fn sample<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        want_log_prob: bool,
        s: &mut Scratch<'_, T>,
    ) -> Result<T, Error> {
        if !ctx.iter().all(|x| x.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        StdNormal::sample(rng, v);
        let base = StdNormal::log_prob(v);
        let ld = self.run(v, ctx, lds, Direction::Forward, want_log_prob, s)?;
        if v.iter().any(|x| x.is_nan()) {
            return Err(Error::Numerical);
        }
        if want_log_prob {
            finite_or_numerical(base - ld)
        } else {
            Ok(T::ZERO)
        }
    }

    /// Forward or inverse through all layers with input checks; returns the log-determinant.
    pub(crate) fn transform<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        s: &mut Scratch<'_, T>,
    ) -> Result<T, Error> {
        if !v.iter().chain(ctx).all(|x| x.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let ld = self.run(v, ctx, lds, dir, true, s)?;
        if v.iter().any(|x| x.is_nan()) {
            return Err(Error::Numerical);
        }
        finite_or_numerical(ld)
    }
}

/// `Err(Numerical)` for NaN; infinities pass (a density can underflow to `-inf`).
#[inline]
pub(crate) fn finite_or_numerical<T: Real>(v: T) -> Result<T, Error> {
    if v.is_nan() {
        Err(Error::Numerical)
    } else {
        Ok(v)
    }
}

/// A normalizing flow on `R^D`: a standard Normal base and up to `L` layers.
///
/// The capacities are compile-time: `L` layers, hidden layers up to `H` wide, splines of up to
/// `K` bins. Scratch for one call is `2H + 2K` scalars on the stack plus a few `[T; D]`.
///
/// Inputs must be finite ([`Error::NonFiniteInput`] otherwise). Values far outside the spline
/// box pass through the identity tails; a density too small for `T` is `-inf`, and a point
/// outside the support of an [`Exp`] layer has `log_prob = -inf`. A NaN arising inside (e.g.
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
        const { assert!(D >= 1 && L >= 1 && K >= 2, "need D >= 1, L >= 1, K >= 2") };
        Ok(Self {
            chain: Chain::from_layers(layers, D, 0, H, K)?,
        })
    }

    /// The layers, in forward order.
    pub fn layers(&self) -> &[Layer<'a>] {
        self.chain.layers()
    }

    /// `log p(x)`.
    pub fn log_prob<T: Real>(&self, x: &[T; D]) -> Result<T, Error> {
        let mut ws = Workspace::<T, H, K>::new();
        let (mut v, mut lds) = (*x, [T::ZERO; D]);
        self.chain
            .log_prob(&mut v, &[], &mut lds, &mut ws.scratch())
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
