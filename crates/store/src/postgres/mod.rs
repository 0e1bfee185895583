//! PostgreSQL, the device lab's shared store: the same schema and migrations as SQLite (in
//! PostgreSQL's dialect, see [`schema`]), the same ingest and export (written once over
//! [`crate::sql::Sql`]), the same report reader. Cases still write to a local SQLite file;
//! `nightly` and `ingest` move finished runs here, one transaction per run.

use std::path::Path;

use serde_json::Value;

use crate::exchange::{ExchangeError, IngestSummary, Record, Selection};
pub use crate::sql::pg_values::describe;
use crate::sql::{Pg, PgCache, Sql, SqlError};
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

    pub(crate) fn sql(&mut self) -> Pg<'_, postgres::Client> {
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

    /// Runs SQL as it is (administration and tests).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(self.err("run SQL"))
    }

    /// The client, for statements this module has no method for (tests, administration).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}
