//! The streaming GGUF writer: the header and tensor table are laid out first (every tensor's
//! size is known from its shape and type), then tensor data is generated chunk by chunk on
//! every core and written in file order by one writer thread that also hashes it. Memory stays at
//! a few chunks whatever the model's size (a 7B twin is written in well under 1 GiB).
//!
//! Each chunk's random values come from a generator seeded by (seed, tensor, chunk), so the
//! bytes never depend on the number of threads or on scheduling.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::sync_channel;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use crate::rng::Rng;
use crate::{Kind, Spec, TwinError};

/// GGUF's default alignment (no `general.alignment` key is written).
const ALIGNMENT: u64 = 32;
/// Values generated per chunk (8 MiB of f32): large enough to keep threads busy, small enough
/// that a few chunks in flight cost little memory.
const CHUNK_VALUES: usize = 1 << 21;

/// One tensor as laid out in the file.
pub(crate) struct Placed {
    pub dtype: GgmlDType,
    pub std: f32,
    /// Bytes of data, before the padding to [`ALIGNMENT`].
    pub bytes: u64,
}

fn pad(len: u64) -> u64 {
    (ALIGNMENT - len % ALIGNMENT) % ALIGNMENT
}

/// GGUF type ids (ggml's `ggml_type`) of the storage types twins use.
fn ggml_type_id(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        // The recipe chooses only the types above; an id no ggml type has makes every GGUF
        // reader (ours included) refuse the file instead of misreading it.
        _ => u32::MAX,
    }
}

pub(crate) fn data_bytes(shape: &[usize], dtype: GgmlDType) -> u64 {
    let n: usize = shape.iter().product();
    (n / dtype.block_size() * dtype.type_size()) as u64
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// GGUF's metadata value type ids.
fn value_type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array(items) => {
            // An empty array still needs an element type; u32 is as good as any.
            out.extend_from_slice(&items.first().map_or(4, value_type_id).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
    }
}

/// The file up to the first tensor's data: magic, version 3, counts, metadata, tensor table,
/// padding.
pub(crate) fn header(metadata: &[(String, Value)], specs: &[Spec], placed: &[Placed]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(specs.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        put_str(&mut out, key);
        out.extend_from_slice(&value_type_id(value).to_le_bytes());
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    for (s, p) in specs.iter().zip(placed) {
        put_str(&mut out, &s.name);
        out.extend_from_slice(&(s.shape.len() as u32).to_le_bytes());
        // GGUF lists dimensions innermost first (ne0 = columns).
        for dim in s.shape.iter().rev() {
            out.extend_from_slice(&(*dim as u64).to_le_bytes());
        }
        out.extend_from_slice(&ggml_type_id(p.dtype).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += p.bytes + pad(p.bytes);
    }
    let padding = pad(out.len() as u64) as usize;
    out.resize(out.len() + padding, 0);
    out
}

/// Total file size for a header and its tensors.
pub(crate) fn file_size(header: &[u8], placed: &[Placed]) -> u64 {
    header.len() as u64 + placed.iter().map(|p| p.bytes + pad(p.bytes)).sum::<u64>()
}

/// One unit of work: rows `rows` of tensor `tensor`, the `chunk`-th of that tensor.
#[derive(Clone, Copy)]
struct Chunk {
    tensor: usize,
    chunk: usize,
    rows: usize,
    last: bool,
}

fn chunks(specs: &[Spec]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (tensor, s) in specs.iter().enumerate() {
        let (rows, cols) = rows_cols(s);
        let per = (CHUNK_VALUES / cols.max(1)).max(1);
        let n = rows.div_ceil(per);
        for chunk in 0..n {
            out.push(Chunk {
                tensor,
                chunk,
                rows: per.min(rows - chunk * per),
                last: chunk + 1 == n,
            });
        }
    }
    out
}

fn rows_cols(s: &Spec) -> (usize, usize) {
    match s.shape.as_slice() {
        [len] => (1, *len),
        [rows, cols] => (*rows, *cols),
        other => (other.iter().product(), 1),
    }
}

fn chunk_bytes(
    seed: u64,
    specs: &[Spec],
    placed: &[Placed],
    c: Chunk,
) -> Result<Vec<u8>, TwinError> {
    let (s, p) = (&specs[c.tensor], &placed[c.tensor]);
    let (_, cols) = rows_cols(s);
    let n = c.rows * cols;
    let mut rng = Rng::for_chunk(seed, c.tensor, c.chunk);
    if crate::kblocks::generated(p.dtype) {
        let mut bytes = crate::kblocks::blocks(
            p.dtype,
            n / p.dtype.block_size(),
            p.std,
            crate::kblocks::scale_log2_std(&s.name),
            &mut rng,
        );
        if c.last {
            bytes.resize(bytes.len() + pad(p.bytes) as usize, 0);
        }
        return Ok(bytes);
    }
    let values: Vec<f32> = match s.kind {
        Kind::Norm => vec![1.0; n],
        Kind::Bias => (0..n)
            .map(|_| rng.normal(crate::recipe::BIAS_STD))
            .collect(),
        Kind::Matrix(_) => (0..n).map(|_| rng.normal(p.std)).collect(),
    };
    let mut bytes = if p.dtype == GgmlDType::F32 {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    } else {
        let err = |source| TwinError::Tensor {
            name: s.name.clone(),
            source,
        };
        let t = Tensor::from_vec(values, (c.rows, cols), &Device::Cpu).map_err(err)?;
        let q = QTensor::quantize(&t, p.dtype).map_err(err)?;
        q.data().map_err(err)?.into_owned()
    };
    if c.last {
        bytes.resize(bytes.len() + pad(p.bytes) as usize, 0);
    }
    Ok(bytes)
}

/// Progress: bytes written so far and the file's total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Writes header then tensor data to `tmp`, returning the file's sha256 and length.
pub(crate) fn write_file(
    tmp: &Path,
    header: &[u8],
    specs: &[Spec],
    placed: &[Placed],
    seed: u64,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(String, u64), TwinError> {
    let io = |source| TwinError::Io {
        path: tmp.display().to_string(),
        source,
    };
    let total = file_size(header, placed);
    let file = std::fs::File::create(tmp).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    out.write_all(header).map_err(io)?;
    hash.update(header);
    let mut written = header.len() as u64;
    let work = chunks(specs);
    let threads = threads.max(1);
    let wave = threads * 2;
    let sha256 = std::thread::scope(|scope| -> Result<String, TwinError> {
        // One wave in flight while the next is generated: generation never waits on the disk.
        let (tx, rx) = sync_channel::<Vec<Vec<u8>>>(1);
        let writer = scope.spawn(move || -> Result<String, std::io::Error> {
            for wave in rx {
                for bytes in wave {
                    out.write_all(&bytes)?;
                    hash.update(&bytes);
                    written += bytes.len() as u64;
                    if let Some(p) = progress {
                        p(written, total);
                    }
                }
            }
            out.flush()?;
            Ok(hex(&hash.finalize()))
        });
        for items in work.chunks(wave) {
            let mut slots: Vec<Option<Result<Vec<u8>, TwinError>>> =
                (0..items.len()).map(|_| None).collect();
            std::thread::scope(|inner| {
                let handles: Vec<_> = (0..threads.min(items.len()))
                    .map(|t| {
                        inner.spawn(move || {
                            items
                                .iter()
                                .enumerate()
                                .skip(t)
                                .step_by(threads)
                                .map(|(i, c)| (i, chunk_bytes(seed, specs, placed, *c)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    for (i, r) in h.join().unwrap_or_default() {
                        slots[i] = Some(r);
                    }
                }
            });
            let mut bytes = Vec::with_capacity(items.len());
            for (slot, c) in slots.into_iter().zip(items) {
                match slot {
                    Some(Ok(b)) => bytes.push(b),
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(TwinError::Worker(specs[c.tensor].name.clone()));
                    }
                }
            }
            if tx.send(bytes).is_err() {
                // The writer stopped: its error is reported below.
                break;
            }
        }
        drop(tx);
        match writer.join() {
            Ok(Ok(sha256)) => Ok(sha256),
            Ok(Err(e)) => Err(io(e)),
            Err(_) => Err(TwinError::Worker("the file writer".into())),
        }
    })?;
    Ok((sha256, total))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file already on disk, read in 8 MiB pieces.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}
