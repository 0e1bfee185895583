//! Projections from architecture facts: memory the KV cache needs, so a case can be checked
//! against a memory budget before anything is loaded.

use crate::registry::Architecture;
use crate::scenario::KvType;

/// Bytes one element occupies in a KV cache of type `t` (block formats include their scales).
#[must_use]
pub fn kv_element_bytes(t: KvType) -> f64 {
    match t {
        KvType::F16 => 2.0,
        // q8_0: blocks of 32 values = 32 bytes + an f16 scale.
        KvType::Q8_0 => 34.0 / 32.0,
        // q4_0: blocks of 32 values = 16 bytes + an f16 scale.
        KvType::Q4_0 => 18.0 / 32.0,
    }
}

/// KV-cache bytes per token of context: layers × kv_heads × head_dim × (K bytes + V bytes).
#[must_use]
pub fn kv_bytes_per_token(arch: &Architecture, type_k: KvType, type_v: KvType) -> f64 {
    let width = f64::from(arch.layers) * f64::from(arch.kv_heads) * f64::from(arch.head_dim);
    width * (kv_element_bytes(type_k) + kv_element_bytes(type_v))
}

/// KV-cache bytes for `sequences` sequences of `context` tokens each.
#[must_use]
pub fn kv_bytes(
    arch: &Architecture,
    type_k: KvType,
    type_v: KvType,
    context: u32,
    sequences: u32,
) -> u64 {
    (kv_bytes_per_token(arch, type_k, type_v) * f64::from(context) * f64::from(sequences)).round()
        as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(layers: u32, kv_heads: u32, head_dim: u32) -> Architecture {
        Architecture {
            gguf_arch: "x".into(),
            layers,
            hidden: 0,
            ffn: 0,
            heads: kv_heads,
            kv_heads,
            head_dim,
            vocab: 0,
            context: 0,
            rope_theta: 0.0,
            qkv_bias: false,
            tied_embeddings: false,
            partial_rotary: 1.0,
            sliding_window: None,
            params: None,
        }
    }

    #[test]
    fn hand_computed_kv_sizes() {
        // MiMo-7B: 2 (K and V) · 36 layers · 8 kv heads · 128 dims · 2 bytes.
        assert_eq!(
            kv_bytes_per_token(&arch(36, 8, 128), KvType::F16, KvType::F16),
            147_456.0
        );
        // Phi-4-mini: 2 · 32 · 8 · 128 · 2.
        assert_eq!(
            kv_bytes_per_token(&arch(32, 8, 128), KvType::F16, KvType::F16),
            131_072.0
        );
        // q8_0 K and V: 36·8·128 · 2 · 34/32.
        assert_eq!(
            kv_bytes_per_token(&arch(36, 8, 128), KvType::Q8_0, KvType::Q8_0),
            78_336.0
        );
        assert_eq!(
            kv_bytes(&arch(32, 8, 128), KvType::F16, KvType::F16, 4096, 2),
            131_072 * 4096 * 2
        );
    }
}
