//! Synthetic twins: GGUF files written by edgebench itself, deterministic from a seed, in the exact
//! tensor layout llama.cpp expects for the real model's architecture (`qwen2` for MiMo-7B, `phi3`
//! for Phi-4-mini), scaled down by `edgebench_core::twin::scaled`.
//!
//! Weights are seeded pseudo-random values (std ≈ 0.02), so a twin's speed is meaningful and its
//! text is not. Same seed and config → byte-identical file.

mod tokenizer;

use std::io::{BufWriter, Write};
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use edgebench_core::registry::Architecture;

pub use tokenizer::{ByteBpe, build_tokenizer};

#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    #[error("unsupported twin architecture `{0}` (supported: qwen2, phi3, llama)")]
    Architecture(String),
    #[error("unsupported twin quantization `{0}` (supported: F16, Q8_0, Q4_0)")]
    Quant(String),
    #[error("cannot build tensor `{name}`: {source}")]
    Tensor {
        name: String,
        source: candle_core::Error,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write GGUF {path}: {source}")]
    Gguf {
        path: String,
        source: candle_core::Error,
    },
}

/// Quantizations twins are written in.
pub const TWIN_QUANTS: &[&str] = &["F16", "Q8_0", "Q4_0"];

fn dtype(quant: &str) -> Result<GgmlDType, TwinError> {
    match quant.to_ascii_uppercase().as_str() {
        "F16" => Ok(GgmlDType::F16),
        "Q8_0" => Ok(GgmlDType::Q8_0),
        "Q4_0" => Ok(GgmlDType::Q4_0),
        other => Err(TwinError::Quant(other.to_owned())),
    }
}

/// SplitMix64: tiny, fast, and stable across platforms and crate versions.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Roughly normal (sum of uniforms), mean 0, standard deviation `std`.
    fn normal(&mut self, std: f32) -> f32 {
        let mut s = 0.0f32;
        for _ in 0..4 {
            s += (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        }
        (s - 2.0) * std * 1.732_050_8
    }
}

/// One tensor to write: name, shape in candle order (rows, cols), and whether it stays F32.
struct Spec {
    name: String,
    shape: Vec<usize>,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Matrix,
    Norm,
    Bias,
}

fn specs(a: &Architecture) -> Result<Vec<Spec>, TwinError> {
    let (h, f, v) = (a.hidden as usize, a.ffn as usize, a.vocab as usize);
    let q = (a.heads * a.head_dim) as usize;
    let kv = (a.kv_heads * a.head_dim) as usize;
    let m = |name: String, shape: Vec<usize>| Spec {
        name,
        shape,
        kind: Kind::Matrix,
    };
    let n = |name: String| Spec {
        name,
        shape: vec![h],
        kind: Kind::Norm,
    };
    let b = |name: String, len: usize| Spec {
        name,
        shape: vec![len],
        kind: Kind::Bias,
    };
    let mut out = vec![
        m("token_embd.weight".into(), vec![v, h]),
        n("output_norm.weight".into()),
    ];
    if !a.tied_embeddings {
        out.push(m("output.weight".into(), vec![v, h]));
    }
    for i in 0..a.layers {
        let p = |s: &str| format!("blk.{i}.{s}");
        out.push(n(p("attn_norm.weight")));
        match a.gguf_arch.as_str() {
            "qwen2" | "llama" => {
                out.push(m(p("attn_q.weight"), vec![q, h]));
                out.push(m(p("attn_k.weight"), vec![kv, h]));
                out.push(m(p("attn_v.weight"), vec![kv, h]));
                if a.qkv_bias {
                    out.push(b(p("attn_q.bias"), q));
                    out.push(b(p("attn_k.bias"), kv));
                    out.push(b(p("attn_v.bias"), kv));
                }
                out.push(m(p("attn_output.weight"), vec![h, q]));
                out.push(n(p("ffn_norm.weight")));
                out.push(m(p("ffn_gate.weight"), vec![f, h]));
                out.push(m(p("ffn_up.weight"), vec![f, h]));
                out.push(m(p("ffn_down.weight"), vec![h, f]));
            }
            "phi3" => {
                // Fused q/k/v and fused gate/up, as llama.cpp's phi3 graph expects.
                out.push(m(p("attn_qkv.weight"), vec![q + 2 * kv, h]));
                out.push(m(p("attn_output.weight"), vec![h, q]));
                out.push(n(p("ffn_norm.weight")));
                out.push(m(p("ffn_up.weight"), vec![2 * f, h]));
                out.push(m(p("ffn_down.weight"), vec![h, f]));
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

fn metadata(a: &Architecture, name: &str, tok: &ByteBpe, quant: &str) -> Vec<(String, Value)> {
    let arch = a.gguf_arch.as_str();
    let k = |s: &str| format!("{arch}.{s}");
    let file_type = match quant {
        "F16" => 1u32,
        "Q8_0" => 7,
        _ => 2,
    };
    let mut md = vec![
        (
            "general.architecture".to_owned(),
            Value::String(arch.to_owned()),
        ),
        ("general.name".to_owned(), Value::String(name.to_owned())),
        ("general.file_type".to_owned(), Value::U32(file_type)),
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
    md.extend(tok.gguf_metadata());
    md
}

/// Writes the twin GGUF for architecture `a` at `quant` to `path` (atomically, via a temp file).
pub fn write_twin(
    path: &Path,
    a: &Architecture,
    name: &str,
    quant: &str,
    seed: u64,
    tok: &ByteBpe,
) -> Result<(), TwinError> {
    let dtype = dtype(quant)?;
    let specs = specs(a)?;
    let mut rng = Rng(seed);
    let mut tensors = Vec::with_capacity(specs.len());
    for s in &specs {
        let len: usize = s.shape.iter().product();
        let data: Vec<f32> = match s.kind {
            Kind::Norm => vec![1.0; len],
            Kind::Bias => (0..len).map(|_| rng.normal(0.01)).collect(),
            Kind::Matrix => (0..len).map(|_| rng.normal(0.02)).collect(),
        };
        let err = |source| TwinError::Tensor {
            name: s.name.clone(),
            source,
        };
        let t = Tensor::from_vec(data, s.shape.as_slice(), &Device::Cpu).map_err(err)?;
        let q = if s.kind == Kind::Matrix {
            QTensor::quantize(&t, dtype)
        } else {
            QTensor::quantize(&t, GgmlDType::F32)
        };
        tensors.push((s.name.clone(), q.map_err(err)?));
    }
    let md = metadata(a, name, tok, &quant.to_ascii_uppercase());
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let display = path.display().to_string();
    let io = |source| TwinError::Io {
        path: display.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("gguf.partial");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::new(file);
    gguf_file::write(&mut w, &md_refs, &t_refs).map_err(|source| TwinError::Gguf {
        path: display.clone(),
        source,
    })?;
    w.flush().map_err(io)?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests;
