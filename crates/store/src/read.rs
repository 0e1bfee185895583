//! Small reads the pipeline needs (counts, a run's status, a device measurement); reports and
//! exports read through `exchange` and the report crate.

use rusqlite::{OptionalExtension, params};

use crate::*;

impl Store {
    /// Number of runs with `status`, for summaries and tests.
    pub fn count_runs(&self, status: RunStatus) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE status = ?1",
                [status.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.unsigned_abs())
            .map_err(self.query_err("count runs"))
    }

    /// Status and error text of one run.
    pub fn run_status(&self, run_id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT status, error FROM runs WHERE id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.query_err("read a run"))
    }

    /// The latest measurement of `kind` for a device, if any.
    pub fn device_measurement(
        &self,
        device_id: i64,
        kind: &str,
    ) -> Result<Option<f64>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM device_measurements WHERE device_id = ?1 AND kind = ?2
                 ORDER BY measured_at_ms DESC LIMIT 1",
                params![device_id, kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.query_err("read a device measurement"))
    }
}
