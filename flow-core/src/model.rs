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
//! document: a [`Spline`]'s `[uw | uh | ud | ul]`, a [`DenseNN`]'s `W0, b0, W1, b1, …`, an
//! [`Affine`]'s `[loc | scale]`. A [`Permute`]'s indices are stored in its record, one byte
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
// out does not use some of them (`unused_imports` is allowed there, see lib.rs).
use crate::affine::{Affine, Exp};
use crate::conditional::{ConditionalFlow, ConditionalSpline, JointFlow};
use crate::coupling::SplineCoupling;
use crate::error::{Error, Feature, LayerError};
use crate::flow::{fits, push_layer, Chain, Flow, Layer};
use crate::nn::{DenseNN, MAX_HIDDEN_LAYERS};
use crate::permute::Permute;
use crate::real::Real;
use crate::spline::{Order, Spline, SplineShape};
use crate::weights::Weights;
use crate::wire::{Bad, Reader};
use core::fmt;
use heapless::vec::VecView;
use serde::{Deserialize, Serialize};

/// The file's first four bytes.
pub const MAGIC: [u8; 4] = *b"NFLW";

/// The format version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;

/// The CRC the file ends with: CRC-32/ISO-HDLC (the CRC-32 of zlib, PNG and Ethernet).
/// Computed bit by bit, without a table: 1 KB less flash, for a check that runs once per load.
pub(crate) const CRC: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

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

    #[cfg_attr(not(feature = "alloc"), allow(dead_code))] // used by the alloc-only builder
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

    /// The hypernetwork `input → sizes… → output` with the weights `w` refers to in `params`.
    #[allow(dead_code)] // without the layer kinds that have a hypernetwork
    fn net<'a>(
        self,
        input: usize,
        output: usize,
        w: ParamRef,
        params: Weights<'a>,
    ) -> Result<DenseNN<'a>, Error> {
        let n = usize::from(self.len);
        if n > MAX_HIDDEN_LAYERS {
            return Err(FormatError::Malformed.into());
        }
        let mut sizes = [0usize; MAX_HIDDEN_LAYERS + 2];
        sizes[0] = input;
        for (s, &h) in sizes[1..=n].iter_mut().zip(&self.sizes) {
            *s = usize::from(h);
        }
        sizes[n + 1] = output;
        DenseNN::with_sizes(sizes, n, w.resolve(params)?)
    }
}

fn weights(b: &[u8]) -> Result<Weights<'_>, Error> {
    Weights::new(b).ok_or(Error::Format(FormatError::Malformed))
}

/// A range of `f32` values in the file's parameter section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamRef {
    /// First value.
    pub start: u32,
    /// Number of values.
    pub len: u32,
}

impl ParamRef {
    fn resolve<'a>(&self, params: Weights<'a>) -> Result<Weights<'a>, Error> {
        params
            .slice(self.start as usize, self.len as usize)
            .ok_or(Error::Format(FormatError::Malformed))
    }
}

/// One layer as stored: its description and where its parameters are.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerRecord<'a> {
    /// [`Affine`] with per-dimension `[loc | scale]`.
    Affine {
        /// Dimension.
        dim: u16,
        /// `[loc (dim) | scale (dim)]`.
        params: ParamRef,
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
        /// `[uw | uh | ud | ul]`.
        params: ParamRef,
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
        /// The lower spline's parameters.
        lower: ParamRef,
        /// The hypernetwork's parameters.
        hypernet: ParamRef,
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
        /// The hypernetwork's parameters.
        hypernet: ParamRef,
    },
}

/// The error for a layer kind this build leaves out (`_unused`: the record's fields).
#[allow(dead_code)] // with every feature on
fn unsupported<U>(f: Feature, _unused: U) -> Error {
    Error::Unsupported(f)
}

/// Builds a [`SplineCoupling`] from its record's fields.
#[cfg(feature = "coupling")]
fn coupling<'a>(
    (split, upper_dim): (u16, u16),
    spline: SplineDesc,
    context: u16,
    hidden: Hidden,
    (lower, hypernet): (ParamRef, ParamRef),
    params: Weights<'a>,
) -> Result<Layer<'a>, Error> {
    let shape = spline.shape()?;
    let (split, upper) = (usize::from(split), usize::from(upper_dim));
    if split == 0 || upper == 0 {
        return Err(Error::InvalidLayer(LayerError::Split));
    }
    let lower = Spline::new(split, shape, lower.resolve(params)?)?;
    let nn = hidden.net(
        split + usize::from(context),
        upper.saturating_mul(shape.params_per_dim()),
        hypernet,
        params,
    )?;
    // `nn` has the shape `SplineCoupling::new` checks, and `upper > 0`.
    Ok(Layer::Coupling(SplineCoupling::of(
        lower,
        shape,
        nn,
        usize::from(context),
    )))
}

/// Builds a [`ConditionalSpline`] from its record's fields.
#[cfg(feature = "conditional-spline")]
fn conditional_spline<'a>(
    dim: u16,
    spline: SplineDesc,
    context: u16,
    hidden: Hidden,
    hypernet: ParamRef,
    params: Weights<'a>,
) -> Result<Layer<'a>, Error> {
    let shape = spline.shape()?;
    let dim = usize::from(dim);
    if context == 0 {
        return Err(Error::InvalidLayer(LayerError::Context));
    }
    let nn = hidden.net(
        usize::from(context),
        dim.saturating_mul(shape.params_per_dim()),
        hypernet,
        params,
    )?;
    // `nn` has the output `ConditionalSpline::new` checks, not 0 (`DenseNN` checks), so
    // `dim > 0`.
    Ok(Layer::ConditionalSpline(ConditionalSpline::of(
        dim, shape, nn,
    )))
}

impl<'a> LayerRecord<'a> {
    /// Builds (and so validates) the layer, borrowing its parameters from `params`, the
    /// file's parameter section.
    pub fn layer(&self, params: Weights<'a>) -> Result<Layer<'a>, Error> {
        // A kind this build leaves out (its cargo feature off) is `Error::Unsupported`.
        match *self {
            LayerRecord::Affine { dim, params: p } => {
                #[cfg(feature = "affine")]
                return Ok(Layer::Affine(Affine::per_dim(
                    usize::from(dim),
                    p.resolve(params)?,
                )?));
                #[cfg(not(feature = "affine"))]
                return Err(unsupported(Feature::Affine, (dim, p, params)));
            }
            LayerRecord::Exp { dim } => {
                #[cfg(feature = "exp")]
                return Ok(Layer::Exp(Exp::new(usize::from(dim))?));
                #[cfg(not(feature = "exp"))]
                return Err(unsupported(Feature::Exp, dim));
            }
            LayerRecord::Spline {
                dim,
                spline,
                params: p,
            } => {
                #[cfg(feature = "spline")]
                return Ok(Layer::Spline(Spline::new(
                    usize::from(dim),
                    spline.shape()?,
                    p.resolve(params)?,
                )?));
                #[cfg(not(feature = "spline"))]
                return Err(unsupported(Feature::Spline, (dim, spline, p)));
            }
            LayerRecord::Coupling {
                split,
                upper_dim,
                spline,
                context,
                hidden,
                lower,
                hypernet,
            } => {
                #[cfg(feature = "coupling")]
                return coupling(
                    (split, upper_dim),
                    spline,
                    context,
                    hidden,
                    (lower, hypernet),
                    params,
                );
                #[cfg(not(feature = "coupling"))]
                return Err(unsupported(
                    Feature::Coupling,
                    (split, upper_dim, spline, context, hidden, lower, hypernet),
                ));
            }
            LayerRecord::Permute { perm } => {
                #[cfg(feature = "permute")]
                return Ok(Layer::Permute(Permute::new(perm)?));
                #[cfg(not(feature = "permute"))]
                return Err(unsupported(Feature::Permute, perm));
            }
            LayerRecord::ConditionalSpline {
                dim,
                spline,
                context,
                hidden,
                hypernet,
            } => {
                #[cfg(feature = "conditional-spline")]
                return conditional_spline(dim, spline, context, hidden, hypernet, params);
                #[cfg(not(feature = "conditional-spline"))]
                return Err(unsupported(
                    Feature::ConditionalSpline,
                    (dim, spline, context, hidden, hypernet),
                ));
            }
        }
    }

    /// Number of `f32` parameters the record refers to.
    pub fn param_count(&self) -> usize {
        match self {
            LayerRecord::Affine { params, .. } | LayerRecord::Spline { params, .. } => {
                params.len as usize
            }
            LayerRecord::Coupling {
                lower, hypernet, ..
            } => lower.len as usize + hypernet.len as usize,
            LayerRecord::ConditionalSpline { hypernet, .. } => hypernet.len as usize,
            LayerRecord::Exp { .. } | LayerRecord::Permute { .. } => 0,
        }
    }
}

/// Optional information stored with a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata<'a> {
    /// Column names as UTF-8 text, separated by `\n`: the `D` data columns, then the `C`
    /// context columns. Empty when unknown. [`columns_str`](Self::columns_str) gives the text.
    ///
    /// Stored as a string (the encoding of a byte string: its length, then its bytes) and
    /// checked to be valid UTF-8 when decoded, so a parsed model's columns always are; kept as
    /// bytes so that a loader that never reads them as text does not carry `core`'s UTF-8
    /// decoding. The writer does not check them: [`encode`] rejects invalid UTF-8 when it
    /// parses the file back ([`FormatError::Malformed`]).
    #[serde(deserialize_with = "text_bytes")]
    pub columns: &'a [u8],
    /// Empty, or the data scaler as `[mean (D) | scale (D)]` f32 LE: the flow models
    /// `(raw - mean) / scale`. See [`Model::log_prob_raw`].
    pub scaler: &'a [u8],
    /// Empty, or anomaly thresholds as `(quantile, log_prob)` f32 LE pairs with increasing
    /// quantiles in `(0, 1)`: the log-density below which that fraction of the validation data
    /// fell at training. In the flow's (standardized) space.
    pub thresholds: &'a [u8],
}

impl<'a> Metadata<'a> {
    /// The column names as text ([`columns`](Self::columns)); `None` if they are not valid
    /// UTF-8, which the columns of a parsed [`Model`] always are.
    pub fn columns_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.columns).ok()
    }
}

/// serde's decoding of [`Metadata::columns`]: a string (so valid UTF-8), kept as its bytes.
fn text_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
    <&'de str>::deserialize(d).map(str::as_bytes)
}

#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(Debug))]
struct Preamble {
    magic: [u8; 4],
    version: u16,
}

/// The parameter section, preceded by the padding that aligns it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(Debug))]
struct Tail<'a> {
    pad: &'a [u8],
    params: &'a [u8],
}

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

/// The next of the `left` layers whose records start `rest`: [`Model::layers`]' step. Not
/// inlined, so that the decoding and building is not repeated in every flow type's loader.
#[inline(never)]
fn next_layer<'a>(
    rest: &mut &'a [u8],
    left: &mut u16,
    params: Weights<'a>,
) -> Option<Result<Layer<'a>, Error>> {
    *left = left.checked_sub(1)?;
    Some(next_record(rest).and_then(|rec| rec.layer(params)))
}

/// The record at the front of `rest`, which then starts after it. (Inlined into its two
/// callers: smaller than the call and the copy of the record out of it.)
#[inline(always)]
fn next_record<'a>(rest: &mut &'a [u8]) -> Result<LayerRecord<'a>, Error> {
    let mut r = Reader::new(rest);
    let rec = LayerRecord::read(&mut r);
    r.done()?;
    *rest = r.rest();
    Ok(rec)
}

/// A part of the file as the loader decodes it: postcard's encoding, by the hand-written
/// decoder of [`crate::wire`] (the writer uses postcard and serde). What does not decode is
/// left in the [`Reader`], which then reads zeros: the value read is garbage then.
trait Wire<'a>: Sized {
    fn read(r: &mut Reader<'a>) -> Self;
}

/// Decodes one part from the front of `b`; returns it and the bytes after it.
fn take<'a, T: Wire<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
    let mut r = Reader::new(b);
    let v = T::read(&mut r);
    r.done()?;
    Ok((v, r.rest()))
}

/// The parts after the preamble, decoded in order by one [`Reader`] (left on the bytes after
/// them): the header, the records' bytes (every record decoded, to find where they end) and
/// the number of parameters they refer to, the metadata and the tail.
#[allow(clippy::type_complexity)] // the parts, in the file's order
fn parts<'a>(
    r: &mut Reader<'a>,
) -> Result<(Header, (&'a [u8], usize), Metadata<'a>, Tail<'a>), Bad> {
    let header = Header::read(r);
    let records = r.rest();
    let mut count = 0usize;
    // Stops at the first error: the rest would read nothing.
    for _ in 0..header.layers {
        if r.done().is_err() {
            break;
        }
        count = count.saturating_add(LayerRecord::read(r).param_count());
    }
    let records = records
        .get(..records.len() - r.rest().len())
        .ok_or(Bad::Malformed)?;
    let (metadata, tail) = (Metadata::read(r), Tail::read(r));
    r.done()?;
    Ok((header, (records, count), metadata, tail))
}

impl Wire<'_> for FlowKind {
    fn read(r: &mut Reader<'_>) -> Self {
        match r.variant(3) {
            0 => FlowKind::Plain,
            1 => FlowKind::Conditional,
            _ => FlowKind::Joint,
        }
    }
}

impl Wire<'_> for Order {
    fn read(r: &mut Reader<'_>) -> Self {
        match r.variant(2) {
            0 => Order::Linear,
            #[cfg(feature = "quadratic")]
            _ => Order::Quadratic,
            #[cfg(not(feature = "quadratic"))]
            _ => {
                r.fail(Bad::Unsupported(Feature::Quadratic));
                Order::Linear
            }
        }
    }
}

impl Wire<'_> for Header {
    fn read(r: &mut Reader<'_>) -> Self {
        Header {
            kind: FlowKind::read(r),
            dim: r.u16(),
            context_dim: r.u16(),
            layers: r.u16(),
            marginal_layers: r.u16(),
        }
    }
}

impl Wire<'_> for SplineDesc {
    fn read(r: &mut Reader<'_>) -> Self {
        SplineDesc {
            bins: r.u16(),
            bound: r.f32(),
            order: Order::read(r),
        }
    }
}

impl Wire<'_> for Hidden {
    fn read(r: &mut Reader<'_>) -> Self {
        let len = r.u8();
        let mut sizes = [0u16; MAX_HIDDEN_LAYERS];
        for s in &mut sizes {
            *s = r.u16();
        }
        Hidden { len, sizes }
    }
}

impl Wire<'_> for ParamRef {
    fn read(r: &mut Reader<'_>) -> Self {
        ParamRef {
            start: r.u32(),
            len: r.u32(),
        }
    }
}

impl<'a> Wire<'a> for LayerRecord<'a> {
    #[allow(unreachable_code)] // without any layer kind
    fn read(r: &mut Reader<'a>) -> Self {
        // A kind this build leaves out is rejected as soon as its tag is read.
        match r.variant(6) {
            #[cfg(feature = "affine")]
            0 => LayerRecord::Affine {
                dim: r.u16(),
                params: ParamRef::read(r),
            },
            #[cfg(feature = "exp")]
            1 => LayerRecord::Exp { dim: r.u16() },
            #[cfg(feature = "spline")]
            2 => LayerRecord::Spline {
                dim: r.u16(),
                spline: SplineDesc::read(r),
                params: ParamRef::read(r),
            },
            #[cfg(feature = "coupling")]
            3 => LayerRecord::Coupling {
                split: r.u16(),
                upper_dim: r.u16(),
                spline: SplineDesc::read(r),
                context: r.u16(),
                hidden: Hidden::read(r),
                lower: ParamRef::read(r),
                hypernet: ParamRef::read(r),
            },
            #[cfg(feature = "permute")]
            4 => LayerRecord::Permute { perm: r.byte_str() },
            #[cfg(feature = "conditional-spline")]
            5 => LayerRecord::ConditionalSpline {
                dim: r.u16(),
                spline: SplineDesc::read(r),
                context: r.u16(),
                hidden: Hidden::read(r),
                hypernet: ParamRef::read(r),
            },
            v => {
                r.fail(Bad::Unsupported(match v {
                    0 => Feature::Affine,
                    1 => Feature::Exp,
                    2 => Feature::Spline,
                    3 => Feature::Coupling,
                    4 => Feature::Permute,
                    _ => Feature::ConditionalSpline,
                }));
                LayerRecord::Exp { dim: 0 }
            }
        }
    }
}

impl<'a> Wire<'a> for Metadata<'a> {
    fn read(r: &mut Reader<'a>) -> Self {
        Metadata {
            columns: r.str(),
            scaler: r.byte_str(),
            thresholds: r.byte_str(),
        }
    }
}

impl Wire<'_> for Preamble {
    fn read(r: &mut Reader<'_>) -> Self {
        Preamble {
            magic: r.bytes(4).try_into().unwrap_or([0; 4]),
            version: r.u16(),
        }
    }
}

impl<'a> Wire<'a> for Tail<'a> {
    fn read(r: &mut Reader<'a>) -> Self {
        Tail {
            pad: r.byte_str(),
            params: r.byte_str(),
        }
    }
}

macro_rules! public_take {
    ($($t:ty),*) => {$(
        impl<'a> $t {
            /// Decodes one from the front of `bytes` as the loader does (postcard's encoding);
            /// returns it and the bytes after it.
            pub fn take(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), Error> {
                take(bytes)
            }
        }
    )*};
}
public_take!(Header, LayerRecord<'a>, Metadata<'a>);

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
        let (header, (records, param_count), metadata, tail) = parts(&mut r)?;
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
    /// [`Chain::from_layers`](crate::flow::Chain::from_layers) would find it).
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
    /// [`Chain::from_layers`](crate::flow::Chain::from_layers) checks them.
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

/// Writes a model file into `out` and returns its length. `params` is the parameter section
/// (little-endian `f32`) that the records' [`ParamRef`]s point into.
///
/// The result is parsed back before returning, so an `Ok` is always a valid file. On error,
/// `out` may hold partial bytes: write to a temporary buffer and persist only on success.
pub fn encode(
    header: &Header,
    layers: &[LayerRecord<'_>],
    metadata: &Metadata<'_>,
    params: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    fn put<T: Serialize>(v: &T, out: &mut [u8], used: &mut usize) -> Result<(), Error> {
        let dst = out.get_mut(*used..).ok_or(FormatError::BufferTooSmall)?;
        *used += postcard::to_slice(v, dst)
            .map_err(|_| FormatError::BufferTooSmall)?
            .len();
        Ok(())
    }
    fn varint_len(mut v: usize) -> usize {
        let mut n = 1;
        while v >= 0x80 {
            v >>= 7;
            n += 1;
        }
        n
    }
    if usize::from(header.layers) != layers.len() {
        return Err(FormatError::LayerCount.into());
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
    // Padding p (0..=3 zero bytes, encoded as a varint 1-byte length plus the bytes) such that
    // the parameters start at a multiple of 4 from the start of the file.
    let data_at = |p: usize| used + 1 + p + varint_len(params.len());
    let pad_len = (0..4).find(|&p| data_at(p) % 4 == 0).unwrap_or(0);
    let tail = Tail {
        pad: &[0u8; 3][..pad_len],
        params,
    };
    put(&tail, out, &mut used)?;
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

    /// A record whose permutation is owned (the only bytes a record holds itself).
    enum Owned {
        Record(LayerRecord<'static>),
        Permute(Vec<u8>),
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
        params: Vec<u8>,
        columns: String,
        scaler: Vec<u8>,
        thresholds: Vec<u8>,
    }

    fn u16_of(v: usize) -> u16 {
        u16::try_from(v).unwrap_or(u16::MAX)
    }

    fn hidden_of(sizes: &[usize]) -> Hidden {
        Hidden::new(sizes).unwrap_or(Hidden {
            len: u8::MAX,
            sizes: [0; MAX_HIDDEN_LAYERS],
        })
    }

    impl ModelBuilder {
        fn new(kind: FlowKind, dim: usize, context_dim: usize) -> Self {
            Self {
                kind,
                dim,
                context_dim,
                marginal: 0,
                layers: Vec::new(),
                params: Vec::new(),
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

        /// Appends `values` to the parameter section.
        fn block(&mut self, values: impl IntoIterator<Item = f32>) -> ParamRef {
            let start = self.params.len() / 4;
            for v in values {
                self.params.extend_from_slice(&v.to_le_bytes());
            }
            ParamRef {
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len: u32::try_from(self.params.len() / 4 - start).unwrap_or(u32::MAX),
            }
        }

        fn push(&mut self, r: LayerRecord<'static>) -> &mut Self {
            self.layers.push(Owned::Record(r));
            self
        }

        /// Adds an [`Affine`] with per-dimension `loc` and `scale`.
        pub fn affine(&mut self, loc: &[f32], scale: &[f32]) -> &mut Self {
            let params = self.block(loc.iter().chain(scale).copied());
            self.push(LayerRecord::Affine {
                dim: u16_of(loc.len()),
                params,
            })
        }

        /// Adds an [`Exp`].
        pub fn exp(&mut self, dim: usize) -> &mut Self {
            self.push(LayerRecord::Exp { dim: u16_of(dim) })
        }

        /// Adds a [`Spline`] with parameters `[uw | uh | ud | ul]`.
        pub fn spline(&mut self, dim: usize, shape: &SplineShape, params: &[f32]) -> &mut Self {
            let params = self.block(params.iter().copied());
            self.push(LayerRecord::Spline {
                dim: u16_of(dim),
                spline: SplineDesc::of(shape),
                params,
            })
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
            let lower = self.block(lower.iter().copied());
            let hypernet = self.block(hypernet.iter().copied());
            self.push(LayerRecord::Coupling {
                split: u16_of(split),
                upper_dim: u16_of(upper_dim),
                spline: SplineDesc::of(shape),
                context: u16_of(context),
                hidden: hidden_of(hidden),
                lower,
                hypernet,
            })
        }

        /// Adds a [`Permute`].
        pub fn permute(&mut self, perm: &[u8]) -> &mut Self {
            self.layers.push(Owned::Permute(perm.to_vec()));
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
            let hypernet = self.block(hypernet.iter().copied());
            self.push(LayerRecord::ConditionalSpline {
                dim: u16_of(dim),
                spline: SplineDesc::of(shape),
                context: u16_of(context),
                hidden: hidden_of(hidden),
                hypernet,
            })
        }

        /// Adds a copy of a built layer (its parameters are copied into this file).
        pub fn layer(&mut self, layer: &Layer<'_>) -> &mut Self {
            #[allow(unused_variables)] // with only parameter-free kinds compiled in
            let v = |w: Weights<'_>| w.iter().collect::<Vec<f32>>();
            match layer {
                #[cfg(feature = "affine")]
                Layer::Affine(a) => {
                    let (loc, scale): (Vec<f32>, Vec<f32>) =
                        (0..a.dim()).map(|j| a.loc_scale(j)).unzip();
                    self.affine(&loc, &scale)
                }
                #[cfg(feature = "exp")]
                Layer::Exp(e) => self.exp(e.dim()),
                #[cfg(feature = "spline")]
                Layer::Spline(s) => self.spline(s.dim(), s.shape(), &v(s.weights())),
                #[cfg(feature = "coupling")]
                Layer::Coupling(c) => self.coupling(
                    c.split(),
                    c.upper_dim(),
                    c.upper_shape(),
                    c.context_dim(),
                    c.hypernet().hidden_sizes(),
                    &v(c.lower().weights()),
                    &v(c.hypernet().weights()),
                ),
                #[cfg(feature = "permute")]
                Layer::Permute(p) => self.permute(p.indices()),
                #[cfg(feature = "conditional-spline")]
                Layer::ConditionalSpline(c) => self.conditional_spline(
                    c.dim(),
                    c.shape(),
                    c.context_dim(),
                    c.hypernet().hidden_sizes(),
                    &v(c.hypernet().weights()),
                ),
                #[allow(unreachable_patterns)]
                _ => self,
            }
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
            self.scaler = mean
                .iter()
                .chain(scale)
                .flat_map(|v| v.to_le_bytes())
                .collect();
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
            let records: Vec<LayerRecord<'_>> = self
                .layers
                .iter()
                .map(|l| match l {
                    Owned::Record(r) => *r,
                    Owned::Permute(p) => LayerRecord::Permute { perm: p },
                })
                .collect();
            let header = Header {
                kind: self.kind,
                dim: u16_of(self.dim),
                context_dim: u16_of(self.context_dim),
                layers: u16_of(records.len()),
                marginal_layers: u16_of(self.marginal),
            };
            let metadata = Metadata {
                columns: self.columns.as_bytes(),
                scaler: &self.scaler,
                thresholds: &self.thresholds,
            };
            // Parameters plus a generous allowance for descriptors, varints and padding.
            let perms: usize = self
                .layers
                .iter()
                .map(|l| match l {
                    Owned::Permute(p) => p.len(),
                    Owned::Record(_) => 0,
                })
                .sum();
            let cap = 96
                + self.params.len()
                + perms
                + 64 * self.layers.len()
                + self.columns.len()
                + self.scaler.len()
                + self.thresholds.len();
            let mut out = vec![0u8; cap];
            let n = encode(&header, &records, &metadata, &self.params, &mut out)?;
            out.truncate(n);
            Ok(out)
        }
    }
}

/// The loader's decoder against postcard + serde, the file's writer: the same value and the
/// same rest, or the same error, on encoded parts, on every truncation and bit flip of them,
/// on random bytes and on hand-made edge cases.
#[cfg(test)]
mod wire_tests {
    extern crate std;
    use super::*;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg32;
    use std::format;
    use std::vec::Vec;

    /// The loader's former decoder: postcard, with its errors mapped as the loader maps them.
    fn reference<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
        postcard::take_from_bytes(b).map_err(|e| {
            Error::Format(match e {
                postcard::Error::DeserializeUnexpectedEnd => FormatError::Truncated,
                _ => FormatError::Malformed,
            })
        })
    }

    /// Compares the two decoders on `b` (through `Debug`, so that NaN bounds compare equal).
    fn agree<'a, T: Wire<'a> + Deserialize<'a> + fmt::Debug>(b: &'a [u8]) -> bool {
        let ours = take::<T>(b);
        let theirs = reference::<T>(b);
        assert_eq!(
            format!("{ours:?}"),
            format!("{theirs:?}"),
            "{} on {b:02x?}",
            core::any::type_name::<T>()
        );
        ours.is_ok()
    }

    /// Every part type on `b`; how many decoded.
    fn agree_all(b: &[u8]) -> usize {
        [
            agree::<Preamble>(b),
            agree::<Header>(b),
            agree::<LayerRecord<'_>>(b),
            agree::<Metadata<'_>>(b),
            agree::<Tail<'_>>(b),
            agree::<SplineDesc>(b),
            agree::<Hidden>(b),
            agree::<ParamRef>(b),
            agree::<FlowKind>(b),
            agree::<Order>(b),
        ]
        .iter()
        .filter(|&&ok| ok)
        .count()
    }

    /// A value of 16 bits, drawn to hit every varint length and the extremes.
    fn u16_of(rng: &mut Pcg32) -> u16 {
        match rng.next_u32() % 4 {
            0 => (rng.next_u32() % 128) as u16,
            1 => [0, 127, 128, 16383, 16384, u16::MAX][rng.next_u32() as usize % 6],
            _ => rng.next_u32() as u16,
        }
    }

    fn u32_of(rng: &mut Pcg32) -> u32 {
        match rng.next_u32() % 3 {
            0 => rng.next_u32() % 300,
            1 => [0, 127, 128, 1 << 21, (1 << 28) - 1, 1 << 28, u32::MAX]
                [rng.next_u32() as usize % 7],
            _ => rng.next_u32() >> (rng.next_u32() % 32),
        }
    }

    fn spline_of(rng: &mut Pcg32) -> SplineDesc {
        SplineDesc {
            bins: u16_of(rng),
            bound: f32::from_bits(rng.next_u32()),
            order: if rng.next_u32() & 1 == 0 {
                Order::Linear
            } else {
                Order::Quadratic
            },
        }
    }

    fn hidden_of(rng: &mut Pcg32) -> Hidden {
        Hidden {
            len: rng.next_u32() as u8,
            sizes: core::array::from_fn(|_| u16_of(rng)),
        }
    }

    fn pref(rng: &mut Pcg32) -> ParamRef {
        ParamRef {
            start: u32_of(rng),
            len: u32_of(rng),
        }
    }

    /// Encodes a random value of every part type with postcard.
    fn encoded_parts(rng: &mut Pcg32, bytes: &[u8], text: &str) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 512];
        let mut out = Vec::new();
        let mut put = |v: &dyn erased::Ser| out.push(v.enc(&mut buf));
        let n = rng.next_u32() as usize % (bytes.len() + 1);
        let m = rng.next_u32() as usize % (bytes.len() + 1);
        put(&Preamble {
            magic: [b'N', b'F', rng.next_u32() as u8, b'W'],
            version: u16_of(rng),
        });
        put(&Header {
            kind: [FlowKind::Plain, FlowKind::Conditional, FlowKind::Joint]
                [rng.next_u32() as usize % 3],
            dim: u16_of(rng),
            context_dim: u16_of(rng),
            layers: u16_of(rng),
            marginal_layers: u16_of(rng),
        });
        let record = match rng.next_u32() % 6 {
            0 => LayerRecord::Affine {
                dim: u16_of(rng),
                params: pref(rng),
            },
            1 => LayerRecord::Exp { dim: u16_of(rng) },
            2 => LayerRecord::Spline {
                dim: u16_of(rng),
                spline: spline_of(rng),
                params: pref(rng),
            },
            3 => LayerRecord::Coupling {
                split: u16_of(rng),
                upper_dim: u16_of(rng),
                spline: spline_of(rng),
                context: u16_of(rng),
                hidden: hidden_of(rng),
                lower: pref(rng),
                hypernet: pref(rng),
            },
            4 => LayerRecord::Permute { perm: &bytes[..n] },
            _ => LayerRecord::ConditionalSpline {
                dim: u16_of(rng),
                spline: spline_of(rng),
                context: u16_of(rng),
                hidden: hidden_of(rng),
                hypernet: pref(rng),
            },
        };
        put(&record);
        let cut = text
            .char_indices()
            .map(|(i, _)| i)
            .nth(rng.next_u32() as usize % 8)
            .unwrap_or(text.len());
        put(&Metadata {
            columns: &text.as_bytes()[..cut],
            scaler: &bytes[..m],
            thresholds: &bytes[m..],
        });
        put(&Tail {
            pad: &bytes[..n.min(3)],
            params: &bytes[n..],
        });
        out
    }

    /// Object-safe postcard encoding of the parts.
    mod erased {
        use super::*;
        pub(super) trait Ser {
            fn enc(&self, buf: &mut [u8]) -> Vec<u8>;
        }
        impl<T: Serialize> Ser for T {
            fn enc(&self, buf: &mut [u8]) -> Vec<u8> {
                postcard::to_slice(self, buf).unwrap().to_vec()
            }
        }
    }

    #[test]
    fn encoded_parts_their_truncations_and_bit_flips_decode_alike() {
        let mut rng = Pcg32::seed_from_u64(0x5EED);
        let bytes: Vec<u8> = (0..300).map(|i| (i * 37 % 251) as u8).collect();
        let text = "x\ny\nα\nβγ\n温度\nz";
        let (mut cases, mut decoded) = (0usize, 0usize);
        for _ in 0..120 {
            for mut enc in encoded_parts(&mut rng, &bytes, text) {
                // The encoding itself, followed by other bytes too.
                decoded += agree_all(&enc);
                enc.extend_from_slice(&[0x81, 0x00, 0xFF]);
                decoded += agree_all(&enc);
                enc.truncate(enc.len() - 3);
                cases += 2;
                for n in 0..enc.len() {
                    decoded += agree_all(&enc[..n]);
                    cases += 1;
                }
                for i in 0..enc.len().min(40) {
                    for bit in 0..8 {
                        enc[i] ^= 1 << bit;
                        decoded += agree_all(&enc);
                        enc[i] ^= 1 << bit;
                        cases += 1;
                    }
                }
            }
        }
        assert!(decoded > cases, "{decoded} of {cases}");
    }

    #[test]
    fn random_bytes_and_edge_cases_decode_alike() {
        let mut rng = Pcg32::seed_from_u64(7);
        let mut b = [0u8; 48];
        for _ in 0..100_000 {
            let n = rng.next_u32() as usize % b.len();
            for x in &mut b[..n] {
                // Biased towards varint continuation bytes and small values.
                *x = match rng.next_u32() % 4 {
                    0 => 0x80 | rng.next_u32() as u8,
                    1 => rng.next_u32() as u8 % 4,
                    _ => rng.next_u32() as u8,
                };
            }
            agree_all(&b[..n]);
        }
        // Varints: non-minimal, at and beyond the last byte's limit, over-long; lengths past
        // the end and beyond 32 bits; invalid UTF-8; unknown variants.
        let edges: &[&[u8]] = &[
            &[0x80, 0x00],
            &[0xFF, 0xFF, 0x03],
            &[0xFF, 0xFF, 0x04],
            &[0x80, 0x80, 0x80, 0x00],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x10],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[
                0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0xAA,
            ],
            &[
                0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0xAA,
            ],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            &[0x85, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 2, 3, 4, 5, 0, 0],
            &[0x02, 0xC3, 0x28, 0x00, 0x00],
            &[0x02, 0xCE, 0xB1, 0x00, 0x00],
            &[0x03],
            &[0x06, 0x01],
            &[0x86, 0x00, 0x01],
            &[0x04, 0x03, 0x01, 0x02, 0x00],
        ];
        for e in edges {
            for n in 0..=e.len() {
                agree_all(&e[..n]);
            }
        }
    }
}
