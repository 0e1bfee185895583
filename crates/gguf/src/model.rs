//! What llama.cpp needs of a model beyond a well-formed file: the keys it refuses to load
//! without, vocabulary arrays of one length, and the tensors of uniform-layer architectures.

use crate::llama_names::{
    ARCHITECTURES, BPE_PRE_TOKENIZERS, BPE_TOKENIZER_MODELS, TOKENIZER_MODELS,
};
use crate::{Defect, MetaValue, Summary, shown};

/// The architecture families whose hyperparameters llama.cpp requires an RMS-norm epsilon for.
const RMS_NORM_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3"];

/// What llama.cpp refuses a file without (`key not found in model`, `cannot find tokenizer
/// vocab`), and vocabulary arrays whose lengths disagree (it indexes the scores and token types
/// by token id). Checked once the metadata is read; `at` is where the metadata ends.
pub(crate) fn required_keys(
    metadata: &[(String, MetaValue)],
    architecture: Option<&str>,
    at: u64,
) -> Result<(), Defect> {
    let missing = |key: &str| Defect {
        offset: at,
        problem: format!(
            "the metadata has no `{}` (llama.cpp refuses the file without it)",
            shown(key)
        ),
    };
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let Some(arch) = architecture else {
        return Err(missing("general.architecture"));
    };
    if arch.is_empty() {
        return Err(missing("general.architecture"));
    }
    let unknown = |what: &str, value: &str, known: &[&str]| Defect {
        offset: at,
        problem: format!(
            "{what} `{}` is none of the {} llama.cpp knows (it refuses the file){}",
            shown(value),
            known.len(),
            closest(value, known).map_or(String::new(), |c| format!("; did you mean `{c}`?"))
        ),
    };
    if !ARCHITECTURES.contains(&arch) {
        return Err(unknown("architecture", arch, ARCHITECTURES));
    }
    let mut required: Vec<String> = [
        "context_length",
        "embedding_length",
        "block_count",
        "attention.head_count",
    ]
    .iter()
    .map(|k| format!("{arch}.{k}"))
    .collect();
    if RMS_NORM_ARCHS.contains(&arch) {
        required.push(format!("{arch}.attention.layer_norm_rms_epsilon"));
    }
    required.push("tokenizer.ggml.model".into());
    required.push("tokenizer.ggml.tokens".into());
    for key in &required {
        if get(key).is_none() {
            return Err(missing(key));
        }
    }
    let text_of = |key: &str| match get(key) {
        Some(MetaValue::Text(text)) => Some(text.as_str()),
        _ => None,
    };
    if let Some(tokenizer) = text_of("tokenizer.ggml.model") {
        if !TOKENIZER_MODELS.contains(&tokenizer) {
            return Err(unknown("tokenizer model", tokenizer, TOKENIZER_MODELS));
        }
        // llama.cpp reads a pre-tokenizer for BPE vocabularies only; empty means `default`.
        if BPE_TOKENIZER_MODELS.contains(&tokenizer)
            && let Some(pre) = text_of("tokenizer.ggml.pre")
            && !pre.is_empty()
            && BPE_PRE_TOKENIZERS.binary_search(&pre).is_err()
        {
            return Err(unknown("pre-tokenizer", pre, BPE_PRE_TOKENIZERS));
        }
    }
    let len_of = |key: &str| match get(key) {
        Some(MetaValue::Array { len, .. }) => Some(*len),
        _ => None,
    };
    if let Some(tokens) = len_of("tokenizer.ggml.tokens") {
        for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
            if let Some(n) = len_of(key)
                && n != tokens
            {
                return Err(Defect {
                    offset: at,
                    problem: format!(
                        "`{key}` has {n} entries for {tokens} tokens (llama.cpp reads one per token)"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Architectures whose every layer holds the same tensors, and the tensors outside the layers
/// llama.cpp knows for them (`token_embd` and `output_norm` required).
const UNIFORM_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3"];
const GLOBAL_TENSORS: &[&str] = &[
    "token_embd.weight",
    "output_norm.weight",
    "output.weight",
    "rope_freqs.weight",
    "rope_factors_long.weight",
    "rope_factors_short.weight",
];

/// The tensor table against the layer count, for the architectures above: llama.cpp looks up
/// each layer's tensors by name (`tensor 'blk.25.attn_k.weight' not found`) and refuses a file
/// with a tensor it did not ask for (`wrong number of tensors`).
pub(crate) fn layer_tensors(summary: &Summary) -> Result<(), Defect> {
    let Some(arch) = summary.architecture.as_deref() else {
        return Ok(());
    };
    if !UNIFORM_ARCHS.contains(&arch) {
        return Ok(());
    }
    let Some(layers) = summary
        .get(&format!("{arch}.block_count"))
        .and_then(MetaValue::as_u64)
    else {
        return Ok(());
    };
    let at = summary.metadata_end;
    let refuse = |problem: String| Defect {
        offset: at,
        problem,
    };
    let mut per_layer: Vec<std::collections::BTreeSet<&str>> = Vec::new();
    for name in summary.tensor_names() {
        if let Some(rest) = name.strip_prefix("blk.") {
            let (index, suffix) = rest.split_once('.').unwrap_or((rest, ""));
            let layer = index
                .parse::<u64>()
                .ok()
                .filter(|&l| l < layers)
                .ok_or_else(|| {
                    refuse(format!(
                        "tensor `{}` names no layer of the {layers} `{arch}.block_count` says (llama.cpp refuses a tensor it does not use)",
                        shown(name)
                    ))
                })?;
            let layer = layer as usize;
            if per_layer.len() <= layer {
                per_layer.resize_with(layer + 1, Default::default);
            }
            per_layer[layer].insert(suffix);
        } else if !GLOBAL_TENSORS.contains(&name) {
            return Err(refuse(format!(
                "tensor `{}` is none llama.cpp's `{arch}` uses (it refuses a tensor it does not use)",
                shown(name)
            )));
        }
    }
    for required in ["token_embd.weight", "output_norm.weight"] {
        if !summary.tensor_names().any(|n| n == required) {
            return Err(refuse(format!(
                "no tensor `{required}` (llama.cpp's `{arch}` needs it)"
            )));
        }
    }
    per_layer.resize_with(layers as usize, Default::default);
    if let Some(first) = per_layer.first() {
        for (layer, tensors) in per_layer.iter().enumerate().skip(1) {
            if let Some(missing) = first.difference(tensors).next() {
                return Err(refuse(format!(
                    "layer {layer} has no `blk.{layer}.{missing}` (every `{arch}` layer has the tensors of layer 0)"
                )));
            }
            if let Some(extra) = tensors.difference(first).next() {
                return Err(refuse(format!(
                    "layer {layer} has `blk.{layer}.{extra}`, which layer 0 lacks (every `{arch}` layer has the same tensors)"
                )));
            }
        }
    }
    Ok(())
}

/// The known name closest to `value`, when one is close enough to be a typo.
fn closest<'a>(value: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(value, k), *k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
