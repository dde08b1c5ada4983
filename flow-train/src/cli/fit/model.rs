//! The last stage of `fit`: trained parameters to a model file — the context scaler folded
//! into the hypernetworks, the writer, the thresholds' quantiles.

use super::super::{files::write_atomic, info};
use anyhow::{bail, Result};
use flow_core::model::ModelBuilder;
use flow_train::export::quantile;
use flow_train::{Exported, LayerSpec, ModelSpec};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// The anomaly-threshold quantiles stored in the model.
pub const QUANTILES: [f32; 3] = [0.001, 0.01, 0.05];

/// What the stored model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Plain,
    /// `p(x₁)·p(x₂ | x₁)` with `x₁` of this size.
    Joint(usize),
    /// `p(x | c)` with `c` of this size.
    Conditional(usize),
}

/// Folds the context scaler into the first layer of every hypernetwork that reads the
/// context, so the stored model takes the raw context: `W' = W / s`, `b' = b - W·m/s` on the
/// context inputs (computed in `f64`, rounded to `f32`).
pub(super) fn fold_context_scaler(
    spec: &ModelSpec,
    params: &mut [f32],
    mean: &[f32],
    scale: &[f32],
) {
    let ModelSpec::Joint {
        marginal,
        conditional: f,
    } = spec
    else {
        return;
    };
    let mut off = marginal.param_count();
    let c = f.context;
    for l in &f.layers {
        let n = l.param_count(f.dim, c);
        let (lower, hidden, out_rows) = match l {
            LayerSpec::ConditionalSpline { hidden, spline } => {
                (0, hidden, f.dim * spline.params_per_dim())
            }
            LayerSpec::Coupling {
                split,
                hidden,
                spline,
            } => (*split, hidden, (f.dim - split) * spline.params_per_dim()),
            _ => {
                off += n;
                continue;
            }
        };
        let nn_off = off
            + match l {
                LayerSpec::Coupling { split, spline, .. } => split * spline.params_per_dim(),
                _ => 0,
            };
        let inputs = lower + c;
        let rows = hidden.first().copied().unwrap_or(out_rows);
        let (w, rest) = params[nn_off..].split_at_mut(rows * inputs);
        let b = &mut rest[..rows];
        for o in 0..rows {
            let mut shift = 0.0f64;
            for k in 0..c {
                let wk = &mut w[o * inputs + lower + k];
                shift += *wk as f64 * mean[k] as f64 / scale[k] as f64;
                *wk = (*wk as f64 / scale[k] as f64) as f32;
            }
            b[o] = (b[o] as f64 - shift) as f32;
        }
        off += n;
    }
}

/// The model file (without thresholds) from trained parameters.
pub(super) fn builder(
    kind: Kind,
    spec: &ModelSpec,
    params: &[f32],
    columns: &[String],
    scaler: Option<&(Vec<f32>, Vec<f32>)>,
) -> Result<ModelBuilder> {
    let e = Exported::new(spec, params)?;
    let d = spec.dim();
    let mut b = match kind {
        Kind::Plain => ModelBuilder::plain(d),
        Kind::Joint(d1) => ModelBuilder::joint(d, d1),
        Kind::Conditional(c) => ModelBuilder::conditional(d - c, c),
    };
    match kind {
        Kind::Plain => {
            for l in e.layers(0)? {
                b.layer(&l);
            }
        }
        Kind::Joint(_) => {
            for l in e.layers(0)? {
                b.layer(&l);
            }
            b.end_marginal();
            for l in e.layers(1)? {
                b.layer(&l);
            }
        }
        Kind::Conditional(_) => {
            for l in e.layers(1)? {
                b.layer(&l);
            }
        }
    }
    b.columns(columns);
    if let Some((m, s)) = scaler {
        b.scaler(m, s);
    }
    Ok(b)
}

/// The stored anomaly thresholds: the [`QUANTILES`] of the finite log-densities `lp` (none
/// when there are none).
pub(super) fn thresholds(mut lp: Vec<f32>) -> Vec<(f32, f32)> {
    lp.retain(|v| v.is_finite());
    lp.sort_by(f32::total_cmp);
    if lp.is_empty() {
        return Vec::new();
    }
    QUANTILES
        .iter()
        .map(|&q| (q, quantile(&lp, q as f64)))
        .collect()
}

/// What [`store`] wrote: the file's bytes, its thresholds and the NLLs (nats per scored row
/// or window) they came with.
pub(super) struct Stored {
    pub bytes: Vec<u8>,
    pub thresholds: Vec<(f32, f32)>,
    pub train_nll: f64,
    pub val_nll: f64,
}

/// The end of `fit`, of rows and of windows alike, from the log-densities flow-core gave the
/// training and validation parts: a run whose NLL is not finite is refused and `out` left
/// as it was; otherwise the thresholds of the validation part (of the training part without
/// one) go into the model, which is encoded and written to `out` atomically.
pub(super) fn store(
    b: &mut ModelBuilder,
    lp_train: &[f32],
    lp_val: &[f32],
    out: &Path,
) -> Result<Stored> {
    let nll = |lp: &[f32]| -lp.iter().map(|&v| v as f64).sum::<f64>() / lp.len().max(1) as f64;
    let (train_nll, val_nll) = (nll(lp_train), nll(lp_val));
    if !train_nll.is_finite() || (!lp_val.is_empty() && !val_nll.is_finite()) {
        bail!(
            "the trained model's NLL is not finite (training {train_nll}, validation \
             {val_nll}): the run diverged; {} was not written",
            out.display()
        );
    }
    let thresholds = thresholds(if lp_val.is_empty() { lp_train } else { lp_val }.to_vec());
    b.thresholds(&thresholds);
    let bytes = b
        .encode()
        .map_err(|e| anyhow::anyhow!("encoding the model: {e}"))?;
    write_atomic(out, &bytes)?;
    Ok(Stored {
        bytes,
        thresholds,
        train_nll,
        val_nll,
    })
}

/// The last two status lines of `fit`: the stored thresholds, quantiles of `what` (`log p`
/// or `window log p`) of the validation (or training) `items` (`rows`, `windows`) in `space`,
/// then `wrote <out> (<n> bytes, <p> parameters)` on standard output.
pub(super) fn report_stored(
    quiet: bool,
    s: &Stored,
    (what, items, space): (&str, &str, &str),
    validated: bool,
    out: &Path,
    params: usize,
) {
    info!(
        quiet,
        "anomaly thresholds ({what} quantiles of the {} {items}, {space}): {}",
        if validated { "validation" } else { "training" },
        listed(&s.thresholds)
    );
    println!(
        "wrote {} ({} bytes, {params} parameters)",
        out.display(),
        s.bytes.len(),
    );
}

/// The training's progress bar on standard error (hidden with `quiet`): `steps` long, drawn
/// with the `indicatif` `template`.
pub(super) fn progress_bar(quiet: bool, steps: u64, template: &str) -> Result<ProgressBar> {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(steps)
    };
    pb.set_style(
        ProgressStyle::with_template(template)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    Ok(pb)
}

/// Thresholds as `0.1% -4.2, 1% …` for the status line.
pub(super) fn listed(thresholds: &[(f32, f32)]) -> String {
    thresholds
        .iter()
        .map(|(q, v)| format!("{}% {v:.3}", q * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
