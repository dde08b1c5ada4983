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

/// Each row's log-density (raw units unless `standardized`), or flow-core's error for it.
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

/// Area under the ROC curve of the score "normal rows score higher": the probability that a
/// normal row's score exceeds an anomalous row's, ties counting half (Mann–Whitney U with
/// average ranks). NaN scores count as `-inf`.
pub fn auroc(normal: &[f32], anomalous: &[f32]) -> f64 {
    let fix = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
    let mut all: Vec<(f32, bool)> = normal
        .iter()
        .map(|&v| (fix(v), true))
        .chain(anomalous.iter().map(|&v| (fix(v), false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * all[i..j].iter().filter(|e| e.1).count() as f64;
        i = j;
    }
    let (n, m) = (normal.len() as f64, anomalous.len() as f64);
    (rank_sum - n * (n + 1.0) / 2.0) / (n * m)
}

pub fn run(a: &EvalArgs, quiet: bool) -> Result<()> {
    let bytes = read_model(&a.model)?;
    let mut rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
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
    let lp: Vec<f32> = score(&mut rt, &table, &a.context_columns, a.standardized)?
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
        let bad: Vec<f32> = score(&mut rt, &t, &a.context_columns, a.standardized)?
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
        println!("auroc {}", auroc(&lp, &bad));
    }
    println!("nll {nll}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::auroc;

    #[test]
    fn auroc_counts_pairs_and_half_ties() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0]), 0.5);
        // Pairs (normal, anomalous): (2,1) win, (2,2) tie, (2,3) loss, (5,·) 3 wins → 4.5/6.
        assert_eq!(auroc(&[2.0, 5.0], &[1.0, 2.0, 3.0]), 4.5 / 6.0);
        assert_eq!(auroc(&[0.0], &[f32::NAN]), 1.0);
    }
}
