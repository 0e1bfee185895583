//! Which runs belong to which model: families (MiMo, Phi-4), the columns of the model tables, the seed article's pairings and the winner rule.

use super::prelude::*;

pub(crate) fn pooled(runs: &[&Run], f: impl Fn(&Samples) -> &Vec<f64>) -> Vec<f64> {
    runs.iter()
        .flat_map(|r| f(&r.samples).iter().copied())
        .collect()
}

/// `mimo` or `phi` for the two models the seed compares (twins included), else `None`.
pub(crate) fn family(registry_id: &str) -> Option<&'static str> {
    if registry_id.starts_with("mimo-7b") {
        Some("mimo")
    } else if registry_id.starts_with("phi-4-mini") {
        Some("phi")
    } else {
        None
    }
}

/// Models in the selection, in a stable order: real MiMo/Phi first, then twins, then others.
pub fn model_columns(runs: &[&Run]) -> Vec<(String, ModelColumn)> {
    let mut seen: BTreeMap<(u8, String), ModelColumn> = BTreeMap::new();
    for r in runs {
        let Some(m) = &r.model else { continue };
        let rank = match (family(&m.registry_id), m.origin.as_str()) {
            (Some(_), "real") => 0,
            (Some(_), _) => 1,
            _ => 2,
        };
        seen.entry((rank, m.registry_id.clone()))
            .or_insert_with(|| ModelColumn {
                label: m.label.clone(),
                origin: m.origin.clone(),
            });
    }
    seen.into_iter().map(|((_, id), c)| (id, c)).collect()
}

/// The overview's columns: MiMo-7B and Phi-4-mini at their real dimensions (real files and
/// full-size twins), never 1/16 twins (test fixtures).
pub fn headline_columns(runs: &[&Run], registry: &Registry) -> Vec<(String, ModelColumn)> {
    model_columns(runs)
        .into_iter()
        .filter(|(id, c)| family(id).is_some() && real_dimensions(registry, id, &c.origin))
        .collect()
}

/// Whether a column's bytes per token are the real model's: real files and full-size twins.
pub(crate) fn real_dimensions(registry: &Registry, id: &str, origin: &str) -> bool {
    origin == "real" || registry.get(id).is_some_and(|m| m.is_full_size_twin())
}

/// The real models that are not MiMo or Phi-4 (the small ones the registry packages ship).
pub fn small_real_columns(runs: &[&Run]) -> Vec<(String, ModelColumn)> {
    model_columns(runs)
        .into_iter()
        .filter(|(id, c)| family(id).is_none() && c.origin == "real")
        .collect()
}

pub(crate) fn model_id(r: &Run) -> &str {
    r.model.as_ref().map_or("", |m| m.registry_id.as_str())
}

/// The single-stream reference runs of a model: llama.cpp, one sequence, baseline KV.
pub(crate) fn reference_runs<'a>(runs: &[&'a Run], id: &str) -> Vec<&'a Run> {
    runs.iter()
        .copied()
        .filter(|r| {
            model_id(r) == id
                && r.case.backend == BackendKind::LlamaCpp
                && r.case.concurrency == 1
                && r.case.kv_baseline
                && r.case.category != "long_context"
        })
        .collect()
}

/// What follows the family prefix of a registry id (`-twin16`, `-full-twin`, or `` for the real
/// models): MiMo and Phi-4 are paired only at the same scale.
fn scale_suffix(registry_id: &str) -> &str {
    registry_id
        .strip_prefix("mimo-7b")
        .or_else(|| registry_id.strip_prefix("phi-4-mini"))
        .unwrap_or(registry_id)
}

/// The MiMo and Phi-4 column indexes of the same origin and scale (real with real, 1/16 twin
/// with 1/16 twin, full-size twin with full-size twin), for winner and difference columns.
pub(crate) fn seed_pairs(columns: &[(String, ModelColumn)]) -> Vec<(usize, usize, String)> {
    let mut pairs = Vec::new();
    for (m, (mimo, column)) in columns.iter().enumerate() {
        if family(mimo) != Some("mimo") {
            continue;
        }
        let partner = columns.iter().position(|(id, c)| {
            family(id) == Some("phi")
                && c.origin == column.origin
                && scale_suffix(id) == scale_suffix(mimo)
        });
        if let Some(p) = partner {
            let what = match (column.origin.as_str(), scale_suffix(mimo)) {
                ("real", _) => "real".to_owned(),
                (_, "-full-twin") => "full-size twins".to_owned(),
                (origin, _) => origin.to_owned(),
            };
            pairs.push((m, p, what));
        }
    }
    pairs
}

pub(crate) fn median_of(cell_samples: &[f64]) -> Option<f64> {
    stats::summarize(cell_samples).map(|s| s.median)
}

pub(crate) fn winner(
    columns: &[(String, ModelColumn)],
    values: &[Option<f64>],
    higher_is_better: bool,
) -> String {
    let mut out = Vec::new();
    for (m, p, origin) in seed_pairs(columns) {
        if let (Some(a), Some(b)) = (values[m], values[p]) {
            if a == b {
                out.push(format!("tie ({origin})"));
                continue;
            }
            let m_wins = if higher_is_better { a > b } else { a < b };
            out.push(columns[if m_wins { m } else { p }].1.label.clone());
        }
    }
    if out.is_empty() {
        "—".into()
    } else {
        out.join("; ")
    }
}
