//! The SQLite results database.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated by ordered SQL files in
//! `migrations/`. The row types here are the storage format: they are deliberately separate from
//! the domain types in `edgebench-core`, so refactoring the domain never silently changes what an
//! old database means.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

pub mod exchange;
pub mod llama_bench;
pub mod synthetic;

/// Ordered migrations; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_2026-11-25_init",
        include_str!("../migrations/0001_2026-11-25_init.sql"),
    ),
    (
        "0002_2026-11-25_candle",
        include_str!("../migrations/0002_2026-11-25_candle.sql"),
    ),
    (
        "0003_2026-11-25_device_facts",
        include_str!("../migrations/0003_2026-11-25_device_facts.sql"),
    ),
    (
        "0004_2026-11-25_serving",
        include_str!("../migrations/0004_2026-11-25_serving.sql"),
    ),
    (
        "0005_2026-11-25_memory_error",
        include_str!("../migrations/0005_2026-11-25_memory_error.sql"),
    ),
    (
        "0006_2026-11-25_origin",
        include_str!("../migrations/0006_2026-11-25_origin.sql"),
    ),
    (
        "0007_2026-11-25_answers",
        include_str!("../migrations/0007_2026-11-25_answers.sql"),
    ),
    (
        "0008_2026-11-29_phase_timings",
        include_str!("../migrations/0008_2026-11-29_phase_timings.sql"),
    ),
];

/// Schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory for database {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {} has schema version {found}, newer than this build's {supported}; update edgebench",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("migration {name} failed on {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("database {} is locked by another writer (waited {waited:?}): {source}", path.display())]
    Locked {
        path: PathBuf,
        waited: Duration,
        source: rusqlite::Error,
    },
    #[error("run `{run_id}` does not exist in database {}", path.display())]
    UnknownRun { path: PathBuf, run_id: String },
    #[error("cannot {action} in database {}: {source}", path.display())]
    Query {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether the database could not take a write at all (locked past the retries, read-only,
    /// full, unopenable, or not a database), as opposed to a bad request. Callers keep the run
    /// in a fallback file instead of losing it.
    #[must_use]
    pub fn is_unwritable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        let code = match self {
            Self::CreateDir { .. } | Self::Locked { .. } => return true,
            Self::Open { source, .. }
            | Self::Migrate { source, .. }
            | Self::Query { source, .. } => source.sqlite_error_code(),
            Self::TooNew { .. } | Self::UnknownRun { .. } => return false,
        };
        matches!(
            code,
            Some(
                C::ReadOnly
                    | C::DiskFull
                    | C::SystemIoFailure
                    | C::CannotOpen
                    | C::PermissionDenied
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::DatabaseCorrupt
                    | C::NotADatabase
            )
        )
    }
}

/// Storage row: a machine's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub fingerprint: String,
    pub hostname: String,
    pub cpu_model: String,
    pub cpu_features: String,
    pub cores_physical: Option<u32>,
    pub cores_logical: u32,
    pub ram_bytes: u64,
    pub os: String,
    pub kernel: String,
    pub engine_builds: String,
    pub build_profile: String,
    pub details: String,
}

/// Storage row: a model file, identified by its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRow {
    pub sha256: String,
    pub registry_id: String,
    pub label: String,
    pub origin: String,
    pub quant: String,
    pub gguf_arch: String,
    pub size_bytes: u64,
    pub path: String,
}

/// Storage row: a case's parameters, identified by `case_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    pub case_key: String,
    pub name: String,
    pub scenario: String,
    pub category: String,
    pub model: String,
    pub quant: String,
    pub backend: String,
    pub device: String,
    pub concurrency: u32,
    pub threads: u32,
    pub context: u32,
    pub prompt_tokens: u32,
    pub generate_tokens: u32,
    pub batch: u32,
    pub kv_variant: String,
    pub kv_baseline: bool,
    pub type_k: String,
    pub type_v: String,
    pub flash_attention: bool,
    pub mmap: bool,
    pub sampling: String,
}

/// Storage row: the start of a run (one execution of one case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunRow {
    pub id: String,
    pub invocation: String,
    pub case_id: i64,
    pub device_id: i64,
    pub model_id: Option<i64>,
    pub started_at_ms: i64,
    pub tool_version: String,
    pub git_commit: String,
    pub scenario_file: String,
    pub scenario_sha256: String,
    pub seed: u64,
    pub warmup: u32,
    pub repetitions: u32,
    pub host: String,
    pub pid: u32,
    /// `measure`, or `smoke` for runs that only check a case works.
    pub mode: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Passed,
    Failed,
    Aborted,
}

impl RunStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

/// Storage row: how a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEndRow {
    pub status: RunStatus,
    pub ended_at_ms: i64,
    pub error: Option<String>,
    pub load_ms: Option<f64>,
    pub kv_cache_bytes: Option<u64>,
    pub weights_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub engine_counters: Option<String>,
    /// JSON: per measured repetition, the harness's and the engine's timing of prefill and
    /// decode (see migration 0008); `None` when the engine keeps no counters.
    pub phase_timings: Option<String>,
    /// What the engine actually ran with (absent when the run failed before loading).
    pub effective: Option<EffectiveRow>,
    pub estimated_peak_bytes: Option<u64>,
    pub cpu_time_ms: Option<f64>,
    /// Energy and where it came from: `rapl` (measured) or `estimate: ...` (a formula).
    pub energy: Option<(f64, String)>,
    /// `fixed`, `ci_target`, `max_repetitions`, `time_budget` or `smoke`.
    pub stop_reason: Option<String>,
    pub roofline: Option<RooflineRow>,
    /// Summaries of the measured samples, one per metric.
    pub metrics: Vec<MetricRow>,
}

/// Storage row: how close the decode steps came to the memory-bandwidth limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RooflineRow {
    pub decode_bytes_read: u64,
    pub decode_steps_ns: u64,
    pub bandwidth_bytes_per_s: f64,
    pub fraction: f64,
}

/// Storage row: one metric's summary in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub metric: String,
    pub unit: String,
    pub n: u32,
    pub mean: f64,
    pub median: f64,
    pub stddev: f64,
    pub cv: f64,
    pub min: f64,
    pub max: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    /// (low, high, level)
    pub ci: Option<(f64, f64, f64)>,
    pub outliers_low: u32,
    pub outliers_high: u32,
}

impl MetricRow {
    /// The storage row of a metric summary.
    #[must_use]
    pub fn from_summary(m: &edgebench_core::measure::MetricSummary) -> Self {
        Self {
            metric: m.metric.into(),
            unit: m.unit.into(),
            n: m.summary.n as u32,
            mean: m.summary.mean,
            median: m.summary.median,
            stddev: m.summary.stddev,
            cv: m.summary.cv,
            min: m.summary.min,
            max: m.summary.max,
            p90: m.summary.p90,
            p95: m.summary.p95,
            p99: m.summary.p99,
            ci: m.ci.map(|c| (c.low, c.high, c.level)),
            outliers_low: m.outliers_low,
            outliers_high: m.outliers_high,
        }
    }
}

/// Storage row: one measurement of a device (e.g. its memory bandwidth).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMeasurementRow {
    pub device_id: i64,
    pub kind: String,
    pub value: f64,
    pub median: f64,
    pub n: u32,
    pub details: String,
    pub measured_at_ms: i64,
}

/// Storage row: settings the engine actually used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRow {
    pub kv_storage: String,
    pub weights_loading: String,
    pub scheduling: String,
    pub flash_attention: bool,
}

/// Storage row: one prompt compared between two engines on one model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityRow {
    pub invocation: String,
    pub model_id: i64,
    pub reference_backend: String,
    pub candidate_backend: String,
    pub prompt_set: String,
    pub prompt_id: String,
    pub prompt_tokens: u32,
    pub first_token_match: bool,
    pub compared_tokens: u32,
    pub agreeing_tokens: u32,
    pub max_abs_logprob_diff: Option<f64>,
    pub top10_abs_logprob_diff: Option<f64>,
    pub reference_top1: Option<i64>,
    pub candidate_top1: Option<i64>,
    pub created_at_ms: i64,
}

/// A finished run with every row it refers to, for [`Store::record_whole_run`].
#[derive(Debug, Clone, Copy)]
pub struct WholeRun<'a> {
    pub device: &'a DeviceRow,
    pub model: Option<&'a ModelRow>,
    pub case: &'a CaseRow,
    pub run: &'a NewRunRow,
    pub end: &'a RunEndRow,
    pub requests: &'a [RequestRow],
    pub answers: &'a [AnswerRow],
}

/// Storage row: one scored multiple-choice question.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRow {
    pub subject: String,
    pub question_index: u32,
    pub question_sha256: String,
    /// `A`…`D`.
    pub answer: String,
    pub predicted: String,
    pub predicted_norm: String,
    pub logprobs: [f64; 4],
    pub continuation_bytes: [u32; 4],
    pub few_shot: u32,
    pub prompt_tokens: u32,
}

/// Storage row: one request's raw measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub repetition: u32,
    pub warmup: bool,
    pub request_index: u32,
    pub prompt_id: String,
    pub turn: u32,
    pub seq: u32,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub queue_ns: u64,
    pub prefill_ns: u64,
    pub ttft_ns: u64,
    pub decode_ns: u64,
    pub e2e_ns: u64,
    /// Time to reset the request's sequence before it was served.
    pub reset_ns: u64,
    /// `completed`, `queue_full`, `admission_timeout` or `cancelled`.
    pub status: String,
    /// `realtime`, `normal` or `batch`.
    pub priority: String,
    /// When the turn was sent, ns from the start of its repetition.
    pub sent_ns: u64,
    pub output_sha256: String,
    pub output_text: String,
    /// Time between consecutive generated tokens, in order.
    pub token_latencies_ns: Vec<u64>,
}

/// An open results database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    options: OpenOptions,
}

/// How long a writer waits for another to release the lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How a store waits for other writers of a shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// SQLite's own wait for a lock, per statement.
    pub busy_timeout: Duration,
    /// Whole-transaction retries after SQLite gives up with SQLITE_BUSY (it does so without
    /// waiting when waiting could deadlock), with exponential backoff from `first_backoff`.
    pub busy_retries: u32,
    pub first_backoff: Duration,
    /// Mark this host's stale `running` rows as `aborted` on open ([`Store::recover`]). Off
    /// for a parent that is about to record why its own child died, with more detail.
    pub recover_stale_runs: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            busy_timeout: BUSY_TIMEOUT,
            busy_retries: 8,
            first_backoff: Duration::from_millis(5),
            recover_stale_runs: true,
        }
    }
}

/// This machine's host name, as stored in `runs.host` (the kernel's node name).
#[must_use]
pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Whether process `pid` of this host still runs. A zombie (dead, not yet reaped) is dead.
/// Where `/proc` does not exist nothing can be told, and every process counts as alive, so a
/// run is never marked aborted by mistake.
#[must_use]
pub fn pid_is_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A lock error as [`StoreError::Locked`] (retried), anything else as [`StoreError::Query`].
pub(crate) fn lock_or(
    path: &Path,
    waited: Duration,
    source: rusqlite::Error,
    action: &'static str,
) -> StoreError {
    if is_busy(&source) {
        StoreError::Locked {
            path: path.to_owned(),
            waited,
            source,
        }
    } else {
        StoreError::Query {
            path: path.to_owned(),
            action,
            source,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to [`SCHEMA_VERSION`] and
    /// marks runs this host left `running` with a dead pid as `aborted` (see [`Self::recover`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`Self::open`] with explicit lock-wait settings.
    pub fn open_with(path: &Path, options: &OpenOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: path.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let store = Self {
            conn,
            path: path.to_owned(),
            options: options.clone(),
        };
        // Setting WAL on a file another process is creating returns SQLITE_BUSY at once (no busy
        // handler for that lock): retried like any other lock.
        store.with_retry(Self::configure)?;
        store.with_retry(Self::migrate)?;
        if options.recover_stale_runs {
            store.recover()?;
        }
        Ok(store)
    }

    /// Marks this host's stale `running` rows (their process is gone) as `aborted`, so a run
    /// killed mid-way is visible as such the next time anyone on this host opens the database.
    pub fn recover(&self) -> Result<usize, StoreError> {
        let host = local_host();
        self.with_retry(|s| s.mark_stale_runs_aborted(&host, pid_is_alive))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn query_err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| lock_or(&self.path, self.options.busy_timeout, source, action)
    }

    /// Runs `f` again, with exponential backoff, while it fails because another writer holds
    /// the lock; `f` must be a whole transaction (or a single statement), so a retry repeats
    /// nothing that already landed.
    pub(crate) fn with_retry<T>(
        &self,
        mut f: impl FnMut(&Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let mut backoff = self.options.first_backoff;
        let mut attempt = 0;
        loop {
            match f(self) {
                // SQLite already waited up to the busy timeout; retries cover the BUSY it
                // returns at once (to avoid a deadlock) and stay within that same budget.
                Err(StoreError::Locked { .. })
                    if attempt < self.options.busy_retries
                        && started.elapsed() < self.options.busy_timeout =>
                {
                    attempt += 1;
                    // Jitter from the clock spreads writers that collided at the same instant.
                    let jitter = u64::from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.subsec_nanos()),
                    ) % (backoff.as_micros().max(1) as u64);
                    std::thread::sleep(backoff + Duration::from_micros(jitter));
                    backoff *= 2;
                }
                Err(StoreError::Locked { source, .. }) => {
                    return Err(StoreError::Locked {
                        path: self.path.clone(),
                        waited: started.elapsed(),
                        source,
                    });
                }
                Err(StoreError::Query { source, .. }) if is_busy(&source) => {
                    return Err(StoreError::Locked {
                        path: self.path.clone(),
                        waited: started.elapsed(),
                        source,
                    });
                }
                other => return other,
            }
        }
    }

    fn configure(&self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(self.options.busy_timeout)
            .map_err(self.query_err("set the busy timeout"))?;
        // WAL lets readers (reports) proceed while a run writes; synchronous=NORMAL is durable
        // across application crashes in WAL mode, which is the failure we guard against.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(self.query_err("enable WAL"))?;
        Ok(())
    }

    /// Current `PRAGMA user_version`.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.query_err("read the schema version"))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        // Several writers may open an old shared database at once: the version is read again
        // under the write lock, so each migration runs exactly once.
        let path = self.path.clone();
        let busy_timeout = self.options.busy_timeout;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|source| lock_or(&path, busy_timeout, source, "begin a migration"))?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|source| lock_or(&path, busy_timeout, source, "read the schema version"))?;
        for (name, sql) in MIGRATIONS.iter().skip(found as usize) {
            tx.execute_batch(sql)
                .map_err(|source| StoreError::Migrate {
                    path: path.clone(),
                    name,
                    source,
                })?;
        }
        tx.pragma_update(None, "user_version", i64::from(SCHEMA_VERSION))
            .map_err(|source| lock_or(&path, busy_timeout, source, "set the schema version"))?;
        tx.commit()
            .map_err(|source| lock_or(&path, busy_timeout, source, "commit a migration"))
    }

    /// Inserts the device if its fingerprint is new; returns its id either way.
    pub fn upsert_device(&self, d: &DeviceRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_device_once(d))
    }

    fn upsert_device_once(&self, d: &DeviceRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO devices (fingerprint, hostname, cpu_model, cpu_features, cores_physical, cores_logical,
                     ram_bytes, os, kernel, engine_builds, build_profile, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (fingerprint) DO NOTHING",
                params![
                    d.fingerprint, d.hostname, d.cpu_model, d.cpu_features, d.cores_physical, d.cores_logical,
                    to_i64(d.ram_bytes), d.os, d.kernel, d.engine_builds, d.build_profile, d.details
                ],
            )
            .map_err(self.query_err("insert a device"))?;
        self.conn
            .query_row(
                "SELECT id FROM devices WHERE fingerprint = ?1",
                [&d.fingerprint],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a device"))
    }

    /// Inserts the model if its sha256 is new; returns its id either way.
    pub fn upsert_model(&self, m: &ModelRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_model_once(m))
    }

    fn upsert_model_once(&self, m: &ModelRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO models (sha256, registry_id, label, origin, quant, gguf_arch, size_bytes, path)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (sha256) DO NOTHING",
                params![m.sha256, m.registry_id, m.label, m.origin, m.quant, m.gguf_arch, to_i64(m.size_bytes), m.path],
            )
            .map_err(self.query_err("insert a model"))?;
        self.conn
            .query_row(
                "SELECT id FROM models WHERE sha256 = ?1",
                [&m.sha256],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a model"))
    }

    /// Inserts the case if its key is new; returns its id either way.
    pub fn upsert_case(&self, c: &CaseRow) -> Result<i64, StoreError> {
        self.with_retry(|s| s.upsert_case_once(c))
    }

    fn upsert_case_once(&self, c: &CaseRow) -> Result<i64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO cases (case_key, name, scenario, category, model, quant, backend, device, concurrency,
                     threads, context, prompt_tokens, generate_tokens, batch, kv_variant, kv_baseline, type_k, type_v,
                     flash_attention, mmap, sampling)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
                 ON CONFLICT (case_key) DO NOTHING",
                params![
                    c.case_key, c.name, c.scenario, c.category, c.model, c.quant, c.backend, c.device, c.concurrency,
                    c.threads, c.context, c.prompt_tokens, c.generate_tokens, c.batch, c.kv_variant, c.kv_baseline,
                    c.type_k, c.type_v, c.flash_attention, c.mmap, c.sampling
                ],
            )
            .map_err(self.query_err("insert a case"))?;
        self.conn
            .query_row(
                "SELECT id FROM cases WHERE case_key = ?1",
                [&c.case_key],
                |r| r.get(0),
            )
            .map_err(self.query_err("look up a case"))
    }

    /// Records a run as `running`, before any measurement, so a crash leaves a visible trace.
    pub fn begin_run(&self, r: &NewRunRow) -> Result<(), StoreError> {
        self.with_retry(|s| s.begin_run_once(r))
    }

    fn begin_run_once(&self, r: &NewRunRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (id, invocation, case_id, device_id, model_id, status, started_at_ms, tool_version,
                     git_commit, scenario_file, scenario_sha256, seed, warmup, repetitions, host, pid, mode)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    r.id, r.invocation, r.case_id, r.device_id, r.model_id, r.started_at_ms, r.tool_version,
                    r.git_commit, r.scenario_file, r.scenario_sha256, to_i64(r.seed), r.warmup, r.repetitions, r.host,
                    r.pid,
                    r.mode
                ],
            )
            .map_err(self.query_err("record the start of a run"))?;
        Ok(())
    }

    /// Stores every request of a run and its outcome in one transaction: either all of it lands
    /// or none, so a run is never half-written.
    /// Another writer holding the lock is waited for and retried (see [`OpenOptions`]).
    pub fn finish_run(
        &mut self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
    ) -> Result<(), StoreError> {
        self.finish_run_with_answers(run_id, end, requests, &[])
    }

    /// [`Self::finish_run`] for a multiple-choice evaluation: its scored questions land in the
    /// same transaction.
    pub fn finish_run_with_answers(
        &mut self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
        answers: &[AnswerRow],
    ) -> Result<(), StoreError> {
        self.with_retry(|s| s.finish_run_once(run_id, end, requests, answers))
    }

    fn finish_run_once(
        &self,
        run_id: &str,
        end: &RunEndRow,
        requests: &[RequestRow],
        answers: &[AnswerRow],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let waited = self.options.busy_timeout;
        let err = |action: &'static str| {
            let path = path.clone();
            move |source: rusqlite::Error| lock_or(&path, waited, source, action)
        };
        if self.run_status(run_id)?.is_none() {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                run_id: run_id.to_owned(),
            });
        }
        // IMMEDIATE takes the write lock up front: a deferred transaction that starts by reading
        // can fail to upgrade without waiting when another writer got in first.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(err("begin a transaction"))?;
        {
            let mut insert_request = tx
                .prepare(
                    "INSERT INTO requests (run_id, repetition, warmup, request_index, prompt_id, turn, seq,
                         prompt_tokens, generated_tokens, queue_ns, prefill_ns, ttft_ns, decode_ns, e2e_ns,
                         output_sha256, output_text, reset_ns, status, priority, sent_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                )
                .map_err(err("prepare request insert"))?;
            let mut insert_latency = tx
                .prepare("INSERT INTO token_latencies (request_id, idx, ns) VALUES (?1, ?2, ?3)")
                .map_err(err("prepare latency insert"))?;
            for q in requests {
                insert_request
                    .execute(params![
                        run_id,
                        q.repetition,
                        q.warmup,
                        q.request_index,
                        q.prompt_id,
                        q.turn,
                        q.seq,
                        q.prompt_tokens,
                        q.generated_tokens,
                        to_i64(q.queue_ns),
                        to_i64(q.prefill_ns),
                        to_i64(q.ttft_ns),
                        to_i64(q.decode_ns),
                        to_i64(q.e2e_ns),
                        q.output_sha256,
                        q.output_text,
                        to_i64(q.reset_ns),
                        q.status,
                        q.priority,
                        to_i64(q.sent_ns)
                    ])
                    .map_err(err("insert a request"))?;
                let request_id = tx.last_insert_rowid();
                for (idx, ns) in q.token_latencies_ns.iter().enumerate() {
                    insert_latency
                        .execute(params![request_id, idx as i64, to_i64(*ns)])
                        .map_err(err("insert a token latency"))?;
                }
            }
            let updated = tx
                .execute(
                    "UPDATE runs SET status = ?2, ended_at_ms = ?3, error = ?4, load_ms = ?5, kv_cache_bytes = ?6,
                         weights_bytes = ?7, peak_rss_bytes = ?8, engine_counters = ?9,
                         kv_storage = ?10, weights_loading = ?11, scheduling = ?12, flash_attention_used = ?13,
                         estimated_peak_bytes = ?14, cpu_time_ms = ?15, energy_j = ?16, energy_source = ?17,
                         stop_reason = ?18, decode_bytes_read = ?19, decode_steps_ns = ?20,
                         bandwidth_bytes_per_s = ?21, roofline_fraction = ?22, phase_timings = ?23
                     WHERE id = ?1",
                    params![
                        run_id,
                        end.status.as_str(),
                        end.ended_at_ms,
                        end.error,
                        end.load_ms,
                        end.kv_cache_bytes.map(to_i64),
                        end.weights_bytes.map(to_i64),
                        end.peak_rss_bytes.map(to_i64),
                        end.engine_counters,
                        end.effective.as_ref().map(|e| e.kv_storage.clone()),
                        end.effective.as_ref().map(|e| e.weights_loading.clone()),
                        end.effective.as_ref().map(|e| e.scheduling.clone()),
                        end.effective.as_ref().map(|e| e.flash_attention),
                        end.estimated_peak_bytes.map(to_i64),
                        end.cpu_time_ms,
                        end.energy.as_ref().map(|e| e.0),
                        end.energy.as_ref().map(|e| e.1.clone()),
                        end.stop_reason,
                        end.roofline.map(|r| to_i64(r.decode_bytes_read)),
                        end.roofline.map(|r| to_i64(r.decode_steps_ns)),
                        end.roofline.map(|r| r.bandwidth_bytes_per_s),
                        end.roofline.map(|r| r.fraction),
                        end.phase_timings
                    ],
                )
                .map_err(err("record the end of a run"))?;
            if updated != 1 {
                return Err(StoreError::UnknownRun {
                    path: self.path.clone(),
                    run_id: run_id.to_owned(),
                });
            }
        }
        {
            let mut insert_metric = tx
                .prepare(
                    "INSERT INTO run_metrics (run_id, metric, unit, n, mean, median, stddev, cv, min, max,
                         p90, p95, p99, ci_low, ci_high, ci_level, outliers_low, outliers_high)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(err("prepare metric insert"))?;
            for m in &end.metrics {
                insert_metric
                    .execute(params![
                        run_id,
                        m.metric,
                        m.unit,
                        m.n,
                        m.mean,
                        m.median,
                        m.stddev,
                        m.cv,
                        m.min,
                        m.max,
                        m.p90,
                        m.p95,
                        m.p99,
                        m.ci.map(|c| c.0),
                        m.ci.map(|c| c.1),
                        m.ci.map(|c| c.2),
                        m.outliers_low,
                        m.outliers_high
                    ])
                    .map_err(err("insert a metric summary"))?;
            }
        }
        {
            let mut insert_answer = tx
                .prepare(
                    "INSERT INTO answers (run_id, subject, question_index, question_sha256, answer, predicted,
                         predicted_norm, logprobs, continuation_bytes, few_shot, prompt_tokens)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(err("prepare answer insert"))?;
            for a in answers {
                insert_answer
                    .execute(params![
                        run_id,
                        a.subject,
                        a.question_index,
                        a.question_sha256,
                        a.answer,
                        a.predicted,
                        a.predicted_norm,
                        serde_json::to_string(&a.logprobs).unwrap_or_default(),
                        serde_json::to_string(&a.continuation_bytes).unwrap_or_default(),
                        a.few_shot,
                        a.prompt_tokens
                    ])
                    .map_err(err("insert an answer"))?;
            }
        }
        tx.commit().map_err(err("commit a run"))?;
        Ok(())
    }

    /// Writes a whole run, with the device, model and case rows it refers to (their ids in
    /// `whole.run` are replaced by this database's): how a run refused by one database lands in
    /// another.
    pub fn record_whole_run(&mut self, whole: &WholeRun<'_>) -> Result<(), StoreError> {
        let run = NewRunRow {
            device_id: self.upsert_device(whole.device)?,
            model_id: whole.model.map(|m| self.upsert_model(m)).transpose()?,
            case_id: self.upsert_case(whole.case)?,
            ..whole.run.clone()
        };
        if self.run_status(&run.id)?.is_none() {
            self.begin_run(&run)?;
        }
        self.finish_run_with_answers(&run.id, whole.end, whole.requests, whole.answers)
    }

    /// Marks `running` rows left by processes of this host that no longer exist as `aborted`.
    /// Returns how many were marked.
    pub fn mark_stale_runs_aborted(
        &self,
        host: &str,
        is_alive: impl Fn(u32) -> bool,
    ) -> Result<usize, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?1")
            .map_err(self.query_err("find running runs"))?;
        let stale: Vec<String> = stmt
            .query_map([host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
            })
            .map_err(self.query_err("find running runs"))?
            .filter_map(Result::ok)
            .filter(|(_, pid)| !is_alive(*pid))
            .map(|(id, _)| id)
            .collect();
        for id in &stale {
            self.conn
                .execute(
                    "UPDATE runs SET status = 'aborted', error = 'process ended without finishing the run'
                     WHERE id = ?1 AND status = 'running'",
                    [id],
                )
                .map_err(self.query_err("mark a run aborted"))?;
        }
        Ok(stale.len())
    }

    /// Ends a run that is still `running` as `aborted` (its process died) with `reason` and the
    /// tail of its stderr. Returns false when the run had already ended (nothing is changed).
    pub fn abort_run(
        &self,
        run_id: &str,
        reason: &str,
        stderr_tail: &str,
        ended_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'aborted', error = ?2, stderr_tail = ?3, ended_at_ms = ?4
                 WHERE id = ?1 AND status = 'running'",
                params![run_id, reason, stderr_tail, ended_at_ms],
            )
            .map(|n| n == 1)
            .map_err(self.query_err("mark a run aborted"))
    }

    /// Number of runs with `status`, for summaries and tests.
    pub fn count_runs(&self, status: RunStatus) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE status = ?1",
                [status.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.unsigned_abs())
            .map_err(self.query_err("count runs"))
    }

    /// Status and error text of one run.
    pub fn run_status(&self, run_id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT status, error FROM runs WHERE id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.query_err("read a run"))
    }

    /// The latest measurement of `kind` for a device, if any.
    pub fn device_measurement(
        &self,
        device_id: i64,
        kind: &str,
    ) -> Result<Option<f64>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM device_measurements WHERE device_id = ?1 AND kind = ?2
                 ORDER BY measured_at_ms DESC LIMIT 1",
                params![device_id, kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.query_err("read a device measurement"))
    }

    pub fn insert_device_measurement(&self, m: &DeviceMeasurementRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO device_measurements (device_id, kind, value, median, n, details, measured_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![m.device_id, m.kind, m.value, m.median, m.n, m.details, m.measured_at_ms],
            )
            .map(|_| ())
            .map_err(self.query_err("insert a device measurement"))
    }

    /// Records one parity comparison.
    pub fn insert_parity(&self, row: &ParityRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO parity (invocation, model_id, reference_backend, candidate_backend, prompt_set,
                     prompt_id, prompt_tokens, first_token_match, compared_tokens, agreeing_tokens,
                     max_abs_logprob_diff, top10_abs_logprob_diff, reference_top1, candidate_top1, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    row.invocation,
                    row.model_id,
                    row.reference_backend,
                    row.candidate_backend,
                    row.prompt_set,
                    row.prompt_id,
                    row.prompt_tokens,
                    row.first_token_match,
                    row.compared_tokens,
                    row.agreeing_tokens,
                    row.max_abs_logprob_diff,
                    row.top10_abs_logprob_diff,
                    row.reference_top1,
                    row.candidate_top1,
                    row.created_at_ms
                ],
            )
            .map(|_| ())
            .map_err(self.query_err("insert a parity row"))
    }

    /// The raw connection, for read-only queries by reports and tests.
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests;
