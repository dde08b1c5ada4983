//! A loaded model file of any dimension, evaluated by flow-core's `f32` code.
//!
//! flow-core's [`Flow`](flow_core::Flow), [`ConditionalFlow`](flow_core::ConditionalFlow) and
//! [`JointFlow`](flow_core::JointFlow) fix the dimension at compile time (as a device does);
//! a command-line tool reads files of any dimension, so this runs the same [`Layer`]s through
//! [`Layer::apply`] with slices, in exactly the order and arithmetic of flow-core's chains:
//! inverse layers from the data side summing `log|det|` from zero, then
//! `log N(z) + Σ log|det|`; a point outside an `Exp` layer's support scores `-inf`; a joint's
//! `log p(x₁) + log p(x₂ | x₁)`; sampling draws each part's base with
//! [`StdNormal::sample`] (marginal first). The results are bit-identical to flow-core's typed
//! flows (checked in the tests).

use flow_core::model::FlowKind;
use flow_core::stream::PairDensity;
use flow_core::{Direction, Error, Layer, Model, StdNormal, Workspace};
use flow_train::export::{MAX_BINS, MAX_HIDDEN};
use rand_core::RngCore;

/// Where a part's context comes from.
#[derive(Clone, Copy, Debug)]
enum Ctx {
    /// No context.
    None,
    /// The model's external context (a conditional model).
    External,
    /// The first `d` values of the point (a joint's `x₁`).
    Prefix(usize),
}

/// One flow of the model: the whole model, or a joint's marginal or conditional.
struct Part<'a> {
    layers: Vec<Layer<'a>>,
    offset: usize,
    dim: usize,
    ctx: Ctx,
}

/// A parsed model with its layers built.
pub struct Runtime<'a> {
    /// The validated file.
    pub model: Model<'a>,
    parts: Vec<Part<'a>>,
    ws: Box<Workspace<f32, MAX_HIDDEN, MAX_BINS>>,
    lds: Vec<f32>,
}

impl<'a> Runtime<'a> {
    /// Parses and validates `bytes` (flow-core's [`Model::parse`]) and builds the layers.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let model = Model::parse(bytes)?;
        let h = *model.header();
        let layers: Vec<Layer<'a>> = model.layers().collect::<Result<_, _>>()?;
        for l in &layers {
            if l.max_hidden() > MAX_HIDDEN {
                return Err(Error::Capacity {
                    what: flow_core::Capacity::Hidden,
                    needed: l.max_hidden(),
                    limit: MAX_HIDDEN,
                });
            }
        }
        let (dim, c) = (usize::from(h.dim), usize::from(h.context_dim));
        let parts = match h.kind {
            FlowKind::Plain => vec![Part {
                layers,
                offset: 0,
                dim,
                ctx: Ctx::None,
            }],
            FlowKind::Conditional => vec![Part {
                layers,
                offset: 0,
                dim,
                ctx: Ctx::External,
            }],
            FlowKind::Joint => {
                let mut marginal = layers;
                let conditional = marginal.split_off(usize::from(h.marginal_layers));
                vec![
                    Part {
                        layers: marginal,
                        offset: 0,
                        dim: c,
                        ctx: Ctx::None,
                    },
                    Part {
                        layers: conditional,
                        offset: c,
                        dim: dim - c,
                        ctx: Ctx::Prefix(c),
                    },
                ]
            }
        };
        Ok(Self {
            model,
            parts,
            ws: Box::default(),
            lds: vec![0.0; dim],
        })
    }

    /// What the file holds.
    pub fn kind(&self) -> FlowKind {
        self.model.header().kind
    }

    /// Dimension `D` of a point.
    pub fn dim(&self) -> usize {
        usize::from(self.model.header().dim)
    }

    /// Size of the external context (conditional models), else 0.
    pub fn context_dim(&self) -> usize {
        match self.kind() {
            FlowKind::Conditional => usize::from(self.model.header().context_dim),
            _ => 0,
        }
    }

    /// The stored column names as written (empty if none).
    pub fn stored_names(&self) -> Vec<String> {
        self.model
            .metadata()
            .columns_str()
            .unwrap_or_default()
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Stored column names: the data columns, then the context columns (empty if unknown).
    pub fn columns(&self) -> (Vec<String>, Vec<String>) {
        let all = self.stored_names();
        if all.len() < self.dim() {
            return (Vec::new(), Vec::new());
        }
        let (d, c) = all.split_at(self.dim());
        let c = if c.len() == self.context_dim() {
            c.to_vec()
        } else {
            Vec::new()
        };
        (d.to_vec(), c)
    }

    /// Whether the file stores a data scaler.
    pub fn has_scaler(&self) -> bool {
        self.model.scaler(0).is_some()
    }

    /// `log p(x | ctx)` of a point in the flow's (standardized) space.
    pub fn log_prob(&mut self, x: &[f32], ctx: &[f32]) -> Result<f32, Error> {
        let mut lp = 0.0f32;
        self.parts_log_prob(x, ctx, |i, part| {
            lp = if i == 0 { part } else { lp + part };
        })?;
        Ok(lp)
    }

    /// Each part's log-density in order (a joint's marginal, then its conditional), handed
    /// to `each` with its index.
    fn parts_log_prob(
        &mut self,
        x: &[f32],
        ctx: &[f32],
        mut each: impl FnMut(usize, f32),
    ) -> Result<(), Error> {
        if x.len() != self.dim() || ctx.len() != self.context_dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim() + self.context_dim(),
                found: x.len() + ctx.len(),
            });
        }
        if !x.iter().chain(ctx).all(|v| v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let mut v = x.to_vec();
        for (i, p) in self.parts.iter().enumerate() {
            let c: &[f32] = match p.ctx {
                Ctx::None => &[],
                Ctx::External => ctx,
                Ctx::Prefix(d) => &x[..d],
            };
            let vv = &mut v[p.offset..p.offset + p.dim];
            let ld = &mut self.lds[..p.dim];
            let mut total = 0.0f32;
            let mut out_of_support = false;
            for l in p.layers.iter().rev() {
                let cc = if l.context_dim() == 0 { &[][..] } else { c };
                match l.apply(vv, cc, ld, Direction::Inverse, &mut self.ws) {
                    Ok(t) => total += t,
                    Err(Error::OutOfSupport) => {
                        out_of_support = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let part = if out_of_support {
                f32::NEG_INFINITY
            } else {
                StdNormal::log_prob(vv) + total
            };
            if part.is_nan() {
                return Err(Error::Numerical);
            }
            each(i, part);
        }
        Ok(())
    }

    /// `(log p(x₁), log p(x₂ | x₁))` of a joint model's point, as flow-core's
    /// [`JointFlow::log_prob_parts`](flow_core::JointFlow::log_prob_parts).
    pub fn log_prob_parts(&mut self, x: &[f32]) -> Result<(f32, f32), Error> {
        if self.kind() != FlowKind::Joint {
            return Err(Error::DimensionMismatch {
                expected: 2,
                found: self.parts.len(),
            });
        }
        let mut parts = [0.0f32; 2];
        self.parts_log_prob(x, &[], |i, part| parts[i] = part)?;
        Ok((parts[0], parts[1]))
    }

    /// `(raw - mean) / scale` for the data dimensions (unchanged without a scaler), as
    /// flow-core's [`Model::standardize`].
    pub fn standardize(&self, raw: &[f32]) -> Vec<f32> {
        raw.iter()
            .enumerate()
            .map(|(j, &v)| match self.model.scaler(j) {
                Some((m, s)) => (v - m) / s,
                None => v,
            })
            .collect()
    }

    /// `mean + scale · x`, as flow-core's [`Model::unstandardize`].
    pub fn unstandardize(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(j, &v)| match self.model.scaler(j) {
                Some((m, s)) => m + s * v,
                None => v,
            })
            .collect()
    }

    /// `log p(raw | ctx)` in raw units: the scaler applied and its Jacobian added, as
    /// flow-core's [`Model::log_prob_raw`]. The context is used as given.
    #[cfg_attr(not(test), allow(dead_code))] // eval's single-threaded reference (tests)
    pub fn log_prob_raw(&mut self, raw: &[f32], ctx: &[f32]) -> Result<f32, Error> {
        let x = self.standardize(raw);
        Ok(self.log_prob(&x, ctx)? + self.model.raw_log_det::<f32>())
    }

    /// One sample in the flow's space (`ctx`: the external context of a conditional model).
    pub fn sample(&mut self, rng: &mut dyn RngCore, ctx: &[f32]) -> Result<Vec<f32>, Error> {
        if ctx.len() != self.context_dim() {
            return Err(Error::DimensionMismatch {
                expected: self.context_dim(),
                found: ctx.len(),
            });
        }
        if !ctx.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFiniteInput);
        }
        let mut v = vec![0.0f32; self.dim()];
        for i in 0..self.parts.len() {
            self.sample_part(rng, i, &mut v, ctx)?;
        }
        Ok(v)
    }

    /// Part `i`'s sample into its place in `v` (its context from `v` or `ctx`).
    fn sample_part(
        &mut self,
        rng: &mut dyn RngCore,
        i: usize,
        v: &mut [f32],
        ctx: &[f32],
    ) -> Result<(), Error> {
        let p = &self.parts[i];
        let (head, rest) = v.split_at_mut(p.offset);
        let vv = &mut rest[..p.dim];
        let c: &[f32] = match p.ctx {
            Ctx::None => &[],
            Ctx::External => ctx,
            Ctx::Prefix(d) => &head[..d],
        };
        StdNormal::sample(rng, vv);
        let ld = &mut self.lds[..p.dim];
        for l in &p.layers {
            let cc = if l.context_dim() == 0 { &[][..] } else { c };
            l.apply(vv, cc, ld, Direction::Forward, &mut self.ws)?;
        }
        if vv.iter().any(|x| x.is_nan()) {
            return Err(Error::Numerical);
        }
        Ok(())
    }

    /// A windowed model's sample of `w` consecutive readings (row-major, in the flow's
    /// space): `x_1` from the marginal, each next reading from the conditional given the one
    /// before.
    pub fn sample_window(&mut self, rng: &mut dyn RngCore, w: usize) -> Result<Vec<f32>, Error> {
        let d = self.dim() / 2;
        let mut pair = self.sample(rng, &[])?;
        let mut out = pair.clone();
        for _ in 2..w {
            pair.copy_within(d.., 0);
            self.sample_part(rng, 1, &mut pair, &[])?;
            out.extend_from_slice(&pair[d..]);
        }
        out.truncate(w * d);
        Ok(out)
    }
}

/// A windowed model's pairs, scored with flow-core's arithmetic (see
/// [`flow_core::stream`]).
impl PairDensity for &mut Runtime<'_> {
    fn log_prob_parts(&mut self, pair: &[f32]) -> Result<(f32, f32), Error> {
        Runtime::log_prob_parts(self, pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_core::model::ModelBuilder;
    use flow_core::{Flow, JointFlow, Order, SplineShape};
    use rand_core::SeedableRng;

    fn params(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Bit-identical to flow-core's typed flows: plain (coupling, permute, spline) and joint.
    #[test]
    fn matches_flow_core_flows() {
        let s = SplineShape::new(8, 3.0, Order::Linear).unwrap();
        let nn = flow_core::nn::dense_param_count(1, &[6, 6], 31);
        let bytes = ModelBuilder::plain(2)
            .coupling(1, 1, &s, 0, &[6, 6], &params(31, 1), &params(nn, 2))
            .permute(&[1, 0])
            .spline(2, &s, &params(62, 3))
            .scaler(&[0.5, -1.0], &[2.0, 0.25])
            .encode()
            .unwrap();
        let m = Model::parse(&bytes).unwrap();
        let f: Flow<2, 4, 8, 8> = m.flow().unwrap();
        let mut rt = Runtime::new(&bytes).unwrap();
        for p in [[0.3f32, -0.7], [2.9, 3.5], [-10.0, 0.0]] {
            assert_eq!(
                rt.log_prob(&p, &[]).unwrap().to_bits(),
                f.log_prob(&p).unwrap().to_bits()
            );
            assert_eq!(
                rt.log_prob_raw(&p, &[]).unwrap().to_bits(),
                m.log_prob_raw(&f, &p).unwrap().to_bits()
            );
        }
        let mut a = rand_pcg::Pcg64::seed_from_u64(5);
        let mut b = rand_pcg::Pcg64::seed_from_u64(5);
        for _ in 0..20 {
            let x: [f32; 2] = f.sample(&mut a).unwrap();
            assert_eq!(rt.sample(&mut b, &[]).unwrap(), x);
        }

        let nn = flow_core::nn::dense_param_count(1, &[5], 31);
        let bytes = ModelBuilder::joint(2, 1)
            .spline(1, &s, &params(31, 4))
            .end_marginal()
            .conditional_spline(1, &s, 1, &[5], &params(nn, 5))
            .encode()
            .unwrap();
        let j: JointFlow<2, 4, 8, 8> = Model::parse(&bytes).unwrap().joint_flow().unwrap();
        let mut rt = Runtime::new(&bytes).unwrap();
        for p in [[0.3f32, -0.7], [2.9, 3.5], [-1.0, 0.2]] {
            assert_eq!(
                rt.log_prob(&p, &[]).unwrap().to_bits(),
                j.log_prob(&p).unwrap().to_bits()
            );
            // Each term alone too: a windowed model's scores are made of them.
            let (a, b) = rt.log_prob_parts(&p).unwrap();
            let (c, d) = j.log_prob_parts(&p).unwrap();
            assert_eq!((a.to_bits(), b.to_bits()), (c.to_bits(), d.to_bits()));
        }
        let mut a = rand_pcg::Pcg64::seed_from_u64(6);
        let mut b = rand_pcg::Pcg64::seed_from_u64(6);
        for _ in 0..20 {
            let x: [f32; 2] = j.sample(&mut a).unwrap();
            assert_eq!(rt.sample(&mut b, &[]).unwrap(), x);
        }
        assert_eq!(
            rt.log_prob(&[f32::NAN, 0.0], &[]),
            Err(Error::NonFiniteInput)
        );
    }
}
