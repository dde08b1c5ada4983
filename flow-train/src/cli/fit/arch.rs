//! Stage 3 of `fit`: the architectures of an explicit `--flow` and of conditional models, and
//! the model in words.

use super::super::FlowArg;
use super::model::Kind;
use anyhow::{bail, Result};
use flow_core::Order;
use flow_train::{FlowSpec, LayerSpec, ModelSpec, Permutation, SplineSpec};

/// Architecture options of an explicit `--flow`.
pub(super) struct Arch {
    pub(super) layers: Option<usize>,
    pub(super) spline: SplineSpec,
    pub(super) hidden: Vec<usize>,
}

/// Explicit architectures. `d` data columns, `c` context columns.
pub(super) fn explicit_spec(
    flow: FlowArg,
    d: usize,
    c: usize,
    arch: &Arch,
    seed: u64,
) -> Result<ModelSpec> {
    let s = arch.spline;
    let h = arch.hidden.clone();
    let n = |default: usize| -> Result<usize> {
        match arch.layers {
            Some(0) => bail!("--layers must be at least 1"),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    Ok(match flow {
        FlowArg::Spline => ModelSpec::Flow(FlowSpec {
            dim: d,
            context: 0,
            layers: vec![LayerSpec::Spline(s); n(1)?],
        }),
        FlowArg::Coupling => {
            if d < 2 {
                bail!("--flow coupling needs at least 2 data columns (found {d})");
            }
            let perm = if d == 2 {
                Permutation::Reverse
            } else {
                Permutation::Random(seed)
            };
            ModelSpec::Flow(FlowSpec::coupling_stack(d, n(4)?, &h, s, perm))
        }
        FlowArg::Joint => {
            if d < 2 {
                bail!("--flow joint models p(x1)·p(x2|x1): it needs at least 2 data columns");
            }
            ModelSpec::Joint {
                marginal: FlowSpec::spline(1, s),
                conditional: FlowSpec {
                    dim: d - 1,
                    context: 1,
                    layers: vec![
                        LayerSpec::ConditionalSpline {
                            hidden: h,
                            spline: s,
                        };
                        n(1)?
                    ],
                },
            }
        }
        FlowArg::Conditional => conditional_spec(d, c, n(if d == 1 { 1 } else { 2 })?, &h, s, seed),
        FlowArg::Auto => unreachable!("auto is resolved by the caller"),
    })
}

/// `p(x | c)` as the library's joint `p(c)·p(x | c)` with an empty flow for `c`: for `d = 1`,
/// `layers` conditional splines; for `d >= 2`, a conditional spline, then `layers`
/// conditional couplings with permutations between them.
pub(super) fn conditional_spec(
    d: usize,
    c: usize,
    layers: usize,
    hidden: &[usize],
    s: SplineSpec,
    seed: u64,
) -> ModelSpec {
    let cond = LayerSpec::ConditionalSpline {
        hidden: hidden.to_vec(),
        spline: s,
    };
    let (mut layers, couplings) = if d == 1 {
        (vec![cond; layers], 0)
    } else {
        (vec![cond], layers)
    };
    if couplings > 0 {
        let perm = if d == 2 {
            Permutation::Reverse
        } else {
            Permutation::Random(seed)
        };
        layers.extend(FlowSpec::coupling_stack(d, couplings, hidden, s, perm).layers);
    }
    ModelSpec::Joint {
        marginal: FlowSpec {
            dim: c,
            context: 0,
            layers: Vec::new(),
        },
        conditional: FlowSpec {
            dim: d,
            context: c,
            layers,
        },
    }
}

/// `--flow auto` with context columns: the largest of a ladder of conditional models (spline
/// bins, hidden sizes) within `budget` parameters; the first, without a budget, is the
/// default (K = 32, hidden [32, 32]). `d = 1`: one conditional spline; more: a conditional
/// spline and 2 conditional couplings.
pub(super) fn auto_conditional(
    d: usize,
    c: usize,
    budget: Option<usize>,
    seed: u64,
) -> Result<ModelSpec> {
    let layers = if d == 1 { 1 } else { 2 };
    let ladder: [(usize, &[usize]); 12] = [
        (32, &[32, 32]),
        (32, &[24, 24]),
        (24, &[24, 24]),
        (16, &[24, 24]),
        (16, &[16, 16]),
        (16, &[12, 12]),
        (12, &[12, 12]),
        (8, &[8, 8]),
        (8, &[8]),
        (8, &[4]),
        (4, &[4]),
        (4, &[2]),
    ];
    let spec = |(k, h): (usize, &[usize])| {
        conditional_spec(d, c, layers, h, SplineSpec::linear(k, 4.0), seed)
    };
    let limit = budget.unwrap_or(usize::MAX);
    match ladder
        .iter()
        .map(|&r| spec(r))
        .find(|s| s.param_count() <= limit)
    {
        Some(s) => Ok(s),
        None => bail!(
            "no conditional model of {d} data and {c} context column(s) fits in {limit} \
             parameters (the smallest has {})",
            spec(ladder[ladder.len() - 1]).param_count()
        ),
    }
}

/// A flow's layers in words, `→`-separated.
pub(super) fn list(f: &FlowSpec) -> String {
    let layer = |l: &LayerSpec| -> String {
        let s = |s: &SplineSpec| {
            format!(
                "K={} B={} {}",
                s.bins,
                s.bound,
                if s.order == Order::Linear {
                    "linear"
                } else {
                    "quadratic"
                }
            )
        };
        match l {
            LayerSpec::Spline(sp) => format!("spline({})", s(sp)),
            LayerSpec::Coupling { hidden, spline, .. } => {
                format!("coupling({}, hidden {hidden:?})", s(spline))
            }
            LayerSpec::ConditionalSpline { hidden, spline } => {
                format!("conditional_spline({}, hidden {hidden:?})", s(spline))
            }
            LayerSpec::Permute(p) => format!("permute{p:?}"),
            LayerSpec::Affine { .. } => "affine".into(),
        }
    };
    f.layers.iter().map(layer).collect::<Vec<_>>().join(" → ")
}

pub(super) fn describe(spec: &ModelSpec, kind: Kind) -> String {
    match (spec, kind) {
        (ModelSpec::Flow(f), _) => format!("plain flow on {} dims: {}", f.dim, list(f)),
        (ModelSpec::Joint { conditional, .. }, Kind::Conditional(c)) => format!(
            "conditional flow p(x | c), x: {} dims, c: {c}: {}",
            conditional.dim,
            list(conditional)
        ),
        (
            ModelSpec::Joint {
                marginal,
                conditional,
            },
            _,
        ) => format!(
            "joint p(x1)·p(x2|x1), x1: {} dims: [{}] · [{}]",
            marginal.dim,
            list(marginal),
            list(conditional)
        ),
    }
}
