//! Synthetic twins: scaled-down architectures that keep a real model's family, GQA ratio, bias and
//! rotary layout. Pure arithmetic; `edgebench-twins` writes the GGUF files.

use crate::registry::Architecture;

/// Head width of every twin: small, and a multiple of the 32-value quantization blocks.
pub const TWIN_HEAD_DIM: u32 = 32;
/// Context length twins are generated with (the real models' context would only inflate tests).
pub const TWIN_CONTEXT: u32 = 8192;

fn round_up(x: u32, to: u32) -> u32 {
    x.div_ceil(to) * to
}

/// The architecture of the twin of `real` at divisor `scale` for a tokenizer of `vocab` tokens:
/// layers ÷ scale (at least 2), kv heads ÷ scale (at least 1) with the real q:kv ratio kept,
/// heads of [`TWIN_HEAD_DIM`], hidden = heads × head_dim as in the real models, and the real
/// ffn:hidden ratio rounded to a multiple of 32. Scale 1 is the full-size twin: the real
/// architecture itself, vocabulary and context included (its tokenizer is padded to the width).
#[must_use]
pub fn scaled(real: &Architecture, scale: u32, vocab: u32) -> Architecture {
    if scale <= 1 {
        return Architecture {
            params: None,
            ..real.clone()
        };
    }
    let ratio = real.heads / real.kv_heads.max(1);
    let kv_heads = (real.kv_heads / scale).max(1);
    let heads = kv_heads * ratio;
    let hidden = heads * TWIN_HEAD_DIM;
    let ffn = round_up(
        (f64::from(hidden) * f64::from(real.ffn) / f64::from(real.hidden)).round() as u32,
        32,
    );
    Architecture {
        gguf_arch: real.gguf_arch.clone(),
        layers: real.layers.div_ceil(scale).max(2),
        hidden,
        ffn,
        heads,
        kv_heads,
        head_dim: TWIN_HEAD_DIM,
        vocab,
        context: TWIN_CONTEXT.min(real.context),
        rope_theta: real.rope_theta,
        qkv_bias: real.qkv_bias,
        tied_embeddings: real.tied_embeddings,
        partial_rotary: real.partial_rotary,
        sliding_window: real.sliding_window,
        params: None,
    }
}

/// Parameter count of a llama-style decoder (qwen2/phi3/llama layouts have the same counts; phi3
/// only fuses q/k/v and gate/up into single tensors).
#[must_use]
pub fn parameter_count(a: &Architecture) -> u64 {
    let (h, f, v, l) = (
        u64::from(a.hidden),
        u64::from(a.ffn),
        u64::from(a.vocab),
        u64::from(a.layers),
    );
    let q = u64::from(a.heads) * u64::from(a.head_dim);
    let kv = u64::from(a.kv_heads) * u64::from(a.head_dim);
    let attention = h * q + 2 * h * kv + q * h + if a.qkv_bias { q + 2 * kv } else { 0 };
    let mlp = 3 * h * f;
    let norms = 2 * h;
    let embeddings = v * h * if a.tied_embeddings { 1 } else { 2 };
    embeddings + l * (attention + mlp + norms) + h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mimo_7b as mimo;

    #[test]
    fn twin_keeps_ratios() {
        let t = scaled(&mimo(), 16, 512);
        assert_eq!(
            (t.layers, t.heads, t.kv_heads, t.head_dim, t.hidden),
            (3, 4, 1, 32, 128)
        );
        assert_eq!(t.heads / t.kv_heads, 4, "GQA 4:1 as 32/8");
        assert_eq!(t.ffn, 352, "11008/4096 × 128 = 344, rounded up to 32");
        assert!(t.qkv_bias && !t.tied_embeddings);
        let full = scaled(&mimo(), 1, 512);
        assert_eq!(full, mimo(), "scale 1 is the real architecture");
        let t4 = scaled(&mimo(), 4, 512);
        assert_eq!((t4.layers, t4.kv_heads, t4.heads), (9, 2, 8));
    }

    #[test]
    fn mimo_parameter_count_is_about_seven_billion() {
        // Hand sum: embeddings 2·151680·4096 = 1,242,562,560; per layer attention
        // 4096·4096·2 + 2·4096·1024 + 4096 + 2·1024 = 41,949,184, mlp 3·4096·11008 = 135,266,304,
        // norms 8,192 → 177,223,680 per layer · 36 = 6,380,052,480; + final norm 4,096.
        assert_eq!(parameter_count(&mimo()), 7_622_619_136);
    }
}
