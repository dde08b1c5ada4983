//! Many points at once (feature `wide`, for host tools): a chain's `log_prob` on a block of
//! [`LANES`] points, each point's result bit for bit (and error for error) the single-point
//! [`Chain::log_prob`]'s.
//!
//! The points' values sit in rows of lanes (row `j` holds dimension `j` of every point). A
//! spline coupling with its lower spline's knot table runs on the whole block
//! ([`SplineCoupling::inverse_lanes`](crate::coupling::SplineCoupling)): its hypernetwork's
//! sums and its upper spline's knots vectorize across the points, every lane computed in the
//! single-point order. Every other layer, and a coupling without a table, takes the points one
//! at a time through the single-point code.

use crate::base::StdNormal;
use crate::chain::{finite_or_numerical, Chain, Layer};
use crate::error::Error;
use crate::flat::{Lanes, LANES};
use crate::spline::Direction;
use crate::weights::Weights;
use crate::workspace::{BlockWorkspace, LaneScratch, Scratch, Workspace};

/// One point's buffers for the layers a block takes point by point: its values and
/// log-determinants (the chain's dimension each) and its context.
pub(crate) struct Point<'p> {
    pub(crate) v: &'p mut [f32],
    pub(crate) lds: &'p mut [f32],
    pub(crate) ctx: &'p mut [f32],
}

impl<const L: usize> Chain<'_, L> {
    /// [`log_prob`](Chain::log_prob) of the first `n` points of a block: `v` holds the
    /// chain's dimension in rows (left holding `z`), `ctx` its context size; entry `r` of the
    /// result is point `r`'s `log_prob` (entries from `n` on are `Ok(0.0)`).
    #[inline(always)] // see `log_prob_many`
    pub(crate) fn log_prob_lanes(
        &self,
        v: &mut [Lanes],
        ctx: &[Lanes],
        n: usize,
        point: Point<'_>,
        s: &mut Scratch<'_, f32>,
        b: &mut LaneScratch<'_>,
    ) -> [Result<f32, Error>; LANES] {
        let mut out = [Ok(0.0); LANES];
        let mut live = [false; LANES];
        for (r, (live, out)) in live.iter_mut().zip(&mut out).enumerate().take(n) {
            if v.iter().chain(ctx).all(|row| row[r].is_finite()) {
                *live = true;
            } else {
                *out = Err(Error::NonFiniteInput);
            }
        }
        let mut ld = [0f32; LANES];
        // The layers in the inverse order, each with its table (`run`'s walk).
        let mut at = self.tables.len();
        for l in self.layers().iter().rev() {
            let table = if self.tables.is_empty() {
                Weights::empty()
            } else {
                at = at.saturating_sub(l.table_len());
                self.tables
                    .slice(at, l.table_len())
                    .unwrap_or(Weights::empty())
            };
            let c = if l.context_dim() == 0 { &[][..] } else { ctx };
            let together: Option<Lanes> = match l {
                #[cfg(feature = "coupling")]
                Layer::Coupling(cp) => cp.inverse_lanes(v, c, &live, b, table),
                #[allow(unreachable_patterns)]
                _ => None,
            };
            if let Some(t) = together {
                for ((ld, t), _) in ld.iter_mut().zip(t).zip(&live).filter(|(_, &l)| l) {
                    *ld += t;
                }
                continue;
            }
            for r in 0..LANES {
                if !live[r] {
                    continue;
                }
                gather(v, r, point.v);
                gather(ctx, r, point.ctx);
                let pc = point.ctx.get(..c.len()).unwrap_or(&[]);
                let s = &mut s.reborrow();
                let dir = Direction::Inverse;
                match l.apply_scratch(point.v, pc, point.lds, dir, true, s, table, false) {
                    Ok(t) => {
                        ld[r] += t;
                        for (row, &x) in v.iter_mut().zip(point.v.iter()) {
                            row[r] = x;
                        }
                    }
                    Err(e) => {
                        live[r] = false;
                        out[r] = match e {
                            Error::OutOfSupport => Ok(f32::NEG_INFINITY),
                            e => Err(e),
                        };
                    }
                }
            }
        }
        for r in (0..LANES).filter(|&r| live[r]) {
            gather(v, r, point.v);
            out[r] = finite_or_numerical(StdNormal::log_prob(point.v) + ld[r]);
        }
        out
    }
}

/// Lane `r` of `rows` into `dst`.
fn gather(rows: &[Lanes], r: usize, dst: &mut [f32]) {
    for (d, row) in dst.iter_mut().zip(rows) {
        *d = row[r];
    }
}

/// `log_prob` of each point `xs[i]` with context `ctx[i]` (`ctx` empty when `C = 0`) into
/// `out[i]`, block by block, through `chain` (built for `D` dimensions and context `C`, and the
/// capacities `H` and `K`). `xs`, `out` and a non-empty `ctx` must have one length
/// ([`Error::DimensionMismatch`] otherwise, and nothing written).
#[inline(always)] // a caller may compile it for a wider instruction set
pub(crate) fn log_prob_many<
    const D: usize,
    const C: usize,
    const L: usize,
    const H: usize,
    const K: usize,
>(
    chain: &Chain<'_, L>,
    xs: &[[f32; D]],
    ctx: &[[f32; C]],
    out: &mut [Result<f32, Error>],
) -> Result<(), Error> {
    let n = xs.len();
    if out.len() != n || (C > 0 && ctx.len() != n) {
        return Err(Error::DimensionMismatch {
            expected: n,
            found: if out.len() != n { out.len() } else { ctx.len() },
        });
    }
    let mut ws = Workspace::<f32, H, K>::new();
    let mut bw = BlockWorkspace::<H, K>::new();
    let (mut pv, mut plds, mut pc) = ([0f32; D], [0f32; D], [0f32; C]);
    for (i, out) in out.chunks_mut(LANES).enumerate() {
        let first = i * LANES;
        let mut v = [[0f32; LANES]; D];
        let mut c = [[0f32; LANES]; C];
        for (r, x) in xs.iter().skip(first).take(LANES).enumerate() {
            for (row, &x) in v.iter_mut().zip(x) {
                row[r] = x;
            }
        }
        for (r, x) in ctx.iter().skip(first).take(LANES).enumerate() {
            for (row, &x) in c.iter_mut().zip(x) {
                row[r] = x;
            }
        }
        let point = Point {
            v: &mut pv,
            lds: &mut plds,
            ctx: &mut pc,
        };
        let res = chain.log_prob_lanes(
            &mut v,
            &c,
            out.len(),
            point,
            &mut ws.scratch(),
            &mut bw.scratch(),
        );
        out.copy_from_slice(res.get(..out.len()).unwrap_or(&[]));
    }
    Ok(())
}

#[cfg(all(test, feature = "alloc", not(feature = "micromath")))]
mod tests {
    use crate::model::{Model, ModelBuilder};
    use crate::nn::dense_param_count;
    use crate::{Error, Order, Spline, SplineShape};
    use alloc::vec;
    use alloc::vec::Vec;
    use core::sync::atomic::Ordering;

    /// Uniform values in `[-a, a)` (xorshift, fixed seed).
    struct Xs(u64);
    impl Xs {
        fn next(&mut self, a: f32) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            a * (2.0 * ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 1.0)
        }
        fn vec(&mut self, n: usize, a: f32) -> Vec<f32> {
            (0..n).map(|_| self.next(a)).collect()
        }
    }

    fn same(a: &Result<f32, Error>, b: &Result<f32, Error>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x.to_bits() == y.to_bits(),
            (Err(x), Err(y)) => x == y,
            _ => false,
        }
    }

    /// Points for a flow of dimension `D` whose first dimension is a coupling's lower spline
    /// with the interior knots `knots` (on the axis `log_prob` searches): random ones inside
    /// and outside the box `[-3, 3]`, the box's edges and their neighbours, NaN and infinite
    /// values, and values within and around the search's `1e-6` window above every knot.
    fn points<const D: usize>(r: &mut Xs, knots: &[f32], n: usize) -> Vec<[f32; D]> {
        let mut v: Vec<[f32; D]> = (0..n)
            .map(|_| core::array::from_fn(|_| r.next(4.0)))
            .collect();
        let specials = [
            3.0f32,
            -3.0,
            f32::from_bits(3f32.to_bits() + 1),
            f32::from_bits(3f32.to_bits() - 1),
            -f32::from_bits(3f32.to_bits() + 1),
            0.0,
            -0.0,
            1e-30,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            // The hypernetwork overflows: NaN knots, a non-finite bin.
            1e36,
            f32::MAX,
            -f32::MAX,
        ];
        for (i, &s) in specials.iter().enumerate() {
            for j in 0..D {
                let mut p: [f32; D] = core::array::from_fn(|_| r.next(2.0));
                p[j] = s;
                v.insert((i * 37) % v.len(), p);
            }
        }
        for &k in knots {
            for d in [
                -2e-6f32, -1e-6, -5e-7, 0.0, 2.5e-7, 5e-7, 9e-7, 1e-6, 1.1e-6, 2e-6,
            ] {
                for _ in 0..8 {
                    let mut p: [f32; D] = core::array::from_fn(|_| r.next(3.5));
                    p[0] = k + d;
                    v.push(p);
                }
            }
        }
        v
    }

    /// The first dimension's interior `y` knots from a flow's knot table (its first layer a
    /// coupling whose lower spline has `bins` bins): entries `K-1 .. 2K-2`.
    fn lower_y_knots(tables: &[u8], bins: usize) -> Vec<f32> {
        tables
            .chunks_exact(4)
            .skip(bins - 1)
            .take(bins - 1)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// `log_prob_many` against `log_prob`, point by point, for a plain flow of dimension `D`,
    /// with its knot tables and without.
    fn check_plain<const D: usize>(bytes: &[u8], bins: usize, r: &mut Xs) -> usize {
        let model = Model::parse(bytes).unwrap();
        let len = model.flow::<D, 8, 32, 32>().unwrap().table_len();
        let mut tables = vec![0u8; 4 * len];
        let flow = model.flow::<D, 8, 32, 32>().unwrap();
        assert!(flow.write_tables(&mut tables).is_some());
        let mut with = model.flow::<D, 8, 32, 32>().unwrap();
        with.set_tables(&tables).unwrap();
        let pts = points::<D>(r, &lower_y_knots(&tables, bins), 20_000);
        for n in [pts.len(), 0, 1, 15, 17, 33] {
            for f in [&flow, &with] {
                let mut out = vec![Ok(0.0); n];
                f.log_prob_many(&pts[..n], &mut out).unwrap();
                for (p, o) in pts.iter().zip(&out) {
                    let want = f.log_prob(p);
                    assert!(same(o, &want), "{p:?}: {o:?} against {want:?}");
                }
            }
        }
        pts.len()
    }

    /// Every point of a block gets exactly the single-point `log_prob` (the same bits, or
    /// the same error): spline couplings of both orders, with one and two upper dimensions,
    /// no hidden layer or several, with and without the lower spline's knot table, behind and
    /// before other layers; a conditional coupling (its hypernetwork reads the point and the
    /// context); hypernetwork weights large enough that knot derivatives pass torch's
    /// softplus threshold and exponentials underflow; the points of [`points`]. Some points
    /// take the single-point path inside a block (a non-finite bin result), and are checked
    /// like the rest.
    #[test]
    fn blocks_score_as_single_points() {
        let mut r = Xs(0x9e37_79b9_7f4a_7c15);
        let lin = SplineShape::new(16, 3.0, Order::Linear).unwrap();
        let quad = SplineShape::new(5, 3.0, Order::Quadratic).unwrap();
        let lin8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
        let redone = crate::flat::REDONE.load(Ordering::Relaxed);
        for spread in [0.5f32, 4.0] {
            let mut b = ModelBuilder::plain(2);
            let lower = r.vec(Spline::param_count(1, &lin), 2.0);
            let nn = r.vec(
                dense_param_count(1, &[20, 20], lin.params_per_dim()),
                spread,
            );
            b.coupling(1, 1, &lin, 0, &[20, 20], &lower, &nn)
                .permute(&[1, 0]);
            let lower = r.vec(Spline::param_count(1, &quad), 2.0);
            let nn = r.vec(dense_param_count(1, &[8], quad.params_per_dim()), spread);
            b.coupling(1, 1, &quad, 0, &[8], &lower, &nn);
            check_plain::<2>(&b.encode().unwrap(), 16, &mut r);

            let mut b = ModelBuilder::plain(3);
            let lower = r.vec(Spline::param_count(1, &lin8), 2.0);
            let nn = r.vec(dense_param_count(1, &[], 2 * lin8.params_per_dim()), spread);
            b.coupling(1, 2, &lin8, 0, &[], &lower, &nn)
                .affine(&[0.1, -0.2, 0.3], &[1.5, 0.5, 2.0]);
            let p = r.vec(Spline::param_count(3, &lin8), 2.0);
            b.spline(3, &lin8, &p);
            check_plain::<3>(&b.encode().unwrap(), 8, &mut r);
        }
        // A conditional coupling: the hypernetwork's input is the point and the context.
        let mut b = ModelBuilder::conditional(2, 2);
        let lower = r.vec(Spline::param_count(1, &lin), 2.0);
        let nn = r.vec(dense_param_count(3, &[8], lin.params_per_dim()), 2.0);
        b.coupling(1, 1, &lin, 2, &[8], &lower, &nn);
        let lower = r.vec(Spline::param_count(1, &lin8), 2.0);
        let nn = r.vec(dense_param_count(3, &[], lin8.params_per_dim()), 2.0);
        b.coupling(1, 1, &lin8, 2, &[], &lower, &nn);
        let bytes = b.encode().unwrap();
        let model = Model::parse(&bytes).unwrap();
        let flow = model.conditional_flow::<2, 2, 8, 32, 32>().unwrap();
        let pts = points::<2>(&mut r, &[], 20_000);
        let mut ctx: Vec<[f32; 2]> = pts.iter().map(|_| [r.next(3.0), r.next(3.0)]).collect();
        for c in ctx.iter_mut().step_by(97) {
            c[1] = 1e36;
        }
        let mut out = vec![Ok(0.0); pts.len()];
        flow.log_prob_many(&pts, &ctx, &mut out).unwrap();
        for ((p, c), o) in pts.iter().zip(&ctx).zip(&out) {
            let want = flow.log_prob(p, c);
            assert!(same(o, &want), "{p:?} | {c:?}: {o:?} against {want:?}");
        }
        // Lengths must agree.
        let mut short = vec![Ok(0.0); 3];
        assert!(flow
            .log_prob_many(&pts[..4], &ctx[..4], &mut short)
            .is_err());
        assert!(crate::flat::REDONE.load(Ordering::Relaxed) > redone);
    }
}
