//! Which scenario cases the CI smoke pass runs: one per scenario file × engine × model family ×
//! KV variant, so every file, every engine, every architecture family and every KV-cache
//! configuration runs at least once, without the same path being run again at every
//! concurrency and thread count. `cargo xtask test --all` runs every case.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use edgebench_core::{Case, Registry, Scenario};

/// The case names the smoke pass runs: per (scenario, engine, model family, KV variant), the
/// first case in
/// expansion order whose model file is present under `models_dir` (or the first case, which
/// the harness then reports as ignored with the reason, when none is).
pub fn selection(root: &Path, registry: &Registry, models_dir: &Path) -> Result<Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(root.join("scenarios"))
        .context("reading scenarios/")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut chosen = Vec::new();
    for path in files {
        let name = format!(
            "scenarios/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let cases = Scenario::parse(&name, &text, registry)?.expand();
        chosen.extend(pick(&cases, registry, |case| {
            registry
                .get(&case.model)
                .and_then(|m| m.file(&case.quant))
                .is_some_and(|f| models_dir.join(&f.path).is_file())
        }));
    }
    Ok(chosen)
}

/// One case per (scenario, engine, family, KV variant) of `cases`, preferring one that
/// `runnable` accepts.
fn pick(cases: &[Case], registry: &Registry, runnable: impl Fn(&Case) -> bool) -> Vec<String> {
    let family = |case: &Case| {
        registry
            .get(&case.model)
            .map_or_else(|| case.model.clone(), |m| m.family.clone())
    };
    let mut groups: Vec<(String, String, String, String)> = Vec::new();
    for case in cases {
        let key = (
            case.scenario.name.clone(),
            case.backend.as_str().to_owned(),
            family(case),
            case.kv.name.clone(),
        );
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups
        .iter()
        .filter_map(|(scenario, backend, fam, variant)| {
            let in_group: Vec<&Case> = cases
                .iter()
                .filter(|c| {
                    &c.scenario.name == scenario
                        && c.backend.as_str() == backend
                        && &family(c) == fam
                        && &c.kv.name == variant
                })
                .collect();
            in_group
                .iter()
                .find(|c| runnable(c))
                .or_else(|| in_group.first())
                .map(|c| c.name.clone())
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_engine_and_family_is_covered_once_by_a_runnable_case() {
        let root = crate::project_root();
        let registry = crate::models::registry(&root).expect("registry");
        // Pretend only the twins are present: the real MiMo/Phi files never are here.
        let twins_only = |case: &Case| case.model.contains("twin");
        let mut all = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("scenarios"))
            .expect("scenarios")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let mut picked = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("read");
            let cases = Scenario::parse("s.toml", &text, &registry)
                .expect("valid")
                .expand();
            picked.extend(pick(&cases, &registry, twins_only));
            all.extend(cases);
        }
        assert!(
            picked.len() < all.len(),
            "{} of {}",
            picked.len(),
            all.len()
        );
        // Every (scenario, engine, family, KV variant) of the catalog has exactly one pick.
        let key = |c: &Case| {
            let family = registry.get(&c.model).map(|m| m.family.clone());
            (
                c.scenario.name.clone(),
                c.backend,
                family,
                c.kv.name.clone(),
            )
        };
        let groups: BTreeSet<_> = all.iter().map(key).collect();
        let picked_cases: Vec<&Case> = picked
            .iter()
            .map(|n| all.iter().find(|c| &c.name == n).expect("a real case"))
            .collect();
        let picked_groups: BTreeSet<_> = picked_cases.iter().map(|c| key(c)).collect();
        assert_eq!(picked_groups, groups);
        assert_eq!(picked_cases.len(), groups.len(), "one case per group");
        // Where a family has a twin, the twin (present) is chosen over the absent real file.
        for c in &picked_cases {
            let family_has_twin = all.iter().any(|o| key(o) == key(c) && twins_only(o));
            assert!(!family_has_twin || twins_only(c), "{}", c.name);
        }
    }
}
