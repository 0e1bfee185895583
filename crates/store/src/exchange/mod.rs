//! Moving runs between databases: export to JSON lines, ingest from a database or an export.
//!
//! The interchange format (documented in `docs/formats.md`) is one JSON object per line. The
//! first line is a header naming the format, its version and the schema version of the database
//! it came from. Each later line is one self-contained record: a run with its device, model,
//! case, requests, token latencies and metric summaries; a device measurement or a calibration
//! with its device; or a parity row with its model. Records carry no surrogate ids (`devices.id`, `runs.case_id`,
//! ...): rows are tied together by natural keys (device fingerprint, model sha256, case key, run
//! id), which is what makes ingest idempotent across databases.
//!
//! Columns travel by name, so a record from an older schema ingests into a newer one (missing
//! columns take their defaults); a record from a newer schema, or a column this build does not
//! know, is refused rather than silently dropped.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sql::{Sql, SqlError};
use crate::{SCHEMA_VERSION, Store, StoreError, lock_or};

/// Name of the interchange format, in every export's header line.
pub const EXCHANGE_FORMAT: &str = "edgebench-runs";
/// Version of the interchange format this build writes and the newest it reads.
pub const EXCHANGE_VERSION: u32 = 1;

/// Columns of one table row, by name.
pub type Columns = Map<String, Value>;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Run(Box<RunRecord>),
    DeviceMeasurement {
        device: Columns,
        measurement: Columns,
    },
    Parity {
        model: Columns,
        parity: Columns,
    },
    /// A case's between-run spread on a device (schema 10).
    Calibration {
        device: Columns,
        calibration: Columns,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub schema_version: u32,
    pub exported_at_ms: i64,
}

/// A run and everything it refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub device: Columns,
    pub model: Option<Columns>,
    pub case: Columns,
    pub run: Columns,
    pub requests: Vec<RequestRecord>,
    pub metrics: Vec<Columns>,
    /// Scored questions of a multiple-choice evaluation (absent in exports before schema 7).
    #[serde(default)]
    pub answers: Vec<Columns>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    #[serde(flatten)]
    pub columns: Columns,
    pub token_latencies_ns: Vec<i64>,
}

/// Which runs to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub run_id: Option<String>,
    /// Runs started at or after this instant (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Runs started before this instant.
    pub until_ms: Option<i64>,
}

/// What ingesting one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Added,
    /// The target held the run as `running` or `aborted` (its writer lost it, e.g. when the
    /// shared database was locked and the run went to a fallback file); the finished run
    /// replaced it.
    Completed,
    AlreadyPresent,
}

/// Counts of one ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub added: u64,
    pub completed: u64,
    pub already_present: u64,
}

impl IngestSummary {
    pub(crate) fn count(&mut self, outcome: IngestOutcome) {
        match outcome {
            IngestOutcome::Added => self.added += 1,
            IngestOutcome::Completed => self.completed += 1,
            IngestOutcome::AlreadyPresent => self.already_present += 1,
        }
    }
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} completed, {} already present",
            self.added, self.completed, self.already_present
        )
    }
}

/// Errors of export and ingest; every variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not an edgebench export record: {message}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{} is format `{found_format}` version {found_version}; this build reads `{EXCHANGE_FORMAT}` up to version {EXCHANGE_VERSION}",
        path.display()
    )]
    UnknownFormat {
        path: PathBuf,
        found_format: String,
        found_version: u32,
    },
    #[error(
        "{} was exported from schema version {found}, newer than this build's {supported}; update edgebench",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{}: table `{table}` has no column `{column}` in this build (schema version {SCHEMA_VERSION})", path.display())]
    UnknownColumn {
        path: PathBuf,
        table: &'static str,
        column: String,
    },
    #[error("{}: a value does not fit its column: {message}", path.display())]
    BadValue { path: PathBuf, message: String },
    #[error("{}: a {table} record lacks its key column `{column}`", path.display())]
    MissingKey {
        path: PathBuf,
        table: &'static str,
        column: &'static str,
    },
}

/// Every column of each row `sql` returns, minus `skip` (surrogate ids) and generated columns.
pub(crate) fn read_rows(
    db: &mut dyn Sql,
    table: &str,
    sql: &str,
    params: &[Value],
    skip: &[&str],
) -> Result<Vec<Columns>, SqlError> {
    let writable = db.writable_columns(table)?;
    let mut out = Vec::new();
    db.each_row(sql, params, &mut |names, values| {
        let mut cols = Columns::new();
        for (name, value) in names.iter().zip(values) {
            if skip.contains(&name.as_str()) || !writable.contains(name) {
                continue;
            }
            cols.insert(name.clone(), value.clone());
        }
        out.push(cols);
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn one_row(
    db: &mut dyn Sql,
    table: &str,
    key: &str,
    id: i64,
) -> Result<Columns, SqlError> {
    read_rows(
        db,
        table,
        &format!("SELECT * FROM {table} WHERE {key} = $1"),
        &[Value::from(id)],
        &["id"],
    )?
    .pop()
    .ok_or_else(|| SqlError::NoRow(format!("in {table} with {key} = {id}")))
}

mod ingest;
pub(crate) use ingest::{Ingest, ingest_record};
mod read;
mod summary;

pub use read::*;
pub use summary::*;
