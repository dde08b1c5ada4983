//! [`SplineCoupling`]: Pyro's `spline_coupling` — and its conditional variant.
//!
//! With split `d`, `x = (x1, x2)`, `x1 = x[..d]`, `x2 = x[d..]`:
//!
//! ```text
//! y1 = g(x1)              element-wise spline with its own learnable parameters
//! y2 = h_θ(x2),  θ = NN(x1 ++ context)
//! log|det J| = Σ log|g'(x1_i)| + Σ log|h_θ'(x2_j)|
//! ```
//!
//! The hypernetwork sees the *untransformed* `x1`, so the inverse first recovers
//! `x1 = g⁻¹(y1)` and then inverts the upper part. Its output is split as Pyro does:
//! `[widths | heights | derivatives | lambdas]`, row-major per upper dimension. With a context
//! size of 0 this is Pyro's coupling; with a context it is a conditional coupling (hypernetwork
//! input `x1 ++ context`), which Pyro lacks.

use crate::error::{Error, LayerError};
#[cfg(feature = "wide")]
use crate::flat::{Lanes, LANES};
use crate::nn::DenseNN;
use crate::real::Real;
use crate::spline::{eval_all, Direction, ParamVector, Spline, SplineShape};
#[cfg(feature = "wide")]
use crate::spline::{eval_lanes, LaneRows};
use crate::weights::Weights;
#[cfg(feature = "wide")]
use crate::workspace::LaneScratch;
use crate::workspace::Scratch;

/// The outputs of a hypernetwork as a parameter vector, computed row by row on demand.
pub(crate) struct HyperOut<'n, 's, T> {
    nn: &'n DenseNN<'n>,
    last: (&'s [T], &'s [T]),
    /// The output layer as `f32`, looked up once for all the requests (aligned weights and
    /// an input in one slice).
    out: Option<(&'n [f32], &'n [f32])>,
}

impl<'n, 's, T> HyperOut<'n, 's, T> {
    /// The outputs of `nn` whose last hidden activation is `last`.
    pub(crate) fn new(nn: &'n DenseNN<'n>, last: (&'s [T], &'s [T])) -> Self {
        // An input in two parts (no hidden layer, and a context) goes through `output_rows`.
        let out = if last.1.is_empty() {
            nn.output_f32(last.0.len())
        } else {
            None
        };
        Self { nn, last, out }
    }
}

impl<T: Real> ParamVector<T> for HyperOut<'_, '_, T> {
    #[inline]
    fn fill(&self, start: usize, out: &mut [T]) {
        #[cfg(target_endian = "little")]
        if let Some(layer) = self.out {
            crate::nn::rows_of(layer, self.last.0, start, out);
            return;
        }
        self.nn.output_rows(self.last, start, out);
    }
}

/// A spline coupling layer (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplineCoupling<'a> {
    split: usize,
    lower: Spline<'a>,
    upper: SplineShape,
    nn: DenseNN<'a>,
    context: usize,
}

impl<'a> SplineCoupling<'a> {
    /// A coupling over `lower.dim() + upper_dim` dimensions with split `lower.dim()`.
    ///
    /// `nn` must take `lower.dim() + context` inputs and give `upper_dim ×
    /// upper.params_per_dim()` outputs.
    #[inline]
    pub fn new(
        lower: Spline<'a>,
        upper_dim: usize,
        upper: SplineShape,
        nn: DenseNN<'a>,
        context: usize,
    ) -> Result<Self, Error> {
        if upper_dim == 0 {
            return Err(Error::InvalidLayer(LayerError::Split));
        }
        let split = lower.dim();
        if nn.input() != split + context
            || nn.output_len() != upper_dim.saturating_mul(upper.params_per_dim())
        {
            return Err(Error::InvalidLayer(LayerError::HypernetShape));
        }
        Ok(Self::of(lower, upper, nn, context))
    }

    /// [`new`](Self::new) without its checks, for a caller that built `nn` with the shape
    /// they check (the model loader) and an upper part of at least one dimension.
    #[inline]
    pub(crate) fn of(
        lower: Spline<'a>,
        upper: SplineShape,
        nn: DenseNN<'a>,
        context: usize,
    ) -> Self {
        Self {
            split: lower.dim(),
            lower,
            upper,
            nn,
            context,
        }
    }

    /// Total dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.split + self.upper_dim()
    }

    /// Number of upper dimensions, `dim - split`.
    #[inline]
    pub fn upper_dim(&self) -> usize {
        self.nn.output_len() / self.upper.params_per_dim().max(1)
    }

    /// The split `d`: dimensions `..d` are the lower part.
    #[inline]
    pub fn split(&self) -> usize {
        self.split
    }

    /// Context size (0 for Pyro's unconditional coupling).
    #[inline]
    pub fn context_dim(&self) -> usize {
        self.context
    }

    /// The lower element-wise spline.
    #[inline]
    pub fn lower(&self) -> &Spline<'a> {
        &self.lower
    }

    /// The upper spline's shape.
    #[inline]
    pub fn upper_shape(&self) -> &SplineShape {
        &self.upper
    }

    /// The hypernetwork.
    #[inline]
    pub fn hypernet(&self) -> &DenseNN<'a> {
        &self.nn
    }

    #[allow(clippy::too_many_arguments)] // internal: a layer's inputs, scratch and table
    pub(crate) fn apply<T: Real>(
        &self,
        v: &mut [T],
        ctx: &[T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
        lower_table: Weights<'_>,
        check: bool,
    ) -> Result<T, Error> {
        if check && ctx.len() != self.context {
            return Err(Error::InvalidLayer(LayerError::Context));
        }
        // Both callers pass `v` and `lds` of the layer's dimension, so these never fail.
        let mismatch = Error::DimensionMismatch {
            expected: self.split,
            found: v.len().min(lds.len()),
        };
        let (x1, x2) = v.split_at_mut_checked(self.split).ok_or(mismatch)?;
        let (ld1, ld2) = lds.split_at_mut_checked(self.split).ok_or(mismatch)?;
        // Going forward the hypernet reads x1 before the lower spline changes it; going back it
        // reads x1 after the lower spline's inverse has recovered it. One loop of two steps
        // keeps a single call of each part.
        let mut total = T::ZERO;
        let inverse = dir == Direction::Inverse;
        for lower_now in [inverse, !inverse] {
            total += if lower_now {
                self.lower
                    .apply(x1, ld1, dir, want_log_det, s, lower_table)?
            } else {
                let last = self.nn.hidden(x1, ctx, s.h0, s.h1, check)?;
                let out = HyperOut::new(&self.nn, last);
                eval_all(&self.upper, &out, x2, ld2, dir, want_log_det, (s.xs, s.ys))?
            };
        }
        Ok(total)
    }

    /// The inverse of [`apply`](Self::apply) (log-determinants wanted) on a block of points
    /// (rows of `v` are dimensions and of `ctx` context values, lanes points), for the lanes
    /// where `live` is `true`: each lane's values and returned log-determinant are that
    /// point's `apply`, bit for bit. The hypernetwork runs on the whole block; the lower
    /// spline reads its knot `table`, and without one (`None`, nothing changed) the caller
    /// evaluates the points one by one.
    #[cfg(feature = "wide")]
    #[inline(always)] // see `block::log_prob_many`
    pub(crate) fn inverse_lanes(
        &self,
        v: &mut [Lanes],
        ctx: &[Lanes],
        live: &[bool; LANES],
        s: &mut LaneScratch<'_>,
        lower_table: Weights<'_>,
    ) -> Option<Lanes> {
        let dir = Direction::Inverse;
        let (x1, x2) = v.split_at_mut_checked(self.split)?;
        // `apply`'s order: the lower spline's inverse recovers x1, which the hypernetwork
        // then reads; the layer's log|J| is `0 + lower + upper`.
        let lower = self.lower.apply_lanes(x1, dir, live, lower_table)?;
        let last = self.nn.hidden_lanes(x1, ctx, s.h0, s.h1);
        let (dims, k) = (x2.len(), self.upper.bins());
        // Where dimension j's parameters start in the output (`DimParams`'s layout).
        let starts = |j: usize| {
            let d = 2 * dims * k;
            [
                j * k,
                (dims + j) * k,
                d + j * (k - 1),
                d + dims * (k - 1) + j * k,
            ]
        };
        let lens = [k, k, k - 1, self.upper.lambdas_per_dim()];
        let mut upper = [0f32; LANES];
        for (j, x) in x2.iter_mut().enumerate() {
            let [w, h, d, l] = &mut s.rows;
            let mut rows = [&mut **w, &mut **h, &mut **d, &mut **l];
            for ((row, first), len) in rows.iter_mut().zip(starts(j)).zip(lens) {
                let row = row.get_mut(..len)?;
                self.nn.output_lanes(last, first, row);
            }
            let [w, h, d, l] = rows;
            let p = LaneRows {
                widths: w,
                heights: h,
                derivatives: d.get(..k - 1)?,
                lambdas: l.get(..lens[3])?,
            };
            let mut ld = [0f32; LANES];
            eval_lanes(&self.upper, p, x, &mut ld, dir, live);
            for (u, l) in upper.iter_mut().zip(ld) {
                *u += l;
            }
        }
        let mut total = [0f32; LANES];
        for ((t, l), u) in total.iter_mut().zip(lower).zip(upper) {
            *t += l;
            *t += u;
        }
        Some(total)
    }
}
