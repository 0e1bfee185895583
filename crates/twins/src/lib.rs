//! Synthetic twins: GGUF files written by edgebench itself, deterministic from a seed, in the exact
//! tensor layout llama.cpp expects for the real model's architecture (`qwen2` for MiMo-7B, `phi3`
//! for Phi-4-mini), scaled down by `edgebench_core::twin::scaled` or at full size.
//!
//! Weights are seeded pseudo-random values with per-role spreads (`recipe`), so a twin's speed is
//! meaningful and its text is not. Files are streamed to disk (`stream`): memory stays small
//! whatever the model's size. Same seed and config → byte-identical file, whatever the thread
//! count.

mod kblocks;
mod recipe;
mod rng;
mod stream;
mod tokenizer;
mod twin_of;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Value;
use edgebench_core::registry::Architecture;

use recipe::Role;
pub use recipe::{FileQuant, K_QUANTS, TWIN_QUANTS};
pub use stream::Progress;
pub use tokenizer::{ByteBpe, build_tokenizer};
pub use twin_of::ensure_twin_of;

/// Bumped whenever the bytes a recipe produces change, so a file written by older code is never
/// taken for a current one.
pub const WRITER_VERSION: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error("unsupported twin architecture `{0}` (supported: qwen2, phi3, llama)")]
    Architecture(String),
    #[error("unsupported twin quantization `{0}` (supported: F16, Q8_0, Q4_0, Q4_K_M)")]
    Quant(edgebench_core::quant::Quant),
    #[error(
        "{quant} stores `{tensor}` in blocks of {block} values, but its rows are {cols} wide \
         (k-quants need rows that are multiples of 256: full-size twins have them, 1/16 twins don't)"
    )]
    Blocks {
        quant: String,
        tensor: String,
        cols: usize,
        block: usize,
    },
    #[error("the twin tokenizer has {tokens} tokens, more than the vocabulary of {vocab}")]
    Vocabulary { tokens: u32, vocab: u32 },
    #[error("cannot build tensor `{name}`: {source}")]
    Tensor {
        name: String,
        source: candle_core::Error,
    },
    #[error("cannot copy {path}: {message}")]
    Source { path: String, message: String },
    #[error(
        "tensor `{tensor}` is stored as ggml type {ggml_type}, which the twin-of writer does not generate (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)"
    )]
    SourceType { tensor: String, ggml_type: u32 },
    #[error("a worker generating `{0}` stopped without a result")]
    Worker(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One tensor to write: name, shape in candle order (rows, cols), what it is, and its layer.
struct Spec {
    name: String,
    shape: Vec<usize>,
    kind: Kind,
    layer: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Matrix(Role),
    Norm,
    Bias,
}

fn specs(a: &Architecture) -> Result<Vec<Spec>, TwinError> {
    let (h, f, v) = (a.hidden as usize, a.ffn as usize, a.vocab as usize);
    let q = (a.heads * a.head_dim) as usize;
    let kv = (a.kv_heads * a.head_dim) as usize;
    let spec = |name: String, shape: Vec<usize>, kind: Kind, layer: u32| Spec {
        name,
        shape,
        kind,
        layer,
    };
    let mut out = vec![
        spec(
            "token_embd.weight".into(),
            vec![v, h],
            Kind::Matrix(Role::Embedding {
                tied: a.tied_embeddings,
            }),
            0,
        ),
        spec("output_norm.weight".into(), vec![h], Kind::Norm, 0),
    ];
    if !a.tied_embeddings {
        out.push(spec(
            "output.weight".into(),
            vec![v, h],
            Kind::Matrix(Role::Output),
            0,
        ));
    }
    for i in 0..a.layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        let m = |s: &str, shape: Vec<usize>, role: Role| spec(p(s), shape, Kind::Matrix(role), i);
        out.push(spec(p("attn_norm.weight"), vec![h], Kind::Norm, i));
        match a.gguf_arch.as_str() {
            "qwen2" | "llama" => {
                out.push(m("attn_q.weight", vec![q, h], Role::Query));
                out.push(m("attn_k.weight", vec![kv, h], Role::Key));
                out.push(m("attn_v.weight", vec![kv, h], Role::Value));
                if a.qkv_bias {
                    out.push(spec(p("attn_q.bias"), vec![q], Kind::Bias, i));
                    out.push(spec(p("attn_k.bias"), vec![kv], Kind::Bias, i));
                    out.push(spec(p("attn_v.bias"), vec![kv], Kind::Bias, i));
                }
                out.push(m("attn_output.weight", vec![h, q], Role::AttnOutput));
                out.push(spec(p("ffn_norm.weight"), vec![h], Kind::Norm, i));
                out.push(m("ffn_gate.weight", vec![f, h], Role::Gate));
                out.push(m("ffn_up.weight", vec![f, h], Role::Up));
                out.push(m("ffn_down.weight", vec![h, f], Role::Down));
            }
            "phi3" => {
                // Fused q/k/v and fused gate/up, as llama.cpp's phi3 graph expects.
                out.push(m("attn_qkv.weight", vec![q + 2 * kv, h], Role::Qkv));
                out.push(m("attn_output.weight", vec![h, q], Role::AttnOutput));
                out.push(spec(p("ffn_norm.weight"), vec![h], Kind::Norm, i));
                out.push(m("ffn_up.weight", vec![2 * f, h], Role::GateUp));
                out.push(m("ffn_down.weight", vec![h, f], Role::Down));
            }
            other => return Err(TwinError::Architecture(other.to_owned())),
        }
    }
    Ok(out)
}

/// Total number of weights the twin file holds (for checking against the projection).
pub fn element_count(a: &Architecture) -> Result<u64, TwinError> {
    Ok(specs(a)?
        .iter()
        .map(|s| s.shape.iter().product::<usize>() as u64)
        .sum())
}

fn metadata(a: &Architecture, name: &str, tok: &ByteBpe, quant: FileQuant) -> Vec<(String, Value)> {
    let arch = a.gguf_arch.as_str();
    let k = |s: &str| format!("{arch}.{s}");
    let mut md = vec![
        (
            "general.architecture".to_owned(),
            Value::String(arch.to_owned()),
        ),
        ("general.name".to_owned(), Value::String(name.to_owned())),
        (
            "general.file_type".to_owned(),
            Value::U32(quant.file_type()),
        ),
        (k("context_length"), Value::U32(a.context)),
        (k("embedding_length"), Value::U32(a.hidden)),
        (k("feed_forward_length"), Value::U32(a.ffn)),
        (k("block_count"), Value::U32(a.layers)),
        (k("attention.head_count"), Value::U32(a.heads)),
        (k("attention.head_count_kv"), Value::U32(a.kv_heads)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (k("rope.freq_base"), Value::F32(a.rope_theta as f32)),
    ];
    if arch == "phi3" {
        let rot = (f64::from(a.head_dim) * a.partial_rotary).round() as u32;
        md.push((k("rope.dimension_count"), Value::U32(rot)));
        md.push((
            k("rope.scaling.original_context_length"),
            Value::U32(a.context),
        ));
    }
    md.extend(tok.gguf_metadata(a.vocab));
    md
}

/// A twin to write: the architecture, the name stored in the file, the quantization, the seed
/// and the tokenizer (padded to the architecture's vocabulary).
#[derive(Debug, Clone, Copy)]
pub struct Twin<'a> {
    pub arch: &'a Architecture,
    pub name: &'a str,
    pub quant: edgebench_core::quant::Quant,
    pub seed: u64,
    pub tokenizer: &'a ByteBpe,
}

/// A twin laid out: its tensors, their types and sizes, and the header bytes.
struct Layout {
    specs: Vec<Spec>,
    placed: Vec<stream::Placed>,
    header: Vec<u8>,
}

impl Twin<'_> {
    fn layout(&self) -> Result<Layout, TwinError> {
        let quant = FileQuant::new(self.quant)?;
        if self.tokenizer.vocab_size() > self.arch.vocab {
            return Err(TwinError::Vocabulary {
                tokens: self.tokenizer.vocab_size(),
                vocab: self.arch.vocab,
            });
        }
        let specs = specs(self.arch)?;
        let mut placed = Vec::with_capacity(specs.len());
        for s in &specs {
            let cols = *s.shape.last().unwrap_or(&1);
            let (dtype, std) = match s.kind {
                Kind::Matrix(role) => (
                    role.dtype(quant, s.layer, self.arch.layers),
                    role.std(cols, self.arch.layers, self.arch.hidden),
                ),
                Kind::Norm | Kind::Bias => (GgmlDType::F32, 0.0),
            };
            if cols % dtype.block_size() != 0 {
                return Err(TwinError::Blocks {
                    quant: self.quant.to_string(),
                    tensor: s.name.clone(),
                    cols,
                    block: dtype.block_size(),
                });
            }
            placed.push(stream::Placed {
                dtype,
                std,
                bytes: stream::data_bytes(&s.shape, dtype),
            });
        }
        let md = metadata(self.arch, self.name, self.tokenizer, quant);
        let header = stream::header(&md, &specs, &placed);
        Ok(Layout {
            specs,
            placed,
            header,
        })
    }

    /// The exact size of the file in bytes, known before writing (for the free-disk check).
    pub fn file_size(&self) -> Result<u64, TwinError> {
        let l = self.layout()?;
        Ok(stream::file_size(&l.header, &l.placed))
    }

    /// What identifies the bytes this twin produces: writer version, seed and the header (which
    /// holds the architecture, name, quantization, tokenizer and every tensor's type).
    fn recipe_id(&self, layout: &Layout) -> String {
        let mut id = Vec::new();
        id.extend_from_slice(&WRITER_VERSION.to_le_bytes());
        id.extend_from_slice(&self.seed.to_le_bytes());
        id.extend_from_slice(&layout.header);
        edgebench_core::sha256_hex(&id)
    }
}

/// How to write: threads generating data (output is identical for any count) and a progress
/// callback (bytes written, total).
#[derive(Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    pub threads: Option<usize>,
    pub progress: Option<Progress<'a>>,
}

impl std::fmt::Debug for WriteOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// What [`ensure_twin`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub sha256: String,
    pub bytes: u64,
    /// The file was already there with the recipe and hash recorded beside it.
    pub reused: bool,
    pub seconds: f64,
}

/// Where the sha256 and recipe of `path` are recorded.
#[must_use]
pub fn record_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// Writes `twin` to `path` (atomically, via a temporary file) and records its sha256 and recipe
/// beside it.
pub fn write_twin(
    path: &Path,
    twin: &Twin<'_>,
    opts: &WriteOptions<'_>,
) -> Result<Written, TwinError> {
    let started = Instant::now();
    let layout = twin.layout()?;
    let io = |source| TwinError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("gguf.partial");
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let written = stream::write_file(
        &tmp,
        &layout.header,
        &layout.specs,
        &layout.placed,
        twin.seed,
        threads,
        opts.progress,
    );
    let (sha256, bytes) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(io)?;
    let record = format!("sha256 {sha256}\nrecipe {}\n", twin.recipe_id(&layout));
    std::fs::write(record_path(path), record).map_err(io)?;
    Ok(Written {
        sha256,
        bytes,
        reused: false,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The file at `path` if it is this twin (the recipe recorded beside it is this one and the
/// file's sha256 is the one recorded), else writes it.
pub fn ensure_twin(
    path: &Path,
    twin: &Twin<'_>,
    opts: &WriteOptions<'_>,
) -> Result<Written, TwinError> {
    let started = Instant::now();
    if let Some(sha256) = recorded_match(path, twin)? {
        return Ok(Written {
            sha256,
            bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            reused: true,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    write_twin(path, twin, opts)
}

/// Whether the file at `path` is recorded as this twin and has its size (its hash is checked by
/// [`ensure_twin`]): what a plan of the writing to do can ask without reading gigabytes.
pub fn is_recorded(path: &Path, twin: &Twin<'_>) -> Result<bool, TwinError> {
    Ok(recorded(path, twin)?.is_some())
}

/// The recorded sha256 of `path` when its record names this twin's recipe and its size is this
/// twin's.
fn recorded(path: &Path, twin: &Twin<'_>) -> Result<Option<String>, TwinError> {
    let Ok(record) = std::fs::read_to_string(record_path(path)) else {
        return Ok(None);
    };
    let field = |key: &str| {
        record
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
    };
    let (Some(sha), Some(recipe)) = (field("sha256 "), field("recipe ")) else {
        return Ok(None);
    };
    let layout = twin.layout()?;
    if recipe != twin.recipe_id(&layout) || !path.exists() {
        return Ok(None);
    }
    // Same size first: a truncated file is rejected without reading gigabytes.
    let size = stream::file_size(&layout.header, &layout.placed);
    if std::fs::metadata(path).map_or(0, |m| m.len()) != size {
        return Ok(None);
    }
    Ok(Some(sha))
}

fn recorded_match(path: &Path, twin: &Twin<'_>) -> Result<Option<String>, TwinError> {
    let Some(sha) = recorded(path, twin)? else {
        return Ok(None);
    };
    let actual = stream::sha256_file(path).map_err(|source| TwinError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok((actual == sha).then_some(sha))
}

#[cfg(test)]
mod tests;
