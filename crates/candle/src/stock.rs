//! candle-transformers' own quantized models, as they ship, behind the same [`Session`]: the
//! candle anchor. Paired with edgebench's candle engine on one file (same threads, same prompt,
//! greedy), it shows how much of candle's speed is candle's and how much is edgebench's model
//! code and glue. [`matmul_profile`] then says where a decode step's time goes: each weight
//! matrix multiplied by one token's activations with candle's kernel for its storage type.
//!
//! The stock models differ from edgebench's where edgebench fixed them (see [`crate::gemma3`]
//! and [`crate::phi3`]): they compute a slightly different Gemma 3 and rotate Phi-3's whole head,
//! so their tokens may differ; their work per token is the same shape.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{Device, Module, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2,
};
use edgebench_backend::{
    BackendError, Effective, EngineCounters, MemoryReport, SeqId, Session, TokenId,
};

use crate::{ENGINE, ensure_threads, step_error};

/// One of candle-transformers' quantized models.
enum StockModel {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
}

impl StockModel {
    fn read(path: &Path, device: &Device) -> Result<Self, BackendError> {
        let (mut file, content) = open_gguf(path)?;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        match arch.as_str() {
            "llama" => quantized_llama::ModelWeights::from_gguf(content, &mut file, device)
                .map(Self::Llama),
            "qwen2" => quantized_qwen2::ModelWeights::from_gguf(content, &mut file, device)
                .map(Self::Qwen2),
            "gemma3" => quantized_gemma3::ModelWeights::from_gguf(content, &mut file, device)
                .map(Self::Gemma3),
            "phi3" => quantized_phi3::ModelWeights::from_gguf(false, content, &mut file, device)
                .map(Self::Phi3),
            other => {
                return Err(load_error(path, format!(
                    "candle-transformers ships no quantized model for architecture `{other}` that edgebench anchors (llama, qwen2, gemma3, phi3)"
                )));
            }
        }
        .map_err(|e| load_error(path, e.to_string()))
    }

    /// A copy sharing the weights, for the model types that have no way to empty their cache.
    fn pristine_copy(&self) -> Option<Self> {
        match self {
            Self::Gemma3(m) => Some(Self::Gemma3(m.clone())),
            Self::Phi3(m) => Some(Self::Phi3(m.clone())),
            Self::Llama(_) | Self::Qwen2(_) => None,
        }
    }

    fn forward(&mut self, x: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Self::Llama(m) => m.forward(x, position),
            Self::Qwen2(m) => m.forward(x, position),
            Self::Gemma3(m) => m.forward(x, position),
            Self::Phi3(m) => m.forward(x, position),
        }
    }
}

fn load_error(path: &Path, reason: String) -> BackendError {
    BackendError::Load {
        engine: ENGINE,
        path: path.to_owned(),
        reason,
    }
}

/// `path` opened and its GGUF header read, the file positioned for reading tensors.
fn open_gguf(path: &Path) -> Result<(std::fs::File, gguf_file::Content), BackendError> {
    let mut file = std::fs::File::open(path).map_err(|e| load_error(path, e.to_string()))?;
    let content =
        gguf_file::Content::read(&mut file).map_err(|e| load_error(path, e.to_string()))?;
    Ok((file, content))
}

/// One sequence on a stock model, greedy.
pub struct StockSession {
    path: PathBuf,
    model: StockModel,
    /// For the model types without a way to empty their cache: a fresh copy sharing the weights.
    pristine: Option<StockModel>,
    device: Device,
    position: usize,
    sampler: LogitsProcessor,
    weights_bytes: u64,
}

impl std::fmt::Debug for StockSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StockSession")
            .field("path", &self.path)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl StockSession {
    /// Loads `path` with candle-transformers' model for its architecture, on the CPU with
    /// `threads` threads (the process-wide pool: the first candle load in a process sets it).
    pub fn load(path: &Path, threads: u32) -> Result<Self, BackendError> {
        edgebench_backend::check_model_file(path)?;
        ensure_threads(threads);
        let device = Device::Cpu;
        let model = StockModel::read(path, &device)?;
        Ok(Self {
            path: path.to_owned(),
            pristine: model.pristine_copy(),
            model,
            device,
            position: 0,
            sampler: LogitsProcessor::from_sampling(0, Sampling::ArgMax),
            weights_bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        })
    }

    fn run(&mut self, step: &'static str, tokens: &[TokenId]) -> Result<TokenId, BackendError> {
        let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
        let input = Tensor::new(ids.as_slice(), &self.device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|e| step_error(step, e))?;
        let logits = self
            .model
            .forward(&input, self.position)
            .and_then(|l| l.squeeze(0))
            .map_err(|e| step_error(step, e))?;
        self.position += tokens.len();
        self.sampler
            .sample(&logits)
            .map(|t| t as TokenId)
            .map_err(|e| step_error(step, e))
    }

    fn only_sequence_zero(seq: SeqId) -> Result<(), BackendError> {
        if seq == 0 {
            Ok(())
        } else {
            Err(BackendError::BadSequence { seq, max: 1 })
        }
    }
}

impl Session for StockSession {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let mut out = Vec::with_capacity(prompts.len());
        for &(seq, tokens) in prompts {
            Self::only_sequence_zero(seq)?;
            out.push(self.run("prefill", tokens)?);
        }
        Ok(out)
    }

    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        let mut out = Vec::with_capacity(inputs.len());
        for &(seq, token) in inputs {
            Self::only_sequence_zero(seq)?;
            out.push(self.run("decode", &[token])?);
        }
        Ok(out)
    }

    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
        Self::only_sequence_zero(seq)?;
        match &mut self.model {
            StockModel::Llama(m) => m.clear_kv_cache(),
            StockModel::Qwen2(m) => m.clear_kv_cache(),
            // No way to empty these caches: start again from the pristine copy (cloning shares
            // every weight tensor: a few allocations, not a reload).
            StockModel::Gemma3(_) | StockModel::Phi3(_) => {
                self.model = self
                    .pristine
                    .as_ref()
                    .and_then(StockModel::pristine_copy)
                    .ok_or_else(|| step_error("reset", "no pristine model to reset from"))?;
            }
        }
        self.position = 0;
        Ok(())
    }

    fn prompt_logits(&mut self, seq: SeqId, _prompt: &[TokenId]) -> Result<Vec<f32>, BackendError> {
        Self::only_sequence_zero(seq)?;
        Err(BackendError::Unsupported {
            engine: "candle-transformers",
            what: "logits (the stock models anchor speed only)".into(),
        })
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport {
            kv_cache_bytes: 0,
            weights_bytes: self.weights_bytes,
        }
    }

    fn effective(&self) -> Effective {
        Effective {
            kv_storage: "f32/f32".into(),
            flash_attention: false,
            weights: edgebench_backend::WeightsLoading::Read,
            scheduling: edgebench_backend::Scheduling::RoundRobin,
        }
    }

    fn counters(&mut self) -> Option<EngineCounters> {
        None
    }
}

/// The weight matrices of one storage type, multiplied by one token's activations.
#[derive(Debug, Clone, PartialEq)]
pub struct MatmulShare {
    /// GGML storage type as candle names it (`Q4_1`, `Q4K`, `F32`, …).
    pub storage: String,
    pub tensors: usize,
    /// Bytes those matrices take in the file.
    pub bytes: u64,
    /// Sum over the matrices of the median time of one multiplication.
    pub seconds_per_token: f64,
}

/// Times candle's kernel on every weight matrix a decode step multiplies (the output
/// projection, or the tied token embedding when the file has none), each by a one-token
/// activation vector, `repetitions` times after one warm-up; returns the medians summed per
/// storage type, largest first. The token embedding's lookup is not a multiplication and is
/// left out when an output matrix exists.
pub fn matmul_profile(
    path: &Path,
    threads: u32,
    repetitions: usize,
) -> Result<Vec<MatmulShare>, BackendError> {
    edgebench_backend::check_model_file(path)?;
    ensure_threads(threads);
    let device = Device::Cpu;
    let (mut file, content) = open_gguf(path)?;
    let has_output = content.tensor_infos.contains_key("output.weight");
    let mut names: Vec<&String> = content
        .tensor_infos
        .iter()
        .filter(|(name, info)| {
            info.shape.dims().len() == 2 && !(has_output && name.as_str() == "token_embd.weight")
        })
        .map(|(name, _)| name)
        .collect();
    names.sort();
    let mut shares: Vec<MatmulShare> = Vec::new();
    for name in names {
        let info = &content.tensor_infos[name];
        let storage = format!("{:?}", info.ggml_dtype);
        let bytes = (info.shape.elem_count() / info.ggml_dtype.block_size()
            * info.ggml_dtype.type_size()) as u64;
        let weights = content
            .tensor(&mut file, name, &device)
            .map_err(|e| load_error(path, format!("tensor {name}: {e}")))?;
        // GGUF dims are [out, in] as candle reads them: the activations are [1, in].
        let columns = weights.shape().dims()[1];
        let matmul = QMatMul::from_qtensor(weights)
            .map_err(|e| load_error(path, format!("tensor {name}: {e}")))?;
        let input = Tensor::ones((1, columns), candle_core::DType::F32, &device)
            .map_err(|e| step_error("profile", e))?;
        let mut times = Vec::with_capacity(repetitions);
        for repetition in 0..=repetitions {
            let start = Instant::now();
            let out = matmul
                .forward(&input)
                .map_err(|e| step_error("profile", format!("tensor {name}: {e}")))?;
            drop(out);
            if repetition > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        match shares.iter_mut().find(|s| s.storage == storage) {
            Some(share) => {
                share.tensors += 1;
                share.bytes += bytes;
                share.seconds_per_token += median;
            }
            None => shares.push(MatmulShare {
                storage,
                tensors: 1,
                bytes,
                seconds_per_token: median,
            }),
        }
    }
    shares.sort_by(|a, b| b.seconds_per_token.total_cmp(&a.seconds_per_token));
    Ok(shares)
}
