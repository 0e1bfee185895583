//! Projections from architecture facts: memory the KV cache needs, so a case can be checked
//! against a memory budget before anything is loaded.

use crate::quant::Quant;
use crate::registry::Architecture;
use crate::scenario::KvType;

/// Bytes one element occupies in a KV cache of type `t` (block formats include their scales).
#[must_use]
pub fn kv_element_bytes(t: KvType) -> f64 {
    match t {
        KvType::F32 => 4.0,
        KvType::F16 | KvType::Bf16 => 2.0,
        // Blocks of 32 values: q8_0 32 bytes + an f16 scale; q4_0 and iq4_nl 16 bytes + a scale;
        // q4_1 adds an f16 minimum; q5_0 adds 4 bytes of fifth bits, q5_1 those and a minimum.
        KvType::Q8_0 => 34.0 / 32.0,
        KvType::Q4_0 | KvType::Iq4Nl => 18.0 / 32.0,
        KvType::Q4_1 => 20.0 / 32.0,
        KvType::Q5_0 => 22.0 / 32.0,
        KvType::Q5_1 => 24.0 / 32.0,
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

/// Rough bytes of an engine's compute buffers that a forward pass of `batch` tokens over
/// `context` positions touches, in f32: activations (hidden × 4 + ffn × 2 per token), the
/// attention scores without flash attention (heads × context per token) and one row of output
/// logits (vocab). llama.cpp reserves logits for every token of a batch but writes only the
/// rows it outputs (the last prompt token's), and untouched pages never count in RSS: counting
/// vocab × batch overestimated gemma3-270m (262,144-token vocabulary) by 105%. An estimate to
/// compare with measured peak RSS, not a model of any engine's allocator.
#[must_use]
pub fn compute_buffer_bytes(arch: &Architecture, batch: u32, context: u32) -> u64 {
    let per_token = u64::from(arch.hidden) * 4
        + u64::from(arch.ffn) * 2
        + u64::from(arch.heads) * u64::from(context);
    4 * (u64::from(batch) * per_token + u64::from(arch.vocab))
}

/// Projected weight bytes of `params` parameters at `quant`.
#[must_use]
pub fn weight_bytes(params: u64, quant: Quant) -> Option<u64> {
    quant
        .bits_per_weight()
        .map(|b| (params as f64 * b / 8.0).round() as u64)
}

/// Upper bound on generation speed when every generated token must read `bytes_per_token` from
/// memory at `bandwidth_bytes_per_s`: tokens/s ≤ bandwidth ÷ bytes per token.
#[must_use]
pub fn roofline_tokens_per_s(bytes_per_token: f64, bandwidth_bytes_per_s: f64) -> f64 {
    if bytes_per_token <= 0.0 {
        f64::INFINITY
    } else {
        bandwidth_bytes_per_s / bytes_per_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_roofline() {
        // 3.8 B parameters at F16 = 7.6 GB; at Q4_0, 3.8e9 × 4.5 / 8 = 2.1375 GB.
        assert_eq!(weight_bytes(3_800_000_000, Quant::F16), Some(7_600_000_000));
        assert_eq!(
            weight_bytes(3_800_000_000, Quant::Q4_0),
            Some(2_137_500_000)
        );
        assert_eq!(weight_bytes(1, Quant::Iq2Xs), None);
        // The seed's impossibility: 4.5 GB read per token over 77 GB/s caps generation at ~17 t/s.
        let cap = roofline_tokens_per_s(4.5e9, 77e9);
        assert!((cap - 17.111).abs() < 0.01, "{cap}");
    }

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
