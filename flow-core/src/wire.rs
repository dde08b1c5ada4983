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
//! target, so a file decodes the same everywhere. A string is checked by a small UTF-8
//! validator of its own (the same accept set as `core::str::from_utf8`, tested against it)
//! and kept as its bytes, so that a loader that never reads it as text links no other.

use crate::error::{Error, Feature, FormatError};

/// The CRC the file ends with: CRC-32/ISO-HDLC (the CRC-32 of zlib, PNG and Ethernet).
/// Computed bit by bit, without a table: 1 KB less flash, for a check that runs once per load.
pub(crate) const CRC: crc::Crc<u32, crc::NoTable> =
    crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);

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

/// A cursor over the bytes still to decode, which remembers the first thing that did not
/// decode: from then on it holds no more bytes, and every read returns zeros (an empty byte
/// string, variant 0) without replacing that first error. A part is read field by field
/// without a check after each, and fails once, at the end ([`Reader::done`]), with the
/// error a decoder stopping at the first failure would return.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    err: Option<Bad>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            err: None,
        }
    }

    /// What is left (nothing after an error).
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Ok, or the first error.
    pub(crate) fn done(&self) -> Result<(), Bad> {
        match self.err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Records `e` unless an error came first, and drops the bytes left.
    #[inline(never)]
    pub(crate) fn fail(&mut self, e: Bad) {
        self.err.get_or_insert(e);
        self.rest = &[];
    }

    /// The next `n` bytes (empty if there are fewer).
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        match self.rest.split_at_checked(n) {
            Some((head, rest)) => {
                self.rest = rest;
                head
            }
            None => {
                self.fail(Bad::Truncated);
                &[]
            }
        }
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => {
                self.fail(Bad::Truncated);
                0
            }
        }
    }

    /// A varint of at most `max_len` bytes whose last byte is at most `last_max`.
    #[inline(never)]
    fn varint(&mut self, max_len: u32, last_max: u8) -> u64 {
        let mut out = 0u64;
        for i in 0..max_len {
            let b = self.u8();
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_len - 1 && b > last_max {
                    break;
                }
                return out;
            }
        }
        self.fail(Bad::Malformed);
        0
    }

    #[inline(never)]
    pub(crate) fn u16(&mut self) -> u16 {
        // At most 3 bytes, the last one at most 0x03: the value fits 16 bits.
        self.varint(3, 0x03) as u16
    }

    #[inline(never)]
    pub(crate) fn u32(&mut self) -> u32 {
        self.varint(5, 0x0F) as u32
    }

    pub(crate) fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.bytes(4).try_into().unwrap_or([0; 4]))
    }

    /// A byte string: its length, then its bytes.
    pub(crate) fn byte_str(&mut self) -> &'a [u8] {
        let n = self.varint(10, 0x01);
        // A length beyond the address space is beyond the bytes left too.
        self.bytes(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A string: a byte string that is valid UTF-8, returned as its bytes (see [`utf8`]).
    pub(crate) fn str(&mut self) -> &'a [u8] {
        let b = self.byte_str();
        if utf8(b) {
            b
        } else {
            self.fail(Bad::Malformed);
            &[]
        }
    }

    /// An enum's variant index, checked against the number of variants. (Not inlined, like
    /// `varint`: called for every enum of every part.)
    #[inline(never)]
    pub(crate) fn variant(&mut self, variants: u32) -> u32 {
        let v = self.u32();
        if v < variants {
            v
        } else {
            self.fail(Bad::Malformed);
            0
        }
    }
}

/// Whether `b` is valid UTF-8: accepts exactly what `core::str::from_utf8` accepts (no
/// overlong encodings, no surrogates, nothing above U+10FFFF, no cut-off sequence), in a
/// few instructions per byte and without `core`'s 256-byte table of sequence widths.
pub(crate) fn utf8(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&lead) = b.get(i) {
        i += 1;
        // The sequence's length is the lead byte's number of leading ones (ASCII: none).
        let n = (!lead).leading_zeros();
        if n == 0 {
            continue;
        }
        if n == 1 || n > 4 {
            // A continuation byte, or a lead byte of 5 or more bytes.
            return false;
        }
        let mut c = u32::from(lead & (0x7F >> n));
        for _ in 1..n {
            match b.get(i) {
                Some(&x) if x & 0xC0 == 0x80 => c = c << 6 | u32::from(x & 0x3F),
                _ => return false,
            }
            i += 1;
        }
        // The smallest code point that needs `n` bytes: anything less is overlong.
        let min = match n {
            2 => 0x80,
            3 => 0x800,
            _ => 0x1_0000,
        };
        if c < min || (0xD800..0xE000).contains(&c) || c > 0x10_FFFF {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::utf8;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg32;

    fn same(b: &[u8]) {
        assert_eq!(utf8(b), core::str::from_utf8(b).is_ok(), "on {b:02x?}");
    }

    #[test]
    fn utf8_accepts_what_core_accepts() {
        // Every sequence of up to 2 bytes, and every lead byte with every second byte
        // followed by edge continuations (and cut off after each byte).
        for a in 0..=255u8 {
            same(&[a]);
            for b in 0..=255u8 {
                same(&[a, b]);
                for c in [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                    same(&[a, b, c]);
                    for d in [0x41, 0x80, 0xBF, 0xC0] {
                        same(&[a, b, c, d]);
                        same(&[0x41, a, b, c, d, 0x42]);
                    }
                }
            }
        }
        // The boundaries: the first and last code points of each length, around the
        // surrogates and U+10FFFF, and the overlong forms of each.
        let edges: &[&[u8]] = &[
            &[0xC2, 0x80],
            &[0xDF, 0xBF],
            &[0xC1, 0xBF],
            &[0xE0, 0xA0, 0x80],
            &[0xE0, 0x9F, 0xBF],
            &[0xED, 0x9F, 0xBF],
            &[0xED, 0xA0, 0x80],
            &[0xED, 0xBF, 0xBF],
            &[0xEE, 0x80, 0x80],
            &[0xEF, 0xBF, 0xBF],
            &[0xF0, 0x90, 0x80, 0x80],
            &[0xF0, 0x8F, 0xBF, 0xBF],
            &[0xF4, 0x8F, 0xBF, 0xBF],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xF5, 0x80, 0x80, 0x80],
            &[0xF7, 0xBF, 0xBF, 0xBF],
            &[0xF8, 0x88, 0x80, 0x80, 0x80],
            &[0xFC, 0x84, 0x80, 0x80, 0x80, 0x80],
        ];
        for e in edges {
            for n in 0..=e.len() {
                same(&e[..n]);
            }
        }
        // Random strings, drawn from bytes that make valid and almost valid sequences.
        let mut rng = Pcg32::seed_from_u64(0x0F8);
        let pool = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ];
        let mut b = [0u8; 24];
        for _ in 0..1_000_000 {
            let n = rng.next_u32() as usize % b.len();
            for x in &mut b[..n] {
                *x = match rng.next_u32() % 3 {
                    0 => rng.next_u32() as u8,
                    _ => pool[rng.next_u32() as usize % pool.len()],
                };
            }
            same(&b[..n]);
        }
        // Valid text of every length class.
        let text = "a\u{7F}\u{80}é\u{7FF}\u{800}温\u{D7FF}\u{E000}\u{FFFF}\u{10000}😀\u{10FFFF}";
        for i in 0..=text.len() {
            for j in i..=text.len() {
                same(&text.as_bytes()[i..j]);
            }
        }
    }
}
