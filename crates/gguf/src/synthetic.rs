//! GGUF headers for tests and benchmarks: large files without writing their tensor data.

/// A GGUF v3 header and tensor table for F32 tensors of the given element counts, padded to
/// the default alignment; the tensor data (`4 × Σ elements` bytes) follows it. The metadata
/// holds the keys a model needs (architecture, hyperparameters, a one-token vocabulary). Name an
/// architecture llama.cpp knows whose tensor table the validator does not mirror (`gpt2`): the
/// tensors are only counts of elements.
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
        offset += (elements * 4).next_multiple_of(crate::DEFAULT_ALIGNMENT);
    }
    while !(f.len() as u64).is_multiple_of(crate::DEFAULT_ALIGNMENT) {
        f.push(0);
    }
    (f, offset)
}
