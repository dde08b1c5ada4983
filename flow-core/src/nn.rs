//! The dense hypernetwork (Pyro's `DenseNN`): `Linear → ReLU → … → Linear`, no output activation.
//!
//! A `Linear(in, out)` layer computes `W·h + b` with `W` stored row-major as `[out][in]`, as in
//! torch. The weights of all layers are one block: `W_0, b_0, W_1, b_1, …`.
//!
//! Hidden activations live in caller-provided scratch; the output layer is evaluated one row at a
//! time ([`DenseNN::output`]), so a spline asks only for the outputs it needs and no buffer of
//! the full output is kept.

use crate::error::{check_capacity, Capacity, Error, LayerError};
use crate::real::Real;
use crate::weights::Weights;

/// Most hidden layers one hypernetwork may have.
pub const MAX_HIDDEN_LAYERS: usize = 4;

/// A dense network with ReLU between layers, reading its weights in place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseNN<'a> {
    /// `[input, hidden…, output]`; only the first `hidden + 2` entries are used.
    sizes: [usize; MAX_HIDDEN_LAYERS + 2],
    hidden: usize,
    weights: Weights<'a>,
}

/// Number of weights and biases of a network with these sizes.
pub fn dense_param_count(input: usize, hidden: &[usize], output: usize) -> usize {
    let mut n = 0usize;
    let mut prev = input;
    for &h in hidden.iter().chain(core::iter::once(&output)) {
        n = n.saturating_add(prev.saturating_mul(h).saturating_add(h));
        prev = h;
    }
    n
}

impl<'a> DenseNN<'a> {
    /// A network `input → hidden[0] → … → output` with the given weights.
    ///
    /// Checks the weight count, that every weight is finite, that each size is at least 1, and
    /// that there are at most [`MAX_HIDDEN_LAYERS`] hidden layers.
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        weights: Weights<'a>,
    ) -> Result<Self, Error> {
        check_capacity(Capacity::HiddenLayers, hidden.len(), MAX_HIDDEN_LAYERS)?;
        let mut sizes = [0usize; MAX_HIDDEN_LAYERS + 2];
        sizes[0] = input;
        for (s, &h) in sizes[1..].iter_mut().zip(hidden) {
            *s = h;
        }
        if let Some(s) = sizes.get_mut(hidden.len() + 1) {
            *s = output;
        }
        if sizes[..hidden.len() + 2].contains(&0) {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        let expected = dense_param_count(input, hidden, output);
        if weights.len() != expected {
            return Err(Error::ParameterCount {
                expected,
                found: weights.len(),
            });
        }
        if !weights.all_finite() {
            return Err(Error::NonFiniteParameter);
        }
        Ok(Self {
            sizes,
            hidden: hidden.len(),
            weights,
        })
    }

    /// Input size.
    #[inline]
    pub fn input(&self) -> usize {
        self.sizes[0]
    }

    /// Output size.
    #[inline]
    pub fn output_len(&self) -> usize {
        self.sizes.get(self.hidden + 1).copied().unwrap_or(0)
    }

    /// The hidden sizes.
    #[inline]
    pub fn hidden_sizes(&self) -> &[usize] {
        self.sizes.get(1..self.hidden + 1).unwrap_or(&[])
    }

    /// The widest hidden layer (0 with none).
    pub fn max_hidden(&self) -> usize {
        self.hidden_sizes().iter().copied().max().unwrap_or(0)
    }

    /// The weights.
    #[inline]
    pub fn weights(&self) -> Weights<'a> {
        self.weights
    }

    /// Runs every hidden layer on the input `a ++ b` and returns the last activation as two
    /// parts (the second empty unless the network has no hidden layer, in which case the
    /// input itself is returned). `bufs` must each hold the widest hidden layer.
    pub(crate) fn hidden<'s, T: Real>(
        &self,
        a: &'s [T],
        b: &'s [T],
        h0: &'s mut [T],
        h1: &'s mut [T],
    ) -> Result<(&'s [T], &'s [T]), Error> {
        if a.len() + b.len() != self.input() {
            return Err(Error::DimensionMismatch {
                expected: self.input(),
                found: a.len() + b.len(),
            });
        }
        check_capacity(Capacity::Hidden, self.max_hidden(), h0.len().min(h1.len()))?;
        let mut off = 0usize;
        let mut prev = self.input();
        // Ping-pong between the two buffers; `src` is None for the network input.
        let mut cur: (&mut [T], &mut [T]) = (h0, h1);
        let mut have_src = false;
        for &h in self.hidden_sizes() {
            {
                let (src, dst) = (&*cur.0, &mut *cur.1);
                let (pa, pb): (&[T], &[T]) = if have_src {
                    (src.get(..prev).unwrap_or(&[]), &[])
                } else {
                    (a, b)
                };
                let dst = dst.get_mut(..h).ok_or(Error::Numerical)?;
                self.linear(off, prev, pa, pb, dst);
                for v in dst.iter_mut() {
                    // ReLU that propagates NaN.
                    if *v < T::ZERO {
                        *v = T::ZERO;
                    }
                }
            }
            off += prev * h + h;
            prev = h;
            have_src = true;
            cur = (cur.1, cur.0);
        }
        if have_src {
            let last: &'s [T] = cur.0;
            Ok((last.get(..prev).unwrap_or(&[]), &[]))
        } else {
            Ok((a, b))
        }
    }

    /// `dst = W·(a ++ b) + b` for the layer whose weights start at `off` with `n_in` inputs.
    fn linear<T: Real>(&self, off: usize, n_in: usize, a: &[T], b: &[T], dst: &mut [T]) {
        let n_out = dst.len();
        for (r, d) in dst.iter_mut().enumerate() {
            *d = self.row(off, n_in, n_out, r, a, b);
        }
    }

    /// Row `r` of the layer at `off`: `Σ_i W[r][i]·(a ++ b)[i] + bias[r]`.
    #[inline]
    fn row<T: Real>(&self, off: usize, n_in: usize, n_out: usize, r: usize, a: &[T], b: &[T]) -> T {
        let w = self.weights;
        let start = off + r * n_in;
        let wa = w.slice(start, a.len()).unwrap_or(Weights::empty());
        let wb = w
            .slice(start + a.len(), b.len())
            .unwrap_or(Weights::empty());
        wa.dot(a) + wb.dot(b) + w.at(off + n_out * n_in + r)
    }

    /// Output `r` of the last layer, given the last hidden activation (as returned by
    /// [`hidden`](Self::hidden)).
    #[inline]
    pub(crate) fn output<T: Real>(&self, last: (&[T], &[T]), r: usize) -> T {
        let n_in = last.0.len() + last.1.len();
        let n_out = self.output_len();
        let off = self.weights.len().saturating_sub(n_in * n_out + n_out);
        self.row(off, n_in, n_out, r, last.0, last.1)
    }

    /// Computes the whole output for the input `a ++ b` into `out` (`out.len()` = output size).
    ///
    /// The flows never need this (they ask for single rows); it is here for tests and tools.
    pub fn forward<T: Real>(
        &self,
        a: &[T],
        b: &[T],
        h0: &mut [T],
        h1: &mut [T],
        out: &mut [T],
    ) -> Result<(), Error> {
        if out.len() != self.output_len() {
            return Err(Error::DimensionMismatch {
                expected: self.output_len(),
                found: out.len(),
            });
        }
        let last = self.hidden(a, b, h0, h1)?;
        for (r, o) in out.iter_mut().enumerate() {
            *o = self.output(last, r);
        }
        Ok(())
    }
}
