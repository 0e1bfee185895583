//! The corpus of broken scenario files (`tests/data/broken_scenarios/*.toml`): each must be
//! refused with an error that names the file, the line and column of the offending key or
//! value, and what is wrong. Every file's header says what it breaks and what the error must
//! contain:
//!
//! ```toml
//! # broken: a misspelt key
//! # expect-at: 12:1
//! # expect: unknown field `contxt`
//! ```

use edgebench::catalog;
use edgebench::core::broken_input::Promise;

#[test]
fn every_broken_scenario_is_refused_with_file_line_and_cause() {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("models.toml parses");
    let dir = root.join("tests/data/broken_scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 32,
        "the corpus shrank to {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        // Lossy: one file of the corpus is deliberately not UTF-8.
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let kept = Promise::read(&text)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|promise| {
                let outcome = catalog::load_scenario(&root, path, &registry).map(|_| ());
                promise.check(&name, outcome.map_err(|e| e.to_string()))
            });
        if let Err(why) = kept {
            failures.push(why);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_base_is_valid_so_each_file_breaks_one_thing() {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("models.toml parses");
    // type_error.toml with its one change undone must load.
    let broken = std::fs::read_to_string(root.join("tests/data/broken_scenarios/type_error.toml"))
        .expect("read");
    let fixed = broken.replace("seed = \"seven\"", "seed = 7");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fixed.toml");
    std::fs::write(&path, fixed).expect("write");
    // Loaded against the project root, whose datasets/ holds the scenario's prompt set.
    catalog::load_scenario(&root, &path, &registry).expect("the base scenario is valid");
}

#[test]
fn a_case_name_two_files_produce_names_both_files_and_suggests_renaming() {
    let root = edgebench::paths::root();
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path();
    std::fs::create_dir_all(fake.join("scenarios")).expect("scenarios");
    std::fs::create_dir_all(fake.join("datasets")).expect("datasets");
    std::fs::copy(root.join("models.toml"), fake.join("models.toml")).expect("registry");
    std::fs::copy(
        root.join("datasets/code_generation.jsonl"),
        fake.join("datasets/code_generation.jsonl"),
    )
    .expect("dataset");
    let base = String::from_utf8_lossy(
        &std::fs::read(root.join("tests/data/broken_scenarios/type_error.toml")).expect("read"),
    )
    .replace("seed = \"seven\"", "seed = 7");
    std::fs::write(fake.join("scenarios/a.toml"), &base).expect("a");
    std::fs::write(fake.join("scenarios/b.toml"), &base).expect("b");
    let err = edgebench::catalog::Catalog::load(fake)
        .expect_err("two files, one scenario name")
        .to_string();
    assert!(
        err.contains("scenarios/a.toml")
            && err.contains("scenarios/b.toml")
            && err.contains("rename the scenario"),
        "{err}"
    );
}
