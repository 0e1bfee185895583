//! Text-only checks of the source tree, run by `cargo xtask test` before anything heavy builds
//! (they fail in seconds) and as unit tests of xtask: no import circle between the modules of a
//! crate; one build (every member depends on the workspace-hack crate); the architecture's
//! invariants (only `engines` names an engine, only `record` maps runs to store rows, the report
//! never writes or speaks SQL, ARCHITECTURE.md names every crate and module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments and its `#[cfg(test)]` tail (tests may reach
/// anywhere).
fn code_of(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers after each occurrence of `prefix` (and inside `prefix{a, b::c}` groups).
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // A whole path segment: `crate::` not `somecrate::`.
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item);
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The crate's top-level modules and which other top-level modules each one uses.
pub fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Ok(rel) = file.strip_prefix(src) else {
            continue;
        };
        let mut parts: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts
            .last()
            .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
        {
            parts.pop();
        }
        let Some(top) = parts.first().cloned() else {
            continue;
        };
        if parts
            .last()
            .is_some_and(|p| p == "tests" || p.ends_with("_tests"))
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let code = code_of(&text);
        let mut uses = names_after(&code, "crate::");
        if parts.len() == 1 {
            uses.extend(names_after(&code, "super::"));
        }
        uses.remove(&top);
        graph.entry(top).or_default().extend(uses);
    }
    // Only edges between the crate's own modules.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|m| modules.contains(m));
    }
    graph
}

/// Every import circle in `graph`, each as its modules in order, starting from the smallest.
pub fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        let Some(node) = path.last().cloned() else {
            return;
        };
        for next in graph.get(&node).into_iter().flatten() {
            if let Some(i) = path.iter().position(|p| p == next) {
                let cycle = &path[i..];
                let start = (0..cycle.len()).min_by_key(|&k| &cycle[k]).unwrap_or(0);
                found.insert([&cycle[start..], &cycle[..start]].concat());
            } else if !done.contains(next) {
                path.push(next.clone());
                visit(graph, path, done, found);
                path.pop();
            }
        }
        done.insert(node);
    }
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        visit(
            graph,
            &mut vec![start.clone()],
            &mut BTreeSet::new(),
            &mut found,
        );
    }
    found
}

/// The source directories of every crate of the workspace.
fn source_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("src"), root.join("xtask/src")];
    if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
        let mut crates: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("src")).collect();
        crates.sort();
        dirs.extend(crates.into_iter().filter(|d| d.is_dir()));
    }
    dirs
}

/// `FILE names `NAME`` for every file of `files` whose text contains one of `names`.
fn naming(root: &Path, files: &[PathBuf], names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for name in names.iter().filter(|n| text.contains(*n)) {
            found.push(format!(
                "{} names `{name}`",
                file.strip_prefix(root).unwrap_or(file).display()
            ));
        }
    }
    found
}

/// Architecture invariant: `src/engines.rs` is the only module of the pipeline (and the
/// harness) that names an engine's own crates or types; everything else asks `&dyn Backend`.
pub fn engine_names_outside_engines(root: &Path) -> Vec<String> {
    let engine_names = [
        "edgebench_llama",
        "edgebench_candle",
        "edgebench_http",
        "llama_cpp_2",
        "llama_cpp_sys_2",
        "candle_core",
        "candle_transformers",
        "LlamaCpp::",
        "Candle::",
    ];
    let files: Vec<PathBuf> = ["src", "harness"]
        .iter()
        .flat_map(|dir| rust_files(&root.join(dir)))
        .filter(|f| !f.ends_with("src/engines.rs"))
        .collect();
    naming(root, &files, &engine_names)
        .into_iter()
        .map(|o| format!("{o}: only src/engines.rs may name an engine; ask the Backend trait"))
        .collect()
}

/// Architecture invariant: the stages before `record` work with domain types only; `record` is
/// the one mapping from a run to store rows.
pub fn store_rows_outside_record(root: &Path) -> Vec<String> {
    let upstream = [
        "src/catalog.rs",
        "src/preflight.rs",
        "src/plan.rs",
        "src/accuracy.rs",
        "src/engines.rs",
        "src/prompt_set.rs",
    ];
    let mut files: Vec<PathBuf> = upstream.iter().map(|f| root.join(f)).collect();
    files.extend(rust_files(&root.join("src/execute")));
    let mut found: Vec<String> = naming(root, &files, &["edgebench_store"])
        .into_iter()
        .map(|o| format!("{o}: map store rows in src/record/"))
        .collect();
    found.extend(row_literals_outside_record(root));
    found
}

/// Every pipeline module and the harness: a store row (`pub struct …Row` of the store's
/// `rows.rs`) is built in `src/record/` only; the others hand it domain values.
fn row_literals_outside_record(root: &Path) -> Vec<String> {
    let rows = std::fs::read_to_string(root.join("crates/store/src/rows.rs")).unwrap_or_default();
    let names: Vec<&str> = rows
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub struct "))
        .filter_map(|l| l.split(|c: char| !c.is_alphanumeric()).next())
        .filter(|n| n.ends_with("Row"))
        .collect();
    let mut files = rust_files(&root.join("src"));
    files.extend(rust_files(&root.join("harness")));
    let record = root.join("src/record");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&record)) {
        let code = code_of(&std::fs::read_to_string(file).unwrap_or_default());
        for name in &names {
            let literal = code.match_indices(&format!("{name} {{")).any(|(i, _)| {
                let before = code[..i].trim_end();
                let path_ok = before.ends_with("::")
                    || before.ends_with(|c: char| !c.is_alphanumeric() && c != '_');
                // Not a type in a signature or a declaration.
                path_ok
                    && !before.ends_with("->")
                    && !before.ends_with("struct")
                    && !before.ends_with("impl")
                    && !before.ends_with("for")
            });
            if literal {
                found.push(format!(
                    "{} builds a `{name}`: store rows are built in src/record/",
                    file.strip_prefix(root).unwrap_or(file).display()
                ));
            }
        }
    }
    found
}

/// Architecture invariant: the report reads; it never writes to the database it renders (an
/// older one is read through a migrated private copy, which the store makes). It speaks no SQL
/// at all: it renders from the store's read API (`edgebench_store::dataset`).
pub fn report_writes_or_sql(root: &Path) -> Vec<String> {
    let writes = [
        "INSERT ",
        "UPDATE ",
        "DELETE ",
        "REPLACE ",
        "CREATE ",
        "DROP ",
        "ALTER ",
        "VACUUM",
        "user_version =",
        "execute_batch",
        ".execute(",
        "Store::open",
        "SQLITE_OPEN_READ_WRITE",
        "rusqlite",
        "SELECT ",
    ];
    let mut offenders = Vec::new();
    for file in rust_files(&root.join("crates/report/src")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for w in writes {
                if code.contains(w) {
                    offenders.push(format!(
                        "{}:{}: `{w}`: the report crate never writes and speaks no SQL",
                        file.strip_prefix(root).unwrap_or(&file).display(),
                        i + 1
                    ));
                }
            }
        }
    }
    offenders
}

/// ARCHITECTURE.md stays true: its code map names every crate, every module of the pipeline
/// crate and of xtask, and the harness.
pub fn unmapped_in_architecture(root: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let mut missing = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !doc.contains(&format!("crates/{name}")) {
                missing.push(format!("crates/{name}"));
            }
        }
    }
    for dir in ["src", "xtask/src", "harness"] {
        for file in rust_files(&root.join(dir)) {
            let rel = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let is_entry = rel.ends_with("/lib.rs") || rel.ends_with("/main.rs");
            let is_test = rel.ends_with("_tests.rs");
            if !is_entry && !is_test && !doc.contains(&rel) {
                missing.push(rel);
            }
        }
    }
    missing
        .into_iter()
        .map(|m| format!("ARCHITECTURE.md's code map does not mention {m}"))
        .collect()
}

/// What the text-only checks find wrong, one line each (empty: all good).
pub fn problems(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(engine_names_outside_engines(root));
    out.extend(store_rows_outside_record(root));
    out.extend(report_writes_or_sql(root));
    out.extend(unmapped_in_architecture(root));
    for dir in source_dirs(root) {
        for circle in circles(&module_graph(&dir)) {
            out.push(format!(
                "{}: import circle {} → {}",
                dir.strip_prefix(root).unwrap_or(&dir).display(),
                circle.join(" → "),
                circle[0]
            ));
        }
    }
    let mut manifests = vec![root.join("Cargo.toml"), root.join("xtask/Cargo.toml")];
    manifests.extend(
        source_dirs(root)
            .into_iter()
            .filter_map(|d| d.parent().map(|p| p.join("Cargo.toml")))
            .filter(|m| {
                m.starts_with(root.join("crates"))
                    && !m.starts_with(root.join("crates/workspace-hack"))
            }),
    );
    for m in manifests {
        let text = std::fs::read_to_string(&m).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.starts_with("edgebench-workspace-hack = "))
        {
            out.push(format!(
                "{}: does not depend on edgebench-workspace-hack (run `cargo hakari manage-deps`): one build needs every member on it",
                m.strip_prefix(root).unwrap_or(&m).display()
            ));
        }
    }
    // The hack must stay buildable everywhere xtask is: no llama.cpp (cmake), no accelerator.
    let hack =
        std::fs::read_to_string(root.join("crates/workspace-hack/Cargo.toml")).unwrap_or_default();
    for banned in ["llama-cpp", "\"cuda\"", "\"metal\"", "cudarc"] {
        if hack.contains(banned) {
            out.push(format!(
                "crates/workspace-hack/Cargo.toml names {banned}: see .config/hakari.toml's excludes"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).into()).or_default().insert((*b).into());
            g.entry((*b).into()).or_default();
        }
        g
    }

    #[test]
    fn circles_are_found_and_named_once() {
        assert!(circles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
        let found = circles(&graph(&[
            ("sql", "exchange"),
            ("exchange", "sql"),
            ("x", "sql"),
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found.iter().next().map(Vec::len), Some(2));
        let three = circles(&graph(&[("a", "b"), ("b", "c"), ("c", "a")]));
        assert_eq!(three.len(), 1, "{three:?}");
    }

    #[test]
    fn uses_are_read_from_code_not_comments_or_tests() {
        let code = code_of(
            "use crate::{a, b::C};\n// see [`crate::d`]\nfn f() { crate::e::g(); super::h(); }\n#[cfg(test)]\nmod tests { use crate::z; }\n",
        );
        assert_eq!(
            names_after(&code, "crate::"),
            ["a", "b", "e"].into_iter().map(String::from).collect()
        );
        assert_eq!(
            names_after("edgebench_crate::x", "crate::"),
            BTreeSet::new()
        );
    }

    /// The workspace as it is: no crate has an import circle, every member is on the hack, and
    /// every architecture invariant holds.
    #[test]
    fn the_workspace_passes_every_text_check() {
        let problems = problems(&crate::project_root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Each invariant check finds what it guards against (a copy of the tree, broken on purpose).
    #[test]
    fn each_invariant_check_fails_on_its_defect() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
            std::fs::write(p, text).expect("write");
        };
        write(
            "crates/store/src/rows.rs",
            "pub struct NewRunRow {\n    pub id: String,\n}\n",
        );
        write(
            "src/runner.rs",
            "fn begin() -> NewRunRow {\n    edgebench_store::NewRunRow { id: run_id }\n}\n",
        );
        assert!(
            row_literals_outside_record(root)
                .iter()
                .any(|m| m.contains("src/runner.rs builds a `NewRunRow`")),
            "{:?}",
            row_literals_outside_record(root)
        );
        write(
            "src/execute/measure.rs",
            "use edgebench_llama::LlamaCpp;\nuse edgebench_store::RunRow;\n",
        );
        write(
            "crates/report/src/lib.rs",
            "fn f() { conn.execute(\"INSERT INTO runs\"); }\n",
        );
        write("ARCHITECTURE.md", "# Architecture\n");
        assert!(!engine_names_outside_engines(root).is_empty());
        assert!(!store_rows_outside_record(root).is_empty());
        assert!(!report_writes_or_sql(root).is_empty());
        let missing = unmapped_in_architecture(root);
        assert!(
            missing.iter().any(|m| m.contains("crates/report"))
                && missing.iter().any(|m| m.contains("src/execute/measure.rs")),
            "{missing:?}"
        );
    }
}
