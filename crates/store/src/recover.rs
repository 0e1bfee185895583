//! Recovery: runs left `running` by a process that died are marked `aborted`, with the reason.

use rusqlite::params;

use crate::*;

impl Store {
    /// Marks this host's stale `running` rows (their process is gone) as `aborted`, so a run
    /// killed mid-way is visible as such the next time anyone on this host opens the database.
    pub fn recover(&self) -> Result<usize, StoreError> {
        let host = local_host();
        self.with_retry(|s| s.mark_stale_runs_aborted(&host, pid_is_alive))
    }

    /// Marks `running` rows left by processes of this host that no longer exist as `aborted`.
    /// Returns how many were marked.
    pub fn mark_stale_runs_aborted(
        &self,
        host: &str,
        is_alive: impl Fn(u32) -> bool,
    ) -> Result<usize, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?1")
            .map_err(self.query_err("find running runs"))?;
        let stale: Vec<String> = stmt
            .query_map([host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })
            .map_err(self.query_err("find running runs"))?
            .filter_map(Result::ok)
            .filter(|(_, pid)| !is_alive(*pid))
            .map(|(id, _)| id)
            .collect();
        for id in &stale {
            self.conn
                .execute(
                    "UPDATE runs SET status = 'aborted', error = 'process ended without finishing the run'
                     WHERE id = ?1 AND status = 'running'",
                    [id],
                )
                .map_err(self.query_err("mark a run aborted"))?;
        }
        Ok(stale.len())
    }

    /// Ends a run that is still `running` as `aborted` (its process died) with `reason` and the
    /// tail of its stderr. Returns false when the run had already ended (nothing is changed).
    pub fn abort_run(
        &self,
        run_id: &str,
        reason: &str,
        stderr_tail: &str,
        ended_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'aborted', error = ?2, stderr_tail = ?3, ended_at_ms = ?4
                 WHERE id = ?1 AND status = 'running'",
                params![run_id, reason, stderr_tail, ended_at_ms],
            )
            .map(|n| n == 1)
            .map_err(self.query_err("mark a run aborted"))
    }
}
