//! Data sets: rows of `dim` `f32` values, read from CSV.

use crate::TrainError;

/// A data set of `len()` points in `R^dim`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    dim: usize,
    values: Vec<f32>,
}

impl Dataset {
    /// `values` row-major with `dim` columns; every value must be finite.
    pub fn new(dim: usize, values: Vec<f32>) -> Result<Self, TrainError> {
        if dim == 0 || !values.len().is_multiple_of(dim) {
            return Err(TrainError::Data(format!(
                "{} values do not form rows of {dim}",
                values.len()
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::Data(format!(
                "row {}, column {}: not finite",
                i / dim,
                i % dim
            )));
        }
        Ok(Self { dim, values })
    }

    /// Parses comma-separated rows; a first line that does not parse as numbers is a header.
    /// Values are parsed as `f64` and rounded to `f32` (as `torch.tensor(X, dtype=float)`).
    pub fn from_csv(text: &str) -> Result<Self, TrainError> {
        let mut dim = 0;
        let mut values = Vec::new();
        for (ln, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parsed: Result<Vec<f64>, _> =
                line.split(',').map(|f| f.trim().parse::<f64>()).collect();
            match parsed {
                Ok(row) => {
                    if dim == 0 {
                        dim = row.len();
                    } else if row.len() != dim {
                        return Err(TrainError::Data(format!(
                            "line {}: {} columns, expected {dim}",
                            ln + 1,
                            row.len()
                        )));
                    }
                    values.extend(row.iter().map(|&v| v as f32));
                }
                Err(_) if ln == 0 => {}
                Err(e) => return Err(TrainError::Data(format!("line {}: {e}", ln + 1))),
            }
        }
        Self::new(dim.max(1), values)
    }

    /// Reads a CSV file (see [`from_csv`](Self::from_csv)).
    pub fn load_csv(path: impl AsRef<std::path::Path>) -> Result<Self, TrainError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p)
            .map_err(|e| TrainError::Data(format!("{}: {e}", p.display())))?;
        Self::from_csv(&text)
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Each column's mean and population standard deviation (ddof 0), in `f64`; an empty set
    /// has means 0 and deviations 1.
    pub fn column_moments(&self) -> (Vec<f64>, Vec<f64>) {
        let (n, d) = (self.len(), self.dim);
        if n == 0 {
            return (vec![0.0; d], vec![1.0; d]);
        }
        let mut mean = vec![0.0f64; d];
        for row in self.values.chunks_exact(d) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; d];
        for row in self.values.chunks_exact(d) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m) * (v as f64 - m);
            }
        }
        (mean, var.iter().map(|s| (s / n as f64).sqrt()).collect())
    }

    /// The mean over dimensions of each dimension's standard deviation (1 for an empty set).
    pub fn mean_std(&self) -> f64 {
        let n = self.len();
        if n == 0 {
            return 1.0;
        }
        let mut total = 0.0;
        for j in 0..self.dim {
            let col = self
                .values
                .iter()
                .skip(j)
                .step_by(self.dim)
                .map(|&v| v as f64);
            let mean = col.clone().sum::<f64>() / n as f64;
            let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            total += var.sqrt();
        }
        total / self.dim as f64
    }

    /// The points `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let mut v = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            v.extend_from_slice(self.row(i));
        }
        Dataset {
            dim: self.dim,
            values: v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_header() {
        let d = Dataset::from_csv("x1,x2\n1,2\n3.5,-4e-1\n").unwrap();
        assert_eq!((d.dim(), d.len()), (2, 2));
        assert_eq!(d.row(1), &[3.5, -0.4]);
        let d = Dataset::from_csv("1,2\n3,4\n").unwrap();
        assert_eq!(d.len(), 2);
        assert!(Dataset::from_csv("1,2\n3\n").is_err());
        assert!(Dataset::from_csv("1,2\n3,x\n").is_err());
        assert!(Dataset::from_csv("1,nan\n").is_err());
    }

    #[test]
    fn column_moments() {
        let d = Dataset::from_csv("1,5\n3,5\n").unwrap();
        let (m, s) = d.column_moments();
        assert_eq!((m, s), (vec![2.0, 5.0], vec![1.0, 0.0]));
        assert_eq!(d.mean_std(), 0.5);
        let e = Dataset::new(2, vec![]).unwrap();
        assert_eq!(e.column_moments(), (vec![0.0; 2], vec![1.0; 2]));
    }
}
