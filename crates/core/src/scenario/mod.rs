//! Scenarios: parsed from TOML ([`file`]), validated against the model registry into a
//! [`Scenario`], and expanded into named [`Case`]s.

pub mod file;

use std::sync::Arc;

use toml::Spanned;

use crate::registry::Registry;
use crate::text_pos::{Location, line_col};
use file::{BackendName, DeviceName, KvTypeName, ScenarioFile};

pub use file::Category;

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
crate::named_enum!(BackendKind, "backend", [LlamaCpp, Candle]);
crate::named_enum!(Device, "device", [Cpu, Cuda, Metal, Vulkan]);
crate::named_enum!(KvType, "KV cache type", [F16, Q8_0, Q4_0]);

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

/// An inference engine edgebench can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    LlamaCpp,
    Candle,
}

impl BackendKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LlamaCpp => "llama_cpp",
            Self::Candle => "candle",
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

/// Element type of the K or V cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvType {
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
        }
    }

    #[must_use]
    pub fn is_quantized(self) -> bool {
        self != Self::F16
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub target_relative_ci: f64,
    pub max_repetitions: u32,
    pub max_seconds: Option<f64>,
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

/// Byte offset of the line that opens table `[name]` (0 when there is none).
fn table_offset(text: &str, name: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(&format!("[{name}]")) {
            return offset + (line.len() - line.trim_start().len());
        }
        offset += line.len();
    }
    0
}

/// A validated scenario. Every field has been checked against the registry and its own rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub category: Category,
    pub dataset: String,
    pub prompts: Option<u32>,
    /// Each model with the quantizations it runs, in file order.
    pub models: Vec<(String, Vec<String>)>,
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
    pub sampling: Sampling,
    pub serving: Serving,
    pub stopping: Option<Stopping>,
    pub kv: Vec<KvVariant>,
    /// Whether the file declared `[[kv]]` variants (then their names appear in case names).
    pub kv_declared: bool,
    /// Set exactly when the category is `accuracy`.
    pub accuracy: Option<Accuracy>,
    pub source: ScenarioSource,
}

/// One combination of a scenario's matrix: what the harness runs and stores as one run.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub scenario: Arc<Scenario>,
    pub model: String,
    pub quant: String,
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
            s.accuracy
                .as_ref()
                .map(|a| format!("|accuracy:{a:?}"))
                .unwrap_or_default(),
        );
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

    /// Offset of `key = ` at the start of a line, for keys whose value carries no span.
    fn key_offset(&self, key: &str) -> usize {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let t = line.trim_start();
            if t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return offset + (line.len() - t.len());
            }
            offset += line.len();
        }
        0
    }
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
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 1.0).then(|| bytes.round() as u64)
}

impl Scenario {
    /// Parses and validates the scenario `text` read from `file` (the name used in messages).
    pub fn parse(file: &str, text: &str, registry: &Registry) -> Result<Self, ScenarioError> {
        let cx = Ctx { file, text };
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            ScenarioError::Syntax {
                location: Location::new(file, text, offset),
                key: key_on_line(text, offset),
                message: e.message().trim_end().to_owned(),
            }
        })?;
        validate(&cx, raw, registry)
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
                                    quant: quant.clone(),
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

fn validate(
    cx: &Ctx<'_>,
    raw: ScenarioFile,
    registry: &Registry,
) -> Result<Scenario, ScenarioError> {
    if raw.format != file::SCENARIO_FORMAT {
        return Err(cx.invalid(
            "format",
            cx.key_offset("format"),
            format!(
                "scenario format {} is not supported (this build reads format {})",
                raw.format,
                file::SCENARIO_FORMAT
            ),
        ));
    }
    if !valid_name(raw.name.get_ref()) {
        return Err(cx.at(
            "name",
            &raw.name,
            "use lowercase letters, digits and `_` only",
        ));
    }
    if raw.dataset.get_ref().trim().is_empty() {
        return Err(cx.at("dataset", &raw.dataset, "no dataset file named"));
    }

    non_empty(cx, "models", &raw.models)?;
    let mut models: Vec<(String, Vec<String>)> = Vec::new();
    for m in raw.models.get_ref() {
        let id = m.get_ref();
        let Some(entry) = registry.get(id) else {
            return Err(cx.at(
                "models",
                m,
                format!(
                    "unknown model `{id}`; models.toml knows: {}",
                    registry.ids().join(", ")
                ),
            ));
        };
        if models.iter().any(|(have, _)| have == id) {
            return Err(cx.at("models", m, format!("model `{id}` is listed twice")));
        }
        let quants: Vec<String> = match &raw.quantizations {
            None => entry.files.iter().map(|f| f.quant.clone()).collect(),
            Some(qs) => qs
                .get_ref()
                .iter()
                .filter_map(|q| entry.file(q.get_ref()).map(|f| f.quant.clone()))
                .collect(),
        };
        if quants.is_empty() {
            let have: Vec<_> = entry.files.iter().map(|f| f.quant.as_str()).collect();
            let message = format!(
                "model `{id}` has none of the listed quantizations (it has: {})",
                have.join(", ")
            );
            // Point at the list that names none of them (the model's files when there is none).
            return Err(match &raw.quantizations {
                Some(listed) => cx.at("quantizations", listed, message),
                None => cx.at("quantizations", m, message),
            });
        }
        if *raw.context.get_ref() > entry.arch.context {
            return Err(cx.at(
                "context",
                &raw.context,
                format!(
                    "context {} exceeds the {} tokens model `{id}` was trained for",
                    raw.context.get_ref(),
                    entry.arch.context
                ),
            ));
        }
        models.push((id.clone(), quants));
    }
    if let Some(qs) = &raw.quantizations {
        non_empty(cx, "quantizations", qs)?;
        for q in qs.get_ref() {
            let used = models
                .iter()
                .any(|(_, have)| have.iter().any(|h| h.eq_ignore_ascii_case(q.get_ref())));
            if !used {
                return Err(cx.at(
                    "quantizations",
                    q,
                    format!("no listed model has a `{}` file", q.get_ref()),
                ));
            }
        }
    }

    non_empty(cx, "backends", &raw.backends)?;
    let mut backends = Vec::new();
    for b in raw.backends.get_ref() {
        let kind = match b {
            BackendName::LlamaCpp => BackendKind::LlamaCpp,
            BackendName::Candle => BackendKind::Candle,
        };
        if backends.contains(&kind) {
            return Err(cx.at(
                "backends",
                &raw.backends,
                format!("backend `{kind}` is listed twice"),
            ));
        }
        backends.push(kind);
    }

    let context = positive(cx, "context", &raw.context)?;
    let prompt_tokens = positive(cx, "prompt_tokens", &raw.prompt_tokens)?;
    let generate_tokens = positive(cx, "generate_tokens", &raw.generate_tokens)?;
    if u64::from(prompt_tokens) + u64::from(generate_tokens) > u64::from(context) {
        return Err(cx.at(
            "prompt_tokens",
            &raw.prompt_tokens,
            format!(
                "prompt_tokens ({prompt_tokens}) + generate_tokens ({generate_tokens}) exceed the context ({context})"
            ),
        ));
    }
    non_empty(cx, "concurrency", &raw.concurrency)?;
    if raw.concurrency.get_ref().contains(&0) {
        return Err(cx.at(
            "concurrency",
            &raw.concurrency,
            "every concurrency must be at least 1",
        ));
    }
    non_empty(cx, "threads", &raw.threads)?;
    if raw.threads.get_ref().contains(&0) {
        return Err(cx.at(
            "threads",
            &raw.threads,
            "every thread count must be at least 1",
        ));
    }
    let batch = match &raw.batch {
        Some(b) => positive(cx, "batch", b)?,
        None => 512,
    };
    let repetitions = positive(cx, "repetitions", &raw.repetitions)?;
    let prompts = match &raw.prompts {
        Some(p) => Some(positive(cx, "prompts", p)?),
        None => None,
    };
    let memory_budget = match &raw.memory_budget {
        None => None,
        Some(b) => Some(parse_bytes(b.get_ref()).ok_or_else(|| {
            cx.at(
                "memory_budget",
                b,
                format!(
                    "`{}` is not a size like \"4 GiB\" or \"512 MiB\"",
                    b.get_ref()
                ),
            )
        })?),
    };
    let mut memory_budget_source = "memory_budget".to_owned();
    let memory_budget = match &raw.device_profile {
        None => memory_budget,
        Some(name) => {
            let Some(profile) = crate::device_profile::find(name.get_ref()) else {
                return Err(cx.at(
                    "device_profile",
                    name,
                    format!(
                        "unknown device profile `{}`; known: {}",
                        name.get_ref(),
                        crate::device_profile::PROFILES
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            if memory_budget.is_some_and(|b| b <= profile.ram_bytes) {
                memory_budget
            } else {
                memory_budget_source = format!(
                    "the RAM of device profile `{}` ({})",
                    profile.name, profile.label
                );
                Some(profile.ram_bytes)
            }
        }
    };
    let serving = match &raw.serving {
        None => Serving::default(),
        Some(f) => {
            let slots = match &f.slots {
                Some(v) => Some(positive(cx, "serving.slots", v)?),
                None => None,
            };
            if let Some(rate) = f.arrival_rate_per_s
                && !(rate.is_finite() && rate > 0.0)
            {
                return Err(cx.invalid(
                    "serving.arrival_rate_per_s",
                    cx.key_offset("arrival_rate_per_s"),
                    format!("{rate} must be a positive number of requests per second"),
                ));
            }
            let priorities = f
                .priorities
                .as_ref()
                .map_or([0, 1, 0], |p| [p.realtime, p.normal, p.batch]);
            if priorities == [0, 0, 0] {
                return Err(cx.invalid(
                    "serving.priorities",
                    cx.key_offset("realtime")
                        .max(cx.key_offset("normal"))
                        .max(cx.key_offset("batch")),
                    "at least one priority class needs a weight above 0",
                ));
            }
            Serving {
                slots,
                queue_capacity: f.queue_capacity,
                admission_timeout_ms: f.admission_timeout_ms,
                arrival_rate_per_s: f.arrival_rate_per_s,
                cancel_after_ms: f.cancel_after_ms,
                priorities,
            }
        }
    };
    let stopping = match &raw.stopping {
        None => None,
        Some(f) => {
            if !(f.target_relative_ci.is_finite() && f.target_relative_ci > 0.0) {
                return Err(cx.invalid(
                    "stopping.target_relative_ci",
                    cx.key_offset("target_relative_ci"),
                    format!(
                        "{} must be a positive fraction such as 0.01",
                        f.target_relative_ci
                    ),
                ));
            }
            let max_repetitions = *f.max_repetitions.get_ref();
            if max_repetitions < repetitions {
                return Err(cx.at(
                    "stopping.max_repetitions",
                    &f.max_repetitions,
                    format!(
                        "max_repetitions ({max_repetitions}) is below repetitions ({repetitions})"
                    ),
                ));
            }
            if let Some(s) = f.max_seconds
                && !(s.is_finite() && s > 0.0)
            {
                return Err(cx.invalid(
                    "stopping.max_seconds",
                    cx.key_offset("max_seconds"),
                    format!("{s} must be a positive number of seconds"),
                ));
            }
            Some(Stopping {
                target_relative_ci: f.target_relative_ci,
                max_repetitions,
                max_seconds: f.max_seconds,
            })
        }
    };
    let accuracy = match (&raw.accuracy, raw.category) {
        (None, Category::Accuracy) => Some(Accuracy {
            few_shot: 0,
            subjects: None,
            questions_per_subject: None,
        }),
        (None, _) => None,
        (Some(_), category) if category != Category::Accuracy => {
            return Err(cx.invalid(
                "accuracy",
                table_offset(cx.text, "accuracy"),
                "an [accuracy] table needs category = \"accuracy\"",
            ));
        }
        (Some(f), _) => {
            if let Some(subjects) = &f.subjects
                && subjects.get_ref().is_empty()
            {
                return Err(cx.at("accuracy.subjects", subjects, "the list is empty"));
            }
            if let Some(n) = &f.questions_per_subject
                && *n.get_ref() == 0
            {
                return Err(cx.at("accuracy.questions_per_subject", n, "must be at least 1"));
            }
            Some(Accuracy {
                few_shot: f.few_shot,
                subjects: f.subjects.as_ref().map(|s| s.get_ref().clone()),
                questions_per_subject: f.questions_per_subject.as_ref().map(|n| *n.get_ref()),
            })
        }
    };
    let sampling = match &raw.sampling {
        None => Sampling::Greedy,
        Some(s) if s.temperature == 0.0 => Sampling::Greedy,
        Some(s) if s.temperature > 0.0 && s.temperature.is_finite() => Sampling::Temperature {
            temperature: s.temperature,
            top_k: s.top_k,
        },
        Some(s) => {
            return Err(cx.invalid(
                "sampling.temperature",
                cx.key_offset("temperature"),
                format!("temperature {} must be a finite number ≥ 0", s.temperature),
            ));
        }
    };

    let kv_declared = !raw.kv.is_empty();
    let mut kv = Vec::new();
    for v in &raw.kv {
        let name = v.name.get_ref();
        if !valid_variant_name(name) {
            return Err(cx.at(
                "kv.name",
                &v.name,
                "use lowercase letters, digits, `_` and `-` only",
            ));
        }
        if kv.iter().any(|k: &KvVariant| &k.name == name) {
            return Err(cx.at(
                "kv.name",
                &v.name,
                format!("variant `{name}` is declared twice"),
            ));
        }
        let kv_type = |t: KvTypeName| match t {
            KvTypeName::F16 => KvType::F16,
            KvTypeName::Q8_0 => KvType::Q8_0,
            KvTypeName::Q4_0 => KvType::Q4_0,
        };
        let variant = KvVariant {
            name: name.clone(),
            baseline: v.baseline,
            type_k: kv_type(v.type_k.unwrap_or_default()),
            type_v: kv_type(v.type_v.unwrap_or_default()),
            flash_attention: v.flash_attention.unwrap_or(false),
            mmap: v.mmap.unwrap_or(true),
            context_cap: v.context_cap,
            pinned: Pinned {
                cache_types: v.type_k.is_some() || v.type_v.is_some(),
                flash_attention: v.flash_attention.is_some(),
                mmap: v.mmap.is_some(),
            },
        };
        // A quantized V cache without flash attention is llama.cpp's limit, not the format's:
        // its engine refuses such a case (`Backend::refuses`), the file itself is valid.
        if let Some(cap) = v.context_cap
            && (cap == 0 || u64::from(prompt_tokens) + u64::from(generate_tokens) > u64::from(cap))
        {
            return Err(cx.at(
                "kv.context_cap",
                &v.name,
                format!("variant `{name}`: context_cap {cap} leaves no room for prompt_tokens + generate_tokens"),
            ));
        }
        kv.push(variant);
    }
    match kv.iter().filter(|k| k.baseline).count() {
        0 if !kv.is_empty() => kv[0].baseline = true,
        0 | 1 => {}
        _ => {
            return Err(cx.invalid(
                "kv.baseline",
                cx.key_offset("baseline"),
                "more than one variant is marked baseline",
            ));
        }
    }
    if kv.is_empty() {
        kv.push(KvVariant::default_variant());
    }

    let device = match raw.device {
        DeviceName::Cpu => Device::Cpu,
        DeviceName::Cuda => Device::Cuda,
        DeviceName::Metal => Device::Metal,
        DeviceName::Vulkan => Device::Vulkan,
    };

    Ok(Scenario {
        name: raw.name.into_inner(),
        description: raw.description,
        category: raw.category,
        dataset: raw.dataset.into_inner(),
        prompts,
        models,
        backends,
        device,
        context,
        prompt_tokens,
        generate_tokens,
        concurrency: raw.concurrency.into_inner(),
        threads: raw.threads.into_inner(),
        batch,
        seed: raw.seed,
        warmup: raw.warmup,
        repetitions,
        memory_budget,
        memory_budget_source,
        sampling,
        serving,
        stopping,
        kv,
        kv_declared,
        accuracy,
        source: ScenarioSource {
            file: cx.file.to_owned(),
            sha256: crate::sha256_hex(cx.text.as_bytes()),
        },
    })
}

#[cfg(test)]
mod tests;
