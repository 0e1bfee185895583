//! The seed article's two tables, answered row by row: each claim beside what edgebench says of
//! it (measured here at full size, projected to the device with the arithmetic, or refuted).

use super::claims::{
    ProjectionInputs, check_claim, claim_text, decode_projection, full_size_shares,
};
use super::prelude::*;

/// The seed's tables, in the order `datasets/claims.toml` lists their rows.
const TABLES: [(&str, &str); 2] = [
    ("overview table, ", "Overview"),
    ("test-suite table, ", "Per prompt category"),
];

/// The prompt category a per-category row names.
fn category_of(row: &str) -> Option<&'static str> {
    [
        ("Code Generation", "code_generation"),
        ("Math Reasoning", "math_reasoning"),
        ("Long Context", "long_context"),
        ("Batch 32", "batch_concurrent"),
    ]
    .into_iter()
    .find(|(prefix, _)| row.starts_with(prefix))
    .map(|(_, category)| category)
}

/// The full-size twin (or real file) runs of the real model `model` (`mimo-7b`), llama.cpp.
fn headline_runs<'a>(runs: &[&'a Run], registry: &Registry, model: &str) -> Vec<&'a Run> {
    runs.iter()
        .copied()
        .filter(|r| {
            let id = model_id(r);
            r.case.backend == BackendKind::LlamaCpp
                && (id == model
                    || registry.get(id).is_some_and(|m| {
                        m.is_full_size_twin() && m.twin_of.as_deref() == Some(model)
                    }))
        })
        .collect()
}

fn measured_cell(samples: &[f64], unit: &str, what: &str, scope: &str) -> Cell {
    let mut c = measured(samples, unit, what);
    if c.provenance == Provenance::Measured {
        c.detail = format!("{scope}: {}", c.detail);
    }
    c
}

/// Edgebench's answer to one claim.
fn answer(
    c: &ClaimFile,
    row: &str,
    registry: &Registry,
    runs: &[&Run],
    inputs: &ProjectionInputs<'_>,
) -> Cell {
    let model = c.model.as_deref().unwrap_or("");
    let here = headline_runs(runs, registry, model);
    let scope = format!("{model} at full size on this machine (llama.cpp, 2 threads)");
    match c.kind {
        ClaimKind::DecodeRate => {
            let (Some(arch), Some(bw)) = (
                registry.get(model).map(|e| &e.arch),
                c.device
                    .as_deref()
                    .and_then(device_profile::find)
                    .and_then(|p| p.bandwidth_bytes_per_s),
            ) else {
                return Cell::none("model or device bandwidth unknown");
            };
            let weights = c.weights_gb.unwrap_or(0.0) * GB;
            let bound = claims::decode_rate_bound(
                0.0,
                weights,
                arch,
                c.context.unwrap_or(512),
                c.concurrency.unwrap_or(1),
                bw,
            );
            let Some(p) = decode_projection(c, inputs, bound.limit) else {
                return Cell {
                    text: format!("≤ {:.1} t/s", bound.limit),
                    provenance: Provenance::Projected,
                    detail: format!("the physical bound only: {}", bound.arithmetic),
                    ..Cell::default()
                };
            };
            let measured_here = category_of(row).and_then(|category| {
                let in_category: Vec<&Run> = here
                    .iter()
                    .copied()
                    .filter(|r| r.case.category == category && r.case.concurrency == 1)
                    .collect();
                median_of(&pooled(&in_category, |s| &s.generation_tokens_per_s))
            });
            Cell {
                text: format!("{:.1} t/s", p.mid),
                spread: format!("{:.1}–{:.1}", p.low, p.high),
                provenance: Provenance::Projected,
                detail: format!(
                    "{}; physical bound {:.1} t/s per sequence ({}){}",
                    p.arithmetic,
                    bound.limit,
                    bound.arithmetic.split("; claimed").next().unwrap_or_default(),
                    measured_here.map_or(String::new(), |m| format!(
                        "; measured here on this category at full size: {m:.1} t/s"
                    ))
                ),
            }
        }
        ClaimKind::Footprint => {
            let rss: Vec<f64> = here
                .iter()
                .filter_map(|r| r.peak_rss_bytes)
                .map(|b| b as f64)
                .collect();
            match stats::summarize(&rss) {
                Some(st) => Cell {
                    text: bytes(st.median),
                    provenance: Provenance::Measured,
                    detail: format!(
                        "{scope}: peak RSS, median over n={} runs (range {} – {}), at the file's quantization, not the claim's precision",
                        st.n,
                        bytes(st.min),
                        bytes(st.max)
                    ),
                    ..Cell::default()
                },
                None => Cell::none("no full-size run of this model here"),
            }
        }
        ClaimKind::MinMemory => match (registry.get(model), here.iter().filter_map(|r| r.model.as_ref().map(|m| m.size_bytes)).min()) {
            (Some(entry), Some(size)) => {
                let context = 4096.min(entry.arch.context);
                let kv = projection::kv_bytes(&entry.arch, KvType::F16, KvType::F16, context, 1);
                let compute = projection::compute_buffer_bytes(&entry.arch, 512, context);
                Cell {
                    text: bytes((size + kv + compute) as f64),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "the smallest file run here {} + f16 KV at {context} tokens {} + compute buffers {}",
                        bytes(size as f64),
                        bytes(kv as f64),
                        bytes(compute as f64)
                    ),
                    ..Cell::default()
                }
            }
            _ => Cell::none("no full-size run of this model here"),
        },
        ClaimKind::ContextWindow => match registry.get(model) {
            Some(e) => Cell {
                text: format!("{} tokens", e.arch.context),
                provenance: Provenance::Claimed,
                detail: "the model's GGUF metadata (models.toml)".into(),
                ..Cell::default()
            },
            None => Cell::none("model not in models.toml"),
        },
        ClaimKind::Accuracy => Cell {
            text: "n/a (random weights)".into(),
            provenance: Provenance::None,
            detail: "the full-size twins have random weights, so they are never scored; MMLU needs the real model file".into(),
            ..Cell::default()
        },
        ClaimKind::TurnLatency => {
            let turns: Vec<&Run> = here
                .iter()
                .copied()
                .filter(|r| r.case.category == "multi_turn")
                .collect();
            measured_cell(&pooled(&turns, |s| &s.e2e_ms), "ms", "turns", &scope)
        }
        ClaimKind::QuantizationSupport => {
            let quants: BTreeSet<&str> = here.iter().map(|r| r.case.quant.as_str()).collect();
            if quants.is_empty() {
                Cell::none("no full-size run of this model here")
            } else {
                Cell {
                    text: quants.into_iter().collect::<Vec<_>>().join(", "),
                    provenance: Provenance::Measured,
                    detail: format!("{scope}: the GGUF types run in this selection"),
                    ..Cell::default()
                }
            }
        }
        _ => Cell::none("not a seed-table row"),
    }
}

pub fn seed_tables(
    claims: &ClaimsFile,
    registry: &Registry,
    runs: &[&Run],
    roi_best: Option<f64>,
) -> SeedTableSection {
    let inputs = ProjectionInputs {
        claims,
        shares: full_size_shares(runs, registry),
    };
    let mut rows = Vec::new();
    for (prefix, table) in TABLES {
        for c in claims
            .claim
            .iter()
            .filter(|c| c.source == "seed" && c.location.starts_with(prefix))
        {
            let row = &c.location[prefix.len()..];
            let (verdict, verdict_class, arithmetic) = check_claim(c, registry, roi_best, &inputs);
            rows.push(SeedTableRow {
                table: table.into(),
                row: row.into(),
                model: c.model.clone().unwrap_or_default(),
                claimed: Cell {
                    text: claim_text(c),
                    provenance: Provenance::Claimed,
                    detail: format!("the seed article, {}", c.location),
                    ..Cell::default()
                },
                answer: answer(c, row, registry, runs, &inputs),
                verdict,
                verdict_class: verdict_class.into(),
                arithmetic,
            });
        }
    }
    SeedTableSection { rows }
}
