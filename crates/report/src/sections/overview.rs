//! The overview: the seed article's first table, MiMo vs Phi-4, every cell with its provenance.

use super::prelude::*;

/// Whether a column's bytes per token are the real model's: real files and full-size twins.
fn real_dimensions(registry: &Registry, id: &str, origin: &str) -> bool {
    origin == "real" || registry.get(id).is_some_and(|m| m.is_full_size_twin())
}

/// The measured roofline share of each column's reference runs, then for every device profile
/// with a published bandwidth the decode speed that share projects there: share × bandwidth ÷
/// bytes read per token (the model file). 1/16 twins get no projection: their bytes per token
/// are not the real model's.
fn phone_projections(
    columns: &[(String, ModelColumn)],
    refs: &[Vec<&Run>],
    registry: &Registry,
) -> Vec<OverviewRow> {
    let shares: Vec<Option<stats::Summary>> = refs
        .iter()
        .map(|rs| {
            let f: Vec<f64> = rs.iter().filter_map(|r| r.roofline_fraction).collect();
            stats::summarize(&f)
        })
        .collect();
    let sizes: Vec<Option<u64>> = refs
        .iter()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.model.as_ref())
                .map(|m| m.size_bytes)
                .min()
        })
        .collect();
    let mut rows = vec![OverviewRow {
        metric: "Roofline share of decode (llama.cpp, one stream)".into(),
        cells: shares
            .iter()
            .map(|s| match s {
                None => Cell::none("no run with a bandwidth probe"),
                Some(s) => Cell {
                    text: format!("{:.0}%", 100.0 * s.median),
                    provenance: Provenance::Measured,
                    detail: format!(
                        "median over n={} runs (range {:.0}–{:.0}%): bytes read per decode step ÷ step time ÷ this device's measured bandwidth",
                        s.n,
                        100.0 * s.min,
                        100.0 * s.max
                    ),
                    ..Cell::default()
                },
            })
            .collect(),
        winner: "—".into(),
    }];
    for profile in device_profile::PROFILES {
        let Some(bandwidth) = profile.bandwidth_bytes_per_s else {
            continue;
        };
        let mut values = Vec::new();
        let cells = columns
            .iter()
            .enumerate()
            .map(|(i, (id, c))| {
                if !real_dimensions(registry, id, &c.origin) {
                    values.push(None);
                    return Cell::none("a 1/16 twin reads far fewer bytes per token than the real model: see its full-size twin");
                }
                let (Some(share), Some(size)) = (&shares[i], sizes[i]) else {
                    values.push(None);
                    return Cell::none("no measured roofline share");
                };
                if size > profile.ram_bytes {
                    values.push(None);
                    return Cell {
                        text: "does not fit".into(),
                        provenance: Provenance::Projected,
                        detail: format!(
                            "the weights alone ({}) exceed {}'s {} of RAM",
                            bytes(size as f64),
                            profile.label,
                            bytes(profile.ram_bytes as f64)
                        ),
                        ..Cell::default()
                    };
                }
                // A share above 100% means the probe beside the run measured less bandwidth
                // than the decode moved: the projection never exceeds the physical bound.
                let used = share.median.min(1.0);
                let tps = used * bandwidth / size as f64;
                values.push(Some(tps));
                Cell {
                    text: format!("{tps:.1} t/s"),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "measured roofline share {:.0}%{} (median of n={} runs here) × {:.1} GB/s ({}) ÷ {} read per token (the smallest file run); the physical bound (share 100%) is {:.1} t/s",
                        100.0 * share.median,
                        if share.median > 1.0 { ", capped at 100% (the bandwidth probe read low)" } else { "" },
                        share.n,
                        bandwidth / GB,
                        profile.source,
                        bytes(size as f64),
                        bandwidth / size as f64
                    ),
                    ..Cell::default()
                }
            })
            .collect();
        rows.push(OverviewRow {
            metric: format!("Projected t/s, {}", profile.label),
            cells,
            winner: winner(columns, &values, true),
        });
    }
    rows
}

pub fn overview(runs: &[&Run], registry: &Registry) -> OverviewSection {
    let columns = model_columns(runs);
    let mut rows = Vec::new();
    let refs: Vec<Vec<&Run>> = columns
        .iter()
        .map(|(id, _)| reference_runs(runs, id))
        .collect();

    // Generation speed.
    let samples: Vec<Vec<f64>> = refs
        .iter()
        .map(|rs| pooled(rs, |s| &s.generation_tokens_per_s))
        .collect();
    rows.push(OverviewRow {
        metric: "Generation tokens/s (one stream, llama.cpp, baseline KV)".into(),
        cells: samples
            .iter()
            .map(|s| measured(s, "t/s", "requests"))
            .collect(),
        winner: winner(
            &columns,
            &samples.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            true,
        ),
    });

    rows.extend(phone_projections(&columns, &refs, registry));

    // Memory footprint.
    let rss: Vec<Vec<f64>> = refs
        .iter()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.peak_rss_bytes)
                .map(|b| b as f64)
                .collect()
        })
        .collect();
    rows.push(OverviewRow {
        metric: "Memory footprint (peak RSS of the case process)".into(),
        cells: rss
            .iter()
            .map(|s| match stats::summarize(s) {
                None => Cell::none("no run"),
                Some(st) => Cell {
                    text: bytes(st.median),
                    provenance: Provenance::Measured,
                    detail: format!(
                        "median over n={} runs, range {} – {}",
                        st.n,
                        bytes(st.min),
                        bytes(st.max)
                    ),
                    ..Cell::default()
                },
            })
            .collect(),
        winner: winner(
            &columns,
            &rss.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            false,
        ),
    });

    // Minimum RAM, projected from the file size and the architecture.
    let mut min_ram = Vec::new();
    let mut min_values = Vec::new();
    for (i, (id, _)) in columns.iter().enumerate() {
        let size = refs[i]
            .iter()
            .chain(runs.iter().filter(|r| model_id(r) == id))
            .filter_map(|r| r.model.as_ref().map(|m| m.size_bytes))
            .min();
        match (registry.get(id), size) {
            (Some(entry), Some(size)) => {
                let context = 4096.min(entry.arch.context);
                let kv = projection::kv_bytes(&entry.arch, KvType::F16, KvType::F16, context, 1);
                let compute = projection::compute_buffer_bytes(&entry.arch, 512, context);
                let total = (size + kv + compute) as f64;
                min_values.push(Some(total));
                min_ram.push(Cell {
                    text: bytes(total),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "smallest file {} + f16 KV at {context} tokens {} + compute buffers {} (projection::compute_buffer_bytes, batch 512)",
                        bytes(size as f64),
                        bytes(kv as f64),
                        bytes(compute as f64)
                    ),
                    ..Cell::default()
                });
            }
            _ => {
                min_values.push(None);
                min_ram.push(Cell::none("model not in models.toml"));
            }
        }
    }
    rows.push(OverviewRow {
        metric: "Minimum RAM (weights + KV at 4K + compute)".into(),
        cells: min_ram,
        winner: winner(&columns, &min_values, false),
    });

    // Context window.
    let ctx: Vec<Option<f64>> = columns
        .iter()
        .map(|(id, _)| registry.get(id).map(|e| f64::from(e.arch.context)))
        .collect();
    rows.push(OverviewRow {
        metric: "Context window".into(),
        cells: ctx
            .iter()
            .map(|c| match c {
                Some(c) => Cell {
                    text: format!("{c:.0} tokens"),
                    provenance: Provenance::Claimed,
                    detail: "the model's metadata (models.toml, from the model card / GGUF)".into(),
                    ..Cell::default()
                },
                None => Cell::none("not in models.toml"),
            })
            .collect(),
        winner: winner(&columns, &ctx, true),
    });

    // Quantizations run.
    rows.push(OverviewRow {
        metric: "Quantizations run".into(),
        cells: columns
            .iter()
            .map(|(id, _)| {
                let q: BTreeSet<&str> = runs
                    .iter()
                    .filter(|r| model_id(r) == id)
                    .map(|r| r.case.quant.as_str())
                    .collect();
                let n = runs.iter().filter(|r| model_id(r) == id).count();
                Cell {
                    text: q.into_iter().collect::<Vec<_>>().join(", "),
                    provenance: Provenance::Measured,
                    detail: format!("{n} passed runs"),
                    ..Cell::default()
                }
            })
            .collect(),
        winner: "—".into(),
    });

    // Multi-turn latency.
    let turns: Vec<Vec<f64>> = columns
        .iter()
        .map(|(id, _)| {
            let rs: Vec<&Run> = runs
                .iter()
                .copied()
                .filter(|r| {
                    model_id(r) == id
                        && r.case.category == "multi_turn"
                        && r.case.backend == BackendKind::LlamaCpp
                })
                .collect();
            pooled(&rs, |s| &s.e2e_ms)
        })
        .collect();
    rows.push(OverviewRow {
        metric: "Multi-turn latency (ms per turn, llama.cpp)".into(),
        cells: turns.iter().map(|s| measured(s, "ms", "turns")).collect(),
        winner: winner(
            &columns,
            &turns.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            false,
        ),
    });

    // Accuracy: the latest accuracy run of each model (llama.cpp preferred), its stored acc.
    let accuracy: Vec<Option<(&Run, &crate::data::Metric)>> = columns
        .iter()
        .map(|(id, _)| {
            let mut rs: Vec<&Run> = runs
                .iter()
                .copied()
                .filter(|r| model_id(r) == id && r.case.category == "accuracy")
                .filter(|r| r.metrics.contains_key("mmlu_acc"))
                .collect();
            rs.sort_by_key(|r| (r.case.backend == BackendKind::LlamaCpp, r.started_at_ms));
            rs.last()
                .and_then(|r| r.metrics.get("mmlu_acc").map(|m| (*r, m)))
        })
        .collect();
    rows.push(OverviewRow {
        metric: "Accuracy (MMLU)".into(),
        cells: accuracy
            .iter()
            .map(|a| match a {
                Some((run, m)) => {
                    // The stored interval is ±1.96 standard errors; show ±1 SE as MMLU tables do.
                    let se = m.ci.map_or(0.0, |(lo, hi)| (hi - lo) / (2.0 * 1.96));
                    Cell {
                        text: format!("{:.1}%", 100.0 * m.median),
                        spread: format!("±{:.1}", 100.0 * se),
                        provenance: Provenance::Measured,
                        detail: format!(
                            "acc by log-likelihood of ' A'…' D' (lm-evaluation-harness's MMLU prompt) on {} questions of the `{}` set, ± 1 standard error; {} run {}",
                            m.n,
                            run.case.scenario,
                            run.case.backend,
                            &run.id[..run.id.len().min(8)]
                        ),
                    }
                }
                None => Cell::none("no accuracy runs in this database"),
            })
            .collect(),
        winner: winner(
            &columns,
            &accuracy
                .iter()
                .map(|a| a.map(|(_, m)| m.median))
                .collect::<Vec<_>>(),
            true,
        ),
    });

    OverviewSection {
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        rows,
        winner_rule: "The winner compares MiMo with Phi-4 of the same origin and scale only (1/16 twins with 1/16 twins, full-size twins with full-size twins, real files with real files), on medians; a twin's number is never a real model's. Full-size twins have the real architectures, dimensions and vocabularies with random weights: their speed and memory are the real models', their text is not.".into(),
    }
}
