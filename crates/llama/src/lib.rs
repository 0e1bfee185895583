//! llama.cpp behind edgebench's [`Backend`] trait.
//!
//! llama.cpp keeps process-wide state (its backend init and log callback), so [`LlamaCpp::global`]
//! hands out one shared instance. Its log is captured rather than printed: the KV-cache size lines
//! give the exact cache bytes, and error lines become the reason in our errors.
#![allow(unsafe_code)] // FFI log callback and the model/context self-borrow, each with a SAFETY note.

use std::ffi::{CStr, c_char, c_void};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use edgebench_backend::{
    Backend, BackendError, BackendKind, ChatMessage, Effective, EngineBuild, EngineCounters,
    KvType, LoadOptions, MemoryReport, Sampling, SeqId, Session, TokenId, Vocabulary,
};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

mod quantize;
pub use quantize::QUANTIZE_TYPES;

const ENGINE: &str = "llama.cpp";
/// Version of the `llama-cpp-2` crate this build links (llama.cpp is vendored by its -sys crate).
pub const CRATE_VERSION: &str = "llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161";

static FORWARD_LOGS: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<LogCapture> = Mutex::new(LogCapture {
    partial: String::new(),
    kv_mib: Vec::new(),
    errors: Vec::new(),
});
/// Serialises context creation so captured KV lines belong to the context being created.
static CREATE: Mutex<()> = Mutex::new(());

struct LogCapture {
    partial: String,
    kv_mib: Vec<f64>,
    errors: Vec<String>,
}

impl LogCapture {
    fn take_line(&mut self, line: &str) {
        // e.g. "llama_kv_cache: size =   36.00 MiB (  2048 cells, 18 layers, 1/1 seqs), K (f16): ..."
        if let Some(rest) = line.split("llama_kv_cache: size =").nth(1)
            && let Some(mib) = rest
                .split("MiB")
                .next()
                .and_then(|n| n.trim().parse::<f64>().ok())
        {
            self.kv_mib.push(mib);
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("error") || lower.contains("failed") || lower.contains("requires") {
            self.errors.push(line.trim().to_owned());
            if self.errors.len() > 8 {
                self.errors.remove(0);
            }
        }
    }
}

unsafe extern "C" fn capture_log(
    _level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _user: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if FORWARD_LOGS.load(Ordering::Relaxed) {
        eprint!("{text}");
    }
    let Ok(mut log) = LOG.lock() else { return };
    log.partial.push_str(&text);
    while let Some(i) = log.partial.find('\n') {
        let line: String = log.partial.drain(..=i).collect();
        log.take_line(&line);
    }
}

fn reset_capture() {
    if let Ok(mut log) = LOG.lock() {
        log.partial.clear();
        log.kv_mib.clear();
        log.errors.clear();
    }
}

fn captured_errors() -> String {
    let errors = LOG.lock().map(|l| l.errors.join(" | ")).unwrap_or_default();
    if errors.is_empty() {
        "llama.cpp gave no reason (set EDGEBENCH_ENGINE_LOGS=1 to see its log)".into()
    } else {
        errors
    }
}

/// The llama.cpp engine. One per process.
#[derive(Debug)]
pub struct LlamaCpp {
    backend: LlamaBackend,
}

impl LlamaCpp {
    /// The process-wide instance. llama.cpp's log goes to stderr only when the environment
    /// variable `EDGEBENCH_ENGINE_LOGS` is set to `1`.
    pub fn global() -> Result<&'static Self, BackendError> {
        static INSTANCE: OnceLock<Result<LlamaCpp, String>> = OnceLock::new();
        INSTANCE
            .get_or_init(|| {
                FORWARD_LOGS.store(
                    std::env::var("EDGEBENCH_ENGINE_LOGS").is_ok_and(|v| v == "1"),
                    Ordering::Relaxed,
                );
                // SAFETY: installs a callback with the signature llama.cpp expects; it only reads
                // the text it is given and touches our own statics.
                unsafe { llama_cpp_sys_2::llama_log_set(Some(capture_log), std::ptr::null_mut()) };
                LlamaBackend::init()
                    .map(|backend| Self { backend })
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| BackendError::Step {
                engine: ENGINE,
                step: "initialise",
                reason: reason.clone(),
            })
    }
}

impl LlamaCpp {
    /// Loads a model file, with llama.cpp's captured error lines as the reason when it fails.
    /// The caller holds `CREATE`, so the captured lines are this load's.
    fn load_model(
        &self,
        path: &Path,
        params: &LlamaModelParams,
    ) -> Result<LlamaModel, BackendError> {
        reset_capture();
        LlamaModel::load_from_file(&self.backend, path, params).map_err(|e| BackendError::Load {
            engine: ENGINE,
            path: path.to_owned(),
            reason: format!("{e}: {}", captured_errors()),
        })
    }

    /// llama.cpp's own loader on `path`, with no validation of ours in front of it: what the
    /// differential test compares the validator with. It may abort the process on a malformed
    /// file, so only a child process calls it (`edgebench-gguf-probe`).
    pub fn unvalidated_load(&self, path: &Path) -> Result<(), BackendError> {
        let _guard = CREATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.load_model(path, &LlamaModelParams::default().with_use_mmap(true))
            .map(drop)
    }

    /// The vocabulary of the model at `path`, loaded without its weights: the reference
    /// tokenizer whose ids every engine receives.
    pub fn vocabulary(&self, path: &Path) -> Result<LlamaVocabulary, BackendError> {
        self.vocabulary_with_template(path, None)
    }

    /// [`Self::vocabulary`], rendering chats with `fallback_template` (the name of a llama.cpp
    /// built-in template, e.g. `gemma`) when the file carries no template of its own.
    pub fn vocabulary_with_template(
        &self,
        path: &Path,
        fallback_template: Option<&str>,
    ) -> Result<LlamaVocabulary, BackendError> {
        edgebench_backend::check_model_file(path)?;
        let _guard = CREATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let model = self.load_model(path, &LlamaModelParams::default().with_vocab_only(true))?;
        Ok(LlamaVocabulary {
            model,
            fallback_template: fallback_template.map(str::to_owned),
            path: path.to_path_buf(),
        })
    }
}

/// A model's vocabulary as llama.cpp reads it from the GGUF file.
pub struct LlamaVocabulary {
    model: LlamaModel,
    /// A built-in template's name, used when the file has no `tokenizer.chat_template`.
    fallback_template: Option<String>,
    /// The file, for messages.
    path: std::path::PathBuf,
}

impl std::fmt::Debug for LlamaVocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaVocabulary")
            .field("size", &self.size())
            .finish()
    }
}

impl Vocabulary for LlamaVocabulary {
    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<TokenId>, BackendError> {
        let vocab = self.model.vocab();
        let add = add_bos && vocab.should_add_bos();
        Ok(vocab
            .tokenize(text.as_bytes(), add, false)
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    fn detokenize(&self, tokens: &[TokenId]) -> Result<String, BackendError> {
        let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let bytes = self.model.vocab().detokenize(&tokens, false, false);
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn is_end_of_generation(&self, token: TokenId) -> bool {
        self.model.vocab().is_eog(LlamaToken(token))
    }

    fn size(&self) -> usize {
        usize::try_from(self.model.vocab().n_tokens()).unwrap_or(0)
    }

    fn render_chat(
        &self,
        messages: &[ChatMessage<'_>],
        add_assistant: bool,
    ) -> Result<Option<String>, BackendError> {
        // A model without `tokenizer.chat_template` (and no fallback named in models.toml) has
        // no template to render: raw text.
        let cannot = |reason: String| BackendError::ChatTemplate {
            path: self.path.display().to_string(),
            reason,
        };
        let (template, from_file) = match (self.model.chat_template(None), &self.fallback_template)
        {
            (Ok(t), _) => (t, true),
            (Err(_), Some(name)) => (
                LlamaChatTemplate::new(name)
                    .map_err(|e| BackendError::step(ENGINE, "name the chat template", e))?,
                false,
            ),
            (Err(_), None) => return Ok(None),
        };
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.to_owned(), m.content.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::step(ENGINE, "render the chat template", e))?;
        // llama_chat_apply_template: llama.cpp's built-in renderings of the templates it
        // recognises (chatml, gemma, llama3, phi...), the same ones llama-server falls back to.
        self.model
            .apply_chat_template(&template, &chat, add_assistant)
            .map(Some)
            .map_err(|e| {
                cannot(if from_file {
                    format!(
                        "its `tokenizer.chat_template` is not one llama.cpp's built-in renderer recognises: {e}"
                    )
                } else {
                    format!("the built-in template named in models.toml failed: {e}")
                })
            })
    }

    fn tokenize_chat(&self, text: &str, add_bos: bool) -> Result<Vec<TokenId>, BackendError> {
        let vocab = self.model.vocab();
        let add = add_bos && vocab.should_add_bos();
        Ok(vocab
            .tokenize(text.as_bytes(), add, true)
            .into_iter()
            .map(|t| t.0)
            .collect())
    }
}

fn kv_cache_type(t: KvType) -> KvCacheType {
    match t {
        KvType::F32 => KvCacheType::F32,
        KvType::F16 => KvCacheType::F16,
        KvType::Bf16 => KvCacheType::BF16,
        KvType::Q8_0 => KvCacheType::Q8_0,
        KvType::Q4_0 => KvCacheType::Q4_0,
        KvType::Q4_1 => KvCacheType::Q4_1,
        KvType::Iq4Nl => KvCacheType::IQ4_NL,
        KvType::Q5_0 => KvCacheType::Q5_0,
        KvType::Q5_1 => KvCacheType::Q5_1,
    }
}

fn system_info() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string owned by llama.cpp.
    let ptr = unsafe { llama_cpp_sys_2::llama_print_system_info() };
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, static.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_owned()
}

/// llama.cpp keeps a quantized V cache only with flash attention on; without it
/// `llama_new_context_with_model` fails and says why only in its log.
fn quantized_v_without_flash_attention(options: &LoadOptions) -> Option<String> {
    (options.type_v.is_quantized() && !options.flash_attention).then(|| {
        format!(
            "a quantized V cache ({}) without flash attention: set flash_attention = true in the [[kv]] variant",
            options.type_v.as_str()
        )
    })
}

impl Backend for LlamaCpp {
    fn kind(&self) -> BackendKind {
        BackendKind::LlamaCpp
    }

    fn supports_device(
        &self,
        device: edgebench_backend::Device,
    ) -> Result<(), edgebench_backend::DeviceUnsupported> {
        match device {
            edgebench_backend::Device::Cpu => Ok(()),
            other => Err(edgebench_backend::DeviceUnsupported {
                engine: BackendKind::LlamaCpp,
                device: other,
                remedy: format!(
                    "compiled for the CPU only; rebuild llama-cpp-2 with its `{}` feature",
                    other.as_str()
                ),
            }),
        }
    }

    fn build(&self) -> EngineBuild {
        let mut compiled: Vec<String> = llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .map(|d| d.backend)
            .collect();
        compiled.sort();
        compiled.dedup();
        EngineBuild {
            engine: ENGINE.into(),
            version: CRATE_VERSION.into(),
            compiled_backends: compiled,
            system_info: system_info(),
        }
    }

    /// llama.cpp's CPU backend repacks Q4_0, Q4_K and IQ4_NL matrices into interleaved layouts
    /// for its AVX2/AVX-512 kernels: a second, anonymous copy, while the mapped file pages it
    /// read them from stay resident too. Measured on MiMo-7B's full-size twin: peak RSS 7,944 MiB
    /// for a 4,096 MiB Q4_0 file. The token embedding is only gathered from (`get_rows`), so it
    /// is never repacked. Without mmap the repacked tensors replace their plain copy.
    fn extra_weight_bytes(&self, model: &Path, options: &LoadOptions) -> u64 {
        if !options.mmap || !repacks_on_this_cpu() {
            return 0;
        }
        let Ok(summary) = edgebench_gguf::validate_file(model) else {
            return 0;
        };
        summary
            .tensors
            .iter()
            .filter(|t| t.dims.len() == 2 && t.name != "token_embd.weight")
            .filter(|t| matches!(t.ggml_type, 2 | 12 | 20))
            .filter_map(|t| {
                let (block, bytes) = edgebench_gguf::type_layout(t.ggml_type)?;
                Some(t.dims.iter().product::<u64>() / block * bytes)
            })
            .sum()
    }

    fn refuses(&self, _model: &Path, options: &LoadOptions) -> Option<String> {
        quantized_v_without_flash_attention(options).map(|what| format!("llama.cpp refuses {what}"))
    }

    fn load(
        &self,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<Box<dyn Session + '_>, BackendError> {
        edgebench_backend::check_model_file(path)?;
        if let Some(what) = quantized_v_without_flash_attention(options) {
            return Err(BackendError::Unsupported {
                engine: ENGINE,
                what,
            });
        }
        let _guard = CREATE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let model = self.load_model(
            path,
            &LlamaModelParams::default().with_use_mmap(options.mmap),
        )?;
        let model = Box::new(model);
        let n_seq = options.max_sequences.max(1);
        let n_ctx = options
            .context
            .checked_mul(n_seq)
            .and_then(NonZeroU32::new)
            .ok_or_else(|| BackendError::Context {
                engine: ENGINE,
                path: path.to_owned(),
                reason: format!(
                    "context {} × {} sequences is not a valid size",
                    options.context, n_seq
                ),
            })?;
        let threads = i32::try_from(options.threads.max(1)).unwrap_or(i32::MAX);
        let flash = if options.flash_attention {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
        } else {
            llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
        };
        let batch = options.batch.min(n_ctx.get()).max(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(Some(n_ctx))
            .with_n_batch(batch)
            .with_n_ubatch(batch)
            .with_n_seq_max(n_seq)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_type_k(kv_cache_type(options.type_k))
            .with_type_v(kv_cache_type(options.type_v))
            .with_flash_attention_policy(flash)
            .with_swa_full(false)
            .with_no_perf(false);
        let ctx = model
            .new_context(&self.backend, params)
            .map_err(|e| BackendError::Context {
                engine: ENGINE,
                path: path.to_owned(),
                reason: format!("{e}: {}", captured_errors()),
            })?;
        // SAFETY: `ctx` borrows `*model`, which lives in a Box whose address never changes and
        // which `LlamaSession` drops after `ctx` (field order), so the borrow stays valid.
        let ctx: LlamaContext<'static> =
            unsafe { std::mem::transmute::<LlamaContext<'_>, LlamaContext<'static>>(ctx) };
        let kv_mib: f64 = LOG.lock().map(|l| l.kv_mib.iter().sum()).unwrap_or(0.0);
        let kv_cache_bytes = if kv_mib > 0.0 {
            (kv_mib * 1024.0 * 1024.0).round() as u64
        } else {
            estimate_kv_bytes(&model, options, n_ctx.get())
        };
        let samplers = (0..n_seq)
            .map(|seq| make_sampler(options.sampling, options.seed, seq))
            .collect();
        Ok(Box::new(LlamaSession {
            ctx,
            samplers,
            greedy: matches!(options.sampling, Sampling::Greedy),
            positions: vec![0; n_seq as usize],
            batch: LlamaBatch::new(batch as usize, i32::try_from(n_seq).unwrap_or(i32::MAX)),
            batch_size: batch as usize,
            context: options.context,
            kv_cache_bytes,
            weights_bytes: model.size(),
            type_k: options.type_k,
            type_v: options.type_v,
            flash_attention: options.flash_attention,
            mmap: options.mmap,
            model,
        }))
    }
}

/// Fallback when llama.cpp printed no size line: layers × cells × kv width × element size.
fn estimate_kv_bytes(model: &LlamaModel, options: &LoadOptions, cells: u32) -> u64 {
    let width = u64::from(model.n_head_kv())
        * (u64::try_from(model.n_embd()).unwrap_or(0) / u64::from(model.n_head().max(1)));
    let bytes = edgebench_backend::kv_element_bytes;
    let per_cell = width as f64 * (bytes(options.type_k) + bytes(options.type_v));
    (per_cell * f64::from(cells) * f64::from(model.n_layer())) as u64
}

fn make_sampler(sampling: Sampling, seed: u64, seq: u32) -> LlamaSampler {
    match sampling {
        Sampling::Greedy => LlamaSampler::greedy(),
        Sampling::Temperature { temperature, top_k } => {
            // Each sequence gets its own stream, derived from the scenario seed.
            let seed = (seed ^ u64::from(seq).wrapping_mul(0x9E37_79B9_7F4A_7C15)) as u32;
            let mut chain = Vec::new();
            if top_k > 0 {
                chain.push(LlamaSampler::top_k(
                    i32::try_from(top_k).unwrap_or(i32::MAX),
                ));
            }
            chain.push(LlamaSampler::temp(temperature));
            chain.push(LlamaSampler::dist(seed));
            LlamaSampler::chain_simple(chain)
        }
    }
}

/// A llama.cpp model with its context.
pub struct LlamaSession {
    // Field order is drop order: `ctx` borrows `*model` and must go first.
    ctx: LlamaContext<'static>,
    samplers: Vec<LlamaSampler>,
    /// Greedy sessions pick the argmax of the logits directly: llama.cpp's sampler first copies
    /// the whole vocabulary into a freshly allocated candidate array (3 MiB for Gemma's 262k
    /// tokens) on every token, inside the timed step.
    greedy: bool,
    positions: Vec<u32>,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    context: u32,
    kv_cache_bytes: u64,
    weights_bytes: u64,
    type_k: KvType,
    type_v: KvType,
    flash_attention: bool,
    mmap: bool,
    #[expect(
        dead_code,
        reason = "owns the model that `ctx` borrows; never read directly"
    )]
    model: Box<LlamaModel>,
}

impl std::fmt::Debug for LlamaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaSession")
            .field("positions", &self.positions)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

fn step_error(step: &'static str, e: impl std::fmt::Display) -> BackendError {
    BackendError::step(ENGINE, step, e)
}

impl LlamaSession {
    fn check_seq(&self, seq: SeqId) -> Result<(), BackendError> {
        if seq >= self.positions.len() {
            return Err(BackendError::BadSequence {
                seq,
                max: self.positions.len() as u32,
            });
        }
        Ok(())
    }

    /// The next token of `seq` from the logits of batch entry `k`.
    fn pick(&mut self, seq: SeqId, k: usize) -> Result<TokenId, BackendError> {
        if self.greedy {
            let logits = self.ctx.get_logits_ith(k as i32);
            return edgebench_backend::argmax(logits)
                .and_then(|t| TokenId::try_from(t).ok())
                .ok_or_else(|| step_error("sample", "no finite logit"));
        }
        Ok(self.samplers[seq].sample(&self.ctx, k as i32).0)
    }

    fn reserve(&self, seq: SeqId, n: usize) -> Result<u32, BackendError> {
        self.check_seq(seq)?;
        let position = self.positions[seq];
        if u64::from(position) + n as u64 > u64::from(self.context) {
            return Err(BackendError::ContextFull {
                seq,
                context: self.context,
                position,
            });
        }
        Ok(position)
    }
}

impl Session for LlamaSession {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let mut first = vec![0; prompts.len()];
        // Flatten all prompts into (prompt index, seq, token, pos, is_last) and feed them in
        // chunks of at most `batch_size`; sample a sequence right after the chunk holding its
        // last token, before the next decode overwrites the logits.
        let mut items = Vec::new();
        for (i, (seq, tokens)) in prompts.iter().enumerate() {
            if tokens.is_empty() {
                return Err(step_error(
                    "prefill",
                    format!("sequence {seq} got an empty prompt"),
                ));
            }
            let start = self.reserve(*seq, tokens.len())?;
            for (j, &t) in tokens.iter().enumerate() {
                items.push((i, *seq, t, start + j as u32, j + 1 == tokens.len()));
            }
        }
        for chunk in items.chunks(self.batch_size) {
            self.batch.clear();
            for &(_, seq, t, pos, last) in chunk {
                self.batch
                    .add(LlamaToken(t), pos as i32, &[seq as i32], last)
                    .map_err(|e| step_error("prefill", e))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| step_error("prefill", e))?;
            for (k, &(i, seq, _, pos, last)) in chunk.iter().enumerate() {
                if last {
                    first[i] = self.pick(seq, k)?;
                    self.positions[seq] = pos + 1;
                }
            }
        }
        Ok(first)
    }

    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        self.batch.clear();
        for &(seq, t) in inputs {
            let pos = self.reserve(seq, 1)?;
            self.batch
                .add(LlamaToken(t), pos as i32, &[seq as i32], true)
                .map_err(|e| step_error("decode", e))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| step_error("decode", e))?;
        let mut out = Vec::with_capacity(inputs.len());
        for (k, &(seq, _)) in inputs.iter().enumerate() {
            self.positions[seq] += 1;
            out.push(self.pick(seq, k)?);
        }
        Ok(out)
    }

    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
        self.check_seq(seq)?;
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), None, None)
            .map_err(|e| step_error("reset", e))?;
        self.positions[seq] = 0;
        self.samplers[seq].reset();
        Ok(())
    }

    fn prompt_logits(&mut self, seq: SeqId, prompt: &[TokenId]) -> Result<Vec<f32>, BackendError> {
        self.reset(seq)?;
        self.prefill(&[(seq, prompt)])?;
        // prefill's last decode call ended with this prompt's last token, whose logits it
        // requested; they stay in the context until the next decode.
        let last = (prompt.len() - 1) % self.batch_size;
        Ok(self.ctx.get_logits_ith(last as i32).to_vec())
    }

    fn teacher_forced(
        &mut self,
        seq: SeqId,
        tokens: &[TokenId],
        first: usize,
        each: &mut dyn FnMut(usize, &[f32]) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        self.reset(seq)?;
        if tokens.is_empty() {
            return Ok(());
        }
        let start = self.reserve(seq, tokens.len())?;
        // Batches of `batch_size`, logits requested only where a position is scored.
        for (c, chunk) in tokens.chunks(self.batch_size).enumerate() {
            let offset = c * self.batch_size;
            self.batch.clear();
            for (k, &t) in chunk.iter().enumerate() {
                let j = offset + k;
                let scored = j >= first && j + 1 < tokens.len();
                self.batch
                    .add(
                        LlamaToken(t),
                        (start as usize + j) as i32,
                        &[seq as i32],
                        scored,
                    )
                    .map_err(|e| step_error("teacher-force", e))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| step_error("teacher-force", e))?;
            self.positions[seq] = start + (offset + chunk.len()) as u32;
            for k in 0..chunk.len() {
                let j = offset + k;
                if j >= first && j + 1 < tokens.len() {
                    each(j, self.ctx.get_logits_ith(k as i32))?;
                }
            }
        }
        Ok(())
    }

    fn effective(&self) -> Effective {
        Effective {
            kv_storage: format!("{}/{}", self.type_k.as_str(), self.type_v.as_str()),
            flash_attention: self.flash_attention,
            weights: if self.mmap {
                edgebench_backend::WeightsLoading::Mmap
            } else {
                edgebench_backend::WeightsLoading::Read
            },
            scheduling: edgebench_backend::Scheduling::Batched,
        }
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport {
            kv_cache_bytes: self.kv_cache_bytes,
            weights_bytes: self.weights_bytes,
        }
    }

    fn counters(&mut self) -> Option<EngineCounters> {
        self.ctx.synchronize();
        let t = self.ctx.timings();
        Some(EngineCounters {
            prompt_eval_ms: t.t_p_eval_ms(),
            prompt_eval_tokens: u64::try_from(t.n_p_eval()).unwrap_or(0),
            eval_ms: t.t_eval_ms(),
            eval_tokens: u64::try_from(t.n_eval()).unwrap_or(0),
        })
    }

    fn reset_counters(&mut self) {
        self.ctx.reset_timings();
    }
}

/// Whether llama.cpp's CPU backend repacks weights here (x86 with AVX2; ARM has its own repacks
/// that this estimate does not model).
fn repacks_on_this_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
