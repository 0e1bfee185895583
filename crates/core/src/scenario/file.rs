//! The serialized scenario format: exactly what a `scenarios/*.toml` file may contain.
//!
//! These types mirror the file, keep spans for error messages, and derive the JSON Schema that is
//! checked into `scenarios/schema.json`. They are not used past validation.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// Version of the scenario format this build reads.
pub const SCENARIO_FORMAT: u32 = 1;

/// One scenario file. Lists (`models`, `quantizations`, `backends`, `concurrency`, `threads`, `kv`)
/// form a matrix; every combination becomes one test case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub format: Spanned<u32>,
    /// Scenario name, the first segment of every case name. Must match `[a-z0-9_]+`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the scenario measures, for humans.
    #[serde(default)]
    pub description: String,
    /// Prompt category, as in the published comparison.
    pub category: Category,
    /// JSONL prompt set, relative to the repository root.
    #[schemars(with = "String")]
    pub dataset: Spanned<String>,
    /// How many dataset prompts each repetition uses (default: all).
    #[schemars(with = "Option<u32>")]
    pub prompts: Option<Spanned<u32>>,
    /// Model ids from `models.toml`.
    #[schemars(with = "Vec<String>")]
    pub models: Spanned<Vec<Spanned<String>>>,
    /// Quantizations, e.g. `Q4_K_M`. Each model runs the listed quantizations it has files for;
    /// a model with none of them is an error. Default: every quantization the model lists.
    #[schemars(with = "Option<Vec<String>>")]
    pub quantizations: Option<Spanned<Vec<Spanned<String>>>>,
    /// Inference engines.
    #[schemars(with = "Vec<BackendName>")]
    pub backends: Spanned<Vec<BackendName>>,
    /// Compute device (default `cpu`).
    #[serde(default)]
    pub device: DeviceName,
    /// Context length in tokens (the KV cache size per sequence).
    #[schemars(with = "u32")]
    pub context: Spanned<u32>,
    /// Maximum prompt length in tokens; longer prompts keep their last tokens (where questions are).
    #[schemars(with = "u32")]
    pub prompt_tokens: Spanned<u32>,
    /// Tokens generated per request (or per turn for multi-turn prompts).
    #[schemars(with = "u32")]
    pub generate_tokens: Spanned<u32>,
    /// Simultaneous requests (closed loop).
    #[schemars(with = "Vec<u32>")]
    pub concurrency: Spanned<Vec<u32>>,
    /// CPU threads for generation and prompt processing.
    #[schemars(with = "Vec<u32>")]
    pub threads: Spanned<Vec<u32>>,
    /// Logical batch size for prompt processing (default 512).
    #[schemars(with = "Option<u32>")]
    pub batch: Option<Spanned<u32>>,
    /// Seed for sampling and any randomised choice.
    pub seed: u64,
    /// Unmeasured warmup repetitions before measuring (default 1).
    #[schemars(with = "Option<u32>")]
    pub warmup: Option<Spanned<u32>>,
    /// Measured repetitions.
    #[schemars(with = "u32")]
    pub repetitions: Spanned<u32>,
    /// Optional memory budget, e.g. "4 GiB"; cases whose estimate exceeds it are skipped.
    #[schemars(with = "Option<String>")]
    pub memory_budget: Option<Spanned<String>>,
    /// A named device profile (`phone-4gb`, `phone-8gb`, `phone-12gb`, `galaxy-s24`,
    /// `iphone-15-pro`, `m2-max`, ...): cases whose memory estimate exceeds its RAM are skipped.
    #[schemars(with = "Option<String>")]
    pub device_profile: Option<Spanned<String>>,
    /// How prompts reach the model: `chat` renders each prompt (and each turn of a
    /// conversation) through the model's own chat template from its GGUF file, `raw` feeds the
    /// text as it is. Default: `chat` for a model whose file carries a chat template (an
    /// instruct model), `raw` otherwise. Accuracy scenarios score MMLU's raw prompt.
    #[schemars(with = "Option<PromptFormatName>")]
    pub prompt_format: Option<Spanned<PromptFormatName>>,
    /// Sampling; greedy when absent.
    pub sampling: Option<SamplingFile>,
    /// How requests reach the engine. Absent: a closed loop of `concurrency` clients, as many
    /// sequence slots, an unbounded queue, every request `normal`.
    pub serving: Option<ServingFile>,
    /// Adaptive stopping: keep repeating past `repetitions` until the confidence interval is
    /// narrow enough or a budget runs out. Absent: exactly `repetitions`.
    pub stopping: Option<StoppingFile>,
    /// KV-cache variants; when absent a single default (f16 K/V, no flash attention, mmap on).
    #[serde(default)]
    pub kv: Vec<KvVariantFile>,
    /// Goodput: sweep the open loop's arrival rate to find the highest rate at which the
    /// targets are met. Replaces the repetitions; `[serving]` still sets slots and queue.
    #[schemars(with = "Option<GoodputFile>")]
    pub goodput: Option<Spanned<GoodputFile>>,
    /// Sustained decode: generate continuously for `seconds`, recording tokens/s, CPU
    /// frequency and temperatures at 1 Hz, to find throttling. Replaces the repetitions.
    #[schemars(with = "Option<SustainedFile>")]
    pub sustained: Option<Spanned<SustainedFile>>,
    /// Output quality beside speed: after its repetitions each case feeds a fixed text
    /// teacher-forced through its own configuration and a reference of the same weights (f16
    /// K/V cache on llama.cpp) and stores mean KLD, same-top-1 and Δ log-perplexity.
    #[schemars(with = "Option<QualityFile>")]
    pub quality: Option<Spanned<QualityFile>>,
    /// Multiple-choice evaluation settings (category `accuracy` only). `dataset` is then the
    /// MMLU-format directory (`dev/` and `test/` of `<subject>_<split>.csv`), overridden at run
    /// time by `EDGEBENCH_MMLU`.
    #[schemars(with = "Option<AccuracyFile>")]
    pub accuracy: Option<Spanned<AccuracyFile>>,
    /// The OpenAI-compatible server an `http` backend drives, or the cloud a `hybrid` backend
    /// falls back to.
    #[schemars(with = "Option<EndpointFile>")]
    pub endpoint: Option<Spanned<EndpointFile>>,
    /// The hybrid engine: on-device first (llama.cpp on this host), the `[endpoint]` when the
    /// device fails, refuses or is too slow.
    #[schemars(with = "Option<HybridFile>")]
    pub hybrid: Option<Spanned<HybridFile>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    /// Base URL of the OpenAI API, e.g. `http://192.168.1.20:8080/v1` (a phone running
    /// llama-server). Give either `url` or `launch`.
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// Start `edgebench serve` on 127.0.0.1 for the case (the case's model, or `launch_model`)
    /// and stop it afterwards: how the tests run HTTP and hybrid cases on loopback.
    #[serde(default)]
    pub launch: bool,
    /// Registry model the launched server serves (default: the case's model and quantization).
    pub launch_model: Option<String>,
    /// The model id sent to the server (default: the registry id).
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (sent as a bearer token; never
    /// stored, printed or reported).
    pub api_key_env: Option<String>,
    /// `completion` (`/v1/completions`, prompt as token ids: default) or `chat`
    /// (`/v1/chat/completions`, the prompt as one user message; the server applies its template).
    #[schemars(with = "Option<String>")]
    pub api: Option<Spanned<String>>,
    /// Stream with server-sent events (default true); false measures end-to-end latency only.
    pub stream: Option<bool>,
    /// Ask the server to ignore end-of-generation so every request yields exactly
    /// `generate_tokens` (llama-server and edgebench serve honour it; default true).
    pub ignore_eos: Option<bool>,
    /// llama-server's `cache_prompt`: it reuses the KV cache of a slot's previous prompt, so a
    /// repeated prompt skips its prefill. `false` measures every prefill. Sent only when set
    /// (other servers may refuse the key).
    pub cache_prompt: Option<bool>,
    /// Connection timeout (default 5000 ms).
    pub connect_timeout_ms: Option<u64>,
    /// A whole request's limit (default 120000 ms).
    pub request_timeout_ms: Option<u64>,
    /// The longest wait for the next streamed chunk before the stream counts as stalled
    /// (default 30000 ms).
    pub stall_timeout_ms: Option<u64>,
    /// The remote device: a profile name (`pixel-8`, `galaxy-s24`, ...) shown with the endpoint.
    pub device_profile: Option<String>,
    /// Faults the launched server injects (tests only; needs `launch`).
    #[schemars(with = "Option<ServerFaultsFile>")]
    pub faults: Option<Spanned<ServerFaultsFile>>,
}

/// Faults `edgebench serve` injects, chosen per request from a seeded sequence.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerFaultsFile {
    /// Added before every response's first byte.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of requests answered with HTTP 500.
    #[serde(default)]
    pub error_rate: f64,
    /// Share answered with HTTP 429 and `Retry-After`.
    #[serde(default)]
    pub overload_rate: f64,
    /// Share of streams cut (connection closed, no `[DONE]`) after `after_tokens` tokens.
    #[serde(default)]
    pub cut_rate: f64,
    /// Share of streams that stall (stay open, send nothing) after `after_tokens` tokens.
    #[serde(default)]
    pub stall_rate: f64,
    /// Share of streams whose next event after `after_tokens` tokens is not JSON.
    #[serde(default)]
    pub malformed_rate: f64,
    /// Where cut, stalled and malformed streams go wrong (default 2).
    pub after_tokens: Option<u32>,
    /// The server aborts (as if killed) when this request arrives, counting from 1.
    pub kill_at_request: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridFile {
    /// Fall back when the on-device first token takes longer than this (default: no budget).
    pub ttft_budget_ms: Option<f64>,
    /// `speed`, `quality` or `cost` (default `cost`): picks the cloud model, as the seed does.
    #[schemars(with = "Option<String>")]
    pub priority: Option<Spanned<String>>,
    /// The cloud models, one per priority that should have its own.
    #[schemars(with = "Vec<CloudRouteFile>")]
    pub cloud: Spanned<Vec<CloudRouteFile>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudRouteFile {
    /// `speed`, `quality` or `cost`.
    pub priority: String,
    /// The model id sent to the cloud endpoint.
    pub model: String,
    /// Its price: the `name` of a `[[cloud]]` entry of `datasets/roi.toml`.
    pub price: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoodputFile {
    /// `interactive` (TTFT 500 ms, TPOT 30 ms) or `conversational` (2000 ms, 100 ms); or give
    /// `ttft_ms` and `tpot_ms` instead.
    #[schemars(with = "Option<String>")]
    pub preset: Option<Spanned<String>>,
    #[schemars(with = "Option<f64>")]
    pub ttft_ms: Option<Spanned<f64>>,
    #[schemars(with = "Option<f64>")]
    pub tpot_ms: Option<Spanned<f64>>,
    /// Share of requests that must meet both targets (default 0.9).
    #[schemars(with = "Option<f64>")]
    pub share: Option<Spanned<f64>>,
    /// First arrival rate of the sweep, requests/s (default 1).
    #[schemars(with = "Option<f64>")]
    pub start_rate_per_s: Option<Spanned<f64>>,
    /// Requests served at each rate (default 16, prompts repeated).
    #[schemars(with = "Option<u32>")]
    pub requests_per_rate: Option<Spanned<u32>>,
    /// At most this many rates (default 8).
    #[schemars(with = "Option<u32>")]
    pub max_steps: Option<Spanned<u32>>,
    /// Stop starting new rates after this many seconds of sweeping (default 120).
    #[schemars(with = "Option<f64>")]
    pub max_seconds: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SustainedFile {
    /// How long to generate (default 600 s; smoke runs cap it at 20 s).
    #[schemars(with = "Option<u32>")]
    pub seconds: Option<Spanned<u32>>,
    /// Before the case, wait at most this long for the hottest thermal zone to come back
    /// within `cooldown_margin_c` of the device's idle temperature (default: no cool-down).
    #[schemars(with = "Option<u32>")]
    pub cooldown_max_seconds: Option<Spanned<u32>>,
    /// The margin of the cool-down, in °C (default 2).
    #[schemars(with = "Option<f64>")]
    pub cooldown_margin_c: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityFile {
    /// The text, relative to the project root (a UTF-8 file).
    #[schemars(with = "String")]
    pub corpus: Spanned<String>,
    /// Tokens per chunk, as llama-perplexity's `-c` (default 512; at most the scenario's
    /// `context`). The second half of each chunk is scored.
    #[schemars(with = "Option<u32>")]
    pub context: Option<Spanned<u32>>,
    /// At most this many chunks (default: every whole chunk of the text; smoke runs score one).
    #[schemars(with = "Option<u32>")]
    pub chunks: Option<Spanned<u32>>,
    /// Compare weight quantizations: the reference is the same model's file of this quant
    /// (e.g. "F16"), with the case's own cache, instead of the case's file with an f16 cache.
    #[schemars(with = "Option<String>")]
    pub reference_quant: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccuracyFile {
    /// Solved examples from the `dev` split before each question, in file order (default 0).
    #[serde(default)]
    pub few_shot: u32,
    /// Subjects to score (default: every subject in `test/`).
    #[schemars(with = "Option<Vec<String>>")]
    pub subjects: Option<Spanned<Vec<String>>>,
    /// At most this many questions per subject, the first ones of each file (default: all).
    #[schemars(with = "Option<u32>")]
    pub questions_per_subject: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    CodeGeneration,
    MathReasoning,
    LongContext,
    MultiTurn,
    BatchConcurrent,
    KvCache,
    Accuracy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormatName {
    Chat,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackendName {
    LlamaCpp,
    Candle,
    Http,
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceName {
    #[default]
    Cpu,
    Cuda,
    Metal,
    Vulkan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KvTypeName {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingFile {
    /// Temperature; 0 means greedy.
    #[schemars(with = "f32")]
    pub temperature: Spanned<f32>,
    /// Top-k cut before sampling (0 = off).
    #[serde(default)]
    pub top_k: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServingFile {
    /// Sequences the engine serves at once (default: the case's concurrency).
    #[schemars(with = "Option<u32>")]
    pub slots: Option<Spanned<u32>>,
    /// Requests that may wait for a slot; more are rejected (default: unbounded).
    pub queue_capacity: Option<u32>,
    /// A request waiting longer than this for a slot is rejected (default: waits).
    pub admission_timeout_ms: Option<u64>,
    /// Open loop: requests arrive at this mean rate (Poisson, seeded by `seed`) whatever the
    /// server does. Default: closed loop, each client sends its next request when answered.
    #[schemars(with = "Option<f64>")]
    pub arrival_rate_per_s: Option<Spanned<f64>>,
    /// Clients give up (cancel) a request this long after sending it (default: never).
    pub cancel_after_ms: Option<u64>,
    /// Relative weights of the priority classes among the requests (default: all normal).
    #[schemars(with = "Option<PrioritiesFile>")]
    pub priorities: Option<Spanned<PrioritiesFile>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrioritiesFile {
    #[serde(default)]
    pub realtime: u32,
    #[serde(default)]
    pub normal: u32,
    #[serde(default)]
    pub batch: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoppingFile {
    /// Stop once the 95% CI of the median generation rate is within this fraction of the
    /// median (0.01 = ±1%).
    #[schemars(with = "f64")]
    pub target_relative_ci: Spanned<f64>,
    /// Never run more measured repetitions than this.
    #[schemars(with = "u32")]
    pub max_repetitions: Spanned<u32>,
    /// Stop starting repetitions after this many seconds of measuring.
    #[schemars(with = "Option<f64>")]
    pub max_seconds: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KvVariantFile {
    /// Variant name, the last segment of case names (`baseline`, `q8_0-fa`, ...).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Marks the variant other variants are compared against (default false).
    #[schemars(with = "Option<bool>")]
    pub baseline: Option<Spanned<bool>>,
    /// K-cache type; when absent, the engine's own default (llama.cpp: f16; candle: f32).
    pub type_k: Option<KvTypeName>,
    /// V-cache type; when absent, the engine's own default.
    pub type_v: Option<KvTypeName>,
    /// When absent, the engine's default attention (off in llama.cpp; candle has none).
    pub flash_attention: Option<bool>,
    /// Memory-map the weights; when absent, the engine's default (llama.cpp maps, candle reads).
    pub mmap: Option<bool>,
    /// Caps the context length for this variant.
    pub context_cap: Option<u32>,
}

/// JSON Schema of [`ScenarioFile`], pretty-printed, as checked into `scenarios/schema.json`.
#[must_use]
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
