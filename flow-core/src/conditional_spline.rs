//! [`ConditionalSpline`]: an element-wise spline whose parameters a hypernetwork computes from a
//! context vector (Pyro's `conditional_spline`).
//!
//! `y_i = h_θ(x_i)` with `θ = NN(context)`, the hypernetwork's output split as
//! `[widths | heights | derivatives | lambdas]`, row-major per dimension.

use crate::coupling::HyperOut;
use crate::error::{Error, LayerError};
use crate::nn::DenseNN;
use crate::real::Real;
use crate::spline::{eval_all, Direction, SplineShape};
use crate::workspace::Scratch;

/// A conditional element-wise spline, Pyro's `conditional_spline`: `y_i = h_θ(x_i)` with
/// `θ = NN(context)`, the hypernetwork's output split as `[widths | heights | derivatives |
/// lambdas]`, row-major per dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConditionalSpline<'a> {
    dim: usize,
    shape: SplineShape,
    nn: DenseNN<'a>,
}

impl<'a> ConditionalSpline<'a> {
    /// A `dim`-dimensional conditional spline; `nn` maps the context to `dim ×
    /// shape.params_per_dim()` outputs.
    pub fn new(dim: usize, shape: SplineShape, nn: DenseNN<'a>) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        if nn.output_len() != dim.saturating_mul(shape.params_per_dim()) {
            return Err(Error::InvalidLayer(LayerError::HypernetShape));
        }
        Ok(Self::of(dim, shape, nn))
    }

    /// [`new`](Self::new) without its checks, for a caller that built `nn` with the output
    /// size they check (the model loader: a network of output 0, for `dim` 0, is an error).
    #[inline]
    pub(crate) fn of(dim: usize, shape: SplineShape, nn: DenseNN<'a>) -> Self {
        Self { dim, shape, nn }
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Context size (the hypernetwork's input size).
    #[inline]
    pub fn context_dim(&self) -> usize {
        self.nn.input()
    }

    /// Bins, bound, order.
    #[inline]
    pub fn shape(&self) -> &SplineShape {
        &self.shape
    }

    /// The hypernetwork.
    #[inline]
    pub fn hypernet(&self) -> &DenseNN<'a> {
        &self.nn
    }

    #[allow(clippy::too_many_arguments)] // internal: a layer's inputs and scratch
    pub(crate) fn apply<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
        check: bool,
    ) -> Result<T, Error> {
        if check && ctx.len() != self.context_dim() {
            return Err(Error::InvalidLayer(LayerError::Context));
        }
        let last = self.nn.hidden(ctx, &[], s.h0, s.h1, check)?;
        let out = HyperOut::new(&self.nn, last);
        eval_all(&self.shape, &out, v, lds, dir, want_log_det, (s.xs, s.ys))
    }
}
