//! GGUF validation. llama.cpp `abort()`s or reads out of bounds on some malformed files, and
//! candle panics on others, so every model file passes through [`validate_file`] before an
//! engine sees it: magic, version, counts, every metadata entry and tensor-table entry within the
//! file, known tensor types, dimensions that multiply without overflow, and tensor data that is
//! aligned and lies inside the file. Only the header and tables are read, never the tensor data.
//!
//! Errors name the file (from [`validate_file`]) and the byte offset where the problem is.

mod getters;
pub mod llama_names;
mod model;
mod shapes;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use getters::{expected_type, type_name};

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
    /// Every tensor-table entry, in table order.
    pub tensors: Vec<TensorInfo>,
    /// Where the metadata ends and the tensor table begins.
    pub metadata_end: u64,
}

/// One tensor-table entry as [`Summary`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml's `ne`: the first dimension is the row length.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Where the entry's rank is in the file (what a message about its shape points at).
    pub entry_offset: u64,
}

impl Summary {
    /// Every tensor's name, in table order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }
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
    let mut tensors: Vec<(TensorInfo, u64, u64, u64)> =
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
        let rank_at = at;
        let n_dims = c.u32(&format!("rank of tensor `{name}`"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Defect {
                offset: at,
                problem: format!("tensor `{name}` has rank {n_dims} (1 to {MAX_DIMS})"),
            });
        }
        let mut elements: u64 = 1;
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            let at = c.offset;
            let dim = c.u64(&format!("dimension {d} of tensor `{name}`"))?;
            if dim == 0 {
                return Err(Defect {
                    offset: at,
                    problem: format!("tensor `{name}` has dimension {d} = 0"),
                });
            }
            dims.push(dim);
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
        let first_dim = dims[0];
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
        let info = TensorInfo {
            name,
            dims,
            ggml_type: ty,
            entry_offset: rank_at,
        };
        tensors.push((info, at, offset, bytes));
    }
    let data_offset = c.offset.div_ceil(alignment) * alignment;
    let data_len = len.saturating_sub(data_offset);
    // llama.cpp (gguf.cpp) lays tensor data out in table order, each tensor padded to the
    // alignment, and refuses a file whose offsets say otherwise.
    let mut expected_offset: u64 = 0;
    for (TensorInfo { name, .. }, at, offset, bytes) in &tensors {
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
    for (TensorInfo { name, .. }, at, offset, bytes) in &tensors {
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
        tensors: tensors.into_iter().map(|(info, ..)| info).collect(),
    })
}

/// [`validate`], then what llama.cpp needs of a model besides a well-formed file: the
/// hyperparameters and tokenizer keys it refuses to load without, and vocabulary arrays of one
/// length. [`validate_file`] checks both.
pub fn validate_model<R: Read>(reader: R, len: u64) -> Result<Summary, Defect> {
    let summary = validate(reader, len)?;
    model::required_keys(
        &summary.metadata,
        summary.architecture.as_deref(),
        summary.metadata_end,
    )?;
    model::layer_tensors(&summary)?;
    shapes::tensor_shapes(&summary)?;
    Ok(summary)
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
pub mod synthetic;

#[cfg(test)]
mod tests;
