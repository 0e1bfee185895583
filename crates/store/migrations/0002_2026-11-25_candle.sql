-- What each run actually ran with where the scenario left a setting to the engine, how long
-- resetting a sequence took, and cross-backend parity measurements (issue #4).

ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'measure'; -- 'smoke' runs check, not measure
ALTER TABLE runs ADD COLUMN kv_storage TEXT;          -- e.g. 'f16/f16' (llama.cpp), 'f32/f32' (candle)
ALTER TABLE runs ADD COLUMN weights_loading TEXT;     -- 'mmap' or 'read'
ALTER TABLE runs ADD COLUMN scheduling TEXT;          -- 'batched' or 'round-robin'
ALTER TABLE runs ADD COLUMN flash_attention_used INTEGER;

ALTER TABLE requests ADD COLUMN reset_ns INTEGER;     -- time to reset the sequence before the request

-- One row per (model file, prompt) compared between a reference and a candidate engine.
CREATE TABLE parity (
    id                 INTEGER PRIMARY KEY,
    invocation         TEXT NOT NULL,
    model_id           INTEGER NOT NULL REFERENCES models(id),
    reference_backend  TEXT NOT NULL,
    candidate_backend  TEXT NOT NULL,
    prompt_set         TEXT NOT NULL,             -- dataset file, or 'fixed' for the logit probe
    prompt_id          TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    first_token_match  INTEGER NOT NULL,          -- 1 when both engines' first greedy token agree
    compared_tokens    INTEGER NOT NULL,          -- N: tokens compared position by position
    agreeing_tokens    INTEGER NOT NULL,          -- positions before the first divergence
    max_abs_logprob_diff REAL,                    -- over the whole vocabulary at the last prompt position
    top10_abs_logprob_diff REAL,                  -- over the reference's 10 most likely tokens there
    reference_top1     INTEGER,
    candidate_top1     INTEGER,
    created_at_ms      INTEGER NOT NULL
);
CREATE INDEX parity_by_model ON parity(model_id, candidate_backend);
