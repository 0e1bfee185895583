-- Goodput sweeps (issue #20): the highest arrival rate at which the scenario's share of
-- requests met its TTFT and TPOT targets, and every rate the sweep served.
-- runs.goodput: JSON {"format":1,"targets":{"ttft_ms","tpot_ms","share"},"preset",
-- "end" ('resolved', 'max_steps', 'time_budget'),"points":[{"rate_per_s","requests",
-- "met_share","passed","ttft_p50_ms","ttft_p90_ms","tpot_p50_ms","tpot_p90_ms"}, ...]}.
ALTER TABLE runs ADD COLUMN goodput TEXT;
ALTER TABLE runs ADD COLUMN goodput_per_s REAL;   -- NULL: no rate met the targets (or not a sweep)
