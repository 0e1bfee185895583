//! The `Backend` trait: one small interface over every inference engine, as ripgrep's `Matcher`
//! hides its regex engines. Engines live in their own crates (`edgebench-llama`, ...).
//!
//! The harness drives a [`Session`] step by step and times each call itself with a monotonic
//! clock, so every engine is measured the same way; engines may also report their own counters.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use edgebench_core::projection::{kv_bytes_per_token, kv_element_bytes};
pub use edgebench_core::registry::Architecture;
pub use edgebench_core::scenario::{BackendKind, Device, Endpoint, KvType, Pinned, Sampling};

/// A token id in the model's own vocabulary. Both engines receive the same ids.
pub type TokenId = i32;

/// Index of a parallel sequence within one session (0..`max_sequences`).
pub type SeqId = usize;

/// How to load a model and size its context.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub threads: u32,
    /// KV cache size in tokens, per sequence.
    pub context: u32,
    /// Logical batch for prompt processing.
    pub batch: u32,
    /// Parallel sequences the session must hold (concurrency).
    pub max_sequences: u32,
    pub mmap: bool,
    pub type_k: KvType,
    pub type_v: KvType,
    pub flash_attention: bool,
    /// Which of `mmap`, the cache types and `flash_attention` the scenario set explicitly; the
    /// others are llama.cpp's defaults, which another engine may replace with its own.
    pub pinned: Pinned,
    pub sampling: Sampling,
    pub seed: u64,
    /// The most positions one sequence will hold (prompt and generated tokens, every turn);
    /// never more than `context`.
    pub positions_needed: u32,
    /// Whether later prompts are appended to a non-empty cache (multi-turn conversations).
    pub continues_prefill: bool,
    /// Let the engine print its own logs (off by default: llama.cpp prints ~150 KB per load).
    pub engine_logs: bool,
    /// Tokens generated per turn: what an HTTP engine asks the server for (`max_tokens`).
    pub generate_tokens: u32,
    /// The server an HTTP engine drives (`[endpoint]`); `None` for in-process engines.
    pub endpoint: Option<Endpoint>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            threads: 2,
            context: 2048,
            batch: 512,
            max_sequences: 1,
            mmap: true,
            type_k: KvType::F16,
            type_v: KvType::F16,
            flash_attention: false,
            pinned: Pinned::default(),
            sampling: Sampling::Greedy,
            seed: 0,
            positions_needed: 2048,
            continues_prefill: false,
            engine_logs: false,
            generate_tokens: 64,
            endpoint: None,
        }
    }
}

/// Memory the session holds, as the engine reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes of the K and V caches for all sequences.
    pub kv_cache_bytes: u64,
    /// Bytes of model weights as the engine counts them.
    pub weights_bytes: u64,
}

/// How a session holds the model's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsLoading {
    /// Pages mapped from the file.
    Mmap,
    /// Copied into the engine's buffers.
    Read,
    /// Copied once per parallel sequence (a model state that can't share its weights).
    ReadPerSequence,
    /// Held by a server elsewhere (the HTTP engine).
    Remote,
}

impl WeightsLoading {
    /// The stored name (`runs.weights_loading`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
            Self::Read => "read",
            Self::ReadPerSequence => "read, one copy per sequence",
            Self::Remote => "remote",
        }
    }
}

edgebench_core::named_enum!(
    WeightsLoading,
    "weights loading",
    [Mmap, Read, ReadPerSequence, Remote]
);

/// How a session serves parallel sequences (a stored fact, so defined in the core).
pub use edgebench_core::run_facts::Scheduling;

/// What a session actually runs with, which may differ from the options where the scenario left
/// a setting to the engine (candle keeps its KV cache in f32 and reads weights into memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Element type of the K and V caches, e.g. `f16` or `f32`.
    pub kv_storage: String,
    pub flash_attention: bool,
    pub weights: WeightsLoading,
    pub scheduling: Scheduling,
}

/// The engine's own performance counters (llama.cpp: `llama_perf_context`), for comparing with
/// the harness's timing of the same phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineCounters {
    pub prompt_eval_ms: f64,
    pub prompt_eval_tokens: u64,
    pub eval_ms: f64,
    pub eval_tokens: u64,
}

/// Where an HTTP session's tokens were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCounts {
    /// The server's `usage` (`stream_options.include_usage`).
    Usage,
    /// The reference vocabulary, over the text the server sent (no `usage` came).
    Vocabulary,
}

impl TokenCounts {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Vocabulary => "vocabulary",
        }
    }
}

/// What a session on a remote server learned about it, stored with the run (`runs.endpoint`).
/// Never holds a credential: the URL has no user, password or query.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFacts {
    pub url: String,
    /// `completion` or `chat`.
    pub api: String,
    /// The model id the requests named.
    pub model: String,
    pub streaming: bool,
    /// Where the token counts came from; `Vocabulary` as soon as one response lacked `usage`.
    pub token_counts: TokenCounts,
    /// Tokens the server's `usage` reported, and chunks that carried content, over the session.
    pub usage_tokens: u64,
    pub content_chunks: u64,
    /// What the server says about itself: `/v1/models` and, for llama-server, `/props` (JSON).
    pub server: String,
    /// The declared device profile of the remote device.
    pub device_profile: Option<String>,
}

/// Facts about the engine build, for the device fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineBuild {
    pub engine: String,
    pub version: String,
    /// Compute backends compiled in (e.g. `CPU`, `CUDA`).
    pub compiled_backends: Vec<String>,
    /// Free-form system info line from the engine (SIMD features it was built with).
    pub system_info: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("model file {} does not exist", path.display())]
    MissingModel { path: PathBuf },
    /// The GGUF validator refused the file before the engine saw it; `reason` names the file
    /// and the byte offset.
    #[error("{reason}")]
    InvalidModel { path: PathBuf, reason: String },
    #[error("{engine} could not load {}: {reason}", path.display())]
    Load {
        engine: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{engine} could not create a context for {}: {reason}", path.display())]
    Context {
        engine: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{engine} does not support {what}")]
    Unsupported { engine: &'static str, what: String },
    #[error(
        "{path}: llama.cpp cannot render this model's chat template ({reason}); name one of llama.cpp's built-in templates for the model in models.toml (`chat_template = \"chatml\"`, `\"llama3\"`, `\"gemma\"`, ...) or set `prompt_format = \"raw\"` in the scenario"
    )]
    ChatTemplate { path: String, reason: String },
    #[error("{engine} failed to {step}: {reason}")]
    Step {
        engine: &'static str,
        step: &'static str,
        reason: String,
    },
    #[error("sequence {seq} is out of range (session holds {max})")]
    BadSequence { seq: SeqId, max: u32 },
    #[error("sequence {seq} would exceed the context of {context} tokens at position {position}")]
    ContextFull {
        seq: SeqId,
        context: u32,
        position: u32,
    },
}

/// What every engine does before it opens a model file: the file exists and its GGUF header
/// and tensor table pass the validator (llama.cpp aborts and candle panics on some malformed
/// files; the validator names the file and the byte offset instead).
///
/// A file is validated once per process while its length and modification time stay the same
/// (Gemma's 262k-token vocabulary takes a quarter of a second to check, and a case opens its
/// model up to three times: preflight, vocabulary, engine); a changed file is validated again.
pub fn check_model_file(path: &Path) -> Result<(), BackendError> {
    type Stamp = (std::path::PathBuf, u64, std::time::SystemTime);
    static VALIDATED: std::sync::Mutex<Vec<Stamp>> = std::sync::Mutex::new(Vec::new());
    let validated = || {
        VALIDATED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let metadata = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        _ => {
            return Err(BackendError::MissingModel {
                path: path.to_owned(),
            });
        }
    };
    // Without a modification time a change could not be seen: such a file is always checked.
    let stamp = metadata
        .modified()
        .ok()
        .map(|modified| (path.to_owned(), metadata.len(), modified));
    if stamp.as_ref().is_some_and(|s| validated().contains(s)) {
        return Ok(());
    }
    edgebench_gguf::validate_file(path).map_err(|e| BackendError::InvalidModel {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(stamp) = stamp {
        let mut list = validated();
        list.retain(|(p, ..)| p != path);
        list.push(stamp);
    }
    Ok(())
}

/// A model's vocabulary: text to token ids and back. The harness tokenizes every prompt once,
/// with llama.cpp's tokenizer as the reference, and gives the same ids to every engine.
pub trait Vocabulary {
    /// Tokenizes `text`; `add_bos` follows the model's metadata (no BOS if it adds none).
    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<TokenId>, BackendError>;
    /// Text of `tokens`, lossily decoded.
    fn detokenize(&self, tokens: &[TokenId]) -> Result<String, BackendError>;
    /// Whether `token` ends generation (EOS, EOT, ...).
    fn is_end_of_generation(&self, token: TokenId) -> bool;
    fn size(&self) -> usize;
    /// `messages` rendered through the model's own chat template (GGUF
    /// `tokenizer.chat_template`), ending with the assistant's opening tag when
    /// `add_assistant`; `None` when the model carries no template.
    fn render_chat(
        &self,
        _messages: &[ChatMessage<'_>],
        _add_assistant: bool,
    ) -> Result<Option<String>, BackendError> {
        Ok(None)
    }
    /// Tokenizes text [`Vocabulary::render_chat`] produced: its control tokens
    /// (`<|im_start|>`, `<start_of_turn>`) become the special tokens they name.
    fn tokenize_chat(&self, text: &str, add_bos: bool) -> Result<Vec<TokenId>, BackendError> {
        self.tokenize(text, add_bos)
    }
}

/// One message of a conversation, as a chat template takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatMessage<'a> {
    /// `user`, `assistant` or `system`.
    pub role: &'a str,
    pub content: &'a str,
}

impl BackendError {
    /// A failed engine step, with the engine's own message as the reason.
    pub fn step(engine: &'static str, step: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Step {
            engine,
            step,
            reason: reason.to_string(),
        }
    }
}

/// Why an engine cannot run a scenario's device, and what would make it run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device `{}` is not available in this edgebench's {engine} engine: {remedy}", .device.as_str())]
pub struct DeviceUnsupported {
    pub engine: BackendKind,
    pub device: Device,
    /// What to rebuild or change, in one clause.
    pub remedy: String,
}

/// An inference engine. Loading returns a [`Session`] bound to one model file.
pub trait Backend {
    fn kind(&self) -> BackendKind;
    /// What the engine was built with.
    fn build(&self) -> EngineBuild;
    /// Whether this build of the engine can run on `device`; the error says what to rebuild.
    /// The default: the CPU only.
    fn supports_device(&self, device: Device) -> Result<(), DeviceUnsupported> {
        match device {
            Device::Cpu => Ok(()),
            other => Err(DeviceUnsupported {
                engine: self.kind(),
                device: other,
                remedy: "only the CPU is compiled in".into(),
            }),
        }
    }
    /// Bytes of KV cache one token of one sequence takes in this engine, for a model of `arch`
    /// loaded with `options` (the memory guard's estimate). The default: the cache types the
    /// options name.
    fn kv_bytes_per_token(&self, arch: &Architecture, options: &LoadOptions) -> f64 {
        kv_bytes_per_token(arch, options.type_k, options.type_v)
    }
    /// Positions per sequence the engine's KV cache holds at its largest for a session loaded
    /// with `options` (the memory guard's estimate). The default: the whole context, allocated
    /// up front as llama.cpp does.
    fn kv_positions(&self, options: &LoadOptions) -> u32 {
        options.context
    }
    /// Bytes of weights this engine keeps resident beyond the file's own pages when it loads
    /// `model` as `options` ask (the memory guard's estimate); may read the file's tensor table.
    /// Default: none.
    fn extra_weight_bytes(&self, _model: &Path, _options: &LoadOptions) -> u64 {
        0
    }
    /// Why this engine can't run `model` as `options` ask, if it can't; checked before loading
    /// so such cases are reported as ignored, never run as something else. May read the file's
    /// metadata.
    fn refuses(&self, _model: &Path, _options: &LoadOptions) -> Option<String> {
        None
    }
    /// Whether the engine runs elsewhere (an HTTP server): this host's memory does not bound it.
    fn is_remote(&self) -> bool {
        false
    }
    /// Loads `model` and creates a context sized by `options`.
    fn load(
        &self,
        model: &Path,
        options: &LoadOptions,
    ) -> Result<Box<dyn Session + '_>, BackendError>;
}

/// A loaded model with its context: the unit the harness measures.
pub trait Session {
    /// Appends each prompt to its sequence's KV cache and returns the first sampled token of each.
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError>;
    /// Feeds each sequence its last token and returns the next sampled token of each.
    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError>;
    /// Forgets a sequence's state (KV cache, position, sampler) so it can serve a new request.
    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError>;
    /// Resets `seq`, feeds it `prompt` and returns the raw logits at the last position (one per
    /// vocabulary entry), for comparing engines. Leaves `seq` holding the prompt.
    fn prompt_logits(&mut self, seq: SeqId, prompt: &[TokenId]) -> Result<Vec<f32>, BackendError>;
    /// Resets `seq` and feeds it `tokens` teacher-forced (the text's own tokens, never sampled
    /// ones), calling `each(j, logits)` with the raw logits after `tokens[..=j]` for every `j`
    /// from `first` to `tokens.len() - 2` in order: every position whose next token is known.
    /// How the quality measure reads a configuration's distributions over a text. Leaves `seq`
    /// holding a prefix of `tokens`. Engines without per-position logits refuse.
    fn teacher_forced(
        &mut self,
        _seq: SeqId,
        _tokens: &[TokenId],
        _first: usize,
        _each: &mut dyn FnMut(usize, &[f32]) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            engine: "this engine",
            what: "teacher-forced logits (the quality measure)".into(),
        })
    }
    /// Log-probability of each continuation after `prompt`, summed over its tokens: how
    /// lm-evaluation-harness scores multiple-choice answers. Each distinct prefix is evaluated
    /// once (the four ` A`…` D` letters of a question usually share all but their last token).
    /// Leaves `seq` holding one of the prefixes.
    fn continuation_logprobs(
        &mut self,
        seq: SeqId,
        prompt: &[TokenId],
        continuations: &[Vec<TokenId>],
    ) -> Result<Vec<f64>, BackendError> {
        let mut logits_after: std::collections::HashMap<Vec<TokenId>, Vec<f32>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            let mut context = prompt.to_vec();
            let mut total = 0.0;
            for &token in continuation {
                if !logits_after.contains_key(&context) {
                    let logits = self.prompt_logits(seq, &context)?;
                    logits_after.insert(context.clone(), logits);
                }
                let logits = &logits_after[&context];
                total += log_softmax_at(logits, token).ok_or_else(|| {
                    BackendError::step(
                        "harness",
                        "score a continuation",
                        format!(
                            "token {token} is outside the {}-entry vocabulary",
                            logits.len()
                        ),
                    )
                })?;
                context.push(token);
            }
            out.push(total);
        }
        Ok(out)
    }
    fn memory(&self) -> MemoryReport;
    fn effective(&self) -> Effective;
    /// The engine's own counters since the last reset of them, if it keeps any.
    fn counters(&mut self) -> Option<EngineCounters>;
    fn reset_counters(&mut self) {}
    /// What a remote session learned about its server; `None` for in-process engines.
    fn remote(&self) -> Option<RemoteFacts> {
        None
    }
}

/// `ln softmax(logits)[token]`, computed stably in f64; `None` for a token outside `logits`.
#[must_use]
pub fn log_softmax_at(logits: &[f32], token: TokenId) -> Option<f64> {
    let x = f64::from(*logits.get(usize::try_from(token).ok()?)?);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .map(|l| (f64::from(*l) - f64::from(max)).exp())
        .sum();
    Some(x - f64::from(max) - sum.ln())
}

/// The index of the largest logit, the first one on ties (as llama.cpp's greedy sampler picks);
/// NaNs are never picked. `None` for an empty or all-NaN slice.
#[must_use]
#[inline]
pub fn argmax(logits: &[f32]) -> Option<usize> {
    // Two passes that vectorize (eight running maxima, then the first block holding the
    // maximum) beat one branchy pass: this runs once per token over up to 262k logits.
    const LANES: usize = 8;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let blocks = logits.chunks_exact(LANES);
    let tail = blocks.remainder();
    for block in blocks {
        for (m, &x) in lanes.iter_mut().zip(block) {
            // NaN compares false and is never kept.
            *m = if x > *m { x } else { *m };
        }
    }
    let max = lanes
        .into_iter()
        .chain(tail.iter().copied())
        .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m });
    let block = logits
        .chunks(LANES)
        .position(|b| b.iter().fold(false, |hit, &x| hit | (x == max)))?;
    let within = logits[block * LANES..].iter().position(|&x| x == max)?;
    Some(block * LANES + within)
}

/// Wall time of `f`, with the result.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::{argmax, log_softmax_at};

    #[test]
    fn argmax_takes_the_first_maximum_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), Some(1));
        assert_eq!(argmax(&[f32::NAN, -1.0, -2.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), Some(0));
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[f32::NAN]), None);
    }

    /// The obvious definition: the largest non-NaN value, then the first index holding it.
    fn scalar_argmax(logits: &[f32]) -> Option<usize> {
        let max = logits
            .iter()
            .copied()
            .filter(|x| !x.is_nan())
            .reduce(|m, x| if x > m { x } else { m })?;
        logits.iter().position(|&x| x == max)
    }

    /// A tiny seeded generator (SplitMix64), so failures reproduce from the printed seed.
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Property: the 8-lane path equals the scalar definition over lengths that fill whole
    /// lanes, leave remainders and span many blocks, with ties inside and across lanes and
    /// blocks, NaN anywhere (first, last, everywhere) and both infinities.
    #[test]
    fn argmax_matches_the_scalar_definition() {
        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0];
        let mut rng = SplitMix(0x5eed);
        let mut vector_path_entered = 0;
        for case in 0..20_000u32 {
            let len = match case % 4 {
                0 => rng.below(17),          // shorter than two blocks
                1 => 8 * (1 + rng.below(8)), // whole blocks, no remainder
                2 => rng.below(200),
                _ => 1000 + rng.below(64),
            };
            // Few distinct values make ties frequent, within and across lanes and blocks.
            let distinct = 1 + rng.below(6);
            let mut logits: Vec<f32> = (0..len)
                .map(|_| match rng.below(10) {
                    0 => special[rng.below(special.len())],
                    _ => rng.below(distinct) as f32 - 2.0,
                })
                .collect();
            match case % 7 {
                0 if len > 0 => logits[0] = f32::NAN,
                1 if len > 0 => logits[len - 1] = f32::NAN,
                2 => logits.iter_mut().for_each(|x| *x = f32::NAN),
                3 if len > 9 => {
                    // The same maximum in the remainder and in an earlier block.
                    let top = 1e6;
                    logits[len - 1] = top;
                    logits[rng.below(len - 1)] = top;
                }
                _ => {}
            }
            if len >= 8 {
                vector_path_entered += 1;
            }
            assert_eq!(
                argmax(&logits),
                scalar_argmax(&logits),
                "case {case}: {logits:?}"
            );
        }
        assert!(vector_path_entered > 10_000, "{vector_path_entered}");
    }

    #[test]
    fn argmax_edge_cases_by_hand() {
        // Ties across blocks: the first block wins, and within it the first lane.
        let mut v = vec![0.0f32; 24];
        v[13] = 5.0;
        v[20] = 5.0;
        assert_eq!(argmax(&v), Some(13));
        // The maximum only in the remainder after full blocks.
        let mut v = vec![-1.0f32; 19];
        v[18] = 2.0;
        assert_eq!(argmax(&v), Some(18));
        // +inf beats everything; NaN beside it is skipped.
        let mut v = vec![1.0f32; 16];
        v[3] = f32::NAN;
        v[9] = f32::INFINITY;
        assert_eq!(argmax(&v), Some(9));
        // -0.0 and 0.0 are equal: the first of them is the maximum.
        assert_eq!(
            argmax(&[-1.0, -0.0, 0.0, -1.0, -1.0, -1.0, -1.0, -1.0, 0.0]),
            Some(1)
        );
    }

    #[test]
    fn effective_settings_read_back_from_their_stored_names() {
        use super::WeightsLoading;
        for w in WeightsLoading::ALL {
            assert_eq!(w.as_str().parse::<WeightsLoading>(), Ok(*w));
        }
    }

    #[test]
    fn log_softmax_by_hand() {
        let l = [1.0f32, 2.0, 3.0];
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
        assert!((log_softmax_at(&l, 2).expect("in range") - (3.0 - z.ln())).abs() < 1e-9);
        // Large logits do not overflow.
        assert!(
            log_softmax_at(&[1000.0, 1000.0], 0).expect("in range") + std::f64::consts::LN_2 < 1e-9
        );
        assert_eq!(log_softmax_at(&l, 3), None);
        assert_eq!(log_softmax_at(&l, -1), None);
    }

    /// The once-per-process memo never hides a change: a file cut short after it passed is
    /// refused, and a missing one is named as missing.
    #[test]
    fn a_model_file_that_changes_after_it_passed_is_checked_again() {
        let tensors: Vec<(String, u64)> = vec![("token_embd.weight".into(), 64)];
        let (header, data) = edgebench_gguf::synthetic::f32_header("gpt2", &tensors);
        let path = std::env::temp_dir().join(format!("edgebench-memo-{}.gguf", std::process::id()));
        let mut file = header.clone();
        file.resize(header.len() + data as usize, 0);
        std::fs::write(&path, &file).expect("write");
        super::check_model_file(&path).expect("valid");
        super::check_model_file(&path).expect("still valid");
        file.truncate(file.len() - 8);
        std::fs::write(&path, &file).expect("truncate");
        let e = super::check_model_file(&path).expect_err("cut short");
        assert!(e.to_string().contains("truncated"), "{e}");
        std::fs::remove_file(&path).expect("remove");
        let e = super::check_model_file(&path).expect_err("gone");
        assert!(matches!(e, super::BackendError::MissingModel { .. }), "{e}");
    }
}
