//! The store's read API for reports: every run with its case, model, device and raw samples, as
//! plain values. Opened read-only; an older database is read through a migrated private copy,
//! a newer one refused. The report crate speaks no SQL of its own: the schema is known here, in
//! the store, only.

use std::collections::BTreeMap;
use std::path::Path;

use edgebench_core::overhead::{self, RepetitionPhases};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use edgebench_core::scenario::BackendKind;
use std::path::PathBuf;

use crate::{RunMode, RunStatus, SCHEMA_VERSION, StoreError};

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
    #[error("migrating {}: {source}", db.display())]
    Migrate {
        db: PathBuf,
        source: Box<StoreError>,
    },
}

/// Column `i` read as one of the store's named values (a status, a mode): an unknown name is an
/// error naming the column's value, never compared as a string later.
fn named<T>(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(i)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
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
    pub load_ms: Option<f64>,
    pub kv_cache_bytes: Option<u64>,
    pub weights_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub estimated_peak_bytes: Option<u64>,
    pub memory_estimate_error_pct: Option<f64>,
    pub cpu_time_ms: Option<f64>,
    pub energy_j: Option<f64>,
    pub energy_source: Option<String>,
    pub stop_reason: Option<String>,
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
    /// `edgebench`, or `imported:<tool>` for runs brought in from another tool's output.
    pub origin: String,
    /// Per measured repetition, the harness's and the engine's timing of the same phases.
    pub phases: Vec<RepetitionPhases>,
    pub kv_storage: Option<String>,
    pub scheduling: Option<String>,
    /// `chat` or `raw`; `None` for runs stored before it was recorded (they were raw) and for
    /// imported ones.
    pub prompt_format: Option<String>,
    pub metrics: BTreeMap<String, Metric>,
    pub samples: Samples,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseInfo {
    pub name: String,
    pub scenario: String,
    pub category: String,
    pub model: String,
    pub quant: String,
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
    pub type_k: String,
    pub type_v: String,
    pub flash_attention: bool,
    pub mmap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub registry_id: String,
    pub label: String,
    pub origin: String,
    pub quant: String,
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
    pub quant: String,
    pub candidate: String,
    pub reference: String,
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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoodputSweep {
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    pub share: f64,
    pub preset: Option<String>,
    pub end: String,
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
            end: v["end"].as_str()?.to_owned(),
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

/// The latest calibration of one metric of a case on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub device_id: i64,
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
}

/// Everything a report is built from.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub runs: Vec<Run>,
    pub devices: Vec<Device>,
    pub parity: Vec<Parity>,
    pub calibrations: Vec<Calibration>,
    pub schema_version: u32,
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
        return Ok(Dataset {
            runs: load_runs(&migrated).map_err(sql)?,
            devices: load_devices(&migrated).map_err(sql)?,
            parity: load_parity(&migrated).map_err(sql)?,
            calibrations: load_calibrations(&migrated).map_err(sql)?,
            schema_version: SCHEMA_VERSION,
        });
    }
    Ok(Dataset {
        runs: load_runs(&conn).map_err(sql)?,
        devices: load_devices(&conn).map_err(sql)?,
        parity: load_parity(&conn).map_err(sql)?,
        calibrations: load_calibrations(&conn).map_err(sql)?,
        schema_version: version,
    })
}

fn load_runs(conn: &Connection) -> rusqlite::Result<Vec<Run>> {
    let mut stmt = conn.prepare(
        "SELECT r.id, r.invocation, r.status, r.mode, r.started_at_ms, r.git_commit, r.error,
                r.stderr_tail, r.device_id, r.load_ms, r.kv_cache_bytes, r.weights_bytes,
                r.peak_rss_bytes, r.estimated_peak_bytes, r.memory_estimate_error_pct,
                r.cpu_time_ms, r.energy_j, r.energy_source, r.stop_reason, r.roofline_fraction,
                r.kv_storage, r.scheduling,
                c.name, c.scenario, c.category, c.model, c.quant, c.backend, c.concurrency,
                c.threads, c.context, c.prompt_tokens, c.generate_tokens, c.kv_variant,
                c.kv_baseline, c.type_k, c.type_v, c.flash_attention, c.mmap,
                m.registry_id, m.label, m.origin, m.quant, m.size_bytes, m.sha256,
                r.bandwidth_bytes_per_s, r.origin, r.phase_timings, r.prompt_format,
                r.bandwidth_probe_n, r.bandwidth_probe_min, r.bandwidth_probe_max,
                r.sustained, r.throttle_onset_s, r.steady_state_ratio, r.cooldown,
                r.goodput, r.goodput_per_s
         FROM runs r JOIN cases c ON c.id = r.case_id LEFT JOIN models m ON m.id = r.model_id
         ORDER BY r.started_at_ms, r.id",
    )?;
    let mut runs: Vec<Run> = stmt
        .query_map([], |r| {
            let registry_id: Option<String> = r.get(39)?;
            Ok(Run {
                id: r.get(0)?,
                invocation: r.get(1)?,
                status: named(r, 2)?,
                mode: named(r, 3)?,
                started_at_ms: r.get(4)?,
                git_commit: r.get(5)?,
                error: r.get(6)?,
                stderr_tail: r.get(7)?,
                device_id: r.get(8)?,
                load_ms: r.get(9)?,
                kv_cache_bytes: r.get::<_, Option<i64>>(10)?.map(|v| v.max(0) as u64),
                weights_bytes: r.get::<_, Option<i64>>(11)?.map(|v| v.max(0) as u64),
                peak_rss_bytes: r.get::<_, Option<i64>>(12)?.map(|v| v.max(0) as u64),
                estimated_peak_bytes: r.get::<_, Option<i64>>(13)?.map(|v| v.max(0) as u64),
                memory_estimate_error_pct: r.get(14)?,
                cpu_time_ms: r.get(15)?,
                energy_j: r.get(16)?,
                energy_source: r.get(17)?,
                stop_reason: r.get(18)?,
                roofline_fraction: r.get(19)?,
                bandwidth_bytes_per_s: r.get(45)?,
                origin: r.get(46)?,
                // Written by this tool; an unreadable value is treated as absent.
                phases: r
                    .get::<_, Option<String>>(47)?
                    .and_then(|json| overhead::parse(&json).ok())
                    .unwrap_or_default(),
                kv_storage: r.get(20)?,
                scheduling: r.get(21)?,
                prompt_format: r.get(48)?,
                bandwidth_probe: match (r.get(49)?, r.get(50)?, r.get(51)?) {
                    (Some(n), Some(min), Some(max)) => Some(crate::ProbeRow {
                        n,
                        min_bytes_per_s: min,
                        max_bytes_per_s: max,
                    }),
                    _ => None,
                },
                // Written by this tool; an unreadable series is treated as absent.
                sustained: r
                    .get::<_, Option<String>>(52)?
                    .and_then(|json| SustainedSeries::parse(&json))
                    .map(|mut s| {
                        s.throttle_onset_s = r.get(53).ok().flatten();
                        s.steady_state_ratio = r.get(54).ok().flatten();
                        s.cooldown = r.get(55).ok().flatten();
                        s
                    }),
                goodput: r
                    .get::<_, Option<String>>(56)?
                    .and_then(|json| GoodputSweep::parse(&json))
                    .map(|mut g| {
                        g.goodput_per_s = r.get(57).ok().flatten();
                        g
                    }),
                case: CaseInfo {
                    name: r.get(22)?,
                    scenario: r.get(23)?,
                    category: r.get(24)?,
                    model: r.get(25)?,
                    quant: r.get(26)?,
                    backend: named(r, 27)?,
                    concurrency: r.get(28)?,
                    threads: r.get(29)?,
                    context: r.get(30)?,
                    prompt_tokens: r.get(31)?,
                    generate_tokens: r.get(32)?,
                    kv_variant: r.get(33)?,
                    kv_baseline: r.get(34)?,
                    type_k: r.get(35)?,
                    type_v: r.get(36)?,
                    flash_attention: r.get(37)?,
                    mmap: r.get(38)?,
                },
                model: match registry_id {
                    Some(registry_id) => Some(ModelInfo {
                        registry_id,
                        label: r.get(40)?,
                        origin: r.get(41)?,
                        quant: r.get(42)?,
                        size_bytes: r.get::<_, i64>(43)?.max(0) as u64,
                        sha256: r.get(44)?,
                    }),
                    None => None,
                },
                metrics: BTreeMap::new(),
                samples: Samples::default(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;

    let mut metrics = conn.prepare(
        "SELECT metric, unit, n, median, p90, p95, p99, ci_low, ci_high FROM run_metrics WHERE run_id = ?1",
    )?;
    let mut requests = conn.prepare(
        "SELECT id, status, turn, generated_tokens, ttft_ns, decode_ns, e2e_ns, queue_ns
         FROM requests WHERE run_id = ?1 AND warmup = 0 ORDER BY id",
    )?;
    let mut gaps =
        conn.prepare("SELECT ns FROM token_latencies WHERE request_id = ?1 ORDER BY idx")?;
    for run in &mut runs {
        if run.status != RunStatus::Passed {
            continue;
        }
        let rows = metrics.query_map(params![run.id], |r| {
            let (low, high): (Option<f64>, Option<f64>) = (r.get(7)?, r.get(8)?);
            Ok((
                r.get::<_, String>(0)?,
                Metric {
                    unit: r.get(1)?,
                    n: r.get(2)?,
                    median: r.get(3)?,
                    p90: r.get(4)?,
                    p95: r.get(5)?,
                    p99: r.get(6)?,
                    ci: low.zip(high),
                },
            ))
        })?;
        for row in rows {
            let (name, m) = row?;
            run.metrics.insert(name, m);
        }
        let rows = requests.query_map(params![run.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        let s = &mut run.samples;
        let ms = |ns: i64| ns as f64 / 1e6;
        for row in rows {
            let (id, status, turn, generated, ttft, decode, e2e, queue) = row?;
            if turn == 0 {
                s.requests += 1;
                s.queue_wait_ms.push(ms(queue));
                if status == "queue_full" || status == "admission_timeout" {
                    s.rejected += 1;
                }
            }
            if status != "completed" {
                continue;
            }
            s.generated_tokens += u64::from(generated);
            s.ttft_ms.push(ms(ttft));
            s.e2e_ms.push(ms(e2e));
            if generated > 1 && decode > 0 {
                s.generation_tokens_per_s
                    .push(f64::from(generated - 1) / (decode as f64 / 1e9));
            }
            let g = gaps.query_map(params![id], |r| r.get::<_, i64>(0))?;
            for ns in g {
                s.tpot_ms.push(ms(ns?));
            }
        }
    }
    Ok(runs)
}

fn load_devices(conn: &Connection) -> rusqlite::Result<Vec<Device>> {
    let mut stmt = conn.prepare(
        "SELECT id, fingerprint, hostname, cpu_model, cores_logical, ram_bytes, os, kernel,
                engine_builds, build_profile FROM devices ORDER BY id",
    )?;
    let mut devices: Vec<Device> = stmt
        .query_map([], |r| {
            Ok(Device {
                id: r.get(0)?,
                fingerprint: r.get(1)?,
                hostname: r.get(2)?,
                cpu_model: r.get(3)?,
                cores_logical: r.get(4)?,
                ram_bytes: r.get::<_, i64>(5)?.max(0) as u64,
                os: r.get(6)?,
                kernel: r.get(7)?,
                engine_builds: r.get(8)?,
                build_profile: r.get(9)?,
                triad_bytes_per_s: None,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for d in &mut devices {
        d.triad_bytes_per_s = conn
            .query_row(
                "SELECT value FROM device_measurements WHERE device_id = ?1 AND kind = ?2
                 ORDER BY measured_at_ms DESC LIMIT 1",
                params![d.id, "triad_bandwidth_bytes_per_s"],
                |r| r.get(0),
            )
            .optional()?;
    }
    Ok(devices)
}

fn load_calibrations(conn: &Connection) -> rusqlite::Result<Vec<Calibration>> {
    // The latest calibration per device, case and metric.
    let mut stmt = conn.prepare(
        "SELECT c.device_id, c.case_name, c.metric, c.calibrated_at_ms, c.runs, c.median,
                c.robust_spread, c.cv, c.min, c.max, c.false_alerts_per_100, c.detected_within_3
         FROM calibrations c
         WHERE c.calibrated_at_ms = (SELECT MAX(d.calibrated_at_ms) FROM calibrations d
                                     WHERE d.device_id = c.device_id AND d.case_key = c.case_key
                                       AND d.metric = c.metric)
         ORDER BY c.case_name, c.metric, c.device_id",
    )?;
    stmt.query_map([], |r| {
        Ok(Calibration {
            device_id: r.get(0)?,
            case_name: r.get(1)?,
            metric: r.get(2)?,
            calibrated_at_ms: r.get(3)?,
            runs: r.get(4)?,
            median: r.get(5)?,
            robust_spread: r.get(6)?,
            cv: r.get(7)?,
            min: r.get(8)?,
            max: r.get(9)?,
            false_alerts_per_100: r.get(10)?,
            detected_within_3: r.get(11)?,
        })
    })?
    .collect()
}

fn load_parity(conn: &Connection) -> rusqlite::Result<Vec<Parity>> {
    // The latest invocation per model and candidate engine.
    let mut stmt = conn.prepare(
        "SELECT m.label, m.quant, p.candidate_backend, p.reference_backend,
                SUM(CASE WHEN p.prompt_set != 'fixed' THEN 1 ELSE 0 END),
                SUM(CASE WHEN p.prompt_set != 'fixed' THEN p.first_token_match ELSE 0 END),
                SUM(p.compared_tokens), SUM(p.agreeing_tokens),
                MAX(p.top10_abs_logprob_diff), MAX(p.max_abs_logprob_diff)
         FROM parity p JOIN models m ON m.id = p.model_id
         WHERE p.invocation = (SELECT q.invocation FROM parity q WHERE q.model_id = p.model_id
                               AND q.candidate_backend = p.candidate_backend
                               ORDER BY q.created_at_ms DESC LIMIT 1)
         GROUP BY p.model_id, p.candidate_backend, p.reference_backend
         ORDER BY m.label, m.quant",
    )?;
    stmt.query_map([], |r| {
        Ok(Parity {
            model_label: r.get(0)?,
            quant: r.get(1)?,
            candidate: r.get(2)?,
            reference: r.get(3)?,
            first_token_prompts: r.get(4)?,
            first_token_matches: r.get(5)?,
            compared_tokens: r.get(6)?,
            agreeing_tokens: r.get(7)?,
            max_top10_diff: r.get(8)?,
            max_vocab_diff: r.get(9)?,
        })
    })?
    .collect()
}
