//! The model file: a postcard-encoded flow that the device reads in place.
//!
//! The trainer writes it, the firmware embeds it in flash, and [`Model::parse`] validates it
//! once; the [`Flow`]s built from a [`Model`] borrow their parameters from the file's bytes, so
//! loading copies no parameter into RAM.
//!
//! ```
//! use flow_core::model::ModelBuilder;
//! use flow_core::{Flow, Model, Order, SplineShape};
//!
//! // Written on the desktop (feature `alloc`)...
//! let shape = SplineShape::new(4, 3.0, Order::Linear)?;
//! let params = [0.1f32; 2 * 15]; // Spline(2, count_bins=4): 2 × (4·4 − 1)
//! let bytes = ModelBuilder::plain(2).spline(2, &shape, &params).encode()?;
//!
//! // ...read in place on the device.
//! let model = Model::parse(&bytes)?;
//! let flow: Flow<2, 4, 8, 4> = model.flow()?;
//! let lp: f32 = flow.log_prob(&[0.5, -1.0])?;
//! assert!(lp.is_finite());
//! # Ok::<(), flow_core::Error>(())
//! ```
//!
//! # Layout
//! A file is a sequence of postcard-encoded parts followed by a CRC:
//!
//! | part | encoding | content |
//! |---|---|---|
//! | preamble | `[u8; 4]`, varint `u16` | magic `b"NFLW"`, format version |
//! | [`Header`] | postcard struct | flow kind, dimension `D`, context size `C`, layer counts |
//! | [`LayerRecord`] × `layers` | postcard enum | kind, shape, and [`ParamRef`]s into the parameters |
//! | [`Metadata`] | postcard struct | column names, data scaler, anomaly thresholds |
//! | padding | byte string of 0–3 zero bytes | aligns the parameters to 4 bytes from the file start |
//! | parameters | byte string | every layer's `f32` parameters, little endian |
//! | CRC-32 | 4 bytes, little endian | CRC-32/ISO-HDLC of every byte before it |
//!
//! The writer ([`encode`], `ModelBuilder`) encodes the parts with postcard and serde; the
//! loader decodes them with its own small decoder of the same wire format (postcard's rules
//! and error cases, no serde; tested against postcard on valid, mutated and random inputs),
//! which costs a device far less flash and stack. [`Header::take`], [`LayerRecord::take`] and
//! [`Metadata::take`] expose it.
//!
//! A [`ParamRef`] is a range of `f32` values in the parameter section, laid out as the layers
//! document: a [`Spline`](crate::Spline)'s `[uw | uh | ud | ul]`, a [`DenseNN`](crate::DenseNN)'s `W0, b0, W1, b1, …`, an
//! [`Affine`](crate::Affine)'s `[loc | scale]`. A [`Permute`](crate::Permute)'s indices are stored in its record, one byte
//! each. Because the parameters start 4-byte aligned, a file embedded at an aligned address
//! (e.g. `#[repr(align(4))]` in flash) is read as `f32` directly; at any other address it is
//! read through its bytes, with the same results.
//!
//! For a [`FlowKind::Joint`] file, the first `marginal_layers` records are the flow of `x₁`
//! (dimension `context_dim`) and the rest the conditional flow of `x₂ | x₁` (dimension
//! `dim - context_dim`).
//!
//! # Compatibility
//! The version is a single number, [`FORMAT_VERSION`], raised whenever the encoding of
//! anything after the preamble changes. A reader decodes every version up to its own and
//! rejects a newer file with [`FormatError::Version`], naming both versions; the preamble
//! itself never changes, so any future file is recognised as such. Version 1 is the only
//! version so far.
//!
//! # Validation
//! [`Model::parse`] checks the magic, the version, the CRC, that every part decodes and the
//! file ends exactly after the CRC, and builds every layer, which checks dimensions,
//! parameter counts, that every parameter is finite, permutations, `2 <= bins <= 1000` (so
//! `1e-3·K <= 1`, the minimum bin size), bounds, hypernetwork shapes and contexts; then that
//! the layers chain (same dimension, right context) and that the metadata fits. Any failure is
//! an [`Error`]; nothing is half loaded. Building a flow afterwards checks only the
//! compile-time dimension and capacities.

// The types exist in every build (the docs link to them); a build that leaves layer kinds
// out does not use some of them (`unused_imports` is allowed there, see lib.rs).//!
//! # Where it lives
//! Bottom-up: `format` (the parts of a file as types), `decode` (the loader's decoder of
//! them), [`Model`] here, and `encode` (the writer: [`encode`] and `ModelBuilder`).

use crate::chain::{fits, push_layer, Chain, Layer};
use crate::conditional::{ConditionalFlow, JointFlow};
use crate::error::{Error, LayerError};
use crate::flow::Flow;
use crate::real::Real;
use crate::weights::Weights;
use crate::wire::Reader;
use decode::{next_layer, next_record, parts, Wire};
use format::{weights, Preamble};
use heapless::vec::VecView;

mod decode;
mod encode;
mod format;
#[cfg(test)]
mod tests;

pub use crate::error::{FlowKind, FormatError};
pub use encode::encode;
#[cfg(feature = "alloc")]
pub use encode::ModelBuilder;
pub use format::{Grouping, Header, Hidden, LayerRecord, Metadata, ParamRef, SplineDesc};

/// The file's first four bytes.
pub const MAGIC: [u8; 4] = *b"NFLW";

/// The format version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 2;

pub(crate) use crate::wire::CRC;

/// A validated model file, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    header: Header,
    records: &'a [u8],
    metadata: Metadata<'a>,
    params: Weights<'a>,
    size: usize,
    checksum: u32,
    /// Number of `f32` parameters the records refer to, counted while decoding them.
    param_count: usize,
}

/// A flow being built from a parsed model ([`Model::check_structure`]): its chains, a joint
/// flow's marginal then its conditional, or (a plain or conditional flow) none then the flow's.
struct Build<'a, 'v> {
    /// Each chain's dimension and context size.
    dims: [(usize, usize); 2],
    /// The capacities `(H, K)`.
    capacity: (usize, usize),
    /// Each chain's layers.
    chains: [&'v mut VecView<Layer<'a>>; 2],
}

impl<'a> Model<'a> {
    /// Validates a model file (see the [module docs](self)) without copying anything.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let pre = Preamble::read(&mut r);
        r.done()?;
        if pre.magic != MAGIC {
            return Err(FormatError::Magic.into());
        }
        if pre.version > FORMAT_VERSION {
            return Err(FormatError::Version {
                found: pre.version,
                supported: FORMAT_VERSION,
            }
            .into());
        }
        let n = bytes.len();
        let (content, crc) = bytes
            .split_at_checked(n.saturating_sub(4))
            .ok_or(FormatError::Truncated)?;
        let stored = u32::from_le_bytes(crc.try_into().map_err(|_| FormatError::Truncated)?);
        let computed = CRC.checksum(content);
        if stored != computed {
            return Err(FormatError::Checksum { stored, computed }.into());
        }
        // The preamble decoded again from the content alone would be the same, or run out of
        // bytes where the content ends first.
        let mut r = Reader::new(
            content
                .get(n - r.rest().len()..)
                .ok_or(FormatError::Truncated)?,
        );
        let (header, (records, param_count), metadata, tail) = parts(&mut r, pre.version)?;
        if !r.rest().is_empty() {
            return Err(FormatError::TrailingBytes.into());
        }
        if tail.pad.len() > 3 || tail.pad.iter().any(|&b| b != 0) {
            return Err(FormatError::Malformed.into());
        }
        let model = Model {
            header,
            records,
            metadata,
            params: weights(tail.params)?,
            size: n,
            checksum: stored,
            param_count,
        };
        model.check_structure(None)?;
        Ok(model)
    }

    /// Checks that the layers chain and the metadata fits; with `build`, also appends every
    /// layer to the chain it belongs to after the checks of a chain of the flow built (a
    /// parsed model passes the file's own checks, so the first error is the flow's, as
    /// [`Chain::from_layers`](crate::chain::Chain::from_layers) would find it).
    fn check_structure(&self, mut build: Option<Build<'a, '_>>) -> Result<(), Error> {
        let h = &self.header;
        let (dim, ctx) = (usize::from(h.dim), usize::from(h.context_dim));
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        let marginal = usize::from(h.marginal_layers);
        match h.kind {
            FlowKind::Plain | FlowKind::Conditional => {
                if marginal != 0 || (h.kind == FlowKind::Plain) != (ctx == 0) {
                    return Err(FormatError::LayerCount.into());
                }
            }
            FlowKind::Joint => {
                if marginal > usize::from(h.layers) || ctx == 0 || ctx >= dim {
                    return Err(FormatError::LayerCount.into());
                }
            }
        }
        // The dimension and context of each chain of the file: a joint flow's marginal and
        // conditional, or the flow (a plain or conditional file has no marginal layers).
        let want = match h.kind {
            FlowKind::Joint => [(ctx, 0), (dim - ctx, ctx)],
            _ => [(0, 0), (dim, ctx)],
        };
        let (mut rest, mut left) = (self.records, h.layers);
        let mut i = 0;
        while let Some(l) = next_layer(&mut rest, &mut left, self.params) {
            let l = match &l {
                Ok(l) => l,
                Err(e) => return Err(*e),
            };
            let c = usize::from(i >= marginal);
            fits(l, want[c])?;
            if let Some(b) = &mut build {
                push_layer(b.chains[c], l, b.dims[c], b.capacity)?;
            }
            i += 1;
        }
        // One pass over each: every value finite; the scales (the scaler's second half)
        // positive; the quantiles (even positions) increasing in (0, 1).
        let m = &self.metadata;
        let scaler = weights(m.scaler)?;
        if !scaler.is_empty() {
            if scaler.len() != 2 * dim {
                return Err(FormatError::Metadata.into());
            }
            for (i, v) in scaler.iter().enumerate() {
                // `v` is finite here, so `<= 0` is "not positive".
                if !v.is_finite() || (i >= dim && v <= 0.0) {
                    return Err(FormatError::Metadata.into());
                }
            }
        }
        // A windowed model is a joint flow of two readings `x₁`, `x₂` of the same size.
        if m.window != 0 && (m.window < 2 || h.kind != FlowKind::Joint || dim != 2 * ctx) {
            return Err(FormatError::Metadata.into());
        }
        if m.window == 0 && !matches!(m.grouping, Grouping::None) {
            return Err(FormatError::Metadata.into());
        }
        let thresholds = weights(m.thresholds)?;
        if thresholds.len() % 2 != 0 {
            return Err(FormatError::Metadata.into());
        }
        let mut last = 0.0f32;
        for (i, v) in thresholds.iter().enumerate() {
            if !v.is_finite() {
                return Err(FormatError::Metadata.into());
            }
            if i % 2 == 0 {
                if !(v > last && v < 1.0) {
                    return Err(FormatError::Metadata.into());
                }
                last = v;
            }
        }
        Ok(())
    }

    /// Readings per window of a windowed model (at least 2), or `None` (see
    /// [`stream`](crate::stream)).
    pub fn window(&self) -> Option<usize> {
        (self.metadata.window != 0).then_some(usize::from(self.metadata.window))
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata<'a> {
        &self.metadata
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> usize {
        self.size
    }

    /// The CRC-32 the file ends with (checked by [`parse`](Self::parse)): what identifies
    /// the file, e.g. for [`flow::table_seal`](crate::flow::table_seal).
    pub fn checksum(&self) -> u32 {
        self.checksum
    }

    /// The layer records, in order.
    pub fn records(&self) -> impl Iterator<Item = Result<LayerRecord<'a>, Error>> + 'a {
        let mut rest = self.records;
        let mut left = self.header.layers;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(next_record(&mut rest))
        })
    }

    /// The layers, in order (all of them; for a joint flow the marginal's come first).
    pub fn layers(&self) -> impl Iterator<Item = Result<Layer<'a>, Error>> + 'a {
        let (mut rest, mut left, params) = (self.records, self.header.layers, self.params);
        core::iter::from_fn(move || next_layer(&mut rest, &mut left, params))
    }

    /// The parameter section.
    pub fn params(&self) -> Weights<'a> {
        self.params
    }

    /// Number of `f32` parameters in all layers.
    pub fn param_count(&self) -> usize {
        self.param_count
    }

    fn expect(&self, kind: FlowKind) -> Result<(), Error> {
        if self.header.kind == kind {
            Ok(())
        } else {
            Err(FormatError::Kind {
                expected: kind,
                found: self.header.kind,
            }
            .into())
        }
    }

    /// The [`Flow`] of a [`FlowKind::Plain`] file with dimension `D`.
    pub fn flow<const D: usize, const L: usize, const H: usize, const K: usize>(
        &self,
    ) -> Result<Flow<'a, D, L, H, K>, Error> {
        self.expect(FlowKind::Plain)?;
        Ok(Flow::of(self.chain::<L>(D, 0, (H, K))?))
    }

    /// The [`ConditionalFlow`] of a [`FlowKind::Conditional`] file.
    pub fn conditional_flow<
        const D: usize,
        const C: usize,
        const L: usize,
        const H: usize,
        const K: usize,
    >(
        &self,
    ) -> Result<ConditionalFlow<'a, D, C, L, H, K>, Error> {
        self.expect(FlowKind::Conditional)?;
        Ok(ConditionalFlow::of(self.chain::<L>(D, C, (H, K))?))
    }

    /// The [`JointFlow`] of a [`FlowKind::Joint`] file.
    pub fn joint_flow<const D: usize, const L: usize, const H: usize, const K: usize>(
        &self,
    ) -> Result<JointFlow<'a, D, L, H, K>, Error> {
        self.expect(FlowKind::Joint)?;
        let d1 = usize::from(self.header.context_dim);
        let d2 = JointFlow::<D, L, H, K>::upper_dim(d1)?;
        let (mut marginal, mut conditional) = (heapless::Vec::new(), heapless::Vec::new());
        self.check_structure(Some(Build {
            dims: [(d1, 0), (d2, d1)],
            capacity: (H, K),
            chains: [marginal.as_mut_view(), conditional.as_mut_view()],
        }))?;
        Ok(JointFlow {
            marginal: Chain::of(marginal, d1, 0),
            conditional: Chain::of(conditional, d2, d1),
        })
    }

    /// The chain of a plain or conditional flow on `dim` dimensions with context size
    /// `context` and the capacities `(H, K)`: the layers, checked as
    /// [`Chain::from_layers`](crate::chain::Chain::from_layers) checks them.
    fn chain<const L: usize>(
        &self,
        dim: usize,
        context: usize,
        capacity: (usize, usize),
    ) -> Result<Chain<'a, L>, Error> {
        let mut layers = heapless::Vec::new();
        self.check_structure(Some(Build {
            dims: [(0, 0), (dim, context)],
            capacity,
            // A plain or conditional file has no marginal layers.
            chains: [
                heapless::Vec::<_, 0>::new().as_mut_view(),
                layers.as_mut_view(),
            ],
        }))?;
        Ok(Chain::of(layers, dim, context))
    }

    /// The scaler's `(mean, scale)` of dimension `j`, if the file has a scaler.
    pub fn scaler(&self, j: usize) -> Option<(f32, f32)> {
        let w = Weights::new(self.metadata.scaler)?;
        Some((w.get(j)?, w.get(usize::from(self.header.dim) + j)?))
    }

    /// `(raw - mean) / scale`, the point in the flow's space (unchanged without a scaler).
    pub fn standardize<T: Real, const D: usize>(&self, raw: &[T; D]) -> [T; D] {
        let mut out = *raw;
        self.rescale(&mut out, true);
        out
    }

    /// `mean + scale · x`, a point of the flow's space in raw units.
    pub fn unstandardize<T: Real, const D: usize>(&self, x: &[T; D]) -> [T; D] {
        let mut out = *x;
        self.rescale(&mut out, false);
        out
    }

    /// [`standardize`](Self::standardize) (`to_flow`) or
    /// [`unstandardize`](Self::unstandardize) in place: one copy for every dimension `D`.
    #[inline(never)]
    fn rescale<T: Real>(&self, v: &mut [T], to_flow: bool) {
        for (j, v) in v.iter_mut().enumerate() {
            if let Some((m, s)) = self.scaler(j) {
                let (m, s) = (T::from_f32(m), T::from_f32(s));
                *v = if to_flow { (*v - m) / s } else { m + s * *v };
            }
        }
    }

    /// `-Σ ln scale`: add it to a log-density of the flow's space to get one in raw units.
    pub fn raw_log_det<T: Real>(&self) -> T {
        let mut acc = T::ZERO;
        for j in 0..usize::from(self.header.dim) {
            if let Some((_, s)) = self.scaler(j) {
                acc += -T::from_f32(s).ln();
            }
        }
        acc
    }

    /// `log p(raw)` in raw units: `log p_flow((raw - mean)/scale) - Σ ln scale`.
    pub fn log_prob_raw<T: Real, const D: usize, const L: usize, const H: usize, const K: usize>(
        &self,
        flow: &Flow<'_, D, L, H, K>,
        raw: &[T; D],
    ) -> Result<T, Error> {
        Ok(flow.log_prob(&self.standardize(raw))? + self.raw_log_det())
    }

    /// The stored anomaly thresholds `(quantile, log_prob)`, by increasing quantile.
    pub fn thresholds(&self) -> impl Iterator<Item = (f32, f32)> + 'a {
        let w = Weights::new(self.metadata.thresholds).unwrap_or(Weights::empty());
        let mut i = 0;
        core::iter::from_fn(move || {
            let q = w.get(i)?;
            let lp = w.get(i + 1)?;
            i += 2;
            Some((q, lp))
        })
    }

    /// The threshold stored for `quantile` (exactly), if any.
    pub fn threshold(&self, quantile: f32) -> Option<f32> {
        self.thresholds()
            .find(|&(q, _)| q == quantile)
            .map(|(_, lp)| lp)
    }
}
