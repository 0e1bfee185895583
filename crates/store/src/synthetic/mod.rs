//! A generator of results databases that look like a device lab's history, for benchmarks and
//! tests that need volume (10⁶ samples over 1,000 runs) without running any model.
//!
//! Runs go through the same [`Store`] calls as real ones. Every number is drawn from a seeded
//! generator and labelled as such: model ids end in `-synthetic`, labels say "synthetic data",
//! hosts are `lab-synthetic-N` and runs carry `tool_version = 'synthetic'`, so such a database
//! can never pass for measurements.

use edgebench_core::measure::summarize_metric;
use edgebench_core::stats::{self, SplitMix64};

pub mod lab;

use crate::{
    CaseRow, DeviceRow, MetricRow, ModelRow, NewRunRow, RequestRow, RunEndRow, RunStatus, Store,
    StoreError,
};

/// How much history to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    pub runs: usize,
    /// Distinct cases; run `i` is case `i % cases`, night `i / cases`.
    pub cases: usize,
    pub requests_per_run: usize,
    /// Inter-token latencies per request: the raw samples.
    pub latencies_per_request: usize,
    pub seed: u64,
}

impl HistorySpec {
    /// 1,000 runs × 10 requests × 100 token latencies = 10⁶ raw samples, 50 cases over 20
    /// nights.
    pub const LAB: Self = Self {
        runs: 1_000,
        cases: 50,
        requests_per_run: 10,
        latencies_per_request: 100,
        seed: 2026,
    };

    #[must_use]
    pub fn samples(&self) -> usize {
        self.runs * self.requests_per_run * self.latencies_per_request
    }
}

const SCENARIOS: [(&str, &str); 5] = [
    ("code_generation", "code_generation"),
    ("math_reasoning", "math_reasoning"),
    ("long_context", "long_context"),
    ("multi_turn", "multi_turn"),
    ("batch_concurrent", "code_generation"),
];
const MODELS: [(&str, &str); 5] = [
    ("mimo-7b-twin16-synthetic", "qwen2"),
    ("phi-4-mini-twin16-synthetic", "phi3"),
    ("gemma3-270m-synthetic", "gemma3"),
    ("smollm2-135m-synthetic", "llama"),
    ("qwen-tiny-synthetic", "qwen2"),
];
const DAY_MS: i64 = 86_400_000;

/// A positive sample around `mean` with a log-normal spread `sigma`.
fn lognormal(rng: &mut SplitMix64, mean: f64, sigma: f64) -> f64 {
    let u = (rng.below(1 << 30) as f64 + 0.5) / f64::from(1u32 << 30);
    mean * (sigma * stats::normal_quantile(u)).exp()
}

fn case_row(c: usize) -> CaseRow {
    let (scenario, category) = SCENARIOS[c % SCENARIOS.len()];
    let (model, _) = MODELS[(c / SCENARIOS.len()) % MODELS.len()];
    let backend = if (c / (SCENARIOS.len() * MODELS.len())).is_multiple_of(2) {
        "llama_cpp"
    } else {
        "candle"
    };
    let concurrency = if scenario == "batch_concurrent" { 4 } else { 1 };
    CaseRow {
        case_key: format!("synthetic-case-{c}"),
        category: category.into(),
        context: 1024,
        prompt_tokens: 256,
        generate_tokens: 101,
        ..CaseRow::named(&format!(
            "{scenario}::{model}::Q4_0::{backend}::c{concurrency}"
        ))
    }
}

fn model_row(m: usize) -> ModelRow {
    let (id, arch) = MODELS[m];
    ModelRow {
        sha256: format!("{:064x}", 0x5f17_0000 + m),
        registry_id: id.into(),
        label: format!("{id} (synthetic data)"),
        origin: if id.contains("twin") { "twin" } else { "real" }.into(),
        quant: "Q4_0".into(),
        gguf_arch: arch.into(),
        size_bytes: 50_000_000 * (m as u64 + 1),
        path: format!("models/synthetic/{id}.gguf"),
    }
}

fn device_row(d: usize) -> DeviceRow {
    DeviceRow {
        fingerprint: format!("synthetic-device-{d}"),
        hostname: format!("lab-synthetic-{d}"),
        cpu_model: "synthetic 2-core CPU".into(),
        cpu_features: "avx2".into(),
        cores_physical: Some(2),
        cores_logical: 2,
        ram_bytes: 8 << 30,
        os: "linux".into(),
        kernel: "6".into(),
        engine_builds: "[]".into(),
        build_profile: "release".into(),
        details: "{\"synthetic\":true}".into(),
    }
}

/// The request rows and metric summaries of one generated run.
fn run_rows(
    rng: &mut SplitMix64,
    spec: &HistorySpec,
    mean_gap_ns: f64,
    seed: u64,
) -> (Vec<RequestRow>, Vec<MetricRow>) {
    let mut rows = Vec::with_capacity(spec.requests_per_run);
    let (mut tps, mut ttft, mut tpot) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..spec.requests_per_run {
        let gaps: Vec<u64> = (0..spec.latencies_per_request)
            .map(|_| lognormal(rng, mean_gap_ns, 0.08).round() as u64)
            .collect();
        let decode_ns: u64 = gaps.iter().sum();
        let prefill_ns = lognormal(rng, 40e6, 0.05).round() as u64;
        tps.push(gaps.len() as f64 / (decode_ns as f64 / 1e9));
        ttft.push(prefill_ns as f64 / 1e6);
        tpot.extend(gaps.iter().map(|&g| g as f64 / 1e6));
        rows.push(RequestRow {
            repetition: (i / 4) as u32,
            warmup: false,
            request_index: i as u32,
            prompt_id: format!("p{}", i % 4),
            turn: 0,
            seq: 0,
            prompt_tokens: 256,
            generated_tokens: gaps.len() as u32 + 1,
            queue_ns: 0,
            prefill_ns,
            ttft_ns: prefill_ns,
            decode_ns,
            e2e_ns: prefill_ns + decode_ns,
            reset_ns: 0,
            status: "completed".into(),
            priority: "normal".into(),
            sent_ns: 0,
            output_sha256: format!("{i:064x}"),
            output_text: String::new(),
            token_latencies_ns: gaps,
            source: None,
            fallback_reason: None,
            fallback_ns: None,
            cost_usd: None,
            error: None,
        });
    }
    let metrics = [
        summarize_metric("generation_tokens_per_s", "tokens/s", &tps, seed),
        summarize_metric("ttft_ms", "ms", &ttft, seed),
        summarize_metric("tpot_ms", "ms", &tpot, seed),
    ]
    .iter()
    .flatten()
    .map(MetricRow::from_summary)
    .collect();
    (rows, metrics)
}

/// One generated run, ready to write.
#[derive(Debug, Clone)]
pub struct GeneratedRun {
    pub id: String,
    pub night: i64,
    pub case: usize,
    pub model: usize,
    pub started_at_ms: i64,
    pub rows: Vec<RequestRow>,
    pub end: RunEndRow,
}

/// Generates `spec`'s runs in memory (their metrics summarised as the runner does).
#[must_use]
pub fn generate(spec: &HistorySpec) -> Vec<GeneratedRun> {
    let mut rng = SplitMix64::new(spec.seed);
    let cases = spec.cases.max(1);
    let start_ms = 1_767_225_600_000; // 2026-01-01
    (0..spec.runs)
        .map(|i| {
            let c = i % cases;
            let night = (i / cases) as i64;
            let model = (c / SCENARIOS.len()) % MODELS.len();
            // Each case has its own speed; nights drift by a few percent.
            let mean_gap_ns =
                8e6 * (1.0 + (c % 7) as f64 * 0.25) * (1.0 + 0.01 * (night % 5) as f64);
            let started_at_ms = start_ms + night * DAY_MS + i64::try_from(c).unwrap_or(0) * 60_000;
            let (rows, metrics) = run_rows(&mut rng, spec, mean_gap_ns, spec.seed);
            GeneratedRun {
                id: format!("synthetic-{:016x}-{i:06}", spec.seed),
                night,
                case: c,
                model,
                started_at_ms,
                rows,
                end: RunEndRow {
                    load_ms: Some(100.0),
                    kv_cache_bytes: Some(16 << 20),
                    weights_bytes: Some(50_000_000 * (model as u64 + 1)),
                    peak_rss_bytes: Some(300 << 20),
                    estimated_peak_bytes: Some(320 << 20),
                    cpu_time_ms: Some(2_000.0),
                    stop_reason: Some("fixed".into()),
                    metrics,
                    ..RunEndRow::new(RunStatus::Passed, started_at_ms + 60_000)
                },
            }
        })
        .collect()
}

/// Writes generated runs into `store`, one transaction per run (as the runner does). Returns
/// the number of raw samples (token latencies) written.
///
/// # Errors
/// Whatever the store refuses.
pub fn write_runs(store: &mut Store, runs: &[GeneratedRun]) -> Result<usize, StoreError> {
    let devices: Vec<i64> = (0..2)
        .map(|d| store.upsert_device(&device_row(d)))
        .collect::<Result<_, _>>()?;
    let models: Vec<i64> = (0..MODELS.len())
        .map(|m| store.upsert_model(&model_row(m)))
        .collect::<Result<_, _>>()?;
    let mut case_ids = std::collections::HashMap::new();
    let mut samples = 0;
    for run in runs {
        let case_id = match case_ids.get(&run.case) {
            Some(&id) => id,
            None => {
                let id = store.upsert_case(&case_row(run.case))?;
                case_ids.insert(run.case, id);
                id
            }
        };
        let device = run.case % devices.len();
        store.begin_run(&NewRunRow {
            id: run.id.clone(),
            invocation: format!("synthetic-night-{}", run.night),
            case_id,
            device_id: devices[device],
            model_id: Some(models[run.model]),
            started_at_ms: run.started_at_ms,
            tool_version: "synthetic".into(),
            git_commit: "synthetic".into(),
            scenario_file: "synthetic".into(),
            scenario_sha256: "00".into(),
            seed: 0,
            warmup: 0,
            repetitions: 3,
            host: format!("lab-synthetic-{device}"),
            pid: 0,
            mode: "measure".into(),
        })?;
        samples += run
            .rows
            .iter()
            .map(|r| r.token_latencies_ns.len())
            .sum::<usize>();
        store.finish_run(&run.id, &run.end, &run.rows)?;
    }
    Ok(samples)
}

/// [`generate`] then [`write_runs`].
///
/// # Errors
/// Whatever the store refuses.
pub fn write_history(store: &mut Store, spec: &HistorySpec) -> Result<usize, StoreError> {
    write_runs(store, &generate(spec))
}

/// Writes at `path` a database as schema version 5 wrote it (before `runs.origin` and
/// `answers`): one device on `host`, one case, a passed run `old-run` with one request, and a
/// run `stale-run` still `running` under a process id no system hands out. For the tests of
/// everything that must read an older file without writing to it (ingest, the report).
pub fn schema_v5_database(path: &std::path::Path, host: &str) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    for sql in [
        include_str!("../../migrations/0001_2026-11-25_init.sql"),
        include_str!("../../migrations/0002_2026-11-25_candle.sql"),
        include_str!("../../migrations/0003_2026-11-25_device_facts.sql"),
        include_str!("../../migrations/0004_2026-11-25_serving.sql"),
        include_str!("../../migrations/0005_2026-11-25_memory_error.sql"),
    ] {
        conn.execute_batch(sql)?;
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 5;
         INSERT INTO devices (fingerprint, hostname, cpu_model, cpu_features, cores_physical, cores_logical,
             ram_bytes, os, kernel, engine_builds, build_profile, details)
         VALUES ('old-device', '{host}', 'cpu', '', 2, 2, 1, 'linux', '6', '[]', 'release', '{{}}');
         INSERT INTO cases (case_key, name, scenario, category, model, quant, backend, device, concurrency, threads,
             context, prompt_tokens, generate_tokens, batch, kv_variant, kv_baseline, type_k, type_v,
             flash_attention, mmap, sampling)
         VALUES ('old-case', 'code_generation::m::Q4_0::llama_cpp::c1', 'code_generation', 'code_generation',
             'm', 'Q4_0', 'llama_cpp', 'cpu', 1, 2, 512, 64, 8, 512, 'default', 1, 'f16', 'f16', 0, 1, 'greedy');
         INSERT INTO runs (id, invocation, case_id, device_id, model_id, status, started_at_ms, tool_version,
             git_commit, scenario_file, scenario_sha256, seed, warmup, repetitions, host, pid)
         VALUES ('old-run', 'inv', 1, 1, NULL, 'passed', 5, '0.0.9', 'abc', 's.toml', '00', 1, 0, 1, '{host}', 1),
                ('stale-run', 'inv', 1, 1, NULL, 'running', 6, '0.0.9', 'abc', 's.toml', '00', 1, 0, 1, '{host}', 2147483646);
         INSERT INTO requests (run_id, repetition, warmup, request_index, prompt_id, turn, seq, prompt_tokens,
             generated_tokens, queue_ns, prefill_ns, ttft_ns, decode_ns, e2e_ns, output_sha256, output_text)
         VALUES ('old-run', 0, 0, 0, 'p0', 0, 0, 64, 8, 0, 10, 10, 20, 30, '00', 'text');"
    ))
}
