//! GGUF validation. llama.cpp `abort()`s or reads out of bounds on some malformed files, and
//! candle panics on others, so every model file passes through [`validate_file`] before an
//! engine sees it: magic, version, counts, every metadata entry and tensor-table entry within the
//! file, known tensor types, dimensions that multiply without overflow, and tensor data that is
//! aligned and lies inside the file. Only the header and tables are read, never the tensor data.
//!
//! Errors name the file (from [`validate_file`]) and the byte offset where the problem is.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// GGUF versions llama.cpp reads (1 is long gone).
pub const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];
/// Default data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's maximum tensor rank.
pub const MAX_DIMS: u32 = 4;
/// Array nesting deeper than this is refused (GGUF writers never nest more than once).
const MAX_ARRAY_DEPTH: u32 = 2;
/// The GGUF specification's longest key (its length is a `u16` in spirit: 65,535 bytes).
pub const MAX_KEY_BYTES: u64 = 65_535;
/// ggml's `GGML_MAX_NAME`: llama.cpp refuses a tensor name of this many bytes or more.
pub const MAX_TENSOR_NAME_BYTES: u64 = 64;
/// Longer metadata strings are checked and skipped, never held (a chat template is a few KiB).
pub const MAX_KEPT_STRING_BYTES: u64 = 1 << 20;

/// At most a few dozen characters of a name from the file, with its length when cut, so a
/// message about a huge or garbled name stays short.
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!(
            "{}… ({} bytes)",
            s.chars().take(MAX).collect::<String>(),
            s.len()
        )
    }
}

/// Pseudo-types for [`expected_type`]: an array of the given element type (`9 << 8 | element`).
const ARRAY_OF_STRING: u32 = 9 << 8 | 8;
const ARRAY_OF_F32: u32 = 9 << 8 | 6;
const ARRAY_OF_I32: u32 = 9 << 8 | 5;

/// The architecture families whose hyperparameters llama.cpp requires an RMS-norm epsilon for.
const RMS_NORM_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3", "mistral"];

/// What llama.cpp refuses a file without (`key not found in model`, `cannot find tokenizer
/// vocab`), and vocabulary arrays whose lengths disagree (it indexes the scores and token types
/// by token id). Checked once the metadata is read; `at` is where the metadata ends.
fn required_keys(
    metadata: &[(String, MetaValue)],
    architecture: Option<&str>,
    at: u64,
) -> Result<(), Defect> {
    let missing = |key: &str| Defect {
        offset: at,
        problem: format!(
            "the metadata has no `{}` (llama.cpp refuses the file without it)",
            shown(key)
        ),
    };
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let Some(arch) = architecture else {
        return Err(missing("general.architecture"));
    };
    if arch.is_empty() {
        return Err(missing("general.architecture"));
    }
    let mut required: Vec<String> = [
        "context_length",
        "embedding_length",
        "block_count",
        "attention.head_count",
    ]
    .iter()
    .map(|k| format!("{arch}.{k}"))
    .collect();
    if RMS_NORM_ARCHS.contains(&arch) {
        required.push(format!("{arch}.attention.layer_norm_rms_epsilon"));
    }
    required.push("tokenizer.ggml.model".into());
    required.push("tokenizer.ggml.tokens".into());
    for key in &required {
        if get(key).is_none() {
            return Err(missing(key));
        }
    }
    let len_of = |key: &str| match get(key) {
        Some(MetaValue::Array { len, .. }) => Some(*len),
        _ => None,
    };
    if let Some(tokens) = len_of("tokenizer.ggml.tokens") {
        for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
            if let Some(n) = len_of(key)
                && n != tokens
            {
                return Err(Defect {
                    offset: at,
                    problem: format!(
                        "`{key}` has {n} entries for {tokens} tokens (llama.cpp reads one per token)"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// GGUF value type names, for messages.
fn type_name(ty: u32) -> &'static str {
    match ty {
        0 => "u8",
        1 => "i8",
        2 => "u16",
        3 => "i16",
        4 => "u32",
        5 => "i32",
        6 => "f32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "u64",
        11 => "i64",
        12 => "f64",
        _ => "unknown",
    }
}

/// The type llama.cpp's typed getters demand of a key it reads (a key of another type makes
/// `llama_model_loader` refuse the file, or `gguf_get_val_u32` abort on `general.alignment`):
/// `Some((scalar type, whether an array of that type is accepted too))`. `{arch}` keys are
/// looked up after the architecture is known.
fn expected_type(key: &str, arch: Option<&str>) -> Option<(u32, bool)> {
    const U32: u32 = 4;
    const F32: u32 = 6;
    const STRING: u32 = 8;
    match key {
        "general.architecture" | "tokenizer.ggml.model" | "tokenizer.ggml.pre" => {
            return Some((STRING, false));
        }
        // Arrays llama.cpp asserts the element type of (GGML_ASSERT in llama-vocab.cpp).
        "tokenizer.ggml.tokens" | "tokenizer.ggml.merges" => return Some((ARRAY_OF_STRING, false)),
        "tokenizer.ggml.scores" => return Some((ARRAY_OF_F32, false)),
        "tokenizer.ggml.token_type" => return Some((ARRAY_OF_I32, false)),
        "general.alignment"
        | "tokenizer.ggml.bos_token_id"
        | "tokenizer.ggml.eos_token_id"
        | "tokenizer.ggml.unknown_token_id"
        | "tokenizer.ggml.padding_token_id" => return Some((U32, false)),
        _ => {}
    }
    let rest = key.strip_prefix(arch?)?.strip_prefix('.')?;
    Some(match rest {
        "context_length"
        | "embedding_length"
        | "block_count"
        | "attention.key_length"
        | "attention.value_length"
        | "rope.dimension_count"
        | "attention.sliding_window" => (U32, false),
        // Per-layer values may be arrays.
        "feed_forward_length" | "attention.head_count" | "attention.head_count_kv" => (U32, true),
        "attention.layer_norm_rms_epsilon" | "attention.layer_norm_epsilon" | "rope.freq_base" => {
            (F32, false)
        }
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {problem} at byte offset {offset}", path.display())]
    Invalid {
        path: PathBuf,
        offset: u64,
        problem: String,
    },
}

/// The problem and where, before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub offset: u64,
    pub problem: String,
}

/// What a valid file holds, as far as the validator looked.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata_count: u64,
    pub alignment: u64,
    /// Where tensor data starts (after the aligned header).
    pub data_offset: u64,
    /// Bytes of tensor data the table describes (the last tensor's end).
    pub data_bytes: u64,
    pub architecture: Option<String>,
    /// Every metadata entry in file order: scalars and strings as read, arrays by their length.
    pub metadata: Vec<(String, MetaValue)>,
    /// Every tensor's name, in table order.
    pub tensor_names: Vec<String>,
    /// Where the metadata ends and the tensor table begins.
    pub metadata_end: u64,
}

/// One metadata value as [`Summary`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// A string longer than [`MAX_KEPT_STRING_BYTES`]: its length only.
    LongText {
        len: u64,
    },
    /// An array: its element type and length (elements are checked, not kept).
    Array {
        element_type: u32,
        len: u64,
    },
}

impl MetaValue {
    /// The value as an unsigned integer, when it is a non-negative integer.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Unsigned(v) => Some(v),
            Self::Signed(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Float(v) => Some(v),
            Self::Unsigned(v) => Some(v as f64),
            Self::Signed(v) => Some(v as f64),
            _ => None,
        }
    }
}

impl Summary {
    /// The metadata value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// (elements per block, bytes per block) of a ggml tensor type, `None` when unknown.
#[must_use]
pub fn type_layout(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// A reader that knows its offset and the file's length, and refuses to read past the end.
struct Cursor<R> {
    inner: R,
    offset: u64,
    len: u64,
}

impl<R: Read> Cursor<R> {
    fn defect(&self, problem: impl Into<String>) -> Defect {
        Defect {
            offset: self.offset,
            problem: problem.into(),
        }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, Defect> {
        if n > self.remaining() {
            return Err(self.defect(format!(
                "{what} needs {n} bytes but the file ends {} bytes later (truncated?)",
                self.remaining()
            )));
        }
        // Grown as bytes arrive, so a corrupt length never allocates more than the file holds.
        let mut buf = Vec::new();
        let got = (&mut self.inner)
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| self.defect(format!("reading {what}: {e}")))?;
        if got as u64 != n {
            return Err(self.defect(format!("{what}: the file ended after {got} of {n} bytes")));
        }
        self.offset += n;
        Ok(buf)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), Defect> {
        if n > self.remaining() {
            return Err(self.defect(format!(
                "{what} needs {n} bytes but the file ends {} bytes later (truncated?)",
                self.remaining()
            )));
        }
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| self.defect(format!("reading {what}: {e}")))?;
        if copied != n {
            return Err(self.defect(format!("{what}: the file ended early")));
        }
        self.offset += n;
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<u32, Defect> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, Defect> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A string of at most `max` bytes; a longer declared length is refused before any of it is
    /// read, with `why` in the message.
    fn bounded_string(&mut self, what: &str, max: u64, why: &str) -> Result<String, Defect> {
        let at = self.offset;
        let n = self.u64(&format!("length of {what}"))?;
        if n > max {
            return Err(Defect {
                offset: at,
                problem: format!("{what} is {n} bytes long, more than the {max} {why}"),
            });
        }
        let b = self.bytes(n, what)?;
        String::from_utf8(b).map_err(|_| Defect {
            offset: at,
            problem: format!("{what} is not UTF-8"),
        })
    }
}

/// Bytes of one scalar metadata value of `ty`, `None` for strings, arrays and unknown types.
fn scalar_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// Skips one metadata value; returns it as a number when it is an unsigned/signed integer (for
/// `general.alignment`) or as a string.
fn value<R: Read>(c: &mut Cursor<R>, ty: u32, key: &str, depth: u32) -> Result<Value, Defect> {
    // In messages only: a long key is quoted by its start and length.
    let key = &shown(key);
    match ty {
        // Strings inside arrays (a vocabulary: hundreds of thousands) are skipped, not decoded.
        8 if depth > 0 => {
            let n = c.u64("length of a string in an array")?;
            c.skip(n, "a string in an array")?;
            Ok(Value::Other)
        }
        8 => {
            let at = c.offset;
            let n = c.u64(&format!("length of the string value of `{}`", shown(key)))?;
            if n > MAX_KEPT_STRING_BYTES {
                // Checked against the file, skipped, never held.
                c.skip(n, &format!("string value of `{}`", shown(key)))?;
                return Ok(Value::LongText { len: n });
            }
            let what = format!("string value of `{}`", shown(key));
            let b = c.bytes(n, &what)?;
            String::from_utf8(b).map(Value::Text).map_err(|_| Defect {
                offset: at,
                problem: format!("{what} is not UTF-8"),
            })
        }
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(c.defect(format!(
                    "`{key}`: arrays nested deeper than {MAX_ARRAY_DEPTH}"
                )));
            }
            let elem = c.u32(&format!("element type of `{key}`"))?;
            let at = c.offset;
            let n = c.u64(&format!("length of `{key}`"))?;
            match (elem, scalar_size(elem)) {
                (_, Some(size)) => {
                    let total = n
                        .checked_mul(size)
                        .filter(|t| *t <= c.remaining())
                        .ok_or_else(|| Defect {
                            offset: at,
                            problem: format!(
                                "array `{key}` of {n} elements does not fit in the file"
                            ),
                        })?;
                    c.skip(total, &format!("array `{key}`"))?;
                }
                (8 | 9, None) => {
                    // Each element takes at least 8 bytes (a length or a type + length).
                    if n > c.remaining() / 8 {
                        return Err(Defect {
                            offset: at,
                            problem: format!(
                                "array `{key}` of {n} elements does not fit in the file"
                            ),
                        });
                    }
                    if key == "tokenizer.ggml.tokens" && elem == 8 && depth == 0 {
                        unique_tokens(c, n)?;
                    } else {
                        for _ in 0..n {
                            value(c, elem, key, depth + 1)?;
                        }
                    }
                }
                _ => {
                    return Err(Defect {
                        offset: at - 4,
                        problem: format!("array `{key}` has unknown element type {elem}"),
                    });
                }
            }
            Ok(Value::Array {
                element_type: elem,
                len: n,
            })
        }
        _ => match scalar_size(ty) {
            Some(size) => {
                let b = c.bytes(size, &format!("value of `{key}`"))?;
                let mut le = [0u8; 8];
                le[..b.len()].copy_from_slice(&b);
                let bits = u64::from_le_bytes(le);
                // Sign-extend the signed types from their width.
                let signed = |width: u32| ((bits << (64 - width)) as i64) >> (64 - width);
                Ok(match ty {
                    0 | 2 | 4 | 10 => Value::Unsigned(bits),
                    1 => Value::Signed(signed(8)),
                    3 => Value::Signed(signed(16)),
                    5 => Value::Signed(signed(32)),
                    11 => Value::Signed(bits as i64),
                    6 => Value::Float(f64::from(f32::from_bits(bits as u32))),
                    12 => Value::Float(f64::from_bits(bits)),
                    7 => Value::Bool(bits != 0),
                    _ => Value::Other,
                })
            }
            None => Err(c.defect(format!("`{key}` has unknown value type {ty}"))),
        },
    }
}

/// The vocabulary's `n` token strings: each must differ from every other, or llama.cpp aborts
/// (`GGML_ASSERT(id_to_token.size() == token_to_id.size())` in llama-vocab.cpp). Read one by one
/// (tokens are short; one over 64 KiB is refused), kept only while the array is read.
fn unique_tokens<R: Read>(c: &mut Cursor<R>, n: u64) -> Result<(), Defect> {
    const MAX_TOKEN_BYTES: u64 = 1 << 16;
    let mut seen: std::collections::HashMap<Vec<u8>, u64> =
        std::collections::HashMap::with_capacity(n.min(1 << 20) as usize);
    for i in 0..n {
        let at = c.offset;
        let len = c.u64("length of a token in `tokenizer.ggml.tokens`")?;
        if len > MAX_TOKEN_BYTES {
            return Err(Defect {
                offset: at,
                problem: format!(
                    "token {i} of `tokenizer.ggml.tokens` is {len} bytes long (at most {MAX_TOKEN_BYTES})"
                ),
            });
        }
        let mut bytes = c.bytes(len, "a token in `tokenizer.ggml.tokens`")?;
        // llama.cpp reads each token as a C string: it ends at the first NUL byte.
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        if let Some(first) = seen.insert(bytes, i) {
            return Err(Defect {
                offset: at,
                problem: format!(
                    "tokens {first} and {i} of `tokenizer.ggml.tokens` are the same string (llama.cpp aborts on a vocabulary with duplicates)"
                ),
            });
        }
    }
    Ok(())
}

enum Value {
    /// A string longer than [`MAX_KEPT_STRING_BYTES`]: checked, skipped.
    LongText {
        len: u64,
    },
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Array {
        element_type: u32,
        len: u64,
    },
    /// A string inside an array: skipped, not decoded.
    Other,
}

/// Validates a GGUF stream of `len` bytes. Reads the header and tables only.
pub fn validate<R: Read>(reader: R, len: u64) -> Result<Summary, Defect> {
    let mut c = Cursor {
        inner: reader,
        offset: 0,
        len,
    };
    let magic = c.bytes(4, "the GGUF magic")?;
    if magic != b"GGUF" {
        return Err(Defect {
            offset: 0,
            problem: format!("not a GGUF file (magic {magic:02x?}, expected \"GGUF\")"),
        });
    }
    let version = c.u32("the version")?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(Defect {
            offset: 4,
            problem: format!("GGUF version {version} is not supported (expected 2 or 3)"),
        });
    }
    let tensor_count = c.u64("the tensor count")?;
    let metadata_count = c.u64("the metadata count")?;
    // Every tensor-table entry takes at least 8 + 4 + 8 + 4 + 8 bytes, every metadata entry 8 + 4 + 1.
    if tensor_count > len / 32 {
        return Err(Defect {
            offset: 8,
            problem: format!("tensor count {tensor_count} cannot fit in a {len}-byte file"),
        });
    }
    if metadata_count > len / 13 {
        return Err(Defect {
            offset: 16,
            problem: format!("metadata count {metadata_count} cannot fit in a {len}-byte file"),
        });
    }
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut architecture = None;
    let mut metadata = Vec::with_capacity(metadata_count.min(1 << 12) as usize);
    let mut seen = std::collections::HashMap::new();
    // (key, where its type is, its type, the array's element type) of every typed key.
    let mut types: Vec<(String, u64, u32, Option<u32>)> = Vec::new();
    for i in 0..metadata_count {
        let key_at = c.offset;
        let key = c.bounded_string(
            &format!("metadata key #{i}"),
            MAX_KEY_BYTES,
            "bytes the GGUF specification allows a key",
        )?;
        if let Some(first) = seen.insert(key.clone(), i) {
            return Err(Defect {
                offset: key_at,
                problem: format!(
                    "duplicate metadata key `{}` (entries #{first} and #{i}; llama.cpp refuses the file)",
                    shown(&key)
                ),
            });
        }
        let type_at = c.offset;
        let ty = c.u32(&format!("value type of `{}`", shown(&key)))?;
        let at = c.offset;
        let v = value(&mut c, ty, &key, 0)?;
        let element_type = match &v {
            Value::Array { element_type, .. } => Some(*element_type),
            _ => None,
        };
        types.push((key.clone(), type_at, ty, element_type));
        match (key.as_str(), &v) {
            ("general.alignment", Value::Unsigned(a)) => {
                let a = *a;
                if a == 0 || !a.is_power_of_two() {
                    return Err(Defect {
                        offset: at,
                        problem: format!("general.alignment {a} is not a power of two"),
                    });
                }
                alignment = a;
            }
            ("general.architecture", Value::Text(a)) => architecture = Some(a.clone()),
            _ => {}
        }
        let kept = match v {
            Value::Unsigned(x) => MetaValue::Unsigned(x),
            Value::Signed(x) => MetaValue::Signed(x),
            Value::Float(x) => MetaValue::Float(x),
            Value::Bool(x) => MetaValue::Bool(x),
            Value::Text(x) => MetaValue::Text(x),
            Value::LongText { len } => MetaValue::LongText { len },
            Value::Array { element_type, len } => MetaValue::Array { element_type, len },
            Value::Other => continue,
        };
        metadata.push((key, kept));
    }
    // The keys llama.cpp reads with typed getters must have the type it asks for.
    for (key, at, ty, element_type) in &types {
        let Some((want, array_ok)) = expected_type(key, architecture.as_deref()) else {
            continue;
        };
        let fits = match (want >> 8, element_type) {
            // An array of one element type.
            (9, Some(e)) => *ty == 9 && *e == want & 0xFF,
            (9, None) => false,
            _ => *ty == want || (array_ok && *ty == 9 && matches!(element_type, Some(4 | 5))),
        };
        if !fits {
            let found = match element_type {
                Some(e) => format!("an array of {}", type_name(*e)),
                None => type_name(*ty).to_owned(),
            };
            let want_name = if want >> 8 == 9 {
                format!("an array of {}", type_name(want & 0xFF))
            } else {
                type_name(want).to_owned()
            };
            return Err(Defect {
                offset: *at,
                problem: format!(
                    "`{}` is {found}, but llama.cpp reads it as {want_name}{}",
                    shown(key),
                    if array_ok {
                        " (or an array of integers)"
                    } else {
                        ""
                    }
                ),
            });
        }
    }
    drop(types);
    let metadata_end = c.offset;
    let mut tensors: Vec<(String, u64, u64, u64)> =
        Vec::with_capacity(tensor_count.min(1 << 16) as usize);
    let mut tensor_names = std::collections::HashMap::new();
    for i in 0..tensor_count {
        let name_at = c.offset;
        let name = c.bounded_string(
            &format!("name of tensor #{i}"),
            MAX_TENSOR_NAME_BYTES - 1,
            "bytes llama.cpp allows a tensor name (GGML_MAX_NAME is 64, with its terminating NUL)",
        )?;
        if let Some(first) = tensor_names.insert(name.clone(), i) {
            return Err(Defect {
                offset: name_at,
                problem: format!(
                    "duplicate tensor name `{}` (tensors #{first} and #{i}; llama.cpp refuses the file)",
                    shown(&name)
                ),
            });
        }
        let at = c.offset;
        let n_dims = c.u32(&format!("rank of tensor `{name}`"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Defect {
                offset: at,
                problem: format!("tensor `{name}` has rank {n_dims} (1 to {MAX_DIMS})"),
            });
        }
        let mut elements: u64 = 1;
        let mut first_dim = 0;
        for d in 0..n_dims {
            let at = c.offset;
            let dim = c.u64(&format!("dimension {d} of tensor `{name}`"))?;
            if dim == 0 {
                return Err(Defect {
                    offset: at,
                    problem: format!("tensor `{name}` has dimension {d} = 0"),
                });
            }
            if d == 0 {
                first_dim = dim;
            }
            // ggml counts elements in an int64_t: the product must stay below i64::MAX.
            elements = elements
                .checked_mul(dim)
                .filter(|&e| e < i64::MAX as u64)
                .ok_or_else(|| Defect {
                    offset: at,
                    problem: format!("tensor `{name}`'s dimensions overflow"),
                })?;
        }
        let at = c.offset;
        let ty = c.u32(&format!("type of tensor `{name}`"))?;
        let (block, block_bytes) = type_layout(ty).ok_or_else(|| Defect {
            offset: at,
            problem: format!("tensor `{name}` has unknown ggml type {ty}"),
        })?;
        if first_dim % block != 0 {
            return Err(Defect {
                offset: at,
                problem: format!(
                    "tensor `{name}`: rows of {first_dim} are not a multiple of the type's block of {block}"
                ),
            });
        }
        let bytes = (elements / block)
            .checked_mul(block_bytes)
            .ok_or_else(|| Defect {
                offset: at,
                problem: format!("tensor `{name}`'s size overflows"),
            })?;
        let at = c.offset;
        let offset = c.u64(&format!("data offset of tensor `{name}`"))?;
        if offset % alignment != 0 {
            return Err(Defect {
                offset: at,
                problem: format!(
                    "tensor `{name}`'s data offset {offset} is not aligned to {alignment}"
                ),
            });
        }
        tensors.push((name, at, offset, bytes));
    }
    let data_offset = c.offset.div_ceil(alignment) * alignment;
    let data_len = len.saturating_sub(data_offset);
    // llama.cpp (gguf.cpp) lays tensor data out in table order, each tensor padded to the
    // alignment, and refuses a file whose offsets say otherwise.
    let mut expected_offset: u64 = 0;
    for (name, at, offset, bytes) in &tensors {
        if *offset != expected_offset {
            return Err(Defect {
                offset: *at,
                problem: format!(
                    "tensor `{name}`'s data offset is {offset}, but the tensors before it end at {expected_offset} (llama.cpp needs each tensor's data right after the previous one's, padded to {alignment})"
                ),
            });
        }
        expected_offset = bytes
            .div_ceil(alignment)
            .checked_mul(alignment)
            .and_then(|padded| expected_offset.checked_add(padded))
            .ok_or_else(|| Defect {
                offset: *at,
                problem: format!("tensor `{name}`'s size overflows the data section"),
            })?;
    }
    let mut data_bytes = 0;
    for (name, at, offset, bytes) in &tensors {
        let end = offset.checked_add(*bytes).filter(|e| *e <= data_len).ok_or_else(|| Defect {
            offset: *at,
            problem: format!(
                "tensor `{name}`'s data ({bytes} bytes at data offset {offset}) runs past the end of the file ({data_len} data bytes after byte {data_offset}; truncated?)"
            ),
        })?;
        data_bytes = data_bytes.max(end);
    }
    Ok(Summary {
        version,
        tensor_count,
        metadata_count,
        alignment,
        data_offset,
        data_bytes,
        architecture,
        metadata,
        metadata_end,
        tensor_names: tensors.into_iter().map(|(name, ..)| name).collect(),
    })
}

/// [`validate`], then what llama.cpp needs of a model besides a well-formed file: the
/// hyperparameters and tokenizer keys it refuses to load without, and vocabulary arrays of one
/// length. [`validate_file`] checks both.
pub fn validate_model<R: Read>(reader: R, len: u64) -> Result<Summary, Defect> {
    let summary = validate(reader, len)?;
    required_keys(
        &summary.metadata,
        summary.architecture.as_deref(),
        summary.metadata_end,
    )?;
    layer_tensors(&summary)?;
    Ok(summary)
}

/// Architectures whose every layer holds the same tensors, and the tensors outside the layers
/// llama.cpp knows for them (`token_embd` and `output_norm` required).
const UNIFORM_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3", "mistral"];
const GLOBAL_TENSORS: &[&str] = &[
    "token_embd.weight",
    "output_norm.weight",
    "output.weight",
    "rope_freqs.weight",
    "rope_factors_long.weight",
    "rope_factors_short.weight",
];

/// The tensor table against the layer count, for the architectures above: llama.cpp looks up
/// each layer's tensors by name (`tensor 'blk.25.attn_k.weight' not found`) and refuses a file
/// with a tensor it did not ask for (`wrong number of tensors`).
fn layer_tensors(summary: &Summary) -> Result<(), Defect> {
    let Some(arch) = summary.architecture.as_deref() else {
        return Ok(());
    };
    if !UNIFORM_ARCHS.contains(&arch) {
        return Ok(());
    }
    let Some(layers) = summary
        .get(&format!("{arch}.block_count"))
        .and_then(MetaValue::as_u64)
    else {
        return Ok(());
    };
    let at = summary.metadata_end;
    let refuse = |problem: String| Defect {
        offset: at,
        problem,
    };
    let mut per_layer: Vec<std::collections::BTreeSet<&str>> = Vec::new();
    for name in &summary.tensor_names {
        if let Some(rest) = name.strip_prefix("blk.") {
            let (index, suffix) = rest.split_once('.').unwrap_or((rest, ""));
            let layer = index
                .parse::<u64>()
                .ok()
                .filter(|&l| l < layers)
                .ok_or_else(|| {
                    refuse(format!(
                        "tensor `{}` names no layer of the {layers} `{arch}.block_count` says (llama.cpp refuses a tensor it does not use)",
                        shown(name)
                    ))
                })?;
            let layer = layer as usize;
            if per_layer.len() <= layer {
                per_layer.resize_with(layer + 1, Default::default);
            }
            per_layer[layer].insert(suffix);
        } else if !GLOBAL_TENSORS.contains(&name.as_str()) {
            return Err(refuse(format!(
                "tensor `{}` is none llama.cpp's `{arch}` uses (it refuses a tensor it does not use)",
                shown(name)
            )));
        }
    }
    for required in ["token_embd.weight", "output_norm.weight"] {
        if !summary.tensor_names.iter().any(|n| n == required) {
            return Err(refuse(format!(
                "no tensor `{required}` (llama.cpp's `{arch}` needs it)"
            )));
        }
    }
    per_layer.resize_with(layers as usize, Default::default);
    if let Some(first) = per_layer.first() {
        for (layer, tensors) in per_layer.iter().enumerate().skip(1) {
            if let Some(missing) = first.difference(tensors).next() {
                return Err(refuse(format!(
                    "layer {layer} has no `blk.{layer}.{missing}` (every `{arch}` layer has the tensors of layer 0)"
                )));
            }
            if let Some(extra) = tensors.difference(first).next() {
                return Err(refuse(format!(
                    "layer {layer} has `blk.{layer}.{extra}`, which layer 0 lacks (every `{arch}` layer has the same tensors)"
                )));
            }
        }
    }
    Ok(())
}

/// Validates the file at `path`; errors name it and the byte offset.
pub fn validate_file(path: &Path) -> Result<Summary, GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    validate_model(BufReader::with_capacity(1 << 16, file), len).map_err(|d| GgufError::Invalid {
        path: path.to_path_buf(),
        offset: d.offset,
        problem: d.problem,
    })
}

/// GGUF headers for tests and benchmarks: large files without writing their tensor data.
pub mod synthetic {
    /// A GGUF v3 header and tensor table for F32 tensors of the given element counts, padded to
    /// the default alignment; the tensor data (`4 × Σ elements` bytes) follows it. The metadata
    /// holds the keys a model needs (architecture, hyperparameters, a one-token vocabulary).
    /// Returns the header and the data size.
    #[must_use]
    pub fn f32_header(architecture: &str, tensors: &[(String, u64)]) -> (Vec<u8>, u64) {
        let string = |s: &[u8]| {
            let mut v = (s.len() as u64).to_le_bytes().to_vec();
            v.extend(s);
            v
        };
        let mut vocabulary = 8u32.to_le_bytes().to_vec();
        vocabulary.extend(1u64.to_le_bytes());
        vocabulary.extend(string(b"a"));
        let kvs: Vec<(String, u32, Vec<u8>)> = vec![
            (
                "general.architecture".into(),
                8,
                string(architecture.as_bytes()),
            ),
            (
                format!("{architecture}.context_length"),
                4,
                4096u32.to_le_bytes().to_vec(),
            ),
            (
                format!("{architecture}.embedding_length"),
                4,
                64u32.to_le_bytes().to_vec(),
            ),
            (
                format!("{architecture}.block_count"),
                4,
                1u32.to_le_bytes().to_vec(),
            ),
            (
                format!("{architecture}.attention.head_count"),
                4,
                4u32.to_le_bytes().to_vec(),
            ),
            (
                format!("{architecture}.attention.layer_norm_rms_epsilon"),
                6,
                1e-5f32.to_le_bytes().to_vec(),
            ),
            ("tokenizer.ggml.model".into(), 8, string(b"gpt2")),
            ("tokenizer.ggml.tokens".into(), 9, vocabulary),
        ];
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend((tensors.len() as u64).to_le_bytes());
        f.extend((kvs.len() as u64).to_le_bytes());
        for (key, ty, value) in &kvs {
            f.extend(string(key.as_bytes()));
            f.extend(ty.to_le_bytes());
            f.extend(value);
        }
        let mut offset = 0u64;
        for (name, elements) in tensors {
            f.extend((name.len() as u64).to_le_bytes());
            f.extend(name.as_bytes());
            f.extend(1u32.to_le_bytes());
            f.extend(elements.to_le_bytes());
            f.extend(0u32.to_le_bytes()); // F32
            f.extend(offset.to_le_bytes());
            offset += (elements * 4).next_multiple_of(super::DEFAULT_ALIGNMENT);
        }
        while !(f.len() as u64).is_multiple_of(super::DEFAULT_ALIGNMENT) {
            f.push(0);
        }
        (f, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid GGUF: one metadata string, one 32-element F32 tensor.
    fn tiny() -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(1u64.to_le_bytes()); // tensors
        f.extend(1u64.to_le_bytes()); // metadata
        let key = b"general.architecture";
        f.extend((key.len() as u64).to_le_bytes());
        f.extend(key);
        f.extend(8u32.to_le_bytes());
        f.extend(5u64.to_le_bytes());
        f.extend(b"llama");
        let name = b"w";
        f.extend((name.len() as u64).to_le_bytes());
        f.extend(name);
        f.extend(1u32.to_le_bytes());
        f.extend(32u64.to_le_bytes());
        f.extend(0u32.to_le_bytes()); // F32
        f.extend(0u64.to_le_bytes());
        while !f.len().is_multiple_of(32) {
            f.push(0);
        }
        f.extend([0u8; 128]);
        f
    }

    #[test]
    fn a_tiny_file_validates() {
        let f = tiny();
        let s = validate(&f[..], f.len() as u64).expect("valid");
        assert_eq!(
            (s.tensor_count, s.metadata_count, s.data_bytes),
            (1, 1, 128)
        );
        assert_eq!(s.architecture.as_deref(), Some("llama"));
    }

    #[test]
    fn every_truncation_of_a_tiny_file_is_an_error_with_an_offset() {
        let f = tiny();
        for cut in 0..f.len() - 1 {
            let err = validate(&f[..cut], cut as u64).expect_err("truncated");
            assert!(err.offset <= cut as u64, "cut {cut}: {err:?}");
        }
    }

    #[test]
    fn known_defects_are_named() {
        let mut f = tiny();
        f[0] = b'X';
        assert!(
            validate(&f[..], f.len() as u64)
                .expect_err("magic")
                .problem
                .contains("not a GGUF")
        );
        let mut f = tiny();
        f[4] = 9;
        assert_eq!(
            validate(&f[..], f.len() as u64)
                .expect_err("version")
                .offset,
            4
        );
        // Header 24 + key 28 + value type 4 + value 13 + name 9 + rank 4 + dim 8 = type at 90.
        let mut f = tiny();
        f[90] = 77;
        let err = validate(&f[..], f.len() as u64).expect_err("type");
        assert_eq!(err.offset, 90, "{err:?}");
        assert!(err.problem.contains("unknown ggml type 77"), "{err:?}");
        // Tensor data cut short.
        let f = tiny();
        let err = validate(&f[..f.len() - 1], f.len() as u64 - 1).expect_err("short data");
        assert!(err.problem.contains("runs past the end"), "{err:?}");
        // A first tensor whose data does not start the data section.
        let mut f = tiny();
        f[94] = 0x40;
        let err = validate(&f[..], f.len() as u64).expect_err("offset");
        assert!(
            err.problem
                .contains("data offset is 64, but the tensors before it end at 0"),
            "{err:?}"
        );
    }

    /// A GGUF v3 file built field by field, for tests that need one exact defect.
    #[derive(Default)]
    struct Builder {
        kv_count: u64,
        kvs: Vec<u8>,
        tensor_count: u64,
        tensors: Vec<u8>,
    }

    fn gguf_string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s);
        v
    }

    impl Builder {
        fn kv(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
            self.kvs.extend(gguf_string(key.as_bytes()));
            self.kvs.extend(ty.to_le_bytes());
            self.kvs.extend(value);
            self.kv_count += 1;
            self
        }

        fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
            self.tensors.extend(gguf_string(name.as_bytes()));
            self.tensors.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                self.tensors.extend(d.to_le_bytes());
            }
            self.tensors.extend(ty.to_le_bytes());
            self.tensors.extend(offset.to_le_bytes());
            self.tensor_count += 1;
            self
        }

        /// Header and tables, unpadded: the file ends right after the last table entry.
        fn header(&self) -> Vec<u8> {
            let mut f = b"GGUF".to_vec();
            f.extend(3u32.to_le_bytes());
            f.extend(self.tensor_count.to_le_bytes());
            f.extend(self.kv_count.to_le_bytes());
            f.extend(&self.kvs);
            f.extend(&self.tensors);
            f
        }

        /// The header padded to `alignment`, then `data` bytes of tensor data.
        fn file(&self, alignment: usize, data: usize) -> Vec<u8> {
            let mut f = self.header();
            while !f.len().is_multiple_of(alignment) {
                f.push(0);
            }
            f.extend(vec![0u8; data]);
            f
        }
    }

    fn check(f: &[u8]) -> Result<Summary, Defect> {
        validate(f, f.len() as u64)
    }

    fn arch() -> Builder {
        Builder::default().kv("general.architecture", 8, &gguf_string(b"llama"))
    }

    #[test]
    fn type_layouts_are_ggml_s() {
        // (type, elements per block, bytes per block) from ggml's type traits.
        let table: [(u32, u64, u64); 32] = [
            (0, 1, 4),
            (1, 1, 2),
            (2, 32, 18),
            (3, 32, 20),
            (6, 32, 22),
            (7, 32, 24),
            (8, 32, 34),
            (9, 32, 36),
            (10, 256, 84),
            (11, 256, 110),
            (12, 256, 144),
            (13, 256, 176),
            (14, 256, 210),
            (15, 256, 292),
            (16, 256, 66),
            (17, 256, 74),
            (18, 256, 98),
            (19, 256, 50),
            (20, 32, 18),
            (21, 256, 110),
            (22, 256, 82),
            (23, 256, 136),
            (24, 1, 1),
            (25, 1, 2),
            (26, 1, 4),
            (27, 1, 8),
            (28, 1, 8),
            (29, 256, 56),
            (30, 1, 2),
            (34, 256, 54),
            (35, 256, 66),
            (39, 32, 17),
        ];
        for (ty, block, bytes) in table {
            assert_eq!(type_layout(ty), Some((block, bytes)), "ggml type {ty}");
        }
        // Removed or never assigned in ggml: 4, 5 (Q4_2, Q4_3), 31–33, 36–38.
        for ty in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000] {
            assert_eq!(type_layout(ty), None, "ggml type {ty}");
        }
    }

    #[test]
    fn a_file_may_end_exactly_where_its_last_field_ends() {
        // The last read (a string value; a skipped string in an array) ends at the last byte.
        let s = check(&arch().header()).expect("valid");
        assert_eq!(s.architecture.as_deref(), Some("llama"));
        let mut tokens = 8u32.to_le_bytes().to_vec();
        tokens.extend(2u64.to_le_bytes());
        tokens.extend(gguf_string(b"a"));
        tokens.extend(gguf_string(b"bc"));
        assert!(check(&arch().kv("tokenizer.ggml.tokens", 9, &tokens).header()).is_ok());
    }

    #[test]
    fn every_scalar_type_is_read_at_its_size() {
        // A wrong size for any type would misread every field after it.
        let mut b = Builder::default();
        for (ty, size) in [
            (0u32, 1usize),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 4),
            (5, 4),
            (6, 4),
            (7, 1),
            (10, 8),
            (11, 8),
            (12, 8),
        ] {
            b = b.kv(&format!("x.type{ty}"), ty, &vec![0x11; size]);
        }
        let b = b.kv("general.architecture", 8, &gguf_string(b"qwen2"));
        let s = check(&b.header()).expect("valid");
        assert_eq!(
            (s.metadata_count, s.architecture.as_deref()),
            (12, Some("qwen2"))
        );
    }

    #[test]
    fn strings_inside_arrays_are_skipped_not_decoded() {
        let mut tokens = 8u32.to_le_bytes().to_vec();
        tokens.extend(1u64.to_le_bytes());
        tokens.extend(gguf_string(&[0xff, 0xfe]));
        assert!(check(&arch().kv("x.strings", 9, &tokens).header()).is_ok());
        // A top-level string value is decoded, and must be UTF-8.
        let bad = Builder::default().kv("general.name", 8, &gguf_string(&[0xff, 0xfe]));
        let e = check(&bad.header()).expect_err("not UTF-8");
        assert!(e.problem.contains("not UTF-8"), "{e:?}");
    }

    #[test]
    fn an_array_count_is_checked_against_the_bytes_left() {
        // n empty strings take exactly 8n bytes: n fits when exactly 8n bytes are left.
        let array = |n: u64, present: u64| {
            let mut v = 8u32.to_le_bytes().to_vec();
            v.extend(n.to_le_bytes());
            for _ in 0..present {
                v.extend(0u64.to_le_bytes());
            }
            arch().kv("x.strings", 9, &v).header()
        };
        assert!(check(&array(5, 5)).is_ok());
        let e = check(&array(6, 5)).expect_err("one too many");
        assert!(e.problem.contains("does not fit in the file"), "{e:?}");
        let e = check(&array(u64::MAX / 2, 5)).expect_err("huge");
        assert!(e.problem.contains("does not fit in the file"), "{e:?}");
    }

    #[test]
    fn arrays_nest_two_deep_at_most_and_unknown_element_types_are_located() {
        let nested = |levels: usize| {
            // `levels` arrays, each holding one array, the innermost holding no u32.
            let mut v = Vec::new();
            for _ in 1..levels {
                v.extend(9u32.to_le_bytes());
                v.extend(1u64.to_le_bytes());
            }
            v.extend(4u32.to_le_bytes());
            v.extend(0u64.to_le_bytes());
            arch().kv("x.nested", 9, &v).header()
        };
        assert!(check(&nested(2)).is_ok());
        let e = check(&nested(3)).expect_err("three deep");
        assert!(e.problem.contains("nested deeper than 2"), "{e:?}");
        // The error points at the element type's 4 bytes.
        let mut v = 99u32.to_le_bytes().to_vec();
        v.extend(1u64.to_le_bytes());
        let f = Builder::default().kv("x.odd", 9, &v).header();
        let e = check(&f).expect_err("unknown element type");
        let elem_at = 24 + 8 + "x.odd".len() as u64 + 4;
        assert_eq!(e.offset, elem_at, "{e:?}");
    }

    #[test]
    fn counts_are_checked_against_the_file_size_at_their_exact_bound() {
        let f = arch().header();
        let len = f.len() as u64;
        let with_counts = |tensors: u64, kvs: u64| {
            let mut g = f.clone();
            g[8..16].copy_from_slice(&tensors.to_le_bytes());
            g[16..24].copy_from_slice(&kvs.to_le_bytes());
            g
        };
        let cannot_fit = |g: &[u8]| {
            check(g)
                .err()
                .is_some_and(|e| e.problem.contains("cannot fit"))
        };
        // One past each bound is refused as impossible; the bound itself is read and fails on
        // what is actually there (the file ends), not on the count.
        assert!(cannot_fit(&with_counts(len / 32 + 1, 1)));
        assert!(!cannot_fit(&with_counts(len / 32, 1)));
        assert!(cannot_fit(&with_counts(0, len / 13 + 1)));
        assert!(!cannot_fit(&with_counts(0, len / 13)));
    }

    #[test]
    fn general_alignment_must_be_a_power_of_two_and_is_obeyed() {
        let aligned = |a: u32, offset: u64| {
            arch()
                .kv("general.alignment", 4, &a.to_le_bytes())
                .tensor("w", &[32], 0, offset)
                .file(64, 256)
        };
        let s = check(&aligned(64, 0)).expect("valid");
        assert_eq!((s.alignment, s.data_offset % 64), (64, 0));
        let e = check(&aligned(64, 32)).expect_err("32 is not aligned to 64");
        assert!(e.problem.contains("not aligned to 64"), "{e:?}");
        for bad in [0, 48] {
            let e = check(&aligned(bad, 0)).expect_err("not a power of two");
            assert!(e.problem.contains("not a power of two"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn tensor_ranks_are_one_to_four() {
        let ranked = |dims: &[u64]| arch().tensor("w", dims, 0, 0).file(32, 128);
        assert!(check(&ranked(&[32, 1, 1, 1])).is_ok());
        for dims in [&[][..], &[32, 1, 1, 1, 1][..]] {
            let e = check(&ranked(dims)).expect_err("bad rank");
            assert!(e.problem.contains("rank"), "{dims:?}: {e:?}");
        }
    }

    fn u32v(v: u32) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn duplicate_keys_and_tensor_names_are_refused_as_llama_cpp_refuses_them() {
        let twice = arch().kv("general.name", 8, &gguf_string(b"a")).kv(
            "general.name",
            8,
            &gguf_string(b"b"),
        );
        let e = check(&twice.header()).expect_err("duplicate key");
        assert!(
            e.problem
                .contains("duplicate metadata key `general.name` (entries #1 and #2"),
            "{e:?}"
        );
        let tensors = arch()
            .tensor("w", &[32], 0, 0)
            .tensor("w", &[32], 0, 128)
            .file(32, 256);
        let e = check(&tensors).expect_err("duplicate tensor");
        assert!(
            e.problem
                .contains("duplicate tensor name `w` (tensors #0 and #1"),
            "{e:?}"
        );
    }

    #[test]
    fn names_are_bounded_before_they_are_read() {
        // ggml's GGML_MAX_NAME is 64 with the NUL: 63 bytes load, 64 do not.
        let name = |n: usize| arch().tensor(&"t".repeat(n), &[32], 0, 0).file(32, 128);
        assert!(check(&name(63)).is_ok());
        let e = check(&name(64)).expect_err("64-byte name");
        assert!(
            e.problem.contains("64 bytes long, more than the 63"),
            "{e:?}"
        );
        // A key claiming 4 GiB in a small file: refused from its length alone, at once.
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(0u64.to_le_bytes());
        f.extend(1u64.to_le_bytes());
        f.extend((1u64 << 32).to_le_bytes());
        f.extend(vec![b'k'; 64]);
        let e = check(&f).expect_err("huge key");
        assert!(e.problem.contains("more than the 65535 bytes"), "{e:?}");
        assert!(
            e.problem.len() < 200,
            "the message stays short: {}",
            e.problem
        );
    }

    #[test]
    fn a_huge_string_value_is_checked_and_skipped_not_held() {
        let big = vec![b'x'; (MAX_KEPT_STRING_BYTES + 1) as usize];
        let f = arch()
            .kv("tokenizer.chat_template", 8, &gguf_string(&big))
            .header();
        let s = check(&f).expect("valid");
        assert_eq!(
            s.get("tokenizer.chat_template"),
            Some(&MetaValue::LongText {
                len: MAX_KEPT_STRING_BYTES + 1
            })
        );
        // One byte short: the skip is checked against the file like any read.
        let e = check(&f[..f.len() - 1]).expect_err("truncated");
        assert!(e.problem.contains("truncated"), "{e:?}");
    }

    #[test]
    fn keys_llama_cpp_reads_with_typed_getters_must_have_their_type() {
        // general.alignment: gguf_get_val_u32 aborts on any other type.
        let e = check(
            &arch()
                .kv("general.alignment", 10, &64u64.to_le_bytes())
                .header(),
        )
        .expect_err("u64 alignment");
        assert!(
            e.problem
                .contains("`general.alignment` is u64, but llama.cpp reads it as u32"),
            "{e:?}"
        );
        assert!(check(&arch().kv("general.alignment", 4, &u32v(64)).header()).is_ok());
        // {arch}.context_length as a u64, or a string: llama_model_loader refuses the file.
        let e = check(
            &arch()
                .kv("llama.context_length", 10, &4096u64.to_le_bytes())
                .header(),
        )
        .expect_err("u64 context");
        assert!(e.problem.contains("`llama.context_length` is u64"), "{e:?}");
        assert!(check(&arch().kv("llama.context_length", 4, &u32v(4096)).header()).is_ok());
        // Per-layer keys may be arrays of integers; an array of strings is refused.
        let mut ints = 5u32.to_le_bytes().to_vec();
        ints.extend(2u64.to_le_bytes());
        ints.extend(u32v(8));
        ints.extend(u32v(8));
        assert!(check(&arch().kv("llama.attention.head_count", 9, &ints).header()).is_ok());
        let mut strings = 8u32.to_le_bytes().to_vec();
        strings.extend(1u64.to_le_bytes());
        strings.extend(gguf_string(b"8"));
        let e = check(
            &arch()
                .kv("llama.attention.head_count", 9, &strings)
                .header(),
        )
        .expect_err("strings");
        assert!(e.problem.contains("is an array of string"), "{e:?}");
        // A key of another architecture is not read by llama.cpp, whatever its type.
        assert!(
            check(
                &arch()
                    .kv("qwen2.context_length", 10, &1u64.to_le_bytes())
                    .header()
            )
            .is_ok()
        );
        // general.architecture itself must be a string.
        let e = check(
            &Builder::default()
                .kv("general.architecture", 4, &u32v(1))
                .header(),
        )
        .expect_err("number");
        assert!(e.problem.contains("`general.architecture` is u32"), "{e:?}");
    }

    #[test]
    fn tensor_data_lies_in_table_order_each_padded_to_the_alignment() {
        // 32 f32 = 128 bytes, then 8 f32 = 32 bytes: offsets 0 and 128 are llama.cpp's layout.
        let ok = arch()
            .tensor("a", &[32], 0, 0)
            .tensor("b", &[8], 0, 128)
            .file(32, 160);
        assert!(check(&ok).is_ok());
        // The same data in the other order, or with a gap: refused, with the expected offset.
        let swapped = arch()
            .tensor("a", &[32], 0, 32)
            .tensor("b", &[8], 0, 0)
            .file(32, 160);
        let e = check(&swapped).expect_err("swapped");
        assert!(
            e.problem
                .contains("`a`'s data offset is 32, but the tensors before it end at 0"),
            "{e:?}"
        );
        let gap = arch()
            .tensor("a", &[32], 0, 0)
            .tensor("b", &[8], 0, 160)
            .file(32, 192);
        let e = check(&gap).expect_err("gap");
        assert!(e.problem.contains("end at 128"), "{e:?}");
        // Padding: a 40-byte tensor is followed at 64 with alignment 32.
        let padded = arch()
            .tensor("a", &[10], 0, 0)
            .tensor("b", &[8], 0, 64)
            .file(32, 96);
        assert!(check(&padded).is_ok());
    }

    #[test]
    fn element_counts_stay_below_i64_max_as_ggml_counts_them() {
        // 2^63 elements overflow ggml's int64_t although they fit a u64.
        let e = check(&arch().tensor("a", &[1 << 31, 1 << 32], 0, 0).header())
            .expect_err("2^63 elements");
        assert!(e.problem.contains("dimensions overflow"), "{e:?}");
    }

    #[test]
    fn any_header_is_judged_fast_whatever_it_claims() {
        // Claimed counts and lengths far beyond the file: each is refused where the claim is
        // made, from the claim and the file size alone (no loop over it, nothing allocated for
        // it): the error's offset is the claim's, a few bytes into the file.
        let claims: Vec<Vec<u8>> = vec![
            {
                let mut f = b"GGUF".to_vec();
                f.extend(3u32.to_le_bytes());
                f.extend(u64::MAX.to_le_bytes());
                f.extend(u64::MAX.to_le_bytes());
                f
            },
            {
                let mut v = 0u32.to_le_bytes().to_vec();
                v.extend(u64::MAX.to_le_bytes());
                arch().kv("x.bytes", 9, &v).header()
            },
            {
                let mut v = 8u32.to_le_bytes().to_vec();
                v.extend((1u64 << 40).to_le_bytes());
                arch().kv("tokenizer.ggml.tokens", 9, &v).header()
            },
            arch()
                .kv("general.name", 8, &(1u64 << 50).to_le_bytes())
                .header(),
        ];
        for f in claims {
            let e = check(&f).expect_err("an impossible claim");
            assert!(
                e.offset <= 16 || e.offset + 16 >= f.len() as u64,
                "{e:?} in {} bytes",
                f.len()
            );
            assert!(e.problem.len() < 200, "{}", e.problem);
        }
    }

    #[test]
    fn a_vocabulary_with_a_repeated_token_is_refused_as_llama_cpp_aborts_on_it() {
        let tokens = |words: &[&[u8]]| {
            let mut v = 8u32.to_le_bytes().to_vec();
            v.extend((words.len() as u64).to_le_bytes());
            for w in words {
                v.extend(gguf_string(w));
            }
            arch().kv("tokenizer.ggml.tokens", 9, &v).header()
        };
        assert!(check(&tokens(&[b"a", b"b", b"ab"])).is_ok());
        let e = check(&tokens(&[b"a", b"b", b"a"])).expect_err("duplicate token");
        assert!(
            e.problem
                .contains("tokens 0 and 2 of `tokenizer.ggml.tokens` are the same"),
            "{e:?}"
        );
        // The scores must be f32 (llama.cpp asserts the element type).
        let mut scores = 5u32.to_le_bytes().to_vec();
        scores.extend(1u64.to_le_bytes());
        scores.extend(u32v(1));
        let e = check(&arch().kv("tokenizer.ggml.scores", 9, &scores).header())
            .expect_err("i32 scores");
        assert!(
            e.problem
                .contains("is an array of i32, but llama.cpp reads it as an array of f32"),
            "{e:?}"
        );
    }

    #[test]
    fn a_model_needs_the_keys_llama_cpp_cannot_load_without() {
        let mut tokens = 8u32.to_le_bytes().to_vec();
        tokens.extend(2u64.to_le_bytes());
        tokens.extend(gguf_string(b"a"));
        tokens.extend(gguf_string(b"b"));
        let model = |skip: &str, scores: u64| {
            let mut b = Builder::default();
            for (key, ty, value) in [
                ("general.architecture", 8u32, gguf_string(b"llama")),
                ("llama.context_length", 4, u32v(4096)),
                ("llama.embedding_length", 4, u32v(64)),
                ("llama.block_count", 4, u32v(1)),
                ("llama.attention.head_count", 4, u32v(4)),
                (
                    "llama.attention.layer_norm_rms_epsilon",
                    6,
                    1e-5f32.to_le_bytes().to_vec(),
                ),
                ("tokenizer.ggml.model", 8, gguf_string(b"gpt2")),
                ("tokenizer.ggml.tokens", 9, tokens.clone()),
            ] {
                if key != skip {
                    b = b.kv(key, ty, &value);
                }
            }
            let mut s = 6u32.to_le_bytes().to_vec();
            s.extend(scores.to_le_bytes());
            for _ in 0..scores {
                s.extend(0f32.to_le_bytes());
            }
            b.kv("tokenizer.ggml.scores", 9, &s)
                .tensor("token_embd.weight", &[32], 0, 0)
                .tensor("output_norm.weight", &[32], 0, 128)
                .tensor("blk.0.attn_q.weight", &[32], 0, 256)
                .file(32, 384)
        };
        let whole = model("", 2);
        assert!(validate_model(&whole[..], whole.len() as u64).is_ok());
        for key in [
            "general.architecture",
            "llama.context_length",
            "llama.attention.layer_norm_rms_epsilon",
            "tokenizer.ggml.tokens",
        ] {
            let f = model(key, 2);
            // Well-formed, so the structural check passes; the model check does not.
            assert!(check(&f).is_ok(), "{key}");
            let e = validate_model(&f[..], f.len() as u64).expect_err(key);
            assert!(
                e.problem.contains(&format!("has no `{key}`")),
                "{key}: {e:?}"
            );
        }
        let f = model("", 3);
        let e = validate_model(&f[..], f.len() as u64).expect_err("3 scores for 2 tokens");
        assert!(
            e.problem
                .contains("`tokenizer.ggml.scores` has 3 entries for 2 tokens"),
            "{e:?}"
        );
    }

    #[test]
    fn every_layer_of_a_uniform_architecture_has_the_same_tensors() {
        let model = |layers: u32, names: &[&str]| {
            let mut tokens = 8u32.to_le_bytes().to_vec();
            tokens.extend(1u64.to_le_bytes());
            tokens.extend(gguf_string(b"a"));
            let mut b = arch()
                .kv("llama.context_length", 4, &u32v(4096))
                .kv("llama.embedding_length", 4, &u32v(64))
                .kv("llama.block_count", 4, &u32v(layers))
                .kv("llama.attention.head_count", 4, &u32v(4))
                .kv(
                    "llama.attention.layer_norm_rms_epsilon",
                    6,
                    &1e-5f32.to_le_bytes(),
                )
                .kv("tokenizer.ggml.model", 8, &gguf_string(b"gpt2"))
                .kv("tokenizer.ggml.tokens", 9, &tokens);
            for (i, name) in names.iter().enumerate() {
                b = b.tensor(name, &[32], 0, 128 * i as u64);
            }
            b.file(32, 128 * names.len())
        };
        let judge = |f: Vec<u8>| validate_model(&f[..], f.len() as u64);
        let base = [
            "token_embd.weight",
            "output_norm.weight",
            "blk.0.attn_k.weight",
            "blk.1.attn_k.weight",
        ];
        assert!(judge(model(2, &base)).is_ok());
        // One layer's tensor renamed: llama.cpp finds it missing.
        let e = judge(model(
            2,
            &[
                "token_embd.weight",
                "output_norm.weight",
                "blk.0.attn_k.weight",
                "blk.1.attn_j.weight",
            ],
        ))
        .expect_err("renamed");
        assert!(
            e.problem.contains("layer 1 has no `blk.1.attn_k.weight`"),
            "{e:?}"
        );
        // A layer past block_count, an unknown global tensor, a missing embedding.
        let e = judge(model(1, &base)).expect_err("layer 1 of 1");
        assert!(e.problem.contains("names no layer of the 1"), "{e:?}");
        let e = judge(model(
            2,
            &["token_embd.weight", "output_norm.weight", "outpux.weight"],
        ))
        .expect_err("unknown");
        assert!(
            e.problem
                .contains("`outpux.weight` is none llama.cpp's `llama` uses"),
            "{e:?}"
        );
        let e = judge(model(2, &["output_norm.weight"])).expect_err("no embedding");
        assert!(e.problem.contains("no tensor `token_embd.weight`"), "{e:?}");
    }
}
