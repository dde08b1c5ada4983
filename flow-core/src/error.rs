//! The crate's errors: [`Error`] and the kinds it names, [`FormatError`] among them. The bottom
//! of the crate: it imports nothing of it.
//!
//! Every message is written once, as a `&'static str` ([`Error::text`], [`FormatError::text`],
//! [`LayerError::text`], [`Capacity::text`], [`Feature::name`], [`FlowKind::name`]), with `{}`
//! where a number or a name goes, and filled in one place: [`Error::pieces`] gives a message
//! as words and values in order. `Display` writes those pieces; a device that prints errors
//! without `core::fmt` writes the same pieces with its own digits.

use core::fmt;

/// Everything that can go wrong in `flow-core`. No operation panics; each failure is one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An input or context value was NaN or infinite.
    NonFiniteInput,
    /// A computation produced NaN (e.g. a hypernetwork overflowed on a huge input).
    Numerical,
    /// A point lies outside the support of a transform's inverse (e.g. `Exp` at `y <= 0`).
    OutOfSupport,
    /// A dimension does not match: what the layer or model has, and what was asked for.
    DimensionMismatch {
        /// The dimension the model or layer has.
        expected: usize,
        /// The dimension that was given.
        found: usize,
    },
    /// A size exceeds a compile-time capacity.
    Capacity {
        /// Which capacity.
        what: Capacity,
        /// The size required.
        needed: usize,
        /// The compile-time limit.
        limit: usize,
    },
    /// A parameter block has the wrong number of values.
    ParameterCount {
        /// Values the layer description requires.
        expected: usize,
        /// Values present.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    NonFiniteParameter,
    /// A layer description is invalid.
    InvalidLayer(LayerError),
    /// A model file is invalid.
    Format(FormatError),
    /// The model needs a layer kind or spline order that this build of flow-core leaves out:
    /// enable that cargo feature.
    Unsupported(Feature),
}

/// A part of flow-core that a build can leave out, by its cargo feature. The default
/// features include them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// [`Affine`](crate::Affine) layers (feature `affine`).
    Affine,
    /// [`Exp`](crate::Exp) layers (feature `exp`).
    Exp,
    /// Element-wise [`Spline`](crate::Spline) layers (feature `spline`).
    Spline,
    /// [`SplineCoupling`](crate::SplineCoupling) layers (feature `coupling`).
    Coupling,
    /// [`Permute`](crate::Permute) layers (feature `permute`).
    Permute,
    /// [`ConditionalSpline`](crate::ConditionalSpline) layers (feature `conditional-spline`).
    ConditionalSpline,
    /// The rational-quadratic spline order, [`Order::Quadratic`](crate::Order) (feature
    /// `quadratic`); the linear order is always there.
    Quadratic,
}

impl Feature {
    /// The cargo feature's name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Affine => "affine",
            Feature::Exp => "exp",
            Feature::Spline => "spline",
            Feature::Coupling => "coupling",
            Feature::Permute => "permute",
            Feature::ConditionalSpline => "conditional-spline",
            Feature::Quadratic => "quadratic",
        }
    }

    /// Whether this build includes it.
    pub const fn enabled(self) -> bool {
        match self {
            Feature::Affine => cfg!(feature = "affine"),
            Feature::Exp => cfg!(feature = "exp"),
            Feature::Spline => cfg!(feature = "spline"),
            Feature::Coupling => cfg!(feature = "coupling"),
            Feature::Permute => cfg!(feature = "permute"),
            Feature::ConditionalSpline => cfg!(feature = "conditional-spline"),
            Feature::Quadratic => cfg!(feature = "quadratic"),
        }
    }
}

/// The compile-time capacities a model can exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// Number of layers (`L`).
    Layers,
    /// Width of a hidden layer or hypernetwork input (`H`).
    Hidden,
    /// Number of spline bins (`K`).
    Bins,
    /// Number of hidden layers in one hypernetwork.
    HiddenLayers,
}

/// Why a layer description is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerError {
    /// Fewer than 2 bins, or so many that the minimum bin size cannot hold (`1e-3·K > 1`).
    Bins,
    /// The bound is not a finite positive number.
    Bound,
    /// The coupling split is not in `1..dim`.
    Split,
    /// The permutation is not a permutation of `0..dim`.
    Permutation,
    /// An affine scale is zero or not finite.
    Scale,
    /// A dimension is zero.
    ZeroDim,
    /// The hypernetwork's input or output size does not fit the layer.
    HypernetShape,
    /// A conditional layer in an unconditional flow, or a context size that does not match.
    Context,
    /// Precomputed knot tables that are not the flow's own (see
    /// [`Flow::set_tables`](crate::Flow::set_tables)).
    Tables,
}

/// Why a byte string is not a valid model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file ends before a part is complete.
    Truncated,
    /// The first four bytes are not [`MAGIC`](crate::model::MAGIC).
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

/// What the layers of a model make together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FlowKind {
    /// `p(x)`: a [`Flow`](crate::Flow).
    Plain,
    /// `p(x | c)`: a [`ConditionalFlow`](crate::ConditionalFlow) with context size
    /// `context_dim`.
    Conditional,
    /// `p(x₁)·p(x₂ | x₁)`: a [`JointFlow`](crate::JointFlow) with `x₁` of size `context_dim`.
    Joint,
}

impl FlowKind {
    /// Its name in messages: `Plain`, `Conditional`, `Joint`.
    pub const fn name(self) -> &'static str {
        match self {
            FlowKind::Plain => "Plain",
            FlowKind::Conditional => "Conditional",
            FlowKind::Joint => "Joint",
        }
    }
}

impl Capacity {
    /// What it counts, as the messages name it.
    pub const fn text(self) -> &'static str {
        match self {
            Capacity::Layers => "layers",
            Capacity::Hidden => "hidden width",
            Capacity::Bins => "spline bins",
            Capacity::HiddenLayers => "hidden layers",
        }
    }
}

impl LayerError {
    /// The message.
    pub const fn text(self) -> &'static str {
        match self {
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
}

impl FormatError {
    /// The message, `{}` where a field goes, in the order of the fields: `Version`'s two
    /// versions in decimal, `Checksum`'s two CRCs as `0x` and 8 hex digits, `Kind`'s two
    /// [`FlowKind::name`]s.
    pub const fn text(self) -> &'static str {
        match self {
            FormatError::Truncated => "file is truncated",
            FormatError::Magic => "not a model file (bad magic)",
            FormatError::Version { .. } => {
                "format version {} is newer than the supported version {}"
            }
            FormatError::Checksum { .. } => "checksum mismatch: stored {}, computed {}",
            FormatError::Malformed => "malformed content",
            FormatError::TrailingBytes => "unexpected bytes before the checksum",
            FormatError::LayerCount => "inconsistent layer counts",
            FormatError::Kind { .. } => "expected a {} flow, the file holds a {} flow",
            FormatError::Metadata => "metadata does not fit the model",
            FormatError::BufferTooSmall => "output buffer too small",
        }
    }
}

impl Error {
    /// The message, `{}` where a field goes, in the order of the fields: numbers in decimal,
    /// [`Capacity::text`], [`LayerError::text`], the [`FormatError`]'s own message
    /// ([`FormatError::text`] with its slots filled) and [`Feature::name`].
    pub const fn text(self) -> &'static str {
        match self {
            Error::NonFiniteInput => "input contains NaN or infinity",
            Error::Numerical => "computation produced NaN",
            Error::OutOfSupport => "point outside the support of the transform",
            Error::DimensionMismatch { .. } => "dimension mismatch: expected {}, found {}",
            Error::Capacity { .. } => "capacity exceeded: {} needs {}, compiled limit is {}",
            Error::ParameterCount { .. } => "wrong parameter count: expected {}, found {}",
            Error::NonFiniteParameter => "a parameter is NaN or infinite",
            Error::InvalidLayer(_) => "invalid layer: {}",
            Error::Format(_) => "invalid model file: {}",
            Error::Unsupported(_) => {
                "the model needs flow-core's feature `{}`, which this build leaves out"
            }
        }
    }
}

/// One piece of a message, as [`Error::pieces`] gives them: words, or a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Words of the message.
    Text(&'a str),
    /// A number, in decimal.
    Dec(usize),
    /// A CRC, as `0x` and 8 lowercase hex digits.
    Hex(u32),
}

/// Calls `out` with `text`'s words and, at each `{}` slot, the next of `slots` (a byte scan:
/// `str::split` would link the general substring search, about 1.3 KB on a device).
fn fill(text: &'static str, slots: &[Slot], out: &mut impl FnMut(Piece<'static>)) {
    let mut slots = slots.iter();
    let b = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    // (`get` rather than indexing: no panic path, which a device would link `core::fmt` for.)
    while let Some(pair) = b.get(i..i + 2) {
        if pair == b"{}" {
            // `{` is ASCII: both ends are character boundaries.
            out(Piece::Text(text.get(start..i).unwrap_or("")));
            match slots.next() {
                Some(Slot::Piece(p)) => out(*p),
                Some(Slot::Format(e)) => e.pieces(out),
                None => {}
            }
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    out(Piece::Text(text.get(start..).unwrap_or("")));
}

/// What fills a slot: a piece, or a format error's whole message.
enum Slot {
    Piece(Piece<'static>),
    Format(FormatError),
}

impl FormatError {
    /// The message in pieces (see [`Error::pieces`]).
    pub fn pieces(&self, out: &mut impl FnMut(Piece<'static>)) {
        let text = self.text();
        let p = |p: Piece<'static>| Slot::Piece(p);
        match *self {
            FormatError::Version { found, supported } => fill(
                text,
                &[p(Piece::Dec(found.into())), p(Piece::Dec(supported.into()))],
                out,
            ),
            FormatError::Checksum { stored, computed } => {
                fill(text, &[p(Piece::Hex(stored)), p(Piece::Hex(computed))], out)
            }
            FormatError::Kind { expected, found } => fill(
                text,
                &[
                    p(Piece::Text(expected.name())),
                    p(Piece::Text(found.name())),
                ],
                out,
            ),
            _ => out(Piece::Text(text)),
        }
    }
}

impl Error {
    /// The message in pieces, in order: [`text`](Self::text) with its slots filled. Its
    /// `Display` writes these pieces; a device that prints without `core::fmt` writes them
    /// itself (its own decimal and hex digits) and prints the same words.
    pub fn pieces(&self, out: &mut impl FnMut(Piece<'static>)) {
        let text = self.text();
        let p = |p: Piece<'static>| Slot::Piece(p);
        match *self {
            Error::DimensionMismatch { expected, found }
            | Error::ParameterCount { expected, found } => {
                fill(text, &[p(Piece::Dec(expected)), p(Piece::Dec(found))], out)
            }
            Error::Capacity {
                what,
                needed,
                limit,
            } => fill(
                text,
                &[
                    p(Piece::Text(what.text())),
                    p(Piece::Dec(needed)),
                    p(Piece::Dec(limit)),
                ],
                out,
            ),
            Error::InvalidLayer(e) => fill(text, &[p(Piece::Text(e.text()))], out),
            Error::Format(e) => fill(text, &[Slot::Format(e)], out),
            Error::Unsupported(f) => fill(text, &[p(Piece::Text(f.name()))], out),
            _ => out(Piece::Text(text)),
        }
    }
}

/// Writes pieces to a formatter, keeping the first error.
fn write_pieces(
    f: &mut fmt::Formatter<'_>,
    pieces: impl FnOnce(&mut dyn FnMut(Piece<'static>)),
) -> fmt::Result {
    let mut r = Ok(());
    pieces(&mut |p| {
        if r.is_ok() {
            r = match p {
                Piece::Text(s) => f.write_str(s),
                Piece::Dec(v) => write!(f, "{v}"),
                Piece::Hex(v) => write!(f, "{v:#010x}"),
            };
        }
    });
    r
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |out| self.pieces(&mut |p| out(p)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pieces(f, |out| self.pieces(&mut |p| out(p)))
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// `Err(Capacity)` unless `needed <= limit`.
#[inline]
pub(crate) fn check_capacity(what: Capacity, needed: usize, limit: usize) -> Result<(), Error> {
    if needed <= limit {
        Ok(())
    } else {
        Err(Error::Capacity {
            what,
            needed,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    /// `Display` and the pieces give the messages written out here, slots filled.
    #[test]
    fn messages_have_their_slots_filled() {
        let cases = [
            (Error::NonFiniteInput, "input contains NaN or infinity"),
            (
                Error::Capacity {
                    what: Capacity::Bins,
                    needed: 64,
                    limit: 32,
                },
                "capacity exceeded: spline bins needs 64, compiled limit is 32",
            ),
            (
                Error::InvalidLayer(LayerError::Split),
                "invalid layer: coupling split must be in 1..dim",
            ),
            (
                Error::Format(FormatError::Checksum {
                    stored: 0x1234,
                    computed: 0xdead_beef,
                }),
                "invalid model file: checksum mismatch: stored 0x00001234, computed 0xdeadbeef",
            ),
            (
                Error::Format(FormatError::Kind {
                    expected: FlowKind::Plain,
                    found: FlowKind::Joint,
                }),
                "invalid model file: expected a Plain flow, the file holds a Joint flow",
            ),
            (
                Error::Unsupported(Feature::Affine),
                "the model needs flow-core's feature `affine`, which this build leaves out",
            ),
        ];
        for (e, want) in cases {
            let mut shown = heapless::String::<160>::new();
            write!(shown, "{e}").unwrap();
            assert_eq!(shown.as_str(), want);
            // The pieces, joined with digits of their own.
            let mut joined = heapless::String::<160>::new();
            e.pieces(&mut |p| {
                let _ = match p {
                    Piece::Text(s) => joined.push_str(s).map_err(|_| core::fmt::Error),
                    Piece::Dec(v) => write!(joined, "{v}"),
                    Piece::Hex(v) => write!(joined, "0x{v:08x}"),
                };
            });
            assert_eq!(joined.as_str(), want);
        }
    }
}
