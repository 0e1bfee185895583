//! Ingesting records into a database: one transaction per record, keyed by natural keys, so an
//! interrupted ingest leaves whole records only and running it again adds what is missing.

use super::*;
use crate::sql::{Lite, Sql, SqlError};

impl Store {
    /// The records `selection` picks from this database, header first.
    pub fn export(&self, selection: &Selection) -> Result<Vec<Record>, StoreError> {
        let version = self.schema_version()?;
        read_records(&mut Lite(self.connection()), selection, version).map_err(|e| match e {
            SqlError::Sqlite(source) => StoreError::Query {
                path: self.path().to_owned(),
                action: "export runs",
                source,
            },
            other => StoreError::Unreadable {
                path: self.path().to_owned(),
                action: "export runs",
                message: other.to_string(),
            },
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
                Err(Ingest::Sql(SqlError::Sqlite(e))) => Err(lock_or(
                    s.path(),
                    s.options.busy_timeout,
                    e,
                    "ingest a record",
                )),
                Err(Ingest::Sql(other)) => Ok(Err(ExchangeError::BadValue {
                    path: source.to_owned(),
                    message: other.to_string(),
                })),
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
        )
        .map_err(|e| Ingest::Sql(e.into()))?;
        let outcome = ingest_record(&mut Lite(&tx), source, record)?;
        tx.commit().map_err(|e| Ingest::Sql(e.into()))?;
        Ok(outcome)
    }
}

/// Ingests one record inside the caller's transaction, on either database.
pub(crate) fn ingest_record(
    db: &mut dyn Sql,
    source: &Path,
    record: &Record,
) -> Result<IngestOutcome, Ingest> {
    Ok(match record {
        Record::Header(_) => IngestOutcome::AlreadyPresent,
        Record::Run(run) => ingest_run(db, source, run)?,
        Record::DeviceMeasurement {
            device,
            measurement,
        } => {
            let device_id = upsert(db, source, "devices", "fingerprint", device)?;
            insert_unless_present(
                db,
                source,
                "device_measurements",
                measurement,
                &[("device_id", Value::from(device_id))],
                &["device_id", "kind", "measured_at_ms"],
            )?
        }
        Record::Calibration {
            device,
            calibration,
        } => {
            let device_id = upsert(db, source, "devices", "fingerprint", device)?;
            insert_unless_present(
                db,
                source,
                "calibrations",
                calibration,
                &[("device_id", Value::from(device_id))],
                &["device_id", "case_key", "metric", "calibrated_at_ms"],
            )?
        }
        Record::Parity { model, parity } => {
            let model_id = upsert(db, source, "models", "sha256", model)?;
            insert_unless_present(
                db,
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
    })
}

/// Ingest's internal error: SQL errors stay typed so lock errors and races are retried.
#[derive(Debug)]
pub(crate) enum Ingest {
    Sql(SqlError),
    Exchange(ExchangeError),
}

impl From<SqlError> for Ingest {
    fn from(e: SqlError) -> Self {
        Self::Sql(e)
    }
}

impl From<ExchangeError> for Ingest {
    fn from(e: ExchangeError) -> Self {
        Self::Exchange(e)
    }
}

/// Inserts `columns` (plus `extra`) into `table`; every column must exist in this build. The
/// new row's `id` when `table` has one.
pub(crate) fn insert(
    db: &mut dyn Sql,
    source: &Path,
    table: &'static str,
    columns: &Columns,
    extra: &[(&str, Value)],
) -> Result<Option<i64>, Ingest> {
    let writable = db.writable_columns(table)?;
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
        values.push(value.clone());
    }
    let placeholders = (1..=names.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders})",
        names.join(", ")
    );
    if SURROGATE_KEYED.contains(&table) {
        let id = db.scalar(&format!("{sql} RETURNING id"), &values)?;
        Ok(Some(crate::sql::int("id", &id.unwrap_or(Value::Null))?))
    } else {
        db.execute(&sql, &values)?;
        Ok(None)
    }
}

/// Tables whose rows are keyed by a generated `id` (the others by natural keys).
const SURROGATE_KEYED: [&str; 7] = [
    "devices",
    "models",
    "cases",
    "requests",
    "parity",
    "device_measurements",
    "calibrations",
];

/// The id of the row whose `key` equals the record's, inserting the record if there is none.
pub(crate) fn upsert(
    db: &mut dyn Sql,
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
    if let Some(id) = db.known_id(table, value) {
        return Ok(id);
    }
    let existing = db.scalar(
        &format!("SELECT id FROM {table} WHERE {key} = $1"),
        std::slice::from_ref(value),
    )?;
    let id = match existing {
        Some(id) => crate::sql::int("id", &id)?,
        None => insert(db, source, table, columns, &[])?.unwrap_or_default(),
    };
    db.remember_id(table, value, id);
    Ok(id)
}

/// Inserts a row unless one with the same `identity` columns exists.
pub(crate) fn insert_unless_present(
    db: &mut dyn Sql,
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
        values.push(value.clone());
    }
    let condition = identity
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} IS NOT DISTINCT FROM ${}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let present = db.scalar(
        &format!("SELECT 1 FROM {table} WHERE {condition} LIMIT 1"),
        &values,
    )?;
    if present.is_some() {
        return Ok(IngestOutcome::AlreadyPresent);
    }
    insert(db, source, table, columns, extra)?;
    Ok(IngestOutcome::Added)
}

/// Inserts rows that share one set of columns (plus `extra`, the same for all) in one
/// statement per `max_rows`: one round trip for a run's metrics or requests on a server.
fn insert_many(
    db: &mut dyn Sql,
    source: &Path,
    table: &'static str,
    rows: &[&Columns],
    extra: &[(&str, Value)],
) -> Result<(), Ingest> {
    let writable = db.writable_columns(table)?;
    let mut start = 0;
    while start < rows.len() {
        let names: Vec<&str> = rows[start]
            .keys()
            .map(String::as_str)
            .chain(extra.iter().map(|(k, _)| *k))
            .collect();
        if let Some(unknown) = names.iter().find(|n| !writable.contains(**n)) {
            return Err(ExchangeError::UnknownColumn {
                path: source.to_owned(),
                table,
                column: (*unknown).to_owned(),
            }
            .into());
        }
        // A run of rows with the same keys, within PostgreSQL's 65,535 parameters.
        let max_rows = (60_000 / names.len().max(1)).max(1);
        let same = rows[start..]
            .iter()
            .take(max_rows)
            .take_while(|r| r.keys().eq(rows[start].keys()))
            .count();
        let batch = &rows[start..start + same];
        let width = names.len();
        let placeholders = (0..batch.len())
            .map(|i| {
                let cells = (1..=width)
                    .map(|j| format!("${}", i * width + j))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({cells})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let values: Vec<Value> = batch
            .iter()
            .flat_map(|r| {
                r.values()
                    .cloned()
                    .chain(extra.iter().map(|(_, v)| v.clone()))
            })
            .collect();
        db.execute(
            &format!(
                "INSERT INTO {table} ({}) VALUES {placeholders}",
                names.join(", ")
            ),
            &values,
        )?;
        start += same;
    }
    Ok(())
}

/// Inserts a run's requests and their token latencies: on a server, ids reserved in one round
/// trip, the requests in one statement and the samples in one `COPY`; in process, row by row.
fn insert_requests(
    db: &mut dyn Sql,
    source: &Path,
    run: &Value,
    requests: &[RequestRecord],
) -> Result<(), Ingest> {
    let mut latencies: Vec<[i64; 3]> = Vec::new();
    let mut push = |id: i64, request: &RequestRecord| {
        latencies.extend(
            request
                .token_latencies_ns
                .iter()
                .enumerate()
                .map(|(i, &ns)| [id, i as i64, ns]),
        );
    };
    if requests.is_empty() {
        return Ok(());
    }
    if let Some(ids) = db.reserve_ids("requests", requests.len())? {
        let with_ids: Vec<Columns> = requests
            .iter()
            .zip(&ids)
            .map(|(r, &id)| {
                let mut c = r.columns.clone();
                // The reserved id, whatever the record carried (exports carry none).
                c.insert("id".into(), Value::from(id));
                c
            })
            .collect();
        let refs: Vec<&Columns> = with_ids.iter().collect();
        insert_many(db, source, "requests", &refs, &[("run_id", run.clone())])?;
        for (request, &id) in requests.iter().zip(&ids) {
            push(id, request);
        }
    } else {
        for request in requests {
            let id = insert(
                db,
                source,
                "requests",
                &request.columns,
                &[("run_id", run.clone())],
            )?
            .unwrap_or_default();
            push(id, request);
        }
    }
    db.append_token_latencies(&latencies)?;
    Ok(())
}

pub(crate) fn ingest_run(
    db: &mut dyn Sql,
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
    let existing = db.scalar(
        "SELECT status FROM runs WHERE id = $1",
        &[Value::from(run_id.as_str())],
    )?;
    let outcome = match existing.as_ref().and_then(Value::as_str) {
        None => IngestOutcome::Added,
        // A lost run (left `running`, or marked aborted when its writer vanished) gives way to
        // the same run finished elsewhere; anything else already present stays as it is.
        Some("running" | "aborted") if matches!(incoming_status, "passed" | "failed") => {
            db.discard_incomplete_run(&run_id)?;
            IngestOutcome::Completed
        }
        Some(_) => return Ok(IngestOutcome::AlreadyPresent),
    };
    let device_id = upsert(db, source, "devices", "fingerprint", &record.device)?;
    let model_id = record
        .model
        .as_ref()
        .map(|m| upsert(db, source, "models", "sha256", m))
        .transpose()?;
    let case_id = upsert(db, source, "cases", "case_key", &record.case)?;
    insert(
        db,
        source,
        "runs",
        &record.run,
        &[
            ("case_id", Value::from(case_id)),
            ("device_id", Value::from(device_id)),
            ("model_id", model_id.map_or(Value::Null, Value::from)),
        ],
    )?;
    let run = Value::from(run_id);
    insert_requests(db, source, &run, &record.requests)?;
    let metrics: Vec<&Columns> = record.metrics.iter().collect();
    insert_many(
        db,
        source,
        "run_metrics",
        &metrics,
        &[("run_id", run.clone())],
    )?;
    for answer in &record.answers {
        insert(db, source, "answers", answer, &[("run_id", run.clone())])?;
    }
    Ok(outcome)
}
