//! The layer machinery the flows share: [`Layer`], the list of layers a flow runs
//! (`Chain`), and the layers' precomputed knot tables.

use crate::affine::{Affine, Exp};
use crate::base::StdNormal;
use crate::conditional_spline::ConditionalSpline;
use crate::coupling::SplineCoupling;
use crate::error::{check_capacity, Capacity, Error, LayerError};
use crate::permute::Permute;
use crate::real::Real;
use crate::spline::{Direction, Spline};
use crate::weights::Weights;
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

    /// Entries of its precomputed knot table: those of an element-wise [`Spline`] or of a
    /// coupling's lower spline, whose parameters do not depend on the input; 0 for every other
    /// layer (see [`Flow::set_tables`](crate::Flow::set_tables)).
    pub fn table_len(&self) -> usize {
        match self {
            #[cfg(feature = "spline")]
            Layer::Spline(l) => l.table_len(),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.lower().table_len(),
            #[allow(unreachable_patterns)] // with some layer kinds left out
            _ => 0,
        }
    }

    /// The spline whose knot table the layer has, if any.
    fn fixed_spline(&self) -> Option<Spline<'_>> {
        match self {
            #[cfg(feature = "spline")]
            Layer::Spline(l) => Some(*l),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => Some(*l.lower()),
            #[allow(unreachable_patterns)] // with some layer kinds left out
            _ => None,
        }
    }

    /// `true` when the next [`table_len`](Self::table_len) entries of `t` are a well-formed
    /// knot table for this layer (none for a layer without one; see
    /// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables)).
    fn table_well_formed(&self, t: &mut impl Iterator<Item = f32>) -> bool {
        self.fixed_spline().is_none_or(|l| l.table_well_formed(t))
    }

    /// Calls `f` with each entry of its knot table; `false` if `f` stopped it.
    fn table_entries(
        &self,
        scratch: (&mut [f32], &mut [f32]),
        f: &mut impl FnMut(f32) -> bool,
    ) -> bool {
        self.fixed_spline()
            .is_none_or(|l| l.table_entries(scratch, f))
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
        let s = &mut ws.scratch();
        self.apply_scratch(v, ctx, lds, dir, true, s, Weights::empty(), true)
    }

    /// [`apply`](Self::apply) on borrowed scratch, `v` and `lds` of the layer's dimension.
    /// With `check` false the caller guarantees what the layer would otherwise check: `ctx`
    /// has the layer's context size and the hidden buffers hold its widest hidden layer (a
    /// [`Chain`] checks both once, when it is built and on entry).
    #[allow(unused_variables)] // with some layer kinds left out
    #[allow(clippy::too_many_arguments)] // internal: a layer's inputs, scratch and table
    pub(crate) fn apply_scratch<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
        table: Weights<'_>,
        check: bool,
    ) -> Result<T, Error> {
        let inverse = dir == Direction::Inverse;
        match self {
            #[cfg(feature = "affine")]
            Layer::Affine(l) => Ok(l.apply(v, lds, inverse)),
            #[cfg(feature = "exp")]
            Layer::Exp(l) => l.apply(v, lds, inverse),
            #[cfg(feature = "spline")]
            Layer::Spline(l) => l.apply(v, lds, dir, want_log_det, s, table),
            #[cfg(feature = "coupling")]
            Layer::Coupling(l) => l.apply(v, ctx, lds, dir, want_log_det, s, table, check),
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
            Layer::ConditionalSpline(l) => l.apply(v, ctx, lds, dir, want_log_det, s, check),
            #[allow(unreachable_patterns)]
            _ => Ok(T::ZERO),
        }
    }
}

/// `Err` unless `l` has dimension `dim` and needs either no context or exactly `context`.
pub(crate) fn fits(l: &Layer<'_>, (dim, context): (usize, usize)) -> Result<(), Error> {
    if l.dim() != dim {
        return Err(Error::DimensionMismatch {
            expected: dim,
            found: l.dim(),
        });
    }
    if l.context_dim() != 0 && l.context_dim() != context {
        return Err(Error::InvalidLayer(LayerError::Context));
    }
    Ok(())
}

/// Appends `l` to a chain's `layers` after checking that it [`fits`] the chain's `dims`,
/// `(dim, context)`, and the capacities
/// `(max_hidden, max_bins)` and `layers`' own. One copy for every chain type: the layers are
/// a view of the chain's vector.
pub(crate) fn push_layer<'a>(
    layers: &mut heapless::vec::VecView<Layer<'a>>,
    l: &Layer<'a>,
    dims: (usize, usize),
    (max_hidden, max_bins): (usize, usize),
) -> Result<(), Error> {
    fits(l, dims)?;
    check_capacity(Capacity::Hidden, l.max_hidden(), max_hidden)?;
    check_capacity(Capacity::Bins, l.bins(), max_bins)?;
    let needed = layers.len() + 1;
    layers.push(*l).map_err(|_| Error::Capacity {
        what: Capacity::Layers,
        needed,
        limit: layers.capacity(),
    })
}

/// An ordered list of layers on a `dim`-dimensional space with an optional context; the
/// common engine of [`Flow`](crate::Flow), [`ConditionalFlow`](crate::ConditionalFlow) and
/// [`JointFlow`](crate::JointFlow).
#[derive(Clone, Debug)]
pub(crate) struct Chain<'a, const L: usize> {
    layers: heapless::Vec<Layer<'a>, L>,
    dim: usize,
    context: usize,
    /// The layers' knot tables, one after the other in layer order (empty: none).
    pub(crate) tables: Weights<'a>,
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
        for l in layers {
            push_layer(v.as_mut_view(), &l?, (dim, context), (max_hidden, max_bins))?;
        }
        Ok(Self::of(v, dim, context))
    }

    /// The chain of `layers`, which [`push_layer`] has checked for `dim` and `context`.
    pub(crate) fn of(layers: heapless::Vec<Layer<'a>, L>, dim: usize, context: usize) -> Self {
        Self {
            layers,
            dim,
            context,
            tables: Weights::empty(),
        }
    }

    /// Entries of all the layers' knot tables.
    pub(crate) fn table_len(&self) -> usize {
        self.layers
            .iter()
            .fold(0usize, |n, l| n.saturating_add(l.table_len()))
    }

    /// Writes the layers' knot tables as little-endian `f32` into `out` from byte `at` on,
    /// advancing `at`; `false` when `out` is too short.
    pub(crate) fn write_tables(
        &self,
        out: &mut [u8],
        at: &mut usize,
        scratch: (&mut [f32], &mut [f32]),
    ) -> bool {
        write_tables_at(self.layers.iter(), out, at, scratch)
    }

    /// Uses `tables` (all the layers' knot tables, as [`Layer::table_entries`]
    /// computes them, as little-endian `f32`) from now on, after checking every entry
    /// against its recomputed value, bit for bit. `(xs, ys)` is scratch of the largest bin
    /// count.
    pub(crate) fn set_tables(
        &mut self,
        tables: Weights<'a>,
        scratch: (&mut [f32], &mut [f32]),
    ) -> Result<(), Error> {
        if !tables_match(self.layers.iter(), tables, scratch) {
            return Err(Error::InvalidLayer(LayerError::Tables));
        }
        self.tables = tables;
        Ok(())
    }

    /// Uses `tables` from now on after checking, without recomputing them, that they have
    /// the flow's length and that each layer's part is a well-formed knot table (see
    /// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables)).
    pub(crate) fn set_well_formed_tables(&mut self, tables: Weights<'a>) -> Result<(), Error> {
        // The layers' tables follow one another: each takes its entries from the front.
        let mut rest = tables.iter();
        let fits = self.layers.iter().all(|l| l.table_well_formed(&mut rest));
        if !(fits && rest.next().is_none()) {
            return Err(Error::InvalidLayer(LayerError::Tables));
        }
        self.tables = tables;
        Ok(())
    }

    /// [`write_tables`](Self::write_tables) from byte 0 with scratch for `K` bins: the
    /// number of bytes written, or `None` when `out` is too short.
    pub(crate) fn write_all_tables<const K: usize>(&self, out: &mut [u8]) -> Option<usize> {
        let (mut xs, mut ys) = ([0f32; K], [0f32; K]);
        let mut at = 0;
        self.write_tables(out, &mut at, (&mut xs, &mut ys))
            .then_some(at)
    }

    /// [`set_tables`](Self::set_tables) on the bytes of all the layers' tables, with scratch
    /// for `K` bins.
    pub(crate) fn set_table_bytes<const K: usize>(
        &mut self,
        tables: &'a [u8],
    ) -> Result<(), Error> {
        let t = Weights::new(tables).ok_or(Error::InvalidLayer(LayerError::Tables))?;
        let (mut xs, mut ys) = ([0f32; K], [0f32; K]);
        self.set_tables(t, (&mut xs, &mut ys))
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
        // Where the current layer's table starts (tables are in layer order).
        let set_tables = !self.tables.is_empty();
        let mut at = match dir {
            Direction::Forward => 0,
            Direction::Inverse => self.tables.len(),
        };
        for i in 0..n {
            let idx = match dir {
                Direction::Forward => i,
                Direction::Inverse => n - 1 - i,
            };
            let Some(l) = self.layers.get(idx) else {
                continue;
            };
            let table = if set_tables {
                let len = l.table_len();
                if dir == Direction::Inverse {
                    at = at.saturating_sub(len);
                }
                let t = self.tables.slice(at, len).unwrap_or(Weights::empty());
                if dir == Direction::Forward {
                    at = at.saturating_add(len);
                }
                t
            } else {
                Weights::empty()
            };
            // An unconditional layer in a conditional chain gets no context: every layer then
            // gets its own context size, and the layers' own checks can be skipped (the
            // hidden widths were checked against the scratch's capacity when the chain was
            // built).
            let c = if l.context_dim() == 0 { &[][..] } else { ctx };
            let s = &mut s.reborrow();
            total += l.apply_scratch(v, c, lds, dir, want_log_det, s, table, false)?;
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

/// Writes the knot tables of `layers`, one after the other in their order, as little-endian
/// `f32` into `out` (see [`Flow::set_tables`](crate::Flow::set_tables)); returns the number of bytes written
/// (`4 ×` the sum of [`Layer::table_len`]), or `None` when `out` is too short or `xs`/`ys`
/// hold fewer values than the largest bin count.
///
/// For tools that know the layers but not the flow's type, e.g. a build script that reads a
/// model file's [`Model::layers`](crate::Model::layers) (for a joint flow: the marginal's
/// layers, then the conditional's, as the file stores them).
pub fn write_tables<'l, 'a: 'l>(
    layers: impl IntoIterator<Item = &'l Layer<'a>>,
    out: &mut [u8],
    xs: &mut [f32],
    ys: &mut [f32],
) -> Option<usize> {
    let mut at = 0;
    write_tables_at(layers, out, &mut at, (xs, ys)).then_some(at)
}

fn write_tables_at<'l, 'a: 'l>(
    layers: impl IntoIterator<Item = &'l Layer<'a>>,
    out: &mut [u8],
    at: &mut usize,
    (xs, ys): (&mut [f32], &mut [f32]),
) -> bool {
    let mut put = |v: f32| {
        let Some(dst) = out.get_mut(*at..at.saturating_add(4)) else {
            return false;
        };
        dst.copy_from_slice(&v.to_le_bytes());
        *at += 4;
        true
    };
    layers
        .into_iter()
        .all(|l| l.table_entries((&mut *xs, &mut *ys), &mut put))
}

/// The seal of knot tables for the model file whose checksum is `model_checksum`
/// ([`Model::checksum`](crate::Model::checksum)): the CRC-32 of `tables` (CRC-32/ISO-HDLC,
/// the model file's own), XOR `model_checksum`. (One CRC routine serves the file and the
/// tables.)
///
/// Sealed tables are the tables followed by their seal as 4 little-endian bytes, what
/// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables) takes: e.g. a firmware's build script writes
/// [`write_tables`]' bytes and appends this seal.
pub fn table_seal(model_checksum: u32, tables: &[u8]) -> u32 {
    crate::wire::CRC.checksum(tables) ^ model_checksum
}

/// The tables of `sealed` (tables, then their [`table_seal`]) when the seal is that of
/// `model_checksum`; [`LayerError::Tables`] otherwise.
pub(crate) fn unseal(sealed: &[u8], model_checksum: u32) -> Result<Weights<'_>, Error> {
    let bad = Error::InvalidLayer(LayerError::Tables);
    let (tables, seal) = sealed
        .split_last_chunk::<4>()
        .map(|(tables, seal)| (tables, u32::from_le_bytes(*seal)))
        .ok_or(bad)?;
    if seal != table_seal(model_checksum, tables) {
        return Err(bad);
    }
    Weights::new(tables).ok_or(bad)
}

/// `true` when `tables` holds exactly the knot tables of `layers`, entry by entry and bit for
/// bit (`false` too when `xs`/`ys` are shorter than a layer's bin count).
fn tables_match<'l, 'a: 'l>(
    layers: impl IntoIterator<Item = &'l Layer<'a>>,
    tables: Weights<'_>,
    (xs, ys): (&mut [f32], &mut [f32]),
) -> bool {
    let mut stored = tables.iter();
    let mut same = |v: f32| stored.next().map(f32::to_bits) == Some(v.to_bits());
    layers
        .into_iter()
        .all(|l| l.table_entries((&mut *xs, &mut *ys), &mut same))
        && stored.next().is_none()
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
