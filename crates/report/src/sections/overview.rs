//! The overview: the seed article's first table, MiMo vs Phi-4, every cell with its provenance.

use super::prelude::*;

/// The real model a column stands for (`phi-4-mini` for its twins), as published
/// measurements name it.
fn real_model_id<'a>(registry: &'a Registry, id: &'a str) -> &'a str {
    registry
        .get(id)
        .and_then(|m| m.twin_of.as_deref())
        .unwrap_or(id)
}

/// The roofline share row, then for every device profile with a published bandwidth the decode
/// speed projected there: the device class's efficiency fitted on published measurements
/// (`projections`) × bandwidth ÷ bytes read per token (the model file), with the interval the
/// efficiency's spread gives, and the check against a published measurement of the same model
/// in that class where there is one. A profile in no class falls back to the roofline share
/// measured here. 1/16 twins get no projection: their bytes per token are not the real model's.
fn phone_projections(
    columns: &[(String, ModelColumn)],
    refs: &[Vec<&Run>],
    registry: &Registry,
    claims: &ClaimsFile,
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
        metric: "Roofline share of decode here (llama.cpp, one stream)".into(),
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
        let class = projections::class_of(claims, profile.name);
        let fit = class.and_then(|c| projections::class_efficiency(claims, &c.id, None));
        let mut values = Vec::new();
        let cells = columns
            .iter()
            .enumerate()
            .map(|(i, (id, c))| {
                if !real_dimensions(registry, id, &c.origin) {
                    values.push(None);
                    return Cell::none("a 1/16 twin reads far fewer bytes per token than the real model: see its full-size twin");
                }
                let Some(size) = sizes[i] else {
                    values.push(None);
                    return Cell::none("no measured run");
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
                let weights = size as f64;
                if let (Some(class), Some(fit)) = (class, &fit) {
                    let (tps, low, high) = fit.project(bandwidth, weights);
                    values.push(Some(tps));
                    let model = real_model_id(registry, id);
                    let checks = projections::checks_for(claims, &class.id, model);
                    let checked = if checks.is_empty() {
                        format!("no published measurement of {model} in this class to check against")
                    } else {
                        checks
                            .iter()
                            .map(|c| match c.ratio {
                                Some(r) => format!(
                                    "checked against `{}`: projection ÷ published = {r:.2} ({})",
                                    c.measurement,
                                    if c.within_tolerance() == Some(true) { "within 25%" } else { "off by more than 25%" }
                                ),
                                None => format!(
                                    "`{}` is its class's only measurement, so nothing independent checks it",
                                    c.measurement
                                ),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    return Cell {
                        text: format!("{tps:.1} t/s"),
                        spread: format!("{low:.1}–{high:.1}"),
                        provenance: Provenance::Projected,
                        detail: format!(
                            "efficiency {:.0}% ({:.0}–{:.0}%, fitted on {} for {}) × {:.1} GB/s ({}) ÷ {} read per token (this file); {checked}. The physical bound (efficiency 100%) is {:.1} t/s",
                            100.0 * fit.mid(),
                            100.0 * fit.low,
                            100.0 * fit.high,
                            fit.from.join(", "),
                            class.label,
                            bandwidth / GB,
                            profile.source,
                            bytes(weights),
                            bandwidth / weights
                        ),
                    };
                }
                let Some(share) = &shares[i] else {
                    values.push(None);
                    return Cell::none("no published measurement for this device's class and no measured roofline share");
                };
                // A share above 100% means the probe beside the run measured less bandwidth
                // than the decode moved: the projection never exceeds the physical bound.
                let used = share.median.min(1.0);
                let tps = used * bandwidth / weights;
                values.push(Some(tps));
                Cell {
                    text: format!("{tps:.1} t/s"),
                    spread: format!(
                        "{:.1}–{:.1}",
                        share.min.min(1.0) * bandwidth / weights,
                        share.max.min(1.0) * bandwidth / weights
                    ),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "no published measurement for this device's class: this machine's roofline share {:.0}%{} (median of n={} runs, range {:.0}–{:.0}%) × {:.1} GB/s ({}) ÷ {} read per token; the physical bound (share 100%) is {:.1} t/s",
                        100.0 * share.median,
                        if share.median > 1.0 { ", capped at 100% (the bandwidth probe read low)" } else { "" },
                        share.n,
                        100.0 * share.min,
                        100.0 * share.max,
                        bandwidth / GB,
                        profile.source,
                        bytes(weights),
                        bandwidth / weights
                    ),
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

/// Context lengths the fit verdicts are given at.
const FIT_CONTEXTS: [u32; 3] = [4096, 32768, 131072];

/// Per device profile with a bandwidth (the seed's devices): whether weights + f16 KV + compute
/// buffers fit its RAM at 4K, 32K and 128K tokens.
fn fit_verdicts(
    columns: &[(String, ModelColumn)],
    sizes: &[Option<u64>],
    registry: &Registry,
) -> Vec<OverviewRow> {
    device_profile::PROFILES
        .iter()
        .filter(|p| p.bandwidth_bytes_per_s.is_some())
        .map(|profile| {
            let cells = columns
                .iter()
                .zip(sizes)
                .map(|((id, _), size)| {
                    let (Some(entry), Some(size)) = (registry.get(id), size) else {
                        return Cell::none("model not in models.toml or no run");
                    };
                    let mut verdicts = Vec::new();
                    let mut details = Vec::new();
                    for context in FIT_CONTEXTS {
                        let label = format!("{}K", context / 1024);
                        if context > entry.arch.context {
                            verdicts.push(format!("{label} n/a"));
                            details.push(format!(
                                "{label}: beyond the model's {}-token context",
                                entry.arch.context
                            ));
                            continue;
                        }
                        let kv = projection::kv_bytes(&entry.arch, KvType::F16, KvType::F16, context, 1);
                        let compute = projection::compute_buffer_bytes(&entry.arch, 512, context);
                        let total = size + kv + compute;
                        let fits = total <= profile.ram_bytes;
                        verdicts.push(format!("{label} {}", if fits { "✓" } else { "✗" }));
                        details.push(format!(
                            "{label}: {} weights + {} f16 KV + {} compute = {} {} {}",
                            bytes(*size as f64),
                            bytes(kv as f64),
                            bytes(compute as f64),
                            bytes(total as f64),
                            if fits { "≤" } else { ">" },
                            bytes(profile.ram_bytes as f64)
                        ));
                    }
                    Cell {
                        text: verdicts.join(" · "),
                        provenance: Provenance::Projected,
                        detail: format!(
                            "{}; the whole RAM counts as available (the OS and other apps take some of it in practice)",
                            details.join("; ")
                        ),
                        ..Cell::default()
                    }
                })
                .collect();
            OverviewRow {
                metric: format!("Fits {} (weights + KV at 4K / 32K / 128K)", profile.label),
                cells,
                winner: "—".into(),
            }
        })
        .collect()
}

/// The overview: MiMo-7B and Phi-4-mini at their real dimensions (real files, or full-size
/// twins). 1/16 twins are test fixtures and stay out (they are in the every-run table).
pub fn overview(runs: &[&Run], registry: &Registry, claims: &ClaimsFile) -> OverviewSection {
    let columns = headline_columns(runs, registry);
    let note = if columns.is_empty() {
        let fixtures = model_columns(runs)
            .iter()
            .any(|(id, _)| family(id).is_some());
        if fixtures {
            "No MiMo-7B or Phi-4-mini run at full size in the selection (only 1/16 twins, which are test fixtures and stay in the every-run table): the full-size twins were not run; `cargo xtask models twins --full-size` writes them when the disk has room.".into()
        } else {
            "No MiMo-7B or Phi-4-mini run in the selection.".into()
        }
    } else {
        String::new()
    };
    OverviewSection {
        rows: model_table(&columns, runs, registry, claims),
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        winner_rule: "The winner compares MiMo with Phi-4 of the same origin only (full-size twins with full-size twins, real files with real files), on medians; a twin's number is never a real model's. Full-size twins have the real architectures, dimensions and vocabularies with random weights: their speed and memory are the real models', their text is not, so they are never scored for accuracy.".into(),
        note,
        kv_quality: String::new(),
    }
}

impl OverviewSection {
    /// The overview with the KV section's sentence on its fastest variant's quality cost.
    #[must_use]
    pub fn with_kv_quality(self, kv: &KvSection) -> Self {
        Self {
            kv_quality: kv.fastest_quality.clone(),
            ..self
        }
    }
}

/// The real small models side by side, on the same cases, engine and threads.
pub fn small_models(runs: &[&Run], registry: &Registry, claims: &ClaimsFile) -> OverviewSection {
    let columns = small_real_columns(runs);
    OverviewSection {
        rows: model_table(&columns, runs, registry, claims),
        note: if columns.is_empty() {
            "No real small model run in the selection.".into()
        } else {
            String::new()
        },
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        winner_rule: "Like for like: each column pools the same single-stream llama.cpp cases (same prompt categories, threads and KV baseline) of a real model file; no winner is named between models of different sizes.".into(),
        kv_quality: String::new(),
    }
}

/// The rows of a model table (the overview's and the small models'), one cell per column.
fn model_table(
    columns: &[(String, ModelColumn)],
    runs: &[&Run],
    registry: &Registry,
    claims: &ClaimsFile,
) -> Vec<OverviewRow> {
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
            columns,
            &samples.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            true,
        ),
    });

    // Prefill speed: each reference run's stored median, pooled over runs.
    let prefill: Vec<Vec<f64>> = refs
        .iter()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.metrics.get("prefill_tokens_per_s").map(|m| m.median))
                .collect()
        })
        .collect();
    rows.push(OverviewRow {
        metric: "Prefill tokens/s (one stream, llama.cpp)".into(),
        cells: prefill
            .iter()
            .map(|s| measured(s, "t/s", "runs (each its median)"))
            .collect(),
        winner: winner(
            columns,
            &prefill.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            true,
        ),
    });

    // Time to first token.
    let ttft: Vec<Vec<f64>> = refs.iter().map(|rs| pooled(rs, |s| &s.ttft_ms)).collect();
    rows.push(OverviewRow {
        metric: "Time to first token (one stream, llama.cpp)".into(),
        cells: ttft.iter().map(|s| measured(s, "ms", "requests")).collect(),
        winner: winner(
            columns,
            &ttft.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            false,
        ),
    });

    rows.extend(phone_projections(columns, &refs, registry, claims));

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
            .zip(&refs)
            .map(|(s, rs)| match stats::summarize(s) {
                None => Cell::none("no run"),
                Some(st) => {
                    let estimates: Vec<f64> = rs
                        .iter()
                        .filter_map(|r| r.estimated_peak_bytes)
                        .map(|b| b as f64)
                        .collect();
                    let beside =
                        stats::summarize(&estimates).map_or("; no estimate stored".into(), |e| {
                            format!(
                                "; the memory guard's estimate {} (peak RSS ÷ estimate {:.2})",
                                bytes(e.median),
                                st.median / e.median
                            )
                        });
                    Cell {
                        text: bytes(st.median),
                        provenance: Provenance::Measured,
                        detail: format!(
                            "median over n={} runs, range {} – {}{beside}",
                            st.n,
                            bytes(st.min),
                            bytes(st.max)
                        ),
                        ..Cell::default()
                    }
                }
            })
            .collect(),
        winner: winner(
            columns,
            &rss.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            false,
        ),
    });

    // Minimum RAM, projected from the file size and the architecture.
    let mut min_ram = Vec::new();
    let mut min_values = Vec::new();
    let mut sizes = Vec::new();
    for (i, (id, _)) in columns.iter().enumerate() {
        let size = refs[i]
            .iter()
            .chain(runs.iter().filter(|r| model_id(r) == id))
            .filter_map(|r| r.model.as_ref().map(|m| m.size_bytes))
            .min();
        sizes.push(size);
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
        winner: winner(columns, &min_values, false),
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
        winner: winner(columns, &ctx, true),
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
            columns,
            &turns.iter().map(|s| median_of(s)).collect::<Vec<_>>(),
            false,
        ),
    });

    // Accuracy: the latest accuracy run of each model (llama.cpp preferred), its stored acc.
    // A twin's weights are random: its cell says so and it is never a winner, whatever a
    // database holds for it.
    let refusals: Vec<Option<String>> = columns
        .iter()
        .map(|(id, _)| registry.get(id).and_then(|e| e.accuracy_refusal()))
        .collect();
    let accuracy: Vec<Option<(&Run, &crate::data::Metric)>> = columns
        .iter()
        .zip(&refusals)
        .map(|((id, _), refused)| {
            if refused.is_some() {
                return None;
            }
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
            .zip(&refusals)
            .map(|(a, refused)| match (a, refused) {
                (_, Some(reason)) => Cell {
                    text: "n/a (random weights)".into(),
                    provenance: Provenance::None,
                    detail: reason.clone(),
                    ..Cell::default()
                },
                (Some((run, m)), None) => {
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
                (None, None) => Cell::none("no accuracy runs in this database"),
            })
            .collect(),
        winner: winner(
            columns,
            &accuracy
                .iter()
                .map(|a| a.map(|(_, m)| m.median))
                .collect::<Vec<_>>(),
            true,
        ),
    });

    rows.extend(fit_verdicts(columns, &sizes, registry));
    rows
}
