//! The printed table: metric | direct | through Custos | ratio (through Custos ÷ direct).

use std::fmt::Write as _;

/// One line of a table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured, with its unit.
    pub metric: String,
    /// The value measured directly against the apiserver.
    pub direct: Option<f64>,
    /// The value measured through Custos.
    pub custos: Option<f64>,
    /// Decimals to print.
    pub decimals: usize,
}

/// A table of rows under a title.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// The rows, in order.
    pub rows: Vec<Row>,
}

impl Table {
    /// An empty table titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(
        &mut self,
        metric: impl Into<String>,
        direct: Option<f64>,
        custos: Option<f64>,
        decimals: usize,
    ) {
        self.rows.push(Row {
            metric: metric.into(),
            direct,
            custos,
            decimals,
        });
    }

    /// The table as aligned text.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.metric.chars().count())
            .chain(std::iter::once(6))
            .max()
            .unwrap_or(6);
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let _ = writeln!(
            out,
            "| {:<width$} | {:>12} | {:>14} | {:>6} |",
            "metric", "direct", "through Custos", "ratio"
        );
        let _ = writeln!(
            out,
            "|{}|{}:|{}:|{}:|",
            "-".repeat(width + 2),
            "-".repeat(13),
            "-".repeat(15),
            "-".repeat(7)
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {:<width$} | {:>12} | {:>14} | {:>6} |",
                r.metric,
                cell(r.direct, r.decimals),
                cell(r.custos, r.decimals),
                ratio(r.direct, r.custos)
            );
        }
        out
    }
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(f64::INFINITY) => "no answer".into(),
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "—".into(),
    }
}

fn ratio(direct: Option<f64>, custos: Option<f64>) -> String {
    match (direct, custos) {
        (Some(d), Some(c)) if d.is_finite() && c.is_finite() && d.abs() > f64::EPSILON => {
            format!("{:.2}", c / d)
        }
        _ => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_custos_over_direct_and_blank_without_both() {
        let mut t = Table::new("t");
        t.row("GET, req/s", Some(200.0), Some(150.0), 0);
        t.row("only one", Some(1.0), None, 1);
        let text = t.render();
        assert!(
            text.contains("|    0.75 |") || text.contains("  0.75 |"),
            "{text}"
        );
        assert!(text.contains("| only one"), "{text}");
    }
}
