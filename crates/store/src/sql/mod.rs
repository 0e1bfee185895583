//! The few SQL operations export, ingest and the report's reader need, over either database the
//! store speaks: SQLite (`rusqlite`) or PostgreSQL (`postgres`). Written once against [`Sql`],
//! those paths cannot drift apart between the two. Values travel as JSON values (the
//! interchange format's own: integer, real, text, null); statements use `$1`, `$2`, ...
//! placeholders, rewritten to SQLite's `?1` by its side.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

pub(crate) mod lite_values;
pub(crate) mod pg_values;

/// An error of one statement, from either database, or a value of an unexpected type.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_values::describe(.0))]
    Postgres(#[from] postgres::Error),
    #[error("no row {0}")]
    NoRow(String),
    #[error("column `{column}` holds {found}, expected {expected}")]
    Type {
        column: String,
        found: String,
        expected: &'static str,
    },
}

impl SqlError {
    /// Whether another writer held a lock the statement needed (SQLite's BUSY/LOCKED) or a
    /// concurrent transaction made this one fail (PostgreSQL: a unique key taken meanwhile, a
    /// serialization failure, a deadlock): the whole transaction may be run again.
    #[must_use]
    pub fn is_retryable_conflict(&self) -> bool {
        match self {
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Postgres(e) => e.code().is_some_and(|c| {
                use postgres::error::SqlState as S;
                [
                    S::UNIQUE_VIOLATION,
                    S::T_R_SERIALIZATION_FAILURE,
                    S::T_R_DEADLOCK_DETECTED,
                ]
                .contains(c)
            }),
            Self::Type { .. } | Self::NoRow(_) => false,
        }
    }
}

/// One row handed to [`Sql::each_row`]: column names and values, by position.
pub type RowFn<'f> = dyn FnMut(&[String], &[Value]) -> Result<(), SqlError> + 'f;

/// A connection (or a transaction on one) that runs the store's portable statements.
pub trait Sql {
    /// Calls `f` on every row `sql` returns.
    fn each_row(&mut self, sql: &str, params: &[Value], f: &mut RowFn<'_>) -> Result<(), SqlError>;

    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError>;

    /// Columns of `table` that can be written (generated columns are derived, never copied).
    fn writable_columns(&mut self, table: &str) -> Result<BTreeSet<String>, SqlError>;

    /// Deletes the run `run_id` if it never finished (`running` or `aborted`), with its
    /// requests, samples and metrics (by the schema's cascades); a finished run stays.
    fn discard_incomplete_run(&mut self, run_id: &str) -> Result<(), SqlError>;

    /// Appends raw samples `(request_id, idx, ns)` to `token_latencies`. Multi-row INSERTs
    /// here; PostgreSQL streams them with `COPY` (one round trip for a run's samples).
    fn append_token_latencies(&mut self, rows: &[[i64; 3]]) -> Result<(), SqlError> {
        for chunk in rows.chunks(LATENCY_ROWS_PER_INSERT) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let values: Vec<Value> = chunk.iter().flatten().map(|&v| Value::from(v)).collect();
            self.execute(
                &format!("INSERT INTO token_latencies (request_id, idx, ns) VALUES {placeholders}"),
                &values,
            )?;
        }
        Ok(())
    }

    /// `n` fresh ids of `table`'s generated key, when the database hands them out ahead of the
    /// insert (PostgreSQL's sequences: then a run's requests go in one statement); `None` where
    /// each insert returns its own (SQLite, in process: no round trips to save).
    fn reserve_ids(&mut self, _table: &str, _n: usize) -> Result<Option<Vec<i64>>, SqlError> {
        Ok(None)
    }

    /// SQL for an aggregate that joins `value` (an integer column) as comma-separated text in
    /// `order`: SQLite's `group_concat`, PostgreSQL's `string_agg`.
    fn ordered_concat(&self, value: &str, order: &str) -> String {
        format!("group_concat({value}, ',' ORDER BY {order})")
    }

    /// A row's id remembered from earlier in this connection (devices, models and cases are
    /// looked up once per run otherwise).
    fn known_id(&self, _table: &str, _key: &Value) -> Option<i64> {
        None
    }

    fn remember_id(&mut self, _table: &str, _key: &Value, _id: i64) {}

    /// Every row of `sql`, each as its values.
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let mut out = Vec::new();
        self.each_row(sql, params, &mut |_, values| {
            out.push(values.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// The first column of the first row, if there is a row.
    fn scalar(&mut self, sql: &str, params: &[Value]) -> Result<Option<Value>, SqlError> {
        let mut out = None;
        self.each_row(sql, params, &mut |_, values| {
            if out.is_none() {
                out = values.first().cloned();
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Rows of token latencies per INSERT where there is no COPY (3 parameters each, far below
/// both databases' limits).
const LATENCY_ROWS_PER_INSERT: usize = 500;

/// Reads a JSON value as an integer (SQLite hands booleans back as integers, PostgreSQL as
/// booleans: both are accepted).
pub fn int(column: &str, v: &Value) -> Result<i64, SqlError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| mismatch(column, v, "an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(mismatch(column, v, "an integer")),
    }
}

pub(crate) fn mismatch(column: &str, v: &Value, expected: &'static str) -> SqlError {
    SqlError::Type {
        column: column.to_owned(),
        found: match v {
            Value::Null => "NULL".to_owned(),
            other => format!("{other}"),
        },
        expected,
    }
}

/// SQLite's side: placeholders `$n` become `?n`.
#[derive(Debug)]
pub struct Lite<'c>(pub &'c rusqlite::Connection);

fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Sql for Lite<'_> {
    fn each_row(&mut self, sql: &str, params: &[Value], f: &mut RowFn<'_>) -> Result<(), SqlError> {
        let mut stmt = self.0.prepare_cached(&sqlite_placeholders(sql))?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(
            params.iter().map(lite_values::to_sql),
        ))?;
        let mut values = Vec::with_capacity(names.len());
        while let Some(row) = rows.next()? {
            values.clear();
            for i in 0..names.len() {
                values.push(lite_values::to_json(row.get_ref(i)?));
            }
            f(&names, &values)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let mut stmt = self.0.prepare_cached(&sqlite_placeholders(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(
            params.iter().map(lite_values::to_sql),
        ))? as u64)
    }

    fn writable_columns(&mut self, table: &str) -> Result<BTreeSet<String>, SqlError> {
        Ok(lite_values::writable_columns(self.0, table)?)
    }

    fn discard_incomplete_run(&mut self, run_id: &str) -> Result<(), SqlError> {
        // Children go by the schema's ON DELETE CASCADE: every store connection turns foreign
        // keys on when it opens (`Store::configure`; the pragma is a no-op inside a transaction).
        self.0.execute(
            "DELETE FROM runs WHERE id = ?1 AND status IN ('running', 'aborted')",
            [run_id],
        )?;
        Ok(())
    }
}

/// What a PostgreSQL connection remembers between statements: prepared statements (their
/// parameter types come from the server, which knows the columns) and each table's writable
/// columns (information_schema is slow to ask on every insert). Cleared after a migration.
#[derive(Debug, Default)]
pub struct PgCache {
    pub statements: HashMap<String, postgres::Statement>,
    pub columns: HashMap<String, BTreeSet<String>>,
    /// Ids of devices, models and cases by natural key, once committed: cleared when a
    /// transaction fails (an id it inserted no longer exists).
    pub ids: HashMap<(String, String), i64>,
    /// Token latencies appended in the open transaction, not yet sent.
    pub pending_latencies: Vec<[i64; 3]>,
}

/// PostgreSQL's side, over a client or a transaction.
pub struct Pg<'c, C: postgres::GenericClient> {
    pub client: &'c mut C,
    pub cache: &'c mut PgCache,
}

impl<C: postgres::GenericClient> std::fmt::Debug for Pg<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("statements", &self.cache.statements.len())
            .finish_non_exhaustive()
    }
}

/// Raw samples held for one COPY at most (24 bytes each).
const MAX_PENDING_LATENCIES: usize = 1 << 20;

impl<C: postgres::GenericClient> Pg<'_, C> {
    /// Streams the held token latencies with one binary COPY (the server parses no text). The
    /// ingest calls it before it commits; a failed transaction drops what was held.
    pub fn flush_token_latencies(&mut self) -> Result<(), SqlError> {
        use postgres::types::Type;
        if self.cache.pending_latencies.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.cache.pending_latencies);
        let sink = self
            .client
            .copy_in("COPY token_latencies (request_id, idx, ns) FROM STDIN (FORMAT binary)")?;
        let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(
            sink,
            &[Type::INT8, Type::INT8, Type::INT8],
        );
        for [request, idx, ns] in &rows {
            writer.write(&[request, idx, ns])?;
        }
        writer.finish()?;
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, SqlError> {
        if let Some(s) = self.cache.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

impl<C: postgres::GenericClient> Sql for Pg<'_, C> {
    fn each_row(&mut self, sql: &str, params: &[Value], f: &mut RowFn<'_>) -> Result<(), SqlError> {
        let stmt = self.statement(sql)?;
        let bound = pg_values::bind(&stmt, params)?;
        let names: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
        // Streamed, not collected: a year's window is tens of millions of rows.
        let mut rows = self.client.query_raw(&stmt, pg_values::refs(&bound))?;
        let mut values = Vec::with_capacity(names.len());
        while let Some(row) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
            values.clear();
            for (i, name) in names.iter().enumerate() {
                values.push(pg_values::to_json(&row, i, name)?);
            }
            f(&names, &values)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        let stmt = self.statement(sql)?;
        let bound = pg_values::bind(&stmt, params)?;
        Ok(self.client.execute(&stmt, &pg_values::refs(&bound))?)
    }

    fn writable_columns(&mut self, table: &str) -> Result<BTreeSet<String>, SqlError> {
        if let Some(columns) = self.cache.columns.get(table) {
            return Ok(columns.clone());
        }
        let rows = self.rows(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'",
            &[Value::from(table)],
        )?;
        let columns: BTreeSet<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next()?.as_str().map(str::to_owned))
            .collect();
        self.cache.columns.insert(table.to_owned(), columns.clone());
        Ok(columns)
    }

    fn append_token_latencies(&mut self, rows: &[[i64; 3]]) -> Result<(), SqlError> {
        // Held until the batch's transaction flushes them ([`Pg::flush_token_latencies`]): one
        // COPY for many runs costs the server one start-up, not one per run.
        self.cache.pending_latencies.extend_from_slice(rows);
        if self.cache.pending_latencies.len() >= MAX_PENDING_LATENCIES {
            self.flush_token_latencies()?;
        }
        Ok(())
    }

    fn reserve_ids(&mut self, table: &str, n: usize) -> Result<Option<Vec<i64>>, SqlError> {
        let rows = self.rows(
            "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)",
            &[Value::from(table), Value::from(n as i64)],
        )?;
        rows.into_iter()
            .map(|r| int("nextval", r.first().unwrap_or(&Value::Null)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn ordered_concat(&self, value: &str, order: &str) -> String {
        format!("string_agg(({value})::text, ',' ORDER BY {order})")
    }

    fn known_id(&self, table: &str, key: &Value) -> Option<i64> {
        self.cache
            .ids
            .get(&(table.to_owned(), key.to_string()))
            .copied()
    }

    fn remember_id(&mut self, table: &str, key: &Value, id: i64) {
        self.cache
            .ids
            .insert((table.to_owned(), key.to_string()), id);
    }

    fn discard_incomplete_run(&mut self, run_id: &str) -> Result<(), SqlError> {
        // A function owned by the schema's owner: the lab's writer role may discard an
        // unfinished run this way, and has no DELETE on any table (history is never rewritten).
        self.execute(
            "SELECT edgebench_discard_incomplete_run($1)",
            &[Value::from(run_id)],
        )?;
        Ok(())
    }
}
