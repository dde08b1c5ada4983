//! The learnable element-wise spline layer.

use super::eval::{eval_all, eval_dim};
#[cfg(feature = "wide")]
use super::lanes::eval_flat;
use super::params::{DimParams, Direction, SplineShape};
use super::tables::{dim_table, dim_table_well_formed, table_len_per_dim, TableDim};
use crate::error::{Error, LayerError};
#[cfg(feature = "wide")]
use crate::flat::{Lanes, LANES};
use crate::real::Real;
use crate::weights::Weights;
use crate::workspace::Scratch;

/// The learnable element-wise spline (Pyro's `Spline(dim, count_bins, bound, order)`), each
/// dimension with its own parameters, stored as `[uw (dim×K) | uh (dim×K) | ud (dim×(K-1)) |
/// ul (dim×K), linear only]` — the order of Pyro's `unnormalized_widths`, `_heights`,
/// `_derivatives`, `_lambdas`, each row-major.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spline<'a> {
    dim: usize,
    shape: SplineShape,
    weights: Weights<'a>,
}

impl<'a> Spline<'a> {
    /// A spline over `dim` dimensions; checks the parameter count and that each is finite.
    pub fn new(dim: usize, shape: SplineShape, weights: Weights<'a>) -> Result<Self, Error> {
        if dim == 0 {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        weights.check(Self::param_count(dim, &shape))?;
        Ok(Self {
            dim,
            shape,
            weights,
        })
    }

    /// Parameters of a `dim`-dimensional spline of this shape.
    pub fn param_count(dim: usize, shape: &SplineShape) -> usize {
        dim.saturating_mul(shape.params_per_dim())
    }

    /// Dimension.
    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bins, bound, order.
    #[inline]
    pub fn shape(&self) -> &SplineShape {
        &self.shape
    }

    /// The stored parameters.
    #[inline]
    pub fn weights(&self) -> Weights<'a> {
        self.weights
    }

    /// Entries of its precomputed knot table: `dim × (4K - 3)` (linear) or `dim × (3K - 3)`
    /// (quadratic) `f32` values, dimension by dimension (see [`Flow::set_tables`]).
    ///
    /// [`Flow::set_tables`]: crate::Flow::set_tables
    pub fn table_len(&self) -> usize {
        self.dim.saturating_mul(table_len_per_dim(&self.shape))
    }

    /// Calls `f` with each entry of its knot table, in order; stops when `f` returns `false`
    /// (then returns `false`, as when `xs`/`ys` hold fewer than `K` values).
    pub(crate) fn table_entries(
        &self,
        (xs, ys): (&mut [f32], &mut [f32]),
        f: &mut impl FnMut(f32) -> bool,
    ) -> bool {
        (0..self.dim).all(|j| {
            let p = DimParams {
                v: &self.weights,
                dims: self.dim,
                bins: self.shape.bins,
                j,
            };
            dim_table(&self.shape, &p, (&mut *xs, &mut *ys), f)
        })
    }

    /// `true` when the next [`table_len`](Self::table_len) entries of `t` are, dimension by
    /// dimension, well-formed knot tables (see
    /// [`Flow::set_sealed_tables`](crate::Flow::set_sealed_tables)).
    pub(crate) fn table_well_formed(&self, t: &mut impl Iterator<Item = f32>) -> bool {
        (0..self.dim).all(|_| dim_table_well_formed(&self.shape, t))
    }

    /// Applies the spline to each dimension of `v` (see [`eval_all`]); with `table` of
    /// [`table_len`](Self::table_len) entries and `T = f32`, the knots, derivatives and `λ`s
    /// are read from it instead of computed (same values, bit for bit).
    pub(crate) fn apply<T: Real>(
        &self,
        v: &mut [T],
        lds: &mut [T],
        dir: Direction,
        want_log_det: bool,
        s: &mut Scratch<'_, T>,
        table: Weights<'_>,
    ) -> Result<T, Error> {
        let per_dim = table_len_per_dim(&self.shape);
        if !(T::IS_F32 && table.len() == self.table_len()) {
            return eval_all(
                &self.shape,
                &self.weights,
                v,
                lds,
                dir,
                want_log_det,
                (s.xs, s.ys),
            );
        }
        let bound = T::from_f32(self.shape.bound);
        let mut total = T::ZERO;
        let mut rest = table.as_bytes().as_chunks::<4>().0;
        for (x, ld) in v.iter_mut().zip(lds.iter_mut()) {
            let (w, next) = rest.split_at_checked(per_dim).unwrap_or((rest, &[]));
            rest = next;
            if !(*x >= -bound && *x <= bound) {
                *ld = T::ZERO;
                continue;
            }
            let src = TableDim::split(w, self.shape.bins, self.shape.bound);
            let (y, l) = eval_dim(&self.shape, &src, *x, dir, want_log_det);
            *x = y;
            *ld = l;
            total += l;
        }
        Ok(total)
    }

    /// [`apply`](Self::apply) with its knot `table` on a block of points (rows of `v` are
    /// dimensions, lanes points), for the lanes where `live` is `true`: each lane's values
    /// and the returned log-determinant are that point's `apply`, bit for bit. `None` (and
    /// nothing changed) without a table of [`table_len`](Self::table_len) entries.
    #[cfg(feature = "wide")]
    #[inline(always)] // see `block::log_prob_many`
    pub(crate) fn apply_lanes(
        &self,
        v: &mut [Lanes],
        dir: Direction,
        live: &[bool; LANES],
        table: Weights<'_>,
    ) -> Option<Lanes> {
        if table.len() != self.table_len() {
            return None;
        }
        let per_dim = table_len_per_dim(&self.shape);
        let bound = self.shape.bound;
        let mut total = [0f32; LANES];
        let mut rest = table.as_bytes().as_chunks::<4>().0;
        for x in v.iter_mut() {
            let (w, next) = rest.split_at_checked(per_dim).unwrap_or((rest, &[]));
            rest = next;
            let src = TableDim::split(w, self.shape.bins, bound);
            let start = *x;
            let mut ld = [0f32; LANES];
            let redo = eval_flat(&self.shape, &src, x, &mut ld, dir);
            for r in 0..LANES {
                // `apply` adds the log-determinant of a point inside the box only.
                if live[r] && start[r] >= -bound && start[r] <= bound {
                    if redo[r] {
                        crate::flat::count_redone();
                        (x[r], ld[r]) = eval_dim(&self.shape, &src, start[r], dir, true);
                    }
                    total[r] += ld[r];
                }
            }
        }
        Some(total)
    }
}
