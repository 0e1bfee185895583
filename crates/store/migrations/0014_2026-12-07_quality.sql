-- Quality beside speed (issue #35): a speed case's KL divergence against a reference
-- configuration of the same weights over a fixed text, teacher-forced.
-- runs.quality: JSON {"format":1,"reference" (e.g. "llama_cpp f16/f16"),"reference_quant"
-- (the quant whose file was the reference, or null),"corpus","corpus_sha256",
-- "context","chunks","tokens","mean_kld","kld_stderr","kld_ci95":[lo,hi],"median_kld","p99_kld",
-- "max_kld","same_top1","same_top1_stderr","delta_log_ppl","reference_ppl","candidate_ppl","seconds"}.
ALTER TABLE runs ADD COLUMN quality TEXT;
ALTER TABLE runs ADD COLUMN kld_mean REAL;    -- NULL: no quality pass (or a twin)
ALTER TABLE runs ADD COLUMN same_top1 REAL;   -- share 0..1 of positions with the same top token
