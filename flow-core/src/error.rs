//! The crate's one error type.

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
    Format(crate::model::FormatError),
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

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capacity::Layers => "layers",
            Capacity::Hidden => "hidden width",
            Capacity::Bins => "spline bins",
            Capacity::HiddenLayers => "hidden layers",
        })
    }
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayerError::Bins => "bin count must be at least 2 and at most 1000",
            LayerError::Bound => "spline bound must be finite and positive",
            LayerError::Split => "coupling split must be in 1..dim",
            LayerError::Permutation => "permutation is not a permutation of 0..dim",
            LayerError::Scale => "affine scale must be finite and non-zero",
            LayerError::ZeroDim => "dimension must be at least 1",
            LayerError::HypernetShape => "hypernetwork input/output size does not fit the layer",
            LayerError::Context => "context size does not match the layer",
            LayerError::Tables => "precomputed knot tables do not match the flow",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NonFiniteInput => f.write_str("input contains NaN or infinity"),
            Error::Numerical => f.write_str("computation produced NaN"),
            Error::OutOfSupport => f.write_str("point outside the support of the transform"),
            Error::DimensionMismatch { expected, found } => {
                write!(f, "dimension mismatch: expected {expected}, found {found}")
            }
            Error::Capacity {
                what,
                needed,
                limit,
            } => write!(
                f,
                "capacity exceeded: {what} needs {needed}, compiled limit is {limit}"
            ),
            Error::ParameterCount { expected, found } => write!(
                f,
                "wrong parameter count: expected {expected}, found {found}"
            ),
            Error::NonFiniteParameter => f.write_str("a parameter is NaN or infinite"),
            Error::InvalidLayer(e) => write!(f, "invalid layer: {e}"),
            Error::Format(e) => write!(f, "invalid model file: {e}"),
            Error::Unsupported(feat) => write!(
                f,
                "the model needs flow-core's feature `{}`, which this build leaves out",
                feat.name()
            ),
        }
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
