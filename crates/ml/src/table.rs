//! Numeric tables read from CSV files with a header row.

use std::path::Path;

use crate::{Error, Result};

/// Largest CSV file read into memory.
const MAX_CSV_BYTES: u64 = 256 << 20;

/// A numeric table: column names and rows of finite `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names from the header.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    /// Reads a CSV file (comma-separated, header first, LF or CRLF line ends).
    pub fn read_csv(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_CSV_BYTES {
            return Err(Error::Invalid(format!(
                "{shown}: file larger than {MAX_CSV_BYTES} bytes"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse_csv(&text, &shown)
    }

    /// Parses CSV text; `origin` names the source in error messages.
    pub fn parse_csv(text: &str, origin: &str) -> Result<Self> {
        let csv_err = |line: usize, message: String| Error::Csv {
            path: origin.to_string(),
            line,
            message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| csv_err(1, "empty file".into()))?;
        let columns: Vec<String> = header
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect();
        if columns.iter().any(|c| c.is_empty()) {
            return Err(csv_err(1, "empty column name in header".into()));
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != columns.len() {
                return Err(csv_err(
                    i + 1,
                    format!(
                        "{} fields, but the header has {}",
                        fields.len(),
                        columns.len()
                    ),
                ));
            }
            let mut row = Vec::with_capacity(fields.len());
            for (field, name) in fields.iter().zip(&columns) {
                let v: f64 = field.trim().trim_matches('"').parse().map_err(|_| {
                    csv_err(
                        i + 1,
                        format!("column '{name}': '{}' is not a number", field.trim()),
                    )
                })?;
                if !v.is_finite() {
                    return Err(csv_err(
                        i + 1,
                        format!("column '{name}': {v} is not a finite number"),
                    ));
                }
                row.push(v);
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(csv_err(2, "no data rows".into()));
        }
        Ok(Self { columns, rows })
    }

    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::MissingColumn(name.to_string(), self.columns.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crlf_and_rejects_bad_rows() {
        let t = Table::parse_csv("a,b\r\n1,2\r\n3,4", "x").expect("parse");
        assert_eq!(t.columns, vec!["a", "b"]);
        assert_eq!(t.rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(matches!(
            Table::parse_csv("a,b\n1\n", "x"),
            Err(Error::Csv { line: 2, .. })
        ));
        assert!(matches!(
            Table::parse_csv("a,b\n1,x\n", "x"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            Table::parse_csv("a,b\n1,NaN\n", "x"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            Table::parse_csv("a,b\n", "x"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(Table::parse_csv("", "x"), Err(Error::Csv { .. })));
        assert!(matches!(t.column_index("c"), Err(Error::MissingColumn(..))));
    }
}
