//! The engines this build has, behind the `Backend` trait. This is the **only** module of the
//! pipeline that names an engine's own types (llama.cpp, candle, the HTTP client): everything
//! else asks a `&dyn Backend`. `tests/it/tidy.rs` guards it. The hybrid engine is not a
//! `Backend` of its own: it is an execution mode (`execute::hybrid`) over the on-device engine
//! (llama.cpp, which `engine(Hybrid)` answers with) and an HTTP endpoint ([`cloud`]).

use std::path::Path;

use edgebench_backend::{Backend, BackendError, BackendKind, Vocabulary};

/// The engine for `kind`, if this build has it (llama.cpp's backend can fail to start: the
/// error says why).
pub fn engine(kind: BackendKind) -> Result<&'static dyn Backend, BackendError> {
    match kind {
        BackendKind::LlamaCpp => edgebench_llama::LlamaCpp::global().map(|b| b as &dyn Backend),
        BackendKind::Candle => Ok(edgebench_candle::Candle::global() as &dyn Backend),
        BackendKind::Http => Ok(&HTTP as &dyn Backend),
        BackendKind::Hybrid => engine(BackendKind::LlamaCpp),
    }
}

/// The HTTP engine, with llama.cpp's reading of the GGUF vocabulary as its reference.
static HTTP: edgebench_http::Http = edgebench_http::Http::new(reference_vocabulary);

/// The HTTP engine's client, which the hybrid engine's cloud side drives request by request
/// (answers of any length, text in and out: not the token-step `Session`).
pub mod cloud {
    pub use edgebench_http::{Event, HttpError, Prompt, Remote, Request, public_url};

    /// A blocking client for `base_url` with `endpoint`'s timeouts and key.
    pub fn connect(
        base_url: &str,
        endpoint: &edgebench_core::scenario::Endpoint,
    ) -> Result<Remote, HttpError> {
        Remote::new(base_url, endpoint)
    }
}

/// Every engine this build can start, for the device fingerprint.
#[must_use]
pub fn available() -> Vec<&'static dyn Backend> {
    [
        BackendKind::LlamaCpp,
        BackendKind::Candle,
        BackendKind::Http,
    ]
    .into_iter()
    .filter_map(|k| engine(k).ok())
    .collect()
}

/// The tokenizer every engine's token ids come from: llama.cpp's, reading the GGUF's own
/// vocabulary (loaded without weights).
pub fn reference_vocabulary(model: &Path) -> Result<Box<dyn Vocabulary>, BackendError> {
    reference_vocabulary_for(model, None)
}

/// llama.cpp's own model loader on `path`, without the GGUF validator in front of it. Only for
/// the differential test's child process (`edgebench-gguf-probe`): on a malformed file it may
/// abort the process.
pub fn reference_loader(path: &Path) -> Result<(), BackendError> {
    edgebench_llama::LlamaCpp::global()?.unvalidated_load(path)
}

/// [`reference_vocabulary`] for a registry model, whose entry may name a built-in chat template
/// for a file that carries none (`models.toml`'s `chat_template`).
pub fn reference_vocabulary_for(
    model: &Path,
    chat_template: Option<&str>,
) -> Result<Box<dyn Vocabulary>, BackendError> {
    let llama = edgebench_llama::LlamaCpp::global()?;
    Ok(Box::new(
        llama.vocabulary_with_template(model, chat_template)?,
    ))
}

/// Writes a copy of `input` with its weights converted to `to` by llama.cpp's own quantizer
/// (`cargo xtask models quantize`).
pub fn quantize(input: &Path, output: &Path, to: &str, threads: u32) -> Result<(), BackendError> {
    edgebench_llama::LlamaCpp::global()?.quantize(input, output, to, threads)
}

/// The weight types [`quantize`] writes.
#[must_use]
pub fn quantize_types() -> Vec<&'static str> {
    edgebench_llama::QUANTIZE_TYPES
        .iter()
        .map(|t| t.0)
        .collect()
}

/// candle-transformers' own quantized model for `path`, as it ships, one greedy sequence: the
/// candle anchor's reference beside edgebench's candle engine (`edgebench paired`).
pub fn stock_candle(
    path: &Path,
    threads: u32,
) -> Result<Box<dyn edgebench_backend::Session>, BackendError> {
    Ok(Box::new(edgebench_candle::stock::StockSession::load(
        path, threads,
    )?))
}

/// Where candle's decode time goes: every weight matrix of `path` multiplied by one token's
/// activations with candle's kernel for its storage type, summed per type.
pub fn candle_matmul_profile(
    path: &Path,
    threads: u32,
    repetitions: usize,
) -> Result<Vec<edgebench_candle::stock::MatmulShare>, BackendError> {
    edgebench_candle::stock::matmul_profile(path, threads, repetitions)
}
