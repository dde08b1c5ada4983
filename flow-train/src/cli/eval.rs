//! `eval`: mean NLL of a CSV under a model, per-row log-densities, anomaly AUROC.
//!
//! Values are RAW units by default: when the model stores a scaler, each row is standardized
//! with it and the log-density is `log_prob_raw` (the scaler's Jacobian `-Σ ln scale` added),
//! so it is a density of the raw values. `--standardized` scores values that are already in
//! the flow's space (no scaler applied, no Jacobian). The last line of stdout is
//! `nll <value>` (nats per row); with `--anomalies` it is preceded by `auroc <value>`.
//! `--json` prints the same figures (and the threshold counts) as one JSON object instead;
//! `--per-row -` writes the per-row CSV to stdout and the figures to stderr.

use super::files::is_std;
use super::runtime::Runtime;
use super::table::{read_csv_on, write_csv, Table};
use super::{info, model_error, model_inputs, one_stdin, read_model, EvalArgs};
use anyhow::{bail, Result};
use serde_json::json;

/// Each row's log-density (raw units unless `standardized`), or flow-core's error for it, on
/// `threads` threads (`None`: every core) through flow-core's compiled flows with their knot
/// tables: the single-row runtime's values, bit for bit (`score.rs` tests it).
pub fn score_parallel(
    bytes: &[u8],
    rt: &Runtime<'_>,
    table: &Table,
    context_columns: &[String],
    standardized: bool,
    threads: Option<u16>,
) -> Result<Vec<Result<f32, flow_core::Error>>> {
    let (x, cx, _, _) = model_inputs(rt, table, context_columns)?;
    let threads = threads.map_or_else(super::score::threads, usize::from);
    super::score::score_rows(bytes, &x, &cx, standardized, threads)
        .map_err(|e| anyhow::anyhow!("{}: flow-core: {e}", table.source))
}

pub fn run(a: &EvalArgs, quiet: bool) -> Result<()> {
    one_stdin(&[Some(&a.data), a.anomalies.as_deref()])?;
    let per_row_stdout = a.per_row.as_deref().is_some_and(is_std);
    if per_row_stdout && a.json {
        bail!("--per-row - and --json both write to standard output: choose one");
    }
    let bytes = read_model(&a.model)?;
    let mut rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    if rt.model.window().is_some() {
        return super::windows::eval(a, &mut rt, quiet);
    }
    if a.rows_per_group.is_some() || a.group_column.is_some() {
        bail!("--rows-per-group and --group-column are for windowed models (fit --window)");
    }
    let threads = a.threads.map_or_else(super::score::threads, usize::from);
    let table = read_csv_on(&a.data, threads)?;
    let how = match (a.standardized, rt.has_scaler()) {
        (false, true) => {
            "as RAW values: the model's scaler is applied and log-densities are in raw units \
             (--standardized scores flow-space values)"
        }
        (true, true) => {
            "as standardized values (--standardized): no scaler applied; log-densities in the \
             flow's space"
        }
        (_, false) => "as given (the model stores no scaler)",
    };
    info!(
        quiet,
        "scoring {} rows of {} {how}",
        table.rows(),
        table.source
    );
    let scored = |t: &Table| {
        let (ctx, std) = (&a.context_columns, a.standardized);
        score_parallel(&bytes, &rt, t, ctx, std, a.threads)
    };
    let lp: Vec<f32> = scored(&table)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| anyhow::anyhow!("{}: data row {}: flow-core: {e}", table.source, i + 1))
        })
        .collect::<Result<_>>()?;
    if lp.is_empty() {
        bail!("{}: no rows to score", table.source);
    }
    if let Some(p) = &a.per_row {
        write_csv(p, &["log_prob".to_string()], &lp)?;
        if !per_row_stdout {
            info!(quiet, "wrote {}", p.display());
        }
    }
    let nll = -lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len() as f64;
    let mut figures = serde_json::Map::new();
    figures.insert("rows".into(), json!(lp.len()));
    let mut auroc_value = None;
    if let Some(path) = &a.anomalies {
        let t = read_csv_on(path, threads)?;
        let bad: Vec<f32> = scored(&t)?
            .into_iter()
            .map(|r| r.unwrap_or(f32::NEG_INFINITY))
            .collect();
        if bad.is_empty() {
            bail!("{}: no rows", t.source);
        }
        let shift = if a.standardized {
            0.0
        } else {
            rt.model.raw_log_det::<f32>()
        };
        let value = super::figures::anomalies(&rt, &lp, &bad, shift, "rows", &mut figures, quiet);
        auroc_value = Some(value);
    }
    figures.insert("nll".into(), json!(nll));
    super::figures::report(figures, a.json, per_row_stdout, &[], auroc_value, nll);
    Ok(())
}
