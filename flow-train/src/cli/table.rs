//! CSV input and output.
//!
//! Input needs a header line of column names. Cells are kept as text and parsed when a
//! command selects its columns: each as a number (`f64`, rounded to `f32` as
//! `torch.tensor(X, dtype=torch.float)` does) that must be finite. A row with the wrong number
//! of fields, or a selected cell that is not a number or is NaN/infinite, is an error naming
//! the file, the line (1-based, as an editor shows it) and the column (1-based, with its name).
//! Columns a command does not use (an id, a label) may hold anything. The `csv` crate does the
//! quoting and the line accounting.

use super::files::{is_std, read_input, write_atomic};
use anyhow::{bail, Context, Result};
use std::path::Path;

#[derive(Clone, Debug)]
enum Cells {
    /// Numbers already (built-in data).
    Numbers(Vec<f32>),
    /// Text cells, row-major, and each row's line in the file.
    Text { cells: Vec<String>, lines: Vec<u64> },
}

/// A table: named columns of cells.
#[derive(Clone, Debug)]
pub struct Table {
    /// Column names, in file order.
    pub columns: Vec<String>,
    cells: Cells,
    /// Where the table came from (for messages).
    pub source: String,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        let n = match &self.cells {
            Cells::Numbers(v) => v.len(),
            Cells::Text { cells, .. } => cells.len(),
        };
        n / self.columns.len().max(1)
    }

    /// A table of numbers (e.g. built-in data), row-major.
    pub fn new(columns: Vec<String>, values: Vec<f32>, source: String) -> Self {
        Self {
            columns,
            cells: Cells::Numbers(values),
            source,
        }
    }

    /// Index of column `name`.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .with_context(|| {
                format!(
                    "{}: no column `{name}` (columns: {})",
                    self.source,
                    self.columns.join(", ")
                )
            })
    }

    /// The columns `idx` as numbers, row-major; the first cell that is not a finite number is
    /// an error naming its line and column.
    pub fn select(&self, idx: &[usize]) -> Result<Vec<f32>> {
        let w = self.columns.len();
        let mut out = Vec::with_capacity(self.rows() * idx.len());
        match &self.cells {
            Cells::Numbers(v) => {
                for row in v.chunks_exact(w) {
                    out.extend(idx.iter().map(|&j| row[j]));
                }
            }
            Cells::Text { cells, lines } => {
                for (row, &line) in cells.chunks_exact(w).zip(lines) {
                    for &j in idx {
                        out.push(self.number(&row[j], line, j)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn number(&self, field: &str, line: u64, j: usize) -> Result<f32> {
        let (source, name) = (&self.source, &self.columns[j]);
        let v: f64 = field.parse().map_err(|_| {
            anyhow::anyhow!(
                "{source}: line {line}, column {} (`{name}`): `{field}` is not a number",
                j + 1
            )
        })?;
        let v32 = v as f32;
        if !v32.is_finite() {
            bail!(
                "{source}: line {line}, column {} (`{name}`): `{field}` is not a finite f32 \
                 value",
                j + 1
            );
        }
        Ok(v32)
    }

    /// Where row `i` is, for messages: `line N` of a file, `row N` (1-based) of built-in data.
    pub fn place(&self, i: usize) -> String {
        match &self.cells {
            Cells::Numbers(_) => format!("row {}", i + 1),
            Cells::Text { lines, .. } => format!("line {}", lines[i]),
        }
    }

    /// Column `j` as text.
    pub fn text(&self, j: usize) -> Vec<String> {
        let w = self.columns.len();
        match &self.cells {
            Cells::Numbers(v) => v.chunks_exact(w).map(|r| r[j].to_string()).collect(),
            Cells::Text { cells, .. } => cells.chunks_exact(w).map(|r| r[j].clone()).collect(),
        }
    }
}

/// Reads a CSV file with a header line (`-`: standard input, named `<stdin>` in messages).
pub fn read_csv(path: &Path) -> Result<Table> {
    let text = read_input(path)?;
    let source = if is_std(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    parse_csv(&text, &source)
}

/// Parses CSV bytes (see [`read_csv`]); `source` names them in messages.
pub fn parse_csv(bytes: &[u8], source: &str) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{source}: reading the header line"))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        bail!("{source}: empty file; a header line of column names is required");
    }
    if header.iter().all(|h| h.parse::<f64>().is_ok()) {
        bail!(
            "{source}: line 1 is `{}`, numbers, not a header; a header line of column names \
             is required",
            header.join(",")
        );
    }
    for (j, h) in header.iter().enumerate() {
        if h.is_empty() {
            bail!("{source}: line 1, column {}: empty column name", j + 1);
        }
        if header[..j].contains(h) {
            bail!("{source}: line 1: column name `{h}` appears twice");
        }
    }
    let mut cells = Vec::new();
    let mut lines = Vec::new();
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("{source}: reading a row"))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue; // a blank line
        }
        if rec.len() != header.len() {
            bail!(
                "{source}: line {line}: {} fields, the header has {} ({})",
                rec.len(),
                header.len(),
                header.join(", ")
            );
        }
        cells.extend(rec.iter().map(str::to_string));
        lines.push(line);
    }
    if lines.is_empty() {
        bail!("{source}: no data rows");
    }
    Ok(Table {
        columns: header,
        cells: Cells::Text { cells, lines },
        source: source.to_string(),
    })
}

/// Writes a CSV file atomically: a header line, then `rows` (row-major, `header.len()` values
/// each) in shortest round-trip form.
pub fn write_csv(path: &Path, header: &[String], values: &[f32]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    let mut buf = Vec::with_capacity(header.len());
    for row in values.chunks_exact(header.len().max(1)) {
        buf.clear();
        buf.extend(row.iter().map(|v| v.to_string()));
        w.write_record(&buf)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match parse_csv(s.as_bytes(), "t.csv").and_then(|t| t.select(&[0, 1])) {
            Ok(v) => panic!("no error: {v:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn reads_and_names_bad_cells() {
        let t = parse_csv(b"a, b\n1, 2\n\n3.5,-4e-1\n", "t.csv").unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.select(&[0, 1]).unwrap(), [1.0, 2.0, 3.5, -0.4]);
        assert_eq!(t.select(&[1]).unwrap(), [2.0, -0.4]);
        assert_eq!(t.rows(), 2);
        let e = err("a,b\n1,2\n3,x\n");
        assert!(
            e.contains("line 3, column 2 (`b`)") && e.contains("`x`"),
            "{e}"
        );
        let e = err("a,b\n1,2\nnan,1\n");
        assert!(e.contains("line 3, column 1 (`a`)"), "{e}");
        let e = err("a,b\n1,2\n1e39,1\n");
        assert!(e.contains("not a finite"), "{e}");
        let e = err("a,b\n1,2\n1,2,3\n");
        assert!(e.contains("line 3: 3 fields, the header has 2"), "{e}");
        assert!(err("1,2\n3,4\n").contains("not a header"));
        assert!(err("").contains("header"));
        assert!(err("a,a\n1,2\n").contains("twice"));
        assert!(err("a,b\n").contains("no data rows"));
        // Unselected columns may hold text.
        let t = parse_csv(b"g,x\nrun1,0.5\nrun2,1\n", "t.csv").unwrap();
        assert_eq!(t.select(&[1]).unwrap(), [0.5, 1.0]);
        assert_eq!(t.text(0), ["run1", "run2"]);
        assert!(t.select(&[0]).is_err());
    }
}
