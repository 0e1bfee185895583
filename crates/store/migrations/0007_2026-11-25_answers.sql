-- Multiple-choice evaluation (category 'accuracy'): one row per scored question, so any subset
-- can be re-scored later without running the model again.
CREATE TABLE answers (
    run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    subject          TEXT NOT NULL,
    question_index   INTEGER NOT NULL,   -- row in the subject's test file, from 0
    question_sha256  TEXT NOT NULL,      -- digest of question, choices and answer (same question across copies)
    answer           TEXT NOT NULL CHECK (answer IN ('A', 'B', 'C', 'D')),
    predicted        TEXT NOT NULL,      -- argmax of the choice log-probabilities (acc)
    predicted_norm   TEXT NOT NULL,      -- argmax of log-probability per continuation byte (acc_norm)
    logprobs         TEXT NOT NULL,      -- JSON [A, B, C, D]: natural-log probability of each continuation
    continuation_bytes TEXT NOT NULL,    -- JSON [A, B, C, D]
    few_shot         INTEGER NOT NULL,
    prompt_tokens    INTEGER NOT NULL,
    PRIMARY KEY (run_id, subject, question_index)
) WITHOUT ROWID;
