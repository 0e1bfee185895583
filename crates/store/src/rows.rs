//! The storage rows: the database's format, deliberately separate from the domain types, so
//! refactoring the domain never silently changes what an old database means.

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

impl CaseRow {
    /// The row of the case named `name` (`<scenario>::<model>::<quant>::<backend>::c<n>`), its
    /// axes read from the name and every other setting a small default (cpu, 2 threads, 512
    /// positions, 64 prompt and 16 generated tokens, f16 cache, greedy): fixtures, synthetic
    /// data and imports set what differs (`CaseRow { threads: 4, ..CaseRow::named(…) }`).
    #[must_use]
    pub fn named(name: &str) -> Self {
        let mut parts = name.split("::");
        let mut next = || parts.next().unwrap_or_default().to_owned();
        let (scenario, model, quant, backend) = (next(), next(), next(), next());
        let concurrency = next()
            .strip_prefix('c')
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Self {
            case_key: edgebench_core::sha256_hex(name.as_bytes()),
            name: name.to_owned(),
            category: scenario.clone(),
            scenario,
            model,
            quant,
            backend,
            device: "cpu".into(),
            concurrency,
            threads: 2,
            context: 512,
            prompt_tokens: 64,
            generate_tokens: 16,
            batch: 512,
            kv_variant: "default".into(),
            kv_baseline: true,
            type_k: "f16".into(),
            type_v: "f16".into(),
            flash_attention: false,
            mmap: true,
            sampling: "greedy".into(),
        }
    }
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

edgebench_core::named_enum!(RunStatus, "run status", [Running, Passed, Failed, Aborted]);

/// Why a run was made: to measure, or once to check that its case works (`runs.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Measure,
    Smoke,
}

impl RunMode {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Measure => "measure",
            Self::Smoke => "smoke",
        }
    }
}

edgebench_core::named_enum!(RunMode, "run mode", [Measure, Smoke]);

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
    /// A sustained run's series and throttle figures.
    pub sustained: Option<SustainedRow>,
    /// A goodput sweep's rates and result.
    pub goodput: Option<GoodputRow>,
    /// JSON: the remote server of an HTTP or hybrid run (migration 0013).
    pub endpoint: Option<String>,
    /// The quality pass: KLD against a reference configuration (migration 0014).
    pub quality: Option<QualityRow>,
    /// Output integrity (JSON, migration 0015) and whether it passed.
    pub integrity: Option<(String, bool)>,
}

impl RunEndRow {
    /// A run that ended with `status` at `ended_at_ms` and recorded nothing else; callers
    /// fill in what they measured (`RunEndRow { load_ms, ..RunEndRow::new(…) }`).
    #[must_use]
    pub fn new(status: RunStatus, ended_at_ms: i64) -> Self {
        Self {
            status,
            ended_at_ms,
            error: None,
            load_ms: None,
            kv_cache_bytes: None,
            weights_bytes: None,
            peak_rss_bytes: None,
            engine_counters: None,
            phase_timings: None,
            effective: None,
            estimated_peak_bytes: None,
            cpu_time_ms: None,
            energy: None,
            stop_reason: None,
            roofline: None,
            metrics: Vec::new(),
            sustained: None,
            goodput: None,
            endpoint: None,
            quality: None,
            integrity: None,
        }
    }
}

/// Storage row: a quality pass (JSON, migration 0014) and its two headline figures.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRow {
    pub json: String,
    pub mean_kld: f64,
    pub same_top1: f64,
}

/// Storage row: a goodput sweep (JSON, migration 0012) and the goodput it found.
#[derive(Debug, Clone, PartialEq)]
pub struct GoodputRow {
    pub sweep: String,
    pub goodput_per_s: Option<f64>,
}

/// Storage row: a sustained run's 1 Hz series (JSON, migration 0011) and what the throttle
/// detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct SustainedRow {
    pub series: String,
    pub throttle_onset_s: Option<f64>,
    pub steady_state_ratio: Option<f64>,
    pub cooldown: Option<String>,
}

/// Storage row: how close the decode steps came to the memory-bandwidth limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RooflineRow {
    pub decode_bytes_read: u64,
    pub decode_steps_ns: u64,
    pub bandwidth_bytes_per_s: f64,
    pub fraction: f64,
    /// The probe beside the case the bandwidth is the median of, when there was one.
    pub probe: Option<ProbeRow>,
}

/// Storage row: the bandwidth probe's repetitions beside one case (`runs.bandwidth_probe_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRow {
    pub n: u32,
    pub min_bytes_per_s: f64,
    pub max_bytes_per_s: f64,
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
    /// `chat` or `raw` (`runs.prompt_format`); `None` where prompts don't apply.
    pub prompt_format: Option<String>,
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

/// Storage row: the between-run spread of one metric of a case on a device (`calibrations`).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRow {
    pub device_id: i64,
    pub case_key: String,
    pub case_name: String,
    pub model_sha256: Option<String>,
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
    /// JSON: run ids, run medians, simulation seed and size.
    pub details: String,
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
#[derive(Debug, Clone, PartialEq)]
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
    /// Hybrid runs: `on_device`, `cloud` or `unanswered` (migration 0013).
    pub source: Option<String>,
    pub fallback_reason: Option<String>,
    /// From the decision to fall back to the cloud's first token.
    pub fallback_ns: Option<u64>,
    pub cost_usd: Option<f64>,
    /// Why a request got no answer.
    pub error: Option<String>,
}
