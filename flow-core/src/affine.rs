//! Fixed element-wise transforms: [`Affine`] and [`Exp`].

use crate::error::{Error, LayerError};
use crate::real::Real;
use crate::weights::Weights;

/// `y = loc + scale·x`, element-wise; `log|dy/dx| = ln|scale|` per dimension.
///
/// Pyro's `AffineTransform(loc, scale)`. With per-dimension parameters it also serves as a
/// standardization layer (`loc = mean`, `scale = std`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine<'a> {
    dim: usize,
    params: AffineParams<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum AffineParams<'a> {
    Scalar {
        loc: f32,
        scale: f32,
    },
    /// `[loc (dim) | scale (dim)]`.
    PerDim(Weights<'a>),
}

impl<'a> Affine<'a> {
    /// The same `loc` and `scale` in each of `dim` dimensions. `scale` must be finite and non-zero.
    pub fn scalar(dim: usize, loc: f32, scale: f32) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        if !loc.is_finite() {
            return Err(Error::NonFiniteParameter);
        }
        if !(scale.is_finite() && scale != 0.0) {
            return Err(Error::InvalidLayer(LayerError::Scale));
        }
        Ok(Self {
            dim,
            params: AffineParams::Scalar { loc, scale },
        })
    }

    /// Per-dimension parameters `[loc (dim) | scale (dim)]`.
    pub fn per_dim(dim: usize, weights: Weights<'a>) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        weights.check(2 * dim)?;
        if weights.iter().skip(dim).any(|s| s == 0.0) {
            return Err(Error::InvalidLayer(LayerError::Scale));
        }
        Ok(Self {
            dim,
            params: AffineParams::PerDim(weights),
        })
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The per-dimension parameters `[loc | scale]`, or `None` for a scalar affine.
    #[inline]
    pub fn weights(&self) -> Option<Weights<'a>> {
        match self.params {
            AffineParams::Scalar { .. } => None,
            AffineParams::PerDim(w) => Some(w),
        }
    }

    /// `(loc, scale)` of dimension `j`.
    #[inline]
    pub fn loc_scale(&self, j: usize) -> (f32, f32) {
        match self.params {
            AffineParams::Scalar { loc, scale } => (loc, scale),
            AffineParams::PerDim(w) => {
                (w.get(j).unwrap_or(0.0), w.get(self.dim + j).unwrap_or(1.0))
            }
        }
    }

    /// `y = loc + scale·x` (or its inverse `x = (y - loc)/scale`), writing each `log|J|`.
    pub(crate) fn apply<T: Real>(&self, v: &mut [T], lds: &mut [T], inverse: bool) -> T {
        let mut total = T::ZERO;
        for (j, (x, ld)) in v.iter_mut().zip(lds.iter_mut()).enumerate() {
            let (loc, scale) = self.loc_scale(j);
            let (loc, scale) = (T::from_f32(loc), T::from_f32(scale));
            let l = scale.abs().ln();
            if inverse {
                *x = (*x - loc) / scale;
                *ld = -l;
            } else {
                *x = loc + scale * *x;
                *ld = l;
            }
            total += *ld;
        }
        total
    }
}

/// `y = e^x`, element-wise; `log|dy/dx| = x`. The inverse `x = ln y` exists for `y > 0` only:
/// `y <= 0` is outside the support ([`Error::OutOfSupport`], which `log_prob` reports as `-inf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exp {
    dim: usize,
}

impl Exp {
    /// `Exp` over `dim` dimensions.
    pub fn new(dim: usize) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        Ok(Self { dim })
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub(crate) fn apply<T: Real>(
        &self,
        v: &mut [T],
        lds: &mut [T],
        inverse: bool,
    ) -> Result<T, Error> {
        let mut total = T::ZERO;
        for (x, ld) in v.iter_mut().zip(lds.iter_mut()) {
            if inverse {
                if x.is_nan() || *x <= T::ZERO {
                    return Err(Error::OutOfSupport);
                }
                *x = x.ln();
                *ld = -*x;
            } else {
                *ld = *x;
                *x = x.exp();
            }
            total += *ld;
        }
        Ok(total)
    }
}
