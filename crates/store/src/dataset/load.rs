//! Reading the dataset, once for both databases: portable SQL over [`Sql`], a few bulk queries
//! (one per table, not one per run or request: a round trip each would dominate on a server),
//! and every order that depends on text sorted here, byte-wise, so a server's collation can't
//! reorder a report.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use serde_json::Value;

use super::*;
use crate::sql::{Sql, SqlError, mismatch};
use edgebench_core::run_facts::RequestStatus;

/// One row's values with typed, column-naming accessors.
struct Cells<'a> {
    names: &'a [String],
    values: &'a [Value],
}

impl Cells<'_> {
    fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    fn value(&self, i: usize) -> &Value {
        self.values.get(i).unwrap_or(&Value::Null)
    }

    fn opt_i64(&self, i: usize) -> Result<Option<i64>, SqlError> {
        match self.value(i) {
            Value::Null => Ok(None),
            v => crate::sql::int(self.name(i), v).map(Some),
        }
    }

    fn i64(&self, i: usize) -> Result<i64, SqlError> {
        self.opt_i64(i)?
            .ok_or_else(|| mismatch(self.name(i), self.value(i), "an integer"))
    }

    fn u32(&self, i: usize) -> Result<u32, SqlError> {
        let v = self.i64(i)?;
        u32::try_from(v).map_err(|_| mismatch(self.name(i), self.value(i), "a 32-bit count"))
    }

    fn opt_u64(&self, i: usize) -> Result<Option<u64>, SqlError> {
        Ok(self.opt_i64(i)?.map(|v| v.max(0) as u64))
    }

    fn bool(&self, i: usize) -> Result<bool, SqlError> {
        Ok(self.i64(i)? != 0)
    }

    fn opt_f64(&self, i: usize) -> Result<Option<f64>, SqlError> {
        match self.value(i) {
            Value::Null => Ok(None),
            v => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| mismatch(self.name(i), v, "a number")),
        }
    }

    fn f64(&self, i: usize) -> Result<f64, SqlError> {
        self.opt_f64(i)?
            .ok_or_else(|| mismatch(self.name(i), self.value(i), "a number"))
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, SqlError> {
        match self.value(i) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            v => Err(mismatch(self.name(i), v, "text")),
        }
    }

    fn text(&self, i: usize) -> Result<String, SqlError> {
        self.opt_text(i)?
            .ok_or_else(|| mismatch(self.name(i), self.value(i), "text"))
    }

    /// One of the store's named values (a status, a mode): an unknown name is an error naming
    /// the column's value, never compared as a string later.
    fn named<T: FromStr>(&self, i: usize) -> Result<T, SqlError> {
        self.opt_named(i)?
            .ok_or_else(|| mismatch(self.name(i), self.value(i), "a known name"))
    }

    /// A quantization by its name, or by llama.cpp's description of it (`Q4_K - Medium`: what
    /// llama-bench imports stored before they stored names).
    fn quant(&self, i: usize) -> Result<Quant, SqlError> {
        let text = self.text(i)?;
        text.parse()
            .ok()
            .or_else(|| Quant::from_description(&text))
            .ok_or_else(|| mismatch(self.name(i), self.value(i), "a quantization"))
    }

    /// [`Cells::named`], or `None` for NULL.
    fn opt_named<T: FromStr>(&self, i: usize) -> Result<Option<T>, SqlError> {
        self.opt_text(i)?
            .map(|text| {
                text.parse()
                    .map_err(|_| mismatch(self.name(i), self.value(i), "a known name"))
            })
            .transpose()
    }
}

/// Calls `f` with each row of `sql` as [`Cells`].
fn each(
    db: &mut dyn Sql,
    sql: &str,
    mut f: impl FnMut(&Cells<'_>) -> Result<(), SqlError>,
) -> Result<(), SqlError> {
    db.each_row(sql, &[], &mut |names, values| f(&Cells { names, values }))
}

/// [`each`] with parameters.
fn each_with(
    db: &mut dyn Sql,
    sql: &str,
    params: &[Value],
    mut f: impl FnMut(&Cells<'_>) -> Result<(), SqlError>,
) -> Result<(), SqlError> {
    db.each_row(sql, params, &mut |names, values| {
        f(&Cells { names, values })
    })
}

/// Every run, device, parity aggregate and latest calibration of a database at this build's
/// schema; with `nights`, only the runs of the last `nights` nights in full (raw samples
/// read through the indexes from the runs' start times, not by scanning a year), the older
/// passed measured runs as [`HistoryPoint`]s from their summaries.
pub(crate) fn load_window(
    db: &mut dyn Sql,
    schema_version: u32,
    nights: Option<u32>,
) -> Result<Dataset, SqlError> {
    load_window_beside(db, None, schema_version, nights)
}

/// [`load_window`]; with `history_db` (a second connection to the same database) the history
/// before the window is read on it at the same time as the window on `db` (a server then works
/// on both on its own cores).
pub(crate) fn load_window_beside(
    db: &mut dyn Sql,
    history_db: Option<&mut (dyn Sql + Send)>,
    schema_version: u32,
    nights: Option<u32>,
) -> Result<Dataset, SqlError> {
    let start = match nights {
        Some(n) => crate::retention::newest_run_ms(db)?
            .map(|newest| (n, crate::retention::window_start_ms(newest, n))),
        None => None,
    };
    let since = start.map(|(_, since)| since);
    let (history, runs) = match (since, history_db) {
        (Some(since), Some(other)) => std::thread::scope(|scope| {
            let history = scope.spawn(move || load_history(other, since));
            let runs = load_runs(db, Some(since));
            let history = history
                .join()
                .unwrap_or_else(|_| Err(SqlError::NoRow("the history reader panicked".into())));
            (history, runs)
        }),
        (Some(since), None) => (load_history(db, since), load_runs(db, Some(since))),
        (None, _) => (Ok(Vec::new()), load_runs(db, None)),
    };
    let (history, runs) = (history?, runs?);
    let window = start.map(|(nights, start_ms)| Window {
        nights,
        start_ms,
        runs_before: history.len(),
    });
    Ok(Dataset {
        runs,
        devices: load_devices(db)?,
        parity: load_parity(db)?,
        calibrations: load_calibrations(db)?,
        schema_version,
        history,
        window,
    })
}

/// Passed measured runs with a model started before `before_ms`, oldest first, from their
/// stored summaries. Narrow queries without a join or sort on the server (a year is a million
/// runs and four million summaries); matched and ordered here.
fn load_history(db: &mut dyn Sql, before_ms: i64) -> Result<Vec<HistoryPoint>, SqlError> {
    use std::sync::Arc;
    let mut names: HashMap<i64, Arc<str>> = HashMap::new();
    each(db, "SELECT id, name FROM cases", |r| {
        names.insert(r.i64(0)?, Arc::from(r.text(1)?.as_str()));
        Ok(())
    })?;
    let mut hashes: HashMap<i64, Arc<str>> = HashMap::new();
    each(db, "SELECT id, sha256 FROM models", |r| {
        hashes.insert(r.i64(0)?, Arc::from(r.text(1)?.as_str()));
        Ok(())
    })?;
    let mut invocations: HashMap<String, Arc<str>> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    let mut points: Vec<HistoryPoint> = Vec::new();
    each_with(
        db,
        "SELECT id, invocation, started_at_ms, device_id, case_id, model_id, integrity_passed
         FROM runs WHERE started_at_ms < $1 AND status = 'passed' AND mode = 'measure'
              AND model_id IS NOT NULL",
        &[Value::from(before_ms)],
        |r| {
            let invocation = r.text(1)?;
            let invocation = match invocations.get(&invocation) {
                Some(shared) => shared.clone(),
                None => {
                    let shared: Arc<str> = Arc::from(invocation.as_str());
                    invocations.insert(invocation, shared.clone());
                    shared
                }
            };
            let unknown = |what: &str, id: i64| SqlError::NoRow(format!("{what} {id}"));
            let (case_id, model_id) = (r.i64(4)?, r.i64(5)?);
            points.push(HistoryPoint {
                invocation,
                started_at_ms: r.i64(2)?,
                device_id: r.i64(3)?,
                case: names
                    .get(&case_id)
                    .cloned()
                    .ok_or_else(|| unknown("case", case_id))?,
                model_sha256: hashes
                    .get(&model_id)
                    .cloned()
                    .ok_or_else(|| unknown("model", model_id))?,
                integrity_passed: r.opt_i64(6)?.map(|v| v != 0),
                medians: RunMedians::default(),
                others_cpu_share: None,
            });
            ids.push(r.text(0)?);
            Ok(())
        },
    )?;
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let others = edgebench_core::contention::OTHERS_CPU_SHARE_METRIC;
    each(
        db,
        &format!(
            "SELECT run_id, metric, median FROM run_metrics WHERE metric IN ('{}', '{}', '{}', '{others}')",
            HISTORY_METRICS[0], HISTORY_METRICS[1], HISTORY_METRICS[2]
        ),
        |r| {
            let Some(&i) = index.get(r.text(0)?.as_str()) else {
                return Ok(());
            };
            let median = r.f64(2)?;
            let p = &mut points[i];
            match r.text(1)?.as_str() {
                x if x == HISTORY_METRICS[0] => p.medians.generation_tokens_per_s = Some(median),
                x if x == HISTORY_METRICS[1] => p.medians.ttft_ms = Some(median),
                x if x == HISTORY_METRICS[2] => p.medians.tpot_ms = Some(median),
                _ => p.others_cpu_share = Some(median),
            }
            Ok(())
        },
    )?;
    drop(index);
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        (points[a].started_at_ms, &ids[a]).cmp(&(points[b].started_at_ms, &ids[b]))
    });
    let mut slots: Vec<Option<HistoryPoint>> = points.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn run_from(r: &Cells<'_>) -> Result<Run, SqlError> {
    let registry_id = r.opt_text(39)?;
    Ok(Run {
        id: r.text(0)?,
        invocation: r.text(1)?,
        status: r.named(2)?,
        mode: r.named(3)?,
        started_at_ms: r.i64(4)?,
        git_commit: r.text(5)?,
        error: r.opt_text(6)?,
        stderr_tail: r.opt_text(7)?,
        device_id: r.i64(8)?,
        device_fingerprint: r.text(58)?,
        endpoint: r.opt_text(59)?,
        // Written by this tool; an unreadable pass is treated as absent.
        quality: r.opt_text(60)?.and_then(|json| RunQuality::parse(&json)),
        integrity: r.opt_text(61)?.and_then(|json| {
            let v: Value = serde_json::from_str(&json).ok()?;
            v["verdict"].as_str().map(IntegrityVerdict::from_stored)
        }),
        load_ms: r.opt_f64(9)?,
        kv_cache_bytes: r.opt_u64(10)?,
        weights_bytes: r.opt_u64(11)?,
        peak_rss_bytes: r.opt_u64(12)?,
        estimated_peak_bytes: r.opt_u64(13)?,
        memory_estimate_error_pct: r.opt_f64(14)?,
        cpu_time_ms: r.opt_f64(15)?,
        energy_j: r.opt_f64(16)?,
        energy_source: r.opt_text(17)?.as_deref().map(EnergySource::from_stored),
        stop_reason: r.opt_named(18)?,
        roofline_fraction: r.opt_f64(19)?,
        bandwidth_bytes_per_s: r.opt_f64(45)?,
        origin: r.named(46)?,
        // Written by this tool; an unreadable value is treated as absent.
        phases: r
            .opt_text(47)?
            .and_then(|json| overhead::parse(&json).ok())
            .unwrap_or_default(),
        kv_storage: r.opt_text(20)?,
        scheduling: r.opt_named(21)?,
        prompt_format: r.opt_named(48)?,
        bandwidth_probe: match (r.opt_i64(49)?, r.opt_f64(50)?, r.opt_f64(51)?) {
            (Some(n), Some(min), Some(max)) => Some(crate::ProbeRow {
                n: u32::try_from(n).unwrap_or(u32::MAX),
                min_bytes_per_s: min,
                max_bytes_per_s: max,
            }),
            _ => None,
        },
        // Written by this tool; an unreadable series is treated as absent.
        sustained: match r
            .opt_text(52)?
            .and_then(|json| SustainedSeries::parse(&json))
        {
            Some(mut s) => {
                s.throttle_onset_s = r.opt_f64(53)?;
                s.steady_state_ratio = r.opt_f64(54)?;
                s.cooldown = r.opt_text(55)?;
                Some(s)
            }
            None => None,
        },
        goodput: match r.opt_text(56)?.and_then(|json| GoodputSweep::parse(&json)) {
            Some(mut g) => {
                g.goodput_per_s = r.opt_f64(57)?;
                Some(g)
            }
            None => None,
        },
        case: CaseInfo {
            name: r.text(22)?,
            scenario: r.text(23)?,
            category: r.text(24)?,
            model: r.text(25)?,
            quant: r.quant(26)?,
            backend: r.named(27)?,
            concurrency: r.u32(28)?,
            threads: r.u32(29)?,
            context: r.u32(30)?,
            prompt_tokens: r.u32(31)?,
            generate_tokens: r.u32(32)?,
            kv_variant: r.text(33)?,
            kv_baseline: r.bool(34)?,
            type_k: r.named(35)?,
            type_v: r.named(36)?,
            flash_attention: r.bool(37)?,
            mmap: r.bool(38)?,
        },
        model: match registry_id {
            Some(registry_id) => Some(ModelInfo {
                registry_id,
                label: r.text(40)?,
                origin: r.text(41)?,
                quant: r.quant(42)?,
                size_bytes: r.i64(43)?.max(0) as u64,
                sha256: r.text(44)?,
            }),
            None => None,
        },
        metrics: BTreeMap::new(),
        samples: Samples::default(),
    })
}

/// The runs started at or after `since_ms` (all without it), with their metrics and samples.
fn load_runs(db: &mut dyn Sql, since_ms: Option<i64>) -> Result<Vec<Run>, SqlError> {
    let mut runs = Vec::new();
    let since = since_ms.unwrap_or(i64::MIN);
    let param = [Value::from(since)];
    each_with(
        db,
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
                r.goodput, r.goodput_per_s, d.fingerprint, r.endpoint, r.quality, r.integrity
         FROM runs r JOIN cases c ON c.id = r.case_id LEFT JOIN models m ON m.id = r.model_id
              JOIN devices d ON d.id = r.device_id
         WHERE r.started_at_ms >= $1",
        &param,
        |r| {
            runs.push(run_from(r)?);
            Ok(())
        },
    )?;
    runs.sort_by(|a, b| (a.started_at_ms, &a.id).cmp(&(b.started_at_ms, &b.id)));
    let passed: HashMap<String, usize> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == RunStatus::Passed)
        .map(|(i, r)| (r.id.clone(), i))
        .collect();

    each_with(
        db,
        "SELECT run_id, metric, unit, n, median, p90, p95, p99, ci_low, ci_high FROM run_metrics
         WHERE run_id IN (SELECT id FROM runs WHERE started_at_ms >= $1)",
        &param,
        |r| {
            if let Some(&i) = passed.get(&r.text(0)?) {
                let ci = r.opt_f64(8)?.zip(r.opt_f64(9)?);
                runs[i].metrics.insert(
                    r.text(1)?,
                    Metric {
                        unit: r.text(2)?,
                        n: r.u32(3)?,
                        median: r.f64(4)?,
                        p90: r.f64(5)?,
                        p95: r.f64(6)?,
                        p99: r.f64(7)?,
                        ci,
                    },
                );
            }
            Ok(())
        },
    )?;

    // Which runs' raw samples to read: all of them, or in a window only those of the newest
    // invocations of each case on each device (the current runs and their baselines; every
    // other run is judged by its stored summaries). One query each, the selection in SQL: the
    // samples table holds the retained nights only, and a scan of it beats a lookup per run.
    let windowed = since_ms.is_some();
    let request_columns = "SELECT q.run_id, q.id, q.status, q.turn, q.generated_tokens, q.ttft_ns,
                q.decode_ns, q.e2e_ns, q.queue_ns, q.source, q.fallback_reason, q.fallback_ns,
                q.cost_usd, q.error, q.prompt_tokens";
    let (request_queries, gap_queries): (Vec<(String, Vec<Value>)>, Vec<(String, Vec<Value>)>) =
        match since_ms {
            None => (
                vec![(
                    format!(
                        "{request_columns} FROM requests q JOIN runs r ON r.id = q.run_id
                         WHERE r.status = 'passed' AND q.warmup = 0 ORDER BY q.id"
                    ),
                    Vec::new(),
                )],
                // One scan of the table in whatever order the database keeps it (no join, no
                // sort: the largest table by far), ordered here.
                vec![(
                    "SELECT request_id, idx, ns FROM token_latencies".into(),
                    Vec::new(),
                )],
            ),
            Some(since) => (
                vec![(
                    format!(
                        "{request_columns} FROM requests q
                         WHERE q.warmup = 0 AND q.run_id IN ({SAMPLED_RUNS}) ORDER BY q.id"
                    ),
                    vec![Value::from(since)],
                )],
                // One row per request, its gaps in order as text: a row per sample costs more
                // to move than to aggregate.
                vec![(
                    format!(
                        "SELECT q.id, {} FROM requests q
                         JOIN token_latencies t ON t.request_id = q.id
                         WHERE q.run_id IN ({SAMPLED_RUNS}) GROUP BY q.id",
                        db.ordered_concat("t.ns", "t.idx")
                    ),
                    vec![Value::from(since)],
                )],
            ),
        };
    // Measured requests in id order, kept until their gaps are read.
    struct Request {
        run: usize,
        id: i64,
        completed: bool,
    }
    let mut requests: Vec<Request> = Vec::new();
    let ms = |ns: i64| ns as f64 / 1e6;
    for (sql, params) in &request_queries {
        each_with(db, sql, params, |r| {
            let Some(&i) = passed.get(&r.text(0)?) else {
                return Ok(());
            };
            let (id, status, turn, generated) = (
                r.i64(1)?,
                r.named::<RequestStatus>(2)?,
                r.u32(3)?,
                r.u32(4)?,
            );
            let (ttft, decode, e2e, queue) = (r.i64(5)?, r.i64(6)?, r.i64(7)?, r.i64(8)?);
            let s = &mut runs[i].samples;
            if let Some(source) = r.opt_named(9)? {
                s.hybrid.push(crate::dataset::HybridSample {
                    ttft_ms: (source != AnswerSource::Unanswered || ttft > 0).then(|| ms(ttft)),
                    source,
                    fallback_reason: r.opt_text(10)?,
                    e2e_ms: ms(e2e),
                    fallback_ms: r.opt_i64(11)?.map(ms),
                    tokens: u64::from(generated) + u64::from(r.u32(14)?),
                    cost_usd: r.opt_f64(12)?.unwrap_or(0.0),
                    error: r.opt_text(13)?,
                });
            }
            if turn == 0 {
                s.requests += 1;
                s.queue_wait_ms.push(ms(queue));
                if matches!(status, RequestStatus::Rejected(_)) {
                    s.rejected += 1;
                }
            }
            let completed = status == RequestStatus::Completed;
            if completed {
                s.generated_tokens += u64::from(generated);
                s.ttft_ms.push(ms(ttft));
                s.e2e_ms.push(ms(e2e));
                if generated > 1 && decode > 0 {
                    s.generation_tokens_per_s
                        .push(f64::from(generated - 1) / (decode as f64 / 1e9));
                }
            }
            requests.push(Request {
                run: i,
                id,
                completed,
            });
            Ok(())
        })?;
    }
    // Every inter-token gap of those requests.
    let wanted: HashMap<i64, usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, q)| q.completed)
        .map(|(k, q)| (q.id, k))
        .collect();
    let mut gaps: Vec<Vec<(i64, f64)>> = vec![Vec::new(); requests.len()];
    for (sql, params) in &gap_queries {
        each_with(db, sql, params, |r| {
            let Some(&k) = wanted.get(&r.i64(0)?) else {
                return Ok(());
            };
            if !windowed {
                gaps[k].push((r.i64(1)?, ms(r.i64(2)?)));
                return Ok(());
            }
            // Already in order: "ns,ns,…".
            for (idx, ns) in r.text(1)?.split(',').enumerate() {
                let ns: i64 = ns
                    .parse()
                    .map_err(|_| crate::sql::mismatch("ns", &Value::from(ns), "an integer"))?;
                gaps[k].push((idx as i64, ms(ns)));
            }
            Ok(())
        })?;
    }
    for (q, mut g) in requests.iter().zip(gaps) {
        g.sort_unstable_by_key(|&(idx, _)| idx);
        runs[q.run]
            .samples
            .tpot_ms
            .extend(g.into_iter().map(|(_, ms)| ms));
    }
    Ok(runs)
}

/// The passed runs since `$1` whose raw samples a windowed read loads: those of the newest two
/// invocations of each case on each device (the current runs and their baselines). A baseline
/// that can't be compared (another prompt format) leaves its case without a two-run comparison
/// in a window; its history verdict stands.
const SAMPLED_RUNS: &str = "
    SELECT r.id FROM runs r JOIN (
        SELECT case_id, device_id, invocation,
               ROW_NUMBER() OVER (PARTITION BY case_id, device_id ORDER BY newest DESC) AS k
        FROM (SELECT case_id, device_id, invocation, MAX(started_at_ms) AS newest FROM runs
              WHERE started_at_ms >= $1 AND status = 'passed'
              GROUP BY case_id, device_id, invocation) i
    ) n ON n.case_id = r.case_id AND n.device_id = r.device_id AND n.invocation = r.invocation
    WHERE n.k <= 2 AND r.started_at_ms >= $1 AND r.status = 'passed'";

fn load_devices(db: &mut dyn Sql) -> Result<Vec<Device>, SqlError> {
    let mut devices = Vec::new();
    each(
        db,
        "SELECT id, fingerprint, hostname, cpu_model, cores_logical, ram_bytes, os, kernel,
                engine_builds, build_profile FROM devices",
        |r| {
            devices.push(Device {
                id: r.i64(0)?,
                fingerprint: r.text(1)?,
                hostname: r.text(2)?,
                cpu_model: r.text(3)?,
                cores_logical: r.u32(4)?,
                ram_bytes: r.i64(5)?.max(0) as u64,
                os: r.text(6)?,
                kernel: r.text(7)?,
                engine_builds: r.text(8)?,
                build_profile: r.text(9)?,
                triad_bytes_per_s: None,
            });
            Ok(())
        },
    )?;
    // The latest bandwidth measurement of each device.
    let mut latest: HashMap<i64, f64> = HashMap::new();
    each(
        db,
        "SELECT device_id, value FROM device_measurements
         WHERE kind = 'triad_bandwidth_bytes_per_s' ORDER BY measured_at_ms, id",
        |r| {
            latest.insert(r.i64(0)?, r.f64(1)?);
            Ok(())
        },
    )?;
    for d in &mut devices {
        d.triad_bytes_per_s = latest.get(&d.id).copied();
    }
    // By natural key: ids depend on which host's ingest came first.
    devices.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    Ok(devices)
}

/// What a calibration's `details` JSON says about processes per night: `per_night` lists the
/// simulated night sizes and `processes_per_night` the fewest that met the targets (null when
/// none did); calibrations before night sizes were simulated have neither.
fn processes_per_night(details: &str) -> ProcessesPerNight {
    let v: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let Some(sizes) = v.get("per_night").and_then(|p| p.as_array()) else {
        return ProcessesPerNight::NotSimulated;
    };
    match v
        .get("processes_per_night")
        .and_then(serde_json::Value::as_u64)
        .and_then(|k| u32::try_from(k).ok())
    {
        Some(k) => ProcessesPerNight::Needed(k),
        None => ProcessesPerNight::MoreThan(
            sizes
                .iter()
                .filter_map(|s| s.get("processes")?.as_u64())
                .filter_map(|k| u32::try_from(k).ok())
                .collect(),
        ),
    }
}

fn load_calibrations(db: &mut dyn Sql) -> Result<Vec<Calibration>, SqlError> {
    // The latest calibration per device, case and metric.
    let mut out = Vec::new();
    each(
        db,
        "SELECT c.device_id, c.case_name, c.metric, c.calibrated_at_ms, c.runs, c.median,
                c.robust_spread, c.cv, c.min, c.max, c.false_alerts_per_100, c.detected_within_3,
                (SELECT d.fingerprint FROM devices d WHERE d.id = c.device_id), c.details
         FROM calibrations c
         WHERE c.calibrated_at_ms = (SELECT MAX(d.calibrated_at_ms) FROM calibrations d
                                     WHERE d.device_id = c.device_id AND d.case_key = c.case_key
                                       AND d.metric = c.metric)",
        |r| {
            out.push(Calibration {
                device_id: r.i64(0)?,
                case_name: r.text(1)?,
                metric: r.text(2)?,
                calibrated_at_ms: r.i64(3)?,
                runs: r.u32(4)?,
                median: r.f64(5)?,
                robust_spread: r.f64(6)?,
                cv: r.f64(7)?,
                min: r.f64(8)?,
                max: r.f64(9)?,
                false_alerts_per_100: r.opt_f64(10)?,
                detected_within_3: r.opt_f64(11)?,
                device_fingerprint: r.text(12)?,
                processes_per_night: processes_per_night(&r.text(13)?),
            });
            Ok(())
        },
    )?;
    out.sort_by(|a, b| {
        (&a.case_name, &a.metric, &a.device_fingerprint).cmp(&(
            &b.case_name,
            &b.metric,
            &b.device_fingerprint,
        ))
    });
    Ok(out)
}

fn load_parity(db: &mut dyn Sql) -> Result<Vec<Parity>, SqlError> {
    // The latest invocation per model and candidate engine.
    let mut out = Vec::new();
    each(
        db,
        "SELECT m.label, m.quant, p.candidate_backend, p.reference_backend,
                CAST(SUM(CASE WHEN p.prompt_set != 'fixed' THEN 1 ELSE 0 END) AS BIGINT),
                CAST(SUM(CASE WHEN p.prompt_set != 'fixed' THEN p.first_token_match ELSE 0 END) AS BIGINT),
                CAST(SUM(p.compared_tokens) AS BIGINT), CAST(SUM(p.agreeing_tokens) AS BIGINT),
                MAX(p.top10_abs_logprob_diff), MAX(p.max_abs_logprob_diff)
         FROM parity p JOIN models m ON m.id = p.model_id
         WHERE p.invocation = (SELECT q.invocation FROM parity q WHERE q.model_id = p.model_id
                               AND q.candidate_backend = p.candidate_backend
                               ORDER BY q.created_at_ms DESC LIMIT 1)
         GROUP BY p.model_id, m.label, m.quant, p.candidate_backend, p.reference_backend",
        |r| {
            out.push(Parity {
                model_label: r.text(0)?,
                quant: r.quant(1)?,
                candidate: r.named(2)?,
                reference: r.named(3)?,
                first_token_prompts: r.u32(4)?,
                first_token_matches: r.u32(5)?,
                compared_tokens: r.u32(6)?,
                agreeing_tokens: r.u32(7)?,
                max_top10_diff: r.opt_f64(8)?,
                max_vocab_diff: r.opt_f64(9)?,
            });
            Ok(())
        },
    )?;
    out.sort_by(|a, b| {
        (&a.model_label, &a.quant, &a.candidate, &a.reference).cmp(&(
            &b.model_label,
            &b.quant,
            &b.candidate,
            &b.reference,
        ))
    });
    Ok(out)
}
