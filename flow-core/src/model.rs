//! The model file: a postcard-encoded flow that the device reads in place.
//!
//! The trainer writes it, the firmware embeds it in flash, and [`Model::parse`] validates it
//! once; the [`Flow`]s built from a [`Model`] borrow their parameters from the file's bytes, so
//! loading copies no parameter into RAM.
//!
//! # Layout
//! A file is a sequence of postcard-encoded parts followed by a CRC:
//!
//! | part | encoding | content |
//! |---|---|---|
//! | preamble | `[u8; 4]`, varint `u16` | magic `b"NFLW"`, format version |
//! | [`Header`] | postcard struct | flow kind, dimension `D`, context size `C`, layer counts |
//! | [`LayerRecord`] × `layers` | postcard enum | kind, shape, and borrowed parameter blocks |
//! | [`Metadata`] | postcard struct | column names, data scaler, anomaly thresholds |
//! | CRC-32 | 4 bytes, little endian | CRC-32/ISO-HDLC of every byte before it |
//!
//! Parameter blocks are postcard byte strings (varint length, then the bytes) holding `f32`
//! values in little endian, laid out as the layers document: a [`Spline`]'s
//! `[uw | uh | ud | ul]`, a [`DenseNN`]'s `W0, b0, W1, b1, …`, an [`Affine`]'s `[loc | scale]`.
//! A [`Permute`]'s indices are one byte each.
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

use crate::affine::{Affine, Exp};
use crate::conditional::{ConditionalFlow, ConditionalSpline, JointFlow};
use crate::coupling::SplineCoupling;
use crate::error::{Error, LayerError};
use crate::flow::{Flow, Layer};
use crate::nn::{DenseNN, MAX_HIDDEN_LAYERS};
use crate::permute::Permute;
use crate::real::Real;
use crate::spline::{Order, Spline, SplineShape};
use crate::weights::Weights;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The file's first four bytes.
pub const MAGIC: [u8; 4] = *b"NFLW";

/// The format version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// The CRC the file ends with: CRC-32/ISO-HDLC (the CRC-32 of zlib, PNG and Ethernet).
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why a byte string is not a valid model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file ends before a part is complete.
    Truncated,
    /// The first four bytes are not [`MAGIC`].
    Magic,
    /// The file's format version is newer than this reader's.
    Version {
        /// Version in the file.
        found: u16,
        /// Newest version this reader supports.
        supported: u16,
    },
    /// The stored CRC does not match the content.
    Checksum {
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the content.
        computed: u32,
    },
    /// A part does not decode.
    Malformed,
    /// Bytes remain between the metadata and the CRC.
    TrailingBytes,
    /// The header's layer counts are inconsistent.
    LayerCount,
    /// The file holds another kind of flow than the one asked for.
    Kind {
        /// Kind asked for.
        expected: FlowKind,
        /// Kind in the file.
        found: FlowKind,
    },
    /// The metadata does not fit the model (scaler or threshold sizes, values).
    Metadata,
    /// The output buffer is too small to encode into.
    BufferTooSmall,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Truncated => f.write_str("file is truncated"),
            FormatError::Magic => f.write_str("not a model file (bad magic)"),
            FormatError::Version { found, supported } => write!(
                f,
                "format version {found} is newer than the supported version {supported}"
            ),
            FormatError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            FormatError::Malformed => f.write_str("malformed content"),
            FormatError::TrailingBytes => f.write_str("unexpected bytes before the checksum"),
            FormatError::LayerCount => f.write_str("inconsistent layer counts"),
            FormatError::Kind { expected, found } => {
                write!(
                    f,
                    "expected a {expected:?} flow, the file holds a {found:?} flow"
                )
            }
            FormatError::Metadata => f.write_str("metadata does not fit the model"),
            FormatError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

/// What the layers make together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowKind {
    /// `p(x)`: a [`Flow`].
    Plain,
    /// `p(x | c)`: a [`ConditionalFlow`] with context size `context_dim`.
    Conditional,
    /// `p(x₁)·p(x₂ | x₁)`: a [`JointFlow`] with `x₁` of size `context_dim`.
    Joint,
}

/// The fixed-size description at the start of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// What the layers make together.
    pub kind: FlowKind,
    /// Dimension `D` of `x`.
    pub dim: u16,
    /// Context size: `C` of a conditional flow, `d₁` of a joint, 0 otherwise.
    pub context_dim: u16,
    /// Total number of layer records.
    pub layers: u16,
    /// For a joint flow, how many of the records belong to the marginal `p(x₁)`; else 0.
    pub marginal_layers: u16,
}

/// A spline's bins, bound and order, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplineDesc {
    /// Bins `K`.
    pub bins: u16,
    /// Bound `B`.
    pub bound: f32,
    /// Order.
    pub order: Order,
}

impl SplineDesc {
    fn shape(&self) -> Result<SplineShape, Error> {
        SplineShape::new(usize::from(self.bins), self.bound, self.order)
    }

    fn of(s: &SplineShape) -> Self {
        Self {
            bins: s.bins() as u16,
            bound: s.bound(),
            order: s.order(),
        }
    }
}

/// Hidden layer sizes of a hypernetwork, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hidden {
    /// How many of `sizes` are used.
    pub len: u8,
    /// The sizes.
    pub sizes: [u16; MAX_HIDDEN_LAYERS],
}

impl Hidden {
    /// From a list of at most [`MAX_HIDDEN_LAYERS`] sizes, each below 65536.
    pub fn new(sizes: &[usize]) -> Option<Self> {
        if sizes.len() > MAX_HIDDEN_LAYERS {
            return None;
        }
        let mut h = Hidden {
            len: sizes.len() as u8,
            sizes: [0; MAX_HIDDEN_LAYERS],
        };
        for (d, &s) in h.sizes.iter_mut().zip(sizes) {
            *d = u16::try_from(s).ok()?;
        }
        Some(h)
    }

    fn to_usizes(self) -> Result<([usize; MAX_HIDDEN_LAYERS], usize), Error> {
        let n = usize::from(self.len);
        if n > MAX_HIDDEN_LAYERS {
            return Err(FormatError::Malformed.into());
        }
        let mut out = [0usize; MAX_HIDDEN_LAYERS];
        for (o, &s) in out.iter_mut().zip(&self.sizes) {
            *o = usize::from(s);
        }
        Ok((out, n))
    }

    fn of(nn: &DenseNN<'_>) -> Self {
        // A DenseNN has at most MAX_HIDDEN_LAYERS hidden layers; sizes above u16 cannot be
        // described by a file and saturate (the re-parse of the written file rejects them).
        let sizes = nn.hidden_sizes();
        let mut h = Hidden {
            len: sizes.len().min(MAX_HIDDEN_LAYERS) as u8,
            sizes: [0; MAX_HIDDEN_LAYERS],
        };
        for (d, &s) in h.sizes.iter_mut().zip(sizes) {
            *d = u16::try_from(s).unwrap_or(u16::MAX);
        }
        h
    }
}

/// One layer as stored: its description and its borrowed parameter blocks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerRecord<'a> {
    /// [`Affine`] with per-dimension `[loc | scale]`.
    Affine {
        /// Dimension.
        dim: u16,
        /// `[loc (dim) | scale (dim)]`, f32 LE.
        params: &'a [u8],
    },
    /// [`Exp`].
    Exp {
        /// Dimension.
        dim: u16,
    },
    /// [`Spline`].
    Spline {
        /// Dimension.
        dim: u16,
        /// Bins, bound, order.
        spline: SplineDesc,
        /// `[uw | uh | ud | ul]`, f32 LE.
        params: &'a [u8],
    },
    /// [`SplineCoupling`] (conditional when `context > 0`).
    Coupling {
        /// Lower dimensions `d`.
        split: u16,
        /// Upper dimensions `D - d`.
        upper_dim: u16,
        /// Bins, bound, order (both parts).
        spline: SplineDesc,
        /// Context size.
        context: u16,
        /// Hypernetwork hidden sizes.
        hidden: Hidden,
        /// The lower spline's parameters, f32 LE.
        lower: &'a [u8],
        /// The hypernetwork's parameters, f32 LE.
        hypernet: &'a [u8],
    },
    /// [`Permute`].
    Permute {
        /// `perm[i]`, one byte each.
        perm: &'a [u8],
    },
    /// [`ConditionalSpline`].
    ConditionalSpline {
        /// Dimension.
        dim: u16,
        /// Bins, bound, order.
        spline: SplineDesc,
        /// Context size.
        context: u16,
        /// Hypernetwork hidden sizes.
        hidden: Hidden,
        /// The hypernetwork's parameters, f32 LE.
        hypernet: &'a [u8],
    },
}

fn weights(b: &[u8]) -> Result<Weights<'_>, Error> {
    Weights::new(b).ok_or(Error::Format(FormatError::Malformed))
}

impl<'a> LayerRecord<'a> {
    /// Builds (and so validates) the layer, borrowing its parameters.
    pub fn layer(&self) -> Result<Layer<'a>, Error> {
        Ok(match *self {
            LayerRecord::Affine { dim, params } => {
                Layer::Affine(Affine::per_dim(usize::from(dim), weights(params)?)?)
            }
            LayerRecord::Exp { dim } => Layer::Exp(Exp::new(usize::from(dim))?),
            LayerRecord::Spline {
                dim,
                spline,
                params,
            } => Layer::Spline(Spline::new(
                usize::from(dim),
                spline.shape()?,
                weights(params)?,
            )?),
            LayerRecord::Coupling {
                split,
                upper_dim,
                spline,
                context,
                hidden,
                lower,
                hypernet,
            } => {
                let shape = spline.shape()?;
                let (split, upper) = (usize::from(split), usize::from(upper_dim));
                if split == 0 || upper == 0 {
                    return Err(Error::InvalidLayer(LayerError::Split));
                }
                let lower = Spline::new(split, shape, weights(lower)?)?;
                let (sizes, n) = hidden.to_usizes()?;
                let nn = DenseNN::new(
                    split + usize::from(context),
                    sizes.get(..n).unwrap_or(&[]),
                    upper.saturating_mul(shape.params_per_dim()),
                    weights(hypernet)?,
                )?;
                Layer::Coupling(SplineCoupling::new(
                    lower,
                    upper,
                    shape,
                    nn,
                    usize::from(context),
                )?)
            }
            LayerRecord::Permute { perm } => Layer::Permute(Permute::new(perm)?),
            LayerRecord::ConditionalSpline {
                dim,
                spline,
                context,
                hidden,
                hypernet,
            } => {
                let shape = spline.shape()?;
                let dim = usize::from(dim);
                if context == 0 {
                    return Err(Error::InvalidLayer(LayerError::Context));
                }
                let (sizes, n) = hidden.to_usizes()?;
                let nn = DenseNN::new(
                    usize::from(context),
                    sizes.get(..n).unwrap_or(&[]),
                    dim.saturating_mul(shape.params_per_dim()),
                    weights(hypernet)?,
                )?;
                Layer::ConditionalSpline(ConditionalSpline::new(dim, shape, nn)?)
            }
        })
    }

    /// The record of a layer (borrowing the same parameter bytes).
    ///
    /// A scalar [`Affine`] has no parameter bytes to borrow; it is recorded as per-dimension
    /// only when built with [`Affine::per_dim`], otherwise this returns `None`.
    pub fn of(layer: &Layer<'a>) -> Option<Self> {
        let dim16 = |d: usize| u16::try_from(d).ok();
        Some(match layer {
            Layer::Affine(a) => LayerRecord::Affine {
                dim: dim16(a.dim())?,
                params: a.weights()?.as_bytes(),
            },
            Layer::Exp(e) => LayerRecord::Exp {
                dim: dim16(e.dim())?,
            },
            Layer::Spline(s) => LayerRecord::Spline {
                dim: dim16(s.dim())?,
                spline: SplineDesc::of(s.shape()),
                params: s.weights().as_bytes(),
            },
            Layer::Coupling(c) => LayerRecord::Coupling {
                split: dim16(c.split())?,
                upper_dim: dim16(c.upper_dim())?,
                spline: SplineDesc::of(c.upper_shape()),
                context: dim16(c.context_dim())?,
                hidden: Hidden::of(c.hypernet()),
                lower: c.lower().weights().as_bytes(),
                hypernet: c.hypernet().weights().as_bytes(),
            },
            Layer::Permute(p) => LayerRecord::Permute { perm: p.indices() },
            Layer::ConditionalSpline(c) => LayerRecord::ConditionalSpline {
                dim: dim16(c.dim())?,
                spline: SplineDesc::of(c.shape()),
                context: dim16(c.context_dim())?,
                hidden: Hidden::of(c.hypernet()),
                hypernet: c.hypernet().weights().as_bytes(),
            },
        })
    }
}

/// Optional information stored with a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata<'a> {
    /// Column names, separated by `\n`: the `D` data columns, then the `C` context columns.
    /// Empty when unknown.
    pub columns: &'a str,
    /// Empty, or the data scaler as `[mean (D) | scale (D)]` f32 LE: the flow models
    /// `(raw - mean) / scale`. See [`Model::log_prob_raw`].
    pub scaler: &'a [u8],
    /// Empty, or anomaly thresholds as `(quantile, log_prob)` f32 LE pairs with increasing
    /// quantiles in `(0, 1)`: the log-density below which that fraction of the validation data
    /// fell at training. In the flow's (standardized) space.
    pub thresholds: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct Preamble {
    magic: [u8; 4],
    version: u16,
}

/// A validated model file, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    header: Header,
    records: &'a [u8],
    metadata: Metadata<'a>,
    size: usize,
}

/// Decodes one postcard part from the front of `b`.
fn take<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
    postcard::take_from_bytes(b).map_err(|e| {
        Error::Format(match e {
            postcard::Error::DeserializeUnexpectedEnd => FormatError::Truncated,
            _ => FormatError::Malformed,
        })
    })
}

impl<'a> Model<'a> {
    /// Validates a model file (see the [module docs](self)) without copying anything.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let (pre, _) = take::<Preamble>(bytes)?;
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
        let (_, rest) = take::<Preamble>(content)?;
        let (header, rest) = take::<Header>(rest)?;
        let records = rest;
        let mut rest = rest;
        for _ in 0..header.layers {
            let (rec, r) = take::<LayerRecord<'a>>(rest)?;
            rec.layer()?;
            rest = r;
        }
        let records = records
            .get(..records.len() - rest.len())
            .ok_or(FormatError::Malformed)?;
        let (metadata, rest) = take::<Metadata<'a>>(rest)?;
        if !rest.is_empty() {
            return Err(FormatError::TrailingBytes.into());
        }
        let model = Model {
            header,
            records,
            metadata,
            size: n,
        };
        model.check_structure()?;
        Ok(model)
    }

    /// Checks that the layers chain and the metadata fits.
    fn check_structure(&self) -> Result<(), Error> {
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
        for (i, l) in self.layers().enumerate() {
            let l = l?;
            let (want_dim, want_ctx) = match h.kind {
                FlowKind::Joint if i < marginal => (ctx, 0),
                FlowKind::Joint => (dim - ctx, ctx),
                _ => (dim, ctx),
            };
            if l.dim() != want_dim {
                return Err(Error::DimensionMismatch {
                    expected: want_dim,
                    found: l.dim(),
                });
            }
            if l.context_dim() != 0 && l.context_dim() != want_ctx {
                return Err(Error::InvalidLayer(LayerError::Context));
            }
        }
        let m = &self.metadata;
        if !m.scaler.is_empty() {
            let w = weights(m.scaler)?;
            if w.len() != 2 * dim
                || !w.all_finite()
                || w.iter()
                    .skip(dim)
                    .any(|s| s.partial_cmp(&0.0) != Some(core::cmp::Ordering::Greater))
            {
                return Err(FormatError::Metadata.into());
            }
        }
        if !m.thresholds.is_empty() {
            let w = weights(m.thresholds)?;
            if w.len() % 2 != 0 || !w.all_finite() {
                return Err(FormatError::Metadata.into());
            }
            let mut last = 0.0f32;
            for (q, _) in self.thresholds() {
                if !(q > last && q < 1.0) {
                    return Err(FormatError::Metadata.into());
                }
                last = q;
            }
        }
        Ok(())
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

    /// The layer records, in order.
    pub fn records(&self) -> impl Iterator<Item = Result<LayerRecord<'a>, Error>> + 'a {
        let mut rest = self.records;
        let mut left = self.header.layers;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(take::<LayerRecord<'a>>(rest).map(|(rec, r)| {
                rest = r;
                rec
            }))
        })
    }

    /// The layers, in order (all of them; for a joint flow the marginal's come first).
    pub fn layers(&self) -> impl Iterator<Item = Result<Layer<'a>, Error>> + 'a {
        self.records().map(|r| r?.layer())
    }

    /// Number of `f32` parameters in all layers.
    pub fn param_count(&self) -> usize {
        self.records()
            .filter_map(Result::ok)
            .map(|r| match r {
                LayerRecord::Affine { params, .. } | LayerRecord::Spline { params, .. } => {
                    params.len() / 4
                }
                LayerRecord::Coupling {
                    lower, hypernet, ..
                } => (lower.len() + hypernet.len()) / 4,
                LayerRecord::ConditionalSpline { hypernet, .. } => hypernet.len() / 4,
                LayerRecord::Exp { .. } | LayerRecord::Permute { .. } => 0,
            })
            .sum()
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
        Flow::from_layers(self.layers())
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
        ConditionalFlow::from_layers(self.layers())
    }

    /// The [`JointFlow`] of a [`FlowKind::Joint`] file.
    pub fn joint_flow<const D: usize, const L: usize, const H: usize, const K: usize>(
        &self,
    ) -> Result<JointFlow<'a, D, L, H, K>, Error> {
        self.expect(FlowKind::Joint)?;
        let m = usize::from(self.header.marginal_layers);
        JointFlow::from_layers(
            usize::from(self.header.context_dim),
            self.layers().take(m),
            self.layers().skip(m),
        )
    }

    /// The scaler's `(mean, scale)` of dimension `j`, if the file has a scaler.
    pub fn scaler(&self, j: usize) -> Option<(f32, f32)> {
        let w = Weights::new(self.metadata.scaler)?;
        Some((w.get(j)?, w.get(usize::from(self.header.dim) + j)?))
    }

    /// `(raw - mean) / scale`, the point in the flow's space (unchanged without a scaler).
    pub fn standardize<T: Real, const D: usize>(&self, raw: &[T; D]) -> [T; D] {
        let mut out = *raw;
        for (j, v) in out.iter_mut().enumerate() {
            if let Some((m, s)) = self.scaler(j) {
                *v = (*v - T::from_f32(m)) / T::from_f32(s);
            }
        }
        out
    }

    /// `mean + scale · x`, a point of the flow's space in raw units.
    pub fn unstandardize<T: Real, const D: usize>(&self, x: &[T; D]) -> [T; D] {
        let mut out = *x;
        for (j, v) in out.iter_mut().enumerate() {
            if let Some((m, s)) = self.scaler(j) {
                *v = T::from_f32(m) + T::from_f32(s) * *v;
            }
        }
        out
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

/// Writes a model file into `out` and returns its length.
///
/// The result is parsed back before returning, so an `Ok` is always a valid file. On error,
/// `out` may hold partial bytes: write to a temporary buffer and persist only on success.
pub fn encode(
    header: &Header,
    layers: &[LayerRecord<'_>],
    metadata: &Metadata<'_>,
    out: &mut [u8],
) -> Result<usize, Error> {
    if usize::from(header.layers) != layers.len() {
        return Err(FormatError::LayerCount.into());
    }
    fn put<T: Serialize>(v: &T, out: &mut [u8], used: &mut usize) -> Result<(), Error> {
        let dst = out.get_mut(*used..).ok_or(FormatError::BufferTooSmall)?;
        *used += postcard::to_slice(v, dst)
            .map_err(|_| FormatError::BufferTooSmall)?
            .len();
        Ok(())
    }
    let mut used = 0usize;
    let pre = Preamble {
        magic: MAGIC,
        version: FORMAT_VERSION,
    };
    put(&pre, out, &mut used)?;
    put(header, out, &mut used)?;
    for l in layers {
        put(l, out, &mut used)?;
    }
    put(metadata, out, &mut used)?;
    let crc = CRC.checksum(out.get(..used).ok_or(FormatError::BufferTooSmall)?);
    out.get_mut(used..used + 4)
        .ok_or(FormatError::BufferTooSmall)?
        .copy_from_slice(&crc.to_le_bytes());
    used += 4;
    Model::parse(out.get(..used).ok_or(FormatError::BufferTooSmall)?)?;
    Ok(used)
}

#[cfg(feature = "alloc")]
pub use builder::ModelBuilder;

#[cfg(feature = "alloc")]
mod builder {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    fn le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    enum Owned {
        Affine {
            dim: u16,
            params: Vec<u8>,
        },
        Exp {
            dim: u16,
        },
        Spline {
            dim: u16,
            spline: SplineDesc,
            params: Vec<u8>,
        },
        Coupling {
            split: u16,
            upper_dim: u16,
            spline: SplineDesc,
            context: u16,
            hidden: Hidden,
            lower: Vec<u8>,
            hypernet: Vec<u8>,
        },
        Permute {
            perm: Vec<u8>,
        },
        ConditionalSpline {
            dim: u16,
            spline: SplineDesc,
            context: u16,
            hidden: Hidden,
            hypernet: Vec<u8>,
        },
    }

    impl Owned {
        fn record(&self) -> LayerRecord<'_> {
            match self {
                Owned::Affine { dim, params } => LayerRecord::Affine { dim: *dim, params },
                Owned::Exp { dim } => LayerRecord::Exp { dim: *dim },
                Owned::Spline {
                    dim,
                    spline,
                    params,
                } => LayerRecord::Spline {
                    dim: *dim,
                    spline: *spline,
                    params,
                },
                Owned::Coupling {
                    split,
                    upper_dim,
                    spline,
                    context,
                    hidden,
                    lower,
                    hypernet,
                } => LayerRecord::Coupling {
                    split: *split,
                    upper_dim: *upper_dim,
                    spline: *spline,
                    context: *context,
                    hidden: *hidden,
                    lower,
                    hypernet,
                },
                Owned::Permute { perm } => LayerRecord::Permute { perm },
                Owned::ConditionalSpline {
                    dim,
                    spline,
                    context,
                    hidden,
                    hypernet,
                } => LayerRecord::ConditionalSpline {
                    dim: *dim,
                    spline: *spline,
                    context: *context,
                    hidden: *hidden,
                    hypernet,
                },
            }
        }
    }

    /// Builds a model file from owned parameters (for desktop tools; feature `alloc`).
    ///
    /// Layers are added in forward order; for a joint flow, the marginal's layers first, then
    /// [`end_marginal`](Self::end_marginal), then the conditional's. Sizes that do not fit the
    /// format are clamped here and rejected by [`encode`](Self::encode), which validates the
    /// whole file by parsing it back.
    pub struct ModelBuilder {
        kind: FlowKind,
        dim: usize,
        context_dim: usize,
        marginal: usize,
        layers: Vec<Owned>,
        columns: String,
        scaler: Vec<u8>,
        thresholds: Vec<u8>,
    }

    fn u16_of(v: usize) -> u16 {
        u16::try_from(v).unwrap_or(u16::MAX)
    }

    impl ModelBuilder {
        fn new(kind: FlowKind, dim: usize, context_dim: usize) -> Self {
            Self {
                kind,
                dim,
                context_dim,
                marginal: 0,
                layers: Vec::new(),
                columns: String::new(),
                scaler: Vec::new(),
                thresholds: Vec::new(),
            }
        }

        /// A flow `p(x)` on `R^dim`.
        pub fn plain(dim: usize) -> Self {
            Self::new(FlowKind::Plain, dim, 0)
        }

        /// A conditional flow `p(x | c)`, `x ∈ R^dim`, `c ∈ R^context`.
        pub fn conditional(dim: usize, context: usize) -> Self {
            Self::new(FlowKind::Conditional, dim, context)
        }

        /// A joint `p(x₁)·p(x₂ | x₁)` on `R^dim` with `x₁ ∈ R^split`.
        pub fn joint(dim: usize, split: usize) -> Self {
            Self::new(FlowKind::Joint, dim, split)
        }

        /// Ends the marginal's layers of a joint flow.
        pub fn end_marginal(&mut self) -> &mut Self {
            self.marginal = self.layers.len();
            self
        }

        /// Adds an [`Affine`] with per-dimension `loc` and `scale`.
        pub fn affine(&mut self, loc: &[f32], scale: &[f32]) -> &mut Self {
            let mut p = le(loc);
            p.extend(le(scale));
            self.layers.push(Owned::Affine {
                dim: u16_of(loc.len()),
                params: p,
            });
            self
        }

        /// Adds an [`Exp`].
        pub fn exp(&mut self, dim: usize) -> &mut Self {
            self.layers.push(Owned::Exp { dim: u16_of(dim) });
            self
        }

        /// Adds a [`Spline`] with parameters `[uw | uh | ud | ul]`.
        pub fn spline(&mut self, dim: usize, shape: &SplineShape, params: &[f32]) -> &mut Self {
            self.layers.push(Owned::Spline {
                dim: u16_of(dim),
                spline: SplineDesc::of(shape),
                params: le(params),
            });
            self
        }

        /// Adds a [`SplineCoupling`] (conditional if `context > 0`).
        #[allow(clippy::too_many_arguments)] // mirrors the record's fields one to one
        pub fn coupling(
            &mut self,
            split: usize,
            upper_dim: usize,
            shape: &SplineShape,
            context: usize,
            hidden: &[usize],
            lower: &[f32],
            hypernet: &[f32],
        ) -> &mut Self {
            self.layers.push(Owned::Coupling {
                split: u16_of(split),
                upper_dim: u16_of(upper_dim),
                spline: SplineDesc::of(shape),
                context: u16_of(context),
                hidden: Hidden::new(hidden).unwrap_or(Hidden {
                    len: u8::MAX,
                    sizes: [0; MAX_HIDDEN_LAYERS],
                }),
                lower: le(lower),
                hypernet: le(hypernet),
            });
            self
        }

        /// Adds a [`Permute`].
        pub fn permute(&mut self, perm: &[u8]) -> &mut Self {
            self.layers.push(Owned::Permute {
                perm: perm.to_vec(),
            });
            self
        }

        /// Adds a [`ConditionalSpline`].
        pub fn conditional_spline(
            &mut self,
            dim: usize,
            shape: &SplineShape,
            context: usize,
            hidden: &[usize],
            hypernet: &[f32],
        ) -> &mut Self {
            self.layers.push(Owned::ConditionalSpline {
                dim: u16_of(dim),
                spline: SplineDesc::of(shape),
                context: u16_of(context),
                hidden: Hidden::new(hidden).unwrap_or(Hidden {
                    len: u8::MAX,
                    sizes: [0; MAX_HIDDEN_LAYERS],
                }),
                hypernet: le(hypernet),
            });
            self
        }

        /// Sets the column names (data columns, then context columns).
        pub fn columns<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
            self.columns = names
                .iter()
                .map(|s| s.as_ref())
                .collect::<Vec<_>>()
                .join("\n");
            self
        }

        /// Sets the data scaler: the flow models `(raw - mean) / scale`.
        pub fn scaler(&mut self, mean: &[f32], scale: &[f32]) -> &mut Self {
            self.scaler = le(mean);
            self.scaler.extend(le(scale));
            self
        }

        /// Sets the anomaly thresholds `(quantile, log_prob)`, by increasing quantile.
        pub fn thresholds(&mut self, pairs: &[(f32, f32)]) -> &mut Self {
            self.thresholds = pairs
                .iter()
                .flat_map(|&(q, lp)| [q, lp])
                .flat_map(f32::to_le_bytes)
                .collect();
            self
        }

        /// Encodes and validates the file.
        pub fn encode(&self) -> Result<Vec<u8>, Error> {
            let records: Vec<LayerRecord<'_>> = self.layers.iter().map(Owned::record).collect();
            let header = Header {
                kind: self.kind,
                dim: u16_of(self.dim),
                context_dim: u16_of(self.context_dim),
                layers: u16_of(records.len()),
                marginal_layers: u16_of(self.marginal),
            };
            let metadata = Metadata {
                columns: &self.columns,
                scaler: &self.scaler,
                thresholds: &self.thresholds,
            };
            // Parameter bytes plus a generous allowance for descriptors and varints.
            let params: usize = self
                .layers
                .iter()
                .map(|l| match l {
                    Owned::Affine { params, .. } | Owned::Spline { params, .. } => params.len(),
                    Owned::Coupling {
                        lower, hypernet, ..
                    } => lower.len() + hypernet.len(),
                    Owned::ConditionalSpline { hypernet, .. } => hypernet.len(),
                    Owned::Permute { perm } => perm.len(),
                    Owned::Exp { .. } => 0,
                })
                .sum();
            let cap = 64
                + params
                + 64 * self.layers.len()
                + self.columns.len()
                + self.scaler.len()
                + self.thresholds.len();
            let mut out = vec![0u8; cap];
            let n = encode(&header, &records, &metadata, &mut out)?;
            out.truncate(n);
            Ok(out)
        }
    }
}
