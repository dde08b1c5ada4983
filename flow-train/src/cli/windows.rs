//! Windowed models on the command line: recordings from a grouping rule, and every reading's
//! window scored by flow-core's [`WindowScorer`] — the type a device runs, so `eval`'s
//! numbers are the device's bit for bit.

use super::runtime::Runtime;
use super::table::Table;
use anyhow::{bail, Result};
use flow_core::model::Grouping;
use flow_core::stream::WindowScorer;

/// Largest reading (values) and window (readings) the command line scores.
pub const MAX_READING: usize = 64;
/// See [`MAX_READING`].
pub const MAX_WINDOW: usize = 4096;

/// How rows divide into recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// All rows are one recording.
    One,
    /// Consecutive runs of this many rows.
    RowsPerGroup(usize),
    /// A run of rows with the same text in this column.
    Column(String),
}

impl Rule {
    /// From `--rows-per-group` / `--group-column` (at most one is given).
    pub fn of(rows_per_group: Option<usize>, group_column: Option<&str>) -> Result<Self> {
        Ok(match (rows_per_group, group_column) {
            (Some(0), _) => bail!("--rows-per-group must be at least 1"),
            (Some(n), _) => Rule::RowsPerGroup(n),
            (None, Some(c)) => Rule::Column(c.to_string()),
            (None, None) => Rule::One,
        })
    }

    /// The rule a model file stores.
    pub fn stored(g: Grouping<'_>) -> Self {
        match g {
            Grouping::None => Rule::One,
            Grouping::RowsPerGroup(n) => Rule::RowsPerGroup(n as usize),
            Grouping::Column(c) => Rule::Column(String::from_utf8_lossy(c).into_owned()),
        }
    }

    /// In words, for the status lines.
    pub fn describe(&self) -> String {
        match self {
            Rule::One => "one recording".into(),
            Rule::RowsPerGroup(n) => format!("recordings of {n} consecutive rows"),
            Rule::Column(c) => format!("recordings by column `{c}`"),
        }
    }

    /// Recording ids of `t`'s rows: a new id wherever a recording starts (so a label that
    /// comes back later is a new recording: rows of a recording are consecutive).
    pub fn ids(&self, t: &Table) -> Result<Vec<u32>> {
        Ok(match self {
            Rule::One => vec![0; t.rows()],
            Rule::RowsPerGroup(n) => (0..t.rows()).map(|i| (i / n) as u32).collect(),
            Rule::Column(c) => {
                let labels = t.text(t.index(c)?);
                let mut id = 0u32;
                (0..labels.len())
                    .map(|i| {
                        if i > 0 && labels[i] != labels[i - 1] {
                            id += 1;
                        }
                        id
                    })
                    .collect()
            }
        })
    }

    /// The group column's index in `t`, if the rule has one.
    pub fn column(&self, t: &Table) -> Result<Option<usize>> {
        match self {
            Rule::Column(c) => Ok(Some(t.index(c)?)),
            _ => Ok(None),
        }
    }
}

/// The log-density (raw units) of the window ending at each reading of `readings` (`d`
/// values per row; `ids` their recordings), or `None` for a reading without `W - 1`
/// predecessors in its recording. A reading flow-core cannot score is an error naming its
/// data row (1-based): reading `i` is the table's row `row_of(i)` (0-based).
pub fn score(
    rt: &mut Runtime<'_>,
    readings: &[f32],
    ids: &[u32],
    row_of: &dyn Fn(usize) -> usize,
) -> Result<Vec<Option<f32>>> {
    let model = rt.model;
    let d = rt.dim() / 2;
    if d > MAX_READING || model.window().is_some_and(|w| w > MAX_WINDOW) {
        bail!(
            "windowed models of readings of up to {MAX_READING} values and windows of up to \
             {MAX_WINDOW} readings are supported (this one: {d} values, {} readings)",
            model.window().unwrap_or(0)
        );
    }
    let mut scorer = WindowScorer::<{ 2 * MAX_READING }, { MAX_WINDOW - 1 }>::new(&model)
        .map_err(|e| anyhow::anyhow!("not a windowed model: {e}"))?;
    let mut out = Vec::with_capacity(ids.len());
    for (i, x) in readings.chunks_exact(d.max(1)).enumerate() {
        if i > 0 && ids[i] != ids[i - 1] {
            scorer.reset();
        }
        match scorer.push(&mut *rt, x) {
            Ok(v) => out.push(v),
            Err(e) => bail!("data row {}: flow-core: {e}", row_of(i) + 1),
        }
    }
    Ok(out)
}

/// A table's readings (the model's stored column names) and their recording ids.
fn readings(rt: &Runtime<'_>, t: &Table, rule: &Rule) -> Result<(Vec<f32>, Vec<u32>)> {
    let d = rt.dim() / 2;
    let names = rt.stored_names();
    let idx: Vec<usize> = if names.len() == d {
        names
            .iter()
            .map(|n| {
                t.index(n).map_err(|e| {
                    e.context(format!(
                        "`{n}` is a reading column of the model, by its stored names"
                    ))
                })
            })
            .collect::<Result<_>>()?
    } else {
        let g = rule.column(t)?;
        let idx: Vec<usize> = (0..t.columns.len()).filter(|&j| Some(j) != g).collect();
        if idx.len() != d {
            bail!(
                "{}: {} columns besides the group column, the model's readings have {d} (it \
                 stores no column names)",
                t.source,
                idx.len()
            );
        }
        idx
    };
    Ok((t.select(&idx)?, rule.ids(t)?))
}

/// `eval` of a windowed model: each reading with `W - 1` predecessors in its recording is
/// scored by its window's log-density (raw units). Prints `windows <n>`, with anomalies
/// `auroc <v>` (readings' window scores, normal against anomalous), and last `nll <v>` (nats
/// per window); `--per-row` writes one line per reading, empty without a full window.
pub fn eval(a: &super::EvalArgs, rt: &mut Runtime<'_>, quiet: bool) -> Result<()> {
    use super::files::{is_std, write_atomic};
    use super::info;
    use super::table::read_csv;
    use serde_json::json;
    if a.standardized {
        bail!("--standardized: a windowed model scores raw readings (its scaler is part of the window's arithmetic)");
    }
    if !a.context_columns.is_empty() {
        bail!("--context-columns: a windowed model takes no context (its readings' predecessors are its context)");
    }
    let window = rt.model.window().unwrap_or(0);
    let rule = match Rule::of(a.rows_per_group, a.group_column.as_deref())? {
        Rule::One if a.rows_per_group.is_none() && a.group_column.is_none() => {
            Rule::stored(rt.model.metadata().grouping)
        }
        r => r,
    };
    let per_row_stdout = a.per_row.as_deref().is_some_and(is_std);
    let table = read_csv(&a.data)?;
    let (x, ids) = readings(rt, &table, &rule)?;
    info!(
        quiet,
        "scoring windows of {window} readings of {} ({} rows; {}) as RAW values",
        table.source,
        table.rows(),
        rule.describe()
    );
    let lp = score(rt, &x, &ids, &|i| i).map_err(|e| e.context(table.source.clone()))?;
    if let Some(p) = &a.per_row {
        let mut text = String::from("log_prob\n");
        for v in &lp {
            if let Some(v) = v {
                text += &v.to_string();
            }
            text.push('\n');
        }
        write_atomic(p, text.as_bytes())?;
        if !per_row_stdout {
            info!(quiet, "wrote {}", p.display());
        }
    }
    let good: Vec<f32> = lp.iter().flatten().copied().collect();
    if good.is_empty() {
        bail!(
            "{}: no reading has {} predecessors in its recording: no window to score",
            table.source,
            window - 1
        );
    }
    let nll = -good.iter().map(|&v| v as f64).sum::<f64>() / good.len() as f64;
    let mut figures = serde_json::Map::new();
    figures.insert("rows".into(), json!(table.rows()));
    figures.insert("windows".into(), json!(good.len()));
    let mut auroc_value = None;
    if let Some(path) = &a.anomalies {
        let t = read_csv(path)?;
        let (bx, bids) = readings(rt, &t, &rule)?;
        let bad: Vec<f32> = score(rt, &bx, &bids, &|i| i)
            .map_err(|e| e.context(t.source.clone()))?
            .into_iter()
            .flatten()
            .collect();
        if bad.is_empty() {
            bail!("{}: no anomalous reading has a full window", t.source);
        }
        let value = super::figures::anomalies(rt, &good, &bad, 0.0, "windows", &mut figures, quiet);
        auroc_value = Some(value);
    }
    figures.insert("nll".into(), json!(nll));
    let windows = [format!("windows {}", good.len())];
    super::figures::report(figures, a.json, per_row_stdout, &windows, auroc_value, nll);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading flow-core cannot score is named by the row `row_of` gives (a subset's
    /// reading by its row of the file), 1-based.
    #[test]
    fn a_failing_reading_is_named_by_its_row_of_the_file() {
        let bytes = include_bytes!("../../../flow-firmware-example/models/imu_window8.nflw");
        let mut rt = Runtime::new(bytes).expect("the committed windowed model loads");
        let d = rt.dim() / 2;
        let mut x = vec![0.1f32; 12 * d];
        // Finite but far beyond the training range: the hypernetwork overflows to NaN.
        x[5 * d] = 3e38;
        let ids = vec![0u32; 12];
        let err = score(&mut rt, &x, &ids, &|i| 100 + 2 * i).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data row 111: flow-core: computation produced NaN"
        );
        let err = score(&mut rt, &x, &ids, &|i| i).unwrap_err();
        assert!(err.to_string().starts_with("data row 6:"), "{err}");
    }
}
