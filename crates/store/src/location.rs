//! Where a `--db` (or `EDGEBENCH_DB`) points: a SQLite file, or a PostgreSQL database named by
//! a connection string; and a store opened on either, for the commands the lab runs against the
//! shared store (ingest, export, report).

use std::path::{Path, PathBuf};

use crate::exchange::{ExchangeError, IngestSummary, Record, Selection};
use crate::postgres::{PgStore, PgTarget, is_connection_string};
use crate::{Store, StoreError};

/// A results database, by file path or connection string.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

impl Location {
    /// `s` as a PostgreSQL connection string ([`is_connection_string`]) or a file path.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        if is_connection_string(s) {
            Ok(Self::Postgres(Box::new(s.parse()?)))
        } else {
            Ok(Self::Sqlite(PathBuf::from(s)))
        }
    }

    /// The SQLite file, or an error saying why `purpose` needs one.
    pub fn sqlite(&self, why: &'static str) -> Result<&Path, StoreError> {
        match self {
            Self::Sqlite(path) => Ok(path),
            Self::Postgres(target) => Err(StoreError::NotSqlite {
                what: target.to_string(),
                why,
            }),
        }
    }
}

impl std::fmt::Display for Location {
    /// The path, or the connection without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(target) => write!(f, "{target}"),
        }
    }
}

/// A store on either database.
#[derive(Debug)]
pub enum AnyStore {
    Sqlite(Store),
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// Opens (creating a SQLite file if needed) and migrates.
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        Ok(match location {
            Location::Sqlite(path) => Self::Sqlite(Store::open(path)?),
            Location::Postgres(target) => Self::Postgres(Box::new(PgStore::connect(target)?)),
        })
    }

    /// See [`Store::ingest`].
    pub fn ingest(&mut self, source: &Path) -> Result<IngestSummary, ExchangeError> {
        match self {
            Self::Sqlite(s) => s.ingest(source),
            Self::Postgres(p) => p.ingest(source),
        }
    }

    /// See [`Store::ingest_records`].
    pub fn ingest_records(
        &mut self,
        source: &Path,
        records: &[Record],
    ) -> Result<IngestSummary, ExchangeError> {
        match self {
            Self::Sqlite(s) => s.ingest_records(source, records),
            Self::Postgres(p) => p.ingest_records(source, records),
        }
    }

    /// The database's size on disk: the SQLite file with its WAL, or PostgreSQL's
    /// `pg_database_size`.
    pub fn size_bytes(&mut self) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(s) => {
                let path = s.path().to_owned();
                let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                Ok(len(&path) + len(Path::new(&wal)))
            }
            Self::Postgres(p) => p.database_size_bytes(),
        }
    }

    /// See [`Store::prune_raw`].
    pub fn prune_raw(
        &mut self,
        keep_nights: u32,
    ) -> Result<crate::retention::PruneSummary, StoreError> {
        match self {
            Self::Sqlite(s) => s.prune_raw(keep_nights),
            Self::Postgres(p) => p.prune_raw(keep_nights),
        }
    }

    /// See [`Store::export`].
    pub fn export(&mut self, selection: &Selection) -> Result<Vec<Record>, StoreError> {
        match self {
            Self::Sqlite(s) => s.export(selection),
            Self::Postgres(p) => p.export(selection),
        }
    }
}
