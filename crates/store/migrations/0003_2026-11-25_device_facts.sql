-- Device facts measured once per device, and per-run memory estimate, CPU time and energy
-- (issue #5).

-- Measurements of a device that vary run to run (so they can't be part of its fingerprint).
CREATE TABLE device_measurements (
    id           INTEGER PRIMARY KEY,
    device_id    INTEGER NOT NULL REFERENCES devices(id),
    kind         TEXT NOT NULL,            -- 'triad_bandwidth_bytes_per_s'
    value        REAL NOT NULL,            -- best of the repetitions (STREAM convention)
    median       REAL NOT NULL,
    n            INTEGER NOT NULL,
    details      TEXT NOT NULL,            -- JSON: array bytes, threads, seed, every repetition
    measured_at_ms INTEGER NOT NULL
);
CREATE INDEX device_measurements_by_device ON device_measurements(device_id, kind);

ALTER TABLE runs ADD COLUMN estimated_peak_bytes INTEGER;  -- weights file + projected KV, before loading
ALTER TABLE runs ADD COLUMN cpu_time_ms REAL;              -- process user+sys CPU over the measured repetitions
ALTER TABLE runs ADD COLUMN energy_j REAL;                 -- RAPL package energy over the same span, when readable
ALTER TABLE runs ADD COLUMN energy_source TEXT;            -- 'rapl' (measured) or NULL (not available)
