//! Text-only checks of the source tree, run by `cargo xtask test` before anything heavy builds
//! (they fail in seconds) and as unit tests of xtask: no import circle between the modules of a
//! crate, and one build (every member depends on the workspace-hack crate).

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

/// What the text-only checks find wrong, one line each (empty: all good).
pub fn problems(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
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

    /// The workspace as it is: no crate has an import circle, every member is on the hack.
    #[test]
    fn the_workspace_has_no_import_circle_and_one_build() {
        let problems = problems(&crate::project_root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
