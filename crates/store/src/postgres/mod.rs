//! PostgreSQL, the device lab's shared store: the same schema and migrations as SQLite (in
//! PostgreSQL's dialect, see [`schema`]), the same ingest and export (written once over
//! [`crate::sql::Sql`]), the same report reader. Cases still write to a local SQLite file;
//! `nightly` and `ingest` move finished runs here, one transaction per run.

use std::path::Path;

use postgres::types::{ToSql, Type};
use serde_json::Value;

use crate::exchange::{ExchangeError, IngestSummary, Record, Selection};
use crate::sql::{Pg, PgCache, Sql, SqlError, mismatch};
use crate::{RunStatus, SCHEMA_VERSION, StoreError};

mod schema;
mod target;

pub use schema::{REPORTER_ROLE, WRITER_ROLE};
pub use target::{PgTarget, TargetError, TlsMode, is_connection_string};

/// An open connection to the lab's PostgreSQL database, schema checked (and migrated when the
/// connecting role owns it).
pub struct PgStore {
    client: postgres::Client,
    cache: PgCache,
    target: PgTarget,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL error as one line: the server's message with its SQLSTATE, or the client's
/// error and its causes. The connection string is never part of it.
#[must_use]
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; {detail}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

impl PgStore {
    /// Connects to `target` and brings its schema to this build's version: migrated under a
    /// lock when older (by a role allowed to), refused naming both versions when newer.
    pub fn connect(target: &PgTarget) -> Result<Self, StoreError> {
        let mut store = Self::open_connection(target)?;
        store.migrate()?;
        Ok(store)
    }

    fn open_connection(target: &PgTarget) -> Result<Self, StoreError> {
        let tls = target.connector().map_err(|e| StoreError::PgTls {
            target: target.to_string(),
            message: e.to_string(),
        })?;
        let client = target
            .config
            .connect(tls)
            .map_err(|source| StoreError::Pg {
                target: target.to_string(),
                action: "connect",
                source: Box::new(source),
            })?;
        Ok(Self {
            client,
            cache: PgCache::default(),
            target: target.clone(),
        })
    }

    /// Connects for reading only (a report, an export): the schema must be this build's
    /// version; an older one is named with the command that migrates it, since a reader never
    /// writes (and the reporter role can't).
    pub fn connect_read_only(target: &PgTarget) -> Result<Self, StoreError> {
        let mut store = Self::open_connection(target)?;
        let found = store.schema_version()?;
        if found != SCHEMA_VERSION {
            return Err(if found > SCHEMA_VERSION {
                StoreError::PgTooNew {
                    target: target.to_string(),
                    found,
                    supported: SCHEMA_VERSION,
                }
            } else {
                StoreError::PgOlder {
                    target: target.to_string(),
                    found,
                    supported: SCHEMA_VERSION,
                }
            });
        }
        Ok(store)
    }

    #[must_use]
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    pub(crate) fn err(&self, action: &'static str) -> impl Fn(postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Pg {
            target: self.target.to_string(),
            action,
            source: Box::new(source),
        }
    }

    pub(crate) fn sql_err(&self, action: &'static str) -> impl Fn(SqlError) -> StoreError + '_ {
        move |e| match e {
            SqlError::Postgres(source) => StoreError::Pg {
                target: self.target.to_string(),
                action,
                source: Box::new(source),
            },
            other => StoreError::PgValue {
                target: self.target.to_string(),
                action,
                message: other.to_string(),
            },
        }
    }

    fn sql(&mut self) -> Pg<'_, postgres::Client> {
        Pg {
            client: &mut self.client,
            cache: &mut self.cache,
        }
    }

    /// Number of runs with `status`.
    pub fn count_runs(&mut self, status: RunStatus) -> Result<u64, StoreError> {
        let n = self
            .sql()
            .scalar(
                "SELECT COUNT(*) FROM runs WHERE status = $1",
                &[Value::from(status.as_str())],
            )
            .map_err(self.sql_err("count runs"))?;
        Ok(n.and_then(|v| v.as_u64()).unwrap_or(0))
    }

    /// The records `selection` picks, header first (the interchange format of `export`).
    pub fn export(&mut self, selection: &Selection) -> Result<Vec<Record>, StoreError> {
        let version = self.schema_version()?;
        crate::exchange::read_records(&mut self.sql(), selection, version)
            .map_err(self.sql_err("export runs"))
    }

    /// Ingests a database or an export file, one transaction per record (see
    /// [`crate::Store::ingest`]).
    pub fn ingest(&mut self, source: &Path) -> Result<IngestSummary, ExchangeError> {
        let records = crate::exchange::read_any(source)?;
        self.ingest_records(source, &records)
    }

    /// Ingests already-read records; `source` names them in errors. A transaction that lost
    /// a race with another host (the same device or run inserted meanwhile) runs again.
    pub fn ingest_records(
        &mut self,
        source: &Path,
        records: &[Record],
    ) -> Result<IngestSummary, ExchangeError> {
        let mut summary = IngestSummary::default();
        for record in records {
            if matches!(record, Record::Header(_)) {
                continue;
            }
            let mut attempt = 0u32;
            let outcome = loop {
                match self.ingest_one(source, record) {
                    Ok(outcome) => break outcome,
                    Err(crate::exchange::Ingest::Sql(e))
                        if e.is_retryable_conflict() && attempt < 20 =>
                    {
                        attempt += 1;
                        std::thread::sleep(std::time::Duration::from_millis(
                            (1 << attempt.min(6)) + u64::from(std::process::id() % 7),
                        ));
                    }
                    Err(crate::exchange::Ingest::Sql(e)) => {
                        return Err(ExchangeError::Store(self.sql_err("ingest a record")(e)));
                    }
                    Err(crate::exchange::Ingest::Exchange(e)) => return Err(e),
                }
            };
            summary.count(outcome);
        }
        Ok(summary)
    }

    fn ingest_one(
        &mut self,
        source: &Path,
        record: &Record,
    ) -> Result<crate::exchange::IngestOutcome, crate::exchange::Ingest> {
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| crate::exchange::Ingest::Sql(e.into()))?;
        let outcome = crate::exchange::ingest_record(
            &mut Pg {
                client: &mut tx,
                cache: &mut self.cache,
            },
            source,
            record,
        )?;
        tx.commit()
            .map_err(|e| crate::exchange::Ingest::Sql(e.into()))?;
        Ok(outcome)
    }

    /// Everything a report is built from, read from this database.
    pub fn dataset(&mut self) -> Result<crate::dataset::Dataset, StoreError> {
        let version = self.schema_version()?;
        crate::dataset::load_with(&mut self.sql(), version)
            .map_err(self.sql_err("read the results"))
    }

    /// Runs SQL as it is (administration and tests).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(self.err("run SQL"))
    }

    /// The client, for statements this module has no method for (tests, administration).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// Binds JSON values to a prepared statement's parameters, converted to the types the server
/// inferred for them.
pub(crate) fn bind(
    stmt: &postgres::Statement,
    params: &[Value],
) -> Result<Vec<Box<dyn ToSql + Sync>>, SqlError> {
    stmt.params()
        .iter()
        .zip(params)
        .enumerate()
        .map(|(i, (ty, v))| -> Result<Box<dyn ToSql + Sync>, SqlError> {
            let name = format!("${}", i + 1);
            let as_int = |v: &Value| crate::sql::int(&name, v);
            Ok(match (ty, v) {
                (t, Value::Null) if *t == Type::INT8 => Box::new(None::<i64>),
                (t, Value::Null) if *t == Type::INT4 => Box::new(None::<i32>),
                (t, Value::Null) if *t == Type::FLOAT8 => Box::new(None::<f64>),
                (t, Value::Null) if *t == Type::BOOL => Box::new(None::<bool>),
                (_, Value::Null) => Box::new(None::<String>),
                (t, v) if *t == Type::INT8 => Box::new(as_int(v)?),
                (t, v) if *t == Type::INT4 => Box::new(
                    i32::try_from(as_int(v)?)
                        .map_err(|_| mismatch(&name, v, "a 32-bit integer"))?,
                ),
                (t, v) if *t == Type::INT2 => Box::new(
                    i16::try_from(as_int(v)?)
                        .map_err(|_| mismatch(&name, v, "a 16-bit integer"))?,
                ),
                (t, v) if *t == Type::FLOAT8 => {
                    Box::new(v.as_f64().ok_or_else(|| mismatch(&name, v, "a number"))?)
                }
                (t, v) if *t == Type::BOOL => Box::new(as_int(v)? != 0),
                (_, Value::String(s)) => Box::new(s.clone()),
                (_, other) => Box::new(other.to_string()),
            })
        })
        .collect()
}

pub(crate) fn refs(bound: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    bound
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Column `i` of `row` as a JSON value (the interchange format's types).
pub(crate) fn to_json(row: &postgres::Row, i: usize, name: &str) -> Result<Value, SqlError> {
    let ty = row.columns()[i].type_().clone();
    let finite = |f: Option<f64>| {
        f.and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    Ok(if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map_or(Value::Null, Value::from)
    } else if ty == Type::FLOAT8 {
        finite(row.try_get::<_, Option<f64>>(i)?)
    } else if ty == Type::FLOAT4 {
        finite(row.try_get::<_, Option<f32>>(i)?.map(f64::from))
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, Value::from)
    } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(&ty) {
        row.try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::from)
    } else {
        return Err(SqlError::Type {
            column: name.to_owned(),
            found: format!("PostgreSQL type {ty}"),
            expected: "an integer, a float, a boolean or text",
        });
    })
}
