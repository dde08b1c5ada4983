//! The loader's decoder of the file's parts: postcard's encoding, by the hand-written reader
//! of [`crate::wire`].

use super::format::{Preamble, Tail};
use super::{
    FlowKind, Grouping, Header, Hidden, LayerRecord, Metadata, ParamRef, SplineDesc, FORMAT_VERSION,
};
use crate::chain::Layer;
use crate::error::{Error, Feature};
use crate::nn::MAX_HIDDEN_LAYERS;
use crate::spline::Order;
use crate::weights::Weights;
use crate::wire::{Bad, Reader};

/// The next of the `left` layers whose records start `rest`: [`Model::layers`](super::Model::layers)' step. Not
/// inlined, so that the decoding and building is not repeated in every flow type's loader.
#[inline(never)]
pub(super) fn next_layer<'a>(
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
pub(super) fn next_record<'a>(rest: &mut &'a [u8]) -> Result<LayerRecord<'a>, Error> {
    let mut r = Reader::new(rest);
    let rec = LayerRecord::read(&mut r);
    r.done()?;
    *rest = r.rest();
    Ok(rec)
}

/// A part of the file as the loader decodes it: postcard's encoding, by the hand-written
/// decoder of [`crate::wire`] (the writer uses postcard and serde). What does not decode is
/// left in the [`Reader`], which then reads zeros: the value read is garbage then.
pub(super) trait Wire<'a>: Sized {
    fn read(r: &mut Reader<'a>) -> Self;
}

/// Decodes one part from the front of `b`; returns it and the bytes after it.
pub(super) fn take<'a, T: Wire<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
    let mut r = Reader::new(b);
    let v = T::read(&mut r);
    r.done()?;
    Ok((v, r.rest()))
}

/// The parts after the preamble, decoded in order by one [`Reader`] (left on the bytes after
/// them): the header, the records' bytes (every record decoded, to find where they end) and
/// the number of parameters they refer to, the metadata and the tail.
#[allow(clippy::type_complexity)] // the parts, in the file's order
pub(super) fn parts<'a>(
    r: &mut Reader<'a>,
    version: u16,
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
    let metadata = Metadata::read_version(r, version);
    let tail = Tail::read(r);
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
        Metadata::read_version(r, FORMAT_VERSION)
    }
}

impl<'a> Metadata<'a> {
    /// The metadata as format `version` writes it: version 1 has no window and grouping.
    fn read_version(r: &mut Reader<'a>, version: u16) -> Self {
        let mut m = Metadata {
            columns: r.str(),
            scaler: r.byte_str(),
            thresholds: r.byte_str(),
            window: 0,
            grouping: Grouping::None,
        };
        if version >= 2 {
            m.window = r.u16();
            m.grouping = Grouping::read(r);
        }
        m
    }
}

impl<'a> Wire<'a> for Grouping<'a> {
    fn read(r: &mut Reader<'a>) -> Self {
        match r.variant(3) {
            0 => Grouping::None,
            1 => Grouping::RowsPerGroup(r.u32()),
            _ => Grouping::Column(r.str()),
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
