//! candle behind edgebench's [`Backend`] trait, on the same GGUF files as llama.cpp.
//!
//! Architectures: `llama` (candle-transformers `quantized_llama`, SmolLM2), `qwen2`
//! (`quantized_qwen2`, MiMo), and our own [`gemma3`] and [`phi3`] modules, because
//! candle-transformers' versions compute a different Gemma 3 and can't run Phi-4-mini (see there). Tokens come from the harness
//! (llama.cpp's tokenizer), so both engines see the same ids.
//!
//! How candle differs from llama.cpp, and how each difference is handled:
//! - KV cache in f32, weights read into memory, no flash attention: the scenario's defaults map
//!   to these and [`Effective`] records them; variants that *pin* another setting are refused.
//! - Parallel sequences are independent model states served round-robin (no batched kernels).
//! - Threads: candle's quantized matmuls run on a process-wide pool sized once from
//!   `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS`. The first load sets both to the scenario's thread
//!   count before candle starts its pool; a later case asking for another count is refused.
//! - Reset: our `gemma3` and `phi3` have no `clear_kv_cache`; every sequence's model is a clone of
//!   a pristine copy (weights are shared, reference-counted tensors), and reset replaces it with
//!   a fresh clone: no weights are reloaded.
#![allow(unsafe_code)] // Setting the thread-count environment variables once, with a SAFETY note.

pub mod gemma3;
pub mod phi3;
pub mod stock;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use edgebench_backend::{
    Backend, BackendError, BackendKind, Effective, EngineBuild, EngineCounters, KvType,
    LoadOptions, MemoryReport, Sampling, SeqId, Session, TokenId,
};

const ENGINE: &str = "candle";
/// Versions of the candle crates this build links.
pub const CRATE_VERSION: &str = "candle-core 0.11.1 / candle-transformers 0.11.1";
/// Rotary tables in candle-transformers' `quantized_llama` stop at this many positions.
const LLAMA_MAX_POSITIONS: u32 = quantized_llama::MAX_SEQ_LEN as u32;

/// The thread count candle's pools were started with, set by the first load.
static POOL_THREADS: OnceLock<u32> = OnceLock::new();

/// The candle engine. Stateless apart from the process-wide thread pool.
#[derive(Debug, Default)]
pub struct Candle {
    facts: Mutex<HashMap<PathBuf, Result<ModelFacts, String>>>,
}

impl Candle {
    /// The process-wide instance.
    pub fn global() -> &'static Self {
        static INSTANCE: OnceLock<Candle> = OnceLock::new();
        INSTANCE.get_or_init(Self::default)
    }

    fn facts(&self, path: &Path) -> Result<ModelFacts, String> {
        let mut cache = self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(path.to_owned())
            .or_insert_with(|| {
                let mut file = std::fs::File::open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                let content = gguf_file::Content::read(&mut file)
                    .map_err(|e| format!("{} is not a readable GGUF file: {e}", path.display()))?;
                ModelFacts::read(&content).map_err(|e| format!("{}: {e}", path.display()))
            })
            .clone()
    }
}

/// The compute device for a scenario's device name, if this build has it.
pub fn device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => {
            Device::new_cuda(0).map_err(|e| format!("candle could not open CUDA device 0: {e}"))
        }
        "metal" if cfg!(feature = "metal") => {
            Device::new_metal(0).map_err(|e| format!("candle could not open Metal device 0: {e}"))
        }
        "cuda" | "metal" => Err(format!(
            "candle was not compiled with `{name}`: build edgebench with `--features {name}`"
        )),
        other => Err(format!("candle has no device `{other}`")),
    }
}

/// Architecture facts read from GGUF metadata: what the cache costs and what candle can run.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    pub arch: String,
    pub layers: u64,
    pub kv_heads: u64,
    /// Width of one head in the K and V caches.
    pub head_dim: u64,
    pub sliding_window: Option<u32>,
    pub vocab: u64,
    pub hidden: u64,
    /// Bytes of all tensors as stored in the file.
    pub tensor_bytes: u64,
}

impl ModelFacts {
    fn read(ct: &gguf_file::Content) -> Result<Self, String> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .ok_or("no general.architecture in metadata")?;
        let u = |key: &str| -> Result<u64, String> {
            ct.metadata
                .get(&format!("{arch}.{key}"))
                .and_then(|v| v.to_u32().ok())
                .map(u64::from)
                .ok_or_else(|| format!("metadata key `{arch}.{key}` is missing or not an integer"))
        };
        let heads = u("attention.head_count")?;
        let hidden = u("embedding_length")?;
        let head_dim = u("attention.key_length").unwrap_or(hidden / heads.max(1));
        let tensor_bytes = ct
            .tensor_infos
            .values()
            .map(|t| {
                (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        let vocab = ct
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0] as u64)
            .ok_or("no token_embd.weight tensor")?;
        Ok(Self {
            layers: u("block_count")?,
            kv_heads: u("attention.head_count_kv").unwrap_or(heads),
            head_dim,
            sliding_window: u("attention.sliding_window").ok().map(|w| w as u32),
            vocab,
            hidden,
            tensor_bytes,
            arch,
        })
    }

    /// Bytes of the f32 K and V caches for one sequence holding `positions` tokens.
    #[must_use]
    pub fn kv_bytes(&self, positions: u64) -> u64 {
        2 * 4 * self.layers * self.kv_heads * self.head_dim * positions
    }
}

/// Rotary tables (cos, sin), each `(positions, dim / 2)`, in the NeoX layout llama.cpp uses for
/// gemma3 and phi3. Frequencies are divided by `scale` (linear scaling) and, where the file has
/// them, by per-frequency `factors` (LongRoPE's `rope_factors_short`).
fn rope_tables(
    dim: usize,
    base: f32,
    scale: f32,
    factors: Option<&[f32]>,
    positions: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..dim / 2)
        .map(|i| {
            let f = 1.0 / base.powf(2.0 * i as f32 / dim as f32) / scale;
            factors.and_then(|fs| fs.get(i)).map_or(f, |s| f / s)
        })
        .collect();
    let inv_freq = Tensor::from_vec(inv_freq, (1, dim / 2), device)?;
    let t = Tensor::arange(0u32, positions as u32, device)?
        .to_dtype(candle_core::DType::F32)?
        .reshape((positions, 1))?;
    let freqs = t.matmul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// The token embedding (dequantized to f32 for lookups), the final norm and the output
/// projection, which falls back to the embedding when the file ties them (no `output.weight`).
fn embedding_norm_output<R: std::io::Seek + std::io::Read>(
    ct: &gguf_file::Content,
    reader: &mut R,
    hidden: usize,
    eps: f64,
    device: &Device,
) -> candle_core::Result<(
    candle_nn::Embedding,
    candle_transformers::quantized_nn::RmsNorm,
    candle_core::quantized::QMatMul,
)> {
    use candle_core::quantized::QMatMul;
    let embedding_q = ct.tensor(reader, "token_embd.weight", device)?;
    let embedding = candle_nn::Embedding::new(embedding_q.dequantize(device)?, hidden);
    let output = if ct.tensor_infos.contains_key("output.weight") {
        QMatMul::from_qtensor(ct.tensor(reader, "output.weight", device)?)?
    } else {
        QMatMul::from_qtensor(embedding_q)?
    };
    let norm = candle_transformers::quantized_nn::RmsNorm::from_qtensor(
        ct.tensor(reader, "output_norm.weight", device)?,
        eps,
    )?;
    Ok((embedding, norm, output))
}

/// Bytes held by a model's per-layer K and V cache tensors.
fn kv_tensor_bytes<'a>(caches: impl Iterator<Item = &'a Option<(Tensor, Tensor)>>) -> u64 {
    caches
        .flatten()
        .map(|(k, v)| {
            (k.elem_count() * k.dtype().size_in_bytes()
                + v.elem_count() * v.dtype().size_in_bytes()) as u64
        })
        .sum()
}

/// Appends this step's K and V (`(b, kv_heads, seq, head_dim)`) to a layer's cache and returns
/// the whole cache; position 0 starts a new sequence.
fn append_kv(
    cache: &mut Option<(Tensor, Tensor)>,
    k: Tensor,
    v: Tensor,
    index_pos: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (k, v) = match cache.as_ref() {
        Some((kc, vc)) if index_pos > 0 => (Tensor::cat(&[kc, &k], 2)?, Tensor::cat(&[vc, &v], 2)?),
        _ => (k, v),
    };
    *cache = Some((k.clone(), v.clone()));
    Ok((k, v))
}

/// Scaled dot-product attention with grouped K/V heads; `mask` is 1 where a query must not see
/// a key. Returns `(b, seq, heads × head_dim)`.
fn attention(
    q: &Tensor,
    k: Tensor,
    v: Tensor,
    mask: Option<&Tensor>,
    neg_inf: &Tensor,
) -> candle_core::Result<Tensor> {
    let (b, n_head, seq_len, head_dim) = q.dims4()?;
    let n_rep = n_head / k.dim(1)?;
    let k = candle_transformers::utils::repeat_kv(k, n_rep)?;
    let v = candle_transformers::utils::repeat_kv(v, n_rep)?;
    let mut scores = (q.matmul(&k.t()?)? * (1.0 / (head_dim as f64).sqrt()))?;
    if let Some(mask) = mask {
        let mask = mask.broadcast_as(scores.shape())?;
        scores = mask.where_cond(&neg_inf.broadcast_as(scores.shape().dims())?, &scores)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    weights
        .matmul(&v)?
        .transpose(1, 2)?
        .reshape((b, seq_len, n_head * head_dim))
}

fn ensure_threads(threads: u32) -> u32 {
    *POOL_THREADS.get_or_init(|| {
        let n = threads.max(1).to_string();
        // SAFETY: runs once, before this process has asked candle for any thread pool (the pools
        // read these variables when first used), while the harness is single-threaded in its
        // engine calls; nothing else in edgebench reads or writes these variables.
        unsafe {
            std::env::set_var("CANDLE_NUM_THREADS", &n);
            std::env::set_var("RAYON_NUM_THREADS", &n);
        }
        threads.max(1)
    })
}

impl Backend for Candle {
    fn kind(&self) -> BackendKind {
        BackendKind::Candle
    }

    fn supports_device(
        &self,
        device: edgebench_backend::Device,
    ) -> Result<(), edgebench_backend::DeviceUnsupported> {
        let unsupported = |remedy: String| edgebench_backend::DeviceUnsupported {
            engine: BackendKind::Candle,
            device,
            remedy,
        };
        // candle knows which accelerators it was compiled with; the harness drives the CPU.
        self::device(device.as_str()).map_err(unsupported)?;
        if device != edgebench_backend::Device::Cpu {
            return Err(unsupported(
                "the harness drives candle on the CPU only for now".into(),
            ));
        }
        Ok(())
    }

    /// candle keeps its KV cache in f32 whatever the options say.
    fn kv_bytes_per_token(
        &self,
        arch: &edgebench_backend::Architecture,
        _options: &LoadOptions,
    ) -> f64 {
        edgebench_backend::kv_bytes_per_token(arch, KvType::F16, KvType::F16) * 2.0
    }

    fn build(&self) -> EngineBuild {
        let mut compiled = vec!["CPU".to_owned()];
        if cfg!(feature = "cuda") {
            compiled.push("CUDA".into());
        }
        if cfg!(feature = "metal") {
            compiled.push("Metal".into());
        }
        let simd = [
            ("avx", candle_core::utils::with_avx()),
            ("neon", candle_core::utils::with_neon()),
            ("simd128", candle_core::utils::with_simd128()),
            ("f16c", candle_core::utils::with_f16c()),
        ];
        EngineBuild {
            engine: ENGINE.into(),
            version: CRATE_VERSION.into(),
            compiled_backends: compiled,
            system_info: simd
                .iter()
                .map(|(name, on)| format!("{name} = {}", u8::from(*on)))
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    /// Every model here dequantizes its token embedding to f32 at load (an embedding lookup needs
    /// plain rows): vocab × hidden × 4 bytes beside the quantized weights it read. Measured on
    /// Phi-4-mini's full-size twin (Q4_0): peak RSS 4,707 MiB against 2,133 MiB estimated without
    /// it; the embedding is 2,344 MiB.
    /// candle's caches grow by concatenation: they hold the positions a sequence reaches.
    fn kv_positions(&self, options: &LoadOptions) -> u32 {
        options.positions_needed.min(options.context)
    }

    fn extra_weight_bytes(&self, model: &Path, _options: &LoadOptions) -> u64 {
        let Ok(summary) = edgebench_gguf::validate_file(model) else {
            return 0;
        };
        summary
            .tensors
            .iter()
            .find(|t| t.name == "token_embd.weight")
            .map_or(0, |t| t.dims.iter().product::<u64>() * 4)
    }

    fn refuses(&self, model: &Path, options: &LoadOptions) -> Option<String> {
        let pinned = options.pinned;
        if pinned.cache_types {
            return Some(format!(
                "candle keeps its KV cache in f32; this variant pins {}/{} (leave type_k/type_v unset to compare engines' defaults)",
                options.type_k.as_str(),
                options.type_v.as_str()
            ));
        }
        if pinned.flash_attention && options.flash_attention {
            return Some("candle has no flash-attention kernel on CPU".into());
        }
        if pinned.mmap && options.mmap {
            return Some(
                "candle reads weights into its own buffers; it can't memory-map them".into(),
            );
        }
        if let Some(&started) = POOL_THREADS.get()
            && started != options.threads.max(1)
        {
            return Some(format!(
                "candle's thread pool was started with {started} threads in this process and can't be resized; run cases with {} threads in their own process",
                options.threads
            ));
        }
        if !model.is_file() {
            return None; // The load reports the missing file.
        }
        let facts = match self.facts(model) {
            Ok(f) => f,
            Err(e) => return Some(e),
        };
        let positions = options.positions_needed.min(options.context);
        match facts.arch.as_str() {
            "llama" if positions > LLAMA_MAX_POSITIONS => Some(format!(
                "candle-transformers' quantized_llama precomputes rotary tables for {LLAMA_MAX_POSITIONS} positions; this case needs {positions}"
            )),
            "llama" | "qwen2" | "phi3" | "gemma3" => None,
            other => Some(format!(
                "candle backend has no model for GGUF architecture `{other}` (has llama, qwen2, gemma3, phi3)"
            )),
        }
    }

    fn load(
        &self,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<Box<dyn Session + '_>, BackendError> {
        edgebench_backend::check_model_file(path)?;
        if let Some(what) = self.refuses(path, options) {
            return Err(BackendError::Unsupported {
                engine: ENGINE,
                what,
            });
        }
        ensure_threads(options.threads);
        let load_error = |reason: String| BackendError::Load {
            engine: ENGINE,
            path: path.to_owned(),
            reason,
        };
        let facts = self.facts(path).map_err(load_error)?;
        let device = Device::Cpu;
        let read_model = || -> Result<Model, BackendError> {
            let mut file = std::fs::File::open(path).map_err(|e| load_error(e.to_string()))?;
            let content =
                gguf_file::Content::read(&mut file).map_err(|e| load_error(e.to_string()))?;
            match facts.arch.as_str() {
                "llama" => quantized_llama::ModelWeights::from_gguf(content, &mut file, &device)
                    .map(Model::Llama),
                "qwen2" => quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &device)
                    .map(Model::Qwen2),
                "gemma3" => gemma3::Gemma3::from_gguf(&content, &mut file, &device)
                    .map(|m| Model::Gemma3(Box::new(m))),
                "phi3" => phi3::Phi3::from_gguf(&content, &mut file, &device)
                    .map(|m| Model::Phi3(Box::new(m))),
                other => {
                    return Err(load_error(format!(
                        "no candle model for architecture `{other}`"
                    )));
                }
            }
            .map_err(|e| load_error(e.to_string()))
        };
        let first = read_model()?;
        let n_seq = options.max_sequences.max(1) as usize;
        let mut copies_loaded = 1;
        let mut models = Vec::with_capacity(n_seq);
        for _ in 1..n_seq {
            models.push(match first.try_clone() {
                Some(m) => m,
                None => {
                    // quantized_qwen2's model isn't Clone: each parallel sequence reads its own
                    // copy of the weights (recorded as the weights loading mode).
                    copies_loaded += 1;
                    read_model()?
                }
            });
        }
        let template = first.try_clone();
        models.insert(0, first);
        let sequences = models
            .into_iter()
            .enumerate()
            .map(|(seq, model)| SequenceState::new(model, options, seq))
            .collect();
        // candle dequantizes the token embedding to f32 for its lookup table; the rest stays as
        // stored in the file.
        let weights_bytes = (facts.tensor_bytes + facts.vocab * facts.hidden * 4) * copies_loaded;
        Ok(Box::new(CandleSession {
            template,
            sequences,
            options: options.clone(),
            facts,
            device,
            peak_kv_bytes: 0,
            weights_bytes,
            copies_loaded,
        }))
    }
}

/// One of the architectures candle runs.
enum Model {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Gemma3(Box<gemma3::Gemma3>),
    Phi3(Box<phi3::Phi3>),
}

impl Model {
    /// A copy sharing the weights, where the model type allows it.
    fn try_clone(&self) -> Option<Self> {
        match self {
            Self::Llama(m) => Some(Self::Llama(m.clone())),
            Self::Gemma3(m) => Some(Self::Gemma3(m.clone())),
            Self::Phi3(m) => Some(Self::Phi3(m.clone())),
            Self::Qwen2(_) => None,
        }
    }

    /// Empties the KV cache in place, where the model type has a way to.
    fn clear_kv_cache(&mut self) -> bool {
        match self {
            Self::Llama(m) => m.clear_kv_cache(),
            Self::Qwen2(m) => m.clear_kv_cache(),
            Self::Gemma3(_) | Self::Phi3(_) => return false,
        }
        true
    }

    fn forward(&mut self, x: &Tensor, index_pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Llama(m) => m.forward(x, index_pos),
            Self::Qwen2(m) => m.forward(x, index_pos),
            Self::Gemma3(m) => m.forward(x, index_pos),
            Self::Phi3(m) => m.forward(x, index_pos),
        }
    }
}

struct SequenceState {
    model: Model,
    position: u32,
    sampler: LogitsProcessor,
}

fn make_sampler(options: &LoadOptions, seq: usize) -> LogitsProcessor {
    {
        let sampling = match options.sampling {
            Sampling::Greedy => candle_transformers::generation::Sampling::ArgMax,
            Sampling::Temperature { temperature, top_k } if top_k > 0 => {
                candle_transformers::generation::Sampling::TopK {
                    k: top_k as usize,
                    temperature: f64::from(temperature),
                }
            }
            Sampling::Temperature { temperature, .. } => {
                candle_transformers::generation::Sampling::All {
                    temperature: f64::from(temperature),
                }
            }
        };
        // Each sequence gets its own stream, derived from the scenario seed (as in llama.cpp).
        let seed = options.seed ^ (seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        LogitsProcessor::from_sampling(seed, sampling)
    }
}

impl SequenceState {
    fn new(model: Model, options: &LoadOptions, seq: usize) -> Self {
        Self {
            model,
            position: 0,
            sampler: make_sampler(options, seq),
        }
    }
}

/// A candle model with one state per parallel sequence.
pub struct CandleSession {
    /// A pristine model for resetting types without `clear_kv_cache` (gemma3, phi3).
    template: Option<Model>,
    sequences: Vec<SequenceState>,
    options: LoadOptions,
    facts: ModelFacts,
    device: Device,
    peak_kv_bytes: u64,
    weights_bytes: u64,
    /// Copies of the weights read from the file (more than 1 only for qwen2 with parallel
    /// sequences).
    copies_loaded: u64,
}

impl std::fmt::Debug for CandleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleSession")
            .field("arch", &self.facts.arch)
            .field("sequences", &self.sequences.len())
            .finish_non_exhaustive()
    }
}

fn step_error(step: &'static str, e: impl std::fmt::Display) -> BackendError {
    BackendError::step(ENGINE, step, e)
}

impl CandleSession {
    fn check(&self, seq: SeqId, n: usize) -> Result<u32, BackendError> {
        let state = self.sequences.get(seq).ok_or(BackendError::BadSequence {
            seq,
            max: self.sequences.len() as u32,
        })?;
        if u64::from(state.position) + n as u64 > u64::from(self.options.context) {
            return Err(BackendError::ContextFull {
                seq,
                context: self.options.context,
                position: state.position,
            });
        }
        Ok(state.position)
    }

    /// Runs `tokens` through `seq` and returns the logits at the last position.
    fn forward(
        &mut self,
        step: &'static str,
        seq: SeqId,
        tokens: &[TokenId],
    ) -> Result<Tensor, BackendError> {
        if tokens.is_empty() {
            return Err(step_error(step, format!("sequence {seq} got no tokens")));
        }
        let position = self.check(seq, tokens.len())?;
        let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
        let input = Tensor::new(ids.as_slice(), &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|e| step_error(step, e))?;
        let state = &mut self.sequences[seq];
        let logits = state
            .model
            .forward(&input, position as usize)
            .and_then(|l| l.squeeze(0))
            .map_err(|e| step_error(step, e))?;
        state.position += tokens.len() as u32;
        let kv = self.kv_bytes();
        self.peak_kv_bytes = self.peak_kv_bytes.max(kv);
        Ok(logits)
    }

    fn sample(
        &mut self,
        step: &'static str,
        seq: SeqId,
        logits: &Tensor,
    ) -> Result<TokenId, BackendError> {
        self.sequences[seq]
            .sampler
            .sample(logits)
            .map(|t| t as TokenId)
            .map_err(|e| step_error(step, e))
    }

    /// Bytes the KV caches hold now: read from the cache tensors for `phi3`, and from the cached
    /// positions for the candle-transformers models (whose caches are private tensors of exactly
    /// positions × layers × kv heads × head size f32 values for K and for V).
    fn kv_bytes(&self) -> u64 {
        self.sequences
            .iter()
            .map(|s| match &s.model {
                Model::Phi3(m) => m.kv_cache_bytes(),
                Model::Gemma3(m) => m.kv_cache_bytes(),
                _ => self.facts.kv_bytes(u64::from(s.position)),
            })
            .sum()
    }
}

impl Session for CandleSession {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let mut first = Vec::with_capacity(prompts.len());
        for &(seq, tokens) in prompts {
            let logits = self.forward("prefill", seq, tokens)?;
            first.push(self.sample("prefill", seq, &logits)?);
        }
        Ok(first)
    }

    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        let mut out = Vec::with_capacity(inputs.len());
        for &(seq, token) in inputs {
            let logits = self.forward("decode", seq, &[token])?;
            out.push(self.sample("decode", seq, &logits)?);
        }
        Ok(out)
    }

    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
        if seq >= self.sequences.len() {
            return Err(BackendError::BadSequence {
                seq,
                max: self.sequences.len() as u32,
            });
        }
        let state = &mut self.sequences[seq];
        if !state.model.clear_kv_cache() {
            // No way to empty the cache in place: start again from the pristine copy. Cloning
            // shares every weight tensor, so this costs a few allocations, not a reload.
            let fresh = self.template.as_ref().and_then(Model::try_clone);
            state.model =
                fresh.ok_or_else(|| step_error("reset", "no pristine model to reset from"))?;
        }
        state.position = 0;
        state.sampler = make_sampler(&self.options, seq);
        Ok(())
    }

    fn prompt_logits(&mut self, seq: SeqId, prompt: &[TokenId]) -> Result<Vec<f32>, BackendError> {
        self.reset(seq)?;
        let logits = self.forward("prefill", seq, prompt)?;
        logits
            .to_dtype(candle_core::DType::F32)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(|e| step_error("prefill", e))
    }

    fn teacher_forced(
        &mut self,
        seq: SeqId,
        tokens: &[TokenId],
        first: usize,
        each: &mut dyn FnMut(usize, &[f32]) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        self.reset(seq)?;
        if tokens.len() < 2 || first + 1 >= tokens.len() {
            return Ok(());
        }
        // candle's models return the last position's logits only: the unscored prefix and the
        // first scored position go in one forward pass, every later position in its own.
        let to_vec = |logits: Tensor| {
            logits
                .to_dtype(candle_core::DType::F32)
                .and_then(|l| l.to_vec1::<f32>())
                .map_err(|e| step_error("teacher-force", e))
        };
        let logits = self.forward("teacher-force", seq, &tokens[..=first])?;
        each(first, &to_vec(logits)?)?;
        for j in first + 1..tokens.len() - 1 {
            let logits = self.forward("teacher-force", seq, &tokens[j..=j])?;
            each(j, &to_vec(logits)?)?;
        }
        Ok(())
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport {
            kv_cache_bytes: self.peak_kv_bytes,
            weights_bytes: self.weights_bytes,
        }
    }

    fn effective(&self) -> Effective {
        Effective {
            kv_storage: "f32/f32".into(),
            flash_attention: false,
            weights: if self.copies_loaded > 1 {
                edgebench_backend::WeightsLoading::ReadPerSequence
            } else {
                edgebench_backend::WeightsLoading::Read
            },
            scheduling: edgebench_backend::Scheduling::RoundRobin,
        }
    }

    fn counters(&mut self) -> Option<EngineCounters> {
        None
    }
}
