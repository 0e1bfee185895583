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
    #[error("cannot {action} in database {}: {message}", path.display())]
    Unreadable {
        path: PathBuf,
        action: &'static str,
        message: String,
    },
    #[error(transparent)]
    PgTarget(#[from] crate::postgres::TargetError),
    #[error(
        "cannot {action} on PostgreSQL {target}: {}",
        crate::sql::pg_values::describe(source)
    )]
    Pg {
        target: String,
        action: &'static str,
        source: Box<postgres::Error>,
    },
    #[error("TLS for PostgreSQL {target}: {message}")]
    PgTls { target: String, message: String },
    #[error("cannot {action} on PostgreSQL {target}: {message}")]
    PgValue {
        target: String,
        action: &'static str,
        message: String,
    },
    #[error(
        "PostgreSQL {target} has schema version {found}, newer than this build's {supported}; update edgebench"
    )]
    PgTooNew {
        target: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "PostgreSQL {target} has schema version {found}, older than this build's {supported}; \
         migrate it as its owner with `cargo xtask db migrate --db …`"
    )]
    PgOlder {
        target: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "migration {name} failed on PostgreSQL {target}: {}",
        crate::sql::pg_values::describe(source)
    )]
    PgMigrate {
        target: String,
        name: &'static str,
        source: Box<postgres::Error>,
    },
    #[error("{what} is a PostgreSQL database; {why}")]
    NotSqlite { what: String, why: &'static str },
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
            Self::TooNew { .. }
            | Self::UnknownRun { .. }
            | Self::Unreadable { .. }
            | Self::PgTarget(_)
            | Self::PgTooNew { .. }
            | Self::PgOlder { .. }
            | Self::PgValue { .. }
            | Self::NotSqlite { .. } => return false,
            // The server down, unreachable, refusing the role, or out of space: the run waits
            // in its local file.
            Self::Pg { .. } | Self::PgTls { .. } | Self::PgMigrate { .. } => return true,
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
