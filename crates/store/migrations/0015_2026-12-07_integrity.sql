-- Output integrity of a measured run (issue #34, MLPerf TEST06 in spirit): greedy runs'
-- first tokens the same in every repetition, every completed turn of the requested length.
-- runs.integrity: JSON {"format":1,"turns","greedy","inconsistent_first_tokens":["prompt#turn"],
-- "wrong_counts","expected_tokens" (null: not checked),"verdict" ("pass" or "fail: ...")}.
ALTER TABLE runs ADD COLUMN integrity TEXT;
ALTER TABLE runs ADD COLUMN integrity_passed INTEGER;   -- 1 pass, 0 fail, NULL not checked
