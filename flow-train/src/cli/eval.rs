//! `eval`: mean NLL of a CSV under a model, per-row log-densities, anomaly AUROC.
//!
//! Values are RAW units by default: when the model stores a scaler, each row is standardized
//! with it and the log-density is `log_prob_raw` (the scaler's Jacobian `-Σ ln scale` added),
//! so it is a density of the raw values. `--standardized` scores values that are already in
//! the flow's space (no scaler applied, no Jacobian). The last line of stdout is
//! `nll <value>` (nats per row); with `--anomalies` it is preceded by `auroc <value>`.

use super::runtime::Runtime;
use super::table::{read_csv, write_csv, Table};
use super::{info, model_error, model_inputs, read_model, EvalArgs};
use anyhow::{bail, Result};
use flow_train::export::auroc;

/// Each row's log-density (raw units unless `standardized`), or flow-core's error for it: the
/// single-threaded reference of [`score_parallel`] (its test).
#[cfg(test)]
pub fn score(
    rt: &mut Runtime<'_>,
    table: &Table,
    context_columns: &[String],
    standardized: bool,
) -> Result<Vec<Result<f32, flow_core::Error>>> {
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

/// [`score`] on `threads` threads (`None`: every core) through flow-core's compiled flows
/// with their knot tables: the same values, bit for bit (`score.rs`).
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
    let bytes = read_model(&a.model)?;
    let rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    let table = read_csv(&a.data)?;
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
        info!(quiet, "wrote {}", p.display());
    }
    let nll = -lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len() as f64;
    if let Some(path) = &a.anomalies {
        let t = read_csv(path)?;
        let bad: Vec<f32> = scored(&t)?
            .into_iter()
            .map(|r| r.unwrap_or(f32::NEG_INFINITY))
            .collect();
        if bad.is_empty() {
            bail!("{}: no rows", t.source);
        }
        let below: Vec<String> = rt
            .model
            .thresholds()
            .map(|(q, thr)| {
                let shift = if a.standardized {
                    0.0
                } else {
                    rt.model.raw_log_det::<f32>()
                };
                let flagged = bad.iter().filter(|&&s| s < thr + shift).count();
                let normal = lp.iter().filter(|&&s| s < thr + shift).count();
                format!(
                    "below the {}% threshold: {flagged}/{} anomalous, {normal}/{} normal",
                    q * 100.0,
                    bad.len(),
                    lp.len()
                )
            })
            .collect();
        for b in below {
            info!(quiet, "{b}");
        }
        let wide = |v: &[f32]| v.iter().map(|&s| s as f64).collect::<Vec<_>>();
        println!("auroc {}", auroc(&wide(&lp), &wide(&bad)));
    }
    println!("nll {nll}");
    Ok(())
}
