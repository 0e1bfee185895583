//! Phi-3 / Phi-4-mini on candle, for GGUF files with llama.cpp's `phi3` layout.
//!
//! candle-transformers 0.11.1 ships `quantized_phi3`, but it rotates the whole head and needs an
//! `output.weight` tensor. Phi-4-mini rotates only 3/4 of each head (`phi3.rope.dimension_count`
//! < head size) and ties its output to the token embedding, so it can't run there. This module
//! follows that implementation (same candle ops, same fused `attn_qkv` and gate/up split) and adds
//! partial rotary embeddings, the tied output and `rope_factors_short` (LongRoPE within the
//! original context). The KV cache is plain tensors, so its size is read from the tensors.

use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{D, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: RmsNorm,
    attn_qkv: QMatMul,
    attn_output: QMatMul,
    ffn_norm: RmsNorm,
    ffn_up: QMatMul,
    ffn_down: QMatMul,
    kv_cache: Option<(Tensor, Tensor)>,
}

/// A Phi-3-family model with its KV cache. Cloning shares the weights (candle tensors are
/// reference-counted) and copies only the cache handles: that is how sessions reset a sequence.
#[derive(Debug, Clone)]
pub struct Phi3 {
    embedding: candle_nn::Embedding,
    layers: Vec<Layer>,
    output_norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    rope_dim: usize,
    ffn_size: usize,
    neg_inf: Tensor,
}

impl Phi3 {
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let md = |key: &str| match ct.metadata.get(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("cannot find {key} in metadata"),
        };
        let n_head = md("phi3.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("phi3.attention.head_count_kv")?.to_u32()? as usize;
        let block_count = md("phi3.block_count")?.to_u32()? as usize;
        let hidden = md("phi3.embedding_length")?.to_u32()? as usize;
        let context = md("phi3.context_length")?.to_u32()? as usize;
        let ffn_size = md("phi3.feed_forward_length")?.to_u32()? as usize;
        let head_dim = hidden / n_head;
        let rope_dim = md("phi3.rope.dimension_count")
            .and_then(|v| v.to_u32())
            .map_or(head_dim, |v| v as usize);
        let eps = f64::from(md("phi3.attention.layer_norm_rms_epsilon")?.to_f32()?);
        let theta = md("phi3.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);

        let factors = if ct.tensor_infos.contains_key("rope_factors_short.weight") {
            let t = ct.tensor(reader, "rope_factors_short.weight", device)?;
            Some(t.dequantize(device)?.to_vec1::<f32>()?)
        } else {
            None
        };
        let (cos, sin) =
            crate::rope_tables(rope_dim, theta, 1.0, factors.as_deref(), context, device)?;

        // Tied output (Gemma 3, Phi-4-mini): the token embedding doubles as the output projection.
        let (embedding, output_norm, output) =
            crate::embedding_norm_output(ct, reader, hidden, eps, device)?;

        let mut layers = Vec::with_capacity(block_count);
        for i in 0..block_count {
            let mut q = |name: &str| ct.tensor(reader, &format!("blk.{i}.{name}.weight"), device);
            layers.push(Layer {
                attn_norm: RmsNorm::from_qtensor(q("attn_norm")?, eps)?,
                attn_qkv: QMatMul::from_qtensor(q("attn_qkv")?)?,
                attn_output: QMatMul::from_qtensor(q("attn_output")?)?,
                ffn_norm: RmsNorm::from_qtensor(q("ffn_norm")?, eps)?,
                ffn_up: QMatMul::from_qtensor(q("ffn_up")?)?,
                ffn_down: QMatMul::from_qtensor(q("ffn_down")?)?,
                kv_cache: None,
            });
        }
        Ok(Self {
            embedding,
            layers,
            output_norm,
            output,
            cos,
            sin,
            n_head,
            n_kv_head,
            head_dim,
            rope_dim,
            ffn_size,
            neg_inf: Tensor::new(f32::NEG_INFINITY, device)?,
        })
    }

    /// Bytes held by the K and V cache tensors of every layer.
    pub fn kv_cache_bytes(&self) -> u64 {
        crate::kv_tensor_bytes(self.layers.iter().map(|l| &l.kv_cache))
    }

    /// Rotates the first `rope_dim` features of each head (NeoX layout, as llama.cpp's phi3) and
    /// passes the rest through.
    fn rope(&self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b, _h, seq_len, _d) = x.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        if self.rope_dim == self.head_dim {
            return candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin);
        }
        let rotated = x.narrow(D::Minus1, 0, self.rope_dim)?.contiguous()?;
        let rotated = candle_nn::rotary_emb::rope(&rotated, &cos, &sin)?;
        let passed = x.narrow(D::Minus1, self.rope_dim, self.head_dim - self.rope_dim)?;
        Tensor::cat(&[&rotated, &passed], D::Minus1)
    }

    /// Logits at the last position of `x` (shape `(1, seq_len)`), appending to the KV cache.
    /// `index_pos` 0 starts a new sequence.
    pub fn forward(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (b, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 {
            None
        } else {
            Some(candle_transformers::utils::build_causal_mask(
                seq_len,
                index_pos,
                x.device(),
            )?)
        };
        let mut xs = self.embedding.forward(x)?;
        let (n_head, n_kv, hd) = (self.n_head, self.n_kv_head, self.head_dim);
        for li in 0..self.layers.len() {
            let residual = xs.clone();
            let ys = self.layers[li].attn_norm.forward(&xs)?;
            let qkv = self.layers[li].attn_qkv.forward(&ys)?;
            let q = qkv.narrow(D::Minus1, 0, n_head * hd)?;
            let k = qkv.narrow(D::Minus1, n_head * hd, n_kv * hd)?;
            let v = qkv.narrow(D::Minus1, (n_head + n_kv) * hd, n_kv * hd)?;
            let q = q.reshape((b, seq_len, n_head, hd))?.transpose(1, 2)?;
            let k = k.reshape((b, seq_len, n_kv, hd))?.transpose(1, 2)?;
            let v = v
                .reshape((b, seq_len, n_kv, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = self.rope(&q, index_pos)?.contiguous()?;
            let k = self.rope(&k, index_pos)?.contiguous()?;
            let layer = &mut self.layers[li];
            let (k, v) = crate::append_kv(&mut layer.kv_cache, k, v, index_pos)?;
            let y = crate::attention(&q, k, v, mask.as_ref(), &self.neg_inf)?;
            let y = layer.attn_output.forward(&y)?;
            let ys = (y + residual)?;
            let residual = ys.clone();
            let h = layer.ffn_norm.forward(&ys)?;
            let up = layer.ffn_up.forward(&h)?;
            let gate = up.narrow(D::Minus1, 0, self.ffn_size)?;
            let up = up.narrow(D::Minus1, self.ffn_size, self.ffn_size)?;
            let h = layer.ffn_down.forward(&(up * gate.silu()?)?)?;
            xs = (h + residual)?;
        }
        let xs = self.output_norm.forward(&xs)?.i((.., seq_len - 1, ..))?;
        self.output.forward(&xs.contiguous()?)
    }
}
