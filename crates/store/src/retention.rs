//! Retention: summaries forever, raw samples for a window. A year of a 20-device lab is about
//! 10⁹ token latencies; `prune_raw` deletes the raw rows (requests and their token latencies)
//! of runs older than the window and stamps those runs (`runs.raw_pruned_at_ms`), keeping the
//! runs and their metric summaries, from which history verdicts are made (see the report's
//! reader, `dataset::HistoryPoint`). Written once over [`Sql`] for both databases.

use serde_json::Value;

use crate::sql::{Sql, SqlError};

/// One day in milliseconds: a lab night.
pub const NIGHT_MS: i64 = 86_400_000;

/// Start of a window of `nights` whole nights (UTC days) ending with the newest run's: runs
/// started at or after it are inside. The report's `--window` and `db prune --keep-raw` share
/// it, so a pruned database and a report over the same number of nights agree on what is raw.
#[must_use]
pub fn window_start_ms(newest_started_at_ms: i64, nights: u32) -> i64 {
    let newest_day = newest_started_at_ms.div_euclid(NIGHT_MS) * NIGHT_MS;
    newest_day - i64::from(nights.max(1) - 1) * NIGHT_MS
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneSummary {
    /// Runs whose raw samples were deleted now (their summaries stay).
    pub runs: u64,
    pub requests: u64,
    pub token_latencies: u64,
    /// Runs started before this time (ms since the epoch) hold no raw samples any more.
    pub before_ms: i64,
}

impl std::fmt::Display for PruneSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "raw samples of {} runs started before {} ms deleted ({} requests, {} token latencies); their summaries kept",
            self.runs, self.before_ms, self.requests, self.token_latencies
        )
    }
}

/// The newest run's start, if there is a run.
pub(crate) fn newest_run_ms(db: &mut dyn Sql) -> Result<Option<i64>, SqlError> {
    match db.scalar("SELECT MAX(started_at_ms) FROM runs", &[])? {
        Some(Value::Null) | None => Ok(None),
        Some(v) => crate::sql::int("started_at_ms", &v).map(Some),
    }
}

/// Deletes the raw samples of finished runs started before the last `keep_nights` nights, inside the caller's transaction; `now_ms` stamps them.
pub(crate) fn prune_raw(
    db: &mut dyn Sql,
    keep_nights: u32,
    now_ms: i64,
) -> Result<PruneSummary, SqlError> {
    let Some(newest) = newest_run_ms(db)? else {
        return Ok(PruneSummary::default());
    };
    let before = window_start_ms(newest, keep_nights);
    let old_runs = "SELECT id FROM runs WHERE started_at_ms < $1 AND raw_pruned_at_ms IS NULL
                    AND status <> 'running'";
    let count = |db: &mut dyn Sql, sql: &str| -> Result<u64, SqlError> {
        let v = db
            .scalar(sql, &[Value::from(before)])?
            .unwrap_or(Value::Null);
        Ok(crate::sql::int("count", &v)?.max(0) as u64)
    };
    let runs = count(db, &format!("SELECT COUNT(*) FROM ({old_runs}) o"))?;
    let requests = count(
        db,
        &format!("SELECT COUNT(*) FROM requests WHERE run_id IN ({old_runs})"),
    )?;
    // Children first, explicitly: PostgreSQL's cascade would fire a trigger per deleted row.
    let token_latencies = db.execute(
        &format!(
            "DELETE FROM token_latencies WHERE request_id IN
             (SELECT id FROM requests WHERE run_id IN ({old_runs}))"
        ),
        &[Value::from(before)],
    )?;
    db.execute(
        &format!("DELETE FROM requests WHERE run_id IN ({old_runs})"),
        &[Value::from(before)],
    )?;
    db.execute(
        "UPDATE runs SET raw_pruned_at_ms = $2 WHERE started_at_ms < $1
         AND raw_pruned_at_ms IS NULL AND status <> 'running'",
        &[Value::from(before), Value::from(now_ms)],
    )?;
    Ok(PruneSummary {
        runs,
        requests,
        token_latencies,
        before_ms: before,
    })
}
