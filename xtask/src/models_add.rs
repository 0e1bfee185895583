//! `cargo xtask models add FILE.gguf [--id ID]`: bring your own GGUF in one command, as
//! llama-bench takes `-m FILE`. The architecture facts come from the file's own metadata (read
//! by the validator, which refuses a malformed file with the byte offset), the file is hashed,
//! and the entry is appended to `models.toml`, so a scenario can name the id at once.

use edgebench_core::quant::Quant;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgebench_core::Registry;
// A TOML basic string: the scenario writer's escaping.
use edgebench_core::scenario::toml_string as quoted;
use edgebench_gguf::{MetaValue, Summary};

/// The architecture facts `models.toml` records, read from a GGUF file's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchFacts {
    pub gguf_arch: String,
    pub layers: u64,
    pub hidden: u64,
    pub ffn: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub vocab: u64,
    pub context: u64,
    pub rope_theta: f64,
    pub qkv_bias: bool,
    pub tied_embeddings: bool,
    /// Rotated fraction of each head, when it is not the whole head (Phi-4-mini: 0.75).
    pub partial_rotary: Option<f64>,
    pub sliding_window: Option<u64>,
}

/// The quantization the file says it is (`general.file_type`).
pub fn quantization(summary: &Summary) -> Option<Quant> {
    summary
        .get("general.file_type")
        .and_then(MetaValue::as_u64)
        .and_then(Quant::from_file_type)
}

/// Reads the facts llama.cpp reads for this architecture; a missing required key is an error
/// naming it.
pub fn architecture(summary: &Summary) -> Result<ArchFacts, String> {
    let arch = summary
        .architecture
        .clone()
        .ok_or("no `general.architecture` in the metadata")?;
    let key = |k: &str| format!("{arch}.{k}");
    let uint = |k: &str| -> Result<u64, String> {
        let name = key(k);
        match summary.get(&name) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("`{name}` is {v:?}, not a non-negative integer")),
            None => Err(format!("`{name}` is missing from the metadata")),
        }
    };
    let optional = |k: &str| summary.get(&key(k)).and_then(MetaValue::as_u64);
    let layers = uint("block_count")?;
    let hidden = uint("embedding_length")?;
    let ffn = uint("feed_forward_length")?;
    let heads = uint("attention.head_count")?;
    let kv_heads = optional("attention.head_count_kv").unwrap_or(heads);
    if heads == 0 || kv_heads == 0 {
        return Err(format!("{arch}: head counts must be non-zero"));
    }
    let head_dim = optional("attention.key_length").unwrap_or(hidden / heads);
    let vocab = match summary.get("tokenizer.ggml.tokens") {
        Some(MetaValue::Array { len, .. }) => *len,
        _ => optional("vocab_size")
            .ok_or("no `tokenizer.ggml.tokens` array to count the vocabulary")?,
    };
    let has = |tensor: &str| summary.tensor_names().any(|n| n == tensor);
    let rotary = optional("rope.dimension_count");
    Ok(ArchFacts {
        layers,
        hidden,
        ffn,
        heads,
        kv_heads,
        head_dim,
        vocab,
        context: uint("context_length")?,
        rope_theta: summary
            .get(&key("rope.freq_base"))
            .and_then(MetaValue::as_f64)
            .unwrap_or(10_000.0),
        qkv_bias: has("blk.0.attn_q.bias") || has("blk.0.attn_qkv.bias"),
        tied_embeddings: !has("output.weight"),
        partial_rotary: rotary
            .filter(|&r| r > 0 && r < head_dim)
            .map(|r| r as f64 / head_dim as f64),
        sliding_window: optional("attention.sliding_window"),
        gguf_arch: arch,
    })
}

/// A registry id from a file name: lower case, `[a-z0-9._-]` only.
pub fn id_from_file_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() { "model".into() } else { id }
}

/// The `[[model]]` entry for a file, as text for models.toml.
#[allow(clippy::too_many_arguments)]
pub fn entry_text(
    id: &str,
    name: &str,
    license: &str,
    facts: &ArchFacts,
    quant: &str,
    path_in_registry: &str,
    sha256: &str,
    size: u64,
    added_from: &Path,
) -> String {
    let mut arch = format!(
        "gguf_arch = {}, layers = {}, hidden = {}, ffn = {}, heads = {}, kv_heads = {}, head_dim = {}, vocab = {}, context = {}, rope_theta = {:?}",
        quoted(&facts.gguf_arch),
        facts.layers,
        facts.hidden,
        facts.ffn,
        facts.heads,
        facts.kv_heads,
        facts.head_dim,
        facts.vocab,
        facts.context,
        facts.rope_theta
    );
    if facts.qkv_bias {
        arch.push_str(", qkv_bias = true");
    }
    let _ = write!(arch, ", tied_embeddings = {}", facts.tied_embeddings);
    if let Some(p) = facts.partial_rotary {
        let _ = write!(arch, ", partial_rotary = {p:?}");
    }
    if let Some(w) = facts.sliding_window {
        let _ = write!(arch, ", sliding_window = {w}");
    }
    format!(
        "\n# Added by `cargo xtask models add {}`: the facts below are the file's own metadata.\n[[model]]\nid = {}\nname = {}\nfamily = {}\norigin = \"real\"\nlicense = {}\nobtain = {}\narch = {{ {arch} }}\n\n[[model.file]]\nquant = {}\npath = {}\nsha256 = {}\nsize = {size}\n",
        added_from.display(),
        quoted(id),
        quoted(name),
        quoted(&facts.gguf_arch),
        quoted(license),
        quoted(&format!(
            "your own file, added with `cargo xtask models add {}`; put it back at that path (its sha256 is checked)",
            added_from.display()
        )),
        quoted(quant),
        quoted(path_in_registry),
        quoted(sha256),
    )
}

/// What `models add` did.
#[derive(Debug)]
pub struct Added {
    pub id: String,
    pub quant: String,
    pub registry: PathBuf,
}

/// Adds `file` to the registry at `registry_path` (models.toml), whose files live in
/// `models_dir`: validated, read, hashed, appended, and the whole registry parsed again before
/// it is written (an id already taken, or an entry the registry refuses, changes nothing).
pub fn add(
    registry_path: &Path,
    models_dir: &Path,
    file: &Path,
    id: Option<&str>,
    quant: Option<&str>,
) -> Result<Added> {
    let summary = edgebench_gguf::validate_file(file)?;
    let facts = architecture(&summary).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let quant = match (quant, quantization(&summary)) {
        (Some(q), _) => q
            .parse::<Quant>()
            .map_err(|e| anyhow::anyhow!("--quant: {e}"))?,
        (None, Some(q)) => q,
        (None, None) => bail!(
            "{}: `general.file_type` names no quantization edgebench knows; pass --quant (e.g. --quant Q4_K_M)",
            file.display()
        ),
    };
    let id = id.map_or_else(|| id_from_file_name(file), str::to_owned);
    let text = std::fs::read_to_string(registry_path)
        .with_context(|| format!("reading {}", registry_path.display()))?;
    let registry_name = registry_path.display().to_string();
    let registry = Registry::parse(&registry_name, &text)?;
    if registry.get(&id).is_some() {
        bail!("{registry_name} already has a model `{id}`; choose another with --id");
    }
    let absolute =
        std::fs::canonicalize(file).with_context(|| format!("resolving {}", file.display()))?;
    // Inside the models directory the entry is relative (the project can move); elsewhere the
    // file stays where it is and the entry holds its absolute path.
    let in_registry = std::fs::canonicalize(models_dir)
        .ok()
        .and_then(|dir| absolute.strip_prefix(dir).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| absolute.clone());
    let size = std::fs::metadata(&absolute)?.len();
    let sha256 = crate::models::sha256_file(&absolute)?;
    let text_of = |k: &str| match summary.get(k) {
        Some(MetaValue::Text(t)) => Some(t.chars().take(120).collect::<String>()),
        _ => None,
    };
    let name = text_of("general.name").unwrap_or_else(|| id.clone());
    let license = text_of("general.license")
        .unwrap_or_else(|| "unknown (the file's metadata names none)".into());
    let entry = entry_text(
        &id,
        &format!("{name} ({quant}, added from its GGUF)"),
        &license,
        &facts,
        quant.as_str(),
        &in_registry.to_string_lossy(),
        &sha256,
        size,
        file,
    );
    let mut updated = text.clone();
    if !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&entry);
    Registry::parse(&registry_name, &updated).with_context(|| {
        format!(
            "the entry for {} would not be a valid registry entry",
            file.display()
        )
    })?;
    let partial = registry_path.with_extension("toml.partial");
    std::fs::write(&partial, &updated).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, registry_path)
        .with_context(|| format!("replacing {}", registry_path.display()))?;
    Ok(Added {
        id,
        quant: quant.to_string(),
        registry: registry_path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_file_names_keep_only_safe_characters() {
        assert_eq!(
            id_from_file_name(Path::new("/x/Qwen2.5 0.5B-Instruct(Q4).gguf")),
            "qwen2.5-0.5b-instruct-q4-"
        );
        assert_eq!(id_from_file_name(Path::new("/x/.gguf")), ".gguf");
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
    }

    #[test]
    fn every_real_small_model_reads_back_as_its_hand_written_entry() {
        // models.toml's entries for the real small models were typed from their model cards;
        // the metadata of the files themselves must say the same.
        let root = crate::project_root();
        let registry = crate::models::registry(&root).expect("registry");
        let dir = crate::models_dir(&root);
        let mut compared = 0;
        for id in ["gemma3-270m", "smollm2-135m"] {
            let entry = registry.get(id).expect("entry");
            let file = &entry.files[0];
            let path = dir.join(&file.path);
            assert!(
                path.is_file(),
                "{} missing: run `cargo xtask models fetch`",
                path.display()
            );
            let summary = edgebench_gguf::validate_file(&path).expect("valid");
            let facts = architecture(&summary).expect("facts");
            let a = &entry.arch;
            assert_eq!(
                (
                    facts.gguf_arch.as_str(),
                    facts.layers,
                    facts.hidden,
                    facts.ffn,
                    facts.heads,
                    facts.kv_heads,
                    facts.head_dim,
                    facts.vocab,
                    facts.context,
                    facts.tied_embeddings,
                    facts.qkv_bias,
                    facts.sliding_window,
                ),
                (
                    a.gguf_arch.as_str(),
                    u64::from(a.layers),
                    u64::from(a.hidden),
                    u64::from(a.ffn),
                    u64::from(a.heads),
                    u64::from(a.kv_heads),
                    u64::from(a.head_dim),
                    u64::from(a.vocab),
                    u64::from(a.context),
                    a.tied_embeddings,
                    a.qkv_bias,
                    a.sliding_window.map(u64::from),
                ),
                "{id}"
            );
            assert!((facts.rope_theta - a.rope_theta).abs() < 1.0, "{id} rope θ");
            assert_eq!(quantization(&summary), Some(file.quant), "{id}");
            compared += 1;
        }
        let _ = compared;
    }

    #[test]
    fn adding_a_file_appends_an_entry_the_registry_reads_and_refuses_a_taken_id() {
        let root = crate::project_root();
        let dir = crate::models_dir(&root);
        let src = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            src.is_file(),
            "{} missing: run `cargo xtask models fetch`",
            src.display()
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let registry = tmp.path().join("models.toml");
        std::fs::copy(root.join("models.toml"), &registry).expect("copy registry");
        let added = add(&registry, &dir, &src, Some("my-smollm2"), None).expect("added");
        assert_eq!(
            (added.id.as_str(), added.quant.as_str()),
            ("my-smollm2", "Q4_1")
        );
        let text = std::fs::read_to_string(&registry).expect("read");
        let parsed = Registry::parse("models.toml", &text).expect("parses");
        let entry = parsed.get("my-smollm2").expect("the new entry");
        let original = parsed.get("smollm2-135m").expect("original");
        assert_eq!(entry.arch.layers, original.arch.layers);
        assert_eq!(
            entry.files[0].path, "SmolLM2-135M-Instruct.Q4_1.gguf",
            "relative inside models/"
        );
        assert_eq!(entry.files[0].sha256, original.files[0].sha256);
        // The same id again: refused, the registry unchanged.
        let err = add(&registry, &dir, &src, Some("my-smollm2"), None)
            .expect_err("taken")
            .to_string();
        assert!(err.contains("already has a model `my-smollm2`"), "{err}");
        assert_eq!(std::fs::read_to_string(&registry).expect("read"), text);
        // A file that is not GGUF: the validator's located error, the registry unchanged.
        let junk = tmp.path().join("junk.gguf");
        std::fs::write(&junk, b"not a model at all, just text").expect("write");
        let err = format!(
            "{:#}",
            add(&registry, &dir, &junk, None, None).expect_err("junk")
        );
        assert!(
            err.contains("junk.gguf") && err.contains("byte offset 0"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&registry).expect("read"), text);
    }
}
