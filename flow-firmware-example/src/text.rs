//! Lines of text without `core::fmt` (its formatter, integer `Display` and padding cost about
//! 3 KB of flash): `say!("reading ", i, " log_prob ", Dec(lp))` writes each item in turn
//! into a [`Line`] ([`Show`]), then sends it. Strings, integers, [`Hex`], flow-core's
//! [`Error`] (the same words as its `Display`) and the decimals of `decimal.rs` can be shown.

use flow_core::{Error, Piece};

/// A line of output being written: up to 256 bytes, the rest cut off.
pub struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Appends `bytes` (as many as fit).
    #[inline(never)]
    pub fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // (`get` rather than indexing, here and in `decimal.rs`: no panic path, which
            // would bring in `core::fmt` for its message.)
            let Some(slot) = self.buf.get_mut(self.len) else {
                return;
            };
            *slot = b;
            self.len += 1;
        }
    }

    /// Appends `s`.
    pub fn str(&mut self, s: &str) {
        self.put(s.as_bytes());
    }

    /// The line's bytes (UTF-8 text, unless a multi-byte character was cut off at the end).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// Prints one line made of the items given, each shown in turn (`Show`):
/// `say!("flagged ", n, " of ", m)`.
#[macro_export]
macro_rules! say {
    ($($item:expr),+ $(,)?) => {{
        let mut line = $crate::text::Line::new();
        $( $crate::text::Show::show(&$item, &mut line); )+
        $crate::board::send(line.as_bytes());
    }};
}

/// What `say!` can print.
pub trait Show {
    fn show(&self, line: &mut Line);
}

impl Show for &str {
    fn show(&self, line: &mut Line) {
        line.str(self);
    }
}

impl Show for u32 {
    #[inline(never)] // (one copy, rather than one per number printed)
    fn show(&self, line: &mut Line) {
        let mut digits = [0u8; 10];
        let mut v = *self;
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        // Without the leading zeros (the last digit stays).
        let first = digits.iter().position(|&c| c != b'0').unwrap_or(9);
        line.put(digits.get(first..).unwrap_or_default());
    }
}

impl Show for usize {
    fn show(&self, line: &mut Line) {
        // The boards' `usize` is 32 bits; a larger count (on a 64-bit host) saturates.
        u32::try_from(*self).unwrap_or(u32::MAX).show(line);
    }
}

impl Show for u16 {
    fn show(&self, line: &mut Line) {
        u32::from(*self).show(line);
    }
}

/// `0x` and 8 lowercase hex digits, as `{:#010x}`.
pub struct Hex(pub u32);

impl Show for Hex {
    #[inline(never)]
    fn show(&self, line: &mut Line) {
        let mut s = *b"0x00000000";
        for (i, c) in s.iter_mut().skip(2).enumerate() {
            let nibble = self.0 >> (28 - 4 * i) & 0xF;
            *c = if nibble < 10 { b'0' } else { b'a' - 10 } + nibble as u8;
        }
        line.put(&s);
    }
}

/// flow-core's errors, in the words of their `Display`: the pieces flow-core gives
/// ([`Error::pieces`]), written with this file's digits (the host test checks every one).
impl Show for Error {
    fn show(&self, line: &mut Line) {
        self.pieces(&mut |p| match p {
            Piece::Text(s) => line.str(s),
            // usize is 32 bits on the device.
            Piece::Dec(v) => u32::try_from(v).unwrap_or(u32::MAX).show(line),
            Piece::Hex(v) => Hex(v).show(line),
        });
    }
}
