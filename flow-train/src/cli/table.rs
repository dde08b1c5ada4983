//! CSV input and output.
//!
//! Input needs a header line of column names. Cells are kept as text and parsed when a
//! command selects its columns: each as a number (`f64`, rounded to `f32` as
//! `torch.tensor(X, dtype=torch.float)` does) that must be finite. A row with the wrong number
//! of fields, or a selected cell that is not a number or is NaN/infinite, is an error naming
//! the file, the line (1-based, as an editor shows it) and the column (1-based, with its name).
//! Columns a command does not use (an id, a label) may hold anything.
//!
//! A plain file (UTF-8 without quotes, carriage returns or a byte-order mark, its header on
//! line 1) is read on every core: the text is cut at line boundaries into one block per
//! thread, and each row is kept as its place in the text, not as a `String` per cell. Any
//! other file goes through the `csv` crate, which does the quoting and the line accounting.
//! Both give the same table and the same messages (the test
//! `plain_files_read_as_the_csv_crate_reads_them`), including the `csv` crate's line of a row
//! that follows empty lines: the first empty line's, not the row's own.

use super::decimal::decimal_f32;
use super::files::{is_std, read_input_on, write_atomic};
use anyhow::{bail, Context, Result};
use std::path::Path;

#[derive(Clone, Debug)]
enum Cells {
    /// Numbers already (built-in data).
    Numbers(Vec<f32>),
    /// Text cells, row-major, and each row's line in the file.
    Text { cells: Vec<String>, lines: Vec<u64> },
    /// A plain file's text, where each row starts in it and the row's line; cells are cut out
    /// when selected, on `threads` threads.
    Plain {
        text: String,
        starts: Vec<usize>,
        lines: Vec<u64>,
        threads: usize,
    },
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
            Cells::Plain { starts, .. } => return starts.len(),
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
            Cells::Plain {
                text,
                starts,
                lines,
                threads,
            } => {
                if idx.is_empty() {
                    return Ok(out);
                }
                out.resize(starts.len() * idx.len(), 0.0);
                let per = starts.len().div_ceil((*threads).max(1)).max(1);
                std::thread::scope(|s| -> Result<()> {
                    let handles: Vec<_> = out
                        .chunks_mut(per * idx.len())
                        .zip(starts.chunks(per).zip(lines.chunks(per)))
                        .map(|(out, (starts, lines))| {
                            s.spawn(move || -> Result<()> {
                                // Where each field starts and ends (`fields[j]..ends[j]`).
                                let mut ends = Vec::with_capacity(w);
                                let rows = out.chunks_exact_mut(idx.len());
                                for ((o, &start), &line) in rows.zip(starts).zip(lines) {
                                    ends.clear();
                                    let end = commas(text.as_bytes(), start, |p| ends.push(p));
                                    ends.push(end);
                                    for (v, &j) in o.iter_mut().zip(idx) {
                                        let from = match j.checked_sub(1) {
                                            Some(i) => ends[i] + 1,
                                            None => start,
                                        };
                                        *v = self.number(trim(&text[from..ends[j]]), line, j)?;
                                    }
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    // The first error in file order: the blocks are in order.
                    for h in handles {
                        h.join().expect("a CSV thread panicked")?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(out)
    }

    fn number(&self, field: &str, line: u64, j: usize) -> Result<f32> {
        if let Some(v) = decimal_f32(field) {
            return Ok(v);
        }
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
            Cells::Text { lines, .. } | Cells::Plain { lines, .. } => {
                format!("line {}", lines[i])
            }
        }
    }

    /// Column `j` as text.
    pub fn text(&self, j: usize) -> Vec<String> {
        let w = self.columns.len();
        match &self.cells {
            Cells::Numbers(v) => v.chunks_exact(w).map(|r| r[j].to_string()).collect(),
            Cells::Text { cells, .. } => cells.chunks_exact(w).map(|r| r[j].clone()).collect(),
            Cells::Plain { text, starts, .. } => starts
                .iter()
                .map(|&s| {
                    line_at(text, s)
                        .split(',')
                        .nth(j)
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect(),
        }
    }
}

/// `field.trim()`, without decoding a character where both ends are printable ASCII (which
/// `trim` keeps: the white space it removes is ASCII up to the space, or not ASCII).
#[inline]
fn trim(field: &str) -> &str {
    let b = field.as_bytes();
    let kept = |c: Option<&u8>| c.is_some_and(|&c| c > b' ' && c < 0x80);
    if kept(b.first()) && kept(b.last()) {
        field
    } else {
        field.trim()
    }
}

/// The line of `text` that starts at byte `start`, without its line feed.
fn line_at(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    rest.find('\n').map_or(rest, |e| &rest[..e])
}

/// Reads a CSV file with a header line (`-`: standard input, named `<stdin>` in messages), on
/// every core.
pub fn read_csv(path: &Path) -> Result<Table> {
    read_csv_on(path, cores())
}

/// The machine's cores (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// [`read_csv`] on `threads` threads.
pub fn read_csv_on(path: &Path, threads: usize) -> Result<Table> {
    let text = read_input_on(path, threads)?;
    let source = if is_std(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    parse_owned(text, &source, threads)
}

/// Parses CSV bytes (see [`read_csv`]) on every core; `source` names them in messages. (The
/// CSV fuzz target reads through it.)
#[allow(dead_code)] // the program reads files; the tests and the fuzz target call it
pub fn parse_csv(bytes: &[u8], source: &str) -> Result<Table> {
    parse_owned(bytes.to_vec(), source, cores())
}

/// Parses CSV bytes on `threads` threads: a plain file by [`parse_plain`], any other by the
/// `csv` crate.
fn parse_owned(bytes: Vec<u8>, source: &str, threads: usize) -> Result<Table> {
    // Quotes and carriage returns are looked for by `parse_plain`, on every core.
    let plain = !bytes.is_empty() && !bytes.starts_with(b"\n");
    match String::from_utf8(bytes) {
        Ok(text) if plain && !text.starts_with('\u{feff}') => {
            match parse_plain(text, source, threads) {
                Ok(table) => table,
                Err(text) => parse_with_csv(text.as_bytes(), source),
            }
        }
        Ok(text) => parse_with_csv(text.as_bytes(), source),
        Err(e) => parse_with_csv(e.as_bytes(), source),
    }
}

/// The header's checks, the same for both readers.
fn check_header(header: &[String], source: &str) -> Result<()> {
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
    Ok(())
}

fn wrong_width(source: &str, line: u64, fields: usize, header: &[String]) -> anyhow::Error {
    anyhow::anyhow!(
        "{source}: line {line}: {fields} fields, the header has {} ({})",
        header.len(),
        header.join(", ")
    )
}

/// Calls `comma` with the place of each `,` of the line of `text` that starts at `start`, in
/// order, and returns where the line ends (its line feed, or the end of `text`). Eight bytes
/// at a time: the bytes that are `,` or a line feed are found with integer arithmetic on the
/// eight as one `u64` (each byte tested exactly, no carries between bytes).
#[inline]
fn commas(text: &[u8], start: usize, mut comma: impl FnMut(usize)) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The high bit of each byte of `word` equal to the byte repeated in `v`.
    let equal = |word: u64, v: u64| {
        let x = word ^ v;
        !(((x & LOW7) + LOW7) | x | LOW7)
    };
    let mut i = start;
    let mut words = text.get(start..).unwrap_or(&[]).chunks_exact(8);
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let mut hits = equal(word, 0x2c2c_2c2c_2c2c_2c2c) | equal(word, 0x0a0a_0a0a_0a0a_0a0a);
        while hits != 0 {
            let at = i + (hits.trailing_zeros() / 8) as usize;
            if text[at] == b'\n' {
                return at;
            }
            comma(at);
            hits &= hits - 1;
        }
        i += 8;
    }
    for (at, &c) in (i..).zip(words.remainder()) {
        match c {
            b'\n' => return at,
            b',' => comma(at),
            _ => {}
        }
    }
    text.len()
}

/// What one thread finds in its block of lines: where each row starts, the row's line (see
/// [`scan`]), the first row with the wrong number of fields (its line and field count), the
/// number of lines, and the line after the block's last record.
struct Block {
    starts: Vec<usize>,
    lines: Vec<u64>,
    wrong: Option<(u64, usize)>,
    newlines: u64,
    after_last: u64,
    /// A quote or a carriage return is in the block: the file is not plain.
    not_plain: bool,
}

/// In [`Block`]'s lines: the previous record is in an earlier block.
const NO_LINE: u64 = u64::MAX;

/// Whether `text` holds a quote or a carriage return (a file the `csv` crate reads).
fn not_plain(text: &[u8]) -> bool {
    text.contains(&b'"') || text.contains(&b'\r')
}

/// Scans the lines of `text[from..to]` (`from` at a line's start) for rows of `w` fields.
///
/// A row's line is the one the `csv` crate gives it: the line after the previous record
/// (counted from the block's first; [`NO_LINE`]: the previous record is in an earlier block).
/// The crate skips empty lines without counting them in the next record's place, so a row
/// after an empty line is named by the empty line's number, as `eval` and `fit` have always
/// named it.
fn scan(text: &[u8], from: usize, to: usize, w: usize) -> Block {
    let mut b = Block {
        starts: Vec::with_capacity((to - from) / 16),
        lines: Vec::with_capacity((to - from) / 16),
        wrong: None,
        newlines: 0,
        after_last: NO_LINE,
        not_plain: not_plain(&text[from..to]),
    };
    if b.not_plain {
        return b;
    }
    let mut start = from;
    while start < to {
        let mut fields = 1;
        let end = commas(&text[..to], start, |_| fields += 1);
        let line = &text[start..end];
        let n = b.newlines;
        b.newlines += 1;
        start = end + 1;
        if line.is_empty() {
            continue; // not a record for the `csv` crate
        }
        let place = b.after_last;
        b.after_last = n + 1;
        // A line of only blanks is a record of one empty cell, skipped.
        if fields == 1 && std::str::from_utf8(line).is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        if fields != w {
            b.wrong = Some((place, fields));
            return b;
        }
        b.starts.push(start - line.len() - 1);
        b.lines.push(place);
    }
    b
}

/// Parses a plain file (UTF-8; no quotes, carriage returns or byte-order mark; not starting
/// with an empty line): split at commas and line feeds, the lines in one block per thread.
/// Gives the text back (`Err`) if it holds a quote or a carriage return after all.
fn parse_plain(
    text: String,
    source: &str,
    threads: usize,
) -> std::result::Result<Result<Table>, String> {
    let bytes = text.as_bytes();
    let first = text.find('\n').unwrap_or(text.len());
    if not_plain(&bytes[..first]) {
        return Err(text);
    }
    let header: Vec<String> = text[..first]
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    let w = header.len();
    // Block boundaries: after the line feed at or after each even share of the text.
    let body = (first + 1).min(bytes.len());
    let threads = threads.max(1);
    let mut cuts = vec![body];
    for t in 1..threads {
        let at = (body + (bytes.len() - body) * t / threads).max(*cuts.last().unwrap_or(&body));
        let cut = bytes[at..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(bytes.len(), |e| at + e + 1);
        cuts.push(cut.max(at));
    }
    cuts.push(bytes.len());
    let blocks: Vec<Block> = std::thread::scope(|s| {
        let handles: Vec<_> = cuts
            .windows(2)
            .map(|c| {
                let (a, b) = (c[0], c[1]);
                s.spawn(move || scan(bytes, a, b, w))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a CSV thread panicked"))
            .collect()
    });
    if blocks.iter().any(|b| b.not_plain) {
        return Err(text);
    }
    Ok(plain_table(text, header, blocks, source, threads))
}

/// The table of a plain file from its blocks (see [`parse_plain`]).
fn plain_table(
    text: String,
    header: Vec<String>,
    blocks: Vec<Block>,
    source: &str,
    threads: usize,
) -> Result<Table> {
    check_header(&header, source)?;
    // The first block's rows stay where they are; the others' are appended (into the spare
    // capacity of the first block's vectors, reserved at one row per 16 bytes, when it
    // suffices).
    let mut blocks = blocks.into_iter();
    let Some(mut first) = blocks.next() else {
        bail!("{source}: no data rows");
    };
    let mut starts = std::mem::take(&mut first.starts);
    let mut lines = std::mem::take(&mut first.lines);
    // Line 1 is the header; the body starts on line 2, the line after the header's record.
    let (mut before, mut carry) = (2u64, 2u64);
    for (i, b) in std::iter::once(first).chain(blocks).enumerate() {
        let place = |l: u64| if l == NO_LINE { carry } else { before + l };
        if let Some((line, fields)) = b.wrong {
            return Err(wrong_width(source, place(line), fields, &header));
        }
        if i == 0 {
            for l in &mut lines {
                *l = place(*l);
            }
        } else {
            starts.extend(b.starts);
            lines.extend(b.lines.iter().map(|&l| place(l)));
        }
        if b.after_last != NO_LINE {
            carry = before + b.after_last;
        }
        before += b.newlines;
    }
    if lines.is_empty() {
        bail!("{source}: no data rows");
    }
    Ok(Table {
        columns: header,
        cells: Cells::Plain {
            text,
            starts,
            lines,
            threads,
        },
        source: source.to_string(),
    })
}

/// Parses CSV bytes with the `csv` crate (see [`read_csv`]); `source` names them in messages.
fn parse_with_csv(bytes: &[u8], source: &str) -> Result<Table> {
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
    check_header(&header, source)?;
    let mut cells = Vec::new();
    let mut lines = Vec::new();
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("{source}: reading a row"))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue; // a blank line
        }
        if rec.len() != header.len() {
            return Err(wrong_width(source, line, rec.len(), &header));
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

    /// `trim` is `str::trim` on cells with and without white space (ASCII, and Unicode's at
    /// either end) and other characters at their ends.
    #[test]
    fn trim_is_str_trim() {
        let ends = [
            "", " ", "\t", "\u{0b}", "\u{a0}", "\u{85}", "\u{2003}", "é", "x", "1", "\u{7f}",
        ];
        for a in ends {
            for b in ends {
                for mid in ["", "0.5", " 1 ", "\u{3000}"] {
                    let s = format!("{a}{mid}{b}");
                    assert_eq!(trim(&s), s.trim(), "{s:?}");
                }
            }
        }
    }

    /// `commas` finds what a byte-by-byte walk finds, from every start, in random texts of
    /// commas, line feeds and other bytes (high bytes too), of every length up to 40.
    #[test]
    fn commas_are_found_as_one_byte_at_a_time() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = [b',', b'\n', b'1', b'.', b' ', 0xc3, 0x2b, 0x0b, 0xac, 0x8a];
        for len in 0..=40usize {
            for _ in 0..200 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for start in 0..=len {
                    let mut got = Vec::new();
                    let end = commas(&text, start, |p| got.push(p));
                    let want_end = (start..len).find(|&i| text[i] == b'\n').unwrap_or(len);
                    let want: Vec<usize> = (start..want_end).filter(|&i| text[i] == b',').collect();
                    assert_eq!((end, &got), (want_end, &want), "{text:?} from {start}");
                }
            }
        }
    }

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

    /// Everything a command sees of a table: columns, rows, each column's numbers (or the
    /// message), each column's text, each row's place.
    fn view(t: &Result<Table>) -> String {
        let t = match t {
            Ok(t) => t,
            Err(e) => return format!("error: {e:#}"),
        };
        let mut v = format!("{:?} {} rows\n", t.columns, t.rows());
        let all: Vec<usize> = (0..t.columns.len()).collect();
        let mut sets: Vec<Vec<usize>> = all.iter().map(|&j| vec![j]).collect();
        sets.push(all.clone());
        sets.push(all.iter().rev().copied().collect());
        sets.push(Vec::new());
        for idx in sets {
            match t.select(&idx) {
                Ok(x) => {
                    v += &format!(
                        "{idx:?}: {:?}\n",
                        x.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
                    )
                }
                Err(e) => v += &format!("{idx:?}: {e:#}\n"),
            }
        }
        for j in all {
            v += &format!("text {j}: {:?}\n", t.text(j));
        }
        for i in 0..t.rows() {
            v += &format!("{} ", t.place(i));
        }
        v
    }

    /// The plain reader gives the `csv` crate's table and messages, on any number of threads:
    /// blank lines, blanks around cells, text columns, bad cells in several blocks (the first
    /// in the file is named), wrong field counts, a missing last line feed, header errors.
    #[test]
    fn plain_files_read_as_the_csv_crate_reads_them() {
        let mut files: Vec<String> = [
            "a, b\n1, 2\n\n3.5,-4e-1\n",
            "a,b\n1,2\n3,x\n",
            "a,b\n1,2\nnan,1\n",
            "a,b\n1,2\n1e39,1\n",
            "a,b\n1,2\n1,2,3\n",
            "a,b\n1,2\n1\n",
            "1,2\n3,4\n",
            "a,a\n1,2\n",
            "a,,b\n1,2,3\n",
            "a,b\n",
            "a,b",
            "a,b\n1,2",
            "   \n1,2\n",
            "x\n1\n   \n\t\n2\n,\n",
            "x\n1\n\n2\n",
            "g,x\nrun1,0.5\nrun2,1\n",
            " g , x \n run1 , 0.5 \n\n\n run2 ,1\n   \n",
            "a,b\n1,2\n,\n3,4\n",
            "a,b\n1,\u{a0}2\u{3000}\n",
            "a,b\n1,2\n3,4\n5,6\n7,8\n9,y\n11,12\n13,z\n",
            "a,b\n1,2\n3,4\n5,6\n7,8\n9,10,11\n11,12\n13,z\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A longer file with a bad cell and a short row late, blank lines throughout.
        let mut long = String::from("t,x1,x2\n");
        for i in 0..997 {
            long += &format!("r{i}, {}.25,-{}e-3\n", i, i * 7);
            if i % 97 == 0 {
                long += "\n";
            }
        }
        files.push(long.clone());
        files.push(long.clone() + "s,1,oops\n");
        files.push(long.replacen("r500, 500.25,-3500e-3", "r500, 500.25,inf", 1));
        files.push(long.replacen("r700, 700.25,-4900e-3", "r700, 700.25", 1));
        for f in &files {
            let want = view(&parse_with_csv(f.as_bytes(), "t.csv"));
            assert!(
                !f.contains('"') && !f.contains('\r'),
                "the plain reader serves only files without quotes or carriage returns"
            );
            for threads in [1, 2, 3, 7] {
                let got = view(&parse_owned(f.as_bytes().to_vec(), "t.csv", threads));
                assert_eq!(got, want, "{threads} threads on {f:?}");
            }
        }
        // Quotes and carriage returns go to the `csv` crate.
        let t = parse_csv(b"a,\"b\"\r\n1,\"2\"\r\n", "t.csv").unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.select(&[0, 1]).unwrap(), [1.0, 2.0]);
    }
}
