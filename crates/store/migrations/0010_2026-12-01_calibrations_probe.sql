-- Between-run spread of a case on a device, measured by `cargo xtask calibrate` (issue #20):
-- the case re-run as separate processes, the medians of those runs and what the nightly
-- verdict makes of that spread in simulation. Cases and models by their natural keys, so a
-- calibration moves between databases with its device only.
CREATE TABLE calibrations (
    id                    INTEGER PRIMARY KEY,
    device_id             INTEGER NOT NULL REFERENCES devices(id),
    case_key              TEXT NOT NULL,
    case_name             TEXT NOT NULL,
    model_sha256          TEXT,
    metric                TEXT NOT NULL,     -- 'generation tokens/s', 'ttft ms', 'ms per token'
    calibrated_at_ms      INTEGER NOT NULL,
    runs                  INTEGER NOT NULL,  -- run medians the spread is computed from
    median                REAL NOT NULL,     -- median of the run medians
    robust_spread         REAL NOT NULL,     -- 1.4826 × MAD of the run medians ÷ their median
    cv                    REAL NOT NULL,     -- standard deviation ÷ mean of the run medians
    min                   REAL NOT NULL,
    max                   REAL NOT NULL,
    false_alerts_per_100  REAL,              -- simulated nights resampled from the run medians
    detected_within_3     REAL,              -- share of 10% steps flagged within 3 nights
    details               TEXT NOT NULL      -- JSON: run ids, run medians, simulation seed and size
);
CREATE UNIQUE INDEX calibrations_key ON calibrations(device_id, case_key, metric, calibrated_at_ms);

-- The bandwidth probe measured beside each measured case (before and after it), whose median
-- is the run's bandwidth_bytes_per_s: how many repetitions and their extremes, so a roofline
-- share resting on a probe that moved too much is shown as such. NULL for runs whose bandwidth
-- came from the device's one-off probe (smoke runs, older runs).
ALTER TABLE runs ADD COLUMN bandwidth_probe_n INTEGER;
ALTER TABLE runs ADD COLUMN bandwidth_probe_min REAL;
ALTER TABLE runs ADD COLUMN bandwidth_probe_max REAL;
