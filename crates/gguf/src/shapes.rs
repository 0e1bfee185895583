//! Tensor shapes against the hyperparameters, as llama.cpp checks them when it creates each
//! tensor (`check_tensor_dims`: `tensor 'blk.0.attn_q.weight' has wrong shape`). Mirrored for the
//! architectures the registry ships (`models/<arch>.cpp`'s `load_arch_tensors` in the vendored
//! llama.cpp); a tensor whose shape depends on a value llama.cpp derives in ways not mirrored
//! here (per-layer arrays, sliding-window or MLA head sizes) is left to llama.cpp.

use crate::{Defect, MetaValue, Summary, TensorInfo, shown};

/// The architectures whose tensor shapes are checked.
pub(crate) const SHAPED_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3"];

/// The hyperparameters llama.cpp computes the shapes from (`LLAMA_LOAD_LOCALS`), each `None`
/// when it is a per-layer array (layer 0's value is then not known here).
struct Hparams {
    n_embd: Option<u64>,
    n_head: Option<u64>,
    n_head_kv: Option<u64>,
    head_k: Option<u64>,
    head_v: Option<u64>,
    n_ff: Option<u64>,
    n_vocab: Option<u64>,
    n_rot: Option<u64>,
}

impl Hparams {
    fn read(summary: &Summary, arch: &str) -> Self {
        let key = |k: &str| summary.get(&format!("{arch}.{k}"));
        // A scalar as llama.cpp's getter reads it; an absent optional key keeps the default.
        let scalar = |k: &str, default: Option<u64>| match key(k) {
            None => default,
            Some(value) => value.as_u64(),
        };
        let n_embd = scalar("embedding_length", None);
        let n_head = scalar("attention.head_count", None);
        let n_head_kv = scalar("attention.head_count_kv", n_head);
        // llama.cpp: `n_embd / n_head` unless the file says, 0 without heads.
        let per_head = match (n_embd, n_head) {
            (Some(e), Some(h)) => Some(e.checked_div(h).unwrap_or(0)),
            _ => None,
        };
        // Sliding-window layers and MLA take other head sizes, per layer.
        let derived_elsewhere = [
            "attention.key_length_swa",
            "attention.value_length_swa",
            "attention.key_length_mla",
            "attention.value_length_mla",
            "rope.dimension_count_swa",
        ]
        .iter()
        .any(|k| key(k).is_some());
        let (head_k, head_v) = if derived_elsewhere {
            (None, None)
        } else {
            (
                scalar("attention.key_length", per_head),
                scalar("attention.value_length", per_head),
            )
        };
        let n_vocab = match summary.get("tokenizer.ggml.tokens") {
            Some(MetaValue::Array { len, .. }) => Some(*len),
            _ => None,
        };
        Self {
            n_embd,
            n_head,
            n_head_kv,
            head_k,
            head_v,
            // Absent, llama.cpp takes 0 (and then refuses the feed-forward tensors).
            n_ff: scalar("feed_forward_length", Some(0)),
            n_vocab,
            n_rot: if derived_elsewhere {
                None
            } else {
                scalar("rope.dimension_count", head_k)
            },
        }
    }
}

fn mul(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a?.checked_mul(b?)
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a?.checked_add(b?)
}

/// The shape llama.cpp's `arch` creates the tensor `name` with (`blk.N.` already removed for
/// layer tensors), or `None` when it is not checked here.
fn expected_shape(arch: &str, name: &str, hp: &Hparams) -> Option<Vec<u64>> {
    let n_embd = hp.n_embd;
    // qwen2 and phi3 size the query and output projections by n_embd; the others by heads.
    let n_q = if matches!(arch, "qwen2" | "phi3") {
        n_embd
    } else {
        mul(hp.head_k, hp.n_head)
    };
    let n_k = mul(hp.head_k, hp.n_head_kv);
    let n_v = mul(hp.head_v, hp.n_head_kv);
    // phi3, qwen2 and qwen3 give the key projection n_embd_gqa, which is the value's size.
    let n_k = if matches!(arch, "qwen2" | "qwen3" | "phi3") {
        n_v
    } else {
        n_k
    };
    let n_ff_up = if arch == "phi3" {
        mul(Some(2), hp.n_ff)
    } else {
        hp.n_ff
    };
    let shape: Vec<Option<u64>> = match name {
        "token_embd.weight" | "output.weight" => vec![n_embd, hp.n_vocab],
        "output.bias" if arch == "qwen2" => vec![hp.n_vocab],
        "output_norm.weight" | "attn_norm.weight" | "ffn_norm.weight" => vec![n_embd],
        "attn_output.bias" | "ffn_down.bias" if arch == "llama" => vec![n_embd],
        "post_attention_norm.weight" | "post_ffw_norm.weight" if arch == "gemma3" => vec![n_embd],
        "attn_q_norm.weight" | "attn_k_norm.weight" if matches!(arch, "gemma3" | "qwen3") => {
            vec![hp.head_k]
        }
        "attn_q.weight" => vec![n_embd, n_q],
        "attn_k.weight" => vec![n_embd, n_k],
        "attn_v.weight" => vec![n_embd, n_v],
        "attn_q.bias" => vec![n_q],
        "attn_k.bias" => vec![n_k],
        "attn_v.bias" => vec![n_v],
        "attn_qkv.weight" => vec![n_embd, add(add(n_q, n_k), n_v)],
        "attn_qkv.bias" => vec![add(add(n_q, n_k), n_v)],
        "attn_output.weight" => vec![n_q, n_embd],
        "ffn_gate.weight" if arch != "phi3" => vec![n_embd, hp.n_ff],
        "ffn_up.weight" => vec![n_embd, n_ff_up],
        "ffn_down.weight" => vec![hp.n_ff, n_embd],
        "ffn_gate.bias" | "ffn_up.bias" if arch == "llama" => vec![hp.n_ff],
        "rope_freqs.weight" | "rope_factors_long.weight" | "rope_factors_short.weight" => {
            vec![hp.n_rot.map(|r| r / 2)]
        }
        _ => return None,
    };
    shape.into_iter().collect()
}

/// ggml's `ne` as llama.cpp compares it: the listed dimensions, the rest 1.
fn padded(dims: &[u64]) -> [u64; 4] {
    let mut ne = [1; 4];
    for (slot, dim) in ne.iter_mut().zip(dims) {
        *slot = *dim;
    }
    ne
}

fn format_shape(dims: &[u64]) -> String {
    let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Every tensor of a [`SHAPED_ARCHS`] file whose shape llama.cpp would refuse, the first one
/// refused; also llama's `invalid n_rot` (its rotary dimension must be the head size).
pub(crate) fn tensor_shapes(summary: &Summary) -> Result<(), Defect> {
    let Some(arch) = summary.architecture.as_deref() else {
        return Ok(());
    };
    if !SHAPED_ARCHS.contains(&arch) {
        return Ok(());
    }
    let hp = Hparams::read(summary, arch);
    if arch == "llama"
        && let (Some(rot), Some(head)) = (hp.n_rot, hp.head_k)
        && rot != head
    {
        return Err(Defect {
            offset: summary.metadata_end,
            problem: format!(
                "`llama.rope.dimension_count` is {rot}, but a head has {head} dimensions (llama.cpp refuses: `invalid n_rot`)"
            ),
        });
    }
    for TensorInfo {
        name,
        dims,
        entry_offset,
        ..
    } in &summary.tensors
    {
        let local = name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split_once('.'))
            .map_or(name.as_str(), |(_, suffix)| suffix);
        let Some(expected) = expected_shape(arch, local, &hp) else {
            continue;
        };
        if padded(&expected) != padded(dims) {
            return Err(Defect {
                offset: *entry_offset,
                problem: format!(
                    "tensor `{}` has shape {}, but the hyperparameters make it {} (llama.cpp refuses: `wrong shape`)",
                    shown(name),
                    format_shape(dims),
                    format_shape(&expected)
                ),
            });
        }
    }
    Ok(())
}
