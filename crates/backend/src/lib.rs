//! The `Backend` trait: one small interface over every inference engine, as ripgrep's `Matcher`
//! hides its regex engines. Engines live in their own crates (`edgebench-llama`, ...).
//!
//! The harness drives a [`Session`] step by step and times each call itself with a monotonic
//! clock, so every engine is measured the same way; engines may also report their own counters.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use edgebench_core::scenario::{BackendKind, KvType, Sampling};

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
    pub sampling: Sampling,
    pub seed: u64,
    /// Let the engine print its own logs (off by default: llama.cpp prints ~150 KB per load).
    pub engine_logs: bool,
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
            sampling: Sampling::Greedy,
            seed: 0,
            engine_logs: false,
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

/// The engine's own performance counters (llama.cpp: `llama_perf_context`), for comparing with
/// the harness's timing of the same phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineCounters {
    pub prompt_eval_ms: f64,
    pub prompt_eval_tokens: u64,
    pub eval_ms: f64,
    pub eval_tokens: u64,
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

/// An inference engine. Loading returns a [`Session`] bound to one model file.
pub trait Backend {
    fn kind(&self) -> BackendKind;
    /// What the engine was built with.
    fn build(&self) -> EngineBuild;
    /// Loads `model` and creates a context sized by `options`.
    fn load(
        &self,
        model: &Path,
        options: &LoadOptions,
    ) -> Result<Box<dyn Session + '_>, BackendError>;
}

/// A loaded model with its context: the unit the harness measures.
pub trait Session {
    /// Tokenizes `text` with the model's own vocabulary; `add_bos` follows the model's metadata.
    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<TokenId>, BackendError>;
    /// Text of `tokens`, lossily decoded.
    fn detokenize(&self, tokens: &[TokenId]) -> Result<String, BackendError>;
    /// Whether `token` ends generation (EOS, EOT, ...).
    fn is_end_of_generation(&self, token: TokenId) -> bool;
    /// Appends each prompt to its sequence's KV cache and returns the first sampled token of each.
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError>;
    /// Feeds each sequence its last token and returns the next sampled token of each.
    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError>;
    /// Forgets a sequence's state (KV cache, position, sampler) so it can serve a new request.
    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError>;
    fn memory(&self) -> MemoryReport;
    /// The engine's own counters since the last reset of them, if it keeps any.
    fn counters(&mut self) -> Option<EngineCounters>;
    fn reset_counters(&mut self) {}
}

/// Wall time of `f`, with the result.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f();
    (out, start.elapsed())
}
