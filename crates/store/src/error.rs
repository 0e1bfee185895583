//! What can go wrong with a results database, and whether it means "this database can't take
//! writes".

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory for database {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {} has schema version {found}, newer than this build's {supported}; update edgebench",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("migration {name} failed on {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database {} is locked by another writer (waited {waited:?}): {source}", path.display())]
    Locked {
        path: PathBuf,
        waited: Duration,
        source: rusqlite::Error,
    },
    #[error("run `{run_id}` does not exist in database {}", path.display())]
    UnknownRun { path: PathBuf, run_id: String },
    #[error("cannot {action} in database {}: {source}", path.display())]
    Query {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether the database could not take a write at all (locked past the retries, read-only,
    /// full, unopenable, or not a database), as opposed to a bad request. Callers keep the run
    /// in a fallback file instead of losing it.
    #[must_use]
    pub fn is_unwritable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        let code = match self {
            Self::CreateDir { .. } | Self::Locked { .. } => return true,
            Self::Open { source, .. }
            | Self::Migrate { source, .. }
            | Self::Query { source, .. } => source.sqlite_error_code(),
            Self::TooNew { .. } | Self::UnknownRun { .. } => return false,
        };
        matches!(
            code,
            Some(
                C::ReadOnly
                    | C::DiskFull
                    | C::SystemIoFailure
                    | C::CannotOpen
                    | C::PermissionDenied
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DatabaseCorrupt
                    | C::NotADatabase
            )
        )
    }
}
