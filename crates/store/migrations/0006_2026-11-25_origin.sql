-- Where a run came from: 'edgebench' (measured by this tool) or 'imported:<tool>' (brought in from
-- another tool's output, e.g. 'imported:llama-bench'). Reports label imported runs as such.
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'edgebench';
-- Exports and nightly comparisons select runs by date.
CREATE INDEX runs_started ON runs(started_at_ms);
