//! Scoring many rows for `eval`: flow-core's const-generic flows (the device's code path)
//! reading the knot tables of their fixed-parameter splines, on every core.
//!
//! The numbers are flow-core's `f32` ones, bit for bit those of [`Runtime::log_prob`] (and of
//! the device, which runs the same flows with the same tables): flow-core's `set_tables`
//! recomputes every table entry and compares it bit for bit, and evaluation with tables gives
//! exactly the results without them. The rows are cut into one contiguous block per thread;
//! each row's value does not depend on the others, so the per-row output is that of one thread
//! (the test `parallel_scores_equal_the_runtime` checks both). Plain and conditional flows
//! score their rows in blocks through flow-core's `log_prob_many` (feature `wide`, on in this
//! crate), compiled for the CPU's vector instructions ([`Isa`]): the spline couplings run on a
//! whole block at once, every point's value the single-point one bit for bit.
//!
//! Models outside the compiled geometries (more than 8 dimensions, 4 context values, 16
//! layers, hidden layers wider than 64 or more than 64 bins) are scored by [`Runtime`], also on
//! every core.

use super::runtime::Runtime;
use flow_core::model::FlowKind;
use flow_core::{ConditionalFlow, Error, Flow, JointFlow, Layer, Model};
use flow_train::Isa;

/// Layers, hidden width and bins of the compiled flows.
const L: usize = 16;
const H: usize = 64;
const K: usize = 64;

/// Rows' `log p` in the flow's space.
trait Score: Sync {
    /// One row's.
    fn score(&self, x: &[f32], ctx: &[f32]) -> Result<f32, Error>;

    /// Each row's of `x` (rows of the flow's dimension) with the rows of `ctx` into `out`:
    /// [`score`](Self::score) of each, the same bits; flows that evaluate blocks of rows
    /// together (flow-core's `log_prob_many`) do so.
    fn score_many(&self, x: &[f32], ctx: &[f32], out: &mut [Result<f32, Error>]) {
        let (d, c) = (x.len() / out.len().max(1), ctx.len() / out.len().max(1));
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.score(&x[i * d..(i + 1) * d], &ctx[i * c..(i + 1) * c]);
        }
    }
}

impl<const D: usize> Score for Flow<'_, D, L, H, K> {
    fn score(&self, x: &[f32], _: &[f32]) -> Result<f32, Error> {
        self.log_prob(&point::<D>(x)?)
    }

    fn score_many(&self, x: &[f32], _: &[f32], out: &mut [Result<f32, Error>]) {
        let (rows, rest) = x.as_chunks::<D>();
        if let Err(e) = rest
            .is_empty()
            .then_some(())
            .ok_or(Error::DimensionMismatch {
                expected: D,
                found: rest.len(),
            })
            .and_then(|()| {
                Isa::detect().run(
                    #[inline(always)]
                    || self.log_prob_many(rows, out),
                )
            })
        {
            out.fill(Err(e));
        }
    }
}

impl<const D: usize> Score for JointFlow<'_, D, L, H, K> {
    fn score(&self, x: &[f32], _: &[f32]) -> Result<f32, Error> {
        self.log_prob(&point::<D>(x)?)
    }
}

impl<const D: usize, const C: usize> Score for ConditionalFlow<'_, D, C, L, H, K> {
    fn score(&self, x: &[f32], ctx: &[f32]) -> Result<f32, Error> {
        self.log_prob(&point::<D>(x)?, &point::<C>(ctx)?)
    }

    fn score_many(&self, x: &[f32], ctx: &[f32], out: &mut [Result<f32, Error>]) {
        let ((rows, rest), (cs, crest)) = (x.as_chunks::<D>(), ctx.as_chunks::<C>());
        let r = if rest.is_empty() && crest.is_empty() {
            Isa::detect().run(
                #[inline(always)]
                || self.log_prob_many(rows, cs, out),
            )
        } else {
            Err(Error::DimensionMismatch {
                expected: D,
                found: rest.len(),
            })
        };
        if let Err(e) = r {
            out.fill(Err(e));
        }
    }
}

fn point<const N: usize>(v: &[f32]) -> Result<[f32; N], Error> {
    v.try_into().map_err(|_| Error::DimensionMismatch {
        expected: N,
        found: v.len(),
    })
}

/// The knot tables of `model`'s fixed-parameter splines (flow-core's `write_tables`), as the
/// device's build computes them.
pub fn tables(model: &Model<'_>) -> Result<Vec<u8>, Error> {
    let layers: Vec<Layer<'_>> = model.layers().collect::<Result<_, _>>()?;
    let n: usize = layers.iter().map(Layer::table_len).sum();
    let bins = layers.iter().map(Layer::bins).max().unwrap_or(2).max(2);
    let mut out = vec![0u8; 4 * n];
    let (mut xs, mut ys) = (vec![0f32; bins], vec![0f32; bins]);
    flow_core::flow::write_tables(&layers, &mut out, &mut xs, &mut ys)
        .ok_or(Error::InvalidLayer(flow_core::LayerError::Tables))?;
    Ok(out)
}

/// A compiled flow for `model` with `tables`, if its geometry is one of the compiled ones.
fn compiled<'a>(model: &Model<'a>, tables: &'a [u8]) -> Option<Box<dyn Score + 'a>> {
    let h = model.header();
    let layers: Vec<Layer<'a>> = model.layers().collect::<Result<_, _>>().ok()?;
    if layers.len() > L || layers.iter().any(|l| l.max_hidden() > H || l.bins() > K) {
        return None;
    }
    macro_rules! plain {
        ($($d:literal)*) => {
            match usize::from(h.dim) {
                $($d => {
                    let mut f: Flow<'a, $d, L, H, K> = model.flow().ok()?;
                    f.set_tables(tables).ok()?;
                    Some(Box::new(f) as Box<dyn Score + 'a>)
                })*
                _ => None,
            }
        };
    }
    macro_rules! joint {
        ($($d:literal)*) => {
            match usize::from(h.dim) {
                $($d => {
                    let mut f: JointFlow<'a, $d, L, H, K> = model.joint_flow().ok()?;
                    f.set_tables(tables).ok()?;
                    Some(Box::new(f) as Box<dyn Score + 'a>)
                })*
                _ => None,
            }
        };
    }
    macro_rules! conditional {
        ($(($d:literal, $c:literal))*) => {
            match (usize::from(h.dim), usize::from(h.context_dim)) {
                $(($d, $c) => {
                    let mut f: ConditionalFlow<'a, $d, $c, L, H, K> =
                        model.conditional_flow().ok()?;
                    f.set_tables(tables).ok()?;
                    Some(Box::new(f) as Box<dyn Score + 'a>)
                })*
                _ => None,
            }
        };
    }
    match h.kind {
        FlowKind::Plain => plain!(1 2 3 4 5 6 7 8),
        FlowKind::Joint => joint!(2 3 4 5 6 7 8),
        FlowKind::Conditional => conditional!((1, 1)(1, 2)(1, 3)(1, 4)(2, 1)(2, 2)(2, 3)(2, 4)(
            3, 1
        )(3, 2)(3, 3)(3, 4)(4, 1)(4, 2)(4, 3)(4, 4)),
    }
}

/// What a thread scores with.
enum Scorer<'s, 'a> {
    Compiled(&'s (dyn Score + 'a)),
    Runtime(Box<Runtime<'a>>),
}

/// The number of threads `eval` scores with: the machine's cores.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Each row's `log p` (rows of `d` values in `x`, `c` context values each in `cx`; raw units
/// unless `standardized`), or flow-core's error for it, on `threads` threads.
pub fn score_rows(
    bytes: &[u8],
    x: &[f32],
    cx: &[f32],
    standardized: bool,
    threads: usize,
) -> Result<Vec<Result<f32, Error>>, Error> {
    let rt = Runtime::new(bytes)?;
    let (d, c) = (rt.dim(), rt.context_dim());
    let rows = x.len().checked_div(d).unwrap_or(0);
    let tables = tables(&rt.model)?;
    let fast = compiled(&rt.model, &tables);
    let shift = rt.model.raw_log_det::<f32>();
    let mut out: Vec<Result<f32, Error>> = vec![Ok(0.0); rows];
    let per = rows.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| -> Result<(), Error> {
        let mut handles = Vec::new();
        for (t, chunk) in out.chunks_mut(per).enumerate() {
            let (fast, rt_model) = (&fast, &rt);
            let x = &x[t * per * d..];
            let cx = &cx[t * per * c..];
            handles.push(s.spawn(move || -> Result<(), Error> {
                // The fallback: a Runtime of this thread's own (its scratch is mutable).
                let mut scorer = match fast {
                    Some(f) => Scorer::Compiled(f.as_ref()),
                    None => Scorer::Runtime(Box::new(Runtime::new(bytes)?)),
                };
                // Rows go in batches: standardized (unless they are), scored together, and
                // the scaler's log-Jacobian added.
                const BATCH: usize = 512;
                let mut buf = vec![0f32; BATCH * d];
                for (b, out) in chunk.chunks_mut(BATCH).enumerate() {
                    let first = b * BATCH;
                    let rows = &x[first * d..(first + out.len()) * d];
                    let ctx = &cx[first * c..(first + out.len()) * c];
                    let p: &[f32] = if standardized {
                        rows
                    } else {
                        for (i, (b, &v)) in buf.iter_mut().zip(rows).enumerate() {
                            *b = match rt_model.model.scaler(i % d) {
                                Some((m, sc)) => (v - m) / sc,
                                None => v,
                            };
                        }
                        &buf[..rows.len()]
                    };
                    match &mut scorer {
                        Scorer::Compiled(f) => f.score_many(p, ctx, out),
                        Scorer::Runtime(r) => {
                            for (i, o) in out.iter_mut().enumerate() {
                                *o = r.log_prob(&p[i * d..(i + 1) * d], &ctx[i * c..(i + 1) * c]);
                            }
                        }
                    }
                    if !standardized {
                        for o in out.iter_mut() {
                            *o = o.map(|v| v + shift);
                        }
                    }
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join().expect("a scoring thread panicked")?;
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::model_inputs;
    use super::super::table::Table;
    use super::*;

    /// Each row's log-density (raw units unless `standardized`), or flow-core's error for it: the
    /// single-threaded reference of `eval`'s parallel scoring.
    fn reference(
        rt: &mut Runtime<'_>,
        table: &Table,
        context_columns: &[String],
        standardized: bool,
    ) -> anyhow::Result<Vec<Result<f32, flow_core::Error>>> {
        let (x, cx, _, _) = model_inputs(rt, table, context_columns)?;
        let (d, c) = (rt.dim(), rt.context_dim());
        Ok((0..table.rows())
            .map(|i| {
                let row = &x[i * d..(i + 1) * d];
                let ctx = &cx[i * c..(i + 1) * c];
                if standardized {
                    rt.log_prob(row, ctx)
                } else {
                    rt.log_prob_raw(row, ctx)
                }
            })
            .collect())
    }
    use flow_core::model::ModelBuilder;
    use flow_core::{Order, Spline, SplineShape};

    /// Uniforms in `[-a, a)` from a 64-bit LCG (fixed, so the test is the same every run).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, a: f32) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            a * (2.0 * ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 1.0)
        }
        fn vec(&mut self, n: usize, a: f32) -> Vec<f32> {
            (0..n).map(|_| self.next(a)).collect()
        }
    }

    fn hypernet(r: &mut Lcg, input: usize, hidden: &[usize], out: usize) -> Vec<f32> {
        let n = flow_core::nn::dense_param_count(input, hidden, out);
        r.vec(n, 0.5)
    }

    /// A plain coupling stack with a scaler, a joint, a conditional flow, and a 10-D flow
    /// (outside the compiled geometries: the Runtime fallback).
    fn models() -> Vec<(Vec<u8>, usize)> {
        let mut r = Lcg(7);
        let s = SplineShape::new(16, 3.0, Order::Linear).unwrap();
        let q = SplineShape::new(5, 3.0, Order::Quadratic).unwrap();
        let mut v = Vec::new();
        let mut b = ModelBuilder::plain(2);
        let lower = r.vec(Spline::param_count(1, &s), 2.0);
        let nn = hypernet(&mut r, 1, &[20, 20], s.params_per_dim());
        b.coupling(1, 1, &s, 0, &[20, 20], &lower, &nn)
            .permute(&[1, 0]);
        let lower = r.vec(Spline::param_count(1, &q), 2.0);
        let nn = hypernet(&mut r, 1, &[8], q.params_per_dim());
        b.coupling(1, 1, &q, 0, &[8], &lower, &nn)
            .scaler(&[0.5, -1.0], &[2.0, 0.25]);
        v.push((b.encode().unwrap(), 0));
        let mut b = ModelBuilder::joint(2, 1);
        let p = r.vec(Spline::param_count(1, &s), 2.0);
        b.spline(1, &s, &p).end_marginal();
        let nn = hypernet(&mut r, 1, &[8, 8], s.params_per_dim());
        b.conditional_spline(1, &s, 1, &[8, 8], &nn);
        v.push((b.encode().unwrap(), 0));
        let mut b = ModelBuilder::conditional(2, 1);
        let nn = hypernet(&mut r, 1, &[8], 2 * q.params_per_dim());
        b.conditional_spline(2, &q, 1, &[8], &nn);
        v.push((b.encode().unwrap(), 1));
        let mut b = ModelBuilder::plain(10);
        let p = r.vec(Spline::param_count(10, &s), 2.0);
        b.spline(10, &s, &p).affine(&[0.1; 10], &[1.5; 10]);
        v.push((b.encode().unwrap(), 0));
        v
    }

    /// Rows inside and outside the box, and a few that cannot be scored (NaN, infinite).
    fn rows(r: &mut Lcg, n: usize, w: usize) -> Vec<f32> {
        let mut v = r.vec(n * w, 5.0);
        v[3 * w] = f32::NAN;
        v[7 * w + w - 1] = f32::INFINITY;
        v
    }

    fn same(a: &[Result<f32, Error>], b: &[Result<f32, Error>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Ok(x), Ok(y)) => x.to_bits() == y.to_bits(),
                (Err(x), Err(y)) => x == y,
                _ => false,
            })
    }

    /// Every row's value (or error), in raw and standardized units, on 1, 2 and 3 threads,
    /// equals the single-threaded Runtime's bit for bit.
    #[test]
    fn parallel_scores_equal_the_runtime() {
        let mut r = Lcg(11);
        for (bytes, c) in models() {
            let rt = Runtime::new(&bytes).unwrap();
            let d = rt.dim();
            assert_eq!(rt.context_dim(), c);
            let n = 1001;
            let values = rows(&mut r, n, d + c);
            let names: Vec<String> = (0..d + c).map(|j| format!("x{}", j + 1)).collect();
            let (data, ctx): (Vec<String>, Vec<String>) =
                (names[..d].to_vec(), names[d..].to_vec());
            let _ = data;
            let table = Table::new(names.clone(), values.clone(), "t".into());
            let x: Vec<f32> = values
                .chunks_exact(d + c)
                .flat_map(|row| row[..d].to_vec())
                .collect();
            let cx: Vec<f32> = values
                .chunks_exact(d + c)
                .flat_map(|row| row[d..].to_vec())
                .collect();
            for standardized in [false, true] {
                let mut rt = Runtime::new(&bytes).unwrap();
                let reference = reference(&mut rt, &table, &ctx, standardized).unwrap();
                assert!(reference.iter().filter(|v| v.is_ok()).count() > n / 2);
                assert!(reference.iter().any(|v| v.is_err()));
                for threads in [1, 2, 3] {
                    let got = score_rows(&bytes, &x, &cx, standardized, threads).unwrap();
                    assert!(
                        same(&got, &reference),
                        "D = {d}, C = {c}, standardized {standardized}, {threads} threads"
                    );
                }
            }
            // The compiled flows serve all but the 10-D model.
            let t = tables(&rt.model).unwrap();
            assert_eq!(compiled(&rt.model, &t).is_some(), d < 10, "D = {d}");
        }
    }
}
