//! flow-core's errors without `core::fmt`, two ways:
//!
//! - [`code`] (the default): `E<n>` and the variant's fields as numbers, e.g. `E9 3 … …` for a
//!   checksum mismatch (table below). About 0.15 KB of flash.
//! - [`error`] (feature `error-text`): the same text as flow-core's `Display` impls, the
//!   pieces flow-core gives ([`Error::pieces`]: its messages with their slots filled, in
//!   `flow-core/src/error.rs`) written with this file's digits; `core::fmt` would cost about
//!   2 KB more.
//!
//! The host test (`tests/tests/firmware/`) compiles this file, checks [`error`] against
//! `Display` for every variant and that [`code`] tells every variant apart, and renders the
//! host's errors with [`code`] to compare them with the device's.
//!
//! | code | error | numbers after it |
//! |---|---|---|
//! | `E1` / `E2` / `E3` | `NonFiniteInput` / `Numerical` / `OutOfSupport` | |
//! | `E4` | `DimensionMismatch` | expected, found |
//! | `E5` | `Capacity` | what (0 layers, 1 hidden width, 2 spline bins, 3 hidden layers), needed, limit |
//! | `E6` | `ParameterCount` | expected, found |
//! | `E7` | `NonFiniteParameter` | |
//! | `E8` | `InvalidLayer` | 0 bins, 1 bound, 2 split, 3 permutation, 4 scale, 5 zero dim, 6 hypernet shape, 7 context |
//! | `E9` | `Format` | 0 truncated, 1 magic, 2 version (found, supported), 3 checksum (stored, computed), 4 malformed, 5 trailing bytes, 6 layer count, 7 kind (expected, found: 0 plain, 1 conditional, 2 joint), 8 metadata, 9 buffer too small |
//! | `E10` | `Unsupported` | the feature: 0 affine, 1 exp, 2 spline, 3 coupling, 4 permute, 5 conditional-spline, 6 quadratic |
//! | `E0` | an error this file does not know yet | |

use flow_core::{Error, Feature, FormatError, Piece};

/// Where the text goes.
pub trait Text {
    /// Appends a string.
    fn str(&mut self, s: &str);
    /// Appends an unsigned integer in decimal.
    fn dec(&mut self, v: u32);
    /// Appends `0x` and 8 lowercase hex digits (`{:#010x}`).
    fn hex(&mut self, v: u32);
}

/// Writes `e` as flow-core's `Display` does: the pieces of [`Error::pieces`], the one copy of
/// the messages and of how their slots are filled.
pub fn error<T: Text>(t: &mut T, e: &Error) {
    e.pieces(&mut |p| match p {
        Piece::Text(s) => t.str(s),
        // usize is 32 bits on the device; on the host the values come from u16/u32 fields or
        // small counts.
        Piece::Dec(v) => t.dec(u32::try_from(v).unwrap_or(u32::MAX)),
        Piece::Hex(v) => t.hex(v),
    });
}

/// Appends a space and `v` in decimal: one field of a code.
#[inline(never)]
fn field<T: Text>(t: &mut T, v: u32) {
    t.str(" ");
    t.dec(v);
}

/// The `n` of `E<n>` (module docs). Not inlined: a table lookup, instead of a copy of what
/// follows it for each variant.
#[inline(never)]
fn number(e: &Error) -> u32 {
    match e {
        Error::NonFiniteInput => 1,
        Error::Numerical => 2,
        Error::OutOfSupport => 3,
        Error::DimensionMismatch { .. } => 4,
        Error::Capacity { .. } => 5,
        Error::ParameterCount { .. } => 6,
        Error::NonFiniteParameter => 7,
        Error::InvalidLayer(_) => 8,
        Error::Format(_) => 9,
        Error::Unsupported(_) => 10,
        _ => 0,
    }
}

/// Writes `e` as `E<n>` and its fields (module docs): the code ([`number`]), then the fields
/// of the variants that have them, each written as it is found.
pub fn code<T: Text>(t: &mut T, e: &Error) {
    let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    t.str("E");
    t.dec(number(e));
    match e {
        Error::DimensionMismatch { expected, found }
        | Error::ParameterCount { expected, found } => {
            field(t, u(*expected));
            field(t, u(*found));
        }
        Error::Capacity {
            what,
            needed,
            limit,
        } => {
            field(t, *what as u32);
            field(t, u(*needed));
            field(t, u(*limit));
        }
        Error::InvalidLayer(l) => field(t, *l as u32),
        Error::Format(f) => {
            field(
                t,
                match f {
                    FormatError::Truncated => 0,
                    FormatError::Magic => 1,
                    FormatError::Version { .. } => 2,
                    FormatError::Checksum { .. } => 3,
                    FormatError::Malformed => 4,
                    FormatError::TrailingBytes => 5,
                    FormatError::LayerCount => 6,
                    FormatError::Kind { .. } => 7,
                    FormatError::Metadata => 8,
                    FormatError::BufferTooSmall => 9,
                },
            );
            let (a, b) = match *f {
                FormatError::Version { found, supported } => {
                    (u32::from(found), u32::from(supported))
                }
                FormatError::Checksum { stored, computed } => (stored, computed),
                FormatError::Kind { expected, found } => (expected as u32, found as u32),
                _ => return,
            };
            field(t, a);
            field(t, b);
        }
        Error::Unsupported(f) => field(
            t,
            match f {
                Feature::Affine => 0,
                Feature::Exp => 1,
                Feature::Spline => 2,
                Feature::Coupling => 3,
                Feature::Permute => 4,
                Feature::ConditionalSpline => 5,
                Feature::Quadratic => 6,
            },
        ),
        _ => {}
    }
}
