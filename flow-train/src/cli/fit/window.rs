//! `fit --window W`: a model of windows of `W` consecutive readings of one recording, in
//! named stages — load, recordings and split, scaler, architecture, training (both parts on
//! two threads), check, write.
//!
//! * **Recordings.** `--rows-per-group N` or `--group-column NAME` say where a recording ends
//!   (its rows consecutive, in time order); neither: the file is one recording. The rule is
//!   stored in the model, and `eval` uses it unless told otherwise.
//! * **Split.** Whole recordings are held out for validation (the library's `split_groups`
//!   with the run's seed and fraction); the scaler (mean, population standard deviation) is fit
//!   on the training recordings' readings.
//! * **Model.** [`flow_train::window`]: the marginal `p(x)` (a plain model's defaults) and
//!   the conditional `p(x_t | x_{t-1})`, trained on two threads, stored as one joint flow of
//!   two readings with the window, the grouping and the scaler (both halves the readings').
//! * **Check and write.** The file is parsed back and every reading's window of the training
//!   and validation recordings is scored by flow-core's `WindowScorer` (the device's code): the
//!   reported NLLs (nats per window, raw units) and the anomaly thresholds (quantiles of the
//!   validation windows' log-densities, raw units) come from the file as written.

use super::super::runtime::Runtime;
use super::super::windows::{self, Rule};
use super::super::{info, FitArgs, FlowArg, PresetArg};
use super::input::{check_ranges, isa, isa_and_time_limit, load, scaler, warn_suspicious};
use super::model::{progress_bar, report_stored, store};
use anyhow::{bail, Result};
use flow_train::defaults::{AutoOptions, Preset};
use flow_train::train::split_groups;
use flow_train::window::{auto_window, pairs, train_window, WindowConfig};
use flow_train::{Dataset, TrainConfig};
use std::time::Instant;

/// Options that describe something else than a windowed model's automatic architecture.
fn refuse_other_options(a: &FitArgs) -> Result<()> {
    let w = a.window.unwrap_or(0);
    if w < 2 {
        bail!("--window must be at least 2 readings (got {w}); without --window, fit models single rows");
    }
    if w > windows::MAX_WINDOW {
        bail!(
            "--window must be at most {} readings (got {w})",
            windows::MAX_WINDOW
        );
    }
    if matches!(a.data.as_str(), "circles" | "moons") {
        bail!("--window needs a CSV file of readings in time order (built-in data have no time)");
    }
    let explicit = a.layers.is_some()
        || a.bins.is_some()
        || a.order.is_some()
        || a.bound.is_some()
        || a.hidden.is_some()
        || a.flow != FlowArg::Auto;
    if explicit {
        bail!(
            "--window chooses its architecture itself (a joint flow of two readings: \
             docs/streams.md); size it with --preset, --max-params or --max-instructions, not \
             --flow/--layers/--bins/--order/--bound/--hidden"
        );
    }
    if !a.context_columns.is_empty() {
        bail!("--window models readings given their predecessors: it takes no --context-columns");
    }
    if a.epochs.is_some() || a.patience.is_some() {
        bail!("--epochs and --patience are not available with --window (use --steps)");
    }
    if a.plots.is_some() {
        bail!("--plots draws single rows: it is not available with --window");
    }
    if a.no_standardize {
        bail!("--window always fits a scaler (the readings' columns are standardized)");
    }
    Ok(())
}

/// The user's training options on one part's settings.
fn apply(a: &FitArgs, cfg: &mut TrainConfig, isa: flow_train::Isa) -> Result<()> {
    cfg.seed = a.seed;
    // The split is made here, by recordings: the parts train on the training recordings only.
    cfg.validation_fraction = 0.0;
    cfg.groups = None;
    cfg.max_seconds = a.max_seconds;
    cfg.isa = Some(isa);
    if let Some(lr) = a.lr {
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--lr must be a positive number");
        }
        cfg.lr = lr;
    }
    if let Some(b) = a.batch_size {
        cfg.batch_size = if b == 0 { None } else { Some(b) };
    }
    if let Some(s) = a.steps {
        if s == 0 {
            bail!("--steps must be at least 1");
        }
        cfg.steps = s;
    }
    Ok(())
}

pub fn run(a: &FitArgs, quiet: bool) -> Result<()> {
    let t0 = Instant::now();
    refuse_other_options(a)?;
    check_ranges(a)?;
    if super::super::files::is_std(&a.out) {
        bail!("--out -: fit writes a model file (binary), not to standard output");
    }
    let window = a.window.unwrap_or(2);
    let isa = isa(a.isa)?;

    // Load: the readings are every column but the group column.
    let table = load(a)?;
    let rule = Rule::of(a.rows_per_group, a.group_column.as_deref())?;
    let group_idx = rule.column(&table)?;
    let data_idx: Vec<usize> = (0..table.columns.len())
        .filter(|&j| Some(j) != group_idx)
        .collect();
    let d = data_idx.len();
    if d == 0 {
        bail!(
            "{}: no reading columns besides the group column",
            table.source
        );
    }
    if 2 * d > u16::MAX as usize || d > windows::MAX_READING {
        bail!(
            "readings of at most {} values are supported (found {d})",
            windows::MAX_READING
        );
    }
    let raw = table.select(&data_idx)?;
    let names: Vec<String> = data_idx.iter().map(|&j| table.columns[j].clone()).collect();
    let ids = rule.ids(&table)?;
    let rows = table.rows();

    // Recordings and split: whole recordings are held out.
    let recordings = ids.last().map_or(0, |&l| l as usize + 1);
    let val_fraction = a.val_fraction.unwrap_or(0.1);
    if !(0.0..0.9).contains(&val_fraction) {
        bail!("--val-fraction must be in [0, 0.9)");
    }
    let (train_idx, val_idx) = split_groups(&ids, val_fraction, a.seed);
    if train_idx.is_empty() {
        bail!("no training recordings after the validation split");
    }

    // Scaler on the training readings; the standardized training readings and their pairs.
    let (mean, scale) = scaler(&raw, d, &train_idx);
    let standardized = |idx: &[usize]| -> Result<Dataset> {
        let v = idx
            .iter()
            .flat_map(|&i| {
                raw[i * d..(i + 1) * d]
                    .iter()
                    .zip(mean.iter().zip(&scale))
                    .map(|(&v, (&m, &s))| (v - m) / s)
            })
            .collect();
        Ok(Dataset::new(d, v)?)
    };
    let readings = standardized(&train_idx)?;
    let train_ids: Vec<u32> = train_idx.iter().map(|&i| ids[i]).collect();
    let pair_data = pairs(&readings, &train_ids)?;

    // Architecture and settings.
    let opts = AutoOptions {
        preset: a.preset.map(|p| match p {
            PresetArg::Tiny => Preset::Tiny,
            PresetArg::Small => Preset::Small,
            PresetArg::Medium => Preset::Medium,
        }),
        max_params: a.max_params,
        max_instructions: a.max_instructions,
        max_flash_bytes: a.max_flash_bytes,
    };
    let mut cfg: WindowConfig = auto_window(&readings, &pair_data, &opts, a.seed)?;
    apply(a, &mut cfg.marginal.1, isa)?;
    apply(a, &mut cfg.conditional.1, isa)?;
    let spec = cfg.spec();
    spec.validate()?;
    let cost = flow_train::cost::spec_cost_as(&spec, flow_core::model::FlowKind::Joint);

    info!(
        quiet,
        "data: {}: {rows} readings of {d} values ({}), {}: {recordings} recording(s)",
        table.source,
        names.join(", "),
        rule.describe()
    );
    info!(
        quiet,
        "model: windows of {window} readings as p(x_1)·Π p(x_t | x_t-1): marginal [{}] · \
         conditional [{}]",
        super::arch::list(&cfg.marginal.0),
        super::arch::list(&cfg.conditional.0)
    );
    info!(
        quiet,
        "parameters: {} (marginal {}, conditional {})",
        spec.param_count(),
        cfg.marginal.0.param_count(),
        cfg.conditional.0.param_count()
    );
    // Suspicious data: warnings, or errors with --strict (nothing written).
    warn_suspicious(a, &table, &raw, &names, spec.param_count())?;
    info!(
        quiet,
        "device cost (estimated, Cortex-M4F; docs/device-cost.md): {} instructions per new \
         reading, {} flash bytes, {} RAM bytes",
        cost.m4f_instructions,
        cost.flash_bytes,
        cost.ram_bytes
    );
    info!(
        quiet,
        "split: {} training readings ({} pairs), {} validation readings (whole recordings); \
         scaler fit on the training readings",
        train_idx.len(),
        pair_data.len(),
        val_idx.len()
    );
    info!(
        quiet,
        "training: marginal {} steps, conditional {} steps, on two threads; Adam lr {}/{}, \
         batch {}, seed {}, {}",
        cfg.marginal.1.steps,
        cfg.conditional.1.steps,
        cfg.marginal.1.lr,
        cfg.conditional.1.lr,
        cfg.marginal
            .1
            .batch_size
            .map_or("full".to_string(), |b| b.to_string()),
        a.seed,
        isa_and_time_limit(a.isa, isa, a.max_seconds)
    );

    // Training, both parts at once.
    let total = (cfg.marginal.1.steps + cfg.conditional.1.steps) as u64;
    let pb = progress_bar(quiet, total, "{elapsed:>4} [{bar:30}] {pos}/{len} steps")?;
    let trained = train_window(&cfg, &readings, &pair_data, &|n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    for (part, m) in [
        ("marginal", &trained.marginal),
        ("conditional", &trained.conditional),
    ] {
        if let flow_train::StopReason::NonFinite { step } = m.stop {
            bail!(
                "training diverged: the {part}'s loss became NaN/infinite at step {step} \
                 (learning rate too high?); {} was not written",
                a.out.display()
            );
        }
        info!(
            quiet,
            "{part}: {} steps in {:.2} s", m.steps_done, m.seconds
        );
    }

    // Encode, parse back, score every window with flow-core's WindowScorer.
    let grouping = match &rule {
        Rule::One => (None, None),
        Rule::RowsPerGroup(n) => (Some(*n), None),
        Rule::Column(c) => (None, Some(c.as_str())),
    };
    let mut b = trained.model(&names, (&mean, &scale), window, grouping)?;
    let bytes = b
        .encode()
        .map_err(|e| anyhow::anyhow!("encoding the model: {e}"))?;
    let mut rt = Runtime::new(&bytes).map_err(|e| anyhow::anyhow!("flow-core rejected: {e}"))?;
    let mut windows_of = |idx: &[usize]| -> Result<Vec<f32>> {
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| raw[i * d..(i + 1) * d].to_vec())
            .collect();
        let g: Vec<u32> = idx.iter().map(|&i| ids[i]).collect();
        // A reading's error names its row of the file, not of the subset.
        Ok(windows::score(&mut rt, &x, &g, &|i| idx[i])
            .map_err(|e| e.context(table.source.clone()))?
            .into_iter()
            .flatten()
            .collect())
    };
    let lp_train = windows_of(&train_idx)?;
    let lp_val = windows_of(&val_idx)?;
    if lp_train.is_empty() {
        bail!(
            "no training recording has {window} readings: no window to score (a shorter \
             --window, or longer recordings)"
        );
    }
    let stored = store(&mut b, &lp_train, &lp_val, &a.out)?;
    let (train_nll, val_nll) = (stored.train_nll, stored.val_nll);

    println!(
        "NLL (flow-core f32, nats per window of {window}, raw units): training {train_nll:.4} \
         ({} windows)",
        lp_train.len()
    );
    if !lp_val.is_empty() {
        println!(
            "NLL (flow-core f32, nats per window of {window}, raw units): validation \
             {val_nll:.4} ({} windows)",
            lp_val.len()
        );
    }
    report_stored(
        quiet,
        &stored,
        ("window log p", "windows", "raw units"),
        !lp_val.is_empty(),
        &a.out,
        spec.param_count(),
    );
    info!(quiet, "fit took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
