-- Sustained decode (issue #20): the 1 Hz series of a sustained run and what the throttle
-- detector found in it, and the cool-down before it.
-- runs.sustained: JSON {"format":1,"interval_s":1.0,"samples":[{"t_s","tokens_per_s",
-- "cpu_mhz" (mean over cores, or null),"temps_c" ({zone type: °C}, maybe empty)}, ...]}.
ALTER TABLE runs ADD COLUMN sustained TEXT;
ALTER TABLE runs ADD COLUMN throttle_onset_s REAL;     -- NULL: no onset (or not sustained)
ALTER TABLE runs ADD COLUMN steady_state_ratio REAL;   -- last-window median ÷ first-window median
-- JSON {"max_seconds","margin_c","idle_c","start_c","end_c","waited_s","reached"} or
-- {"skipped": reason}; NULL when the scenario asked for none.
ALTER TABLE runs ADD COLUMN cooldown TEXT;
