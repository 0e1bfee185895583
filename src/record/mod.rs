//! The **only** mapping from the pipeline's domain types to the store's rows: the case row, the
//! model row, one row per served turn, the metric summaries and the end of a run, plus the
//! report the harness prints. Storage never shapes the types upstream of here.

use edgebench_core::measure::{self, StopReason};
use edgebench_core::quant::Quant;
use edgebench_core::registry::Origin;
use edgebench_core::scenario::{BackendKind, Sampling};
use edgebench_core::{Case, ModelEntry};
use edgebench_store::{
    AnswerRow, CaseRow, DeviceMeasurementRow, EffectiveRow, GoodputRow, MetricRow, ModelRow,
    NewRunRow, ParityRow, RequestRow, RooflineRow, RunEndRow, RunMode, RunStatus, SustainedRow,
};

use crate::execute::RunOutcome;
use crate::execute::goodput::GoodputRun;
use crate::execute::hybrid::{AnswerSource, HybridRequest, HybridRun};
use crate::execute::measure::{Measured, ServedRequest, rate};
use crate::execute::serving::{Outcome, StepTotals};
use crate::execute::sustained::{CooldownRecord, SustainedRun};
use crate::execute::{SessionFacts, serving};
use crate::host::{self, now_ms};
use crate::outcome::CaseReport;
use edgebench_core::run_facts::RequestStatus;

mod accuracy;
pub mod device;
mod quality;

/// A run's rows, ready for the store, and its report.
#[derive(Debug)]
pub struct Recorded {
    pub end: RunEndRow,
    pub requests: Vec<RequestRow>,
    pub answers: Vec<AnswerRow>,
    pub report: CaseReport,
}

#[must_use]
pub fn case_row(case: &Case) -> CaseRow {
    let s = &case.scenario;
    CaseRow {
        case_key: case.key(),
        name: case.name.clone(),
        scenario: s.name.clone(),
        category: s.category.as_str().into(),
        model: case.model.clone(),
        quant: case.quant.to_string(),
        backend: case.backend.as_str().into(),
        device: s.device.as_str().into(),
        concurrency: case.concurrency,
        threads: case.threads,
        context: case.context(),
        prompt_tokens: s.prompt_tokens,
        generate_tokens: s.generate_tokens,
        batch: s.batch,
        kv_variant: case.kv.name.clone(),
        kv_baseline: case.kv.baseline,
        type_k: case.kv.type_k.as_str().into(),
        type_v: case.kv.type_v.as_str().into(),
        flash_attention: case.kv.flash_attention,
        mmap: case.kv.mmap,
        sampling: match s.sampling {
            Sampling::Greedy => "greedy".into(),
            Sampling::Temperature { temperature, top_k } => {
                format!("temperature={temperature} top_k={top_k}")
            }
        },
    }
}

/// The model's row, for a file of `size` bytes with digest `sha256`.
#[must_use]
pub fn model_row(
    entry: &ModelEntry,
    quant: Quant,
    model_path: &std::path::Path,
    (size, sha256): (u64, String),
) -> ModelRow {
    ModelRow {
        sha256,
        registry_id: entry.id.clone(),
        label: entry.label(),
        origin: match entry.origin {
            Origin::Real => "real".into(),
            Origin::Twin => "twin".into(),
        },
        quant: quant.to_string(),
        gguf_arch: entry.arch.gguf_arch.clone(),
        size_bytes: size,
        path: model_path.display().to_string(),
    }
}

/// What a run made in `mode` is stored as (`runs.mode`).
#[must_use]
pub fn run_mode(mode: crate::plan::Mode) -> RunMode {
    if mode.smoke {
        RunMode::Smoke
    } else {
        RunMode::Measure
    }
}

/// The `running` row a run begins with (its case and model ids are filled in as they are
/// stored).
#[must_use]
pub fn new_run_row(
    run_id: &str,
    invocation: &str,
    device_id: i64,
    case: &Case,
    plan: &crate::plan::RunPlan,
    mode: crate::plan::Mode,
    host: &str,
) -> NewRunRow {
    let s = &case.scenario;
    NewRunRow {
        id: run_id.to_owned(),
        invocation: invocation.to_owned(),
        case_id: 0,
        device_id,
        model_id: None,
        started_at_ms: now_ms(),
        tool_version: crate::TOOL_VERSION.into(),
        git_commit: crate::GIT_COMMIT.into(),
        scenario_file: s.source.file.clone(),
        scenario_sha256: s.source.sha256.clone(),
        seed: s.seed,
        warmup: plan.warmup,
        repetitions: plan.repetitions,
        mode: run_mode(mode).as_str().into(),
        host: host.to_owned(),
        pid: std::process::id(),
    }
}

/// The device's one-off bandwidth probe (STREAM triad).
#[must_use]
pub fn bandwidth_row(device_id: i64, t: &crate::device_facts::Triad) -> DeviceMeasurementRow {
    DeviceMeasurementRow {
        device_id,
        kind: crate::device_facts::TRIAD_KIND.into(),
        value: t.best_bytes_per_s,
        median: t.median_bytes_per_s,
        n: t.repetitions.len() as u32,
        details: serde_json::json!({
            "array_bytes": t.array_bytes, "threads": t.threads, "seed": t.seed,
            "repetitions_bytes_per_s": t.repetitions,
        })
        .to_string(),
        measured_at_ms: now_ms(),
    }
}

/// The device's idle temperature: its hottest thermal zone, with every zone's reading.
#[must_use]
pub fn idle_temperature_row(
    device_id: i64,
    hottest_c: f64,
    zones_c: &std::collections::BTreeMap<String, f64>,
) -> DeviceMeasurementRow {
    DeviceMeasurementRow {
        device_id,
        kind: crate::device_facts::IDLE_TEMPERATURE_KIND.into(),
        value: hottest_c,
        median: hottest_c,
        n: 1,
        details: serde_json::json!({ "zones_c": zones_c }).to_string(),
        measured_at_ms: now_ms(),
    }
}

/// One prompt the parity check compared the engines on.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptParity<'a> {
    pub set: &'a str,
    pub prompt_id: &'a str,
    pub prompt_tokens: usize,
    pub first_token_match: bool,
    /// Positions compared under teacher forcing, and those where both chose the same token.
    pub compared_tokens: usize,
    pub agreeing_tokens: usize,
    /// Largest log-probability difference over the vocabulary and over the reference's top 10
    /// (measured on the fixed prompt only).
    pub logprob_distance: Option<(f64, f64)>,
    /// Each engine's first token (reference, candidate).
    pub top1: (Option<i64>, Option<i64>),
}

/// The `parity` row of one compared prompt between `engines` (reference, candidate).
#[must_use]
pub fn parity_row(
    invocation: &str,
    model_id: i64,
    engines: (BackendKind, BackendKind),
    p: &PromptParity<'_>,
) -> ParityRow {
    ParityRow {
        invocation: invocation.to_owned(),
        model_id,
        reference_backend: engines.0.as_str().into(),
        candidate_backend: engines.1.as_str().into(),
        prompt_set: p.set.to_owned(),
        prompt_id: p.prompt_id.to_owned(),
        prompt_tokens: p.prompt_tokens as u32,
        first_token_match: p.first_token_match,
        compared_tokens: p.compared_tokens as u32,
        agreeing_tokens: p.agreeing_tokens as u32,
        max_abs_logprob_diff: p.logprob_distance.map(|d| d.0),
        top10_abs_logprob_diff: p.logprob_distance.map(|d| d.1),
        reference_top1: p.top1.0,
        candidate_top1: p.top1.1,
        created_at_ms: now_ms(),
    }
}

/// The end of a run that failed with `error` before it had results.
#[must_use]
pub fn failed(error: String, estimated_peak_bytes: Option<u64>) -> RunEndRow {
    RunEndRow {
        error: Some(error),
        peak_rss_bytes: host::peak_rss_bytes(),
        estimated_peak_bytes,
        ..RunEndRow::new(RunStatus::Failed, now_ms())
    }
}

/// The rows and report of a finished case.
#[must_use]
pub fn outcome(outcome: RunOutcome, seed: u64) -> Recorded {
    match outcome {
        RunOutcome::Measured(m) => measured(m, seed),
        RunOutcome::Scored(s) => accuracy::scored(s, seed),
        RunOutcome::Sustained(s) => sustained(s, seed),
        RunOutcome::Goodput(g) => goodput(g),
        RunOutcome::Hybrid(h) => hybrid(h, seed),
    }
}

/// Version of `runs.endpoint`'s JSON (migration 0013).
pub const ENDPOINT_FORMAT: u32 = 1;

fn remote_json(r: &edgebench_backend::RemoteFacts) -> String {
    serde_json::json!({
        "format": ENDPOINT_FORMAT,
        "url": r.url,
        "api": r.api,
        "model": r.model,
        "streaming": r.streaming,
        "token_counts": r.token_counts.as_str(),
        "usage_tokens": r.usage_tokens,
        "content_chunks": r.content_chunks,
        "server": serde_json::from_str::<serde_json::Value>(&r.server).unwrap_or(serde_json::Value::Null),
        "device_profile": r.device_profile,
    })
    .to_string()
}

fn hybrid(h: HybridRun, seed: u64) -> Recorded {
    let rows: Vec<RequestRow> = h
        .requests
        .iter()
        .map(|q| RequestRow {
            repetition: q.repetition,
            warmup: q.warmup,
            request_index: q.index,
            prompt_id: q.prompt_id.clone(),
            turn: 0,
            seq: 0,
            prompt_tokens: q.prompt_tokens,
            generated_tokens: q.generated_tokens,
            queue_ns: 0,
            prefill_ns: q.ttft_ns.unwrap_or(0),
            ttft_ns: q.ttft_ns.unwrap_or(0),
            decode_ns: q.e2e_ns.saturating_sub(q.ttft_ns.unwrap_or(q.e2e_ns)),
            e2e_ns: q.e2e_ns,
            reset_ns: 0,
            status: if q.source == AnswerSource::Unanswered {
                RequestStatus::Failed
            } else {
                RequestStatus::Completed
            }
            .as_str()
            .into(),
            priority: "normal".into(),
            sent_ns: q.sent_ns,
            output_sha256: edgebench_core::sha256_hex(q.text.as_bytes()),
            output_text: q.text.clone(),
            token_latencies_ns: q.token_gaps_ns.clone(),
            source: Some(q.source.as_str().into()),
            fallback_reason: q.fallback_reason.clone(),
            fallback_ns: q.fallback_ns,
            cost_usd: Some(q.cost_usd),
            error: q.error.clone(),
        })
        .collect();
    let measured: Vec<&HybridRequest> = h.requests.iter().filter(|q| !q.warmup).collect();
    let ms = |f: &dyn Fn(&HybridRequest) -> Option<u64>| -> Vec<f64> {
        measured
            .iter()
            .filter_map(|q| f(q))
            .map(|ns| ns as f64 / 1e6)
            .collect()
    };
    let metrics: Vec<MetricRow> = [
        ("ttft_ms", ms(&|q| q.ttft_ns)),
        (
            "e2e_ms",
            ms(&|q| (q.source != AnswerSource::Unanswered).then_some(q.e2e_ns)),
        ),
        // Fallbacks the cloud answered, as the report's fallback latency.
        (
            "fallback_ms",
            ms(&|q| q.fallback_ns.filter(|_| q.source == AnswerSource::Cloud)),
        ),
    ]
    .into_iter()
    .filter_map(|(name, v)| measure::summarize_metric(name, "ms", &v, seed))
    .map(|m| MetricRow::from_summary(&m))
    .collect();
    let on_device = measured
        .iter()
        .filter(|q| q.source == AnswerSource::OnDevice)
        .count();
    let unanswered = measured
        .iter()
        .filter(|q| q.source == AnswerSource::Unanswered)
        .count();
    let endpoint = serde_json::json!({
        "format": ENDPOINT_FORMAT,
        "hybrid": true,
        "url": h.cloud_url,
        "server": serde_json::from_str::<serde_json::Value>(&h.cloud_server).unwrap_or(serde_json::Value::Null),
        "route": {"priority": h.route.priority.as_str(), "model": h.route.model, "price": h.route.price},
        "price": {"name": h.price.name, "usd_per_million": h.price.usd_per_million, "source": h.price.source},
        "ttft_budget_ms": h.ttft_budget_ms,
        "device_refusal": h.device_refusal,
    });
    let report = CaseReport {
        run_id: String::new(),
        measured_requests: measured.len(),
        measured_repetitions: 1,
        generation_tokens_per_s: 0.0,
        prefill_tokens_per_s: 0.0,
        rejected: unanswered,
        stop_reason: StopReason::Fixed,
        roofline_fraction: None,
        estimated_peak_bytes: h.session.estimate.total(),
        peak_rss_bytes: h.session.peak_rss_bytes,
        first_output: format!(
            "{on_device}/{} on device, {} cloud, {unanswered} unanswered{}",
            measured.len(),
            measured.len() - on_device - unanswered,
            h.device_refusal
                .as_ref()
                .map(|r| format!(" (device refused: {r})"))
                .unwrap_or_default()
        ),
        first_output_tokens: Vec::new(),
        accuracy: None,
    };
    let end = RunEndRow {
        endpoint: Some(endpoint.to_string()),
        ..passed(&h.session, StopReason::Fixed, metrics)
    };
    Recorded {
        end,
        requests: rows,
        answers: Vec::new(),
        report,
    }
}

/// Version of `runs.goodput`'s JSON (migration 0012).
pub const GOODPUT_SWEEP_FORMAT: u32 = 1;

fn goodput(g: GoodputRun) -> Recorded {
    let targets = g.targets;
    let sweep = serde_json::json!({
        "format": GOODPUT_SWEEP_FORMAT,
        "targets": { "ttft_ms": targets.ttft_ms, "tpot_ms": targets.tpot_ms, "share": targets.share },
        "preset": g.preset,
        "end": g.end.as_str(),
        "points": g.points.iter().map(|p| serde_json::json!({
            "rate_per_s": p.rate_per_s, "requests": p.requests, "met_share": p.met_share,
            "passed": p.passed, "ttft_p50_ms": p.ttft_p50_ms, "ttft_p90_ms": p.ttft_p90_ms,
            "tpot_p50_ms": p.tpot_p50_ms, "tpot_p90_ms": p.tpot_p90_ms,
        })).collect::<Vec<_>>(),
    });
    let report = CaseReport {
        run_id: String::new(),
        measured_requests: g.points.iter().map(|p| p.requests).sum(),
        measured_repetitions: g.points.len() as u32,
        generation_tokens_per_s: 0.0,
        prefill_tokens_per_s: 0.0,
        rejected: 0,
        stop_reason: StopReason::Fixed,
        roofline_fraction: None,
        estimated_peak_bytes: g.session.estimate.total(),
        peak_rss_bytes: g.session.peak_rss_bytes,
        first_output: g.goodput_per_s.map_or_else(
            || "no rate met the targets".into(),
            |r| format!("goodput {r:.3} requests/s"),
        ),
        first_output_tokens: Vec::new(),
        accuracy: None,
    };
    let end = RunEndRow {
        goodput: Some(GoodputRow {
            sweep: sweep.to_string(),
            goodput_per_s: g.goodput_per_s,
        }),
        ..passed(&g.session, StopReason::Fixed, Vec::new())
    };
    Recorded {
        end,
        requests: Vec::new(),
        answers: Vec::new(),
        report,
    }
}

/// Version of `runs.sustained`'s JSON (migration 0011).
pub const SUSTAINED_SERIES_FORMAT: u32 = 1;

fn sustained(s: SustainedRun, seed: u64) -> Recorded {
    let rates: Vec<f64> = s.samples.iter().map(|x| x.tokens_per_s).collect();
    let metrics: Vec<MetricRow> =
        measure::summarize_metric("generation_tokens_per_s", "tokens/s", &rates, seed)
            .map(|m| MetricRow::from_summary(&m))
            .into_iter()
            .collect();
    let series = serde_json::json!({
        "format": SUSTAINED_SERIES_FORMAT,
        "interval_s": crate::execute::sustained::INTERVAL_S,
        "seconds": s.seconds,
        "decoded_tokens": s.decoded_tokens,
        "baseline_window_s": s.throttle.baseline_window_s,
        "rolling_window_s": s.throttle.rolling_window_s,
        "samples": s.samples.iter().map(|x| serde_json::json!({
            "t_s": x.t_s, "tokens_per_s": x.tokens_per_s, "cpu_mhz": x.cpu_mhz, "temps_c": x.temps_c,
        })).collect::<Vec<_>>(),
    });
    let cooldown = s.cooldown.as_ref().map(|c| {
        match c {
            CooldownRecord::Skipped(reason) => serde_json::json!({ "skipped": reason }),
            CooldownRecord::Waited {
                config,
                idle_c,
                start_c,
                end_c,
                waited_s,
                reached,
            } => serde_json::json!({
                "max_seconds": config.max_seconds, "margin_c": config.margin_c,
                "idle_c": idle_c, "start_c": start_c, "end_c": end_c,
                "waited_s": waited_s, "reached": reached,
            }),
        }
        .to_string()
    });
    let median = metrics.first().map_or(0.0, |m| m.median);
    let report = CaseReport {
        run_id: String::new(),
        measured_requests: 0,
        measured_repetitions: s.samples.len() as u32,
        generation_tokens_per_s: median,
        prefill_tokens_per_s: 0.0,
        rejected: 0,
        stop_reason: StopReason::TimeBudget,
        roofline_fraction: None,
        estimated_peak_bytes: s.session.estimate.total(),
        peak_rss_bytes: s.session.peak_rss_bytes,
        first_output: String::new(),
        first_output_tokens: s.first_output_tokens.clone(),
        accuracy: None,
    };
    let end = RunEndRow {
        sustained: Some(SustainedRow {
            series: series.to_string(),
            throttle_onset_s: s.throttle.onset_s,
            steady_state_ratio: s.throttle.steady_state_ratio,
            cooldown,
        }),
        ..passed(&s.session, StopReason::TimeBudget, metrics)
    };
    Recorded {
        end,
        requests: Vec::new(),
        answers: Vec::new(),
        report,
    }
}

/// The end row of a passed run, from what the session reported.
fn passed(session: &SessionFacts, stop_reason: StopReason, metrics: Vec<MetricRow>) -> RunEndRow {
    RunEndRow {
        endpoint: session.remote.as_ref().map(remote_json),
        load_ms: Some(session.load_ms),
        kv_cache_bytes: Some(session.memory.kv_cache_bytes),
        weights_bytes: Some(session.memory.weights_bytes),
        peak_rss_bytes: session.peak_rss_bytes,
        effective: Some(EffectiveRow {
            kv_storage: session.effective.kv_storage.clone(),
            weights_loading: session.effective.weights.as_str().into(),
            scheduling: session.effective.scheduling.as_str().into(),
            flash_attention: session.effective.flash_attention,
            prompt_format: session.prompt_format.map(|f| f.as_str().to_owned()),
        }),
        estimated_peak_bytes: Some(session.estimate.total()),
        cpu_time_ms: session.cpu_time_ms,
        stop_reason: Some(stop_reason.as_str().into()),
        metrics,
        ..RunEndRow::new(RunStatus::Passed, now_ms())
    }
}

fn measured(m: Measured, seed: u64) -> Recorded {
    let rows: Vec<RequestRow> = m.requests.iter().flat_map(request_rows).collect();
    let mut metrics = metric_rows(&rows, &m.steps, seed);
    // Without streaming a server's answer arrives whole: only its end-to-end latency is a
    // measurement (its "first token" is the last, its "decode steps" read a buffer).
    if m.session.remote.as_ref().is_some_and(|r| !r.streaming) {
        metrics.retain(|row| row.metric == "e2e_ms");
    }
    let median_of = |name: &str| {
        metrics
            .iter()
            .find(|r| r.metric == name)
            .map_or(0.0, |r| r.median)
    };
    let first = m
        .requests
        .iter()
        .find(|r| !r.warmup && r.served.outcome == Outcome::Completed);
    let measured_turn0 = || rows.iter().filter(|r| !r.warmup && r.turn == 0);
    let report = CaseReport {
        run_id: String::new(),
        measured_requests: measured_turn0().count(),
        measured_repetitions: m.steps.len() as u32,
        generation_tokens_per_s: median_of("generation_tokens_per_s"),
        prefill_tokens_per_s: median_of("prefill_tokens_per_s"),
        rejected: m
            .requests
            .iter()
            .filter(|r| !r.warmup && matches!(r.served.outcome, Outcome::Rejected(_)))
            .count(),
        stop_reason: m.stop_reason,
        roofline_fraction: m.roofline.map(|r| r.fraction),
        estimated_peak_bytes: m.session.estimate.total(),
        peak_rss_bytes: m.session.peak_rss_bytes,
        first_output: first
            .and_then(|r| r.texts.first().cloned())
            .unwrap_or_default(),
        first_output_tokens: first
            .and_then(|r| r.served.turns.first())
            .map(|t| t.tokens.clone())
            .unwrap_or_default(),
        accuracy: None,
    };
    // The summed counters (the format `engine_counters` always had) come from the
    // per-repetition ones.
    let phases = &m.phases;
    let counters = (!phases.is_empty()).then(|| {
        let sum = |f: fn(&edgebench_core::overhead::RepetitionPhases) -> f64| {
            phases.iter().map(f).sum::<f64>()
        };
        serde_json::json!({
            "prompt_eval_ms": sum(|p| p.engine_prefill_ms),
            "prompt_eval_tokens": phases.iter().map(|p| p.engine_prefill_tokens).sum::<u64>(),
            "eval_ms": sum(|p| p.engine_decode_ms),
            "eval_tokens": phases.iter().map(|p| p.engine_decode_tokens).sum::<u64>(),
        })
        .to_string()
    });
    // Who else used the machine: stored beside the run's own metrics, read by the report to
    // mark the run contended and keep it out of comparisons.
    if let Some(h) = m.host {
        let host = [
            (
                edgebench_core::contention::OTHERS_CPU_SHARE_METRIC,
                "fraction",
                Some(h.others_cpu_share),
            ),
            (edgebench_core::contention::LOAD_METRIC, "load", h.load_1m),
        ];
        metrics.extend(host.into_iter().filter_map(|(name, unit, value)| {
            measure::summarize_metric(name, unit, &[value?], seed)
                .map(|m| MetricRow::from_summary(&m))
        }));
    }
    let end = RunEndRow {
        sustained: None,
        goodput: None,
        quality: m.quality.as_ref().map(quality::row),
        integrity: Some(quality::integrity_row(&m.integrity)),
        engine_counters: counters,
        phase_timings: (!phases.is_empty())
            .then(|| serde_json::to_string(phases).ok())
            .flatten(),
        energy: m.energy.map(|e| (e.joules, e.source)),
        roofline: m.roofline.map(|r| RooflineRow {
            decode_bytes_read: r.decode_bytes_read,
            decode_steps_ns: r.decode_steps_ns,
            bandwidth_bytes_per_s: r.bandwidth_bytes_per_s,
            fraction: r.fraction,
            probe: r.probe.map(|p| edgebench_store::ProbeRow {
                n: p.n,
                min_bytes_per_s: p.min_bytes_per_s,
                max_bytes_per_s: p.max_bytes_per_s,
            }),
        }),
        ..passed(&m.session, m.stop_reason, metrics)
    };
    Recorded {
        end,
        requests: rows,
        answers: Vec::new(),
        report,
    }
}

/// Storage rows for one served request: one per turn, or one empty row when it never got a
/// slot (rejected, or cancelled while queued).
fn request_rows(request: &ServedRequest) -> Vec<RequestRow> {
    let served = &request.served;
    let base = |turn: usize| RequestRow {
        repetition: request.repetition,
        warmup: request.warmup,
        request_index: served.request as u32,
        prompt_id: request.prompt_id.clone(),
        turn: turn as u32,
        seq: served.slot.unwrap_or_default() as u32,
        prompt_tokens: request.prompt_tokens.get(turn).copied().unwrap_or(0),
        generated_tokens: 0,
        queue_ns: if turn == 0 { served.queue_ns } else { 0 },
        prefill_ns: 0,
        ttft_ns: 0,
        decode_ns: 0,
        e2e_ns: served.queue_ns,
        reset_ns: if turn == 0 { served.reset_ns } else { 0 },
        status: served.outcome.as_str().into(),
        priority: served.priority.as_str().into(),
        sent_ns: served.arrived_ns,
        output_sha256: host::token_digest(&[]),
        output_text: String::new(),
        token_latencies_ns: Vec::new(),
        source: None,
        fallback_reason: None,
        fallback_ns: None,
        cost_usd: None,
        error: None,
    };
    if served.turns.is_empty() {
        return vec![base(0)];
    }
    served
        .turns
        .iter()
        .zip(&request.texts)
        .enumerate()
        .map(|(turn, (t, text))| RequestRow {
            generated_tokens: t.tokens.len() as u32,
            prefill_ns: t.prefill_ns,
            ttft_ns: t.first_token_ns - t.sent_ns,
            decode_ns: t.end_ns - t.first_token_ns,
            e2e_ns: t.end_ns - t.sent_ns,
            sent_ns: t.sent_ns,
            output_sha256: host::token_digest(&t.tokens),
            output_text: text.clone(),
            token_latencies_ns: t.token_gaps_ns.clone(),
            source: None,
            fallback_reason: None,
            fallback_ns: None,
            cost_usd: None,
            error: None,
            ..base(turn)
        })
        .collect()
}

/// Per-metric summaries of a run's measured samples.
fn metric_rows(rows: &[RequestRow], steps: &[StepTotals], seed: u64) -> Vec<MetricRow> {
    let completed_status = serving::Outcome::Completed.as_str();
    let measured: Vec<&RequestRow> = rows.iter().filter(|r| !r.warmup).collect();
    let completed: Vec<&RequestRow> = measured
        .iter()
        .copied()
        .filter(|r| r.status == completed_status)
        .collect();
    let ms = |ns: u64| ns as f64 / 1e6;
    let per_repetition = |f: fn(&StepTotals) -> f64| steps.iter().map(f).collect::<Vec<_>>();
    let series: Vec<(&'static str, &'static str, Vec<f64>)> = vec![
        (
            "generation_tokens_per_s",
            "tokens/s",
            per_repetition(|t| rate(t.decode_tokens, t.decode_ns)),
        ),
        (
            "prefill_tokens_per_s",
            "tokens/s",
            per_repetition(|t| rate(t.prefill_tokens, t.prefill_ns)),
        ),
        (
            "throughput_tokens_per_s",
            "tokens/s",
            steps
                .iter()
                .map(|t| rate(t.decode_tokens + t.prefill_sequences, t.wall_ns))
                .collect(),
        ),
        (
            "ttft_ms",
            "ms",
            completed.iter().map(|r| ms(r.ttft_ns)).collect(),
        ),
        (
            "e2e_ms",
            "ms",
            completed.iter().map(|r| ms(r.e2e_ns)).collect(),
        ),
        (
            "tpot_ms",
            "ms",
            completed
                .iter()
                .flat_map(|r| r.token_latencies_ns.iter().map(|&ns| ms(ns)))
                .collect(),
        ),
        (
            "request_generation_tokens_per_s",
            "tokens/s",
            completed
                .iter()
                .filter(|r| r.generated_tokens > 1)
                .map(|r| rate(u64::from(r.generated_tokens - 1), r.decode_ns))
                .collect(),
        ),
        (
            "queue_wait_ms",
            "ms",
            measured
                .iter()
                .filter(|r| r.turn == 0)
                .map(|r| ms(r.queue_ns))
                .collect(),
        ),
        (
            "reset_us",
            "µs",
            completed
                .iter()
                .filter(|r| r.turn == 0)
                .map(|r| r.reset_ns as f64 / 1e3)
                .collect(),
        ),
    ];
    series
        .into_iter()
        .enumerate()
        .filter_map(|(i, (metric, unit, samples))| {
            let m = measure::summarize_metric(metric, unit, &samples, seed.wrapping_add(i as u64))?;
            Some(MetricRow::from_summary(&m))
        })
        .collect()
}
