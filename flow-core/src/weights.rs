//! Borrowed parameter storage: little-endian `f32` values read in place.
//!
//! A trained model keeps its parameters where its bytes are — in flash on a microcontroller —
//! and a [`Weights`] view reads them from there. Reading through bytes rather than casting to
//! `&[f32]` needs no alignment and no `unsafe`, and gives the same values on every target.

use crate::error::Error;

/// A view of `len()` little-endian `f32` values in a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights<'a> {
    bytes: &'a [u8],
}

impl<'a> Weights<'a> {
    /// Views `bytes` as little-endian `f32`s. Returns `None` when the length is not a multiple of 4.
    pub const fn new(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len().is_multiple_of(4) {
            Some(Self { bytes })
        } else {
            None
        }
    }

    /// An empty view.
    pub const fn empty() -> Self {
        Self { bytes: &[] }
    }

    /// Number of `f32` values.
    #[inline]
    pub const fn len(&self) -> usize {
        self.bytes.len() / 4
    }

    /// `true` when there are no values.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The underlying bytes.
    #[inline]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The value at `i`, or `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<f32> {
        let start = i.checked_mul(4)?;
        let b = self.bytes.get(start..start.checked_add(4)?)?;
        Some(f32::from_le_bytes(b.try_into().ok()?))
    }

    /// The sub-view of `len` values starting at value `start`, or `None` if out of range.
    #[inline]
    pub fn slice(&self, start: usize, len: usize) -> Option<Weights<'a>> {
        let s = start.checked_mul(4)?;
        let e = s.checked_add(len.checked_mul(4)?)?;
        Some(Weights {
            bytes: self.bytes.get(s..e)?,
        })
    }

    /// Splits off the first `len` values: `(head, rest)`, or `None` if there are fewer.
    #[inline]
    pub fn split(&self, len: usize) -> Option<(Weights<'a>, Weights<'a>)> {
        let head = self.slice(0, len)?;
        let rest = self.slice(len, self.len().checked_sub(len)?)?;
        Some((head, rest))
    }

    /// Iterates over the values.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|c| f32::from_le_bytes(*c))
    }

    /// `true` when every value is finite.
    pub fn all_finite(&self) -> bool {
        self.iter().all(f32::is_finite)
    }

    /// The check every layer makes of its parameters: exactly `expected` values
    /// ([`Error::ParameterCount`] otherwise), all finite ([`Error::NonFiniteParameter`]).
    pub(crate) fn check(&self, expected: usize) -> Result<(), Error> {
        if self.len() != expected {
            return Err(Error::ParameterCount {
                expected,
                found: self.len(),
            });
        }
        if !self.all_finite() {
            return Err(Error::NonFiniteParameter);
        }
        Ok(())
    }
}

/// Writes `src` as little-endian bytes into `dst`; returns the number of bytes written, or
/// `None` when `dst` is too short.
pub fn encode_f32s(src: &[f32], dst: &mut [u8]) -> Option<usize> {
    let n = src.len().checked_mul(4)?;
    let out = dst.get_mut(..n)?;
    for (c, v) in out.chunks_exact_mut(4).zip(src) {
        c.copy_from_slice(&v.to_le_bytes());
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_at_any_offset() {
        let mut b = [0u8; 13];
        encode_f32s(&[1.5, -2.25, 3.0], &mut b[1..]).unwrap();
        let w = Weights::new(&b[1..]).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(1), Some(-2.25));
        assert_eq!(w.get(3), None);
        assert_eq!(w.get(usize::MAX), None);
        assert_eq!(
            w.slice(1, 2)
                .unwrap()
                .iter()
                .collect::<heapless::Vec<f32, 4>>(),
            [-2.25, 3.0]
        );
        assert!(w.slice(2, 2).is_none());
        assert!(w.slice(usize::MAX, 1).is_none());
        let (h, r) = w.split(1).unwrap();
        assert_eq!((h.len(), r.len()), (1, 2));
        assert!(Weights::new(&b[..3]).is_none());
        assert!(encode_f32s(&[1.0], &mut [0u8; 3]).is_none());
    }
}
