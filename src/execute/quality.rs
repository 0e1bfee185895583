//! The quality pass of a speed case with a `[quality]` table: after the timed repetitions, the
//! scenario's text is fed teacher-forced through the case's own configuration and through a
//! reference of the same weights, and their next-token distributions are compared
//! (`edgebench_core::quality`: mean KLD, same-top-1, Δ log-perplexity).
//!
//! The reference is llama.cpp with an f16 K/V cache and no flash attention on the same file:
//! for a llama.cpp case that isolates the KV variant, for a candle case it measures the two
//! engines against each other in the same terms.

use std::path::Path;
use std::time::Instant;

use edgebench_backend::{BackendError, KvType, LoadOptions, Session, TokenId, Vocabulary};
use edgebench_core::quality::{self, PositionQuality, QualitySummary};
use edgebench_core::quant::Quant;
use edgebench_core::scenario::BackendKind;
use edgebench_core::{Case, ModelEntry};

use super::{Inputs, case_error};
use crate::error::RunError;

/// A quality pass that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRun {
    pub summary: QualitySummary,
    /// What the candidate was compared with, e.g. `llama_cpp f16/f16`.
    pub reference: String,
    /// The quant whose file was the reference (weight quantizations).
    pub reference_quant: Option<Quant>,
    /// The text's path as the scenario names it, and the sha256 of its bytes.
    pub corpus: String,
    pub corpus_sha256: String,
    /// Tokens per chunk and chunks scored.
    pub context: u32,
    pub chunks: u32,
    /// Wall time of the pass (both configurations, loads included).
    pub seconds: f64,
}

/// The reference configuration for `options`: the same load on llama.cpp with an f16 cache and
/// flash attention off.
#[must_use]
pub fn reference_options(options: &LoadOptions) -> LoadOptions {
    LoadOptions {
        type_k: KvType::F16,
        type_v: KvType::F16,
        flash_attention: false,
        ..options.clone()
    }
}

/// Whether `options` already are the reference's (f16 cache, no flash attention).
#[must_use]
pub fn is_reference(options: &LoadOptions) -> bool {
    options.type_k == KvType::F16 && options.type_v == KvType::F16 && !options.flash_attention
}

/// The options one quality session loads with: one sequence holding one chunk.
pub fn chunk_options(options: &LoadOptions, context: u32) -> LoadOptions {
    LoadOptions {
        context: options.context.max(context),
        max_sequences: 1,
        positions_needed: context,
        continues_prefill: false,
        ..options.clone()
    }
}

/// Runs the quality pass of `case` (its scenario has a `[quality]` table); `Ok(None)` for a
/// synthetic twin, whose random weights give no quality to measure.
pub fn run(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
    candidate: &LoadOptions,
    vocabulary: &dyn Vocabulary,
) -> Result<Option<QualityRun>, RunError> {
    let Some(q) = case.scenario.quality.as_ref() else {
        return Ok(None);
    };
    if entry.accuracy_refusal().is_some() {
        return Ok(None);
    }
    // The reference configuration itself (the KV baseline, or the reference quant's file):
    // its logits are the reference's, bit for bit (llama.cpp on the CPU is deterministic,
    // tests/it/quality.rs checks it), so the pass would only spend a minute measuring zero.
    let same_file = q.reference_quant.is_none_or(|r| r == case.quant);
    let same_cache = q.reference_quant.is_some() || is_reference(candidate);
    if case.backend == BackendKind::LlamaCpp && same_file && same_cache {
        return Ok(None);
    }
    let start = Instant::now();
    let path = inputs.root.join(&q.corpus);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| case_error(case, format!("[quality] corpus {}: {e}", path.display())))?;
    let max_chunks = if inputs.mode.smoke {
        1
    } else {
        q.chunks.map_or(usize::MAX, |n| n as usize)
    };
    let engine =
        crate::engines::engine(case.backend).map_err(|e| case_error(case, e.to_string()))?;
    let candidate = chunk_options(candidate, q.context);
    // Weight quantizations: another file of the model, the same cache. KV variants: the same
    // file, an f16 cache.
    let (reference_path, reference) = match q.reference_quant {
        Some(quant) => {
            let file = entry.file(quant).ok_or_else(|| {
                case_error(
                    case,
                    format!("[quality] model `{}` has no `{quant}` file", entry.id),
                )
            })?;
            (
                crate::paths::models_dir(inputs.root).join(&file.path),
                candidate.clone(),
            )
        }
        None => (
            model_path.to_path_buf(),
            chunk_options(&reference_options(&candidate), q.context),
        ),
    };
    let (summary, chunks) = measure_text_between(
        engine,
        model_path,
        &candidate,
        &reference_path,
        &reference,
        vocabulary,
        &text,
        q.context,
        max_chunks,
    )
    .map_err(|e| match e {
        TextError::Run(e) => e,
        other => case_error(
            case,
            format!("[quality] corpus {}: {other}", path.display()),
        ),
    })?;
    Ok(Some(QualityRun {
        summary,
        reference: format!(
            "llama_cpp {}{}/{}",
            q.reference_quant
                .as_ref()
                .map_or(String::new(), |quant| format!("{quant} file, cache ")),
            reference.type_k.as_str(),
            reference.type_v.as_str()
        ),
        reference_quant: q.reference_quant,
        corpus: q.corpus.clone(),
        corpus_sha256: edgebench_core::sha256_hex(text.as_bytes()),
        context: q.context,
        chunks,
        seconds: start.elapsed().as_secs_f64(),
    }))
}

/// Why a text could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("it holds fewer than {0} tokens: not one chunk")]
    TooShort(u32),
    #[error("no position was scored")]
    NothingScored,
    #[error("{0}")]
    Quality(quality::QualityError),
}

/// `text` fed teacher-forced through `candidate` on `engine` (the model at `model_path`) and
/// `reference` on llama.cpp (the model at `reference_path`: the same file for KV variants, the
/// F16 file for a weight quantization), in chunks of `context` tokens (at most `max_chunks`):
/// the summary and the chunks scored.
#[allow(clippy::too_many_arguments)] // each is one independent choice of the measurement
pub fn measure_text_between(
    engine: &dyn edgebench_backend::Backend,
    model_path: &Path,
    candidate: &LoadOptions,
    reference_path: &Path,
    reference: &LoadOptions,
    vocabulary: &dyn Vocabulary,
    text: &str,
    context: u32,
    max_chunks: usize,
) -> Result<(QualitySummary, u32), TextError> {
    let chunks = corpus_chunks(vocabulary, text, context, max_chunks).map_err(RunError::from)?;
    if chunks.is_empty() {
        return Err(TextError::TooShort(context));
    }
    let llama = crate::engines::engine(BackendKind::LlamaCpp).map_err(RunError::Backend)?;
    let mut candidate_session = engine.load(model_path, candidate).map_err(RunError::from)?;
    let mut reference_session = llama
        .load(reference_path, reference)
        .map_err(RunError::from)?;
    let positions = compare(
        reference_session.as_mut(),
        candidate_session.as_mut(),
        &chunks,
    )
    .map_err(|e| match e {
        CompareError::Backend(b) => TextError::Run(RunError::Backend(b)),
        CompareError::Quality(q) => TextError::Quality(q),
    })?;
    let summary = quality::summarize(&positions).ok_or(TextError::NothingScored)?;
    Ok((summary, chunks.len() as u32))
}

/// The text tokenized once by the reference vocabulary and cut as llama-perplexity cuts it.
/// As llama-perplexity does: the whole text with BOS first (when the model adds one), then
/// every chunk's first token replaced by BOS.
pub fn corpus_chunks(
    vocabulary: &dyn Vocabulary,
    text: &str,
    context: u32,
    max_chunks: usize,
) -> Result<Vec<Vec<TokenId>>, BackendError> {
    let tokens = vocabulary.tokenize(text, true)?;
    // A model that adds BOS puts it first in an empty text.
    let bos = vocabulary.tokenize("", true)?.first().copied();
    Ok(quality::chunks(&tokens, context as usize, bos, max_chunks))
}

/// Why a comparison stopped.
#[derive(Debug)]
pub enum CompareError {
    Backend(BackendError),
    Quality(quality::QualityError),
}

impl From<BackendError> for CompareError {
    fn from(e: BackendError) -> Self {
        Self::Backend(e)
    }
}

/// Every scored position of every chunk, reference against candidate. The reference's logits
/// of one chunk are held (positions × vocabulary floats), the candidate's streamed past them.
pub fn compare(
    reference: &mut dyn Session,
    candidate: &mut dyn Session,
    chunks: &[Vec<TokenId>],
) -> Result<Vec<PositionQuality>, CompareError> {
    let mut out = Vec::new();
    for chunk in chunks {
        let first = quality::first_scored(chunk.len());
        let mut held: Vec<f32> = Vec::new();
        let mut vocabulary = 0;
        reference.teacher_forced(0, chunk, first, &mut |_, logits| {
            vocabulary = logits.len();
            held.extend_from_slice(logits);
            Ok(())
        })?;
        let mut failure = None;
        candidate.teacher_forced(0, chunk, first, &mut |j, logits| {
            let row = j - first;
            let reference = &held[row * vocabulary..(row + 1) * vocabulary];
            let next = usize::try_from(chunk[j + 1]).unwrap_or(usize::MAX);
            match quality::compare_position(reference, logits, next) {
                Ok(p) => out.push(p),
                Err(e) => failure = failure.take().or(Some(e)),
            }
            Ok(())
        })?;
        if let Some(e) = failure {
            return Err(CompareError::Quality(e));
        }
    }
    Ok(out)
}
