//! Scenarios: parsed from TOML ([`file`]), validated against the model registry into a
//! [`Scenario`], and expanded into named [`Case`]s.

pub mod file;
pub mod remote;

use std::sync::Arc;

use toml::Spanned;

use crate::quant::Quant;
use crate::registry::Registry;
use crate::text_pos::{Location, line_col};
use file::ScenarioFile;

pub use file::Category;
pub use remote::{Api, CloudPriority, CloudRoute, Endpoint, EndpointTarget, Hybrid, ServerFaults};

crate::named_enum!(
    Category,
    "category",
    [
        CodeGeneration,
        MathReasoning,
        LongContext,
        MultiTurn,
        BatchConcurrent,
        KvCache,
        Accuracy
    ]
);
crate::named_enum!(BackendKind, "backend", [LlamaCpp, Candle, Http, Hybrid]);
crate::named_enum!(PromptFormat, "prompt format", [Chat, Raw]);
crate::named_enum!(Device, "device", [Cpu, Cuda, Metal, Vulkan]);
crate::named_enum!(
    KvType,
    "KV cache type",
    [F32, F16, Bf16, Q8_0, Q4_0, Q4_1, Iq4Nl, Q5_0, Q5_1]
);

impl Category {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeGeneration => "code_generation",
            Self::MathReasoning => "math_reasoning",
            Self::LongContext => "long_context",
            Self::MultiTurn => "multi_turn",
            Self::BatchConcurrent => "batch_concurrent",
            Self::KvCache => "kv_cache",
            Self::Accuracy => "accuracy",
        }
    }
}

/// How a prompt reaches the model: through its chat template, or as plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptFormat {
    /// Rendered through the model's GGUF chat template (llama.cpp's template support).
    Chat,
    /// The dataset's text as it is.
    Raw,
}

impl PromptFormat {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Raw => "raw",
        }
    }

    /// The format a run uses: the scenario's, else `chat` exactly when the model has a template.
    #[must_use]
    pub fn resolve(declared: Option<Self>, model_has_template: bool) -> Self {
        declared.unwrap_or(if model_has_template {
            Self::Chat
        } else {
            Self::Raw
        })
    }
}

/// An inference engine edgebench can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    LlamaCpp,
    Candle,
    /// Any OpenAI-compatible server (`[endpoint]`): llama-server on a phone, Ollama, a cloud.
    Http,
    /// On-device (llama.cpp) first, the `[endpoint]` as the cloud fallback (`[hybrid]`).
    Hybrid,
}

impl BackendKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LlamaCpp => "llama_cpp",
            Self::Candle => "candle",
            Self::Http => "http",
            Self::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
    Metal,
    Vulkan,
}

impl Device {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Metal => "metal",
            Self::Vulkan => "vulkan",
        }
    }
}

/// Element type of the K or V cache: the types llama.cpp (and llama-bench's `-ctk`) accept.
/// Scenarios choose among f16, q8_0 and q4_0 ([`KvTypeName`](file::KvTypeName)); the others
/// reach the store through imported llama-bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl KvType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Iq4Nl => "iq4_nl",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
        }
    }

    #[must_use]
    pub fn is_quantized(self) -> bool {
        !matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KvVariant {
    pub name: String,
    pub baseline: bool,
    pub type_k: KvType,
    pub type_v: KvType,
    pub flash_attention: bool,
    pub mmap: bool,
    pub context_cap: Option<u32>,
    /// Which of the settings above the scenario names explicitly. The others are the engine's
    /// defaults (the values above are llama.cpp's): an engine that can't honour a pinned
    /// setting must refuse the case rather than run something else.
    pub pinned: Pinned,
}

/// KV-variant settings a scenario sets explicitly rather than leaving to the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pinned {
    pub cache_types: bool,
    pub flash_attention: bool,
    pub mmap: bool,
}

impl KvVariant {
    fn default_variant() -> Self {
        Self {
            name: "default".into(),
            baseline: true,
            type_k: KvType::F16,
            type_v: KvType::F16,
            flash_attention: false,
            mmap: true,
            context_cap: None,
            pinned: Pinned::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    Greedy,
    Temperature { temperature: f32, top_k: u32 },
}

/// How requests reach the engine (see `ServingFile`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Serving {
    /// `None`: one slot per client (the case's concurrency).
    pub slots: Option<u32>,
    /// `None`: unbounded.
    pub queue_capacity: Option<u32>,
    pub admission_timeout_ms: Option<u64>,
    /// `Some`: open loop at this Poisson rate.
    pub arrival_rate_per_s: Option<f64>,
    pub cancel_after_ms: Option<u64>,
    /// Weights of realtime, normal, batch.
    pub priorities: [u32; 3],
}

impl Default for Serving {
    /// A closed loop with one slot per client, an unbounded queue, every request normal.
    fn default() -> Self {
        Self {
            slots: None,
            queue_capacity: None,
            admission_timeout_ms: None,
            arrival_rate_per_s: None,
            cancel_after_ms: None,
            priorities: [0, 1, 0],
        }
    }
}

/// Adaptive stopping (see `StoppingFile`).
/// The shortest a measured run measures, in seconds (MLPerf's minimum duration in spirit):
/// repetitions go on until it has passed even when the plan or the CI target is met, so a run
/// of a tiny model is not a second of one warm cache and one scheduling slice. MLPerf Mobile asks
/// 60 s for its thermal story; that is the sustained scenarios' job here (10 minutes), and 5 s
/// keeps the main job's short cases affordable. `EDGEBENCH_MIN_MEASURED_SECONDS` overrides it.
pub const MIN_MEASURED_SECONDS: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub target_relative_ci: f64,
    pub max_repetitions: u32,
    pub max_seconds: Option<f64>,
}

/// A goodput sweep (see `GoodputFile`).
#[derive(Debug, Clone, PartialEq)]
pub struct Goodput {
    /// The preset the targets came from, if any.
    pub preset: Option<String>,
    pub targets: crate::goodput::Targets,
    pub sweep: crate::goodput::SweepConfig,
    pub requests_per_rate: u32,
    pub max_seconds: f64,
}

/// Sustained decode (see `SustainedFile`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sustained {
    pub seconds: u32,
    pub cooldown: Option<Cooldown>,
}

/// llama-perplexity's default chunk, the `[quality]` table's default.
pub const QUALITY_DEFAULT_CONTEXT: u32 = 512;

/// What a case's quality measurement feeds (see `file::QualityFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quality {
    /// The text, relative to the project root.
    pub corpus: String,
    /// Tokens per chunk.
    pub context: u32,
    /// At most this many chunks; `None`: every whole chunk.
    pub chunks: Option<u32>,
    /// The quant whose file is the reference (weight quantizations); `None`: the case's own
    /// file with an f16 cache (KV-cache variants).
    pub reference_quant: Option<Quant>,
}

/// Waiting for the device to cool before a case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cooldown {
    pub max_seconds: u32,
    pub margin_c: f64,
}

/// Default length of a sustained run, and the cap in smoke runs (the CI case).
pub const SUSTAINED_DEFAULT_SECONDS: u32 = 600;
pub const SUSTAINED_SMOKE_SECONDS: u32 = 20;

/// What a scenario's cases do, one of these and never two: the stages match on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// Timed repetitions of the prompts (every speed category).
    Timed,
    /// Scored questions: exactly the `accuracy` category.
    Accuracy(Accuracy),
    /// One sequence decoding without pause (`[sustained]`).
    Sustained(Sustained),
    /// The open loop at a sweep of arrival rates (`[goodput]`).
    Goodput(Goodput),
}

impl Workload {
    /// Timed repetitions whose speed figures have a roofline.
    #[must_use]
    pub fn is_timed(&self) -> bool {
        *self == Self::Timed
    }
}

/// Multiple-choice evaluation settings (see `AccuracyFile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accuracy {
    pub few_shot: u32,
    pub subjects: Option<Vec<String>>,
    pub questions_per_subject: Option<u32>,
}

/// Where a scenario came from: the file name used in messages and the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioSource {
    pub file: String,
    pub sha256: String,
}

/// A validated scenario. Every field has been checked against the registry and its own rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub category: Category,
    pub dataset: String,
    /// Where `dataset` is written in the scenario file, for errors found when it is opened.
    pub dataset_location: Location,
    pub prompts: Option<u32>,
    /// Each model with the quantizations it runs, in file order.
    pub models: Vec<(String, Vec<Quant>)>,
    pub backends: Vec<BackendKind>,
    pub device: Device,
    pub context: u32,
    pub prompt_tokens: u32,
    pub generate_tokens: u32,
    pub concurrency: Vec<u32>,
    pub threads: Vec<u32>,
    pub batch: u32,
    pub seed: u64,
    pub warmup: u32,
    pub repetitions: u32,
    /// Bytes a case may need: the smaller of `memory_budget` and the device profile's RAM.
    pub memory_budget: Option<u64>,
    /// Where the budget comes from, for the skip message.
    pub memory_budget_source: String,
    /// The declared prompt format; `None`: the model's default ([`PromptFormat::resolve`]).
    pub prompt_format: Option<PromptFormat>,
    pub sampling: Sampling,
    pub serving: Serving,
    pub stopping: Option<Stopping>,
    pub kv: Vec<KvVariant>,
    /// Whether the file declared `[[kv]]` variants (then their names appear in case names).
    pub kv_declared: bool,
    /// What its cases do: timed repetitions, scored questions, a sustained decode or a
    /// goodput sweep.
    pub workload: Workload,
    /// Cases also measure output quality (KLD against a reference) after their repetitions.
    pub quality: Option<Quality>,
    /// The server an `http` backend drives or a `hybrid` one falls back to.
    pub endpoint: Option<Endpoint>,
    pub hybrid: Option<Hybrid>,
    pub source: ScenarioSource,
}

/// One combination of a scenario's matrix: what the harness runs and stores as one run.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub scenario: Arc<Scenario>,
    pub model: String,
    pub quant: Quant,
    pub backend: BackendKind,
    pub concurrency: u32,
    pub threads: u32,
    pub kv: KvVariant,
}

impl Case {
    /// Sequence slots the engine holds for this case.
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.scenario
            .serving
            .slots
            .unwrap_or(self.concurrency)
            .max(1)
    }

    /// Context length after the variant's cap.
    #[must_use]
    pub fn context(&self) -> u32 {
        self.kv
            .context_cap
            .map_or(self.scenario.context, |cap| cap.min(self.scenario.context))
    }

    /// Stable identity of the case's parameters (not of its results): equal for equal
    /// configurations, so runs of the same case on different nights can be joined.
    #[must_use]
    pub fn key(&self) -> String {
        let s = &self.scenario;
        let k = &self.kv;
        let text = format!(
            "{}|{}|{}|{}|{}|c{}|t{}|ctx{}|p{}|g{}|b{}|n{:?}|seed{}|{:?}|kv:{}:{}:{}:{}:{:?}|{}{}{}",
            self.name,
            s.dataset,
            self.model,
            self.quant,
            self.backend,
            self.concurrency,
            self.threads,
            self.context(),
            s.prompt_tokens,
            s.generate_tokens,
            s.batch,
            s.prompts,
            s.seed,
            s.sampling,
            k.type_k.as_str(),
            k.type_v.as_str(),
            k.flash_attention,
            k.mmap,
            k.pinned,
            s.device.as_str(),
            // Left out when default, so keys of cases stored before serving existed stay equal.
            if s.serving == Serving::default() {
                String::new()
            } else {
                format!("|serving:{:?}", s.serving)
            },
            match &s.workload {
                Workload::Accuracy(a) => format!("|accuracy:{a:?}"),
                _ => String::new(),
            },
        );
        // Spelt as before the workload was one enum, so stored case keys stay equal.
        let text = match &s.workload {
            Workload::Sustained(sustained) => format!("{text}|sustained:{sustained:?}"),
            Workload::Goodput(goodput) => format!("{text}|goodput:{goodput:?}"),
            Workload::Timed | Workload::Accuracy(_) => text,
        };
        // `[quality]` is left out: it runs after the timed repetitions and leaves their
        // numbers comparable with runs without it.
        // Only a declared format is part of the key (keys of older cases stay equal); the format
        // a run resolved to is stored with the run, and runs of different formats are never
        // compared with each other.
        let text = match s.prompt_format {
            Some(f) => format!("{text}|prompt:{f}"),
            None => text,
        };
        crate::sha256_hex(text.as_bytes())
    }
}

/// A scenario that could not be read. Every variant names the file and, where there is one, the
/// line, column and key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{location}: {message}{}", key.as_ref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    Syntax {
        location: Location,
        key: Option<String>,
        message: String,
    },
    #[error("{location}: key `{key}`: {message}")]
    Invalid {
        location: Location,
        key: String,
        message: String,
    },
}

impl ScenarioError {
    /// The location the error points at.
    #[must_use]
    pub fn location(&self) -> &Location {
        match self {
            Self::Syntax { location, .. } | Self::Invalid { location, .. } => location,
        }
    }
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, key: &str, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            location: Location::new(self.file, self.text, offset),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn at<T>(&self, key: &str, v: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.invalid(key, v.span().start, message)
    }
}

/// The closest of `known` to `unknown`, when one is close enough to be a typo.
#[must_use]
pub fn closest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::normalized_damerau_levenshtein(unknown, k), k))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" and "unknown variant `x`, expected
/// `a` or `b`": the expected name closest to `x`, if one is close.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2);
    closest(unknown, expected).map(str::to_owned)
}

/// The key assigned on the line that contains `offset`, if that line is `key = value`.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let (line_no, _) = line_col(text, offset);
    let line = text.lines().nth(line_no - 1)?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c)))
    .then(|| key.trim_matches('"').to_owned())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn valid_variant_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses a size such as `4 GiB`, `512MiB`, `8 GB` or a plain byte count.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    // Whole numbers exactly (a byte count past 2^53 is no float); fractions through f64.
    if let Ok(whole) = num.parse::<u64>() {
        return whole.checked_mul(mult).filter(|&b| b >= 1);
    }
    let num: f64 = num.parse().ok()?;
    let bytes = (num * mult as f64).round();
    // 2^64 and above would saturate to u64::MAX: an overflowing size is no size.
    (1.0..18_446_744_073_709_551_616.0)
        .contains(&bytes)
        .then_some(bytes as u64)
}

impl Scenario {
    /// Parses and validates the scenario `text` read from `file` (the name used in messages).
    pub fn parse(file: &str, text: &str, registry: &Registry) -> Result<Self, ScenarioError> {
        // A byte-order mark some editors write is no part of the TOML: positions are counted
        // after it (it is invisible, so columns stay what the reader sees).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let cx = Ctx { file, text };
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let mut message = e.message().trim_end().to_owned();
            if let Some(close) = did_you_mean(&message) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            ScenarioError::Syntax {
                location: Location::new(file, text, offset),
                key: key_on_line(text, offset),
                message,
            }
        })?;
        validate::validate(&cx, raw, registry)
    }

    /// Every case of the matrix, in a stable order (file order of each axis).
    #[must_use]
    pub fn expand(self) -> Vec<Case> {
        let scenario = Arc::new(self);
        let s = &scenario;
        let mut cases = Vec::new();
        for (model, quants) in &s.models {
            for quant in quants {
                for &backend in &s.backends {
                    for &concurrency in &s.concurrency {
                        for &threads in &s.threads {
                            for kv in &s.kv {
                                let mut variant = Vec::new();
                                if s.kv_declared {
                                    variant.push(kv.name.clone());
                                }
                                if s.threads.len() > 1 {
                                    variant.push(format!("t{threads}"));
                                }
                                let mut name = format!(
                                    "{}::{model}::{quant}::{backend}::c{concurrency}",
                                    s.name
                                );
                                if !variant.is_empty() {
                                    name.push_str("::");
                                    name.push_str(&variant.join("+"));
                                }
                                cases.push(Case {
                                    name,
                                    scenario: Arc::clone(s),
                                    model: model.clone(),
                                    quant: *quant,
                                    backend,
                                    concurrency,
                                    threads,
                                    kv: kv.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        cases
    }
}

fn non_empty<T>(cx: &Ctx<'_>, key: &str, v: &Spanned<Vec<T>>) -> Result<(), ScenarioError> {
    if v.get_ref().is_empty() {
        return Err(cx.at(key, v, "the list is empty, so the matrix has no cases"));
    }
    Ok(())
}

fn positive(cx: &Ctx<'_>, key: &str, v: &Spanned<u32>) -> Result<u32, ScenarioError> {
    if *v.get_ref() == 0 {
        return Err(cx.at(key, v, "must be at least 1"));
    }
    Ok(*v.get_ref())
}

mod validate;
mod workloads;
mod write;
pub use write::toml_string;

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;
