//! The device cost of a model before it is flashed: flash, RAM and Cortex-M4F instructions per
//! `log_prob`, from a linear cost model fitted to the measurement harness.
//!
//! The harness (`flow-device-bench`) is built for the model (exactly its layer kinds compiled
//! in, knot tables of the fixed-parameter splines in flash) and run in QEMU `mps2-an386`
//! (Cortex-M4F, `thumbv7em-none-eabihf`, release profile) with `-icount shift=0`. What the
//! three figures mean, as the harness measures them:
//!
//! * `m4f_instructions`: instructions per `log_prob`, mean over the harness's points inside
//!   the spline box (points outside are cheaper: identity there);
//! * `flash_bytes`: the firmware's flash (`.vector_table + .text + .rodata + .data`) less that
//!   of the same runtime without a flow (the harness's `template`): the model file, the knot
//!   tables, flow-core's code for the model's layer kinds, `libm`, and the harness's scoring
//!   and sampling loop;
//! * `ram_bytes`: the flow struct plus the stack `log_prob` uses (the model's parameters stay
//!   in flash).
//!
//! The coefficients below are least-squares fits to the measured table in
//! `docs/device-cost.md` (every layer kind, `D` 1–6, `K` 3–32, hidden sizes up to `[32, 32]`;
//! re-measured by `scripts/measure-device-cost.sh`, fitted by `scripts/fit-cost-model.py`);
//! the test `tests/tests/cost_model.rs` holds the predictions for the example models within
//! 10 % of the harness's figures.

use crate::spec::{FlowSpec, LayerSpec, ModelSpec, SplineSpec};
use flow_core::model::{FlowKind, Hidden, LayerRecord, SplineDesc};
use flow_core::{Model, Order};

/// A model's expected cost on a Cortex-M4F (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCost {
    /// Flash beyond the firmware's own runtime: model file, knot tables, flow-core code.
    pub flash_bytes: u64,
    /// The flow struct and the stack of one `log_prob`.
    pub ram_bytes: u64,
    /// Instructions per `log_prob` inside the spline box.
    pub m4f_instructions: u64,
}

/// What the cost model reads from a model: counts per layer kind and the geometry the
/// firmware is compiled for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Features {
    /// The model file's size in bytes.
    pub file_bytes: u64,
    /// Flows the firmware chains (2 for a joint, else 1).
    pub chains: u64,
    /// Whether the model is conditional `p(x | c)` (1) or not (0).
    pub conditional: u64,
    /// Whether the model is the joint `p(x₁)·p(x₂ | x₁)` (1) or not (0).
    pub joint: u64,
    /// Which layer kinds occur (1 each): affine, exp, spline, coupling, permute,
    /// conditional spline, and the quadratic order — each brings its code.
    pub kinds: [u64; 7],
    /// Σ dimensions of affine layers.
    pub affine_dims: u64,
    /// Σ dimensions of exp layers.
    pub exp_dims: u64,
    /// Σ dimensions of permutations.
    pub permute_dims: u64,
    /// Σ dimensions of fixed-parameter splines (element-wise, couplings' lower part): they
    /// read their knot tables.
    pub tabled_dims: u64,
    /// Σ dimensions × bins of fixed-parameter splines.
    pub tabled_bins: u64,
    /// Σ dimensions of splines whose parameters a hypernetwork computes.
    pub computed_dims: u64,
    /// Σ dimensions × bins of those.
    pub computed_bins: u64,
    /// Multiply-accumulates of the hypernetworks, for the output rows a spline reads.
    pub macs: u64,
    /// Σ hidden units of the hypernetworks.
    pub hidden_units: u64,
    /// Bytes of knot tables in flash: per fixed spline dimension `4K − 3` (linear) or `3K − 3`
    /// (quadratic) `f32`.
    pub table_bytes: u64,
    /// Layers of the longer chain (`L` of the firmware).
    pub max_layers: u64,
    /// The widest hidden layer (`H`).
    pub max_hidden: u64,
    /// The most bins (`K`, at least 2).
    pub max_bins: u64,
    /// Dimension `D`.
    pub dim: u64,
}

/// One layer as the cost model sees it.
enum Layer<'a> {
    Affine(usize),
    Exp(usize),
    Permute(usize),
    Spline {
        dim: usize,
        bins: usize,
        order: Order,
    },
    /// A coupling (`lower` dims through a fixed spline, `upper` through computed ones) or a
    /// conditional spline (`lower` 0).
    Hyper {
        lower: usize,
        upper: usize,
        input: usize,
        hidden: &'a [usize],
        bins: usize,
        order: Order,
        coupling: bool,
    },
}

impl<'a> Layer<'a> {
    /// The [`Layer::Hyper`] of a stored coupling or conditional spline: `(lower, upper, input)`
    /// dimensions, its hypernetwork's hidden sizes `hs` (copied into `hidden`), its `spline`.
    fn hyper(
        hidden: &'a mut Vec<usize>,
        (lower, upper, input): (usize, usize, usize),
        hs: &Hidden,
        spline: SplineDesc,
        coupling: bool,
    ) -> Self {
        hidden.extend(hs.used().iter().map(|&s| usize::from(s)));
        Layer::Hyper {
            lower,
            upper,
            input,
            hidden,
            bins: spline.bins.into(),
            order: spline.order,
            coupling,
        }
    }
}

impl Features {
    fn add(&mut self, l: &Layer<'_>) {
        match *l {
            Layer::Affine(d) => {
                self.kinds[0] = 1;
                self.affine_dims += d as u64;
            }
            Layer::Exp(d) => {
                self.kinds[1] = 1;
                self.exp_dims += d as u64;
            }
            Layer::Permute(d) => {
                self.kinds[4] = 1;
                self.permute_dims += d as u64;
            }
            Layer::Spline { dim, bins, order } => {
                self.kinds[2] = 1;
                self.tabled(dim, bins, order);
            }
            Layer::Hyper {
                lower,
                upper,
                input,
                hidden,
                bins,
                order,
                coupling,
            } => {
                self.kinds[if coupling { 3 } else { 5 }] = 1;
                self.tabled(lower, bins, order);
                self.spline_order(bins, order);
                self.computed_dims += upper as u64;
                self.computed_bins += (upper * bins) as u64;
                self.macs += read_macs(input, hidden, upper, bins, order) as u64;
                self.hidden_units += hidden.iter().sum::<usize>() as u64;
                self.max_hidden = self
                    .max_hidden
                    .max(hidden.iter().copied().max().unwrap_or(0) as u64);
            }
        }
    }

    fn spline_order(&mut self, bins: usize, order: Order) {
        if order == Order::Quadratic {
            self.kinds[6] = 1;
        }
        self.max_bins = self.max_bins.max(bins as u64);
    }

    fn tabled(&mut self, dim: usize, bins: usize, order: Order) {
        self.spline_order(bins, order);
        self.tabled_dims += dim as u64;
        self.tabled_bins += (dim * bins) as u64;
        let per_dim = match order {
            Order::Linear => 4 * bins - 3,
            Order::Quadratic => 3 * bins - 3,
        };
        self.table_bytes += (4 * dim * per_dim) as u64;
    }

    /// The features of a parsed model file.
    pub fn of_model(m: &Model<'_>) -> Result<Self, flow_core::Error> {
        let h = m.header();
        let mut f = Features {
            file_bytes: m.file_size() as u64,
            dim: u64::from(h.dim),
            ..Self::default()
        };
        let (mut lens, mut hidden) = ([0usize; 2], Vec::new());
        for (i, r) in m.records().enumerate() {
            let r = r?;
            let chain =
                usize::from(h.kind == FlowKind::Joint && i >= usize::from(h.marginal_layers));
            lens[chain] += 1;
            hidden.clear();
            let layer = match r {
                LayerRecord::Affine { dim, .. } => Layer::Affine(dim.into()),
                LayerRecord::Exp { dim } => Layer::Exp(dim.into()),
                LayerRecord::Permute { perm } => Layer::Permute(perm.len()),
                LayerRecord::Spline { dim, spline, .. } => Layer::Spline {
                    dim: dim.into(),
                    bins: spline.bins.into(),
                    order: spline.order,
                },
                LayerRecord::Coupling {
                    split,
                    upper_dim,
                    spline,
                    context,
                    hidden: hs,
                    ..
                } => {
                    let input = usize::from(split) + usize::from(context);
                    let sizes = (split.into(), upper_dim.into(), input);
                    Layer::hyper(&mut hidden, sizes, &hs, spline, true)
                }
                LayerRecord::ConditionalSpline {
                    dim,
                    spline,
                    context,
                    hidden: hs,
                    ..
                } => {
                    let sizes = (0, dim.into(), context.into());
                    Layer::hyper(&mut hidden, sizes, &hs, spline, false)
                }
            };
            f.add(&layer);
        }
        f.finish(h.kind, lens);
        Ok(f)
    }

    /// The features of a model `spec` written as a file of `kind` (`fit` writes a
    /// [`ModelSpec::Joint`] as [`FlowKind::Joint`], or as [`FlowKind::Conditional`] with only
    /// its conditional flow) of `file_bytes` bytes.
    pub fn of_spec(spec: &ModelSpec, kind: FlowKind, file_bytes: u64) -> Self {
        let mut f = Features {
            file_bytes,
            dim: spec.dim() as u64,
            ..Self::default()
        };
        let flows: Vec<&FlowSpec> = match (spec, kind) {
            (ModelSpec::Joint { conditional, .. }, FlowKind::Conditional) => vec![conditional],
            _ => spec.flows(),
        };
        if kind == FlowKind::Conditional {
            f.dim = flows[0].dim as u64;
        }
        let mut lens = [0usize; 2];
        for (chain, fl) in flows.iter().enumerate() {
            lens[chain.min(1)] += fl.layers.len();
            for l in &fl.layers {
                let s = |s: &SplineSpec| (s.bins, s.order);
                let layer = match l {
                    LayerSpec::Affine { .. } => Layer::Affine(fl.dim),
                    LayerSpec::Permute(p) => Layer::Permute(p.len()),
                    LayerSpec::Spline(sp) => Layer::Spline {
                        dim: fl.dim,
                        bins: sp.bins,
                        order: sp.order,
                    },
                    LayerSpec::Coupling {
                        split,
                        hidden,
                        spline,
                    } => Layer::Hyper {
                        lower: *split,
                        upper: fl.dim - split,
                        input: split + fl.context,
                        hidden,
                        bins: s(spline).0,
                        order: s(spline).1,
                        coupling: true,
                    },
                    LayerSpec::ConditionalSpline { hidden, spline } => Layer::Hyper {
                        lower: 0,
                        upper: fl.dim,
                        input: fl.context,
                        hidden,
                        bins: spline.bins,
                        order: spline.order,
                        coupling: false,
                    },
                };
                f.add(&layer);
            }
        }
        f.finish(kind, lens);
        f
    }

    fn finish(&mut self, kind: FlowKind, lens: [usize; 2]) {
        self.joint = u64::from(kind == FlowKind::Joint);
        self.conditional = u64::from(kind == FlowKind::Conditional);
        self.chains = 1 + self.joint;
        self.max_layers = lens[0].max(lens[1]).max(1) as u64;
        self.max_bins = self.max_bins.max(2);
    }

    /// The features as space-separated `name=value` pairs (the measurement table's column).
    pub fn to_tsv(&self) -> String {
        let k = &self.kinds;
        let named = [
            ("chains", self.chains),
            ("conditional", self.conditional),
            ("joint", self.joint),
            ("affine", k[0]),
            ("exp", k[1]),
            ("spline", k[2]),
            ("coupling", k[3]),
            ("permute", k[4]),
            ("cond_spline", k[5]),
            ("quadratic", k[6]),
            ("affine_dims", self.affine_dims),
            ("exp_dims", self.exp_dims),
            ("permute_dims", self.permute_dims),
            ("tabled_dims", self.tabled_dims),
            ("tabled_bins", self.tabled_bins),
            ("computed_dims", self.computed_dims),
            ("computed_bins", self.computed_bins),
            ("macs", self.macs),
            ("hidden_units", self.hidden_units),
            ("table_bytes", self.table_bytes),
            ("L", self.max_layers),
            ("H", self.max_hidden),
            ("K", self.max_bins),
            ("D", self.dim),
        ];
        let pairs: Vec<String> = named.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join(" ")
    }

    /// The cost model's figures.
    pub fn cost(&self) -> DeviceCost {
        let x = |v: u64| v as f64;
        let dot = |c: &[f64], v: &[u64]| -> f64 {
            assert_eq!(c.len(), v.len(), "one coefficient per feature");
            c.iter().zip(v).map(|(c, &v)| c * x(v)).sum()
        };
        // The features `head` followed by the layer kinds present (FLASH's and RAM's tails).
        let with_kinds =
            |head: &[u64]| -> Vec<u64> { head.iter().chain(&self.kinds).copied().collect() };
        let instr = dot(
            &INSTRUCTIONS,
            &[
                1,
                self.chains,
                self.affine_dims,
                self.exp_dims,
                self.permute_dims,
                self.tabled_dims,
                self.tabled_bins,
                self.computed_dims,
                self.computed_bins,
                self.macs,
                self.hidden_units,
                self.conditional,
            ],
        );
        let flash = x(self.file_bytes)
            + x(self.table_bytes)
            + dot(&FLASH, &with_kinds(&[1, self.joint, self.conditional]));
        let ram = dot(
            &RAM,
            &with_kinds(&[
                1,
                self.max_layers * self.chains,
                self.max_hidden,
                self.max_bins,
                self.dim,
                self.joint,
                self.conditional,
            ]),
        );
        let round = |v: f64| v.max(0.0).round() as u64;
        DeviceCost {
            flash_bytes: round(flash),
            ram_bytes: round(ram),
            m4f_instructions: round(instr),
        }
    }
}

impl DeviceCost {
    /// The cost of a parsed model file.
    pub fn of_model(m: &Model<'_>) -> Result<Self, flow_core::Error> {
        Ok(Features::of_model(m)?.cost())
    }

    /// The cost of a model `spec` written as a file of `kind` and `file_bytes` bytes (see
    /// [`Features::of_spec`]).
    pub fn of_spec(spec: &ModelSpec, kind: FlowKind, file_bytes: u64) -> Self {
        Features::of_spec(spec, kind, file_bytes).cost()
    }
}

/// The cost of a model `spec` as `fit` writes it: a plain flow, or the joint; the file's size
/// from encoding it (with a scaler and three thresholds, as `fit` stores them).
pub fn spec_cost(spec: &ModelSpec) -> DeviceCost {
    let kind = match spec {
        ModelSpec::Flow(_) => FlowKind::Plain,
        ModelSpec::Joint { .. } => FlowKind::Joint,
    };
    spec_cost_as(spec, kind)
}

/// [`spec_cost`] for a file of `kind` ([`FlowKind::Conditional`]: only the joint spec's
/// conditional flow is written).
pub fn spec_cost_as(spec: &ModelSpec, kind: FlowKind) -> DeviceCost {
    DeviceCost::of_spec(spec, kind, file_bytes(spec, kind).unwrap_or(0))
}

/// The size of the model file `fit` writes for `spec` (the parameters' values do not change
/// it): the layers, a scaler, column names `x1`, `x2`, … and three thresholds.
pub fn file_bytes(spec: &ModelSpec, kind: FlowKind) -> Result<u64, crate::TrainError> {
    Ok(encode_spec(spec, kind)?.len() as u64)
}

/// A model file for `spec` as [`file_bytes`] sizes it (Pyro-style initial parameters).
fn encode_spec(spec: &ModelSpec, kind: FlowKind) -> Result<Vec<u8>, crate::TrainError> {
    use flow_core::model::ModelBuilder;
    let params = crate::init::init_params(spec, 0);
    let e = crate::export::Exported::new(spec, &params)?;
    let d = spec.dim();
    let (mut b, parts, dim): (ModelBuilder, &[usize], usize) = match (spec, kind) {
        (ModelSpec::Joint { conditional, .. }, FlowKind::Conditional) => (
            ModelBuilder::conditional(conditional.dim, d - conditional.dim),
            &[1],
            conditional.dim,
        ),
        (ModelSpec::Joint { marginal, .. }, _) => {
            (ModelBuilder::joint(d, marginal.dim), &[0, 1], d)
        }
        (ModelSpec::Flow(_), _) => (ModelBuilder::plain(d), &[0], d),
    };
    for (n, &part) in parts.iter().enumerate() {
        if n > 0 {
            b.end_marginal();
        }
        for l in e.layers(part)? {
            b.layer(&l);
        }
    }
    // Column names of the data and the context; the scaler covers the data columns.
    let names: Vec<String> = (1..=d).map(|j| format!("x{j}")).collect();
    b.columns(&names)
        .scaler(&vec![0.0; dim], &vec![1.0; dim])
        .thresholds(&[(0.001, -9.0), (0.01, -7.0), (0.05, -5.0)]);
    b.encode()
        .map_err(|e| crate::TrainError::Export(format!("encoding the model file: {e}")))
}

/// Estimated instructions per `log_prob` on a Cortex-M4F of a model `spec` (plain, or the
/// joint as `fit` writes it), inside the box.
pub fn m4f_instructions(spec: &ModelSpec) -> usize {
    let kind = match spec {
        ModelSpec::Flow(_) => FlowKind::Plain,
        ModelSpec::Joint { .. } => FlowKind::Joint,
    };
    DeviceCost::of_spec(spec, kind, 0).m4f_instructions as usize
}

/// Multiply-accumulates of a hypernetwork `input → hidden → dims` splines, counting only the
/// output rows a spline evaluation reads (all `K` widths and heights, two knot derivatives,
/// and for the linear order one λ: `2K + 3` or `2K + 2` rows per dimension).
fn read_macs(input: usize, hidden: &[usize], dims: usize, bins: usize, order: Order) -> usize {
    let (rows, per_dim) = match order {
        Order::Linear => (2 * bins + 3, 4 * bins - 1),
        Order::Quadratic => (2 * bins + 2, 3 * bins - 1),
    };
    dense_macs(input, hidden, dims * rows.min(per_dim))
}

// The coefficients, as `scripts/fit-cost-model.py` prints them for the table of
// docs/device-cost.md (weighted least squares on relative errors; a linear model, so a
// coefficient is what that feature adds or removes given the others, not a cost of its own).

/// Instructions: 1, chains, affine dims, exp dims, permute dims, tabled spline dims, tabled
/// dims × bins, computed spline dims, computed dims × bins, hypernetwork MACs, hidden units,
/// conditional.
const INSTRUCTIONS: [f64; 12] = [
    -99.848, 332.912, 4.554, 135.437, 144.409, 449.087, 7.109, 1056.752, 249.450, 1.851, 80.836,
    -139.573,
];

/// Flash beyond the model file and the knot tables: 1, joint, conditional, and the layer
/// kinds present (affine, exp, spline, coupling, permute, conditional spline, quadratic).
const FLASH: [f64; 10] = [
    12541.008, 4143.187, 539.194, 671.171, -5188.152, -938.533, 2516.853, 406.946, 205.334, 373.505,
];

/// RAM: 1, layers × chains, `H`, `K`, `D`, joint, conditional, and the layer kinds present.
const RAM: [f64; 14] = [
    936.948, 38.636, 5.823, 9.387, 27.016, 813.252, 129.205, 230.347, -990.250, -407.671, 309.975,
    -45.583, -125.616, -4.840,
];

/// Multiply-accumulates of a DenseNN `input → hidden → output`.
pub fn dense_macs(input: usize, hidden: &[usize], output: usize) -> usize {
    let mut prev = input;
    let mut n = 0;
    for &h in hidden.iter().chain(std::iter::once(&output)) {
        n += prev * h;
        prev = h;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Permutation;

    /// A spec's cost equals that of the file written for it, for every kind `fit` writes.
    #[test]
    fn spec_and_file_agree() {
        let stack = FlowSpec::coupling_stack(
            6,
            4,
            &[8, 8],
            SplineSpec::quadratic(3, 3.5),
            Permutation::Mixing,
        );
        let mut with_affine = stack.clone();
        with_affine.layers.push(LayerSpec::Affine {
            loc: vec![0.0; 6],
            scale: vec![1.0; 6],
            learnable: true,
        });
        let joint = ModelSpec::spline_joint(SplineSpec::linear(10, 4.0), &[8, 8]);
        for (spec, kind) in [
            (ModelSpec::Flow(with_affine), FlowKind::Plain),
            (ModelSpec::tutorial_coupling(2, 16), FlowKind::Plain),
            (joint.clone(), FlowKind::Joint),
            (joint, FlowKind::Conditional),
        ] {
            let bytes = encode_spec(&spec, kind).unwrap();
            let m = Model::parse(&bytes).unwrap();
            assert_eq!(m.header().kind, kind);
            assert_eq!(
                DeviceCost::of_model(&m).unwrap(),
                spec_cost_as(&spec, kind),
                "{kind:?}"
            );
            assert_eq!(
                Features::of_model(&m).unwrap(),
                Features::of_spec(&spec, kind, bytes.len() as u64)
            );
        }
    }

    /// The fitted model on the harness's figures for Pyro's tutorial coupling
    /// (docs/device-cost.md: 10,844 instructions, 22,588 flash bytes, 1,600 RAM bytes), within
    /// 5 % (the figures `fit` sizes its architectures by go through the spec path).
    #[test]
    fn tutorial_coupling_from_its_spec() {
        let close = |est: u64, measured: u64| (est as f64 / measured as f64 - 1.0).abs() < 0.05;
        let c = spec_cost(&ModelSpec::tutorial_coupling(2, 16));
        assert!(close(c.m4f_instructions, 10_844), "{c:?}");
        assert!(close(c.flash_bytes, 22_588), "{c:?}");
        assert!(close(c.ram_bytes, 1_600), "{c:?}");
    }
}
