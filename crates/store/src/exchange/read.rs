//! Reading records: from a database (an older one through a migrated private copy) or a JSON
//! lines export.

use std::collections::BTreeMap;

use super::*;
use crate::sql::Lite;

/// Reads every record `selection` picks from an open database, header first.
pub(crate) fn read_records(
    db: &mut dyn Sql,
    selection: &Selection,
    schema_version: u32,
) -> Result<Vec<Record>, SqlError> {
    let mut records = vec![Record::Header(Header {
        format: EXCHANGE_FORMAT.to_owned(),
        version: EXCHANGE_VERSION,
        schema_version,
        exported_at_ms: now_ms(),
    })];
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::from);
    let window = [opt(selection.since_ms), opt(selection.until_ms)];
    let runs = db.rows(
        "SELECT id, case_id, device_id, model_id FROM runs
         WHERE (CAST($1 AS TEXT) IS NULL OR id = CAST($1 AS TEXT)) AND (CAST($2 AS BIGINT) IS NULL OR started_at_ms >= CAST($2 AS BIGINT))
           AND (CAST($3 AS BIGINT) IS NULL OR started_at_ms < CAST($3 AS BIGINT))
         ORDER BY started_at_ms, id",
        &[
            selection.run_id.clone().map_or(Value::Null, Value::from),
            window[0].clone(),
            window[1].clone(),
        ],
    )?;
    for row in runs {
        let run_id = row[0].clone();
        let id_of = |i: usize, name: &str| crate::sql::int(name, &row[i]);
        let (case_id, device_id) = (id_of(1, "case_id")?, id_of(2, "device_id")?);
        let model_id = match &row[3] {
            Value::Null => None,
            v => Some(crate::sql::int("model_id", v)?),
        };
        let run = read_rows(
            db,
            "runs",
            "SELECT * FROM runs WHERE id = $1",
            std::slice::from_ref(&run_id),
            &["case_id", "device_id", "model_id"],
        )?
        .pop()
        .ok_or_else(|| SqlError::NoRow(format!("in runs with id = {run_id}")))?;
        let request_rows = read_rows(
            db,
            "requests",
            "SELECT * FROM requests WHERE run_id = $1 ORDER BY id",
            std::slice::from_ref(&run_id),
            &["run_id"],
        )?;
        let mut latencies: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        db.each_row(
            "SELECT t.request_id, t.ns FROM token_latencies t JOIN requests q ON q.id = t.request_id
             WHERE q.run_id = $1 ORDER BY t.request_id, t.idx",
            std::slice::from_ref(&run_id),
            &mut |_, v| {
                latencies
                    .entry(crate::sql::int("request_id", &v[0])?)
                    .or_default()
                    .push(crate::sql::int("ns", &v[1])?);
                Ok(())
            },
        )?;
        let mut requests = Vec::with_capacity(request_rows.len());
        for mut columns in request_rows {
            let id = crate::sql::int("id", columns.get("id").unwrap_or(&Value::Null))?;
            columns.remove("id");
            requests.push(RequestRecord {
                columns,
                token_latencies_ns: latencies.remove(&id).unwrap_or_default(),
            });
        }
        let metrics = read_rows(
            db,
            "run_metrics",
            "SELECT * FROM run_metrics WHERE run_id = $1 ORDER BY metric",
            std::slice::from_ref(&run_id),
            &["run_id"],
        )?;
        let answers = read_rows(
            db,
            "answers",
            "SELECT * FROM answers WHERE run_id = $1 ORDER BY subject, question_index",
            std::slice::from_ref(&run_id),
            &["run_id"],
        )?;
        records.push(Record::Run(Box::new(RunRecord {
            answers,
            device: one_row(db, "devices", "id", device_id)?,
            model: model_id
                .map(|id| one_row(db, "models", "id", id))
                .transpose()?,
            case: one_row(db, "cases", "id", case_id)?,
            run,
            requests,
            metrics,
        })));
    }
    // Device measurements and parity rows have no run; a run selection leaves them out.
    if selection.run_id.is_none() {
        for (table, time, owner) in [
            ("device_measurements", "measured_at_ms", "device_id"),
            ("calibrations", "calibrated_at_ms", "device_id"),
            ("parity", "created_at_ms", "model_id"),
        ] {
            let rows = db.rows(
                &format!(
                    "SELECT id, {owner} FROM {table}
                     WHERE (CAST($1 AS BIGINT) IS NULL OR {time} >= CAST($1 AS BIGINT)) AND (CAST($2 AS BIGINT) IS NULL OR {time} < CAST($2 AS BIGINT))
                     ORDER BY {time}, id"
                ),
                &window,
            )?;
            for row in rows {
                let id = crate::sql::int("id", &row[0])?;
                let owner_id = crate::sql::int(owner, &row[1])?;
                let mut columns = one_row(db, table, "id", id)?;
                columns.remove(owner);
                records.push(match table {
                    "device_measurements" => Record::DeviceMeasurement {
                        device: one_row(db, "devices", "id", owner_id)?,
                        measurement: columns,
                    },
                    "calibrations" => Record::Calibration {
                        device: one_row(db, "devices", "id", owner_id)?,
                        calibration: columns,
                    },
                    _ => Record::Parity {
                        model: one_row(db, "models", "id", owner_id)?,
                        parity: columns,
                    },
                });
            }
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

pub(crate) fn check_header(path: &Path, h: &Header) -> Result<(), ExchangeError> {
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
pub(crate) fn is_sqlite(path: &Path) -> Result<bool, ExchangeError> {
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
    let unreadable = |e: SqlError| match e {
        SqlError::Sqlite(source) => sql(source),
        other => ExchangeError::Store(StoreError::Unreadable {
            path: path.to_owned(),
            action: "read runs",
            message: other.to_string(),
        }),
    };
    if found == SCHEMA_VERSION {
        return read_records(&mut Lite(&source), selection, found).map_err(unreadable);
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
    read_records(&mut Lite(migrated.connection()), selection, SCHEMA_VERSION).map_err(unreadable)
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
