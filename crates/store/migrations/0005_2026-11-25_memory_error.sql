-- The memory guard's error, derived so it can never disagree with the two numbers it compares:
-- (estimate − measured peak RSS) ÷ measured peak RSS, in percent. Positive: the guard over-estimated.
ALTER TABLE runs ADD COLUMN memory_estimate_error_pct REAL
    GENERATED ALWAYS AS (
        CASE WHEN peak_rss_bytes > 0 AND estimated_peak_bytes IS NOT NULL
             THEN 100.0 * (estimated_peak_bytes - peak_rss_bytes) / peak_rss_bytes
        END
    ) VIRTUAL;
