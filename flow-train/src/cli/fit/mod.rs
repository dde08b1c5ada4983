//! `fit`: data → architecture and settings → training → checks → model file (atomically).
//!
//! * **Data.** A CSV file or built-in circles/moons. `--context-columns` are the context `c` of
//!   a conditional model; `--group-column` (text, not a data column) or `--rows-per-group`
//!   make the groups of the validation split.
//! * **Split and scaler.** The validation split is the library's own
//!   ([`split_indices`]/[`split_groups`] with the run's seed and fraction, so it is exactly the
//!   one training uses); the scaler (mean, population standard deviation; 1 for a constant
//!   column) is fit on the training rows only. Training sees standardized data; the data
//!   columns' scaler is stored in the model, so a device scores raw values with
//!   `Model::log_prob_raw`. A conditional model's context columns are standardized for
//!   training too, and that scaler is then folded into the first layer of every hypernetwork
//!   that reads the context (`W' = W / s`, `b' = b - W m / s`), so the stored model takes the
//!   context in raw units.
//! * **Architecture and settings.** `--flow auto` calls
//!   [`auto_config`]; explicit kinds build the
//!   architecture from `--layers/--bins/--order/--bound/--hidden` and train it with the
//!   automatic settings for that architecture ([`auto_training`]). Options override the
//!   settings.
//! * **Conditional models** train as the library's joint `p(c)·p(x | c)` with an *empty*
//!   flow for `c`: `log p(c)` is then a standard Normal's, constant in the parameters, so the
//!   gradient and the ranking of validation losses are exactly those of `p(x | c)`; only the
//!   conditional flow is stored.
//! * **Validation.** The kept parameters are the best validated ones when the configuration
//!   restores them (`restore_best`: the defaults up to 2-D) and always after `--patience N`
//!   (early stopping keeps the best), otherwise the last ones (the defaults for 3-D and more,
//!   which only measure the validation rows).
//! * **After training**: a run that diverged (non-finite loss) with no validated parameters is
//!   an error and writes nothing; a run whose kept parameters score more than [`DIVERGED`]
//!   nats worse than its initial parameters (the same initialization as training's) too. Otherwise the kept parameters are encoded, parsed back by
//!   flow-core, and scored by flow-core's `f32` code: the reported NLLs and the anomaly
//!   thresholds (log-density quantiles 0.1%, 1%, 5% of the validation rows, or of the
//!   training rows without a split, in the flow's space) come from the file as written.

mod arch;
mod input;
mod model;
mod window;

use super::runtime::Runtime;
use super::table::Table;
use super::{info, FitArgs, FlowArg, OrderArg, PresetArg};
use anyhow::{bail, Context, Result};
use arch::{auto_conditional, describe, explicit_spec, Arch};
use flow_core::model::FlowKind;
use flow_core::Order;
use flow_train::defaults::{auto_config, auto_training, AutoOptions, Preset};
use flow_train::train::{split_groups, split_indices};
use flow_train::{
    train, Dataset, Exported, Isa, ModelSpec, SplineSpec, StopReason, TrainConfig, TrainedModel,
};
use input::{check_ranges, groups, isa, isa_and_time_limit, load, scaler, warn_suspicious};
use model::{builder, fold_context_scaler, progress_bar, report_stored, store, Kind};
use std::ops::ControlFlow;
use std::time::Instant;

/// A run whose kept parameters score this many nats per row worse than its initial
/// parameters has diverged: its model is not written.
pub const DIVERGED: f64 = 1.0;

/// `fit` in stages: the data, the split and scaler, the architecture and settings (and the
/// plan, announced), training, the checks of the run, the model file.
pub fn run(a: &FitArgs, quiet: bool) -> Result<()> {
    if a.window.is_some() {
        return window::run(a, quiet);
    }
    let t0 = Instant::now();
    if super::files::is_std(&a.out) {
        bail!("--out -: fit writes a model file (binary), not to standard output");
    }
    check_ranges(a)?;
    let isa = isa(a.isa)?;
    let input = read(a)?;
    let split = split_and_scale(a, &input)?;
    let choice = choose(a, &input, &split, isa)?;
    announce(a, quiet, &input, &split, &choice, isa)?;
    let m = train_with_progress(quiet, &choice, &split)?;
    check(a, quiet, &choice, &split, &m)?;
    write(a, quiet, &input, &split, &choice, &m)?;
    info!(quiet, "fit took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Stage 1's result: the data's columns, context first (the library's joint layout
/// `[c, x]`), then data.
struct Input {
    table: Table,
    groups: Option<Vec<u32>>,
    /// Rows of `w = c + d` values: context, then data.
    raw: Vec<f32>,
    /// The data columns' names, then the context's.
    names: Vec<String>,
    /// The names in `raw`'s order.
    raw_names: Vec<String>,
    d: usize,
    c: usize,
    w: usize,
    rows: usize,
}

/// Stage 1: the data and its columns.
fn read(a: &FitArgs) -> Result<Input> {
    let table = load(a)?;
    let groups = groups(a, &table)?;
    let rows = table.rows();
    if rows < 2 {
        bail!("{}: {rows} row(s); fitting needs at least 2", table.source);
    }

    // Columns: context first (the library's joint layout `[c, x]`), then data.
    let mut ctx_idx = Vec::new();
    for n in &a.context_columns {
        let j = table.index(n)?;
        if ctx_idx.contains(&j) {
            bail!("--context-columns names `{n}` twice");
        }
        ctx_idx.push(j);
    }
    let group_idx = match &a.group_column {
        Some(g) => Some(table.index(g)?),
        None => None,
    };
    if group_idx.is_some_and(|g| ctx_idx.contains(&g)) {
        bail!("the group column cannot be a context column");
    }
    let data_idx: Vec<usize> = (0..table.columns.len())
        .filter(|j| !ctx_idx.contains(j) && Some(*j) != group_idx)
        .collect();
    let (d, c) = (data_idx.len(), ctx_idx.len());
    if d == 0 {
        bail!("no data columns are left besides the context columns");
    }
    match (a.flow, c > 0) {
        (FlowArg::Conditional, false) => {
            bail!("--flow conditional needs --context-columns (the columns of c in p(x | c))")
        }
        (FlowArg::Spline | FlowArg::Coupling | FlowArg::Joint, true) => {
            bail!("--context-columns needs --flow conditional (or auto)")
        }
        _ => {}
    }
    let explicit_arch = a.layers.is_some()
        || a.bins.is_some()
        || a.order.is_some()
        || a.bound.is_some()
        || a.hidden.is_some();
    if a.flow == FlowArg::Auto && explicit_arch {
        bail!(
            "--layers, --bins, --order, --bound and --hidden describe an explicit --flow \
             (spline, coupling, conditional, joint); --flow auto chooses them itself (size it \
             with --preset or --max-params)"
        );
    }
    if a.flow != FlowArg::Auto && a.preset.is_some() {
        bail!("--preset sizes --flow auto; with an explicit --flow use --layers/--bins/--hidden");
    }
    let w = c + d;
    let mut order: Vec<usize> = ctx_idx.clone();
    order.extend(&data_idx);
    let raw = table.select(&order)?;
    let names: Vec<String> = data_idx
        .iter()
        .chain(&ctx_idx)
        .map(|&j| table.columns[j].clone())
        .collect();
    let raw_names: Vec<String> = order.iter().map(|&j| table.columns[j].clone()).collect();
    Ok(Input {
        table,
        groups,
        raw,
        names,
        raw_names,
        d,
        c,
        w,
        rows,
    })
}

/// Stage 2's result: the validation split and the standardized data.
struct Split {
    val_fraction: f32,
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    /// The scaler of all `w` columns (0 and 1 with `--no-standardize`).
    mean: Vec<f32>,
    scale: Vec<f32>,
    standardize: bool,
    /// All rows, standardized.
    dataset: Dataset,
    /// Their data columns only.
    data_only: Dataset,
}

/// Stage 2: the split the library will make (same function, seed and fraction), then the
/// scaler on the training rows.
fn split_and_scale(a: &FitArgs, input: &Input) -> Result<Split> {
    let (raw, groups, rows) = (&input.raw, &input.groups, input.rows);
    let (d, c, w) = (input.d, input.c, input.w);
    let standardize = !a.no_standardize;
    let val_fraction = match a.val_fraction {
        Some(f) => f,
        None => {
            let probe = Dataset::new(w, raw.clone())?;
            auto_config(&probe, &AutoOptions::default())?
                .1
                .validation_fraction
        }
    };
    if !(0.0..0.9).contains(&val_fraction) {
        bail!("--val-fraction must be in [0, 0.9)");
    }
    let (train_idx, val_idx) = match &groups {
        Some(g) => split_groups(g, val_fraction, a.seed),
        None => split_indices(rows, val_fraction, a.seed),
    };
    if train_idx.is_empty() {
        bail!("no training rows after the validation split");
    }
    let (mean, scale) = if standardize {
        scaler(raw, w, &train_idx)
    } else {
        (vec![0.0; w], vec![1.0; w])
    };
    let data: Vec<f32> = raw
        .chunks_exact(w)
        .flat_map(|r| {
            r.iter()
                .zip(mean.iter().zip(&scale))
                .map(|(&v, (&m, &s))| (v - m) / s)
        })
        .collect();
    let dataset = Dataset::new(w, data)?;
    let data_only = Dataset::new(
        d,
        dataset
            .values()
            .chunks_exact(w)
            .flat_map(|r| r[c..].iter().copied())
            .collect(),
    )?;
    Ok(Split {
        val_fraction,
        train_idx,
        val_idx,
        mean,
        scale,
        standardize,
        dataset,
        data_only,
    })
}

/// Stage 3's result.
struct Choice {
    spec: ModelSpec,
    cfg: TrainConfig,
    kind: Kind,
    device: flow_train::cost::DeviceCost,
}

/// Stage 3: the architecture (`--flow auto` or explicit), the settings, the budgets, the
/// user's training options.
fn choose(a: &FitArgs, input: &Input, split: &Split, isa: Isa) -> Result<Choice> {
    let (d, c) = (input.d, input.c);
    let (data_only, val_fraction, train_idx) =
        (&split.data_only, split.val_fraction, &split.train_idx);
    let groups = input.groups.clone();
    let preset = a.preset.map(|p| match p {
        PresetArg::Tiny => Preset::Tiny,
        PresetArg::Small => Preset::Small,
        PresetArg::Medium => Preset::Medium,
    });
    let budget = match (a.max_params, preset.map(Preset::budget)) {
        (Some(m), Some(p)) => Some(m.min(p)),
        (m, p) => m.or(p),
    };
    let (spec, mut cfg) = if a.flow == FlowArg::Auto && c == 0 {
        auto_config(
            data_only,
            &AutoOptions {
                preset,
                max_params: a.max_params,
                max_instructions: a.max_instructions,
                max_flash_bytes: a.max_flash_bytes,
            },
        )?
    } else {
        let spec = if a.flow == FlowArg::Auto {
            auto_conditional(d, c, budget, a.seed)?
        } else {
            let bins = a.bins.unwrap_or(16);
            let bound = a.bound.unwrap_or(4.0);
            let order = match a.order.unwrap_or(OrderArg::Linear) {
                OrderArg::Linear => Order::Linear,
                OrderArg::Quadratic => Order::Quadratic,
            };
            let arch = Arch {
                layers: a.layers,
                spline: SplineSpec { bins, bound, order },
                hidden: a.hidden.clone().unwrap_or_else(|| vec![32, 32]),
            };
            explicit_spec(a.flow, d, c, &arch, a.seed)?
        };
        let cfg = auto_training(data_only, &spec);
        (spec, cfg)
    };
    spec.validate()?;
    if let Some(max) = budget {
        if spec.param_count() > max {
            bail!(
                "the model has {} parameters, over the limit of {max} (--max-params); a \
                 smaller model: fewer --layers, --bins or --hidden",
                spec.param_count()
            );
        }
    }
    let kind = match (&spec, c) {
        (_, c) if c > 0 => Kind::Conditional(c),
        (ModelSpec::Flow(_), _) => Kind::Plain,
        (ModelSpec::Joint { marginal, .. }, _) => Kind::Joint(marginal.dim),
    };
    let device = flow_train::cost::spec_cost_as(
        &spec,
        match kind {
            Kind::Plain => FlowKind::Plain,
            Kind::Joint(_) => FlowKind::Joint,
            Kind::Conditional(_) => FlowKind::Conditional,
        },
    );
    if let Some(max) = a.max_instructions {
        if device.m4f_instructions > max as u64 {
            bail!(
                "the model needs an estimated {} Cortex-M4F instructions per log_prob, over \
                 the limit of {max}",
                device.m4f_instructions
            );
        }
    }
    if let Some(max) = a.max_flash_bytes {
        if device.flash_bytes > max as u64 {
            bail!(
                "the model needs an estimated {} flash bytes, over the limit of {max}",
                device.flash_bytes
            );
        }
    }

    cfg.seed = a.seed;
    cfg.validation_fraction = val_fraction;
    cfg.groups = groups;
    if let Some(lr) = a.lr {
        cfg.lr = lr;
    }
    if let Some(b) = a.batch_size {
        cfg.batch_size = if b == 0 { None } else { Some(b) };
    }
    if let Some(p) = a.patience {
        // Early stopping ends a run because validation stopped improving: the parameters
        // worth keeping are then the best validated ones, not the last.
        cfg.patience = (p > 0).then_some(p);
        if p > 0 {
            cfg.restore_best = true;
        }
    }
    // Only the user sets a wall-clock limit: with one, a loaded machine stops earlier and
    // writes a different model.
    cfg.max_seconds = a.max_seconds;
    cfg.isa = Some(isa);
    if let Some(s) = a.steps {
        cfg.steps = s;
    }
    if let Some(e) = a.epochs {
        let n = train_idx.len();
        let batch = cfg.batch_size.unwrap_or(n).clamp(1, n);
        cfg.steps = (e * n as f64 / batch as f64).ceil().max(1.0) as usize;
    }
    if cfg.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        bail!("--lr must be a positive number");
    }
    Ok(Choice {
        spec,
        cfg,
        kind,
        device,
    })
}

/// The plan on stderr, and the data's warnings (errors with `--strict`: nothing written).
fn announce(
    a: &FitArgs,
    quiet: bool,
    input: &Input,
    split: &Split,
    choice: &Choice,
    isa: Isa,
) -> Result<()> {
    let (table, names, raw, raw_names, rows) = (
        &input.table,
        &input.names,
        &input.raw,
        &input.raw_names,
        input.rows,
    );
    let (spec, cfg, kind, device) = (&choice.spec, &choice.cfg, choice.kind, &choice.device);
    let (train_idx, val_idx, standardize) = (&split.train_idx, &split.val_idx, split.standardize);
    info!(
        quiet,
        "data: {}: {rows} rows, columns {}",
        table.source,
        names.join(", ")
    );
    info!(quiet, "model: {}", describe(spec, kind));
    info!(quiet, "parameters: {}", spec.param_count());
    // Suspicious data: warnings, or errors with --strict (nothing written).
    warn_suspicious(a, table, raw, raw_names, spec.param_count())?;
    info!(
        quiet,
        "device cost (estimated, Cortex-M4F; docs/device-cost.md): {} instructions per \
         log_prob, {} flash bytes, {} RAM bytes",
        device.m4f_instructions,
        device.flash_bytes,
        device.ram_bytes
    );
    info!(
        quiet,
        "split: {} training rows, {} validation rows{}; {}",
        train_idx.len(),
        val_idx.len(),
        if cfg.groups.is_some() {
            " (whole groups)"
        } else {
            ""
        },
        if standardize {
            "scaler fit on the training rows"
        } else {
            "no scaler"
        }
    );
    info!(
        quiet,
        "training: {} steps, Adam lr {}, batch {}, seed {}, {}",
        cfg.steps,
        cfg.lr,
        cfg.batch_size.map_or("full".to_string(), |b| b.to_string()),
        cfg.seed,
        isa_and_time_limit(a.isa, isa, cfg.max_seconds)
    );
    if !val_idx.is_empty() {
        info!(
            quiet,
            "validation: every {} steps; {}; keeps the {} parameters",
            cfg.eval_every,
            cfg.patience
                .map_or("no early stopping".to_string(), |p| format!(
                    "early stopping after {p} checks without improvement"
                )),
            if cfg.restore_best {
                "best validated"
            } else {
                "last"
            }
        );
    }
    Ok(())
}

/// Stage 4: training, with a progress bar on stderr.
fn train_with_progress(quiet: bool, choice: &Choice, split: &Split) -> Result<TrainedModel> {
    let (spec, cfg, dataset) = (&choice.spec, &choice.cfg, &split.dataset);
    let pb = progress_bar(
        quiet,
        cfg.steps as u64,
        "{elapsed:>4} [{bar:30}] {pos}/{len} steps  {msg}",
    )?;
    let mut best = f64::INFINITY;
    let m = train(spec, cfg, dataset, |p| {
        pb.set_position(p.step as u64);
        if let Some(v) = p.val_loss {
            best = best.min(v);
            pb.set_message(format!(
                "loss {:.3}  validation {v:.3} (best {best:.3})",
                p.loss
            ));
        } else if best.is_infinite() && p.step % 50 == 0 {
            pb.set_message(format!("loss {:.3}", p.loss));
        }
        ControlFlow::Continue(())
    })?;
    pb.finish_and_clear();
    Ok(m)
}

/// Stage 5: how the run stopped, and whether it diverged (then nothing is written).
fn check(a: &FitArgs, quiet: bool, choice: &Choice, split: &Split, m: &TrainedModel) -> Result<()> {
    let (spec, cfg) = (&choice.spec, &choice.cfg);
    let (dataset, train_idx, val_idx) = (&split.dataset, &split.train_idx, &split.val_idx);
    let validated = m.val_losses.iter().any(|(_, v)| v.is_finite());
    let stop = match m.stop {
        StopReason::Completed => "all steps done".to_string(),
        StopReason::EarlyStopped => "early stopping (validation stopped improving)".into(),
        StopReason::TimeLimit => "time limit".into(),
        StopReason::Cancelled => "cancelled".into(),
        StopReason::NonFinite { step } => {
            if !validated {
                bail!(
                    "training diverged: the loss or its gradient became NaN/infinite at step \
                     {step} (learning rate {} too high?), and no validated parameters exist \
                     to fall back on; {} was not written",
                    cfg.lr,
                    a.out.display()
                );
            }
            format!(
                "DIVERGED at step {step} (non-finite loss); keeping the best validated parameters"
            )
        }
    };
    // The engine keeps the best validated parameters when asked to, and after a non-finite
    // loss; otherwise the last ones.
    let restored =
        validated && (cfg.restore_best || matches!(m.stop, StopReason::NonFinite { .. }));
    info!(
        quiet,
        "stopped: {stop}, after {} steps in {:.2} s ({}); kept the parameters of step {} ({})",
        m.steps_done,
        m.seconds,
        m.isa.name(),
        m.kept_step,
        if restored {
            "best validation"
        } else if matches!(m.stop, StopReason::NonFinite { .. }) {
            "last finite step"
        } else {
            "last step"
        }
    );

    // A run whose kept parameters score more than `DIVERGED` nats per row worse than the
    // initialization diverged (with a huge learning rate, clipping and saturating softmaxes
    // can keep every loss finite). A short run may end slightly worse than it started (input
    // noise, Adam's first steps); that is not divergence.
    let check_idx = if val_idx.is_empty() {
        &train_idx
    } else {
        &val_idx
    };
    let check = dataset.select(check_idx);
    // The parameters training started from (the same initialization scheme and seed).
    let init = flow_train::init::initial_params(spec, cfg);
    let nll0 = Exported::new(spec, &init)?.nll::<f32>(check.values())?;
    let nll1 = m.export()?.nll::<f32>(check.values())?;
    if nll1.is_nan() || nll1 > nll0 + DIVERGED {
        bail!(
            "training diverged: the kept parameters score NLL {nll1:.4} on the {} rows, more \
             than {DIVERGED} nats worse than the initial parameters' {nll0:.4} (learning \
             rate {} too high?); {} was not written",
            if val_idx.is_empty() {
                "training"
            } else {
                "validation"
            },
            cfg.lr,
            a.out.display()
        );
    }
    Ok(())
}

/// Stage 6: encode, parse back, score with flow-core's `f32` code, thresholds, write
/// atomically, report; the plots.
fn write(
    a: &FitArgs,
    quiet: bool,
    input: &Input,
    split: &Split,
    choice: &Choice,
    m: &TrainedModel,
) -> Result<()> {
    let (raw, names, w, c, d) = (&input.raw, &input.names, input.w, input.c, input.d);
    let (spec, kind) = (&choice.spec, choice.kind);
    let (train_idx, val_idx, mean, scale, standardize) = (
        &split.train_idx,
        &split.val_idx,
        &split.mean,
        &split.scale,
        split.standardize,
    );
    let mut params = m.params.clone();
    if let Kind::Conditional(c) = kind {
        fold_context_scaler(spec, &mut params, &mean[..c], &scale[..c]);
    }
    let data_scaler = standardize.then(|| (mean[c..].to_vec(), scale[c..].to_vec()));
    let mut b = builder(kind, spec, &params, names, data_scaler.as_ref())?;
    let bytes = b
        .encode()
        .map_err(|e| anyhow::anyhow!("encoding the model: {e}"))?;
    let mut rt = Runtime::new(&bytes).map_err(|e| anyhow::anyhow!("flow-core rejected: {e}"))?;
    let score = |rt: &mut Runtime<'_>, idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .map(|&i| {
                let row = &raw[i * w..(i + 1) * w];
                let x = rt.standardize(&row[c..]);
                rt.log_prob(&x, &row[..c]).unwrap_or(f32::NAN)
            })
            .collect()
    };
    let lp_train = score(&mut rt, train_idx);
    let lp_val = score(&mut rt, val_idx);
    let stored = store(&mut b, &lp_train, &lp_val, &a.out)?;
    let (train_nll, val_nll) = (stored.train_nll, stored.val_nll);
    let log_scale: f64 = data_scaler
        .as_ref()
        .map_or(0.0, |(_, s)| s.iter().map(|&v| (v as f64).ln()).sum());

    let space = if standardize {
        "standardized space"
    } else {
        "data units"
    };
    println!("NLL (flow-core f32, nats per row, {space}): training {train_nll:.4}");
    if !val_idx.is_empty() {
        println!("NLL (flow-core f32, nats per row, {space}): validation {val_nll:.4}");
    }
    if standardize {
        info!(
            quiet,
            "NLL in raw units (+ Σ ln scale = {log_scale:.4}): training {:.4}{}",
            train_nll + log_scale,
            if val_idx.is_empty() {
                String::new()
            } else {
                format!(", validation {:.4}", val_nll + log_scale)
            }
        );
    }
    report_stored(
        quiet,
        &stored,
        ("log p", "rows", space),
        !val_idx.is_empty(),
        &a.out,
        spec.param_count(),
    );
    if let Some(dir) = &a.plots {
        let rt = Runtime::new(&stored.bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let x: Vec<f32> = raw.chunks_exact(w).flat_map(|r| r[c..].to_vec()).collect();
        let cx: Vec<f32> = raw.chunks_exact(w).flat_map(|r| r[..c].to_vec()).collect();
        let name = a.out.file_name().map_or_else(
            || a.out.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let title = super::plot::model_title(&rt, &name);
        let (files, notes) =
            super::plot::draw(rt, &x, &cx, &names[..d], &names[d..], dir, a.seed, &title)
                .context("drawing the plots")?;
        for (f, note) in files.iter().zip(&notes) {
            info!(quiet, "wrote {}", f.display());
            info!(quiet, "{note}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::arch::conditional_spec;
    use super::*;
    use flow_train::export::quantile;

    #[test]
    fn quantiles_match_numpy_linear() {
        let v = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.01) - 1.04).abs() < 1e-6);
        assert_eq!(quantile(&[7.0], 0.05), 7.0);
    }

    #[test]
    fn scaler_is_population_std_and_guards_constants() {
        let v = [1.0f32, 5.0, 3.0, 5.0, 100.0, 5.0];
        let (m, s) = scaler(&v, 2, &[0, 1]);
        assert_eq!((m, s), (vec![2.0, 5.0], vec![1.0, 1.0]));
    }

    /// Folding the context scaler into the first layer gives the same density on raw context
    /// as the unfolded model on standardized context.
    #[test]
    fn folded_context_scaler_is_exact() {
        let spec = conditional_spec(2, 2, 1, &[5], SplineSpec::linear(4, 3.0), 1);
        let mut p = flow_train::init::init_params(&spec, 3);
        // Make the hypernetworks' outputs matter.
        p.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += 0.1 * ((i % 7) as f32 - 3.0));
        let (mean, scale) = (vec![10.0f32, -3.0], vec![4.0f32, 0.5]);
        let mut folded = p.clone();
        fold_context_scaler(&spec, &mut folded, &mean, &scale);
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let b0 = builder(Kind::Conditional(2), &spec, &p, &names, None).unwrap();
        let b1 = builder(Kind::Conditional(2), &spec, &folded, &names, None).unwrap();
        let (y0, y1) = (b0.encode().unwrap(), b1.encode().unwrap());
        let (mut r0, mut r1) = (Runtime::new(&y0).unwrap(), Runtime::new(&y1).unwrap());
        for (x, c) in [([0.1f32, -0.4], [12.0f32, -2.5]), ([1.5, 0.7], [3.0, -3.9])] {
            let cs = [(c[0] - mean[0]) / scale[0], (c[1] - mean[1]) / scale[1]];
            let (a, b) = (r0.log_prob(&x, &cs).unwrap(), r1.log_prob(&x, &c).unwrap());
            assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
