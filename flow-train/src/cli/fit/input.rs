//! Stage 1 of `fit`: the options' ranges, the instruction set, the data (a CSV file or
//! built-in points), the groups of the validation split, and the scaler.

use super::super::table::Table;
use super::super::{FitArgs, IsaArg};
use anyhow::{bail, Result};
use flow_train::{synth, Isa};
use std::path::Path;

/// Points of built-in data when `--n` is not given. More generated data is what closes the
/// gap to the data's entropy (the library's best on Pyro's 1000 points overfits to ≈ 1.85
/// nats); see the README's "Trainer" section for the measurement.
pub const DEFAULT_N: usize = 100_000;
/// Noise of built-in data when `--noise` is not given (Pyro's tutorial uses 0.05).
pub const DEFAULT_NOISE: f64 = 0.05;
/// Inner radius of built-in circles when `--factor` is not given (Pyro's tutorial: 0.5).
pub const DEFAULT_FACTOR: f64 = 0.5;
/// The architecture options' ranges, each an error naming the allowed range.
pub(super) fn check_ranges(a: &FitArgs) -> Result<()> {
    if let Some(k) = a.bins {
        if !(2..=1000).contains(&k) {
            bail!("--bins must be between 2 and 1000 (got {k})");
        }
    }
    if let Some(b) = a.bound {
        if !(b.is_finite() && b > 0.0) {
            bail!("--bound must be a positive number (got {b})");
        }
    }
    if let Some(h) = &a.hidden {
        if let Some(z) = h.iter().find(|&&z| z == 0 || z > 1024) {
            bail!("--hidden sizes must be between 1 and 1024 (got {z})");
        }
    }
    if a.max_params == Some(0) {
        bail!("--max-params must be at least 1");
    }
    if let Some(s) = a.max_seconds {
        if !(s.is_finite() && s > 0.0) {
            bail!("--max-seconds must be a positive number of seconds (got {s})");
        }
    }
    if let Some(e) = a.epochs {
        if !(e.is_finite() && e > 0.0) {
            bail!("--epochs must be a positive number (got {e})");
        }
    }
    Ok(())
}

/// The end of `fit`'s `training:` status line: `instruction set <isa>[ (detected)]; <time
/// limit or none>`.
pub(super) fn isa_and_time_limit(arg: IsaArg, isa: Isa, max_seconds: Option<f64>) -> String {
    let detected = if arg == IsaArg::Auto {
        " (detected)"
    } else {
        ""
    };
    let limit = max_seconds.map_or("no time limit".to_string(), |s| {
        format!("time limit {s} s (the result depends on the machine's speed)")
    });
    format!("instruction set {}{detected}; {limit}", isa.name())
}

/// The instruction set `--isa` asks for; one this CPU lacks is an error.
pub(super) fn isa(arg: IsaArg) -> Result<Isa> {
    let want = match arg {
        IsaArg::Auto => return Ok(Isa::detect()),
        IsaArg::Portable => Isa::Baseline,
        IsaArg::Avx2 => Isa::Avx2,
        IsaArg::Avx512 => Isa::Avx512,
    };
    if !want.is_supported() {
        bail!(
            "--isa {}: this CPU does not have it (it has {}; --isa portable runs everywhere)",
            want.name(),
            Isa::detect().name()
        );
    }
    Ok(want)
}

pub(super) fn load(a: &FitArgs) -> Result<Table> {
    let builtin = matches!(a.data.as_str(), "circles" | "moons");
    if !builtin {
        if a.n.is_some() || a.noise.is_some() || a.factor.is_some() {
            bail!("--n, --noise and --factor describe built-in data (--data circles|moons)");
        }
        return super::super::table::read_csv(Path::new(&a.data));
    }
    if a.group_column.is_some() {
        bail!("--group-column needs a CSV file (built-in data have no group column)");
    }
    let n = a.n.unwrap_or(DEFAULT_N);
    let noise = a.noise.unwrap_or(DEFAULT_NOISE);
    let (d, what) = if a.data == "circles" {
        let factor = a.factor.unwrap_or(DEFAULT_FACTOR);
        (
            synth::circles(n, factor, noise, a.seed)?,
            format!(
                "built-in circles (n = {n}, factor {factor}, noise {noise}, seed {})",
                a.seed
            ),
        )
    } else {
        if a.factor.is_some() {
            bail!("--factor is for circles");
        }
        (
            synth::moons(n, noise, a.seed)?,
            format!("built-in moons (n = {n}, noise {noise}, seed {})", a.seed),
        )
    };
    let cols = synth::COLUMNS.iter().map(|s| s.to_string()).collect();
    Ok(Table::new(cols, d.values().to_vec(), what))
}

/// Group ids from the group column (any text) or from `--rows-per-group`.
pub(super) fn groups(a: &FitArgs, t: &Table) -> Result<Option<Vec<u32>>> {
    if let Some(name) = &a.group_column {
        let labels = t.text(t.index(name)?);
        let mut ids = std::collections::HashMap::new();
        let g = labels
            .iter()
            .map(|l| {
                let next = ids.len() as u32;
                *ids.entry(l.as_str()).or_insert(next)
            })
            .collect();
        return Ok(Some(g));
    }
    match a.rows_per_group {
        Some(0) => bail!("--rows-per-group must be at least 1"),
        Some(k) => Ok(Some((0..t.rows()).map(|i| (i / k) as u32).collect())),
        None => Ok(None),
    }
}

/// Mean and population standard deviation of each column of `rows` (row-major, `w` wide)
/// over `idx`; a constant column gets scale 1.
pub(super) fn scaler(values: &[f32], w: usize, idx: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let n = idx.len().max(1) as f64;
    let mut mean = vec![0.0f64; w];
    for &i in idx {
        for (m, &v) in mean.iter_mut().zip(&values[i * w..(i + 1) * w]) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; w];
    for &i in idx {
        for ((s, &v), m) in var.iter_mut().zip(&values[i * w..(i + 1) * w]).zip(&mean) {
            *s += (v as f64 - m) * (v as f64 - m);
        }
    }
    let scale = var
        .iter()
        .map(|&s| {
            let sd = (s / n).sqrt() as f32;
            if sd.is_finite() && sd > 0.0 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

/// The data's suspicious-data warnings on stderr (`checks.rs`); with `--strict` they are an
/// error and nothing is written.
pub(super) fn warn_suspicious(
    a: &FitArgs,
    table: &Table,
    raw: &[f32],
    names: &[String],
    params: usize,
) -> Result<()> {
    let warnings = super::super::checks::suspicious(raw, names, |i| table.place(i), params);
    for w in &warnings {
        eprintln!(
            "{}: {}: {w}",
            if a.strict { "error" } else { "warning" },
            table.source
        );
    }
    if a.strict && !warnings.is_empty() {
        bail!(
            "--strict: {} problem(s) with the data (above); {} was not written",
            warnings.len(),
            a.out.display()
        );
    }
    Ok(())
}
