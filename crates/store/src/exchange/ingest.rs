//! Ingesting records into a database: one transaction per record, keyed by natural keys, so an
//! interrupted ingest leaves whole records only and running it again adds what is missing.

use super::*;

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
            Record::Calibration {
                device,
                calibration,
            } => {
                let device_id = upsert(&tx, source, "devices", "fingerprint", device)?;
                insert_unless_present(
                    &tx,
                    source,
                    "calibrations",
                    calibration,
                    &[("device_id", Value::from(device_id))],
                    &["device_id", "case_key", "metric", "calibrated_at_ms"],
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
pub(crate) enum Ingest {
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
pub(crate) fn insert(
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
pub(crate) fn upsert(
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
pub(crate) fn insert_unless_present(
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

pub(crate) fn ingest_run(
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
