//! A random-weight copy of any GGUF file (`cargo xtask models twin-of`): the source's header
//! (metadata, tokenizer, chat template, tensor table) copied byte for byte, and every tensor's
//! data replaced by seeded random blocks of the same storage type, scaled as a model is
//! initialised ([`crate::recipe`]'s rules). llama.cpp then loads the same graph with the same
//! kernels over the same bytes per token: what the twin-vs-real fidelity cases measure.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use candle_core::quantized::GgmlDType;
use half::{bf16, f16};
use sha2::{Digest, Sha256};

use crate::rng::Rng;
use crate::{Progress, TwinError, WRITER_VERSION, Written, kblocks, recipe, record_path};

/// Values (F32/F16) or blocks (quantized types) generated per random stream.
const CHUNK: usize = 1 << 16;

/// candle's name for the ggml types this writer generates.
fn dtype_of(ggml_type: u32) -> Option<GgmlDType> {
    Some(match ggml_type {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        30 => GgmlDType::BF16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        _ => return None,
    })
}

/// What a tensor's random values look like, from its llama.cpp name and shape.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fill {
    /// Norm weights and rope factors: 1.0, as a freshly initialised model has them.
    Ones,
    /// Mean 0 and this spread.
    Spread(f32),
}

fn fill(name: &str, dims: &[u64], hidden: u64, layers: u64) -> Fill {
    let fan_in = dims.first().copied().unwrap_or(1).max(1) as f32;
    let unit = 1.0 / fan_in.sqrt();
    if name.ends_with(".bias") {
        Fill::Spread(recipe::BIAS_STD)
    } else if dims.len() == 1 {
        Fill::Ones
    } else if name.starts_with("token_embd") || name.starts_with("output.") {
        Fill::Spread(1.0 / (hidden.max(1) as f32).sqrt())
    } else if name.ends_with("attn_output.weight") || name.ends_with("ffn_down.weight") {
        Fill::Spread(unit / (2.0 * layers.max(1) as f32).sqrt())
    } else {
        Fill::Spread(unit)
    }
}

/// `n` values' worth of data of `dtype` (whole blocks), filled as `fill` says; a quantized
/// type's block scales spread by `scale_log2_std`.
fn data(dtype: GgmlDType, n: usize, fill: Fill, scale_log2_std: f32, rng: &mut Rng) -> Vec<u8> {
    let value = |rng: &mut Rng| match fill {
        Fill::Ones => 1.0,
        Fill::Spread(std) => rng.normal(std),
    };
    match dtype {
        GgmlDType::F32 => (0..n).flat_map(|_| value(rng).to_le_bytes()).collect(),
        GgmlDType::F16 => (0..n)
            .flat_map(|_| f16::from_f32(value(rng)).to_le_bytes())
            .collect(),
        GgmlDType::BF16 => (0..n)
            .flat_map(|_| bf16::from_f32(value(rng)).to_le_bytes())
            .collect(),
        // A quantized norm is not a thing real files hold; give it the unit spread anyway.
        _ => {
            let std = match fill {
                Fill::Ones => 1.0,
                Fill::Spread(s) => s,
            };
            kblocks::blocks(dtype, n / dtype.block_size(), std, scale_log2_std, rng)
        }
    }
}

/// What identifies the bytes a twin-of produces: the writer version, the seed and the source's
/// header (its metadata and tensor table).
fn recipe_id(header: &[u8], seed: u64) -> String {
    let mut id = Vec::with_capacity(header.len() + 12);
    id.extend_from_slice(&WRITER_VERSION.to_le_bytes());
    id.extend_from_slice(&seed.to_le_bytes());
    id.extend_from_slice(header);
    edgebench_core::sha256_hex(&id)
}

fn read_header(source: &Path, summary: &edgebench_gguf::Summary) -> Result<Vec<u8>, TwinError> {
    let io = |e| TwinError::Io {
        path: source.display().to_string(),
        source: e,
    };
    let mut header = vec![0u8; usize::try_from(summary.data_offset).unwrap_or(usize::MAX)];
    std::fs::File::open(source)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(io)?;
    Ok(header)
}

/// Writes a random-weight copy of the GGUF at `source` to `dest` (atomically) and records its
/// sha256 and recipe beside it; reuses `dest` when its record names this recipe and its hash
/// matches.
pub fn ensure_twin_of(
    source: &Path,
    dest: &Path,
    seed: u64,
    progress: Option<Progress<'_>>,
) -> Result<Written, TwinError> {
    let started = Instant::now();
    let summary = edgebench_gguf::validate_file(source).map_err(|e| TwinError::Source {
        path: source.display().to_string(),
        message: e.to_string(),
    })?;
    let header = read_header(source, &summary)?;
    let recipe = recipe_id(&header, seed);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TwinError::Io { path, source }
    };
    let source_len = std::fs::metadata(source).map_err(io(source))?.len();
    if let Ok(record) = std::fs::read_to_string(record_path(dest)) {
        let field = |key: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        if field("recipe ").as_deref() == Some(recipe.as_str())
            && std::fs::metadata(dest).is_ok_and(|m| m.len() == source_len)
            && let Some(sha) = field("sha256 ")
            && crate::stream::sha256_file(dest).map_err(io(dest))? == sha
        {
            return Ok(Written {
                sha256: sha,
                bytes: source_len,
                reused: true,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }
    let hidden = arch_u64(&summary, "embedding_length");
    let layers = arch_u64(&summary, "block_count");
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = dest.with_extension("gguf.partial");
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut out = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            written: 0,
        };
        out.write_all(&header).map_err(io(&tmp))?;
        for (index, t) in summary.tensors.iter().enumerate() {
            let dtype = dtype_of(t.ggml_type).ok_or_else(|| TwinError::SourceType {
                tensor: t.name.clone(),
                ggml_type: t.ggml_type,
            })?;
            let n = usize::try_from(t.dims.iter().product::<u64>()).unwrap_or(usize::MAX);
            let fill = fill(&t.name, &t.dims, hidden, layers);
            let scale_log2_std = kblocks::scale_log2_std(&t.name);
            let per_chunk = CHUNK * dtype.block_size();
            let mut done = 0;
            let mut chunk = 0;
            while done < n {
                let take = per_chunk.min(n - done);
                let mut rng = Rng::for_chunk(seed, index, chunk);
                out.write_all(&data(dtype, take, fill, scale_log2_std, &mut rng))
                    .map_err(io(&tmp))?;
                done += take;
                chunk += 1;
                if let Some(p) = progress {
                    p(out.written, source_len);
                }
            }
            if index + 1 < summary.tensors.len() {
                let padding =
                    (summary.alignment - out.written % summary.alignment) % summary.alignment;
                out.write_all(&vec![0u8; padding as usize])
                    .map_err(io(&tmp))?;
            }
        }
        // The last tensor's padding, if the source has it: same size as the source.
        if out.written < source_len {
            out.write_all(&vec![0u8; (source_len - out.written) as usize])
                .map_err(io(&tmp))?;
        }
        out.inner.flush().map_err(io(&tmp))?;
        Ok::<_, TwinError>((hex_digest(out.hasher), out.written))
    })();
    let (sha256, bytes) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, dest).map_err(io(dest))?;
    std::fs::write(
        record_path(dest),
        format!(
            "sha256 {sha256}\nrecipe {recipe}\ntwin-of {}\n",
            source.display()
        ),
    )
    .map_err(io(dest))?;
    Ok(Written {
        sha256,
        bytes,
        reused: false,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `<arch>.<key>` from the source's metadata, 1 when absent.
fn arch_u64(summary: &edgebench_gguf::Summary, key: &str) -> u64 {
    summary
        .architecture
        .as_deref()
        .and_then(|arch| summary.get(&format!("{arch}.{key}")))
        .and_then(edgebench_gguf::MetaValue::as_u64)
        .unwrap_or(1)
}

fn hex_digest(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_get_the_scales_models_are_initialised_with() {
        assert_eq!(fill("blk.0.attn_norm.weight", &[576], 576, 30), Fill::Ones);
        assert_eq!(
            fill("rope_factors_long.weight", &[48], 3072, 32),
            Fill::Ones
        );
        assert_eq!(
            fill("blk.0.attn_q.bias", &[896], 896, 24),
            Fill::Spread(recipe::BIAS_STD)
        );
        let Fill::Spread(q) = fill("blk.0.attn_q.weight", &[576, 576], 576, 30) else {
            panic!("a matrix has a spread")
        };
        let Fill::Spread(down) = fill("blk.0.ffn_down.weight", &[1536, 576], 576, 30) else {
            panic!("a matrix has a spread")
        };
        assert!((q - 1.0 / 24.0).abs() < 1e-6, "{q}");
        assert!(down < 1.0 / 1536f32.sqrt(), "{down}");
        assert_eq!(
            fill("token_embd.weight", &[576, 49152], 576, 30),
            Fill::Spread(1.0 / 24.0)
        );
    }

    #[test]
    fn every_generated_type_has_its_ggml_block_size() {
        for ty in [0u32, 1, 30, 2, 3, 6, 7, 8, 12, 13, 14] {
            let dtype = dtype_of(ty).expect("generated");
            let (block, bytes) = edgebench_gguf::type_layout(ty).expect("known");
            let n = 4 * block as usize;
            let mut rng = Rng::for_chunk(1, 0, 0);
            let d = data(
                dtype,
                n,
                Fill::Spread(0.02),
                kblocks::SCALE_LOG2_STD,
                &mut rng,
            );
            assert_eq!(d.len() as u64, 4 * bytes, "type {ty}");
        }
        assert!(dtype_of(16).is_none(), "IQ2_XXS is not generated");
    }
}
