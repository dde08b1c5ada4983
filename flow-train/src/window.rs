//! Windows of consecutive readings: the density of `W` readings of one recording as
//! `p(x_1) · Π_{t=2..W} p(x_t | x_{t-1})`, one joint flow of two readings (see
//! `flow_core::stream` for the model and how a device scores it).
//!
//! The two parts train separately — the marginal `p(x)` on every reading, with the automatic
//! settings of a plain model ([`auto_config`]); the conditional `p(x_t | x_{t-1})` on every
//! pair of consecutive readings of a recording ([`pairs`]) — on two threads, each seeded, so
//! the result does not depend on the machine's load. They are then one
//! [`ModelSpec::Joint`] whose parameters are the marginal's followed by the conditional's.
//!
//! Why this factorization, and the measurements behind the defaults: `docs/streams.md`.

use crate::defaults::{auto_config, auto_training, AutoOptions};
use crate::spec::{FlowSpec, LayerSpec, ModelSpec, Permutation, SplineSpec};
use crate::train::{train, Progress, TrainedModel};
use crate::TrainConfig;
use crate::{Dataset, Exported, TrainError};
use flow_core::model::ModelBuilder;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Conditional layers after the conditional spline: conditional couplings.
pub const COUPLINGS: usize = 3;
/// Bins of the conditional's splines (quadratic order).
pub const BINS: usize = 4;
/// Bound of the conditional's splines, in standard deviations.
pub const BOUND: f32 = 4.0;
/// Training steps of the conditional.
pub const STEPS: usize = 4_000;
/// The conditional's hypernetwork sizes, largest first: the first within the budget is
/// taken.
pub const HIDDEN_LADDER: [&[usize]; 5] = [&[16, 16], &[12, 12], &[8, 8], &[6, 6], &[4]];
/// The default device budget of one new reading (the marginal plus the conditional), in
/// estimated Cortex-M4F instructions: the 100,000 less a margin for the cost model's
/// error and the window's own work.
pub const DEFAULT_MAX_INSTRUCTIONS: u64 = 92_000;

/// `[x_{t-1} | x_t]` for every two consecutive rows of `readings` with the same group id
/// (`groups[i]` for row `i`; a change of id starts a recording), in order.
pub fn pairs(readings: &Dataset, groups: &[u32]) -> Result<Dataset, TrainError> {
    let d = readings.dim();
    if groups.len() != readings.len() {
        return Err(TrainError::Data(format!(
            "{} group ids for {} rows",
            groups.len(),
            readings.len()
        )));
    }
    let mut v = Vec::with_capacity(readings.len() * 2 * d);
    for t in 1..readings.len() {
        if groups[t] == groups[t - 1] {
            v.extend_from_slice(readings.row(t - 1));
            v.extend_from_slice(readings.row(t));
        }
    }
    Dataset::new(2 * d, v)
}

/// The two parts' architectures and settings.
#[derive(Clone, Debug)]
pub struct WindowConfig {
    /// `p(x)` (a plain flow on `d`) and its settings.
    pub marginal: (FlowSpec, TrainConfig),
    /// `p(x_t | x_{t-1})` (a flow on `d` with context `d`) and its settings (for the pairs).
    pub conditional: (FlowSpec, TrainConfig),
}

impl WindowConfig {
    /// The joint flow of two readings the parts make.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec::Joint {
            marginal: self.marginal.0.clone(),
            conditional: self.conditional.0.clone(),
        }
    }

    /// The conditional as the library trains it: the joint `p(c)·p(x | c)` with an empty
    /// flow for `c`, whose `log p(c)` is constant in the parameters.
    fn conditional_as_joint(&self) -> ModelSpec {
        let c = &self.conditional.0;
        ModelSpec::Joint {
            marginal: FlowSpec {
                dim: c.context,
                context: 0,
                layers: Vec::new(),
            },
            conditional: c.clone(),
        }
    }
}

/// The conditional `p(x_t | x_{t-1})` on `d` dimensions: a conditional spline, then
/// [`COUPLINGS`] conditional couplings with seeded random permutations between them, every
/// hypernetwork `hidden`.
pub fn conditional_spec(d: usize, hidden: &[usize], seed: u64) -> FlowSpec {
    let s = SplineSpec::quadratic(BINS, BOUND);
    let mut layers = vec![LayerSpec::ConditionalSpline {
        hidden: hidden.to_vec(),
        spline: s,
    }];
    if d >= 2 {
        let perm = if d == 2 {
            Permutation::Reverse
        } else {
            Permutation::Random(seed)
        };
        layers.extend(FlowSpec::coupling_stack(d, COUPLINGS, hidden, s, perm).layers);
    }
    FlowSpec {
        dim: d,
        context: d,
        layers,
    }
}

/// The automatic architecture and settings for `readings` (standardized) and their `pairs`:
/// the marginal is [`auto_config`]'s plain model with `opts`; the conditional the largest of
/// [`HIDDEN_LADDER`] that keeps the parameter budget (`max_params`, the preset's) and the
/// device budget of one new reading (`max_instructions`, else
/// [`DEFAULT_MAX_INSTRUCTIONS`]; `max_flash_bytes`), estimated by [`crate::cost`].
pub fn auto_window(
    readings: &Dataset,
    pairs: &Dataset,
    opts: &AutoOptions,
    seed: u64,
) -> Result<WindowConfig, TrainError> {
    let d = readings.dim();
    if pairs.dim() != 2 * d {
        return Err(TrainError::Data(format!(
            "pairs of {} columns for readings of {d}",
            pairs.dim()
        )));
    }
    if pairs.is_empty() {
        return Err(TrainError::Data(
            "no two consecutive readings of one recording: a window needs at least 2".into(),
        ));
    }
    let max_params = match (opts.max_params, opts.preset.map(|p| p.budget())) {
        (Some(m), Some(p)) => Some(m.min(p)),
        (m, p) => m.or(p),
    };
    let max_instr = opts
        .max_instructions
        .map_or(DEFAULT_MAX_INSTRUCTIONS, |m| m as u64);
    let fits = |m: &FlowSpec, c: &FlowSpec| {
        let joint = ModelSpec::Joint {
            marginal: m.clone(),
            conditional: c.clone(),
        };
        let cost = crate::cost::spec_cost_as(&joint, flow_core::model::FlowKind::Joint);
        max_params.is_none_or(|p| joint.param_count() <= p)
            && cost.m4f_instructions <= max_instr
            && opts
                .max_flash_bytes
                .is_none_or(|f| cost.flash_bytes <= f as u64)
    };
    // The marginal is a plain model's default, given a third of any parameter or flash
    // budget and half of an instruction budget; the rest is the conditional's.
    let share = |m: Option<usize>, k: usize| m.map(|m| m / k);
    let marginal_opts = AutoOptions {
        preset: opts.preset,
        max_params: share(max_params, 3),
        max_instructions: share(opts.max_instructions, 2),
        max_flash_bytes: share(opts.max_flash_bytes, 3),
    };
    let (marginal, mcfg) = auto_config(readings, &marginal_opts)?;
    let ModelSpec::Flow(marginal) = marginal else {
        return Err(TrainError::Data(
            "a window needs readings of at least 3 values".into(),
        ));
    };
    let Some(cond) = HIDDEN_LADDER
        .iter()
        .map(|h| conditional_spec(d, h, seed))
        .find(|c| fits(&marginal, c))
    else {
        return Err(TrainError::Data(format!(
            "no windowed model of {d}-value readings fits the budget ({}{max_instr} estimated \
             instructions per reading)",
            max_params.map_or(String::new(), |p| format!("{p} parameters, "))
        )));
    };
    let x_t = Dataset::new(
        d,
        pairs
            .values()
            .chunks_exact(2 * d)
            .flat_map(|r| r[d..].iter().copied())
            .collect(),
    )?;
    let as_joint = ModelSpec::Joint {
        marginal: FlowSpec {
            dim: d,
            context: 0,
            layers: Vec::new(),
        },
        conditional: cond.clone(),
    };
    let mut ccfg = auto_training(&x_t, &as_joint);
    ccfg.steps = STEPS;
    Ok(WindowConfig {
        marginal: (marginal, mcfg),
        conditional: (cond, ccfg),
    })
}

/// The trained parts.
pub struct TrainedWindow {
    /// The marginal's run.
    pub marginal: TrainedModel,
    /// The conditional's run (trained as [`WindowConfig`]'s joint with an empty `p(c)`).
    pub conditional: TrainedModel,
    /// The joint flow of two readings ([`WindowConfig::spec`]).
    pub spec: ModelSpec,
    /// Its parameters: the marginal's, then the conditional's.
    pub params: Vec<f32>,
}

impl TrainedWindow {
    /// The model file's writer: the joint flow of two readings with the readings' column
    /// `names`, the scaler `(mean, scale)` of one reading (stored for both halves), and the
    /// window `w` with its grouping (`rows_per_group` or `group_column`; see
    /// [`ModelBuilder::window`]). Thresholds are the caller's.
    pub fn model(
        &self,
        names: &[String],
        (mean, scale): (&[f32], &[f32]),
        w: usize,
        (rows_per_group, group_column): (Option<usize>, Option<&str>),
    ) -> Result<ModelBuilder, TrainError> {
        let d = names.len();
        let e = Exported::new(&self.spec, &self.params)?;
        let mut b = ModelBuilder::joint(2 * d, d);
        for l in e.layers(0)? {
            b.layer(&l);
        }
        b.end_marginal();
        for l in e.layers(1)? {
            b.layer(&l);
        }
        b.columns(names)
            .scaler(&[mean, mean].concat(), &[scale, scale].concat())
            .window(w, rows_per_group, group_column);
        Ok(b)
    }
}

/// Trains both parts of `cfg`, each on its own thread: the marginal on `readings`, the
/// conditional on `pairs` (both standardized). `progress` hears the steps done by both
/// together after every step of either. Each run is seeded by its configuration, so the
/// result is the same whatever the threads' timing.
pub fn train_window(
    cfg: &WindowConfig,
    readings: &Dataset,
    pairs: &Dataset,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<TrainedWindow, TrainError> {
    let done = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let report = |part: usize, p: &Progress| {
        done[part].store(p.step, Ordering::Relaxed);
        progress(done[0].load(Ordering::Relaxed) + done[1].load(Ordering::Relaxed));
        ControlFlow::Continue(())
    };
    let marginal_spec = ModelSpec::Flow(cfg.marginal.0.clone());
    let conditional_spec = cfg.conditional_as_joint();
    let (m, c) = std::thread::scope(|s| {
        let m = s.spawn(|| train(&marginal_spec, &cfg.marginal.1, readings, |p| report(0, p)));
        let c = train(&conditional_spec, &cfg.conditional.1, pairs, |p| {
            report(1, p)
        });
        (m.join(), c)
    });
    let m = m.map_err(|_| TrainError::Data("the marginal's training thread panicked".into()))??;
    let c = c?;
    let mut params = m.params.clone();
    params.extend_from_slice(&c.params);
    Ok(TrainedWindow {
        marginal: m,
        conditional: c,
        spec: cfg.spec(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_stay_inside_recordings() {
        let r = Dataset::new(1, vec![1.0, 2.0, 3.0, 10.0, 11.0]).unwrap();
        let p = pairs(&r, &[0, 0, 0, 1, 1]).unwrap();
        assert_eq!(p.values(), &[1.0, 2.0, 2.0, 3.0, 10.0, 11.0]);
        assert!(pairs(&r, &[0, 0]).is_err());
    }

    #[test]
    fn the_conditional_counts_its_parameters() {
        let c = conditional_spec(6, &[16, 16], 1);
        // The configuration measured in docs/streams.md.
        assert_eq!(c.param_count(), 4_584);
        assert_eq!(c.layers.len(), 1 + COUPLINGS + (COUPLINGS - 1));
    }
}
