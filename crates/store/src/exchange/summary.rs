//! The summary table of an export (one row per run and metric) for CSV and Markdown.

use super::*;

/// Columns of the CSV and Markdown exports: one row per run and metric (a run without metrics,
/// e.g. a failed one, gets one row with the metric columns empty).
pub const SUMMARY_COLUMNS: &[&str] = &[
    "run_id",
    "started_at_ms",
    "host",
    "status",
    "mode",
    "origin",
    "scenario",
    "case",
    "model",
    "quant",
    "backend",
    "concurrency",
    "kv_variant",
    "model_sha256",
    "metric",
    "unit",
    "n",
    "median",
    "mean",
    "stddev",
    "ci_low",
    "ci_high",
    "ci_level",
    "p95",
];

pub(crate) fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The summary table of `records` (see [`SUMMARY_COLUMNS`]).
#[must_use]
pub fn summary_rows(records: &[Record]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for record in records {
        let Record::Run(r) = record else { continue };
        let base = [
            text(r.run.get("id")),
            text(r.run.get("started_at_ms")),
            text(r.run.get("host")),
            text(r.run.get("status")),
            text(r.run.get("mode")),
            text(r.run.get("origin")),
            text(r.case.get("scenario")),
            text(r.case.get("name")),
            text(r.case.get("model")),
            text(r.case.get("quant")),
            text(r.case.get("backend")),
            text(r.case.get("concurrency")),
            text(r.case.get("kv_variant")),
            text(r.model.as_ref().and_then(|m| m.get("sha256"))),
        ];
        let metric_columns = [
            "metric", "unit", "n", "median", "mean", "stddev", "ci_low", "ci_high", "ci_level",
            "p95",
        ];
        if r.metrics.is_empty() {
            let mut row = base.to_vec();
            row.extend(metric_columns.iter().map(|_| String::new()));
            rows.push(row);
        }
        for m in &r.metrics {
            let mut row = base.to_vec();
            row.extend(metric_columns.iter().map(|c| text(m.get(*c))));
            rows.push(row);
        }
    }
    rows
}

/// RFC 4180 CSV of the summary table, with a header line.
pub fn write_csv(records: &[Record], out: &mut dyn Write) -> std::io::Result<()> {
    crate::table::write_table(
        crate::table::TableFormat::Csv,
        SUMMARY_COLUMNS,
        summary_rows(records),
        out,
    )
}

/// A Markdown table of the summary (pipes in values are escaped).
pub fn write_markdown(records: &[Record], out: &mut dyn Write) -> std::io::Result<()> {
    crate::table::write_table(
        crate::table::TableFormat::Markdown,
        SUMMARY_COLUMNS,
        summary_rows(records),
        out,
    )
}
