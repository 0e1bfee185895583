//! Moving runs between databases: export to JSON lines, ingest from a database or an export.
//!
//! The interchange format (documented in `docs/formats.md`) is one JSON object per line. The
//! first line is a header naming the format, its version and the schema version of the database
//! it came from. Each later line is one self-contained record: a run with its device, model,
//! case, requests, token latencies and metric summaries; a device measurement with its device;
//! or a parity row with its model. Records carry no surrogate ids (`devices.id`, `runs.case_id`,
//! ...): rows are tied together by natural keys (device fingerprint, model sha256, case key, run
//! id), which is what makes ingest idempotent across databases.
//!
//! Columns travel by name, so a record from an older schema ingests into a newer one (missing
//! columns take their defaults); a record from a newer schema, or a column this build does not
//! know, is refused rather than silently dropped.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    fn count(&mut self, outcome: IngestOutcome) {
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
    #[error("{}: a {table} record lacks its key column `{column}`", path.display())]
    MissingKey {
        path: PathBuf,
        table: &'static str,
        column: &'static str,
    },
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real))
            .unwrap_or(SqlValue::Null),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Columns of `table` that can be written (generated columns are derived, never copied).
fn writable_columns(conn: &Connection, table: &str) -> rusqlite::Result<BTreeSet<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name, hidden FROM pragma_table_xinfo('{table}')"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = BTreeSet::new();
    for row in rows {
        let (name, hidden) = row?;
        if hidden == 0 {
            out.insert(name);
        }
    }
    Ok(out)
}

/// Every column of each row `sql` returns, minus `skip` (surrogate ids) and generated columns.
fn read_rows(
    conn: &Connection,
    table: &str,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    skip: &[&str],
) -> rusqlite::Result<Vec<Columns>> {
    let writable = writable_columns(conn, table)?;
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut cols = Columns::new();
        for (i, name) in names.iter().enumerate() {
            if skip.contains(&name.as_str()) || !writable.contains(name) {
                continue;
            }
            cols.insert(name.clone(), to_json(row.get_ref(i)?));
        }
        out.push(cols);
    }
    Ok(out)
}

fn one_row(conn: &Connection, table: &str, key: &str, id: i64) -> rusqlite::Result<Columns> {
    read_rows(
        conn,
        table,
        &format!("SELECT * FROM {table} WHERE {key} = ?1"),
        &[&id],
        &["id"],
    )?
    .pop()
    .ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Reads every record `selection` picks from an open connection, header first.
pub(crate) fn read_records(
    conn: &Connection,
    selection: &Selection,
) -> rusqlite::Result<Vec<Record>> {
    let schema_version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut records = vec![Record::Header(Header {
        format: EXCHANGE_FORMAT.to_owned(),
        version: EXCHANGE_VERSION,
        schema_version,
        exported_at_ms: now_ms(),
    })];
    let mut ids = conn.prepare(
        "SELECT id, case_id, device_id, model_id FROM runs
         WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR started_at_ms >= ?2)
           AND (?3 IS NULL OR started_at_ms < ?3)
         ORDER BY started_at_ms, id",
    )?;
    let runs: Vec<(String, i64, i64, Option<i64>)> = ids
        .query_map(
            rusqlite::params![selection.run_id, selection.since_ms, selection.until_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut latencies =
        conn.prepare("SELECT ns FROM token_latencies WHERE request_id = ?1 ORDER BY idx")?;
    for (run_id, case_id, device_id, model_id) in runs {
        let run = read_rows(
            conn,
            "runs",
            "SELECT * FROM runs WHERE id = ?1",
            &[&run_id],
            &["case_id", "device_id", "model_id"],
        )?
        .pop()
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        let request_ids: Vec<i64> = conn
            .prepare("SELECT id FROM requests WHERE run_id = ?1 ORDER BY id")?
            .query_map([&run_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let request_rows = read_rows(
            conn,
            "requests",
            "SELECT * FROM requests WHERE run_id = ?1 ORDER BY id",
            &[&run_id],
            &["id", "run_id"],
        )?;
        let mut requests = Vec::with_capacity(request_rows.len());
        for (columns, id) in request_rows.into_iter().zip(request_ids) {
            let token_latencies_ns = latencies
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            requests.push(RequestRecord {
                columns,
                token_latencies_ns,
            });
        }
        let metrics = read_rows(
            conn,
            "run_metrics",
            "SELECT * FROM run_metrics WHERE run_id = ?1 ORDER BY metric",
            &[&run_id],
            &["run_id"],
        )?;
        let answers = read_rows(
            conn,
            "answers",
            "SELECT * FROM answers WHERE run_id = ?1 ORDER BY subject, question_index",
            &[&run_id],
            &["run_id"],
        )?;
        records.push(Record::Run(Box::new(RunRecord {
            answers,
            device: one_row(conn, "devices", "id", device_id)?,
            model: model_id
                .map(|id| one_row(conn, "models", "id", id))
                .transpose()?,
            case: one_row(conn, "cases", "id", case_id)?,
            run,
            requests,
            metrics,
        })));
    }
    // Device measurements and parity rows have no run; a run selection leaves them out.
    if selection.run_id.is_none() {
        let measurements: Vec<(i64, i64)> = conn
            .prepare(
                "SELECT id, device_id FROM device_measurements
                 WHERE (?1 IS NULL OR measured_at_ms >= ?1) AND (?2 IS NULL OR measured_at_ms < ?2)
                 ORDER BY measured_at_ms, id",
            )?
            .query_map(
                rusqlite::params![selection.since_ms, selection.until_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        for (id, device_id) in measurements {
            let mut measurement = one_row(conn, "device_measurements", "id", id)?;
            measurement.remove("device_id");
            records.push(Record::DeviceMeasurement {
                device: one_row(conn, "devices", "id", device_id)?,
                measurement,
            });
        }
        let parity: Vec<(i64, i64)> = conn
            .prepare(
                "SELECT id, model_id FROM parity
                 WHERE (?1 IS NULL OR created_at_ms >= ?1) AND (?2 IS NULL OR created_at_ms < ?2)
                 ORDER BY created_at_ms, id",
            )?
            .query_map(
                rusqlite::params![selection.since_ms, selection.until_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        for (id, model_id) in parity {
            let mut row = one_row(conn, "parity", "id", id)?;
            row.remove("model_id");
            records.push(Record::Parity {
                model: one_row(conn, "models", "id", model_id)?,
                parity: row,
            });
        }
    }
    Ok(records)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Writes `records` as JSON lines.
pub fn write_jsonl(records: &[Record], out: &mut dyn Write) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads an export, checking its header; errors name the file and line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, ExchangeError> {
    let file = std::fs::File::open(path).map_err(|source| ExchangeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ExchangeError::Read {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|e| ExchangeError::BadRecord {
            path: path.to_owned(),
            line: i + 1,
            message: e.to_string(),
        })?;
        match (&record, records.is_empty()) {
            (Record::Header(h), true) => check_header(path, h)?,
            (_, true) => {
                return Err(ExchangeError::BadRecord {
                    path: path.to_owned(),
                    line: i + 1,
                    message: "the first line must be the header record".to_owned(),
                });
            }
            (Record::Header(_), false) => {
                return Err(ExchangeError::BadRecord {
                    path: path.to_owned(),
                    line: i + 1,
                    message: "a second header record".to_owned(),
                });
            }
            _ => {}
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(ExchangeError::BadRecord {
            path: path.to_owned(),
            line: 1,
            message: "empty file: an export starts with a header record".to_owned(),
        });
    }
    Ok(records)
}

fn check_header(path: &Path, h: &Header) -> Result<(), ExchangeError> {
    if h.format != EXCHANGE_FORMAT || h.version > EXCHANGE_VERSION {
        return Err(ExchangeError::UnknownFormat {
            path: path.to_owned(),
            found_format: h.format.clone(),
            found_version: h.version,
        });
    }
    if h.schema_version > SCHEMA_VERSION {
        return Err(ExchangeError::TooNew {
            path: path.to_owned(),
            found: h.schema_version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Whether `path` is an SQLite database (by its 16-byte magic) rather than an export.
fn is_sqlite(path: &Path) -> Result<bool, ExchangeError> {
    use std::io::Read;
    let mut magic = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|source| ExchangeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let n = file
        .read(&mut magic)
        .map_err(|source| ExchangeError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(n == 16 && &magic == b"SQLite format 3\0")
}

/// Reads every record of a database file without writing to it. An older schema is migrated
/// on a private copy; a newer one is refused, naming both versions.
pub fn read_database(path: &Path, selection: &Selection) -> Result<Vec<Record>, ExchangeError> {
    let sql = |source| {
        ExchangeError::Store(StoreError::Open {
            path: path.to_owned(),
            source,
        })
    };
    let source =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    source.busy_timeout(crate::BUSY_TIMEOUT).map_err(sql)?;
    let found: u32 = source
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if found > SCHEMA_VERSION {
        return Err(ExchangeError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return read_records(&source, selection).map_err(sql);
    }
    let copy = migrated_copy(&source, path)?;
    drop(source);
    let migrated = Store::open_with(
        copy.path(),
        &crate::OpenOptions {
            recover_stale_runs: false,
            ..crate::OpenOptions::default()
        },
    )?;
    read_records(migrated.connection(), selection).map_err(sql)
}

/// A private, migrated copy of an older database, deleted when dropped: whoever only reads an
/// older file (ingest, the report) migrates this copy and never writes to the file itself.
#[derive(Debug)]
pub struct MigratedCopy(PathBuf);

impl MigratedCopy {
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for MigratedCopy {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// Copies the database `source` (opened read-only from `path`) into a temporary file and
/// migrates the copy to this build's schema. Stale `running` rows stay as they are: only a
/// process on their host may decide they died.
pub fn migrated_copy(source: &Connection, path: &Path) -> Result<MigratedCopy, StoreError> {
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let copy = MigratedCopy(std::env::temp_dir().join(format!(
        "edgebench-copy-{}-{}-{}.sqlite",
        std::process::id(),
        now_ms(),
        COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )));
    // VACUUM INTO takes a consistent snapshot even while the source is being written, and
    // works on a read-only connection.
    source
        .execute("VACUUM INTO ?1", [copy.path().display().to_string()])
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
    drop(Store::open_with(
        copy.path(),
        &crate::OpenOptions {
            recover_stale_runs: false,
            ..crate::OpenOptions::default()
        },
    )?);
    Ok(copy)
}

/// Reads a database or an export, whichever `path` is.
pub fn read_any(path: &Path) -> Result<Vec<Record>, ExchangeError> {
    if is_sqlite(path)? {
        read_database(path, &Selection::default())
    } else {
        read_jsonl(path)
    }
}

impl Store {
    /// The records `selection` picks from this database, header first.
    pub fn export(&self, selection: &Selection) -> Result<Vec<Record>, StoreError> {
        read_records(self.connection(), selection).map_err(|source| StoreError::Query {
            path: self.path().to_owned(),
            action: "export runs",
            source,
        })
    }

    /// Ingests every record of `source` (a database or an export) into this database, one
    /// transaction per record: an interrupted ingest leaves whole records only, and running it
    /// again adds exactly what is missing.
    pub fn ingest(&self, source: &Path) -> Result<IngestSummary, ExchangeError> {
        let records = read_any(source)?;
        self.ingest_records(source, &records)
    }

    /// Ingests already-read records; `source` names them in errors.
    pub fn ingest_records(
        &self,
        source: &Path,
        records: &[Record],
    ) -> Result<IngestSummary, ExchangeError> {
        let mut summary = IngestSummary::default();
        for record in records {
            if matches!(record, Record::Header(_)) {
                continue;
            }
            // Lock errors are retried with the whole record's transaction; a malformed record is not.
            let outcome = self.with_retry(|s| match s.ingest_one(source, record) {
                Ok(outcome) => Ok(Ok(outcome)),
                Err(Ingest::Sql(e)) => Err(lock_or(
                    s.path(),
                    s.options.busy_timeout,
                    e,
                    "ingest a record",
                )),
                Err(Ingest::Exchange(e)) => Ok(Err(e)),
            })??;
            summary.count(outcome);
        }
        Ok(summary)
    }

    fn ingest_one(&self, source: &Path, record: &Record) -> Result<IngestOutcome, Ingest> {
        // IMMEDIATE: the existence checks and the inserts see the same database.
        let tx = rusqlite::Transaction::new_unchecked(
            self.connection(),
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let outcome = match record {
            Record::Header(_) => IngestOutcome::AlreadyPresent,
            Record::Run(run) => ingest_run(&tx, source, run)?,
            Record::DeviceMeasurement {
                device,
                measurement,
            } => {
                let device_id = upsert(&tx, source, "devices", "fingerprint", device)?;
                insert_unless_present(
                    &tx,
                    source,
                    "device_measurements",
                    measurement,
                    &[("device_id", Value::from(device_id))],
                    &["device_id", "kind", "measured_at_ms"],
                )?
            }
            Record::Parity { model, parity } => {
                let model_id = upsert(&tx, source, "models", "sha256", model)?;
                insert_unless_present(
                    &tx,
                    source,
                    "parity",
                    parity,
                    &[("model_id", Value::from(model_id))],
                    &[
                        "invocation",
                        "model_id",
                        "reference_backend",
                        "candidate_backend",
                        "prompt_set",
                        "prompt_id",
                        "created_at_ms",
                    ],
                )?
            }
        };
        tx.commit()?;
        Ok(outcome)
    }
}

/// Ingest's internal error: SQL errors stay typed so lock errors are retried.
enum Ingest {
    Sql(rusqlite::Error),
    Exchange(ExchangeError),
}

impl From<rusqlite::Error> for Ingest {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<ExchangeError> for Ingest {
    fn from(e: ExchangeError) -> Self {
        Self::Exchange(e)
    }
}

/// Inserts `columns` (plus `extra`) into `table`; every column must exist in this build.
fn insert(
    conn: &Connection,
    source: &Path,
    table: &'static str,
    columns: &Columns,
    extra: &[(&str, Value)],
) -> Result<i64, Ingest> {
    let writable = writable_columns(conn, table)?;
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (name, value) in columns
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain(extra.iter().map(|(k, v)| (*k, v)))
    {
        if !writable.contains(name) {
            return Err(ExchangeError::UnknownColumn {
                path: source.to_owned(),
                table,
                column: name.to_owned(),
            }
            .into());
        }
        names.push(name);
        values.push(to_sql(value));
    }
    let placeholders = (1..=names.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.execute(
        &format!(
            "INSERT INTO {table} ({}) VALUES ({placeholders})",
            names.join(", ")
        ),
        params_from_iter(values),
    )?;
    Ok(conn.last_insert_rowid())
}

/// The id of the row whose `key` equals the record's, inserting the record if there is none.
fn upsert(
    conn: &Connection,
    source: &Path,
    table: &'static str,
    key: &'static str,
    columns: &Columns,
) -> Result<i64, Ingest> {
    let value = columns.get(key).ok_or_else(|| ExchangeError::MissingKey {
        path: source.to_owned(),
        table,
        column: key,
    })?;
    let existing: Option<i64> = rusqlite::OptionalExtension::optional(conn.query_row(
        &format!("SELECT id FROM {table} WHERE {key} = ?1"),
        [to_sql(value)],
        |r| r.get(0),
    ))?;
    match existing {
        Some(id) => Ok(id),
        None => insert(conn, source, table, columns, &[]),
    }
}

/// Inserts a row unless one with the same `identity` columns exists.
fn insert_unless_present(
    conn: &Connection,
    source: &Path,
    table: &'static str,
    columns: &Columns,
    extra: &[(&str, Value)],
    identity: &[&'static str],
) -> Result<IngestOutcome, Ingest> {
    let mut values = Vec::new();
    for key in identity {
        let value = extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .or_else(|| columns.get(*key))
            .ok_or_else(|| ExchangeError::MissingKey {
                path: source.to_owned(),
                table,
                column: key,
            })?;
        values.push(to_sql(value));
    }
    let condition = identity
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} IS ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let present: bool = conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {condition})"),
        params_from_iter(values),
        |r| r.get(0),
    )?;
    if present {
        return Ok(IngestOutcome::AlreadyPresent);
    }
    insert(conn, source, table, columns, extra)?;
    Ok(IngestOutcome::Added)
}

fn ingest_run(
    conn: &Connection,
    source: &Path,
    record: &RunRecord,
) -> Result<IngestOutcome, Ingest> {
    let run_id = record
        .run
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ExchangeError::MissingKey {
            path: source.to_owned(),
            table: "runs",
            column: "id",
        })?
        .to_owned();
    let incoming_status = record
        .run
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let existing: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT status FROM runs WHERE id = ?1",
        [&run_id],
        |r| r.get(0),
    ))?;
    let outcome = match existing.as_deref() {
        None => IngestOutcome::Added,
        // A lost run (left `running`, or marked aborted when its writer vanished) gives way to
        // the same run finished elsewhere; anything else already present stays as it is.
        Some("running" | "aborted") if matches!(incoming_status, "passed" | "failed") => {
            conn.execute("DELETE FROM run_metrics WHERE run_id = ?1", [&run_id])?;
            conn.execute("DELETE FROM answers WHERE run_id = ?1", [&run_id])?;
            conn.execute(
                "DELETE FROM token_latencies WHERE request_id IN (SELECT id FROM requests WHERE run_id = ?1)",
                [&run_id],
            )?;
            conn.execute("DELETE FROM requests WHERE run_id = ?1", [&run_id])?;
            conn.execute("DELETE FROM runs WHERE id = ?1", [&run_id])?;
            IngestOutcome::Completed
        }
        Some(_) => return Ok(IngestOutcome::AlreadyPresent),
    };
    let device_id = upsert(conn, source, "devices", "fingerprint", &record.device)?;
    let model_id = record
        .model
        .as_ref()
        .map(|m| upsert(conn, source, "models", "sha256", m))
        .transpose()?;
    let case_id = upsert(conn, source, "cases", "case_key", &record.case)?;
    insert(
        conn,
        source,
        "runs",
        &record.run,
        &[
            ("case_id", Value::from(case_id)),
            ("device_id", Value::from(device_id)),
            ("model_id", model_id.map_or(Value::Null, Value::from)),
        ],
    )?;
    let mut latency = conn
        .prepare_cached("INSERT INTO token_latencies (request_id, idx, ns) VALUES (?1, ?2, ?3)")?;
    for request in &record.requests {
        let request_id = insert(
            conn,
            source,
            "requests",
            &request.columns,
            &[("run_id", Value::from(run_id.clone()))],
        )?;
        for (idx, ns) in request.token_latencies_ns.iter().enumerate() {
            latency.execute(rusqlite::params![request_id, idx as i64, ns])?;
        }
    }
    for metric in &record.metrics {
        insert(
            conn,
            source,
            "run_metrics",
            metric,
            &[("run_id", Value::from(run_id.clone()))],
        )?;
    }
    for answer in &record.answers {
        insert(
            conn,
            source,
            "answers",
            answer,
            &[("run_id", Value::from(run_id.clone()))],
        )?;
    }
    Ok(outcome)
}

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

fn text(v: Option<&Value>) -> String {
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
