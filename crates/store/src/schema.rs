//! The schema: ordered migrations, `PRAGMA user_version`, and migrating a database once under the
//! write lock.

use crate::*;

/// Ordered migrations; entry `i` moves the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_2026-11-25_init",
        include_str!("../migrations/0001_2026-11-25_init.sql"),
    ),
    (
        "0002_2026-11-25_candle",
        include_str!("../migrations/0002_2026-11-25_candle.sql"),
    ),
    (
        "0003_2026-11-25_device_facts",
        include_str!("../migrations/0003_2026-11-25_device_facts.sql"),
    ),
    (
        "0004_2026-11-25_serving",
        include_str!("../migrations/0004_2026-11-25_serving.sql"),
    ),
    (
        "0005_2026-11-25_memory_error",
        include_str!("../migrations/0005_2026-11-25_memory_error.sql"),
    ),
    (
        "0006_2026-11-25_origin",
        include_str!("../migrations/0006_2026-11-25_origin.sql"),
    ),
    (
        "0007_2026-11-25_answers",
        include_str!("../migrations/0007_2026-11-25_answers.sql"),
    ),
    (
        "0008_2026-11-29_phase_timings",
        include_str!("../migrations/0008_2026-11-29_phase_timings.sql"),
    ),
    (
        "0009_2026-12-01_prompt_format",
        include_str!("../migrations/0009_2026-12-01_prompt_format.sql"),
    ),
    (
        "0010_2026-12-01_calibrations_probe",
        include_str!("../migrations/0010_2026-12-01_calibrations_probe.sql"),
    ),
    (
        "0011_2026-12-01_sustained",
        include_str!("../migrations/0011_2026-12-01_sustained.sql"),
    ),
    (
        "0012_2026-12-01_goodput",
        include_str!("../migrations/0012_2026-12-01_goodput.sql"),
    ),
    (
        "0013_2026-12-02_http",
        include_str!("../migrations/0013_2026-12-02_http.sql"),
    ),
    (
        "0014_2026-12-07_quality",
        include_str!("../migrations/0014_2026-12-07_quality.sql"),
    ),
    (
        "0015_2026-12-07_integrity",
        include_str!("../migrations/0015_2026-12-07_integrity.sql"),
    ),
    (
        "0016_2026-12-07_retention",
        include_str!("../migrations/0016_2026-12-07_retention.sql"),
    ),
];

/// Schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

impl Store {
    pub(crate) fn configure(&self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(self.options.busy_timeout)
            .map_err(self.query_err("set the busy timeout"))?;
        // WAL lets readers (reports) proceed while a run writes; synchronous=NORMAL is durable
        // across application crashes in WAL mode, which is the failure we guard against.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(self.query_err("enable WAL"))?;
        Ok(())
    }

    /// Current `PRAGMA user_version`.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.query_err("read the schema version"))
    }

    pub(crate) fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        // Several writers may open an old shared database at once: the version is read again
        // under the write lock, so each migration runs exactly once.
        let path = self.path.clone();
        let busy_timeout = self.options.busy_timeout;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|source| lock_or(&path, busy_timeout, source, "begin a migration"))?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| lock_or(&path, busy_timeout, source, "read the schema version"))?;
        for (name, sql) in MIGRATIONS.iter().skip(found as usize) {
            tx.execute_batch(sql)
                .map_err(|source| StoreError::Migrate {
                    path: path.clone(),
                    name,
                    source,
                })?;
        }
        tx.pragma_update(None, "user_version", i64::from(SCHEMA_VERSION))
            .map_err(|source| lock_or(&path, busy_timeout, source, "set the schema version"))?;
        tx.commit()
            .map_err(|source| lock_or(&path, busy_timeout, source, "commit a migration"))
    }
}
