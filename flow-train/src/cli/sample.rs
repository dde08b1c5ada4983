//! `sample`: draws from a model into a CSV file (raw units when the model has a scaler).

use super::runtime::Runtime;
use super::table::write_csv;
use super::{files::output_name, info, model_error, read_model, SampleArgs};
use anyhow::{bail, Result};
use rand_core::SeedableRng;

/// `n` samples, row-major, in raw units unless `standardized`; `ctx` for conditional models.
pub fn draw(
    rt: &mut Runtime<'_>,
    n: usize,
    seed: u64,
    ctx: impl Fn(usize) -> Vec<f32>,
    standardized: bool,
) -> Result<Vec<f32>> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n * rt.dim());
    for i in 0..n {
        let x = rt
            .sample(&mut rng, &ctx(i))
            .map_err(|e| anyhow::anyhow!("sample {}: flow-core: {e}", i + 1))?;
        if standardized {
            out.extend(x);
        } else {
            out.extend(rt.unstandardize(&x));
        }
    }
    Ok(out)
}

pub fn run(a: &SampleArgs, quiet: bool) -> Result<()> {
    let bytes = read_model(&a.model)?;
    let mut rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    let c = rt.context_dim();
    if a.context.len() != c {
        if c == 0 {
            bail!("--context: the model is not conditional");
        }
        bail!(
            "the model is conditional on {c} value(s): give --context with {c} comma-separated \
             numbers (got {})",
            a.context.len()
        );
    }
    if let Some(w) = rt.model.window() {
        return windows(a, &mut rt, w, quiet);
    }
    let (mut names, _) = rt.columns();
    if names.is_empty() {
        names = (1..=rt.dim()).map(|j| format!("x{j}")).collect();
    }
    let ctx = a.context.clone();
    let values = draw(&mut rt, a.count, a.seed, |_| ctx.clone(), a.standardized)?;
    write_csv(&a.out, &names, &values)?;
    info!(
        quiet,
        "wrote {} samples to {} ({})",
        a.count,
        output_name(&a.out),
        if a.standardized || !rt.has_scaler() {
            "flow space"
        } else {
            "raw units"
        }
    );
    Ok(())
}

/// A windowed model's samples: `--n` windows of `W` consecutive readings, each reading a row
/// with its window's number in the first column `window` (so `eval --group-column window`
/// scores them as recordings).
fn windows(a: &SampleArgs, rt: &mut Runtime<'_>, w: usize, quiet: bool) -> Result<()> {
    if !a.context.is_empty() {
        bail!("--context: a windowed model takes no context");
    }
    let d = rt.dim() / 2;
    let stored = rt.stored_names();
    let mut names = vec!["window".to_string()];
    if stored.len() == d {
        names.extend(stored);
    } else {
        names.extend((1..=d).map(|j| format!("x{j}")));
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(a.seed);
    let mut values = Vec::with_capacity(a.count * w * (d + 1));
    for i in 0..a.count {
        let x = rt
            .sample_window(&mut rng, w)
            .map_err(|e| anyhow::anyhow!("sample {}: flow-core: {e}", i + 1))?;
        for r in x.chunks_exact(d) {
            values.push(i as f32);
            if a.standardized {
                values.extend_from_slice(r);
            } else {
                // The reading's scaler: the first half of the stored one.
                values.extend(
                    r.iter()
                        .enumerate()
                        .map(|(j, &v)| match rt.model.scaler(j) {
                            Some((m, s)) => m + s * v,
                            None => v,
                        }),
                );
            }
        }
    }
    write_csv(&a.out, &names, &values)?;
    info!(
        quiet,
        "wrote {} windows of {w} readings to {}",
        a.count,
        output_name(&a.out)
    );
    Ok(())
}
