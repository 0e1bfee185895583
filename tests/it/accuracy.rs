//! Multiple-choice accuracy on the real engines, with the shipped MMLU-format set
//! (`datasets/mmlu`): random-weight twins are refused with the reason, real models score
//! identically on a rerun, and llama.cpp and candle choose the same letter on most questions.

use crate::common;

use std::sync::Arc;

use edgebench::catalog::Catalog;
use edgebench::core::Case;
use edgebench::outcome::AccuracyReport;
use edgebench::preflight::{Readiness, readiness};
use edgebench::runner::Runner;

fn mmlu_case(
    catalog: &Catalog,
    model: &str,
    quant: &str,
    backend: &str,
    per_subject: Option<u32>,
) -> Case {
    let name = format!("mmlu::{model}::{quant}::{backend}::c1");
    let mut case = catalog
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not in scenarios/mmlu.toml"))
        .clone();
    let mut scenario = (*case.scenario).clone();
    if let edgebench::core::scenario::Workload::Accuracy(a) = &mut scenario.workload {
        a.questions_per_subject = per_subject;
    }
    case.scenario = Arc::new(scenario);
    case
}

/// Runs an accuracy case in this process; `None` when the model file is absent (not in CI).
fn score(catalog: &Catalog, case: &Case, db: &std::path::Path) -> Option<AccuracyReport> {
    let root = edgebench::paths::root();
    let models_dir = edgebench::paths::models_dir(&root);
    let model_path = match readiness(case, &catalog.registry, &models_dir) {
        Readiness::Ready { model_path } => model_path,
        Readiness::Skip(reason) | Readiness::Invalid(reason) => {
            // A missing model fails with how to fetch it; any other refusal with its reason.
            common::model(&case.model, case.quant.as_str());
            panic!("{}: {reason}", case.name)
        }
    };
    let mut runner = Runner::open(&root, &models_dir, db).expect("runner");
    let entry = catalog.registry.get(&case.model).expect("entry");
    let report = runner
        .run_case(case, entry, &model_path)
        .expect("case runs");
    let stored: i64 = runner
        .store()
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM answers WHERE run_id = ?1",
            [&report.run_id],
            |r| r.get(0),
        )
        .expect("answers");
    let accuracy = report.accuracy.expect("an accuracy case reports accuracy");
    assert_eq!(
        stored as usize, accuracy.n,
        "{}: one stored row per question",
        case.name
    );
    Some(accuracy)
}

#[test]
fn the_scorer_refuses_twins_with_the_reason_on_both_engines() {
    let root = edgebench::paths::root();
    let catalog = Catalog::load(&root).expect("catalog");
    let models_dir = edgebench::paths::models_dir(&root);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("accuracy.sqlite");
    for model in ["mimo-7b-twin16", "phi-4-mini-twin16"] {
        for backend in ["llama_cpp", "candle"] {
            let case = mmlu_case(&catalog, model, "Q4_0", backend, None);
            // Ignored before anything loads, with the reason.
            match readiness(&case, &catalog.registry, &models_dir) {
                Readiness::Skip(reason) => assert!(
                    reason.starts_with("n/a (random weights)") && reason.contains(model),
                    "{}: {reason}",
                    case.name
                ),
                other => panic!("{}: a twin must be refused, got {other:?}", case.name),
            }
            // And the scorer itself refuses, whoever calls it, even with the file there.
            let entry = catalog.registry.get(model).expect("entry");
            let path = models_dir.join(
                &entry
                    .file(edgebench::core::quant::Quant::Q4_0)
                    .expect("file")
                    .path,
            );
            let mut runner = Runner::open(&root, &models_dir, &db).expect("runner");
            let err = runner
                .run_case(&case, entry, &path)
                .expect_err("a twin is never scored");
            assert!(
                err.to_string().contains("random weights"),
                "{}: {err}",
                case.name
            );
        }
    }
}

fn agreement(a: &str, b: &str) -> f64 {
    let a: Vec<usize> = a.bytes().map(usize::from).collect();
    let b: Vec<usize> = b.bytes().map(usize::from).collect();
    edgebench::core::mmlu::agreement(&a, &b).expect("same questions")
}

#[test]
fn real_models_score_identically_on_a_rerun_and_both_engines_mostly_agree() {
    let root = edgebench::paths::root();
    let catalog = Catalog::load(&root).expect("catalog");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("accuracy.sqlite");
    for &(model, quant) in common::REAL_MODELS {
        // A few questions per subject keep the candle half short: candle runs Gemma 3 at a few
        // tokens/s on 2 cores. `cargo test --test scenarios -- mmlu` scores the whole set.
        let per_subject = if model.starts_with("gemma") { 1 } else { 2 };
        let llama = mmlu_case(&catalog, model, quant, "llama_cpp", Some(per_subject));
        let Some(first) = score(&catalog, &llama, &db) else {
            continue;
        };
        let again = score(&catalog, &llama, &db).expect("second run");
        assert_eq!(
            first.predicted, again.predicted,
            "{model}: greedy scoring is deterministic"
        );
        assert_eq!(first.acc, again.acc);
        let candle = score(
            &catalog,
            &mmlu_case(&catalog, model, quant, "candle", Some(per_subject)),
            &db,
        )
        .expect("candle run");
        let agree = agreement(&first.predicted, &candle.predicted);
        println!(
            "{model}: acc llama.cpp {:.3} ± {:.3}, candle {:.3} ± {:.3} (n = {}); same letter on {:.0}% of questions",
            first.acc,
            first.acc_stderr,
            candle.acc,
            candle.acc_stderr,
            first.n,
            agree * 100.0
        );
        assert!(
            agree > 0.5,
            "{model}: the engines agree on only {:.0}%",
            agree * 100.0
        );
    }
}

#[test]
fn a_missing_or_malformed_set_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = edgebench::core::scenario::Accuracy {
        few_shot: 0,
        subjects: None,
        questions_per_subject: None,
    };
    let err = edgebench::accuracy::load(dir.path(), &settings, None).expect_err("empty dir");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("test")).expect("mkdir");
    std::fs::write(
        dir.path().join("test/bad_test.csv"),
        "Q,a,b,c,d,A\nQ2,a,b,c\n",
    )
    .expect("write");
    let err = edgebench::accuracy::load(dir.path(), &settings, None)
        .expect_err("bad row")
        .to_string();
    assert!(
        err.contains("bad_test.csv:2:") && err.contains("6 columns"),
        "{err}"
    );
    let few = edgebench::core::scenario::Accuracy {
        few_shot: 5,
        ..settings.clone()
    };
    std::fs::write(dir.path().join("test/bad_test.csv"), "Q,a,b,c,d,A\n").expect("write");
    std::fs::create_dir_all(dir.path().join("dev")).expect("mkdir");
    std::fs::write(dir.path().join("dev/bad_dev.csv"), "Q,a,b,c,d,B\n").expect("write");
    let err = edgebench::accuracy::load(dir.path(), &few, None)
        .expect_err("few shots")
        .to_string();
    assert!(
        err.contains("bad_dev.csv") && err.contains("5 few-shot"),
        "{err}"
    );
}
