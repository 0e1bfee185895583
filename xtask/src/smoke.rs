//! Which scenario cases the CI smoke pass runs: one per scenario file × engine × model family
//! (on the file's first KV variant), and each further KV variant once per file × engine, on
//! the smallest model file present. So every file, every engine, every architecture family and
//! every KV-cache configuration runs at least once, without the same path being run again at
//! every concurrency, thread count, or KV variant × family. `cargo xtask test --all` runs every
//! case.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use edgebench_core::{Case, Registry, Scenario};

/// The case names the smoke pass runs ([`pick`]), preferring cases whose model file is
/// present under `models_dir` (an absent one is reported as ignored with the reason).
pub fn selection(root: &Path, registry: &Registry, models_dir: &Path) -> Result<Vec<String>> {
    let mut chosen = Vec::new();
    for cases in scenario_cases(root, registry)? {
        chosen.extend(pick(&cases, registry, |case| {
            registry
                .get(&case.model)
                .and_then(|m| m.file(case.quant))
                .and_then(|f| std::fs::metadata(models_dir.join(&f.path)).ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
        }));
    }
    Ok(chosen)
}

/// Every case of every scenario file.
pub fn all_cases(root: &Path, registry: &Registry) -> Result<Vec<Case>> {
    Ok(scenario_cases(root, registry)?
        .into_iter()
        .flatten()
        .collect())
}

/// The cases of each scenario file, files in name order.
fn scenario_cases(root: &Path, registry: &Registry) -> Result<Vec<Vec<Case>>> {
    let mut files: Vec<_> = std::fs::read_dir(root.join("scenarios"))
        .context("reading scenarios/")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = format!(
            "scenarios/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        out.push(Scenario::parse(&name, &text, registry)?.expand());
    }
    Ok(out)
}

/// What a smoke pick covers: a family on the file's first KV variant, or a further KV variant
/// on whichever family is cheapest.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Group {
    Family(String),
    Variant(String),
}

/// One case per (scenario, engine, group) of `cases` ([`Group`]); `present` gives the size of
/// a case's model file when it is here. A family pick prefers the first present case in
/// expansion order, a variant pick the present case with the smallest model file.
fn pick(
    cases: &[Case],
    registry: &Registry,
    present: impl Fn(&Case) -> Option<u64>,
) -> Vec<String> {
    let family = |case: &Case| {
        registry
            .get(&case.model)
            .map_or_else(|| case.model.clone(), |m| m.family.clone())
    };
    let first_variant = cases.first().map(|c| c.kv.name.clone());
    let group = |case: &Case| {
        if Some(&case.kv.name) == first_variant.as_ref() {
            Group::Family(family(case))
        } else {
            Group::Variant(case.kv.name.clone())
        }
    };
    let mut groups: Vec<(String, String, Group)> = Vec::new();
    for case in cases {
        let key = (
            case.scenario.name.clone(),
            case.backend.as_str().to_owned(),
            group(case),
        );
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    groups
        .iter()
        .filter_map(|(scenario, backend, g)| {
            let in_group: Vec<&Case> = cases
                .iter()
                .filter(|c| {
                    &c.scenario.name == scenario && c.backend.as_str() == backend && &group(c) == g
                })
                .collect();
            let chosen = match g {
                Group::Family(_) => in_group.iter().find(|c| present(c).is_some()),
                Group::Variant(_) => in_group
                    .iter()
                    .filter_map(|c| present(c).map(|size| (size, c)))
                    .min_by_key(|(size, _)| *size)
                    .map(|(_, c)| c),
            };
            chosen.or_else(|| in_group.first()).map(|c| c.name.clone())
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_engine_family_and_kv_variant_is_covered_once_by_a_runnable_case() {
        let root = crate::project_root();
        let registry = crate::models::registry(&root).expect("registry");
        // Pretend only the 1/16 twins are present (the real MiMo/Phi files never are here, nor
        // the full-size twins in CI), the Phi twin's file the smaller.
        let size = |case: &Case| match case.model.as_str() {
            "phi-4-mini-twin16" => Some(1),
            m if m.contains("full-twin") => None,
            m if m.contains("twin") => Some(2),
            _ => None,
        };
        let mut all = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("scenarios"))
            .expect("scenarios")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let mut picked = Vec::new();
        let mut first_variants = std::collections::BTreeMap::new();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("read");
            let cases = Scenario::parse("s.toml", &text, &registry)
                .expect("valid")
                .expand();
            first_variants.insert(cases[0].scenario.name.clone(), cases[0].kv.name.clone());
            picked.extend(pick(&cases, &registry, size));
            all.extend(cases);
        }
        assert!(
            picked.len() < all.len(),
            "{} of {}",
            picked.len(),
            all.len()
        );
        let family = |c: &Case| registry.get(&c.model).map(|m| m.family.clone());
        let is_first = |c: &Case| first_variants[&c.scenario.name] == c.kv.name;
        let picked_cases: Vec<&Case> = picked
            .iter()
            .map(|n| all.iter().find(|c| &c.name == n).expect("a real case"))
            .collect();
        // Every (scenario, engine, family) on the first KV variant: exactly one pick.
        let family_key = |c: &Case| (c.scenario.name.clone(), c.backend, family(c));
        let families: BTreeSet<_> = all.iter().filter(|c| is_first(c)).map(family_key).collect();
        let picked_families: Vec<_> = picked_cases
            .iter()
            .filter(|c| is_first(c))
            .map(|c| family_key(c))
            .collect();
        assert_eq!(
            picked_families.iter().cloned().collect::<BTreeSet<_>>(),
            families
        );
        assert_eq!(picked_families.len(), families.len(), "one case per family");
        // Every further KV variant: one pick per (scenario, engine), on the smallest file.
        let variant_key = |c: &Case| (c.scenario.name.clone(), c.backend, c.kv.name.clone());
        let variants: BTreeSet<_> = all
            .iter()
            .filter(|c| !is_first(c))
            .map(variant_key)
            .collect();
        assert!(!variants.is_empty(), "kv_cache.toml has variants");
        let picked_variants: Vec<&&Case> = picked_cases.iter().filter(|c| !is_first(c)).collect();
        assert_eq!(
            picked_variants
                .iter()
                .map(|c| variant_key(c))
                .collect::<BTreeSet<_>>(),
            variants
        );
        assert_eq!(
            picked_variants.len(),
            variants.len(),
            "one case per variant"
        );
        // (A file whose models are all absent, like the full-size ones in CI, reports its
        // variants as ignored.)
        for c in picked_variants.iter().filter(|c| size(c).is_some()) {
            assert_eq!(
                c.model, "phi-4-mini-twin16",
                "{}: the smallest file",
                c.name
            );
        }
        // Where a family has a twin, the twin (present) is chosen over the absent real file.
        for c in picked_cases.iter().filter(|c| is_first(c)) {
            let family_has_twin = all
                .iter()
                .any(|o| family_key(o) == family_key(c) && is_first(o) && size(o).is_some());
            assert!(!family_has_twin || size(c).is_some(), "{}", c.name);
        }
    }
}
