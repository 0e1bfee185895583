//! Test fixtures shared by the core's unit tests: written once here, not per test module.

use crate::registry::Architecture;

/// Xiaomi MiMo-7B's architecture as models.toml lists it (qwen2 layout).
pub(crate) fn mimo_7b() -> Architecture {
    Architecture {
        gguf_arch: "qwen2".into(),
        layers: 36,
        hidden: 4096,
        ffn: 11008,
        heads: 32,
        kv_heads: 8,
        head_dim: 128,
        vocab: 151_680,
        context: 32_768,
        rope_theta: 640_000.0,
        qkv_bias: true,
        tied_embeddings: false,
        partial_rotary: 1.0,
        sliding_window: None,
        params: None,
    }
}
