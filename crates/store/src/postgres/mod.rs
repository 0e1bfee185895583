//! PostgreSQL, the device lab's shared store: the same schema and migrations as SQLite (in
//! PostgreSQL's dialect, see [`schema`]), the same ingest and export (written once over
//! [`crate::sql::Sql`]), the same report reader. Cases still write to a local SQLite file;
//! `nightly` and `ingest` move finished runs here, whole runs per transaction (batches of up to
//! 50).

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

/// Records per ingest transaction: up to this many runs, or fewer when their raw samples reach
/// [`SAMPLES_PER_TRANSACTION`]. A commit waits for the server's WAL flush: one per run
/// capped a single writer near 70 runs/s.
const RECORDS_PER_TRANSACTION: usize = 50;
const SAMPLES_PER_TRANSACTION: usize = 100_000;

/// `records` cut into ingest transactions.
fn ingest_batches<'r>(records: &'r [&'r Record]) -> Vec<&'r [&'r Record]> {
    let mut batches = Vec::new();
    let (mut start, mut samples) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        samples += match record {
            Record::Run(run) => run
                .requests
                .iter()
                .map(|q| q.token_latencies_ns.len())
                .sum(),
            _ => 0,
        };
        if i + 1 - start >= RECORDS_PER_TRANSACTION || samples >= SAMPLES_PER_TRANSACTION {
            batches.push(&records[start..=i]);
            start = i + 1;
            samples = 0;
        }
    }
    if start < records.len() {
        batches.push(&records[start..]);
    }
    batches
}

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

    /// Ingests a database or an export file, whole records per transaction (see
    /// [`crate::Store::ingest`]).
    pub fn ingest(&mut self, source: &Path) -> Result<IngestSummary, ExchangeError> {
        let records = crate::exchange::read_any(source)?;
        self.ingest_records(source, &records)
    }

    /// Ingests already-read records; `source` names them in errors. Records go in batches, one
    /// transaction each (whole records only, as before: a batch lands or not, and an ingest run
    /// again adds what is missing); a batch that lost a race with another host (the same device
    /// or run inserted meanwhile) runs again.
    pub fn ingest_records(
        &mut self,
        source: &Path,
        records: &[Record],
    ) -> Result<IngestSummary, ExchangeError> {
        let mut summary = IngestSummary::default();
        let records: Vec<&Record> = records
            .iter()
            .filter(|r| !matches!(r, Record::Header(_)))
            .collect();
        for batch in ingest_batches(&records) {
            let mut attempt = 0u32;
            let outcomes = loop {
                match self.ingest_batch(source, batch) {
                    Ok(outcomes) => break outcomes,
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
            for outcome in outcomes {
                summary.count(outcome);
            }
        }
        Ok(summary)
    }

    fn ingest_batch(
        &mut self,
        source: &Path,
        batch: &[&Record],
    ) -> Result<Vec<crate::exchange::IngestOutcome>, crate::exchange::Ingest> {
        let result = (|| {
            let mut tx = self
                .client
                .transaction()
                .map_err(|e| crate::exchange::Ingest::Sql(e.into()))?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for record in batch {
                outcomes.push(crate::exchange::ingest_record(
                    &mut Pg {
                        client: &mut tx,
                        cache: &mut self.cache,
                    },
                    source,
                    record,
                )?);
            }
            Pg {
                client: &mut tx,
                cache: &mut self.cache,
            }
            .flush_token_latencies()?;
            tx.commit()
                .map_err(|e| crate::exchange::Ingest::Sql(e.into()))?;
            Ok(outcomes)
        })();
        if result.is_err() {
            // Ids remembered in the failed transaction may not exist, and what it held is gone.
            self.cache.ids.clear();
            self.cache.pending_latencies.clear();
        }
        result
    }

    /// Deletes the raw samples of runs before the last `keep_nights` nights (UTC days, the newest
    /// run's included), in one transaction; summaries stay ([`crate::retention`]). Needs DELETE: the
    /// database's owner, not the writer role.
    pub fn prune_raw(
        &mut self,
        keep_nights: u32,
    ) -> Result<crate::retention::PruneSummary, StoreError> {
        let target = self.target.to_string();
        let pg_err = |e: SqlError| match e {
            SqlError::Postgres(source) => StoreError::Pg {
                target: target.clone(),
                action: "prune raw samples",
                source: Box::new(source),
            },
            other => StoreError::PgValue {
                target: target.clone(),
                action: "prune raw samples",
                message: other.to_string(),
            },
        };
        let mut tx = self
            .client
            .transaction()
            .map_err(|e| pg_err(SqlError::Postgres(e)))?;
        let summary = crate::retention::prune_raw(
            &mut Pg {
                client: &mut tx,
                cache: &mut self.cache,
            },
            keep_nights,
            crate::now_ms(),
        )
        .map_err(&pg_err)?;
        tx.commit().map_err(|e| pg_err(SqlError::Postgres(e)))?;
        Ok(summary)
    }

    /// `pg_database_size` of the connected database.
    pub fn database_size_bytes(&mut self) -> Result<u64, StoreError> {
        let v = self
            .sql()
            .scalar("SELECT pg_database_size(current_database())", &[])
            .map_err(self.sql_err("size the database"))?;
        Ok(v.and_then(|v| v.as_u64()).unwrap_or(0))
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
