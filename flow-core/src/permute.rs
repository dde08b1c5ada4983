//! [`Permute`]: reorders dimensions, `y[i] = x[perm[i]]` (Pyro's `Permute`), `log|J| = 0`.

use crate::error::{Error, LayerError};
use crate::real::Real;

/// Most dimensions a permutation can reorder (indices are stored as bytes).
pub const MAX_PERMUTE_DIM: usize = 256;

/// `y[i] = x[perm[i]]`; the inverse is `x[perm[i]] = y[i]`. The permutation is borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permute<'a> {
    perm: &'a [u8],
}

impl<'a> Permute<'a> {
    /// Checks that `perm` is a permutation of `0..perm.len()`.
    pub fn new(perm: &'a [u8]) -> Result<Self, Error> {
        if perm.is_empty() {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        if perm.len() > MAX_PERMUTE_DIM {
            return Err(Error::InvalidLayer(LayerError::Permutation));
        }
        let mut seen = [false; MAX_PERMUTE_DIM];
        for &p in perm {
            match seen.get_mut(usize::from(p)) {
                Some(s) if usize::from(p) < perm.len() && !*s => *s = true,
                _ => return Err(Error::InvalidLayer(LayerError::Permutation)),
            }
        }
        Ok(Self { perm })
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.perm.len()
    }

    /// The permutation.
    #[inline]
    pub fn indices(&self) -> &'a [u8] {
        self.perm
    }

    /// Permutes `v` in place using `tmp` (at least `dim` values).
    pub(crate) fn apply<T: Real>(&self, v: &mut [T], tmp: &mut [T], inverse: bool) {
        for (t, x) in tmp.iter_mut().zip(v.iter()) {
            *t = *x;
        }
        for (i, &p) in self.perm.iter().enumerate() {
            let p = usize::from(p);
            if inverse {
                if let (Some(dst), Some(&src)) = (v.get_mut(p), tmp.get(i)) {
                    *dst = src;
                }
            } else if let (Some(dst), Some(&src)) = (v.get_mut(i), tmp.get(p)) {
                *dst = src;
            }
        }
    }
}
