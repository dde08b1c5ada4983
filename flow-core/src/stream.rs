//! Scoring a stream of sensor readings by windows: [`WindowScorer`].
//!
//! A windowed model (format version 2, [`Model::window`]) is a [`JointFlow`] on `D = 2d`
//! whose first half `x₁` is one reading of `d` values and whose second half `x₂` is the next
//! reading. Its density of `W` consecutive readings `x_1 … x_W` of one recording is the
//! first-order Markov factorization
//!
//! ```text
//! log p(x_1 … x_W) = log p(x_1) + Σ_{t=2..W} log p(x_t | x_{t-1})
//! ```
//!
//! with `p(x₁)` the joint flow's marginal and `p(x₂ | x₁)` its conditional. Consecutive
//! windows share all but one of these terms, so each new reading costs one evaluation of the
//! joint flow on the pair `(x_{t-1}, x_t)` — the marginal of `x_{t-1}` and the conditional of
//! `x_t` — and [`WindowScorer`] keeps the last `W - 1` terms of each kind in fixed ring
//! buffers. Every value is in raw units (the model's scaler applied, its `-Σ ln scale`
//! added to each term).
//!
//! **The order of operations is the contract**: a window's log-density is
//! `((m + c₂) + c₃) + … + c_W` in `f32`, with `m = log p_flow(x_1) + (-Σ_{j<d} ln s_j)` and
//! `c_t = log p_flow(x_t | x_{t-1}) + (-Σ_{j≥d} ln s_j)`, each flow term from
//! [`JointFlow::log_prob_parts`]. The trainer's `eval` scores a CSV through this same type, so
//! its numbers are the device's bit for bit.
//!
//! ```
//! use flow_core::model::{Model, ModelBuilder};
//! use flow_core::stream::WindowScorer;
//! use flow_core::{Order, SplineShape};
//!
//! // p(x₁): one spline; p(x₂ | x₁): one conditional spline with hidden [4] (random weights).
//! let shape = SplineShape::new(4, 3.0, Order::Linear).unwrap();
//! let spline: Vec<f32> = (0..shape.params_per_dim()).map(|i| (i % 5) as f32 * 0.1).collect();
//! let net: Vec<f32> = (0..(1 + 1) * 4 + (4 + 1) * shape.params_per_dim())
//!     .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.05)
//!     .collect();
//! let mut b = ModelBuilder::joint(2, 1);
//! b.spline(1, &shape, &spline)
//!     .end_marginal()
//!     .conditional_spline(1, &shape, 1, &[4], &net)
//!     .scaler(&[0.5, 0.5], &[2.0, 2.0])
//!     .window(3, Some(100), None);
//! let bytes = b.encode().unwrap();
//!
//! let model = Model::parse(&bytes).unwrap();
//! let flow = model.joint_flow::<2, 4, 8, 8>().unwrap();
//! let mut scorer = WindowScorer::<2, 4>::new(&model).unwrap();
//! let scores: Vec<Option<f32>> = [0.1f32, 0.4, -0.2, 0.3]
//!     .iter()
//!     .map(|&x| scorer.push(&flow, &[x]).unwrap())
//!     .collect();
//! // The first W - 1 = 2 readings complete no window.
//! assert!(scores[0].is_none() && scores[1].is_none());
//! assert!(scores[2].unwrap().is_finite() && scores[3].unwrap().is_finite());
//! ```
//!
//! [`Model::window`]: crate::Model::window

use crate::conditional::JointFlow;
use crate::error::Error;
use crate::model::{FlowKind, Model};
use crate::real::Real;

/// The last `len` of up to `N` values, oldest first.
#[derive(Clone, Copy, Debug)]
struct Ring<const N: usize> {
    values: [f32; N],
    /// Index of the oldest value.
    head: usize,
    /// How many values are held (at most `cap`).
    len: usize,
    /// How many are kept.
    cap: usize,
}

impl<const N: usize> Ring<N> {
    const fn new(cap: usize) -> Self {
        Ring {
            values: [0.0; N],
            head: 0,
            len: 0,
            cap,
        }
    }

    /// Appends `v`, dropping the oldest value when `cap` are held.
    fn push(&mut self, v: f32) {
        if self.cap == 0 {
            return;
        }
        if self.len < self.cap {
            let at = (self.head + self.len) % self.cap;
            self.values[at] = v;
            self.len += 1;
        } else {
            self.values[self.head] = v;
            self.head = (self.head + 1) % self.cap;
        }
    }

    /// The `i`-th oldest value.
    fn get(&self, i: usize) -> f32 {
        self.values[(self.head + i) % self.cap.max(1)]
    }
}

/// What a [`WindowScorer`] evaluates: the two terms of a joint flow of two readings. A
/// device's [`JointFlow`] (through a reference); the trainer implements it for its
/// dynamic-dimension runtime, with the same arithmetic.
pub trait PairDensity {
    /// `(log p(x₁), log p(x₂ | x₁))` of `pair = [x₁ | x₂]` in the flow's (standardized)
    /// space.
    fn log_prob_parts(&mut self, pair: &[f32]) -> Result<(f32, f32), Error>;
}

impl<const D: usize, const L: usize, const H: usize, const K: usize> PairDensity
    for &JointFlow<'_, D, L, H, K>
{
    #[inline]
    fn log_prob_parts(&mut self, pair: &[f32]) -> Result<(f32, f32), Error> {
        let x: &[f32; D] = pair.try_into().map_err(|_| Error::DimensionMismatch {
            expected: D,
            found: pair.len(),
        })?;
        JointFlow::log_prob_parts(self, x)
    }
}

/// Scores each new reading of a stream by the log-density of the window of the last `W`
/// readings (see the [module docs](self)): `D` is at least the joint flow's dimension `2d`
/// (on a device, exactly it), `N ≥ W - 1` the capacity of the two ring buffers.
/// `2·N + 4·D` `f32` of state, no allocation.
#[derive(Clone, Debug)]
pub struct WindowScorer<const D: usize, const N: usize> {
    window: usize,
    /// The model's dimension `2d`.
    dim: usize,
    /// Readings pushed since the last reset, at most `window`.
    seen: usize,
    /// `[x_{t-1} | x_t]` as given.
    raw: [f32; D],
    /// `raw` standardized, each half by its part of the scaler.
    pair: [f32; D],
    mean: [f32; D],
    scale: [f32; D],
    /// `-Σ ln scale` of each half.
    raw_log_det: [f32; 2],
    /// `m` of the last `W - 1` readings before the newest.
    marginal: Ring<N>,
    /// `c` of the last `W - 1` readings.
    conditional: Ring<N>,
}

impl<const D: usize, const N: usize> WindowScorer<D, N> {
    /// A scorer for a windowed model: [`FlowKind::Joint`] on at most `D` dimensions with a
    /// window `W` of at most `N + 1` (else [`Error::DimensionMismatch`] naming what this
    /// scorer expects).
    /// A model without a scaler scores its input as it is.
    pub fn new(model: &Model<'_>) -> Result<Self, Error> {
        let h = model.header();
        let dim = usize::from(h.dim);
        let window = model.window().ok_or(Error::DimensionMismatch {
            expected: 2,
            found: 1,
        })?;
        if h.kind != FlowKind::Joint || dim > D {
            return Err(Error::DimensionMismatch {
                expected: D,
                found: dim,
            });
        }
        if window - 1 > N {
            return Err(Error::DimensionMismatch {
                expected: N + 1,
                found: window,
            });
        }
        let (mut mean, mut scale) = ([0.0; D], [1.0; D]);
        let mut raw_log_det = [0.0f32; 2];
        for j in 0..dim {
            if let Some((m, s)) = model.scaler(j) {
                mean[j] = m;
                scale[j] = s;
                raw_log_det[usize::from(j >= dim / 2)] += -Real::ln(s);
            }
        }
        Ok(WindowScorer {
            window,
            dim,
            seen: 0,
            raw: [0.0; D],
            pair: [0.0; D],
            mean,
            scale,
            raw_log_det,
            marginal: Ring::new(window - 1),
            conditional: Ring::new(window - 1),
        })
    }

    /// Readings per window, `W`.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Forgets the readings seen: the next one starts a new recording.
    pub fn reset(&mut self) {
        self.seen = 0;
        self.marginal.len = 0;
        self.marginal.head = 0;
        self.conditional.len = 0;
        self.conditional.head = 0;
    }

    /// Takes the next reading (`d` raw values) and returns the log-density of the window
    /// that ends with it, in raw units, or `None` while fewer than `W` readings of this
    /// recording have been pushed. One evaluation of `flow` (the model's: `&joint_flow` on a
    /// device) per reading after the first. On an error the scorer is
    /// [`reset`](Self::reset).
    pub fn push<P: PairDensity>(
        &mut self,
        mut flow: P,
        reading: &[f32],
    ) -> Result<Option<f32>, Error> {
        let (dim, d) = (self.dim, self.dim / 2);
        if reading.len() != d {
            self.reset();
            return Err(Error::DimensionMismatch {
                expected: d,
                found: reading.len(),
            });
        }
        self.raw.copy_within(d..dim, 0);
        self.raw[d..dim].copy_from_slice(reading);
        if self.seen == 0 {
            self.seen = 1;
            return Ok(None);
        }
        for j in 0..dim {
            self.pair[j] = (self.raw[j] - self.mean[j]) / self.scale[j];
        }
        let (m, c) = match flow.log_prob_parts(&self.pair[..dim]) {
            Ok(parts) => parts,
            Err(e) => {
                self.reset();
                return Err(e);
            }
        };
        self.marginal.push(m + self.raw_log_det[0]);
        self.conditional.push(c + self.raw_log_det[1]);
        self.seen = (self.seen + 1).min(self.window);
        if self.seen < self.window {
            return Ok(None);
        }
        let mut lp = self.marginal.get(0);
        for i in 0..self.conditional.len {
            lp += self.conditional.get(i);
        }
        Ok(Some(lp))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::model::{FormatError, Grouping, ModelBuilder};
    use crate::{Order, SplineShape};
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg32;
    use std::vec::Vec;

    fn uniform(rng: &mut Pcg32, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale)
            .collect()
    }

    /// A joint flow of two 2-D readings: a quadratic spline for `x₁`, a conditional spline
    /// with hidden [5] for `x₂ | x₁`, random parameters; `window` readings, a scaler with
    /// the same halves.
    fn windowed(window: usize, grouping: Option<usize>) -> Vec<u8> {
        let mut rng = Pcg32::seed_from_u64(7);
        let s = SplineShape::new(5, 3.0, Order::Quadratic).unwrap();
        let p = s.params_per_dim();
        let mut b = ModelBuilder::joint(4, 2);
        b.spline(2, &s, &uniform(&mut rng, 2 * p, 1.0))
            .end_marginal()
            .conditional_spline(2, &s, 2, &[5], &uniform(&mut rng, 3 * 5 + 6 * 2 * p, 0.5))
            .columns(&["a", "b"])
            .scaler(&[0.5, -1.0, 0.5, -1.0], &[2.0, 0.25, 2.0, 0.25])
            .window(window, grouping, None);
        b.encode().unwrap()
    }

    fn readings(n: usize) -> Vec<[f32; 2]> {
        let mut rng = Pcg32::seed_from_u64(11);
        (0..n)
            .map(|_| {
                let v = uniform(&mut rng, 2, 1.0);
                [0.5 + 2.0 * v[0], -1.0 + 0.25 * v[1]]
            })
            .collect()
    }

    #[test]
    fn windows_are_the_markov_factorization() {
        let bytes = windowed(4, Some(100));
        let model = Model::parse(&bytes).unwrap();
        assert_eq!(model.window(), Some(4));
        assert_eq!(model.metadata().grouping, Grouping::RowsPerGroup(100));
        let flow = model.joint_flow::<4, 4, 8, 8>().unwrap();
        let mut scorer = WindowScorer::<4, 3>::new(&model).unwrap();
        let xs = readings(12);
        // The reference: every term in f64 from the same flow, summed in f64.
        let std = |x: &[f32; 2], j: usize| {
            let (m, s) = model.scaler(j).unwrap();
            (x[j % 2] as f64 - m as f64) / s as f64
        };
        let ln_s: f64 = (0..2)
            .map(|j| (model.scaler(j).unwrap().1 as f64).ln())
            .sum();
        let term = |t: usize| {
            let pair = [
                std(&xs[t - 1], 0),
                std(&xs[t - 1], 1),
                std(&xs[t], 2),
                std(&xs[t], 3),
            ];
            let (m, c) = flow.log_prob_parts::<f64>(&pair).unwrap();
            (m - ln_s, c - ln_s)
        };
        // A scorer with room for more (as the trainer's, for any dimension) gives the same bits.
        let mut wide = WindowScorer::<8, 7>::new(&model).unwrap();
        for (t, x) in xs.iter().enumerate() {
            let got = scorer.push(&flow, x).unwrap();
            let other = wide.push(&flow, x).unwrap();
            assert_eq!(got.map(f32::to_bits), other.map(f32::to_bits));
            if t < 3 {
                assert_eq!(got, None, "reading {t} completes no window");
                continue;
            }
            let want = term(t - 2).0 + (t - 2..=t).map(|s| term(s).1).sum::<f64>();
            let got = got.unwrap() as f64;
            // Four f32 flow evaluations and four sums of values of magnitude ≈ 10: f32
            // rounding leaves well under 1e-4 absolute.
            assert!(
                (got - want).abs() < 1e-4,
                "window ending at {t}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn a_reset_starts_a_new_recording() {
        let bytes = windowed(3, None);
        let model = Model::parse(&bytes).unwrap();
        let flow = model.joint_flow::<4, 4, 8, 8>().unwrap();
        let xs = readings(9);
        let mut a = WindowScorer::<4, 5>::new(&model).unwrap();
        for x in &xs[..5] {
            a.push(&flow, x).unwrap();
        }
        a.reset();
        let mut b = WindowScorer::<4, 5>::new(&model).unwrap();
        for x in &xs[5..] {
            let (va, vb) = (a.push(&flow, x).unwrap(), b.push(&flow, x).unwrap());
            assert_eq!(va.map(f32::to_bits), vb.map(f32::to_bits));
        }
    }

    #[test]
    fn what_does_not_fit_is_an_error() {
        let bytes = windowed(4, None);
        let model = Model::parse(&bytes).unwrap();
        let flow = model.joint_flow::<4, 4, 8, 8>().unwrap();
        // Too small a ring for W - 1 = 3 terms.
        assert_eq!(
            WindowScorer::<4, 2>::new(&model).unwrap_err(),
            Error::DimensionMismatch {
                expected: 3,
                found: 4
            }
        );
        assert!(WindowScorer::<2, 4>::new(&model).is_err());
        // A capacity above the model's dimension works, but not with a typed flow of
        // another dimension.
        let mut wide = WindowScorer::<6, 4>::new(&model).unwrap();
        wide.push(&flow, &[0.1, 0.2]).unwrap();
        let flow6 = model.joint_flow::<6, 4, 8, 8>();
        assert!(flow6.is_err());
        // A reading of the wrong size is an error and resets the scorer.
        let mut s = WindowScorer::<4, 4>::new(&model).unwrap();
        let xs = readings(4);
        for x in &xs[..3] {
            s.push(&flow, x).unwrap();
        }
        assert!(s.push(&flow, &[1.0]).is_err());
        assert_eq!(s.push(&flow, &xs[3]).unwrap(), None);
        // A model without a window.
        let mut b = ModelBuilder::joint(4, 2);
        let sh = SplineShape::new(2, 3.0, Order::Linear).unwrap();
        b.spline(2, &sh, &[0.0; 14])
            .end_marginal()
            .conditional_spline(2, &sh, 2, &[2], &[0.0; 6 + 3 * 14]);
        let plain = b.encode().unwrap();
        let m = Model::parse(&plain).unwrap();
        assert_eq!(m.window(), None);
        assert!(WindowScorer::<4, 4>::new(&m).is_err());
    }

    #[test]
    fn the_file_checks_a_window() {
        let sh = SplineShape::new(2, 3.0, Order::Linear).unwrap();
        let joint = |dim: usize, split: usize| {
            let mut b = ModelBuilder::joint(dim, split);
            b.spline(split, &sh, &std::vec![0.0; 7 * split])
                .end_marginal()
                .conditional_spline(
                    dim - split,
                    &sh,
                    split,
                    &[2],
                    &std::vec![0.0; 2 * (split + 1) + 3 * 7 * (dim - split)],
                );
            b
        };
        let bad = Err(Error::Format(FormatError::Metadata));
        // A window of one reading, or of readings of two sizes.
        assert_eq!(joint(4, 2).window(1, None, None).encode().map(|_| ()), bad);
        assert_eq!(joint(5, 2).window(3, None, None).encode().map(|_| ()), bad);
        // A grouping without a window.
        assert_eq!(
            joint(4, 2).window(0, Some(10), None).encode().map(|_| ()),
            bad
        );
        // A plain flow with a window.
        let mut p = ModelBuilder::plain(2);
        p.spline(2, &sh, &[0.0; 14]).window(2, None, None);
        assert_eq!(p.encode().map(|_| ()), bad);
        // A grouping column round-trips.
        let ok = joint(4, 2)
            .window(8, None, Some("recording"))
            .encode()
            .unwrap();
        let m = Model::parse(&ok).unwrap();
        assert_eq!(m.window(), Some(8));
        assert_eq!(m.metadata().grouping, Grouping::Column(b"recording"));
    }
}
