//! The differentiable flow: every layer's inverse (data → base) on batch tiles, its backward
//! pass, and the mean negative log-likelihood with its exact gradient.
//!
//! For a flow `x = f_L(… f_1(z))`, `-log p(x) = -log N(z) - Σ_l log|det ∂f_l⁻¹/∂y|` with
//! `z = f_1⁻¹(… f_L⁻¹(x))`: the forward pass runs the layers' inverses from the data side, the
//! backward pass runs back through them with `∂L/∂z = z/N` and `∂L/∂log|det| = -1/N`.

use crate::dense::{matmul, outer, Blocked, Post};
use crate::float::Float;
use crate::isa::Isa;
use crate::spec::{FlowSpec, LayerSpec, ModelSpec};
use crate::spline::cond::{cond_bwd, cond_fwd, raw_rows, CondSave};
use crate::spline::shared::{SharedSave, SharedSpline};
use crate::spline::Consts;
use crate::tile::{lane_sum, rows, zero, Row, L, T};
use flow_core::{Order, SplineShape};
use std::ops::Range;

/// Splits `v` into the four disjoint, increasing ranges `r`.
fn four<'a, X>(
    v: &'a mut [X],
    r: &(Range<usize>, Range<usize>, Range<usize>, Range<usize>),
) -> (&'a mut [X], &'a mut [X], &'a mut [X], &'a mut [X]) {
    let (_, rest) = v.split_at_mut(r.0.start);
    let (a, rest) = rest.split_at_mut(r.0.len());
    let (_, rest) = rest.split_at_mut(r.1.start - r.0.end);
    let (b, rest) = rest.split_at_mut(r.1.len());
    let (_, rest) = rest.split_at_mut(r.2.start - r.1.end);
    let (c, rest) = rest.split_at_mut(r.2.len());
    let d = if r.3.is_empty() {
        &mut rest[..0]
    } else {
        &mut rest[r.3.start - r.2.end..][..r.3.len()]
    };
    (a, b, c, d)
}

/// Offsets a range.
fn shift(r: &Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

/// A DenseNN with its activations for one tile and lane-wise gradient accumulators.
#[derive(Clone, Debug)]
pub(crate) struct Mlp<F> {
    off: usize,
    sizes: Vec<usize>,
    woff: Vec<usize>,
    acts: Vec<Vec<Row<F>>>,
    lanes: Vec<[F; L]>,
    /// `∂L/∂output`, filled by the caller before [`bwd`](Self::bwd).
    gout: Vec<Row<F>>,
    spare: Vec<Row<F>>,
    /// Per layer: `W` and `Wᵀ` in kernel layout, rebuilt each step.
    fw: Vec<Blocked<F>>,
    bw: Vec<Blocked<F>>,
}

impl<F: Float> Mlp<F> {
    fn new(off: usize, input: usize, hidden: &[usize], output: usize) -> Self {
        let mut sizes = vec![input];
        sizes.extend_from_slice(hidden);
        sizes.push(output);
        let mut woff = Vec::new();
        let mut n = 0;
        for w in sizes.windows(2) {
            woff.push(n);
            n += w[0] * w[1] + w[1];
        }
        let widest = sizes.iter().copied().max().unwrap_or(1);
        let n_layers = sizes.len() - 1;
        Self {
            off,
            acts: sizes.iter().map(|&s| rows(s)).collect(),
            sizes,
            woff,
            lanes: vec![[F::ZERO; L]; n],
            gout: rows(widest),
            spare: rows(widest),
            fw: vec![Blocked::default(); n_layers],
            bw: vec![Blocked::default(); n_layers],
        }
    }

    /// Rearranges the weights for this step's kernels.
    fn prepare(&mut self, p: &[F]) {
        for l in 0..self.sizes.len() - 1 {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let base = self.off + self.woff[l];
            let w = &p[base..base + no * ni];
            let b = &p[base + no * ni..base + no * ni + no];
            self.fw[l].set(w, Some(b), no, ni, false);
            self.bw[l].set(w, None, no, ni, true);
        }
    }

    fn input(&mut self) -> &mut [Row<F>] {
        &mut self.acts[0]
    }

    fn output(&self) -> &[Row<F>] {
        self.acts.last().map(|v| &v[..]).unwrap_or(&[])
    }

    #[inline(always)]
    fn fwd<const VW: usize>(&mut self) {
        let n = self.sizes.len() - 1;
        for l in 0..n {
            let (a, rest) = self.acts.split_at_mut(l + 1);
            let post = if l + 1 < n { Post::Relu } else { Post::None };
            matmul::<F, VW>(&self.fw[l], &a[l], &mut rest[0], post);
        }
    }

    /// Backward from `self.gout`; writes `∂L/∂input` to `gin` when given.
    #[inline(always)]
    fn bwd<const VW: usize>(&mut self, gin: Option<&mut [Row<F>]>) {
        let n = self.sizes.len() - 1;
        let mut cur = std::mem::take(&mut self.gout);
        let mut spare = std::mem::take(&mut self.spare);
        for l in (0..n).rev() {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (gw, rest) = self.lanes[self.woff[l]..].split_at_mut(no * ni);
            outer::<F, VW>(&cur[..no], &self.acts[l], gw, &mut rest[..no]);
            if l > 0 {
                let mask = Post::Mask(&self.acts[l]);
                matmul::<F, VW>(&self.bw[l], &cur[..no], &mut spare[..ni], mask);
                std::mem::swap(&mut cur, &mut spare);
            }
        }
        if let Some(gin) = gin {
            let ni = self.sizes[0];
            matmul::<F, VW>(&self.bw[0], &cur, &mut gin[..ni], Post::None);
        }
        self.gout = cur;
        self.spare = spare;
    }

    fn flush(&mut self, grad: &mut [F]) {
        let g = &mut grad[self.off..self.off + self.lanes.len()];
        for (gi, lane) in g.iter_mut().zip(self.lanes.iter_mut()) {
            *gi += lane_sum(lane);
            *lane = [F::ZERO; L];
        }
    }
}

/// An element-wise spline with parameters shared by all points, over `dims` dimensions,
/// parameters at `off` in flow-core's `Spline` layout.
#[derive(Clone, Debug)]
struct Shared<F> {
    off: usize,
    shape: SplineShape,
    dims: Vec<SharedSpline<F>>,
    saves: Vec<SharedSave<F>>,
}

impl<F: Float> Shared<F> {
    fn new(off: usize, dims: usize, shape: SplineShape) -> Self {
        Self {
            off,
            shape,
            dims: (0..dims).map(|_| SharedSpline::new(&shape)).collect(),
            saves: (0..dims).map(|_| SharedSave::default()).collect(),
        }
    }

    fn n_params(&self) -> usize {
        self.dims.len() * self.shape.params_per_dim()
    }

    fn prepare(&mut self, p: &[F]) {
        let n = self.dims.len();
        for (j, s) in self.dims.iter_mut().enumerate() {
            let (w, h, d, l) = raw_rows(&self.shape, n, j);
            let o = self.off;
            s.prepare(
                &p[shift(&w, o)],
                &p[shift(&h, o)],
                &p[shift(&d, o)],
                &p[shift(&l, o)],
            );
        }
    }

    fn finish(&self, grad: &mut [F]) {
        let n = self.dims.len();
        let g = &mut grad[self.off..self.off + self.n_params()];
        for (j, s) in self.dims.iter().enumerate() {
            let (gw, gh, gd, gl) = four(g, &raw_rows(&self.shape, n, j));
            s.finish(gw, gh, gd, gl);
        }
    }

    #[inline(always)]
    fn fwd(&mut self, u: &mut [Row<F>], ld: &mut Row<F>) {
        for ((s, sv), uj) in self.dims.iter().zip(self.saves.iter_mut()).zip(u) {
            s.fwd(uj, ld, sv);
        }
    }

    #[inline(always)]
    fn bwd(&mut self, g: &mut [Row<F>], gld: &Row<F>) {
        for ((s, sv), gj) in self.dims.iter_mut().zip(self.saves.iter()).zip(g) {
            s.bwd(gj, gld, sv);
        }
    }
}

/// Element-wise splines on `dims` dimensions with per-point parameters from `nn`'s output.
#[derive(Clone, Debug)]
struct CondPart<F> {
    shape: SplineShape,
    c: Consts<F>,
    saves: Vec<CondSave<F>>,
}

impl<F: Float> CondPart<F> {
    fn new(dims: usize, shape: SplineShape) -> Self {
        Self {
            shape,
            c: Consts::new(&shape),
            saves: (0..dims).map(|_| CondSave::new(shape.bins())).collect(),
        }
    }

    #[inline(always)]
    fn fwd(&mut self, raw: &[Row<F>], u: &mut [Row<F>], ld: &mut Row<F>) {
        let n = self.saves.len();
        let linear = self.shape.order() == Order::Linear;
        for (j, (sv, uj)) in self.saves.iter_mut().zip(u).enumerate() {
            let (w, h, d, l) = raw_rows(&self.shape, n, j);
            cond_fwd(
                &self.c, linear, &raw[w], &raw[h], &raw[d], &raw[l], uj, ld, sv,
            );
        }
    }

    #[inline(always)]
    fn bwd(&self, g: &mut [Row<F>], gld: &Row<F>, graw: &mut [Row<F>]) {
        let n = self.saves.len();
        let linear = self.shape.order() == Order::Linear;
        for (j, (sv, gj)) in self.saves.iter().zip(g).enumerate() {
            let (gw, gh, gd, gl) = four(graw, &raw_rows(&self.shape, n, j));
            cond_bwd(&self.c, linear, gj, gld, sv, gw, gh, gd, gl);
        }
    }
}

/// One layer of the differentiable flow.
#[derive(Clone, Debug)]
enum Op<F> {
    Spline(Shared<F>),
    Coupling {
        split: usize,
        lower: Shared<F>,
        nn: Mlp<F>,
        upper: CondPart<F>,
        gin: Vec<Row<F>>,
    },
    Cond {
        ctx: usize,
        nn: Mlp<F>,
        part: CondPart<F>,
    },
    Permute {
        perm: Vec<usize>,
        tmp: Vec<Row<F>>,
    },
    Affine {
        off: Option<usize>,
        loc: Vec<F>,
        scale: Vec<F>,
        out: Vec<Row<F>>,
        acc: Vec<F>,
    },
}

impl<F: Float> Op<F> {
    fn new(l: &LayerSpec, dim: usize, ctx: usize, off: usize) -> Result<Self, crate::TrainError> {
        Ok(match l {
            LayerSpec::Spline(s) => Op::Spline(Shared::new(off, dim, s.shape()?)),
            LayerSpec::Coupling {
                split,
                hidden,
                spline,
            } => {
                let shape = spline.shape()?;
                let lower = Shared::new(off, *split, shape);
                let p = (dim - split) * shape.params_per_dim();
                let nn = Mlp::new(off + lower.n_params(), split + ctx, hidden, p);
                Op::Coupling {
                    split: *split,
                    lower,
                    nn,
                    upper: CondPart::new(dim - split, shape),
                    gin: rows(split + ctx),
                }
            }
            LayerSpec::ConditionalSpline { hidden, spline } => {
                let shape = spline.shape()?;
                let nn = Mlp::new(off, ctx, hidden, dim * shape.params_per_dim());
                Op::Cond {
                    ctx,
                    nn,
                    part: CondPart::new(dim, shape),
                }
            }
            LayerSpec::Permute(p) => Op::Permute {
                perm: p.clone(),
                tmp: rows(dim),
            },
            LayerSpec::Affine {
                loc,
                scale,
                learnable,
            } => Op::Affine {
                off: learnable.then_some(off),
                loc: loc.iter().map(|&v| F::from_f32(v)).collect(),
                scale: scale.iter().map(|&v| F::from_f32(v)).collect(),
                out: rows(dim),
                acc: vec![F::ZERO; 2 * dim],
            },
        })
    }

    fn prepare(&mut self, p: &[F]) {
        match self {
            Op::Spline(s) => s.prepare(p),
            Op::Coupling { lower, nn, .. } => {
                lower.prepare(p);
                nn.prepare(p);
            }
            Op::Cond { nn, .. } => nn.prepare(p),
            Op::Affine {
                off: Some(off),
                loc,
                scale,
                acc,
                ..
            } => {
                let d = loc.len();
                loc.copy_from_slice(&p[*off..*off + d]);
                scale.copy_from_slice(&p[*off + d..*off + 2 * d]);
                acc.iter_mut().for_each(|a| *a = F::ZERO);
            }
            _ => {}
        }
    }

    fn finish(&mut self, grad: &mut [F]) {
        match self {
            Op::Spline(s) => s.finish(grad),
            Op::Coupling { lower, nn, .. } => {
                lower.finish(grad);
                nn.flush(grad);
            }
            Op::Cond { nn, .. } => nn.flush(grad),
            Op::Affine {
                off: Some(off),
                acc,
                ..
            } => {
                for (g, a) in grad[*off..*off + acc.len()].iter_mut().zip(acc.iter()) {
                    *g += *a;
                }
            }
            _ => {}
        }
    }

    /// Inverse in place on `u` (the layer's output side → its input side), adding log|det|.
    #[inline(always)]
    fn fwd<const VW: usize>(&mut self, u: &mut [Row<F>], ctx: &[Row<F>], ld: &mut Row<F>) {
        match self {
            Op::Spline(s) => s.fwd(u, ld),
            Op::Coupling {
                split,
                lower,
                nn,
                upper,
                ..
            } => {
                let (u1, u2) = u.split_at_mut(*split);
                lower.fwd(u1, ld);
                let inp = nn.input();
                inp[..*split].copy_from_slice(u1);
                inp[*split..].copy_from_slice(ctx);
                nn.fwd::<VW>();
                upper.fwd(nn.output(), u2, ld);
            }
            Op::Cond { ctx: c, nn, part } => {
                nn.input().copy_from_slice(&ctx[..*c]);
                nn.fwd::<VW>();
                part.fwd(nn.output(), u, ld);
            }
            Op::Permute { perm, tmp } => {
                tmp.copy_from_slice(u);
                for (i, &pi) in perm.iter().enumerate() {
                    u[pi] = tmp[i];
                }
            }
            Op::Affine {
                loc, scale, out, ..
            } => {
                for (j, uj) in u.iter_mut().enumerate() {
                    let (m, s) = (loc[j], scale[j]);
                    let inv = F::ONE / s;
                    let l = s.abs().ln();
                    for t in 0..T {
                        uj[t] = (uj[t] - m) * inv;
                        ld[t] -= l;
                    }
                    out[j] = *uj;
                }
            }
        }
    }

    /// Backward of [`fwd`](Self::fwd): `g` holds `∂L/∂(inverse output)` on entry and
    /// `∂L/∂(inverse input)` on exit.
    #[inline(always)]
    fn bwd<const VW: usize>(&mut self, g: &mut [Row<F>], gld: &Row<F>) {
        match self {
            Op::Spline(s) => s.bwd(g, gld),
            Op::Coupling {
                split,
                lower,
                nn,
                upper,
                gin,
            } => {
                let (g1, g2) = g.split_at_mut(*split);
                upper.bwd(g2, gld, &mut nn.gout);
                nn.bwd::<VW>(Some(gin));
                for (a, b) in g1.iter_mut().zip(gin.iter()) {
                    for t in 0..T {
                        a[t] += b[t];
                    }
                }
                lower.bwd(g1, gld);
            }
            Op::Cond { nn, part, .. } => {
                part.bwd(g, gld, &mut nn.gout);
                nn.bwd::<VW>(None);
            }
            Op::Permute { perm, tmp } => {
                tmp.copy_from_slice(g);
                for (i, &pi) in perm.iter().enumerate() {
                    g[i] = tmp[pi];
                }
            }
            Op::Affine {
                off,
                scale,
                out,
                acc,
                ..
            } => {
                let d = scale.len();
                for (j, gj) in g.iter_mut().enumerate() {
                    let inv = F::ONE / scale[j];
                    let (mut gl, mut gs) = (F::ZERO, F::ZERO);
                    for t in 0..T {
                        let gy = gj[t] * inv;
                        gl -= gy;
                        gs -= gy * out[j][t] + gld[t] * inv;
                        gj[t] = gy;
                    }
                    if off.is_some() {
                        acc[j] += gl;
                        acc[d + j] += gs;
                    }
                }
            }
        }
    }
}

/// One flow of the model, with its place in the data.
#[derive(Clone, Debug)]
struct Chain<F> {
    cols: Range<usize>,
    ctx_cols: Range<usize>,
    ops: Vec<Op<F>>,
    u: Vec<Row<F>>,
    ctx: Vec<Row<F>>,
    g: Vec<Row<F>>,
}

impl<F: Float> Chain<F> {
    fn new(
        f: &FlowSpec,
        cols: Range<usize>,
        ctx_cols: Range<usize>,
        off: &mut usize,
    ) -> Result<Self, crate::TrainError> {
        let mut ops = Vec::new();
        for l in &f.layers {
            ops.push(Op::new(l, f.dim, f.context, *off)?);
            *off += l.param_count(f.dim, f.context);
        }
        Ok(Self {
            u: rows(f.dim),
            ctx: rows(f.context),
            g: rows(f.dim),
            cols,
            ctx_cols,
            ops,
        })
    }

    /// Loss `Σ_t w_t·(-log p(x_t))` of the tile `x`, and its backward pass when `grad`.
    #[inline(always)]
    fn tile<const VW: usize>(&mut self, x: &[Row<F>], w: &Row<F>, grad: bool) -> F {
        self.u.copy_from_slice(&x[self.cols.clone()]);
        self.ctx.copy_from_slice(&x[self.ctx_cols.clone()]);
        let mut ld: Row<F> = zero();
        for op in self.ops.iter_mut().rev() {
            op.fwd::<VW>(&mut self.u, &self.ctx, &mut ld);
        }
        let half = F::of(0.5);
        let norm = F::HALF_LN_2PI * F::of(self.u.len() as f64);
        let mut nll: Row<F> = [norm; T];
        for uj in &self.u {
            for t in 0..T {
                nll[t] += half * uj[t] * uj[t];
            }
        }
        let mut total = F::ZERO;
        for t in 0..T {
            total += w[t] * (nll[t] - ld[t]);
        }
        if grad {
            for (gj, uj) in self.g.iter_mut().zip(&self.u) {
                for t in 0..T {
                    gj[t] = w[t] * uj[t];
                }
            }
            let mut gld: Row<F> = zero();
            for t in 0..T {
                gld[t] = -w[t];
            }
            for op in self.ops.iter_mut() {
                op.bwd::<VW>(&mut self.g, &gld);
            }
        }
        total
    }
}

/// The differentiable model: its flows, their tile buffers, and the parameter count.
#[derive(Clone, Debug)]
pub struct Engine<F> {
    chains: Vec<Chain<F>>,
    n_params: usize,
    dim: usize,
    x: Vec<Row<F>>,
    w: Row<F>,
}

impl<F: Float> Engine<F> {
    /// Builds the engine for `spec` (validated first).
    pub fn new(spec: &ModelSpec) -> Result<Self, crate::TrainError> {
        spec.validate()?;
        let mut off = 0;
        let chains = match spec {
            ModelSpec::Flow(f) => vec![Chain::new(f, 0..f.dim, 0..0, &mut off)?],
            ModelSpec::Joint {
                marginal,
                conditional,
            } => {
                let d1 = marginal.dim;
                let d = d1 + conditional.dim;
                vec![
                    Chain::new(marginal, 0..d1, 0..0, &mut off)?,
                    Chain::new(conditional, d1..d, 0..d1, &mut off)?,
                ]
            }
        };
        debug_assert_eq!(off, spec.param_count());
        Ok(Self {
            chains,
            n_params: off,
            dim: spec.dim(),
            x: rows(spec.dim()),
            w: zero(),
        })
    }

    /// Number of parameters.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Mean `-log p(x)` over the points `idx` of `data` (row-major, `dim` columns), computed
    /// with the instruction set `isa` (or the best supported one below it).
    ///
    /// # Panics
    /// If `params` has the wrong length, `idx` is empty, or an index is out of range.
    pub fn loss(&mut self, isa: Isa, params: &[F], data: &[f32], idx: &[usize]) -> f64 {
        self.run(isa, params, data, idx, None)
    }

    /// Mean `-log p(x)` over the points `idx` of `data`, and its gradient with respect to
    /// `params` written to `grad` (same length).
    ///
    /// # Panics
    /// As [`loss`](Self::loss).
    pub fn loss_grad(
        &mut self,
        isa: Isa,
        params: &[F],
        data: &[f32],
        idx: &[usize],
        grad: &mut [F],
    ) -> f64 {
        self.run(isa, params, data, idx, Some(grad))
    }

    fn run(
        &mut self,
        isa: Isa,
        p: &[F],
        data: &[f32],
        idx: &[usize],
        grad: Option<&mut [F]>,
    ) -> f64 {
        assert_eq!(p.len(), self.n_params, "parameter count");
        let isa = isa.or_supported();
        assert!(!idx.is_empty(), "empty batch");
        for c in &mut self.chains {
            for op in &mut c.ops {
                op.prepare(p);
            }
        }
        let inv_n = F::of(1.0 / idx.len() as f64);
        let with_grad = grad.is_some();
        let mut total = 0.0f64;
        let d = self.dim;
        for chunk in idx.chunks(T) {
            for t in 0..T {
                let i = chunk[t.min(chunk.len() - 1)];
                for (j, xj) in self.x.iter_mut().enumerate() {
                    xj[t] = F::from_f32(data[i * d + j]);
                }
                self.w[t] = if t < chunk.len() { inv_n } else { F::ZERO };
            }
            let (chains, x, w) = (&mut self.chains, &self.x, &self.w);
            total += match isa {
                Isa::Avx512 => isa.run(
                    #[inline(always)]
                    || tile::<F, 16>(chains, x, w, with_grad),
                ),
                Isa::Avx2 => isa.run(
                    #[inline(always)]
                    || tile::<F, 8>(chains, x, w, with_grad),
                ),
                Isa::Baseline => tile::<F, 4>(chains, x, w, with_grad),
            };
        }
        if let Some(g) = grad {
            g.iter_mut().for_each(|v| *v = F::ZERO);
            for c in &mut self.chains {
                for op in &mut c.ops {
                    op.finish(g);
                }
            }
        }
        total
    }
}

/// Loss (and backward pass) of every chain on one tile.
#[inline(always)]
fn tile<F: Float, const VW: usize>(
    chains: &mut [Chain<F>],
    x: &[Row<F>],
    w: &Row<F>,
    grad: bool,
) -> f64 {
    let mut s = 0.0f64;
    for c in chains.iter_mut() {
        s += c.tile::<VW>(x, w, grad).to_f64();
    }
    s
}

/// Times the parts of tutorial config (b)'s tile pipeline in thread-CPU nanoseconds per
/// point (best of 5 × `reps` tiles; `PARTS=name` selects parts). A development aid for
/// optimizing the kernels, not part of the API.
#[doc(hidden)]
pub fn profile_parts(isa: Isa, reps: usize) -> Vec<(&'static str, f64)> {
    match isa {
        Isa::Avx512 => parts::<16>(isa, reps),
        Isa::Avx2 => parts::<8>(isa, reps),
        Isa::Baseline => parts::<4>(isa, reps),
    }
}

fn parts<const VW: usize>(isa: Isa, reps: usize) -> Vec<(&'static str, f64)> {
    let spec = ModelSpec::tutorial_coupling(2, 16);
    let p = crate::init::init_params(&spec, 0);
    let mut e = Engine::<f32>::new(&spec).expect("valid spec");
    let Some(Op::Coupling {
        lower, nn, upper, ..
    }) = e.chains.first_mut().and_then(|c| c.ops.first_mut())
    else {
        return Vec::new();
    };
    lower.prepare(&p);
    nn.prepare(&p);
    let mut r = crate::rng::Rng::new(1);
    let mut u0: Vec<Row<f32>> = rows(2);
    for row in u0.iter_mut() {
        for v in row.iter_mut() {
            *v = r.normal();
        }
    }
    let only = std::env::var("PARTS").ok();
    let mut out = Vec::new();
    let mut time = |name: &'static str, f: &mut dyn FnMut()| {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            return;
        }
        f();
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = crate::clock::thread_cpu_seconds().unwrap_or(0.0);
            for _ in 0..reps {
                f();
            }
            best = best.min(crate::clock::thread_cpu_seconds().unwrap_or(0.0) - t0);
        }
        out.push((name, best / (reps * T) as f64 * 1e9));
    };
    let mut ld: Row<f32> = zero();
    let mut v = u0.clone();
    time("lower spline fwd", &mut || {
        v.copy_from_slice(&u0);
        isa.run(
            #[inline(always)]
            || lower.fwd(&mut v[..1], &mut ld),
        );
    });
    let gld: Row<f32> = [-1e-3; T];
    time("lower spline bwd", &mut || {
        v.copy_from_slice(&u0);
        isa.run(
            #[inline(always)]
            || lower.bwd(&mut v[..1], &gld),
        );
    });
    nn.input()[0] = u0[0];
    time("mlp fwd", &mut || {
        isa.run(
            #[inline(always)]
            || nn.fwd::<VW>(),
        )
    });
    let mut gin = rows(1);
    time("mlp bwd", &mut || {
        isa.run(
            #[inline(always)]
            || nn.bwd::<VW>(Some(&mut gin)),
        )
    });
    nn.fwd::<VW>();
    let raw = nn.output().to_vec();
    time("upper spline fwd", &mut || {
        v.copy_from_slice(&u0);
        isa.run(
            #[inline(always)]
            || upper.fwd(&raw, &mut v[1..], &mut ld),
        );
    });
    let mut graw = raw.clone();
    time("upper spline bwd", &mut || {
        v.copy_from_slice(&u0);
        isa.run(
            #[inline(always)]
            || upper.bwd(&mut v[1..], &gld, &mut graw),
        );
    });
    out
}
