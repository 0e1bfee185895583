//! The results database: SQLite on each machine, PostgreSQL for the device lab's shared store
//! ([`postgres`]); [`Location`] says which one a `--db` names.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated by ordered SQL files in
//! `migrations/`. The row types here are the storage format: they are deliberately separate from
//! the domain types in `edgebench-core`, so refactoring the domain never silently changes what an
//! old database means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub mod dataset;
mod error;
pub mod exchange;
pub mod llama_bench;
mod location;
pub mod postgres;
mod read;
mod recover;
pub mod retention;
mod rows;
mod schema;
pub mod sql;
pub mod synthetic;
pub mod table;
mod write;

pub use error::StoreError;
pub use location::{AnyStore, Location};
pub use rows::*;
pub use schema::SCHEMA_VERSION;

/// An open results database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    options: OpenOptions,
}

/// How long a writer waits for another to release the lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a store waits for other writers of a shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// SQLite's own wait for a lock, per statement.
    pub busy_timeout: Duration,
    /// Whole-transaction retries after SQLite gives up with SQLITE_BUSY (it does so without
    /// waiting when waiting could deadlock), with exponential backoff from `first_backoff`.
    pub busy_retries: u32,
    pub first_backoff: Duration,
    /// Mark this host's stale `running` rows as `aborted` on open ([`Store::recover`]). Off
    /// for a parent that is about to record why its own child died, with more detail.
    pub recover_stale_runs: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            busy_timeout: BUSY_TIMEOUT,
            busy_retries: 8,
            first_backoff: Duration::from_millis(5),
            recover_stale_runs: true,
        }
    }
}

/// This machine's host name, as stored in `runs.host` (the kernel's node name).
#[must_use]
pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Whether process `pid` of this host still runs. A zombie (dead, not yet reaped) is dead.
/// Where `/proc` does not exist nothing can be told, and every process counts as alive, so a
/// run is never marked aborted by mistake.
#[must_use]
pub fn pid_is_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A lock error as [`StoreError::Locked`] (retried), anything else as [`StoreError::Query`].
pub(crate) fn lock_or(
    path: &Path,
    waited: Duration,
    source: rusqlite::Error,
    action: &'static str,
) -> StoreError {
    if is_busy(&source) {
        StoreError::Locked {
            path: path.to_owned(),
            waited,
            source,
        }
    } else {
        StoreError::Query {
            path: path.to_owned(),
            action,
            source,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to [`SCHEMA_VERSION`] and
    /// marks runs this host left `running` with a dead pid as `aborted` (see [`Self::recover`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`Self::open`] with explicit lock-wait settings.
    pub fn open_with(path: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: path.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let store = Self {
            conn,
            path: path.to_owned(),
            options: options.clone(),
        };
        // Setting WAL on a file another process is creating returns SQLITE_BUSY at once (no busy
        // handler for that lock): retried like any other lock.
        store.with_retry(Self::configure)?;
        store.with_retry(Self::migrate)?;
        if options.recover_stale_runs {
            store.recover()?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn query_err(
        &self,
        action: &'static str,
    ) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| lock_or(&self.path, self.options.busy_timeout, source, action)
    }

    /// Runs `f` again, with exponential backoff, while it fails because another writer holds
    /// the lock; `f` must be a whole transaction (or a single statement), so a retry repeats
    /// nothing that already landed.
    pub(crate) fn with_retry<T>(
        &self,
        mut f: impl FnMut(&Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let mut backoff = self.options.first_backoff;
        let mut attempt = 0;
        loop {
            match f(self) {
                // SQLite already waited up to the busy timeout; retries cover the BUSY it
                // returns at once (to avoid a deadlock) and stay within that same budget.
                Err(StoreError::Locked { .. })
                    if attempt < self.options.busy_retries
                        && started.elapsed() < self.options.busy_timeout =>
                {
                    attempt += 1;
                    // Jitter from the clock spreads writers that collided at the same instant.
                    let jitter = u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.subsec_nanos()),
                    ) % (backoff.as_micros().max(1) as u64);
                    std::thread::sleep(backoff + Duration::from_micros(jitter));
                    backoff *= 2;
                }
                Err(StoreError::Locked { source, .. }) => {
                    return Err(StoreError::Locked {
                        path: self.path.clone(),
                        waited: started.elapsed(),
                        source,
                    });
                }
                Err(StoreError::Query { source, .. }) if is_busy(&source) => {
                    return Err(StoreError::Locked {
                        path: self.path.clone(),
                        waited: started.elapsed(),
                        source,
                    });
                }
                other => return other,
            }
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Deletes the raw samples of runs before the last `keep_nights` nights (UTC days, the newest
    /// run's included), in one transaction; summaries stay ([`retention`]).
    pub fn prune_raw(&self, keep_nights: u32) -> Result<retention::PruneSummary, StoreError> {
        self.with_retry(|s| {
            let tx = rusqlite::Transaction::new_unchecked(
                s.connection(),
                rusqlite::TransactionBehavior::Immediate,
            )
            .map_err(s.query_err("prune raw samples"))?;
            let summary = retention::prune_raw(&mut sql::Lite(&tx), keep_nights, now_ms())
                .map_err(|e| sql_error(s.path(), s.options.busy_timeout, e, "prune raw samples"))?;
            tx.commit().map_err(s.query_err("prune raw samples"))?;
            Ok(summary)
        })
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A portable statement's error on SQLite as the store's error.
pub(crate) fn sql_error(
    path: &Path,
    waited: Duration,
    e: sql::SqlError,
    action: &'static str,
) -> StoreError {
    match e {
        sql::SqlError::Sqlite(source) => lock_or(path, waited, source, action),
        other => StoreError::Unreadable {
            path: path.to_owned(),
            action,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
