-- Scheduling facts per request, how a run's measurement ended, per-metric summaries, bandwidth
-- roofline, crash reports (issue #5).

-- completed | queue_full | admission_timeout | cancelled. Rows from before the scheduler were
-- all completed.
ALTER TABLE requests ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';
ALTER TABLE requests ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';  -- realtime | normal | batch
-- When the turn was sent, ns from the start of its repetition (turn 0: the request's arrival).
ALTER TABLE requests ADD COLUMN sent_ns INTEGER NOT NULL DEFAULT 0;

-- fixed | ci_target | max_repetitions | time_budget | smoke
ALTER TABLE runs ADD COLUMN stop_reason TEXT;
-- Last lines of a crashed child's stderr (status 'aborted' or 'failed').
ALTER TABLE runs ADD COLUMN stderr_tail TEXT;
-- Bytes the decode steps had to read at least (weights once per step + the KV cache of every
-- sequence in the step), their time, and that rate as a fraction of the device's triad bandwidth.
ALTER TABLE runs ADD COLUMN decode_bytes_read INTEGER;
ALTER TABLE runs ADD COLUMN decode_steps_ns INTEGER;
ALTER TABLE runs ADD COLUMN roofline_fraction REAL;
ALTER TABLE runs ADD COLUMN bandwidth_bytes_per_s REAL;

-- Summary of one metric's measured samples in one run (raw samples stay in requests and
-- token_latencies). The CI is a seeded percentile bootstrap of the median.
CREATE TABLE run_metrics (
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric        TEXT NOT NULL,
    unit          TEXT NOT NULL,
    n             INTEGER NOT NULL,
    mean          REAL NOT NULL,
    median        REAL NOT NULL,
    stddev        REAL NOT NULL,
    cv            REAL NOT NULL,
    min           REAL NOT NULL,
    max           REAL NOT NULL,
    p90           REAL NOT NULL,
    p95           REAL NOT NULL,
    p99           REAL NOT NULL,
    ci_low        REAL,
    ci_high       REAL,
    ci_level      REAL,
    outliers_low  INTEGER NOT NULL,
    outliers_high INTEGER NOT NULL,
    PRIMARY KEY (run_id, metric)
) WITHOUT ROWID;
