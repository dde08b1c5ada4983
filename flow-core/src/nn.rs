//! The dense hypernetwork (Pyro's `DenseNN`): `Linear → ReLU → … → Linear`, no output activation.
//!
//! A `Linear(in, out)` layer computes `W·h + b` with `W` stored row-major as `[out][in]`, as in
//! torch. The weights of all layers are one block: `W_0, b_0, W_1, b_1, …`.
//!
//! Hidden activations live in caller-provided scratch; the output layer is evaluated one row at a
//! time, so a spline asks only for the outputs it needs and no buffer of
//! the full output is kept.

use crate::error::{check_capacity, Capacity, Error, LayerError};
#[cfg(feature = "wide")]
use crate::flat::{Lanes, LANES};
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
        Self::with_sizes(sizes, hidden.len(), weights)
    }

    /// [`new`](Self::new) with the sizes already laid out: `[input, hidden…, output]` in the
    /// first `hidden + 2` entries of `sizes` (`hidden <= MAX_HIDDEN_LAYERS`), zeros after them.
    /// The model loader builds them from a record without a slice in between.
    #[inline]
    pub(crate) fn with_sizes(
        sizes: [usize; MAX_HIDDEN_LAYERS + 2],
        hidden: usize,
        weights: Weights<'a>,
    ) -> Result<Self, Error> {
        let used = sizes.get(..hidden + 2).unwrap_or(&sizes);
        if used.contains(&0) {
            return Err(Error::InvalidLayer(LayerError::ZeroDim));
        }
        // `dense_param_count`, over consecutive pairs of sizes.
        let expected = used.windows(2).fold(0usize, |n, w| {
            n.saturating_add(w[0].saturating_mul(w[1]).saturating_add(w[1]))
        });
        weights.check(expected)?;
        Ok(Self {
            sizes,
            hidden,
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
    /// input itself is returned). `h0` and `h1` must each hold the widest hidden layer.
    ///
    /// With `check`, a wrong input size and too short buffers are errors; without, the caller
    /// guarantees both (a layer of a chain; short buffers would then give
    /// [`Error::Numerical`], never a panic).
    pub(crate) fn hidden<'s, T: Real>(
        &self,
        a: &'s [T],
        b: &'s [T],
        h0: &'s mut [T],
        h1: &'s mut [T],
        check: bool,
    ) -> Result<(&'s [T], &'s [T]), Error> {
        if check {
            if a.len() + b.len() != self.input() {
                return Err(Error::DimensionMismatch {
                    expected: self.input(),
                    found: a.len() + b.len(),
                });
            }
            check_capacity(Capacity::Hidden, self.max_hidden(), h0.len().min(h1.len()))?;
        }
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

    /// `dst = W·(a ++ b) + bias` for the layer whose weights start at `off` with `n_in` inputs.
    fn linear<T: Real>(&self, off: usize, n_in: usize, a: &[T], b: &[T], dst: &mut [T]) {
        self.rows(off, n_in, dst.len(), 0, a, b, dst);
    }

    /// Rows `first..first + dst.len()` of the layer at `off` (`n_in` inputs, `n_out` outputs):
    /// `dst[i] = Σ_j W[first+i][j]·(a ++ b)[j] + bias[first+i]`.
    #[allow(clippy::too_many_arguments)] // internal: a layer's geometry and a row range
    #[inline]
    fn rows<T: Real>(
        &self,
        off: usize,
        n_in: usize,
        n_out: usize,
        first: usize,
        a: &[T],
        b: &[T],
        dst: &mut [T],
    ) {
        // Parameters stored 4-byte aligned (as model files lay them out) are read as `f32`
        // directly for one input slice; elsewhere, and for an input in two parts (only a
        // conditional coupling's first layer), through their bytes. Both sum in the same
        // order: same bits. (Every value of a network is aligned when its first is.)
        #[cfg(target_endian = "little")]
        if let (true, Ok(all)) = (
            b.is_empty(),
            bytemuck::try_cast_slice::<u8, f32>(self.weights.as_bytes()),
        ) {
            let count = dst.len();
            let m_at = off + first * n_in;
            let b_at = off + n_out * n_in + first;
            if let (Some(m), Some(bv)) = (
                all.get(m_at..m_at + count * n_in),
                all.get(b_at..b_at + count),
            ) {
                rows_f32(m, bv, n_in, a, dst);
            }
            return;
        }
        // Through the bytes, one value at a time: the sums over `a` and over `b` are kept
        // apart and added as `dot(a) + dot(b) + bias`, the order of the two-part input's
        // definition. With `b` empty its sum is `+0`, and adding it changes no bits (a sum
        // that starts at `+0` is never `-0`).
        let w = self.weights;
        let bias_at = off + n_out * n_in;
        for (r, d) in (first..).zip(dst.iter_mut()) {
            let row = off + r * n_in;
            let (mut sa, mut sb) = (T::ZERO, T::ZERO);
            for j in 0..n_in {
                let wv = T::from_f32(w.get(row + j).unwrap_or(0.0));
                match a.get(j) {
                    Some(&x) => sa += wv * x,
                    None => sb += wv * b.get(j - a.len()).copied().unwrap_or(T::ZERO),
                }
            }
            *d = sa + sb + T::from_f32(w.get(bias_at + r).unwrap_or(0.0));
        }
    }

    /// Outputs `first..first + dst.len()` of the last layer, given the last hidden activation
    /// (as returned by [`hidden`](Self::hidden)).
    #[inline]
    pub(crate) fn output_rows<T: Real>(&self, last: (&[T], &[T]), first: usize, dst: &mut [T]) {
        let n_in = last.0.len() + last.1.len();
        let n_out = self.output_len();
        let off = self.weights.len().saturating_sub(n_in * n_out + n_out);
        self.rows(off, n_in, n_out, first, last.0, last.1, dst);
    }

    /// The last layer's weight matrix and biases as `f32` read in place (row-major, `n_in`
    /// values per row), when they are 4-byte aligned on a little-endian target; for callers
    /// that ask for several row ranges of one input slice ([`rows_of`]).
    #[inline]
    pub(crate) fn output_f32(&self, n_in: usize) -> Option<(&'a [f32], &'a [f32])> {
        #[cfg(target_endian = "little")]
        {
            let all = bytemuck::try_cast_slice::<u8, f32>(self.weights.as_bytes()).ok()?;
            let n_out = self.output_len();
            // The last layer ends the block: its matrix, then its biases.
            let (rest, bias) = all.split_at_checked(all.len().checked_sub(n_out)?)?;
            let (_, mat) =
                rest.split_at_checked(rest.len().checked_sub(n_in.checked_mul(n_out)?)?)?;
            Some((mat, bias))
        }
        #[cfg(not(target_endian = "little"))]
        {
            let _ = n_in;
            None
        }
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
        let last = self.hidden(a, b, h0, h1, true)?;
        self.output_rows(last, 0, out);
        Ok(())
    }
}

/// The network on a block of points (feature `wide`): lane `r` of every row belongs to point
/// `r`, and each lane's values are the single-point ones bit for bit — every sum taken in the
/// single-point order (`Σ_j W[i][j]·x_j` in order from `+0`, the two parts of a two-part input
/// summed apart and added, then the bias), the vector lanes running across points.
#[cfg(feature = "wide")]
impl DenseNN<'_> {
    /// [`hidden`](Self::hidden) on a block: the last activation of every point, as rows of
    /// lanes. The caller guarantees what `hidden` checks with `check` (the input size is
    /// `a.len() + b.len()`, `h0` and `h1` hold the widest hidden layer); short buffers give
    /// an empty activation, never a panic.
    #[inline(always)] // see `block::log_prob_many`
    pub(crate) fn hidden_lanes<'s>(
        &self,
        a: &'s [Lanes],
        b: &'s [Lanes],
        h0: &'s mut [Lanes],
        h1: &'s mut [Lanes],
    ) -> (&'s [Lanes], &'s [Lanes]) {
        let mut off = 0usize;
        let mut prev = self.input();
        let mut cur: (&mut [Lanes], &mut [Lanes]) = (h0, h1);
        let mut have_src = false;
        for &h in self.hidden_sizes() {
            {
                let (src, dst) = (&*cur.0, &mut *cur.1);
                let (pa, pb): (&[Lanes], &[Lanes]) = if have_src {
                    (src.get(..prev).unwrap_or(&[]), &[])
                } else {
                    (a, b)
                };
                let Some(dst) = dst.get_mut(..h) else {
                    return (&[], &[]);
                };
                self.rows_lanes(off, prev, h, 0, (pa, pb), dst);
                for row in dst.iter_mut() {
                    for v in row.iter_mut() {
                        // ReLU that propagates NaN, as `hidden`.
                        *v = if *v < 0.0 { 0.0 } else { *v };
                    }
                }
            }
            off += prev * h + h;
            prev = h;
            have_src = true;
            cur = (cur.1, cur.0);
        }
        if have_src {
            let last: &'s [Lanes] = cur.0;
            (last.get(..prev).unwrap_or(&[]), &[])
        } else {
            (a, b)
        }
    }

    /// [`output_rows`](Self::output_rows) on a block: outputs `first..first + dst.len()` of
    /// every point, given the last activations from [`hidden_lanes`](Self::hidden_lanes).
    #[inline(always)] // see `block::log_prob_many`
    pub(crate) fn output_lanes(&self, last: (&[Lanes], &[Lanes]), first: usize, dst: &mut [Lanes]) {
        let n_in = last.0.len() + last.1.len();
        let n_out = self.output_len();
        let off = self.weights.len().saturating_sub(n_in * n_out + n_out);
        self.rows_lanes(off, n_in, n_out, first, last, dst);
    }

    /// [`rows`](Self::rows) on a block: rows `first..first + dst.len()` of the layer at `off`
    /// (`n_in` inputs, `n_out` outputs) for the input `a ++ b` of every point.
    #[inline(always)] // see `block::log_prob_many`
    fn rows_lanes(
        &self,
        off: usize,
        n_in: usize,
        n_out: usize,
        first: usize,
        (a, b): (&[Lanes], &[Lanes]),
        dst: &mut [Lanes],
    ) {
        let values = self.weights.as_bytes().as_chunks::<4>().0;
        let bias_at = off + n_out * n_in;
        let na = a.len().min(n_in);
        // Four rows at a time: four independent sums share each input row (each sum still
        // taken in its own order).
        let mut r = first;
        let mut groups = dst.chunks_exact_mut(4);
        for d in groups.by_ref() {
            if !self.lane_rows::<4>(values, (off, n_in, na, bias_at), r, (a, b), d) {
                return;
            }
            r += 4;
        }
        for d in groups.into_remainder().chunks_mut(1) {
            if !self.lane_rows::<1>(values, (off, n_in, na, bias_at), r, (a, b), d) {
                return;
            }
            r += 1;
        }
    }

    /// Rows `r..r + G` of [`rows_lanes`](Self::rows_lanes) into `dst` (`G` rows); `false`
    /// (nothing written) when the weights end early.
    #[inline(always)]
    fn lane_rows<const G: usize>(
        &self,
        values: &[[u8; 4]],
        (off, n_in, na, bias_at): (usize, usize, usize, usize),
        r: usize,
        (a, b): (&[Lanes], &[Lanes]),
        dst: &mut [Lanes],
    ) -> bool {
        let mut wa = [&[][..]; G];
        let mut wb = [&[][..]; G];
        let mut bias = [0f32; G];
        for q in 0..G {
            let row = off + (r + q) * n_in;
            let (Some(a), Some(b), Some(c)) = (
                values.get(row..row + na),
                values.get(row + na..row + n_in),
                values.get(bias_at + r + q),
            ) else {
                return false;
            };
            (wa[q], wb[q], bias[q]) = (a, b, f32::from_le_bytes(*c));
        }
        let mut sa = [[0f32; LANES]; G];
        lane_dots(wa, a, &mut sa);
        if n_in > na {
            let mut sb = [[0f32; LANES]; G];
            lane_dots(wb, b, &mut sb);
            for (s, t) in sa.iter_mut().zip(sb) {
                for (s, t) in s.iter_mut().zip(t) {
                    *s += t;
                }
            }
        }
        for ((d, s), bias) in dst.iter_mut().zip(sa).zip(bias) {
            for (d, s) in d.iter_mut().zip(s) {
                *d = s + bias;
            }
        }
        true
    }
}

/// `s[q] += w[q]_j·x_j` for each lane and each of the `G` rows `q`, `j` in order, over the
/// shortest of the `w[q]` (little-endian `f32` weights) and `x`.
#[cfg(feature = "wide")]
#[inline(always)]
fn lane_dots<const G: usize>(w: [&[[u8; 4]]; G], x: &[Lanes], s: &mut [Lanes; G]) {
    let n = w.iter().fold(x.len(), |n, w| n.min(w.len()));
    let x = &x[..n];
    let w = w.map(|w| &w[..n]);
    let mut acc = *s;
    for j in 0..n {
        let xj = &x[j];
        for q in 0..G {
            let wv = f32::from_le_bytes(w[q][j]);
            for r in 0..LANES {
                acc[q][r] += wv * xj[r];
            }
        }
    }
    *s = acc;
}

/// Rows `first..first + dst.len()` of a layer given as `f32` (see [`DenseNN::output_f32`]),
/// for the input `a` (in one slice): the same sums as [`DenseNN::output_rows`] on `(a, &[])`.
#[inline]
#[cfg(target_endian = "little")]
pub(crate) fn rows_of<T: Real>((m, bv): (&[f32], &[f32]), a: &[T], first: usize, dst: &mut [T]) {
    let n_in = a.len();
    let count = dst.len();
    let rows = first
        .checked_mul(n_in)
        .and_then(|s| m.get(s..s.checked_add(count.checked_mul(n_in)?)?));
    let bias = first.checked_add(count).and_then(|e| bv.get(first..e));
    if let (Some(rows), Some(bias)) = (rows, bias) {
        rows_f32(rows, bias, n_in, a, dst);
    }
}

/// [`DenseNN::rows`] on a layer's rows as `f32` read in place, for an input in one slice `a`:
/// `dst[i] = m_i·a + bv[i]`, row `m_i = m[i·n_in..(i+1)·n_in]` (`n_in > 0`).
// Not inlined: one copy serves `DenseNN::rows` and `rows_of`.
#[inline(never)]
#[cfg(target_endian = "little")]
fn rows_f32<T: Real>(m: &[f32], bv: &[f32], n_in: usize, a: &[T], dst: &mut [T]) {
    if n_in == 0 {
        return;
    }
    // Rows go in blocks of four that share each load of the input, then one at a time; each
    // row still sums in order.
    let mut rows = m.chunks_exact(n_in);
    let (d4, dr) = dst.as_chunks_mut::<4>();
    let (b4, br) = bv.as_chunks::<4>();
    for (d, bb) in d4.iter_mut().zip(b4) {
        let (Some(r0), Some(r1), Some(r2), Some(r3)) =
            (rows.next(), rows.next(), rows.next(), rows.next())
        else {
            return;
        };
        let [s0, s1, s2, s3] = dot4_f32(r0, r1, r2, r3, a);
        d[0] = s0 + T::from_f32(bb[0]);
        d[1] = s1 + T::from_f32(bb[1]);
        d[2] = s2 + T::from_f32(bb[2]);
        d[3] = s3 + T::from_f32(bb[3]);
    }
    // (`next()` rather than a zip with `rows`: the zip's length would divide by
    // `n_in`, a division the optimizer cannot always prove safe.)
    for (d, &bb) in dr.iter_mut().zip(br) {
        let Some(row) = rows.next() else {
            return;
        };
        *d = dot_f32(row, a) + T::from_f32(bb);
    }
}

/// `Σ w[i]·x[i]` over `f32` weights, summed in order over the shorter of the two.
#[inline]
#[cfg(target_endian = "little")]
fn dot_f32<T: Real>(w: &[f32], x: &[T]) -> T {
    let (wc, wr) = w.as_chunks::<4>();
    let (xc, xr) = x.as_chunks::<4>();
    let mut acc = T::ZERO;
    for (w4, x4) in wc.iter().zip(xc) {
        acc += T::from_f32(w4[0]) * x4[0];
        acc += T::from_f32(w4[1]) * x4[1];
        acc += T::from_f32(w4[2]) * x4[2];
        acc += T::from_f32(w4[3]) * x4[3];
    }
    for (&wv, &xv) in wr.iter().zip(xr) {
        acc += T::from_f32(wv) * xv;
    }
    acc
}

/// Four [`dot_f32`]s over rows `r0`…`r3` sharing the loads of `x`; each sums in order.
#[inline]
#[cfg(target_endian = "little")]
fn dot4_f32<T: Real>(r0: &[f32], r1: &[f32], r2: &[f32], r3: &[f32], x: &[T]) -> [T; 4] {
    let (a4, ar) = r0.as_chunks::<4>();
    let (b4, br) = r1.as_chunks::<4>();
    let (c4, cr) = r2.as_chunks::<4>();
    let (e4, er) = r3.as_chunks::<4>();
    let (x4, xr) = x.as_chunks::<4>();
    let (mut s0, mut s1, mut s2, mut s3) = (T::ZERO, T::ZERO, T::ZERO, T::ZERO);
    for ((((a, b), c), e), x) in a4.iter().zip(b4).zip(c4).zip(e4).zip(x4) {
        // Unrolled by hand: at opt-level "s" the compiler keeps a loop over the column.
        macro_rules! column {
            ($i:literal) => {
                s0 += T::from_f32(a[$i]) * x[$i];
                s1 += T::from_f32(b[$i]) * x[$i];
                s2 += T::from_f32(c[$i]) * x[$i];
                s3 += T::from_f32(e[$i]) * x[$i];
            };
        }
        column!(0);
        column!(1);
        column!(2);
        column!(3);
    }
    for ((((&a, &b), &c), &e), &x) in ar.iter().zip(br).zip(cr).zip(er).zip(xr) {
        s0 += T::from_f32(a) * x;
        s1 += T::from_f32(b) * x;
        s2 += T::from_f32(c) * x;
        s3 += T::from_f32(e) * x;
    }
    [s0, s1, s2, s3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aligned (`f32`) and unaligned (bytes) weight paths compute the same bits.
    #[test]
    fn aligned_and_unaligned_weights_agree_bit_for_bit() {
        let (input, hidden, output) = (3, [7usize, 5], 11);
        let n = dense_param_count(input, &hidden, output);
        let vals: heapless::Vec<f32, 256> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 61.0)
            .collect();
        // Word buffers give a 4-aligned view and, one byte in, a misaligned one.
        let mut aligned = [0u32; 256];
        let mut shifted = [0u32; 257];
        for (w, v) in aligned.iter_mut().zip(&vals) {
            *w = u32::from_ne_bytes(v.to_le_bytes());
        }
        let a_bytes = &bytemuck::cast_slice::<u32, u8>(&aligned)[..4 * n];
        bytemuck::cast_slice_mut::<u32, u8>(&mut shifted)[1..1 + 4 * n].copy_from_slice(a_bytes);
        let u_bytes = &bytemuck::cast_slice::<u32, u8>(&shifted)[1..1 + 4 * n];
        assert!(bytemuck::try_cast_slice::<u8, f32>(u_bytes).is_err());
        let na = DenseNN::new(input, &hidden, output, Weights::new(a_bytes).unwrap()).unwrap();
        let nu = DenseNN::new(input, &hidden, output, Weights::new(u_bytes).unwrap()).unwrap();
        for t in 0..50 {
            let x = [t as f32 * 0.1 - 2.0, 1.0 - t as f32 * 0.03, 0.5];
            let (mut h0, mut h1) = ([0f32; 8], [0f32; 8]);
            let (mut oa, mut ou) = ([0f32; 11], [0f32; 11]);
            na.forward(&x[..2], &x[2..], &mut h0, &mut h1, &mut oa)
                .unwrap();
            nu.forward(&x[..2], &x[2..], &mut h0, &mut h1, &mut ou)
                .unwrap();
            assert_eq!(oa.map(f32::to_bits), ou.map(f32::to_bits));
            let x64 = x.map(f64::from);
            let (mut g0, mut g1) = ([0f64; 8], [0f64; 8]);
            let (mut pa, mut pu) = ([0f64; 11], [0f64; 11]);
            na.forward(&x64, &[], &mut g0, &mut g1, &mut pa).unwrap();
            nu.forward(&x64, &[], &mut g0, &mut g1, &mut pu).unwrap();
            assert_eq!(pa.map(f64::to_bits), pu.map(f64::to_bits));
            // And both equal the plain definition W·h + b, ReLU between, in f64.
            let mut h = x64.to_vec();
            let mut off = 0;
            for (l, &o) in hidden.iter().chain([output].iter()).enumerate() {
                let mut next = [0f64; 11];
                for (r, nv) in next.iter_mut().enumerate().take(o) {
                    let mut acc = 0.0;
                    for (i, hv) in h.iter().enumerate() {
                        acc += vals[off + r * h.len() + i] as f64 * hv;
                    }
                    *nv = acc + vals[off + o * h.len() + r] as f64;
                }
                off += o * h.len() + o;
                h = next[..o]
                    .iter()
                    .map(|&v| if l < 2 && v < 0.0 { 0.0 } else { v })
                    .collect();
            }
            for (p, q) in pa.iter().zip(&h) {
                assert!((p - q).abs() < 1e-12);
            }
        }
    }
}
