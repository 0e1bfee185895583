//! Repository checks written as ordinary tests, so `cargo test` is the one gate.

use edgebench::catalog::{self, Catalog};
use edgebench::core::scenario::Category;
use edgebench::prompt_set;

#[test]
fn scenario_json_schema_is_fresh() {
    let root = edgebench::paths::root();
    let path = root.join("scenarios/schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = edgebench::core::scenario::file::json_schema();
    assert!(
        committed == current,
        "{} is stale: run `cargo xtask schema` and commit it",
        path.display()
    );
}

#[test]
fn every_shipped_scenario_and_dataset_is_valid() {
    let root = edgebench::paths::root();
    let catalog = Catalog::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let files = catalog::scenario_files(&root).expect("scenario files");
    let mut categories = Vec::new();
    for file in &files {
        let s = catalog::load_scenario(&root, file, &catalog.registry).expect("parses");
        if s.category == Category::Accuracy {
            // An MMLU-format directory: every subject loads, every letter is right equally often
            // (a model that always picks one letter scores exactly 25%). The whole set is
            // checked, whatever subset a scenario scores (`mmlu_quick` takes 8 per subject).
            let settings = edgebench::core::scenario::Accuracy {
                questions_per_subject: None,
                ..match &s.workload {
                    edgebench::core::scenario::Workload::Accuracy(a) => a.clone(),
                    other => panic!("an accuracy scenario scores questions: {other:?}"),
                }
            };
            let set = edgebench::accuracy::load(&root.join(&s.dataset), &settings, None)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut letters = [0usize; 4];
            for (_, _, questions) in &set.subjects {
                for q in questions {
                    letters[q.answer] += 1;
                }
            }
            assert!(
                set.len() >= 80,
                "{}: only {} questions",
                s.dataset,
                set.len()
            );
            assert!(
                letters.iter().all(|n| *n == letters[0]),
                "{}: answers {letters:?}",
                s.dataset
            );
            categories.push(s.category);
            continue;
        }
        let prompts = prompt_set::load(&root.join(&s.dataset)).unwrap_or_else(|e| panic!("{e}"));
        if s.category != Category::LongContext && s.category != Category::KvCache {
            assert!(
                prompts.len() >= 12,
                "{}: only {} prompts",
                s.dataset,
                prompts.len()
            );
        }
        if s.category == Category::LongContext {
            // Long enough for the context claimed: at ~1.3 tokens per word, every prompt must
            // reach the prompt length the scenario asks for.
            for p in &prompts {
                let words = p.turns[0].split_whitespace().count() as f64;
                assert!(
                    words * 1.3 >= f64::from(s.prompt_tokens),
                    "{}: prompt {} has {words} words, too short for {} tokens",
                    s.dataset,
                    p.id,
                    s.prompt_tokens
                );
            }
        }
        categories.push(s.category);
    }
    for needed in [
        Category::CodeGeneration,
        Category::MathReasoning,
        Category::LongContext,
        Category::MultiTurn,
        Category::BatchConcurrent,
        Category::KvCache,
        Category::Accuracy,
    ] {
        assert!(
            categories.contains(&needed),
            "no scenario for {}",
            needed.as_str()
        );
    }
}

#[test]
fn case_names_select_as_users_expect() {
    let catalog = Catalog::load(&edgebench::paths::root()).expect("catalog");
    let names: Vec<&str> = catalog.cases.iter().map(|c| c.name.as_str()).collect();
    assert!(names.iter().any(|n| n.starts_with("long_context::")));
    assert!(names.iter().any(|n| n.contains("::phi-4-mini::")));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("batch_concurrent::") && n.contains("::c32"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("kv_cache::") && n.ends_with("::q8_0-fa"))
    );
    for n in &names {
        assert!(n.split("::").count() >= 5, "{n}");
    }
}

#[test]
fn registry_twins_match_the_scaling_rule_and_are_labelled() {
    use edgebench::core::registry::Origin;
    let registry = catalog::load_registry(&edgebench::paths::root()).expect("registry");
    let (mut twins, mut full_size) = (0, 0);
    for m in registry.models().filter(|m| m.origin == Origin::Twin) {
        twins += 1;
        let real = registry
            .get(m.twin_of.as_deref().expect("twin_of"))
            .expect("real model listed");
        let scale = m.twin_scale.expect("scale");
        let expected = edgebench::core::twin::scaled(&real.arch, scale, m.arch.vocab);
        assert_eq!(m.arch, expected, "{}: facts differ from twin::scaled", m.id);
        let label = m.label();
        if m.copy_of_file {
            // A copy of the real file: the real facts, the real file's quantizations.
            assert_eq!(m.arch, real.arch, "{}", m.id);
            assert_eq!(
                label,
                format!("{} (twin of the real file, random weights)", real.id)
            );
            for f in &m.files {
                assert!(real.file(f.quant).is_some(), "{}: {}", m.id, f.quant);
            }
        } else if scale == 1 {
            assert_eq!(
                label,
                format!("{} (full-size twin, random weights)", real.id)
            );
            full_size += 1;
        } else {
            assert_eq!(label, format!("{} (twin 1/{scale})", real.id));
        }
    }
    assert!(twins >= 4, "MiMo and Phi-4 twins are registered");
    assert_eq!(
        full_size, 2,
        "MiMo and Phi-4 full-size twins are registered"
    );
}
