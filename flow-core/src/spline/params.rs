//! The spline's constants, its shape, and where one dimension's unconstrained parameters
//! come from.

use crate::error::{Error, LayerError};
use crate::real::Real;
use crate::weights::Weights;

/// Minimum bin width, as a fraction of the box (Pyro's `min_bin_width`).
pub const MIN_BIN_WIDTH: f64 = 1e-3;
/// Minimum bin height, as a fraction of the box (Pyro's `min_bin_height`).
pub const MIN_BIN_HEIGHT: f64 = 1e-3;
/// Minimum knot derivative (Pyro's `min_derivative`).
pub const MIN_DERIVATIVE: f64 = 1e-3;
/// Minimum `λ` of the linear order (Pyro's `min_lambda`).
pub const MIN_LAMBDA: f64 = 0.025;
/// The absolute offset of the bin search (Pyro's `eps`).
pub const SEARCH_EPS: f64 = 1e-6;
/// The largest bin count: `1e-3·K <= 1` must hold for the minimum sizes.
pub const MAX_BINS_BY_MIN_SIZE: usize = 1000;
/// torch's softplus threshold: above it, `softplus(u) = u`.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// The spline's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Linear-rational (Dolatabadi et al.), Pyro's default; `4K - 1` parameters per dimension.
    Linear,
    /// Rational-quadratic (Durkan et al.); `3K - 1` parameters per dimension.
    Quadratic,
}

/// Bins, bound and order of a spline: everything but its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplineShape {
    pub(super) bins: usize,
    pub(super) bound: f32,
    pub(super) order: Order,
}

impl SplineShape {
    /// A validated shape: `2 <= bins <= 1000` and a finite `bound > 0`; the quadratic order
    /// needs the `quadratic` feature (else `Error::Unsupported`).
    pub fn new(bins: usize, bound: f32, order: Order) -> Result<Self, Error> {
        if order == Order::Quadratic && !cfg!(feature = "quadratic") {
            return Err(Error::Unsupported(crate::error::Feature::Quadratic));
        }
        if !(2..=MAX_BINS_BY_MIN_SIZE).contains(&bins) {
            return Err(Error::InvalidLayer(LayerError::Bins));
        }
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::InvalidLayer(LayerError::Bound));
        }
        Ok(Self { bins, bound, order })
    }

    /// Number of bins `K`.
    #[inline]
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The bound `B`.
    #[inline]
    pub fn bound(&self) -> f32 {
        self.bound
    }

    /// The order.
    #[inline]
    pub fn order(&self) -> Order {
        self.order
    }

    /// Unconstrained parameters per dimension: `4K - 1` (linear) or `3K - 1` (quadratic).
    #[inline]
    pub fn params_per_dim(&self) -> usize {
        match self.order {
            Order::Linear => 4 * self.bins - 1,
            Order::Quadratic => 3 * self.bins - 1,
        }
    }

    /// Number of `λ` parameters per dimension: `K` for linear, 0 for quadratic.
    #[inline]
    pub fn lambdas_per_dim(&self) -> usize {
        match self.order {
            Order::Linear => self.bins,
            Order::Quadratic => 0,
        }
    }
}

/// Which way to evaluate a spline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `x → y`, returning `log|dy/dx|`.
    Forward,
    /// `y → x`, returning `log|dx/dy|`.
    Inverse,
}

/// The unconstrained parameters of one spline dimension, wherever they come from: stored
/// weights, or a hypernetwork's output computed on demand.
pub trait BinParams<T: Real> {
    /// Writes the `K` unconstrained widths `uw` into `out` (`out.len() == K`).
    fn widths(&self, out: &mut [T]);
    /// Writes the `K` unconstrained heights `uh` into `out`.
    fn heights(&self, out: &mut [T]);
    /// The unconstrained derivative `ud[j]` of interior knot `j + 1`, `j in 0..K-1`.
    fn derivative(&self, j: usize) -> T;
    /// `ud[j..j + out.len()]` into `out`.
    fn derivatives(&self, j: usize, out: &mut [T]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.derivative(j + i);
        }
    }
    /// The unconstrained `ul[k]` of bin `k` (linear order only).
    fn lambda(&self, k: usize) -> T;
}

/// Unconstrained parameters of one dimension held in slices (`lambdas` empty for quadratic).
#[derive(Clone, Copy, Debug)]
pub struct RawParams<'p, T> {
    /// `uw[K]`.
    pub widths: &'p [T],
    /// `uh[K]`.
    pub heights: &'p [T],
    /// `ud[K-1]`.
    pub derivatives: &'p [T],
    /// `ul[K]`, linear order only.
    pub lambdas: &'p [T],
}

impl<T: Real> BinParams<T> for RawParams<'_, T> {
    fn widths(&self, out: &mut [T]) {
        for (o, &v) in out.iter_mut().zip(self.widths) {
            *o = v;
        }
    }
    fn heights(&self, out: &mut [T]) {
        for (o, &v) in out.iter_mut().zip(self.heights) {
            *o = v;
        }
    }
    fn derivative(&self, j: usize) -> T {
        self.derivatives.get(j).copied().unwrap_or(T::ZERO)
    }
    fn lambda(&self, k: usize) -> T {
        self.lambdas.get(k).copied().unwrap_or(T::ZERO)
    }
}

/// torch's softplus with `beta = 1`, `threshold = 20`.
#[inline]
pub fn softplus<T: Real>(u: T) -> T {
    if u > T::from_f64(SOFTPLUS_THRESHOLD) {
        u
    } else {
        u.exp().ln_1p()
    }
}

/// The logistic sigmoid `1 / (1 + e^-u)`.
#[inline]
pub fn sigmoid<T: Real>(u: T) -> T {
    T::ONE / (T::ONE + (-u).exp())
}

/// A flat parameter vector laid out as Pyro splits a hypernetwork's output, for `dims`
/// dimensions of `K` bins: `[widths (dims×K) | heights (dims×K) | derivatives (dims×(K-1)) |
/// lambdas (dims×K, linear only)]`, each block row-major by dimension. The element-wise
/// [`Spline`]'s stored parameters use the same layout.
pub(crate) trait ParamVector<T> {
    /// Entries `start..start + out.len()`.
    fn fill(&self, start: usize, out: &mut [T]);
}

impl<T: Real> ParamVector<T> for Weights<'_> {
    #[inline]
    fn fill(&self, start: usize, out: &mut [T]) {
        let src = self.slice(start, out.len()).unwrap_or(Weights::empty());
        for (o, v) in out.iter_mut().zip(src.iter()) {
            *o = T::from_f32(v);
        }
    }
}

/// Dimension `j`'s view into a [`ParamVector`].
pub(crate) struct DimParams<'v, V: ?Sized> {
    pub(crate) v: &'v V,
    pub(crate) dims: usize,
    pub(crate) bins: usize,
    pub(crate) j: usize,
}

/// Entry `r` of `v`, as a request of one entry (a vector needs no code of its own for
/// single entries).
#[inline]
fn entry<T: Real, V: ParamVector<T> + ?Sized>(v: &V, r: usize) -> T {
    let mut out = [T::ZERO];
    v.fill(r, &mut out);
    out[0]
}

impl<T: Real, V: ParamVector<T> + ?Sized> BinParams<T> for DimParams<'_, V> {
    #[inline]
    fn widths(&self, out: &mut [T]) {
        self.v.fill(self.j * self.bins, out);
    }
    #[inline]
    fn heights(&self, out: &mut [T]) {
        self.v.fill((self.dims + self.j) * self.bins, out);
    }
    #[inline]
    fn derivative(&self, i: usize) -> T {
        entry(
            self.v,
            2 * self.dims * self.bins + self.j * (self.bins - 1) + i,
        )
    }
    #[inline]
    fn derivatives(&self, i: usize, out: &mut [T]) {
        self.v.fill(
            2 * self.dims * self.bins + self.j * (self.bins - 1) + i,
            out,
        );
    }
    #[inline]
    fn lambda(&self, k: usize) -> T {
        entry(
            self.v,
            2 * self.dims * self.bins + self.dims * (self.bins - 1) + self.j * self.bins + k,
        )
    }
}
