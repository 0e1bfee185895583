-- Schema version 1: devices, models, cases, runs, requests (raw samples), token latencies.
CREATE TABLE devices (
    id               INTEGER PRIMARY KEY,
    fingerprint      TEXT NOT NULL UNIQUE,   -- sha256 of the canonical fingerprint JSON
    hostname         TEXT NOT NULL,
    cpu_model        TEXT NOT NULL,
    cpu_features     TEXT NOT NULL,          -- comma-separated: avx2,avx512f,fma,neon,...
    cores_physical   INTEGER,
    cores_logical    INTEGER NOT NULL,
    ram_bytes        INTEGER NOT NULL,
    os               TEXT NOT NULL,
    kernel           TEXT NOT NULL,
    engine_builds    TEXT NOT NULL,          -- JSON: engine, version, compiled backends, system info
    build_profile    TEXT NOT NULL,          -- debug/release and opt-level of the harness build
    details          TEXT NOT NULL           -- the full fingerprint JSON
);

CREATE TABLE models (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE,
    registry_id TEXT NOT NULL,
    label       TEXT NOT NULL,               -- e.g. "mimo-7b (twin 1/16)"; twins are never unlabelled
    origin      TEXT NOT NULL CHECK (origin IN ('real', 'twin')),
    quant       TEXT NOT NULL,
    gguf_arch   TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    path        TEXT NOT NULL
);

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY,
    case_key         TEXT NOT NULL UNIQUE,   -- sha256 of the case's parameters
    name             TEXT NOT NULL,
    scenario         TEXT NOT NULL,
    category         TEXT NOT NULL,
    model            TEXT NOT NULL,
    quant            TEXT NOT NULL,
    backend          TEXT NOT NULL,
    device           TEXT NOT NULL,
    concurrency      INTEGER NOT NULL,
    threads          INTEGER NOT NULL,
    context          INTEGER NOT NULL,
    prompt_tokens    INTEGER NOT NULL,
    generate_tokens  INTEGER NOT NULL,
    batch            INTEGER NOT NULL,
    kv_variant       TEXT NOT NULL,
    kv_baseline      INTEGER NOT NULL,
    type_k           TEXT NOT NULL,
    type_v           TEXT NOT NULL,
    flash_attention  INTEGER NOT NULL,
    mmap             INTEGER NOT NULL,
    sampling         TEXT NOT NULL
);

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,       -- stable across databases, for idempotent ingest
    invocation       TEXT NOT NULL,          -- groups the runs of one harness invocation
    case_id          INTEGER NOT NULL REFERENCES cases(id),
    device_id        INTEGER NOT NULL REFERENCES devices(id),
    model_id         INTEGER REFERENCES models(id),
    status           TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed', 'aborted')),
    started_at_ms    INTEGER NOT NULL,
    ended_at_ms      INTEGER,
    tool_version     TEXT NOT NULL,
    git_commit       TEXT NOT NULL,
    scenario_file    TEXT NOT NULL,
    scenario_sha256  TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    warmup           INTEGER NOT NULL,
    repetitions      INTEGER NOT NULL,
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    error            TEXT,
    load_ms          REAL,
    kv_cache_bytes   INTEGER,
    weights_bytes    INTEGER,
    peak_rss_bytes   INTEGER,
    engine_counters  TEXT                    -- JSON of the engine's own counters, when it has any
);
CREATE INDEX runs_case ON runs(case_id, started_at_ms);

-- One row per request: every repetition (warmup included, flagged) and every prompt.
CREATE TABLE requests (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    repetition       INTEGER NOT NULL,
    warmup           INTEGER NOT NULL,
    request_index    INTEGER NOT NULL,
    prompt_id        TEXT NOT NULL,
    turn             INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    prompt_tokens    INTEGER NOT NULL,
    generated_tokens INTEGER NOT NULL,
    queue_ns         INTEGER NOT NULL,
    prefill_ns       INTEGER NOT NULL,
    ttft_ns          INTEGER NOT NULL,
    decode_ns        INTEGER NOT NULL,
    e2e_ns           INTEGER NOT NULL,
    output_sha256    TEXT NOT NULL,          -- digest of the generated token ids
    output_text      TEXT NOT NULL
);
CREATE INDEX requests_run ON requests(run_id);

-- Every per-token decode latency (time between consecutive generated tokens).
CREATE TABLE token_latencies (
    request_id  INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    ns          INTEGER NOT NULL,
    PRIMARY KEY (request_id, idx)
) WITHOUT ROWID;
