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
}

/// One metadata value as [`Summary`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Text(String),
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

    fn string(&mut self, what: &str) -> Result<String, Defect> {
        let at = self.offset;
        let n = self.u64(&format!("length of {what}"))?;
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
    match ty {
        // Strings inside arrays (a vocabulary: hundreds of thousands) are skipped, not decoded.
        8 if depth > 0 => {
            let n = c.u64("length of a string in an array")?;
            c.skip(n, "a string in an array")?;
            Ok(Value::Other)
        }
        8 => Ok(Value::Text(c.string(&format!("string value of `{key}`"))?)),
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
                    for _ in 0..n {
                        value(c, elem, key, depth + 1)?;
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

enum Value {
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
    for i in 0..metadata_count {
        let key = c.string(&format!("metadata key #{i}"))?;
        let ty = c.u32(&format!("value type of `{key}`"))?;
        let at = c.offset;
        let v = value(&mut c, ty, &key, 0)?;
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
            Value::Array { element_type, len } => MetaValue::Array { element_type, len },
            Value::Other => continue,
        };
        metadata.push((key, kept));
    }
    let mut tensors = Vec::with_capacity(tensor_count.min(1 << 16) as usize);
    for i in 0..tensor_count {
        let name = c.string(&format!("name of tensor #{i}"))?;
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
            elements = elements.checked_mul(dim).ok_or_else(|| Defect {
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
        tensor_names: tensors.into_iter().map(|(name, ..)| name).collect(),
    })
}

/// Validates the file at `path`; errors name it and the byte offset.
pub fn validate_file(path: &Path) -> Result<Summary, GgufError> {
    let io = |source| GgufError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    validate(BufReader::with_capacity(1 << 16, file), len).map_err(|d| GgufError::Invalid {
        path: path.to_path_buf(),
        offset: d.offset,
        problem: d.problem,
    })
}

/// GGUF headers for tests and benchmarks: large files without writing their tensor data.
pub mod synthetic {
    /// A GGUF v3 header and tensor table for F32 tensors of the given element counts, padded to
    /// the default alignment; the tensor data (`4 × Σ elements` bytes) follows it. Returns the
    /// header and the data size.
    #[must_use]
    pub fn f32_header(architecture: &str, tensors: &[(String, u64)]) -> (Vec<u8>, u64) {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend((tensors.len() as u64).to_le_bytes());
        f.extend(1u64.to_le_bytes());
        let key = b"general.architecture";
        f.extend((key.len() as u64).to_le_bytes());
        f.extend(key);
        f.extend(8u32.to_le_bytes()); // string
        f.extend((architecture.len() as u64).to_le_bytes());
        f.extend(architecture.as_bytes());
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
        // A data offset past the end.
        let mut f = tiny();
        f[94] = 0x40;
        let err = validate(&f[..], f.len() as u64).expect_err("offset");
        assert!(err.problem.contains("runs past the end"), "{err:?}");
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
        assert!(check(&arch().kv("tokenizer.ggml.tokens", 9, &tokens).header()).is_ok());
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
            arch().kv("tokenizer.ggml.tokens", 9, &v).header()
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
        let s = check(&aligned(64, 64)).expect("valid");
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
}
