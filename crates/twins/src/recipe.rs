//! What each tensor of a twin is: its role, its storage type at a file quantization, and the
//! spread of its random values.
//!
//! The storage types follow llama.cpp's `llama-quantize`: `Q4_0`, `Q8_0` and `F16` are "pure"
//! (every matrix in that type, as `--pure` writes them); `Q4_K_M` is llama.cpp's mix (the output
//! matrix, or the tied embedding serving as it, in Q6_K; `attn_v` and `ffn_down` in Q6_K on the
//! first and last eighth of the layers and every third layer between, else Q4_K; a fused
//! `attn_qkv` in Q5_K; every other matrix Q4_K), so a full-size twin reads the bytes per token
//! the real file would. Norms and biases stay F32 as in every GGUF.
//!
//! The spreads keep activations in float's normal range at any depth and context (see
//! [`Role::std`]): the same reasoning real models are initialised by.

use candle_core::quantized::GgmlDType;
use edgebench_core::quant::Quant;

use crate::TwinError;

/// Quantizations any twin can be written in.
pub const TWIN_QUANTS: &[Quant] = &[Quant::F16, Quant::Q8_0, Quant::Q4_0];
/// Quantizations that need rows of whole 256-value blocks (full-size twins have them).
pub const K_QUANTS: &[Quant] = &[Quant::Q4KM];

/// A file quantization a twin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileQuant {
    F16,
    Q8_0,
    Q4_0,
    Q4KM,
}

impl FileQuant {
    pub fn new(quant: Quant) -> Result<Self, TwinError> {
        match quant {
            Quant::F16 => Ok(Self::F16),
            Quant::Q8_0 => Ok(Self::Q8_0),
            Quant::Q4_0 => Ok(Self::Q4_0),
            Quant::Q4KM => Ok(Self::Q4KM),
            other => Err(TwinError::Quant(other)),
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`).
    pub(crate) fn file_type(self) -> u32 {
        match self {
            Self::F16 => Quant::F16,
            Self::Q4_0 => Quant::Q4_0,
            Self::Q8_0 => Quant::Q8_0,
            Self::Q4KM => Quant::Q4KM,
        }
        .file_type()
    }
}

/// What a matrix does in the network: decides its storage type and its spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `token_embd`; `tied` when it is also the output matrix.
    Embedding {
        tied: bool,
    },
    Output,
    Query,
    Key,
    Value,
    /// phi3's fused q/k/v.
    Qkv,
    AttnOutput,
    Gate,
    Up,
    /// phi3's fused gate/up.
    GateUp,
    Down,
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between.
fn more_bits(layer: u32, layers: u32) -> bool {
    let eighth = layers / 8;
    layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2
}

impl Role {
    /// Storage type of this matrix in a file of quantization `quant`.
    pub(crate) fn dtype(self, quant: FileQuant, layer: u32, layers: u32) -> GgmlDType {
        match quant {
            FileQuant::F16 => GgmlDType::F16,
            FileQuant::Q8_0 => GgmlDType::Q8_0,
            FileQuant::Q4_0 => GgmlDType::Q4_0,
            FileQuant::Q4KM => match self {
                Self::Output | Self::Embedding { tied: true } => GgmlDType::Q6K,
                Self::Value | Self::Down if more_bits(layer, layers) => GgmlDType::Q6K,
                Self::Qkv => GgmlDType::Q5K,
                _ => GgmlDType::Q4K,
            },
        }
    }

    /// Standard deviation of the random values of a matrix with `fan_in` columns in a model of
    /// `layers` layers and width `hidden`.
    ///
    /// Every projection gets 1/√fan_in, so a unit-RMS input gives unit-RMS outputs: q·k/√d is
    /// O(1) at any width (no softmax collapse) and nothing shrinks towards denormals layer after
    /// layer. The two matrices that write into the residual stream get a further 1/√(2·layers)
    /// (GPT-2's residual scaling), so the stream's RMS stays near 1 however deep the model is.
    /// Embeddings get 1/√hidden: logits through a (tied or untied) output matrix then have unit
    /// spread. A fixed 0.02 (the earlier twins) makes q·k vanish in narrow twins and overflow
    /// nothing but wastes the dynamic range, and is not how real models are initialised.
    pub(crate) fn std(self, fan_in: usize, layers: u32, hidden: u32) -> f32 {
        let unit = 1.0 / (fan_in.max(1) as f32).sqrt();
        match self {
            Self::Embedding { .. } | Self::Output => 1.0 / (hidden.max(1) as f32).sqrt(),
            Self::AttnOutput | Self::Down => unit / (2.0 * layers.max(1) as f32).sqrt(),
            _ => unit,
        }
    }
}

/// Spread of the q/k/v biases: small against the unit-RMS projections they are added to.
pub(crate) const BIAS_STD: f32 = 0.02;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_k_m_gives_more_bits_where_llama_cpp_does() {
        // 36 layers (MiMo): eighth = 4 → layers 0..4, 31..36, and 6, 9, … between.
        let chosen: Vec<u32> = (0..36).filter(|&l| more_bits(l, 36)).collect();
        assert_eq!(
            chosen,
            vec![
                0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35
            ]
        );
        let q = FileQuant::Q4KM;
        assert_eq!(Role::Down.dtype(q, 0, 36), GgmlDType::Q6K);
        assert_eq!(Role::Down.dtype(q, 4, 36), GgmlDType::Q4K);
        assert_eq!(Role::Query.dtype(q, 0, 36), GgmlDType::Q4K);
        assert_eq!(Role::Qkv.dtype(q, 4, 32), GgmlDType::Q5K);
        assert_eq!(
            Role::Embedding { tied: true }.dtype(q, 0, 32),
            GgmlDType::Q6K
        );
        assert_eq!(
            Role::Embedding { tied: false }.dtype(q, 0, 32),
            GgmlDType::Q4K
        );
        assert_eq!(Role::Output.dtype(FileQuant::Q4_0, 0, 32), GgmlDType::Q4_0);
    }

    #[test]
    fn residual_writers_are_scaled_by_depth() {
        let plain = Role::Query.std(4096, 36, 4096);
        assert!((plain - 1.0 / 64.0).abs() < 1e-7);
        let down = Role::Down.std(4096, 36, 4096);
        assert!((down - plain / 72f32.sqrt()).abs() < 1e-7);
        assert!((Role::Output.std(4096, 36, 4096) - 1.0 / 64.0).abs() < 1e-7);
    }
}
