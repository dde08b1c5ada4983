//! Suspicious data, reported by `fit` before training (one line each; `--strict` makes them
//! errors):
//!
//! * a constant column (it carries no information, and its scaler is a guess);
//! * a value more than [`MAD_LIMIT`] median absolute deviations (MAD) from its column's
//!   median — a unit or typing error, or a sentinel such as `-9999` — one line per column,
//!   naming the farthest value's line and how many more there are. A column whose MAD is 0
//!   (more than half its values equal) has no robust scale and is not checked;
//! * more than half the rows being exact copies of an earlier row;
//! * fewer rows than the model has parameters (the model can memorize its data).

/// How many MADs from the median make a value suspicious.
pub const MAD_LIMIT: f64 = 1000.0;

/// The median of `v` (sorted in place; the mean of the middle two for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The warnings for `values` (row-major, `names.len()` columns), `place(i)` naming row `i`
/// ("line 7"), for a model of `params` parameters.
pub fn suspicious(
    values: &[f32],
    names: &[String],
    place: impl Fn(usize) -> String,
    params: usize,
) -> Vec<String> {
    let w = names.len();
    let n = values.len().checked_div(w).unwrap_or(0);
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    for (j, name) in names.iter().enumerate() {
        let col: Vec<f64> = values
            .iter()
            .skip(j)
            .step_by(w)
            .map(|&v| v as f64)
            .collect();
        if col.iter().all(|&v| v == col[0]) {
            out.push(format!(
                "column `{name}` is constant: every row ({} to {}) holds {}",
                place(0),
                place(n - 1),
                col[0] as f32
            ));
            continue;
        }
        let mut sorted = col.clone();
        let med = median(&mut sorted);
        let mut dev: Vec<f64> = col.iter().map(|v| (v - med).abs()).collect();
        let mad = median(&mut dev);
        if mad == 0.0 {
            continue;
        }
        let far: Vec<usize> = (0..n)
            .filter(|&i| (col[i] - med).abs() > MAD_LIMIT * mad)
            .collect();
        if let Some(&worst) = far
            .iter()
            .max_by(|&&a, &&b| (col[a] - med).abs().total_cmp(&(col[b] - med).abs()))
        {
            out.push(format!(
                "column `{name}`, {}: {} is {:.0} MADs from the column's median {} (MAD \
                 {}){}",
                place(worst),
                col[worst] as f32,
                (col[worst] - med).abs() / mad,
                med as f32,
                mad as f32,
                match far.len() - 1 {
                    0 => String::new(),
                    k => format!(
                        "; {k} more value(s) lie beyond {MAD_LIMIT} MADs (the first at {})",
                        place(*far.iter().find(|&&i| i != worst).unwrap_or(&worst))
                    ),
                }
            ));
        }
    }
    // Exact duplicates: rows equal, bit for bit, to an earlier row.
    let mut seen = std::collections::HashMap::with_capacity(n);
    let mut copies = 0usize;
    let mut example = None;
    for (i, row) in values.chunks_exact(w).enumerate() {
        let key: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
        match seen.get(&key) {
            Some(&first) => {
                copies += 1;
                example.get_or_insert((i, first));
            }
            None => {
                seen.insert(key, i);
            }
        }
    }
    if 2 * copies > n {
        let (i, first) = example.unwrap_or((0, 0));
        out.push(format!(
            "{copies} of the {n} rows are exact copies of an earlier row (the first: {} \
             repeats {})",
            place(i),
            place(first)
        ));
    }
    if n < params {
        out.push(format!(
            "{n} rows (to {}) for a model of {params} parameters: fewer rows than parameters, \
             the model can memorize the data (a smaller model: --preset or --max-params)",
            place(n - 1)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (1..=k).map(|j| format!("c{j}")).collect()
    }

    fn line(i: usize) -> String {
        format!("line {}", i + 2)
    }

    #[test]
    fn clean_data_has_no_warnings() {
        let v: Vec<f32> = (0..200).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        assert!(suspicious(&v, &names(2), line, 10).is_empty());
    }

    #[test]
    fn each_check_names_column_and_line() {
        // Column 2 constant.
        let v: Vec<f32> = (0..50).flat_map(|i| [i as f32, 3.0]).collect();
        let w = suspicious(&v, &names(2), line, 10);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("`c2` is constant") && w[0].contains("line 2 to line 51"));
        // One value 1e6 in a column spread over 0..100 (MAD 25): 40,000 MADs; 10 below the limit.
        let mut v: Vec<f32> = (0..100).map(|i| i as f32).collect();
        v[17] = 1e6;
        v[40] = 20_000.0; // 20,000 - 50 = 799 MADs: not reported
        let w = suspicious(&v, &names(1), line, 10);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("column `c1`, line 19: 1000000 is"),
            "{w:?}"
        );
        assert!(!w[0].contains("more value"), "{w:?}");
        // Duplicates: 60 copies of one row among 100.
        let v: Vec<f32> = (0..100)
            .flat_map(|i| {
                if i < 61 {
                    [1.0, 2.0]
                } else {
                    [i as f32, -(i as f32)]
                }
            })
            .collect();
        let w = suspicious(&v, &names(2), line, 10);
        assert!(
            w.iter()
                .any(|s| s.starts_with("60 of the 100 rows") && s.contains("line 3 repeats line 2")),
            "{w:?}"
        );
        // Exactly half duplicates is not "more than half".
        let v: Vec<f32> = (0..100)
            .flat_map(|i| {
                if i <= 50 {
                    [1.0, 2.0]
                } else {
                    [i as f32, -(i as f32)]
                }
            })
            .collect();
        assert!(suspicious(&v, &names(2), line, 10)
            .iter()
            .all(|s| !s.contains("copies")));
        // Fewer rows than parameters.
        let v: Vec<f32> = (0..30).map(|i| i as f32).collect();
        let w = suspicious(&v, &names(1), line, 31);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("30 rows (to line 31) for a model of 31 parameters"));
        assert!(suspicious(&v, &names(1), line, 30).is_empty());
    }
}
