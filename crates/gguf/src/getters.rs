//! The metadata types llama.cpp's typed getters demand, and type names for messages.

/// Pseudo-types for [`expected_type`]: an array of the given element type (`9 << 8 | element`).
pub(crate) const ARRAY_OF_STRING: u32 = 9 << 8 | 8;
pub(crate) const ARRAY_OF_F32: u32 = 9 << 8 | 6;
pub(crate) const ARRAY_OF_I32: u32 = 9 << 8 | 5;

/// GGUF value type names, for messages.
pub(crate) fn type_name(ty: u32) -> &'static str {
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
pub(crate) fn expected_type(key: &str, arch: Option<&str>) -> Option<(u32, bool)> {
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
