//! The parts of a model file as types: what the writer encodes and the loader decodes, and
//! how a layer record becomes a [`Layer`].

use super::{FlowKind, FormatError};
use crate::affine::{Affine, Exp};
use crate::chain::Layer;
use crate::conditional_spline::ConditionalSpline;
use crate::coupling::SplineCoupling;
use crate::error::{Error, Feature, LayerError};
use crate::nn::{DenseNN, MAX_HIDDEN_LAYERS};
use crate::permute::Permute;
use crate::spline::{Order, Spline, SplineShape};
use crate::weights::Weights;
use serde::{Deserialize, Serialize};

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
    pub(super) fn of(s: &SplineShape) -> Self {
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

    /// The sizes in use: the first `len` of `sizes` (all of them if `len` claims more).
    pub fn used(&self) -> &[u16] {
        &self.sizes[..usize::from(self.len).min(self.sizes.len())]
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

pub(super) fn weights(b: &[u8]) -> Result<Weights<'_>, Error> {
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
    /// decoding. The writer does not check them: [`encode`](super::encode) rejects invalid UTF-8 when it
    /// parses the file back ([`FormatError::Malformed`]).
    #[serde(deserialize_with = "text_bytes")]
    pub columns: &'a [u8],
    /// Empty, or the data scaler as `[mean (D) | scale (D)]` f32 LE: the flow models
    /// `(raw - mean) / scale`. See [`Model::log_prob_raw`](super::Model::log_prob_raw).
    pub scaler: &'a [u8],
    /// Empty, or anomaly thresholds as `(quantile, log_prob)` f32 LE pairs with increasing
    /// quantiles in `(0, 1)`: the log-density below which that fraction of the validation data
    /// fell at training. In the flow's (standardized) space; for a windowed model, of the
    /// window's log-density in raw units.
    pub thresholds: &'a [u8],
    /// Readings per window of a windowed model (format version 2; 0 otherwise): a joint flow
    /// `p(x₁)·p(x₂ | x₁)` on `D = 2d` of which `x₁` is a reading and `x₂` the next one, scoring
    /// `W` consecutive readings as `log p(x₁) + Σ log p(x_t | x_{t-1})`. See
    /// [`stream`](crate::stream).
    pub window: u16,
    /// Where one recording ends and the next begins in a windowed model's data (format
    /// version 2): a window never spans two recordings.
    pub grouping: Grouping<'a>,
}

/// How a windowed model's rows divide into recordings (format version 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grouping<'a> {
    /// One recording (or not a windowed model).
    #[default]
    None,
    /// Consecutive runs of this many rows.
    RowsPerGroup(u32),
    /// Rows with the same text in this column (UTF-8) belong to one recording.
    Column(#[serde(deserialize_with = "text_bytes")] &'a [u8]),
}

impl<'a> Metadata<'a> {
    /// The column names as text ([`columns`](Self::columns)); `None` if they are not valid
    /// UTF-8, which the columns of a parsed [`Model`](super::Model) always are.
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
pub(super) struct Preamble {
    pub(super) magic: [u8; 4],
    pub(super) version: u16,
}

/// The parameter section, preceded by the padding that aligns it.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(Debug))]
pub(super) struct Tail<'a> {
    pub(super) pad: &'a [u8],
    pub(super) params: &'a [u8],
}
