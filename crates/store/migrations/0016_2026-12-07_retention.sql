-- Retention (issue #36): a lab keeps every run's summaries (runs, run_metrics) forever and its
-- raw samples (requests, token_latencies) for a window. `db prune --keep-raw NIGHTS` deletes the
-- older raw rows and stamps their runs here, so a reader tells "pruned" from "never had any".
ALTER TABLE runs ADD COLUMN raw_pruned_at_ms INTEGER;
-- History from summaries: a series' run medians by metric without touching raw samples.
CREATE INDEX run_metrics_by_metric ON run_metrics(metric, run_id);
