//! The writer: [`encode`], and the owned [`ModelBuilder`] (feature `alloc`).

use super::format::{Preamble, Tail};
use super::{FormatError, Header, LayerRecord, Metadata, Model, CRC, FORMAT_VERSION, MAGIC};
use crate::error::Error;
use serde::Serialize;

/// Writes a model file into `out` and returns its length. `params` is the parameter section
/// (little-endian `f32`) that the records' [`ParamRef`](super::ParamRef)s point into.
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
    use crate::chain::Layer;
    use crate::model::{FlowKind, Grouping, Hidden, ParamRef, SplineDesc};
    use crate::nn::MAX_HIDDEN_LAYERS;
    use crate::spline::SplineShape;
    use crate::weights::Weights;
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
        window: usize,
        grouping: OwnedGrouping,
    }

    enum OwnedGrouping {
        None,
        RowsPerGroup(usize),
        Column(String),
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
                window: 0,
                grouping: OwnedGrouping::None,
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

        /// Adds an [`Affine`](crate::Affine) with per-dimension `loc` and `scale`.
        pub fn affine(&mut self, loc: &[f32], scale: &[f32]) -> &mut Self {
            let params = self.block(loc.iter().chain(scale).copied());
            self.push(LayerRecord::Affine {
                dim: u16_of(loc.len()),
                params,
            })
        }

        /// Adds an [`Exp`](crate::Exp).
        pub fn exp(&mut self, dim: usize) -> &mut Self {
            self.push(LayerRecord::Exp { dim: u16_of(dim) })
        }

        /// Adds a [`Spline`](crate::Spline) with parameters `[uw | uh | ud | ul]`.
        pub fn spline(&mut self, dim: usize, shape: &SplineShape, params: &[f32]) -> &mut Self {
            let params = self.block(params.iter().copied());
            self.push(LayerRecord::Spline {
                dim: u16_of(dim),
                spline: SplineDesc::of(shape),
                params,
            })
        }

        /// Adds a [`SplineCoupling`](crate::SplineCoupling) (conditional if `context > 0`).
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

        /// Adds a [`Permute`](crate::Permute).
        pub fn permute(&mut self, perm: &[u8]) -> &mut Self {
            self.layers.push(Owned::Permute(perm.to_vec()));
            self
        }

        /// Adds a [`ConditionalSpline`](crate::ConditionalSpline).
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

        /// Makes a joint model of two readings (`ModelBuilder::joint(2d, d)`) a windowed one:
        /// `window` readings per window, recordings divided by `rows_per_group` rows or by the
        /// text of `group_column` (at most one of them; neither: one recording).
        pub fn window(
            &mut self,
            window: usize,
            rows_per_group: Option<usize>,
            group_column: Option<&str>,
        ) -> &mut Self {
            self.window = window;
            self.grouping = match (rows_per_group, group_column) {
                (Some(n), _) => OwnedGrouping::RowsPerGroup(n),
                (None, Some(c)) => OwnedGrouping::Column(c.into()),
                (None, None) => OwnedGrouping::None,
            };
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
                window: u16_of(self.window),
                grouping: match &self.grouping {
                    OwnedGrouping::None => Grouping::None,
                    OwnedGrouping::RowsPerGroup(n) => {
                        Grouping::RowsPerGroup(u32::try_from(*n).unwrap_or(u32::MAX))
                    }
                    OwnedGrouping::Column(c) => Grouping::Column(c.as_bytes()),
                },
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
                + self.thresholds.len()
                + match &self.grouping {
                    OwnedGrouping::Column(c) => c.len(),
                    _ => 0,
                };
            let mut out = vec![0u8; cap];
            let n = encode(&header, &records, &metadata, &self.params, &mut out)?;
            out.truncate(n);
            Ok(out)
        }
    }
}
