//! Reading records: from a database (an older one through a migrated private copy) or a JSON
//! lines export.

use super::*;

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
        let calibrations: Vec<(i64, i64)> = conn
            .prepare(
                "SELECT id, device_id FROM calibrations
                 WHERE (?1 IS NULL OR calibrated_at_ms >= ?1)
                   AND (?2 IS NULL OR calibrated_at_ms < ?2)
                 ORDER BY calibrated_at_ms, id",
            )?
            .query_map(
                rusqlite::params![selection.since_ms, selection.until_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        for (id, device_id) in calibrations {
            let mut calibration = one_row(conn, "calibrations", "id", id)?;
            calibration.remove("device_id");
            records.push(Record::Calibration {
                device: one_row(conn, "devices", "id", device_id)?,
                calibration,
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
