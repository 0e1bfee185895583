//! The store's read API for reports: every run with its case, model, device and raw samples, as
//! plain values. Opened read-only; an older database is read through a migrated private copy,
//! a newer one refused. The report crate speaks no SQL of its own: the schema is known here, in
//! the store, only.

use std::collections::BTreeMap;
use std::path::Path;

use edgebench_core::overhead::{self, RepetitionPhases};
use rusqlite::{Connection, OpenFlags};

use edgebench_core::goodput::SweepEnd;
use edgebench_core::measure::StopReason;
use edgebench_core::quant::Quant;
use edgebench_core::run_facts::{
    AnswerSource, EnergySource, IntegrityVerdict, RunOrigin, Scheduling,
};
use edgebench_core::scenario::{BackendKind, KvType, PromptFormat};
use std::path::PathBuf;

use crate::sql::{Lite, SqlError};
use crate::{RunMode, RunStatus, SCHEMA_VERSION, StoreError};

mod load;
pub(crate) use load::{load_window, load_window_beside};

/// Why a results database can't be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("no results database at {}; run `cargo xtask bench` first or pass --db", .0.display())]
    NoDatabase(PathBuf),
    #[error("reading {}: {source}", db.display())]
    Sql {
        db: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} has schema version {found}; this build reads up to {supported}: update edgebench", db.display())]
    NewerSchema {
        db: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("reading {}: {message}", db.display())]
    Value { db: PathBuf, message: String },
    #[error("{source}")]
    Store { db: String, source: Box<StoreError> },
    #[error("migrating {}: {source}", db.display())]
    Migrate {
        db: PathBuf,
        source: Box<StoreError>,
    },
}

/// One run, flattened with its case, model and device.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: String,
    pub invocation: String,
    pub status: RunStatus,
    pub mode: RunMode,
    pub started_at_ms: i64,
    pub git_commit: String,
    pub error: Option<String>,
    pub stderr_tail: Option<String>,
    pub case: CaseInfo,
    pub model: Option<ModelInfo>,
    pub device_id: i64,
    /// The device's natural key: orders and groups that must not depend on which host's
    /// ingest came first (ids do) use it.
    pub device_fingerprint: String,
    pub load_ms: Option<f64>,
    pub kv_cache_bytes: Option<u64>,
    pub weights_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub estimated_peak_bytes: Option<u64>,
    pub memory_estimate_error_pct: Option<f64>,
    pub cpu_time_ms: Option<f64>,
    pub energy_j: Option<f64>,
    pub energy_source: Option<EnergySource>,
    pub stop_reason: Option<StopReason>,
    pub roofline_fraction: Option<f64>,
    /// The triad bandwidth the roofline fraction was taken against.
    pub bandwidth_bytes_per_s: Option<f64>,
    /// The probe beside the run its bandwidth is the median of (schema 10; `None` before, and
    /// for smoke runs, which use the device's one-off probe).
    pub bandwidth_probe: Option<crate::ProbeRow>,
    /// A sustained run's series (schema 11).
    pub sustained: Option<SustainedSeries>,
    /// A goodput sweep (schema 12).
    pub goodput: Option<GoodputSweep>,
    /// The quality pass: KLD against a reference configuration (schema 14).
    pub quality: Option<RunQuality>,
    /// Output integrity (schema 15); `None`: not checked (older runs, accuracy, sustained,
    /// goodput and hybrid runs).
    pub integrity: Option<IntegrityVerdict>,
    /// JSON: the server of an HTTP run, or a hybrid run's cloud, route and price (schema 13).
    pub endpoint: Option<String>,
    /// edgebench, or the tool whose output the run was imported from.
    pub origin: RunOrigin,
    /// Per measured repetition, the harness's and the engine's timing of the same phases.
    pub phases: Vec<RepetitionPhases>,
    /// What the engine keeps its KV cache in, in its own words (`f16/f16`, `f32/f32`,
    /// `server's`): a description for the reader, never compared.
    pub kv_storage: Option<String>,
    pub scheduling: Option<Scheduling>,
    /// `None` for runs stored before it was recorded (they were raw) and for imported ones.
    pub prompt_format: Option<PromptFormat>,
    pub metrics: BTreeMap<String, Metric>,
    pub samples: Samples,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseInfo {
    pub name: String,
    pub scenario: String,
    pub category: String,
    pub model: String,
    pub quant: Quant,
    /// The engine (llama-bench imports are llama.cpp). The category stays text: imported runs
    /// carry llama-bench's test kinds (`llama-bench pp`), which are no scenario category.
    pub backend: BackendKind,
    pub concurrency: u32,
    pub threads: u32,
    pub context: u32,
    pub prompt_tokens: u32,
    pub generate_tokens: u32,
    pub kv_variant: String,
    pub kv_baseline: bool,
    pub type_k: KvType,
    pub type_v: KvType,
    pub flash_attention: bool,
    pub mmap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub registry_id: String,
    pub label: String,
    pub origin: String,
    pub quant: Quant,
    pub size_bytes: u64,
    pub sha256: String,
}

/// A stored per-metric summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub unit: String,
    pub n: u32,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub ci: Option<(f64, f64)>,
}

/// Raw measured samples of one run (warmups left out).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Samples {
    /// Per completed request (turn): generated tokens after the first ÷ decode time.
    pub generation_tokens_per_s: Vec<f64>,
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
    /// Every inter-token gap of completed requests.
    pub tpot_ms: Vec<f64>,
    /// Per request (first turn), rejected ones included.
    pub queue_wait_ms: Vec<f64>,
    pub rejected: u32,
    pub requests: u32,
    pub generated_tokens: u64,
    /// Hybrid runs: every measured request with where it was answered (schema 13).
    pub hybrid: Vec<HybridSample>,
}

/// One request of a hybrid run.
#[derive(Debug, Clone, PartialEq)]
pub struct HybridSample {
    pub source: AnswerSource,
    pub fallback_reason: Option<String>,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: f64,
    pub fallback_ms: Option<f64>,
    /// Prompt and generated tokens.
    pub tokens: u64,
    pub cost_usd: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: i64,
    pub fingerprint: String,
    pub hostname: String,
    pub cpu_model: String,
    pub cores_logical: u32,
    pub ram_bytes: u64,
    pub os: String,
    pub kernel: String,
    pub engine_builds: String,
    pub build_profile: String,
    pub triad_bytes_per_s: Option<f64>,
}

/// Parity of one model, aggregated over the latest parity invocation for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    pub model_label: String,
    pub quant: Quant,
    pub candidate: BackendKind,
    pub reference: BackendKind,
    pub first_token_prompts: u32,
    pub first_token_matches: u32,
    pub compared_tokens: u32,
    pub agreeing_tokens: u32,
    pub max_top10_diff: Option<f64>,
    pub max_vocab_diff: Option<f64>,
}

/// A sustained run's 1 Hz series and what the throttle detector found (`runs.sustained`,
/// format 1, and the columns beside it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SustainedSeries {
    pub seconds: f64,
    pub baseline_window_s: f64,
    pub rolling_window_s: f64,
    /// (seconds since decoding began, tokens/s).
    pub points: Vec<(f64, f64)>,
    pub cpu_mhz: Vec<Option<f64>>,
    /// The hottest thermal zone at each sample, °C.
    pub hottest_c: Vec<Option<f64>>,
    pub throttle_onset_s: Option<f64>,
    pub steady_state_ratio: Option<f64>,
    /// The cool-down record (JSON), when the scenario asked for one.
    pub cooldown: Option<String>,
}

impl SustainedSeries {
    /// The series from its JSON; `None` for another format or a malformed one.
    #[must_use]
    pub fn parse(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        if v["format"].as_u64()? != 1 {
            return None;
        }
        let samples = v["samples"].as_array()?;
        Some(Self {
            seconds: v["seconds"].as_f64()?,
            baseline_window_s: v["baseline_window_s"].as_f64()?,
            rolling_window_s: v["rolling_window_s"].as_f64()?,
            points: samples
                .iter()
                .filter_map(|s| Some((s["t_s"].as_f64()?, s["tokens_per_s"].as_f64()?)))
                .collect(),
            cpu_mhz: samples.iter().map(|s| s["cpu_mhz"].as_f64()).collect(),
            hottest_c: samples
                .iter()
                .map(|s| {
                    s["temps_c"].as_object().and_then(|t| {
                        t.values()
                            .filter_map(serde_json::Value::as_f64)
                            .reduce(f64::max)
                    })
                })
                .collect(),
            ..Self::default()
        })
    }
}

/// A goodput sweep (`runs.goodput`, format 1, and `runs.goodput_per_s`).
#[derive(Debug, Clone, PartialEq)]
pub struct GoodputSweep {
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    pub share: f64,
    pub preset: Option<String>,
    pub end: SweepEnd,
    pub points: Vec<GoodputPoint>,
    pub goodput_per_s: Option<f64>,
}

/// One rate of a goodput sweep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoodputPoint {
    pub rate_per_s: f64,
    pub requests: u64,
    pub met_share: f64,
    pub passed: bool,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p90_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub tpot_p90_ms: Option<f64>,
}

impl GoodputSweep {
    /// The sweep from its JSON; `None` for another format or a malformed one.
    #[must_use]
    pub fn parse(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        if v["format"].as_u64()? != 1 {
            return None;
        }
        let t = &v["targets"];
        Some(Self {
            ttft_ms: t["ttft_ms"].as_f64()?,
            tpot_ms: t["tpot_ms"].as_f64()?,
            share: t["share"].as_f64()?,
            preset: v["preset"].as_str().map(str::to_owned),
            end: v["end"].as_str()?.parse().ok()?,
            points: v["points"]
                .as_array()?
                .iter()
                .map(|p| GoodputPoint {
                    rate_per_s: p["rate_per_s"].as_f64().unwrap_or_default(),
                    requests: p["requests"].as_u64().unwrap_or_default(),
                    met_share: p["met_share"].as_f64().unwrap_or_default(),
                    passed: p["passed"].as_bool().unwrap_or_default(),
                    ttft_p50_ms: p["ttft_p50_ms"].as_f64(),
                    ttft_p90_ms: p["ttft_p90_ms"].as_f64(),
                    tpot_p50_ms: p["tpot_p50_ms"].as_f64(),
                    tpot_p90_ms: p["tpot_p90_ms"].as_f64(),
                })
                .collect(),
            goodput_per_s: None,
        })
    }
}

/// A quality pass (`runs.quality`, format 1): the run's next-token distributions over a fixed
/// text against a reference configuration of the same weights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunQuality {
    /// e.g. `llama_cpp f16/f16`.
    pub reference: String,
    /// The quant whose file was the reference, for a weight quantization.
    pub reference_quant: Option<Quant>,
    pub corpus: String,
    pub corpus_sha256: String,
    pub context: u32,
    pub chunks: u32,
    /// Positions scored.
    pub tokens: u64,
    pub mean_kld: f64,
    pub kld_stderr: f64,
    pub kld_ci95: (f64, f64),
    pub p99_kld: f64,
    pub max_kld: f64,
    /// Share 0..1.
    pub same_top1: f64,
    pub same_top1_stderr: f64,
    pub delta_log_ppl: f64,
}

impl RunQuality {
    /// The pass from its JSON; `None` for another format or a malformed one.
    #[must_use]
    pub fn parse(json: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        if v["format"].as_u64()? != 1 {
            return None;
        }
        let f = |key: &str| v[key].as_f64();
        Some(Self {
            reference: v["reference"].as_str()?.to_owned(),
            reference_quant: match v["reference_quant"].as_str() {
                Some(name) => Some(name.parse().ok()?),
                None => None,
            },
            corpus: v["corpus"].as_str()?.to_owned(),
            corpus_sha256: v["corpus_sha256"].as_str()?.to_owned(),
            context: u32::try_from(v["context"].as_u64()?).ok()?,
            chunks: u32::try_from(v["chunks"].as_u64()?).ok()?,
            tokens: v["tokens"].as_u64()?,
            mean_kld: f("mean_kld")?,
            kld_stderr: f("kld_stderr")?,
            kld_ci95: (v["kld_ci95"][0].as_f64()?, v["kld_ci95"][1].as_f64()?),
            p99_kld: f("p99_kld")?,
            max_kld: f("max_kld")?,
            same_top1: f("same_top1")?,
            same_top1_stderr: f("same_top1_stderr")?,
            delta_log_ppl: f("delta_log_ppl")?,
        })
    }
}

/// The latest calibration of one metric of a case on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub device_id: i64,
    pub device_fingerprint: String,
    pub case_name: String,
    pub metric: String,
    pub calibrated_at_ms: i64,
    pub runs: u32,
    pub median: f64,
    pub robust_spread: f64,
    pub cv: f64,
    pub min: f64,
    pub max: f64,
    pub false_alerts_per_100: Option<f64>,
    pub detected_within_3: Option<f64>,
    /// The fewest processes per night (`nightly --processes`) whose median met both targets in
    /// the simulation.
    pub processes_per_night: ProcessesPerNight,
}

/// What a calibration's simulation said about the number of processes per night.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessesPerNight {
    /// Calibrated before night sizes were simulated.
    NotSimulated,
    /// The fewest processes per night that met both targets.
    Needed(u32),
    /// None of these simulated night sizes met them.
    MoreThan(Vec<u32>),
}

/// Everything a report is built from.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Every run, or with a [`Window`] the runs inside it (with their raw samples).
    pub runs: Vec<Run>,
    pub devices: Vec<Device>,
    pub parity: Vec<Parity>,
    pub calibrations: Vec<Calibration>,
    pub schema_version: u32,
    /// Passed measured runs before the window, from their stored summaries only (empty without
    /// a window: `runs` holds them all).
    pub history: Vec<HistoryPoint>,
    pub window: Option<Window>,
}

/// Which runs a windowed read loads in full: those started in the last `nights` nights before
/// the newest run ([`crate::retention::window_start_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub nights: u32,
    pub start_ms: i64,
    /// Runs older than the window, read as [`HistoryPoint`]s.
    pub runs_before: usize,
}

/// A run before the window, as its series' history needs it: which series, which night, its
/// medians from the stored summaries (`run_metrics`), and what decides whether it may be
/// compared. Text is shared (`Arc<str>`): a year of a lab is a million of these.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub case: std::sync::Arc<str>,
    pub device_id: i64,
    pub model_sha256: std::sync::Arc<str>,
    pub invocation: std::sync::Arc<str>,
    pub started_at_ms: i64,
    pub medians: RunMedians,
    pub others_cpu_share: Option<f64>,
    /// `runs.integrity_passed`: `None` when not checked.
    pub integrity_passed: Option<bool>,
}

/// A run's medians of the metrics its history is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunMedians {
    /// Per-request generation rate (`request_generation_tokens_per_s`).
    pub generation_tokens_per_s: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
}

/// The stored summaries [`RunMedians`] reads, by `run_metrics.metric`.
pub const HISTORY_METRICS: [&str; 3] = ["request_generation_tokens_per_s", "ttft_ms", "tpot_ms"];

impl RunMedians {
    /// A run's medians: from its raw samples where it has them, else from its stored summaries
    /// (a pruned run); the two agree (the runner summarises the same samples).
    #[must_use]
    pub fn of(run: &Run) -> Self {
        let median = |samples: &[f64], stored: &str| {
            edgebench_core::stats::summarize(samples)
                .map(|s| s.median)
                .or_else(|| run.metrics.get(stored).map(|m| m.median))
        };
        Self {
            generation_tokens_per_s: median(
                &run.samples.generation_tokens_per_s,
                HISTORY_METRICS[0],
            ),
            ttft_ms: median(&run.samples.ttft_ms, HISTORY_METRICS[1]),
            tpot_ms: median(&run.samples.tpot_ms, HISTORY_METRICS[2]),
        }
    }
}

/// Opens `db` read-only; a missing file is an error naming it (a report never creates a
/// database).
pub fn open(db: &Path) -> Result<Connection, DatasetError> {
    if !db.exists() {
        return Err(DatasetError::NoDatabase(db.to_path_buf()));
    }
    let conn =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            DatasetError::Sql {
                db: db.to_path_buf(),
                source,
            }
        })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|source| DatasetError::Sql {
            db: db.to_path_buf(),
            source,
        })?;
    Ok(conn)
}

/// Reads every run, device and parity row. Databases older than this build are read as far as
/// their schema goes; newer ones are refused.
pub fn load(db: &Path) -> Result<Dataset, DatasetError> {
    load_windowed(db, None)
}

/// [`load`], with only the last `nights` nights' runs in full when given (the others as
/// [`HistoryPoint`]s).
pub fn load_windowed(db: &Path, nights: Option<u32>) -> Result<Dataset, DatasetError> {
    let conn = open(db)?;
    let sql = |source| DatasetError::Sql {
        db: db.to_path_buf(),
        source,
    };
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(DatasetError::NewerSchema {
            db: db.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let read = |conn: &Connection, version| {
        load_window(&mut Lite(conn), version, nights).map_err(|e| match e {
            SqlError::Sqlite(source) => DatasetError::Sql {
                db: db.to_path_buf(),
                source,
            },
            other => DatasetError::Value {
                db: db.to_path_buf(),
                message: other.to_string(),
            },
        })
    };
    if version < SCHEMA_VERSION {
        // An older database: read a migrated private copy. A report never writes to the file
        // it reads (it may be a lab's shared database, or someone else's).
        let copy =
            crate::exchange::migrated_copy(&conn, db).map_err(|source| DatasetError::Migrate {
                db: db.to_path_buf(),
                source: Box::new(source),
            })?;
        drop(conn);
        let migrated = open(copy.path())?;
        return read(&migrated, SCHEMA_VERSION);
    }
    read(&conn, version)
}

/// Everything a report is built from, read from a PostgreSQL store.
pub fn load_pg(store: &mut crate::postgres::PgStore) -> Result<Dataset, crate::StoreError> {
    load_pg_windowed(store, None)
}

/// [`load_pg`] with a window of `nights` (see [`load_windowed`]).
pub fn load_pg_windowed(
    store: &mut crate::postgres::PgStore,
    nights: Option<u32>,
) -> Result<Dataset, crate::StoreError> {
    let version = store.schema_version()?;
    // A report's queries are few and large: compiling them (PostgreSQL's JIT) cost a second
    // per query on a simulated year and saved nothing.
    store.batch_execute("SET jit = off")?;
    // A window's history is read on a second connection at the same time.
    let mut second = match nights {
        Some(_) => {
            let mut other = crate::postgres::PgStore::connect_read_only(&store.target().clone())?;
            other.batch_execute("SET jit = off")?;
            Some(other)
        }
        None => None,
    };
    let mut second_sql = second.as_mut().map(crate::postgres::PgStore::sql);
    let result = load_window_beside(
        &mut store.sql(),
        second_sql
            .as_mut()
            .map(|s| s as &mut (dyn crate::sql::Sql + Send)),
        version,
        nights,
    );
    drop(second_sql);
    result.map_err(store.sql_err("read the results"))
}

/// Reads the dataset at `location`: a SQLite file ([`load`]) or a PostgreSQL database.
pub fn load_from(location: &crate::Location) -> Result<Dataset, DatasetError> {
    load_from_windowed(location, None)
}

/// [`load_from`] with a window of `nights` (see [`load_windowed`]).
pub fn load_from_windowed(
    location: &crate::Location,
    nights: Option<u32>,
) -> Result<Dataset, DatasetError> {
    match location {
        crate::Location::Sqlite(path) => load_windowed(path, nights),
        crate::Location::Postgres(target) => crate::postgres::PgStore::connect_read_only(target)
            .and_then(|mut store| load_pg_windowed(&mut store, nights))
            .map_err(|source| DatasetError::Store {
                db: target.to_string(),
                source: Box::new(source),
            }),
    }
}
