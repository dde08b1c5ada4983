//! flow-core's error messages without `core::fmt`: the same text as flow-core's `Display`
//! impls (`flow-core/src/error.rs`, `flow-core/src/model.rs`), written through three
//! primitives. `core::fmt` would cost about 2 KB of flash for these messages alone; the host
//! test (`tests/tests/firmware.rs`) compiles this file and checks it against `Display` for
//! every variant, so a changed message in flow-core fails that test.

use flow_core::model::FlowKind;
use flow_core::{Capacity, Error, FormatError, LayerError};

/// Where the text goes.
pub trait Text {
    /// Appends a string.
    fn str(&mut self, s: &str);
    /// Appends an unsigned integer in decimal.
    fn dec(&mut self, v: u32);
    /// Appends `0x` and 8 lowercase hex digits (`{:#010x}`).
    fn hex(&mut self, v: u32);
}

fn dec<T: Text>(t: &mut T, v: usize) {
    // usize is 32 bits on the device; on the host the values come from u16/u32 fields or
    // small counts.
    t.dec(u32::try_from(v).unwrap_or(u32::MAX));
}

fn capacity(c: &Capacity) -> &'static str {
    match c {
        Capacity::Layers => "layers",
        Capacity::Hidden => "hidden width",
        Capacity::Bins => "spline bins",
        Capacity::HiddenLayers => "hidden layers",
    }
}

fn layer(e: &LayerError) -> &'static str {
    match e {
        LayerError::Bins => "bin count must be at least 2 and at most 1000",
        LayerError::Bound => "spline bound must be finite and positive",
        LayerError::Split => "coupling split must be in 1..dim",
        LayerError::Permutation => "permutation is not a permutation of 0..dim",
        LayerError::Scale => "affine scale must be finite and non-zero",
        LayerError::ZeroDim => "dimension must be at least 1",
        LayerError::HypernetShape => "hypernetwork input/output size does not fit the layer",
        LayerError::Context => "context size does not match the layer",
        LayerError::Tables => "precomputed knot tables do not match the flow",
    }
}

fn kind(k: &FlowKind) -> &'static str {
    match k {
        FlowKind::Plain => "Plain",
        FlowKind::Conditional => "Conditional",
        FlowKind::Joint => "Joint",
    }
}

fn format<T: Text>(t: &mut T, e: &FormatError) {
    match e {
        FormatError::Truncated => t.str("file is truncated"),
        FormatError::Magic => t.str("not a model file (bad magic)"),
        FormatError::Version { found, supported } => {
            t.str("format version ");
            t.dec(u32::from(*found));
            t.str(" is newer than the supported version ");
            t.dec(u32::from(*supported));
        }
        FormatError::Checksum { stored, computed } => {
            t.str("checksum mismatch: stored ");
            t.hex(*stored);
            t.str(", computed ");
            t.hex(*computed);
        }
        FormatError::Malformed => t.str("malformed content"),
        FormatError::TrailingBytes => t.str("unexpected bytes before the checksum"),
        FormatError::LayerCount => t.str("inconsistent layer counts"),
        FormatError::Kind { expected, found } => {
            t.str("expected a ");
            t.str(kind(expected));
            t.str(" flow, the file holds a ");
            t.str(kind(found));
            t.str(" flow");
        }
        FormatError::Metadata => t.str("metadata does not fit the model"),
        FormatError::BufferTooSmall => t.str("output buffer too small"),
    }
}

/// Writes `e` as flow-core's `Display` does.
pub fn error<T: Text>(t: &mut T, e: &Error) {
    match e {
        Error::NonFiniteInput => t.str("input contains NaN or infinity"),
        Error::Numerical => t.str("computation produced NaN"),
        Error::OutOfSupport => t.str("point outside the support of the transform"),
        Error::DimensionMismatch { expected, found } => {
            t.str("dimension mismatch: expected ");
            dec(t, *expected);
            t.str(", found ");
            dec(t, *found);
        }
        Error::Capacity {
            what,
            needed,
            limit,
        } => {
            t.str("capacity exceeded: ");
            t.str(capacity(what));
            t.str(" needs ");
            dec(t, *needed);
            t.str(", compiled limit is ");
            dec(t, *limit);
        }
        Error::ParameterCount { expected, found } => {
            t.str("wrong parameter count: expected ");
            dec(t, *expected);
            t.str(", found ");
            dec(t, *found);
        }
        Error::NonFiniteParameter => t.str("a parameter is NaN or infinite"),
        Error::InvalidLayer(l) => {
            t.str("invalid layer: ");
            t.str(layer(l));
        }
        Error::Format(f) => {
            t.str("invalid model file: ");
            format(t, f);
        }
        // `Error` is non-exhaustive: a variant flow-core adds later lands here, and any
        // device/host comparison that meets it fails visibly.
        _ => t.str("unknown flow-core error (update src/errtext.rs)"),
    }
}
