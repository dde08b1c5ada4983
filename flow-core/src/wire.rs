//! The loader's decoder of the model file: postcard's wire format, written out by hand.
//!
//! The file is written with postcard and serde (`model::encode`); reading it needs only the
//! handful of encodings its parts use, so the device decodes them here directly, without
//! serde's visitor machinery (about 3 KB less flash and far smaller stack frames). The rules
//! are postcard 1.x's, including its error cases, so that every byte string decodes to the
//! same value or fails the same way (a difference would be a bug; the tests compare the two
//! decoders on valid, mutated and random inputs):
//!
//! | type | encoding |
//! |---|---|
//! | `u8` | one byte |
//! | `u16`, `u32` | LEB128 varint of at most 3 / 5 bytes, the last one at most `0x03` / `0x0F` |
//! | `f32` | 4 bytes, little endian |
//! | `[T; N]`, struct | the fields in order, nothing else |
//! | enum | the variant's index as a `u32` varint, then its fields |
//! | `&[u8]`, `&str` | the length as a `usize` varint (64-bit rule: at most 10 bytes, the last at most `0x01`), then the bytes (`&str`: valid UTF-8) |
//!
//! Running out of bytes is [`FormatError::Truncated`]; anything else that does not decode
//! (an over-long or overflowing varint, an unknown variant, invalid UTF-8) is
//! [`FormatError::Malformed`]. The length rule is postcard's on a 64-bit host on every
//! target, so a file decodes the same everywhere.

use crate::error::{Error, Feature};
use crate::model::FormatError;

/// Why a part does not decode: small enough to travel in a register (unlike [`Error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    /// [`FormatError::Truncated`].
    Truncated,
    /// [`FormatError::Malformed`].
    Malformed,
    /// [`Error::Unsupported`].
    Unsupported(Feature),
}

impl From<Bad> for Error {
    // Out of line: one copy for the loader's many `?`s.
    #[inline(never)]
    fn from(b: Bad) -> Self {
        match b {
            Bad::Truncated => Error::Format(FormatError::Truncated),
            Bad::Malformed => Error::Format(FormatError::Malformed),
            Bad::Unsupported(f) => Error::Unsupported(f),
        }
    }
}

/// A cursor over the bytes still to decode.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(Bad::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Bad> {
        let (&b, rest) = self.rest.split_first().ok_or(Bad::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    /// A varint of at most `max_len` bytes whose last byte is at most `last_max`.
    #[inline(never)]
    fn varint(&mut self, max_len: u32, last_max: u8) -> Result<u64, Bad> {
        let mut out = 0u64;
        for i in 0..max_len {
            let b = self.u8()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_len - 1 && b > last_max {
                    return Err(Bad::Malformed);
                }
                return Ok(out);
            }
        }
        Err(Bad::Malformed)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Bad> {
        // At most 3 bytes, the last one at most 0x03: the value fits 16 bits.
        Ok(self.varint(3, 0x03)? as u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Bad> {
        Ok(self.varint(5, 0x0F)? as u32)
    }

    pub(crate) fn f32(&mut self) -> Result<f32, Bad> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(f32::from_le_bytes(a))
    }

    /// A byte string: its length, then its bytes.
    pub(crate) fn byte_str(&mut self) -> Result<&'a [u8], Bad> {
        let n = self.varint(10, 0x01)?;
        // A length beyond the address space is beyond the bytes left too.
        self.bytes(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A string: a byte string that is valid UTF-8.
    #[inline(never)]
    pub(crate) fn str(&mut self) -> Result<&'a str, Bad> {
        core::str::from_utf8(self.byte_str()?).map_err(|_| Bad::Malformed)
    }

    /// An enum's variant index, checked against the number of variants. (Not inlined, like
    /// `varint`: called for every enum of every part.)
    #[inline(never)]
    pub(crate) fn variant(&mut self, variants: u32) -> Result<u32, Bad> {
        let v = self.u32()?;
        if v < variants {
            Ok(v)
        } else {
            Err(Bad::Malformed)
        }
    }
}
