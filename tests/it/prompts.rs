//! Prompt formats on a real instruct model: SmolLM2-135M-Instruct, prompted with raw text,
//! emits its end-of-turn token at once on most prompts (an empty answer); through its GGUF chat
//! template, rendered by llama.cpp, it answers every shipped prompt. Both formats run through
//! the real pipeline (runner, llama.cpp, SQLite), and the stored answers are what is checked.

use crate::common::model;

use edgebench::catalog;
use edgebench::core::Scenario;
use edgebench::engines::reference_vocabulary;
use edgebench::preflight::{Readiness, readiness};
use edgebench::runner::Runner;

/// Every shipped prompt set that generation scenarios use.
const DATASETS: &[(&str, &str)] = &[
    ("code_generation", "code_generation"),
    ("math_reasoning", "math_reasoning"),
    ("batch_concurrent", "batch_concurrent"),
    ("multi_turn", "multi_turn"),
    ("long_context", "long_context"),
];

fn scenario(category: &str, dataset: &str, format_line: &str) -> String {
    format!(
        r#"format = 1
name = "prompt_format"
category = "{category}"
dataset = "datasets/{dataset}.jsonl"
models = ["smollm2-135m"]
quantizations = ["Q4_1"]
backends = ["llama_cpp"]
context = 2048
prompt_tokens = 768
generate_tokens = 12
concurrency = [1]
threads = [2]
seed = 1
warmup = 0
repetitions = 1
{format_line}
"#
    )
}

/// (prompt format stored, every answer of every turn) for one dataset on SmolLM2.
fn answers(dataset: (&str, &str), format_line: &str) -> (Vec<String>, Vec<String>) {
    answers_of(("smollm2-135m", "Q4_1"), dataset, format_line)
}

/// The same for any registry model.
fn answers_of(
    (id, quant): (&str, &str),
    dataset: (&str, &str),
    format_line: &str,
) -> (Vec<String>, Vec<String>) {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("registry");
    let models_dir = edgebench::paths::models_dir(&root);
    let text = scenario(dataset.0, dataset.1, format_line)
        .replace("\"smollm2-135m\"", &format!("\"{id}\""))
        .replace("\"Q4_1\"", &format!("\"{quant}\""));
    let case = Scenario::parse("inline.toml", &text, &registry)
        .expect("scenario")
        .expand()
        .remove(0);
    let Readiness::Ready { model_path } = readiness(&case, &registry, &models_dir) else {
        panic!("{id} should be ready");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let mut runner = Runner::open(&root, &models_dir, &db).expect("runner");
    runner.set_mode(crate::common::planned_repetitions());
    let entry = registry.get(id).expect("entry");
    runner
        .run_case(&case, entry, &model_path)
        .unwrap_or_else(|e| panic!("{}: {e}", dataset.1));
    let conn = runner.store().connection();
    let formats: Vec<String> = conn
        .prepare("SELECT prompt_format FROM runs")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("formats");
    let texts: Vec<String> = conn
        .prepare("SELECT output_text FROM requests ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("texts");
    (formats, texts)
}

#[test]
fn smollm2_answers_every_shipped_prompt_through_its_chat_template() {
    let path = model("smollm2-135m", "Q4_1");
    // The template is the model's own: llama.cpp renders SmolLM2's as ChatML.
    let vocab = reference_vocabulary(&path).expect("vocabulary");
    let rendered = vocab
        .render_chat(
            &[edgebench::backend::ChatMessage {
                role: "user",
                content: "Hello",
            }],
            true,
        )
        .expect("render")
        .expect("SmolLM2 ships a chat template");
    assert!(
        rendered.contains("<|im_start|>user\nHello<|im_end|>")
            && rendered.ends_with("<|im_start|>assistant\n"),
        "{rendered:?}"
    );
    let ids = vocab.tokenize_chat(&rendered, true).expect("tokenize");
    let raw_ids = vocab.tokenize(&rendered, true).expect("tokenize");
    assert!(
        ids.len() < raw_ids.len(),
        "control tokens are parsed as special tokens ({} vs {} ids)",
        ids.len(),
        raw_ids.len()
    );

    let mut raw_empty = 0;
    for &dataset in DATASETS {
        // Default for an instruct model: its chat template.
        let (formats, texts) = answers(dataset, "");
        assert_eq!(formats, vec!["chat".to_owned()], "{}", dataset.1);
        assert!(!texts.is_empty(), "{}", dataset.1);
        for (i, t) in texts.iter().enumerate() {
            assert!(
                t.chars().any(char::is_alphanumeric),
                "{} answer {i} is empty through the chat template: {t:?} (all: {texts:?})",
                dataset.1
            );
        }
        // Raw, on the short single-turn sets (enough to show the difference, cheap in CI).
        if matches!(dataset.0, "code_generation" | "math_reasoning") {
            let (formats, texts) = answers(dataset, "prompt_format = \"raw\"");
            assert_eq!(formats, vec!["raw".to_owned()], "{}", dataset.1);
            raw_empty += texts.iter().filter(|t| t.trim().is_empty()).count();
        }
    }
    // What the chat template fixes: raw prompts leave this instruct model silent.
    assert!(
        raw_empty > 0,
        "raw prompts gave no empty answer: the comparison above shows nothing"
    );
}

#[test]
fn chat_on_a_model_without_a_template_fails_its_case_with_the_reason() {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("registry");
    let models_dir = edgebench::paths::models_dir(&root);
    let text = scenario(
        "code_generation",
        "code_generation",
        "prompt_format = \"chat\"",
    )
    .replace("\"smollm2-135m\"", "\"phi-4-mini-twin16\"")
    .replace("\"Q4_1\"", "\"Q4_0\"");
    let case = Scenario::parse("inline.toml", &text, &registry)
        .expect("scenario")
        .expand()
        .remove(0);
    let Readiness::Ready { model_path } = readiness(&case, &registry, &models_dir) else {
        panic!("the twin is missing: run `cargo xtask models twins`");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut runner =
        Runner::open(&root, &models_dir, &dir.path().join("r.sqlite")).expect("runner");
    let err = runner
        .run_case(
            &case,
            registry.get("phi-4-mini-twin16").expect("entry"),
            &model_path,
        )
        .expect_err("a twin has no chat template")
        .to_string();
    assert!(err.contains("carries no chat template"), "{err}");
}

#[test]
fn gemma_without_a_template_in_its_file_is_prompted_with_the_one_models_toml_names() {
    let path = model("gemma3-270m", "Q4_K_M");
    // The file itself carries none...
    let plain = reference_vocabulary(&path).expect("vocabulary");
    let hello = [edgebench::backend::ChatMessage {
        role: "user",
        content: "Hello",
    }];
    assert_eq!(plain.render_chat(&hello, true).expect("render"), None);
    // ...so models.toml names llama.cpp's built-in Gemma template.
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("registry");
    let entry = registry.get("gemma3-270m").expect("entry");
    assert_eq!(entry.chat_template.as_deref(), Some("gemma"));
    let vocab = edgebench::engines::reference_vocabulary_for(&path, entry.chat_template.as_deref())
        .expect("vocabulary");
    let rendered = vocab
        .render_chat(&hello, true)
        .expect("render")
        .expect("the named template");
    assert_eq!(
        rendered,
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    );
    let (formats, texts) = answers_of(
        ("gemma3-270m", "Q4_K_M"),
        ("code_generation", "code_generation"),
        "",
    );
    assert_eq!(formats, vec!["chat".to_owned()]);
    for (i, t) in texts.iter().enumerate() {
        assert!(
            t.chars().any(char::is_alphanumeric),
            "Gemma's answer {i} is empty through its template: {t:?}"
        );
    }
}

/// A file whose chat template llama.cpp cannot apply fails with a message that names the file,
/// the reason and the two ways out, not llama.cpp's bare `ffi error -1`.
#[test]
fn an_unrenderable_chat_template_names_the_file_the_reason_and_the_way_out() {
    let real = model("smollm2-135m", "Q4_1");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken-template.gguf");
    let mut bytes = std::fs::read(&real).expect("read");
    // Blank the template in place (same length, so every offset stays valid): a template of
    // spaces matches none of llama.cpp's built-in renderings.
    let key = b"tokenizer.chat_template";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("SmolLM2 carries a chat template")
        + key.len();
    let value_type = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!(value_type, 8, "a string");
    let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8 bytes")) as usize;
    bytes[at + 12..at + 12 + len].fill(b' ');
    std::fs::write(&path, &bytes).expect("write");
    let vocabulary = reference_vocabulary(&path).expect("the vocabulary loads");
    let err = vocabulary
        .render_chat(
            &[edgebench::backend::ChatMessage {
                role: "user",
                content: "hello",
            }],
            true,
        )
        .expect_err("an unrenderable template");
    let message = err.to_string();
    for part in [
        path.display().to_string(),
        "tokenizer.chat_template".into(),
        "chat_template = \"chatml\"".into(),
        "prompt_format = \"raw\"".into(),
    ] {
        assert!(message.contains(&part), "missing `{part}`: {message}");
    }
    // The same file's own template, restored, renders.
    let fine = reference_vocabulary(&real).expect("vocabulary");
    assert!(
        fine.render_chat(
            &[edgebench::backend::ChatMessage {
                role: "user",
                content: "hello",
            }],
            true,
        )
        .expect("renders")
        .is_some()
    );
}
