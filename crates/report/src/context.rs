//! The report context: what templates, `report.json` and the snapshot tests see. A serialized
//! format of its own (versioned), built from [`crate::data`] values, never from storage rows.

use serde::Serialize;

/// Bumped when a field changes meaning or disappears (`report.json` readers check it).
pub const REPORT_CONTEXT_VERSION: u32 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// From stored samples, with n and spread in the detail.
    Measured,
    /// From a formula (shown in the detail).
    Projected,
    /// Someone's published figure (source in the detail).
    Claimed,
    /// Computed from an assumption (energy without RAPL), said so in the detail.
    Estimated,
    /// No number.
    #[default]
    None,
}

/// One table cell with where its number came from: the value, a compact spread beside it
/// (`±1.2`, read at a glance), the provenance (a badge) and the full description (on demand:
/// hover or expand). The detail never repeats the provenance word.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    pub text: String,
    /// Compact interval shown beside the value, e.g. `±1.2` (half the 95% CI); empty when none.
    pub spread: String,
    pub provenance: Provenance,
    pub detail: String,
}

impl Cell {
    pub fn none(detail: impl Into<String>) -> Self {
        Self {
            text: "—".into(),
            provenance: Provenance::None,
            detail: detail.into(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub format: u32,
    pub generated_at: String,
    pub database: String,
    pub schema_version: u32,
    pub selection: String,
    pub measured_runs: usize,
    pub overview: OverviewSection,
    /// The real small models, like for like (same table shape as the overview).
    pub small_models: OverviewSection,
    pub projection_checks: ProjectionCheckSection,
    pub seed_tables: SeedTableSection,
    pub fidelity: FidelitySection,
    pub categories: CategorySection,
    pub concurrency: ConcurrencySection,
    pub kv: KvSection,
    pub quantization: QuantizationSection,
    pub backends: BackendSection,
    pub runs: RunSection,
    pub sustained: SustainedSection,
    pub goodput: GoodputSection,
    pub remote: RemoteSection,
    pub claims: ClaimSection,
    pub roi: RoiSection,
    pub devices: DeviceSection,
    pub regressions: RegressionSection,
    pub lab: LabSection,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelColumn {
    pub label: String,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverviewSection {
    pub columns: Vec<ModelColumn>,
    pub rows: Vec<OverviewRow>,
    pub winner_rule: String,
    /// Why the table is empty, when it is (e.g. the full-size twins did not run).
    pub note: String,
    /// The fastest measured KV-cache variant with a quality pass: its speed and memory gain
    /// and what it costs in KLD (empty when none ran).
    pub kv_quality: String,
}

/// Published measurements of real models on real devices beside the projection fitted on the
/// other measurements of their device class.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectionCheckSection {
    pub rows: Vec<ProjectionCheckRow>,
    pub fits: Vec<ClassFitRow>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectionCheckRow {
    pub measurement: String,
    pub device: String,
    pub model: String,
    pub published: Cell,
    pub projected: Cell,
    /// Projection ÷ published; `None` when the class has no other measurement.
    pub ratio: Option<f64>,
    pub verdict: String,
}

/// The seed article's tables, one row per claim, with edgebench's answer.
#[derive(Debug, Clone, Serialize)]
pub struct SeedTableSection {
    pub rows: Vec<SeedTableRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedTableRow {
    /// `Overview` or `Per prompt category`.
    pub table: String,
    /// The seed's row (and device).
    pub row: String,
    pub model: String,
    pub claimed: Cell,
    pub answer: Cell,
    pub verdict: String,
    pub verdict_class: String,
    pub arithmetic: String,
}

/// Twins vs real weights: twin ÷ real per case and engine.
#[derive(Debug, Clone, Serialize)]
pub struct FidelitySection {
    pub rows: Vec<FidelityRow>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FidelityRow {
    pub model: String,
    pub engine: String,
    pub case: String,
    pub prefill: Cell,
    pub generation: Cell,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassFitRow {
    pub class: String,
    pub profiles: String,
    pub efficiency: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverviewRow {
    pub metric: String,
    pub cells: Vec<Cell>,
    pub winner: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategorySection {
    pub columns: Vec<ModelColumn>,
    pub rows: Vec<CategoryRow>,
    pub comparison: String,
    pub plot_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryRow {
    pub category: String,
    pub cells: Vec<Cell>,
    pub difference: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencySection {
    pub series: Vec<ConcurrencySeries>,
    pub throughput_svg: String,
    pub latency_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencySeries {
    pub label: String,
    pub rows: Vec<ConcurrencyRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyRow {
    pub concurrency: u32,
    pub requests: u32,
    pub rejected: u32,
    pub e2e_p50_ms: String,
    pub e2e_p95_ms: String,
    pub e2e_p99_ms: String,
    pub ttft_p50_ms: String,
    pub queue_p95_ms: String,
    pub aggregate_tokens_per_s: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct KvSection {
    /// One sentence on the fastest variant with a quality pass (the overview repeats it).
    pub fastest_quality: String,
    pub measured: Vec<KvMeasuredRow>,
    /// Decode speed change against mean KLD, one point per variant with a quality pass.
    pub quality_svg: String,
    /// The mean KLD up to which a variant is "q8_0-level".
    pub q8_level_kld: f64,
    pub projected: Vec<KvProjectedRow>,
    pub formula: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KvMeasuredRow {
    pub group: String,
    pub variant: String,
    pub kv_memory: Cell,
    pub peak_rss: Cell,
    pub ms_per_token: Cell,
    pub tokens_per_s: Cell,
    /// TTFT change: prefill of the same prompts.
    pub prefill: Cell,
    /// Mean KLD against the reference (f16 cache), with its band; n/a for twins.
    pub mean_kld: Cell,
    pub same_top1: Cell,
}

/// Weight quantizations of the same weights against their reference file.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizationSection {
    pub rows: Vec<QuantizationRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuantizationRow {
    pub model: String,
    /// `F16 → Q8_0`.
    pub quant: String,
    pub file_size: Cell,
    /// TTFT change.
    pub prefill: Cell,
    pub tokens_per_s: Cell,
    pub mean_kld: Cell,
    pub same_top1: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct KvProjectedRow {
    pub model: String,
    pub variant: String,
    pub context: u32,
    pub device: String,
    pub kv_memory: String,
    pub decode_roofline: String,
    /// Full-size twins: the roofline at the shares measured here (projected).
    pub at_measured_share: Cell,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendSection {
    pub rows: Vec<BackendRow>,
    pub parity: Vec<ParityRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendRow {
    pub case: String,
    pub llama_cpp: Cell,
    pub candle: Cell,
    pub ratio: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParityRow {
    pub model: String,
    pub engines: String,
    pub first_token: String,
    pub teacher_forced: String,
    pub max_top10_diff: String,
    pub max_vocab_diff: String,
    /// candle against llama.cpp on the same file as a quality pass measures it.
    pub mean_kld: Cell,
    pub same_top1: Cell,
}

/// One row per run that generated or prefilled: its speed, how close its decode came to the
/// device's bandwidth roofline, and what the harness cost against the engine's own counters.
#[derive(Debug, Clone, Serialize)]
pub struct RunSection {
    pub rows: Vec<RunRow>,
    pub roofline_formula: String,
    pub overhead_rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub case: String,
    pub model: String,
    /// `edgebench` or `imported:llama-bench`.
    pub origin: String,
    pub threads: u32,
    /// How the prompts reached the model: `chat` (its template), `raw`, or `raw (before it was
    /// recorded)` for older runs.
    pub prompt_format: String,
    pub generation: Cell,
    pub prefill: Cell,
    pub roofline: Cell,
    /// The run's coefficient of variation of per-request generation speed, with its band.
    pub spread_band: Cell,
    pub overhead_prefill: Cell,
    pub overhead_generation: Cell,
    /// Why the roofline fraction is far from typical, when it is.
    pub note: String,
    /// The same, a few words per reason (the table shows these; the note is on demand).
    pub note_short: String,
    /// Output integrity (TEST06 in spirit): `pass`, `fail` or `n/a` (not checked).
    pub integrity: String,
    /// The case's newest `cargo xtask replicate` verdict on this device; empty when none.
    pub replication: String,
    /// Its first words: `replicates` or `does not replicate`.
    pub replication_short: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimSection {
    pub sources: Vec<String>,
    pub rows: Vec<ClaimRow>,
    pub counts: Vec<VerdictCount>,
    pub devices: Vec<BandwidthRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimRow {
    pub id: String,
    pub model: String,
    pub claim: String,
    pub source: String,
    pub verdict: String,
    pub verdict_class: String,
    pub arithmetic: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictCount {
    pub verdict: String,
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BandwidthRow {
    pub device: String,
    pub ram: String,
    pub bandwidth: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoiSection {
    pub inputs: Vec<RoiInput>,
    pub clouds: Vec<RoiInput>,
    pub rows: Vec<RoiRow>,
    pub formula: String,
    pub plot_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoiInput {
    pub name: String,
    pub value: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoiRow {
    pub model: String,
    pub tokens_per_s: Cell,
    pub joules_per_token: Cell,
    pub usd_per_million: Cell,
    pub capacity_per_month: String,
    pub break_even: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceSection {
    pub devices: Vec<DeviceRow>,
    pub run_counts: Vec<RunCount>,
    pub failures: Vec<FailureRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    pub hostname: String,
    pub fingerprint: String,
    pub cpu: String,
    pub ram: String,
    pub os: String,
    pub build_profile: String,
    pub engines: String,
    pub bandwidth: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunCount {
    pub mode: String,
    pub status: String,
    pub n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    pub case: String,
    pub status: String,
    pub error: String,
    pub stderr_tail: String,
}

/// Goodput: each sweep's highest passing rate, and its latencies against the rate.
#[derive(Debug, Clone, Serialize)]
pub struct GoodputSection {
    pub rule: String,
    pub rows: Vec<GoodputRunRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoodputRunRow {
    pub case: String,
    pub model: String,
    pub targets: String,
    pub goodput: Cell,
    pub end: String,
    pub points: Vec<GoodputPointRow>,
    pub plot_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoodputPointRow {
    pub rate_per_s: String,
    pub requests: u64,
    pub met_pct: f64,
    pub passed: bool,
    pub ttft_p50_ms: String,
    pub ttft_p90_ms: String,
    pub tpot_p50_ms: String,
    pub tpot_p90_ms: String,
}

/// Sustained decode: each sustained run's curve and what the throttle detector found.
#[derive(Debug, Clone, Serialize)]
pub struct SustainedSection {
    pub rule: String,
    pub rows: Vec<SustainedRunRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SustainedRunRow {
    pub case: String,
    pub model: String,
    pub seconds: f64,
    pub samples: usize,
    /// Medians of the first and last windows, measured.
    pub first: Cell,
    pub last: Cell,
    pub steady_state_ratio: Option<f64>,
    /// "none" or the onset in seconds.
    pub onset: String,
    pub cpu_mhz: String,
    pub hottest_c: String,
    pub cooldown: String,
    pub plot_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegressionSection {
    pub test: String,
    /// How generation speed is judged when a case has enough history.
    pub history_test: String,
    pub baseline: String,
    pub threshold_pct: Option<f64>,
    pub rows: Vec<RegressionRow>,
    pub regressed_beyond_threshold: usize,
    /// Current runs with no baseline to compare with: they become the baseline of the next run.
    pub first_runs: Vec<FirstRunRow>,
    /// The between-run spread of calibrated cases (`cargo xtask calibrate`), latest per case,
    /// metric and device.
    pub calibrations: Vec<CalibrationRow>,
    /// One page per flagged series (history verdict regressed or improved), written beside
    /// the report as `series/NNNN.html`.
    pub series_pages: Vec<SeriesPage>,
}

/// A flagged series' own page: its whole history, reference band and change point.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPage {
    /// Relative to the report's directory.
    pub path: String,
    pub case: String,
    pub device: String,
    pub metric: String,
    pub verdict: String,
    pub reference: String,
    pub change_pct: f64,
    pub basis: String,
    pub svg: String,
    /// Oldest first.
    pub nights: Vec<SeriesNight>,
}

/// One night of a series: the median of its runs' medians.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesNight {
    pub night: String,
    pub value: String,
    /// Off the reference median, in percent.
    pub off_pct: f64,
    /// On or after the night the change began.
    pub changed: bool,
}

/// The lab at a glance: devices × cases, each cell the latest verdict of the case on the
/// device (the worst over its metrics).
#[derive(Debug, Clone, Serialize)]
pub struct LabSection {
    pub devices: usize,
    pub cases: usize,
    /// What the report read in full and what as history.
    pub window: String,
    /// Cells by verdict, e.g. `regressed: 2`.
    pub counts: Vec<String>,
    pub heat_map_svg: String,
    pub flagged: Vec<LabFlag>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabFlag {
    pub device: String,
    pub case: String,
    pub metric: String,
    pub verdict: String,
    pub change_pct: f64,
    /// The series page, when the history verdict flagged it.
    pub page: String,
}

/// A case's between-run spread of one metric on one device, measured by re-running it.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub case: String,
    pub metric: String,
    pub device: String,
    pub calibrated_on: String,
    /// Median of the run medians, measured (n runs, each in its own process).
    pub median: Cell,
    pub robust_spread_pct: f64,
    pub cv_pct: f64,
    pub range: String,
    /// Simulated from the run medians; `None` below 3 runs.
    pub false_alerts_per_100: Option<f64>,
    pub detected_within_3_pct: Option<f64>,
    /// "3", or why there is no number (`nightly --processes`).
    pub processes_per_night: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirstRunRow {
    pub case: String,
    pub run: String,
    pub generation: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegressionRow {
    pub case: String,
    /// The device's host name.
    pub device: String,
    /// The series page (`series/NNNN.html`) of a flagged history verdict; empty otherwise.
    pub page: String,
    pub metric: String,
    pub baseline: String,
    pub current: String,
    pub change_pct: f64,
    pub ci: String,
    pub verdict: String,
    /// What the verdict rests on: the case's history on this device, or (labelled, when the
    /// history is too short) the two runs alone.
    pub basis: String,
    /// A flagged history verdict's plot: the runs, the reference band and the change point
    /// (empty otherwise).
    pub history_svg: String,
}

/// HTTP runs beside the same case in process, and hybrid runs with the seed's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteSection {
    pub http: Vec<HttpRow>,
    pub hybrid: Vec<HybridRow>,
    /// The seed's production figures, shown as claims beside the measured ones.
    pub claims: Vec<ClaimRowCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpRow {
    pub case: String,
    /// "<device profile> via <server> at <url>", and where token counts came from.
    pub server: String,
    pub http_rate: Cell,
    pub in_process_rate: Cell,
    /// HTTP ÷ in process.
    pub ratio: Cell,
    pub ttft_added: Cell,
}

#[derive(Debug, Clone, Serialize)]
pub struct HybridRow {
    pub case: String,
    pub cloud: String,
    /// Why the device took no request at all (memory guard, load failure); empty when it did.
    pub device_refusal: String,
    pub on_device: Cell,
    /// Answered by either side.
    pub answered: Cell,
    pub fallback_p50: Cell,
    pub fallback_p95: Cell,
    pub hybrid_cost: Cell,
    pub cloud_cost: Cell,
    pub device_cost: Cell,
    pub savings: Cell,
    /// `<reason kind>: <requests>`.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimRowCell {
    pub what: String,
    pub cell: Cell,
}
