//! Building each section's context from the selected runs. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use edgebench_core::claims::{self, Physics};
use edgebench_core::compare::{self, KvConfig, Verdict};
use edgebench_core::registry::{Architecture, Registry};
use edgebench_core::roi::DeviceCost;
use edgebench_core::scenario::KvType;
use edgebench_core::{device_profile, measure, overhead, projection, stats, twin};

use crate::context::*;
use crate::data::{Dataset, Device, Run, Samples};
use crate::inputs::{ClaimFile, ClaimKind, ClaimsFile, RoiFile};
use crate::plots;

/// Seed of every bootstrap in a report: the same database gives the same report.
const SEED: u64 = 0x5EED_2026;
const GB: f64 = 1e9;
const MIB: f64 = (1u64 << 20) as f64;

/// Formats a number with about three significant digits.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

pub fn bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

fn pct(ratio: f64) -> String {
    format!("{:+.0}%", (ratio - 1.0) * 100.0)
}

/// A measured cell: the median of `samples` with n and the 95% bootstrap CI of the median.
pub fn measured(samples: &[f64], unit: &str, what: &str) -> Cell {
    let Some(s) = stats::summarize(samples) else {
        return Cell::none(format!("no {what} samples"));
    };
    let ci = (samples.len() >= 2)
        .then(|| stats::bootstrap_median_ci(samples, measure::CI_LEVEL, measure::RESAMPLES, SEED))
        .flatten();
    let spread = match ci {
        Some(ci) => format!("95% CI of the median [{}, {}]", num(ci.low), num(ci.high)),
        None => "one sample, no interval".into(),
    };
    Cell {
        text: format!("{} {unit}", num(s.median)),
        provenance: Provenance::Measured,
        detail: format!(
            "measured: median of n={} {what}; {spread}; p95 {}",
            s.n,
            num(s.p95)
        ),
    }
}

/// A ratio cell: variant ÷ baseline with its CI and verdict.
fn ratio_cell(baseline: &[f64], variant: &[f64], what: &str) -> Cell {
    match compare::measured_ratio(baseline, variant, SEED) {
        None => Cell::none(format!("no {what} samples on one side")),
        Some(r) => Cell {
            text: pct(r.ratio),
            provenance: Provenance::Measured,
            detail: format!(
                "measured: median ratio {:.3} (n={} vs n={} {what}){}; {}",
                r.ratio,
                r.baseline.n,
                r.variant.n,
                r.ci.map_or(String::new(), |ci| format!(
                    ", 95% bootstrap CI [{:.3}, {:.3}]",
                    ci.low, ci.high
                )),
                r.verdict.as_str()
            ),
        },
    }
}

fn pooled(runs: &[&Run], f: impl Fn(&Samples) -> &Vec<f64>) -> Vec<f64> {
    runs.iter()
        .flat_map(|r| f(&r.samples).iter().copied())
        .collect()
}

/// `mimo` or `phi` for the two models the seed compares (twins included), else `None`.
fn family(registry_id: &str) -> Option<&'static str> {
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

fn model_id(r: &Run) -> &str {
    r.model.as_ref().map_or("", |m| m.registry_id.as_str())
}

/// The single-stream reference runs of a model: llama.cpp, one sequence, baseline KV.
fn reference_runs<'a>(runs: &[&'a Run], id: &str) -> Vec<&'a Run> {
    runs.iter()
        .copied()
        .filter(|r| {
            model_id(r) == id
                && r.case.backend == "llama_cpp"
                && r.case.concurrency == 1
                && r.case.kv_baseline
                && r.case.category != "long_context"
        })
        .collect()
}

/// The MiMo and Phi-4 column indexes of the same origin, for winner and difference columns.
fn seed_pairs(columns: &[(String, ModelColumn)]) -> Vec<(usize, usize, String)> {
    let mut pairs = Vec::new();
    for origin in ["real", "twin"] {
        let find = |fam: &str| {
            columns
                .iter()
                .position(|(id, c)| family(id) == Some(fam) && c.origin == origin)
        };
        if let (Some(m), Some(p)) = (find("mimo"), find("phi")) {
            pairs.push((m, p, origin.to_string()));
        }
    }
    pairs
}

fn median_of(cell_samples: &[f64]) -> Option<f64> {
    stats::summarize(cell_samples).map(|s| s.median)
}

fn winner(
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
                        "measured: median over n={} runs, range {} – {}",
                        st.n,
                        bytes(st.min),
                        bytes(st.max)
                    ),
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
                        "projected: smallest file {} + f16 KV at {context} tokens {} + compute buffers {} (projection::compute_buffer_bytes, batch 512)",
                        bytes(size as f64),
                        bytes(kv as f64),
                        bytes(compute as f64)
                    ),
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
                    detail:
                        "claimed: the model's metadata (models.toml, from the model card / GGUF)"
                            .into(),
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
                    detail: format!("measured: {n} passed runs"),
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
                        && r.case.backend == "llama_cpp"
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
            rs.sort_by_key(|r| (r.case.backend == "llama_cpp", r.started_at_ms));
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
                        text: format!("{:.1}% ± {:.1}", 100.0 * m.median, 100.0 * se),
                        provenance: Provenance::Measured,
                        detail: format!(
                            "measured: acc by log-likelihood of ' A'…' D' (lm-evaluation-harness's MMLU prompt) on {} questions of the `{}` set, ± 1 standard error; {} run {}",
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
        winner_rule: "The winner compares MiMo with Phi-4 of the same origin only (twins with twins, real files with real files), on medians; a twin's number is never a real model's.".into(),
    }
}

pub fn categories(runs: &[&Run]) -> CategorySection {
    let columns = model_columns(runs);
    let cats: BTreeSet<&str> = runs.iter().map(|r| r.case.category.as_str()).collect();
    let pairs = seed_pairs(&columns);
    let mut rows = Vec::new();
    let mut plot_series: Vec<(String, Vec<Option<f64>>)> = columns
        .iter()
        .map(|(_, c)| (c.label.clone(), Vec::new()))
        .collect();
    for cat in &cats {
        let samples: Vec<Vec<f64>> = columns
            .iter()
            .map(|(id, _)| {
                let in_cat: Vec<&Run> = runs
                    .iter()
                    .copied()
                    .filter(|r| {
                        model_id(r) == id
                            && r.case.category == *cat
                            && r.case.backend == "llama_cpp"
                            && r.case.kv_baseline
                    })
                    .collect();
                // The seed's "Batch 32 concurrent" row is per request at the highest load.
                let level = if *cat == "batch_concurrent" {
                    in_cat.iter().map(|r| r.case.concurrency).max()
                } else {
                    in_cat.iter().map(|r| r.case.concurrency).min()
                };
                let chosen: Vec<&Run> = in_cat
                    .into_iter()
                    .filter(|r| Some(r.case.concurrency) == level)
                    .collect();
                pooled(&chosen, |s| &s.generation_tokens_per_s)
            })
            .collect();
        for (i, s) in samples.iter().enumerate() {
            plot_series[i].1.push(median_of(s));
        }
        let difference = match pairs.first() {
            Some((m, p, _)) => ratio_cell(&samples[*m], &samples[*p], "requests"),
            None => Cell::none("MiMo and Phi-4 of the same origin are not both present"),
        };
        rows.push(CategoryRow {
            category: (*cat).to_string(),
            cells: samples
                .iter()
                .map(|s| measured(s, "t/s", "requests"))
                .collect(),
            difference,
        });
    }
    let comparison = match pairs.first() {
        Some((m, p, origin)) => format!(
            "Difference: {} ÷ {} ({origin}), ratio of medians with a 95% bootstrap CI",
            columns[*p].1.label, columns[*m].1.label
        ),
        None => "No MiMo/Phi-4 pair of the same origin in the selection.".into(),
    };
    let cat_names: Vec<String> = cats.iter().map(|c| (*c).to_string()).collect();
    CategorySection {
        plot_svg: plots::grouped_bars(
            "Generation tokens/s per prompt category (llama.cpp, median)",
            &cat_names,
            &plot_series,
            "tokens/s (log)",
        ),
        columns: columns.into_iter().map(|(_, c)| c).collect(),
        rows,
        comparison,
    }
}

fn percentile(samples: &[f64], p: f64) -> String {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        "—".into()
    } else {
        num(stats::percentile_sorted(&s, p))
    }
}

pub fn concurrency(runs: &[&Run]) -> ConcurrencySection {
    let mut groups: BTreeMap<String, BTreeMap<u32, Vec<&Run>>> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.case.category == "batch_concurrent" && r.case.kv_baseline)
    {
        let label = format!(
            "{} · {} · {} · {}",
            r.case.scenario,
            r.model
                .as_ref()
                .map_or(r.case.model.as_str(), |m| m.label.as_str()),
            r.case.quant,
            r.case.backend
        );
        groups
            .entry(label)
            .or_default()
            .entry(r.case.concurrency)
            .or_default()
            .push(r);
    }
    let mut series = Vec::new();
    let mut tput = Vec::new();
    let mut lat = Vec::new();
    for (label, by_c) in groups {
        let mut rows = Vec::new();
        let mut tp = Vec::new();
        let mut lp = Vec::new();
        for (c, rs) in by_c {
            let e2e = pooled(&rs, |s| &s.e2e_ms);
            let agg: Vec<f64> = rs
                .iter()
                .filter_map(|r| r.metrics.get("generation_tokens_per_s").map(|m| m.median))
                .collect();
            let n_reps: u32 = rs
                .iter()
                .filter_map(|r| r.metrics.get("generation_tokens_per_s").map(|m| m.n))
                .sum();
            let agg_cell = match median_of(&agg) {
                Some(v) => {
                    tp.push((f64::from(c), v));
                    Cell {
                        text: format!("{} t/s", num(v)),
                        provenance: Provenance::Measured,
                        detail: format!(
                            "measured: median over {n_reps} repetitions of decode tokens ÷ decode time, all sequences ({} runs)",
                            rs.len()
                        ),
                    }
                }
                None => Cell::none("no summary stored"),
            };
            if !e2e.is_empty() {
                let mut s = e2e.clone();
                s.sort_by(f64::total_cmp);
                lp.push((f64::from(c), stats::percentile_sorted(&s, 95.0)));
            }
            rows.push(ConcurrencyRow {
                concurrency: c,
                requests: rs.iter().map(|r| r.samples.requests).sum(),
                rejected: rs.iter().map(|r| r.samples.rejected).sum(),
                e2e_p50_ms: percentile(&e2e, 50.0),
                e2e_p95_ms: percentile(&e2e, 95.0),
                e2e_p99_ms: percentile(&e2e, 99.0),
                ttft_p50_ms: percentile(&pooled(&rs, |s| &s.ttft_ms), 50.0),
                queue_p95_ms: percentile(&pooled(&rs, |s| &s.queue_wait_ms), 95.0),
                aggregate_tokens_per_s: agg_cell,
            });
        }
        tput.push((label.clone(), tp));
        lat.push((label.clone(), lp));
        series.push(ConcurrencySeries { label, rows });
    }
    ConcurrencySection {
        throughput_svg: plots::lines(
            "Aggregate generation tokens/s vs concurrency",
            "concurrent sequences",
            "tokens/s (log)",
            &tput,
        ),
        latency_svg: plots::lines(
            "End-to-end latency p95 vs concurrency",
            "concurrent sequences",
            "ms (log)",
            &lat,
        ),
        series,
    }
}

fn kv_type(name: &str) -> Option<KvType> {
    match name {
        "f16" => Some(KvType::F16),
        "q8_0" => Some(KvType::Q8_0),
        "q4_0" => Some(KvType::Q4_0),
        _ => None,
    }
}

/// The real architecture a model stands for (itself, or the model a twin mirrors).
fn real_arch<'a>(registry: &'a Registry, id: &str) -> Option<(&'a str, &'a Architecture)> {
    let entry = registry.get(id)?;
    let real = match &entry.twin_of {
        Some(of) => registry.get(of)?,
        None => entry,
    };
    Some((real.id.as_str(), &real.arch))
}

pub fn kv(runs: &[&Run], registry: &Registry) -> KvSection {
    let mut groups: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        let key = format!(
            "{} · {} · {} · {} · c{}",
            r.case.scenario,
            r.model
                .as_ref()
                .map_or(r.case.model.as_str(), |m| m.label.as_str()),
            r.case.quant,
            r.case.backend,
            r.case.concurrency
        );
        groups.entry(key).or_default().push(r);
    }
    let mut measured_rows = Vec::new();
    let mut projected = Vec::new();
    let mut projected_seen = BTreeSet::new();
    let bw = device_profile::find("galaxy-s24")
        .and_then(|p| p.bandwidth_bytes_per_s)
        .unwrap_or(77e9);
    for (group, rs) in groups {
        let variants: BTreeSet<&str> = rs.iter().map(|r| r.case.kv_variant.as_str()).collect();
        if variants.len() < 2 {
            continue;
        }
        let Some(base) = rs.iter().find(|r| r.case.kv_baseline) else {
            continue;
        };
        let base_runs: Vec<&Run> = rs
            .iter()
            .copied()
            .filter(|r| r.case.kv_variant == base.case.kv_variant)
            .collect();
        for variant in variants.iter().filter(|v| **v != base.case.kv_variant) {
            let var_runs: Vec<&Run> = rs
                .iter()
                .copied()
                .filter(|r| r.case.kv_variant == *variant)
                .collect();
            let Some(v0) = var_runs.first() else { continue };
            let mem = |get: fn(&Run) -> Option<u64>, what: &str| -> Cell {
                match (
                    base_runs.iter().find_map(|r| get(r)),
                    var_runs.iter().find_map(|r| get(r)),
                ) {
                    (Some(a), Some(b)) if a > 0 => Cell {
                        text: format!(
                            "{} → {} ({})",
                            bytes(a as f64),
                            bytes(b as f64),
                            pct(b as f64 / a as f64)
                        ),
                        provenance: Provenance::Measured,
                        detail: format!("measured: {what} of one run each"),
                    },
                    _ => Cell::none(format!("{what} not stored")),
                }
            };
            measured_rows.push(KvMeasuredRow {
                group: group.clone(),
                variant: format!(
                    "{} → {} ({}/{}{}, context {})",
                    base.case.kv_variant,
                    variant,
                    v0.case.type_k,
                    v0.case.type_v,
                    if v0.case.flash_attention {
                        ", flash"
                    } else {
                        ""
                    },
                    v0.case.context
                ),
                kv_memory: mem(|r| r.kv_cache_bytes, "KV cache bytes"),
                peak_rss: mem(|r| r.peak_rss_bytes, "peak RSS"),
                ms_per_token: ratio_cell(
                    &pooled(&base_runs, |s| &s.tpot_ms),
                    &pooled(&var_runs, |s| &s.tpot_ms),
                    "token gaps",
                ),
                tokens_per_s: ratio_cell(
                    &pooled(&base_runs, |s| &s.generation_tokens_per_s),
                    &pooled(&var_runs, |s| &s.generation_tokens_per_s),
                    "requests",
                ),
            });
            // The same option at the real model's size.
            let (Some((real_id, arch)), Some(bk), Some(bv), Some(vk), Some(vv)) = (
                real_arch(registry, model_id(v0)),
                kv_type(&base.case.type_k),
                kv_type(&base.case.type_v),
                kv_type(&v0.case.type_k),
                kv_type(&v0.case.type_v),
            ) else {
                continue;
            };
            let key = format!(
                "{real_id}/{}/{}/{}/{}",
                v0.case.type_k, v0.case.type_v, v0.case.context, base.case.type_k
            );
            if !projected_seen.insert(key) {
                continue;
            }
            let params = twin::parameter_count(arch);
            let weights = projection::weight_bytes(params, "Q4_K_M").unwrap_or(0);
            let context = v0.case.context.max(4096);
            let p = compare::project_kv(
                arch,
                weights,
                KvConfig {
                    type_k: bk,
                    type_v: bv,
                },
                KvConfig {
                    type_k: vk,
                    type_v: vv,
                },
                context,
                1,
                bw,
            );
            projected.push(KvProjectedRow {
                model: format!("{real_id} (real size, Q4_K_M, projected)"),
                variant: format!("{}/{} → {}/{}", base.case.type_k, base.case.type_v, v0.case.type_k, v0.case.type_v),
                context,
                device: "Galaxy S24 (77 GB/s)".into(),
                kv_memory: format!(
                    "{} → {} ({})",
                    bytes(p.kv_bytes_baseline as f64),
                    bytes(p.kv_bytes_variant as f64),
                    pct(p.kv_bytes_variant as f64 / p.kv_bytes_baseline.max(1) as f64)
                ),
                decode_roofline: format!(
                    "{} → {} t/s ({})",
                    num(p.roofline_tokens_per_s_baseline),
                    num(p.roofline_tokens_per_s_variant),
                    pct(p.roofline_ratio())
                ),
                detail: format!(
                    "projected: {:.2} B parameters, weights {:.2} GB at Q4_K_M, context {context} (at least 4096)",
                    params as f64 / GB,
                    weights as f64 / GB
                ),
            });
        }
    }
    KvSection {
        measured: measured_rows,
        projected,
        formula: compare::KvProjection::formula().into(),
    }
}

pub fn backends(runs: &[&Run], parity: &[crate::data::Parity]) -> BackendSection {
    let mut pairs: BTreeMap<String, (Vec<&Run>, Vec<&Run>)> = BTreeMap::new();
    for r in runs {
        let key = r
            .case
            .name
            .replace("::llama_cpp::", "::*::")
            .replace("::candle::", "::*::");
        let e = pairs.entry(key).or_default();
        match r.case.backend.as_str() {
            "llama_cpp" => e.0.push(r),
            "candle" => e.1.push(r),
            _ => {}
        }
    }
    let rows = pairs
        .into_iter()
        .filter(|(_, (l, c))| !l.is_empty() && !c.is_empty())
        .map(|(case, (l, c))| {
            let ls = pooled(&l, |s| &s.generation_tokens_per_s);
            let cs = pooled(&c, |s| &s.generation_tokens_per_s);
            BackendRow {
                case,
                llama_cpp: measured(&ls, "t/s", "requests"),
                candle: measured(&cs, "t/s", "requests"),
                ratio: ratio_cell(&ls, &cs, "requests"),
            }
        })
        .collect();
    let parity = parity
        .iter()
        .map(|p| ParityRow {
            model: format!("{} {}", p.model_label, p.quant),
            engines: format!("{} vs {}", p.candidate, p.reference),
            first_token: format!("{}/{}", p.first_token_matches, p.first_token_prompts),
            teacher_forced: if p.compared_tokens > 0 {
                format!(
                    "{}/{} ({:.1}%)",
                    p.agreeing_tokens,
                    p.compared_tokens,
                    100.0 * f64::from(p.agreeing_tokens) / f64::from(p.compared_tokens)
                )
            } else {
                "—".into()
            },
            max_top10_diff: p.max_top10_diff.map_or("—".into(), |d| format!("{d:.3}")),
            max_vocab_diff: p.max_vocab_diff.map_or("—".into(), |d| format!("{d:.3}")),
        })
        .collect();
    BackendSection { rows, parity }
}

/// A cell from a run's stored summary (imported runs have no raw samples, only these).
fn stored_cell(metric: Option<&crate::data::Metric>, unit: &str, what: &str) -> Cell {
    let Some(m) = metric else {
        return Cell::none(format!("no {what}"));
    };
    let spread = m.ci.map_or_else(
        || "no interval".to_owned(),
        |(low, high)| format!("95% CI of the median [{}, {}]", num(low), num(high)),
    );
    Cell {
        text: format!("{} {unit}", num(m.median)),
        provenance: Provenance::Measured,
        detail: format!("measured: median of n={} {what}; {spread}", m.n),
    }
}

/// Harness ÷ engine rate of one phase over a run's repetitions.
fn overhead_cell(r: &Run, phase: overhead::Phase) -> Cell {
    if r.origin != "edgebench" {
        return Cell::none(format!("{}: timed by that tool itself", r.origin));
    }
    if r.phases.is_empty() {
        return Cell::none(if r.case.backend == "llama_cpp" {
            "no counters stored with this run (stored since schema 8)".to_owned()
        } else {
            format!("{} keeps no counters", r.case.backend)
        });
    }
    match overhead::ratios(&r.phases, phase) {
        Err(e) => Cell::none(e.to_string()),
        Ok(ratios) => {
            let Some(s) = stats::summarize(&ratios) else {
                return Cell::none("no repetitions");
            };
            Cell {
                text: format!("{:.4}", s.median),
                provenance: Provenance::Measured,
                detail: format!(
                    "measured: median of n={} repetitions, min {:.4}, max {:.4}; harness {} tokens/s ÷ the engine counters' ({} {:.2}%)",
                    s.n,
                    s.min,
                    s.max,
                    phase.as_str(),
                    if s.median >= 0.99 {
                        "overhead"
                    } else {
                        "overhead above the 1% goal:"
                    },
                    (1.0 - s.median) * 100.0
                ),
            }
        }
    }
}

/// Why a decode ran far from its roofline, when it did.
fn roofline_note(r: &Run, fraction: f64, cores: Option<u32>) -> String {
    let mut notes = Vec::new();
    if fraction > 1.0 {
        notes.push(
            "above 100%: fewer bytes came from memory than counted, so part of the weights stayed in the CPU caches (small models)"
                .to_owned(),
        );
    }
    if let Some(cores) = cores.filter(|&c| r.case.threads < c) {
        notes.push(format!(
            "{} of {cores} cores: the triad drew bandwidth on every core, one core alone can't",
            r.case.threads
        ));
    }
    if fraction < 0.35 {
        notes.push(if r.case.backend == "candle" {
            "far below the bound: compute-bound (candle runs one forward per sequence and dequantizes in plain Rust kernels)".to_owned()
        } else {
            "far below the bound: compute-bound (dequantization, small matrix-vector products, thread synchronization per layer), not bandwidth-bound"
                .to_owned()
        });
    }
    notes.join("; ")
}

/// One row per run: speed, % of the bandwidth roofline and harness overhead.
pub fn runs(runs: &[&Run], devices: &[Device]) -> RunSection {
    let mut rows: Vec<(String, u32, String, String, RunRow)> = runs
        .iter()
        .filter(|r| {
            r.metrics.contains_key("generation_tokens_per_s")
                || r.metrics.contains_key("prefill_tokens_per_s")
        })
        .map(|r| {
            let model = r.model.as_ref().map_or_else(
                || r.case.model.clone(),
                |m| format!("{} {}", m.label, m.quant),
            );
            let cores = devices
                .iter()
                .find(|d| d.id == r.device_id)
                .map(|d| d.cores_logical);
            let generation = r.metrics.get("generation_tokens_per_s");
            let (roofline, note) = match (r.roofline_fraction, r.bandwidth_bytes_per_s) {
                (Some(f), Some(bw)) => {
                    let bound = generation
                        .filter(|_| f > 0.0 && r.case.concurrency == 1)
                        .map(|g| format!("; bound ≈ {} t/s (median ÷ fraction)", num(g.median / f)))
                        .unwrap_or_default();
                    (
                        Cell {
                            text: format!("{:.0}%", f * 100.0),
                            provenance: Provenance::Projected,
                            detail: format!(
                                "bytes the decode steps had to read ÷ their measured time ÷ the device's measured triad bandwidth {} GB/s{bound}",
                                num(bw / GB)
                            ),
                        },
                        roofline_note(r, f, cores),
                    )
                }
                _ => (
                    Cell::none(if r.origin == "edgebench" {
                        "no bandwidth measured on this device"
                    } else {
                        "imported: no decode byte count"
                    }),
                    String::new(),
                ),
            };
            let row = RunRow {
                case: r.case.name.clone(),
                model: model.clone(),
                origin: r.origin.clone(),
                threads: r.case.threads,
                generation: stored_cell(generation, "t/s", "generation tokens/s samples"),
                prefill: stored_cell(
                    r.metrics.get("prefill_tokens_per_s"),
                    "t/s",
                    "prefill tokens/s samples",
                ),
                roofline,
                overhead_prefill: overhead_cell(r, overhead::Phase::Prefill),
                overhead_generation: overhead_cell(r, overhead::Phase::Generation),
                note,
            };
            (model, r.case.threads, r.origin.clone(), r.case.name.clone(), row)
        })
        .collect();
    // The same model at the same thread count side by side, whichever tool measured it.
    rows.sort_by(|a, b| (&a.0, a.1, &a.2, &a.3).cmp(&(&b.0, b.1, &b.2, &b.3)));
    RunSection {
        rows: rows.into_iter().map(|r| r.4).collect(),
        roofline_formula: "the decode steps' bytes read at least (decode steps × weights bytes + Σ KV positions attended × KV bytes per position) ÷ their measured time ÷ this device's measured triad bandwidth. 100% is the most a bandwidth-bound decode can do; with every core decoding, roughly half is typical on a 2-core VM (the triad counts no write-allocate traffic and keeps every core streaming).".into(),
        overhead_rule: "per repetition, the harness's tokens/s (its clock around each prefill and decode call, sampling and copying included) ÷ the tokens/s from llama.cpp's own counters (llama_perf_context: prompt eval and eval) for the same tokens. The goal is ≥ 0.99. Batched decode steps count as prompt evaluation in llama.cpp, so runs with several sequences at once are not compared.".into(),
    }
}

fn claim_text(c: &ClaimFile) -> String {
    match c.kind {
        ClaimKind::DecodeRate => {
            let [lo, hi] = c.tokens_per_s.unwrap_or_default();
            let range = if (lo - hi).abs() < f64::EPSILON {
                num(lo)
            } else {
                format!("{}–{}", num(lo), num(hi))
            };
            format!(
                "{range} tokens/s on {}{}{}",
                c.device.as_deref().unwrap_or("?"),
                c.concurrency
                    .map_or(String::new(), |n| format!(", {n} concurrent")),
                c.context
                    .map_or(String::new(), |n| format!(", {n}-token context"))
            )
        }
        ClaimKind::Footprint => format!(
            "memory footprint {} GB at {}",
            num(c.gb.unwrap_or(0.0)),
            c.precision.as_deref().unwrap_or("?")
        ),
        ClaimKind::MinMemory => format!("minimum memory {} GB", num(c.gb.unwrap_or(0.0))),
        ClaimKind::ContextWindow => format!("context window {} tokens", c.tokens.unwrap_or(0)),
        ClaimKind::ModelSize => format!(
            "model size {} GB at {}",
            num(c.gb.unwrap_or(0.0)),
            c.precision.as_deref().unwrap_or("?")
        ),
        ClaimKind::KvSaving => format!(
            "KV optimization: memory {} GB → {} GB",
            num(c.before_gb.unwrap_or(0.0)),
            num(c.after_gb.unwrap_or(0.0))
        ),
        ClaimKind::Accuracy => format!(
            "{} {}%",
            c.benchmark.as_deref().unwrap_or("?"),
            num(c.percent.unwrap_or(0.0))
        ),
        ClaimKind::TurnLatency => format!("{} ms per turn", num(c.ms.unwrap_or(0.0))),
        ClaimKind::DeviceCost => format!(
            "on-device cost ${} per 1M tokens",
            num(c.usd_per_million.unwrap_or(0.0))
        ),
    }
}

/// One claim's verdict: (verdict, css class, arithmetic).
fn check_claim(
    c: &ClaimFile,
    registry: &Registry,
    roi_best: Option<f64>,
) -> (String, &'static str, String) {
    let impossible = |b: claims::Bound| {
        (
            "physically impossible".to_string(),
            "impossible",
            b.arithmetic,
        )
    };
    let arch = c
        .model
        .as_deref()
        .and_then(|m| registry.get(m))
        .map(|e| &e.arch);
    let params = arch.map(twin::parameter_count);
    match (c.kind, arch, params) {
        (ClaimKind::DecodeRate, Some(arch), _) => {
            let profile = c.device.as_deref().and_then(device_profile::find);
            let Some(bw) = profile.and_then(|p| p.bandwidth_bytes_per_s) else {
                return ("not checkable".into(), "unknown", "the device profile has no bandwidth".into());
            };
            let hi = c.tokens_per_s.map_or(0.0, |t| t[1]);
            let lo = c.tokens_per_s.map_or(0.0, |t| t[0]);
            let b = claims::decode_rate_bound(lo, c.weights_gb.unwrap_or(0.0) * GB, arch, c.context.unwrap_or(512), c.concurrency.unwrap_or(1), bw);
            if b.physics == Physics::Impossible {
                impossible(b)
            } else {
                let upper = claims::decode_rate_bound(hi, c.weights_gb.unwrap_or(0.0) * GB, arch, c.context.unwrap_or(512), c.concurrency.unwrap_or(1), bw);
                let verdict = if upper.physics == Physics::Impossible { "partly impossible (the upper end)" } else { "not reproducible here (device not in the lab); physically possible" };
                (verdict.into(), if upper.physics == Physics::Impossible { "impossible" } else { "possible" }, format!("{}; bandwidth: {}", upper.arithmetic, profile.map_or("", |p| p.source)))
            }
        }
        (ClaimKind::Footprint, _, Some(params)) => match claims::footprint_bound(c.gb.unwrap_or(0.0) * GB, params, c.precision.as_deref().unwrap_or("")) {
            Some(b) if b.physics == Physics::Impossible => impossible(b),
            Some(b) => ("physically possible".into(), "possible", b.arithmetic),
            None => ("not checkable".into(), "unknown", "unknown precision".into()),
        },
        (ClaimKind::MinMemory | ClaimKind::ModelSize, Some(arch), Some(params)) => {
            let precision = c.precision.as_deref().unwrap_or("");
            let Some(weights) = projection::weight_bytes(params, precision) else {
                return ("not checkable".into(), "unknown", "unknown precision".into());
            };
            let claimed = c.gb.unwrap_or(0.0) * GB;
            if c.kind == ClaimKind::ModelSize {
                let ratio = claimed / weights as f64;
                let ok = (0.9..=1.1).contains(&ratio);
                (
                    if ok { "consistent with the projection" } else { "not reproduced by the projection" }.into(),
                    if ok { "reproduced" } else { "not-reproduced" },
                    format!("{:.2} B parameters × {} bits ÷ 8 = {:.2} GB; claimed {:.2} GB ({:+.0}%)", params as f64 / GB, projection::bits_per_weight(precision).unwrap_or(0.0), weights as f64 / GB, claimed / GB, (ratio - 1.0) * 100.0),
                )
            } else {
                let context = c.context.unwrap_or(4096);
                let kv = projection::kv_bytes(arch, KvType::F16, KvType::F16, context, 1);
                let compute = projection::compute_buffer_bytes(arch, 512, context);
                let need = (weights + kv + compute) as f64;
                let ok = claimed >= need;
                (
                    if ok { "consistent with the projection" } else { "physically impossible" }.into(),
                    if ok { "reproduced" } else { "impossible" },
                    format!("weights {:.2} GB + f16 KV at {context} tokens {:.2} GB + compute buffers {:.2} GB = {:.2} GB; claimed {:.2} GB", weights as f64 / GB, kv as f64 / GB, compute as f64 / GB, need / GB, claimed / GB),
                )
            }
        }
        (ClaimKind::ContextWindow, Some(arch), _) => {
            let ok = c.tokens == Some(arch.context);
            (
                if ok { "reproduced (model metadata)" } else { "not reproduced" }.into(),
                if ok { "reproduced" } else { "not-reproduced" },
                format!("models.toml (from the model's GGUF metadata) says {} tokens; claimed {}", arch.context, c.tokens.unwrap_or(0)),
            )
        }
        (ClaimKind::KvSaving, Some(arch), _) => {
            let b = claims::kv_saving_bound(c.before_gb.unwrap_or(0.0) * GB, c.after_gb.unwrap_or(0.0) * GB, c.weights_gb.unwrap_or(0.0) * GB, arch);
            if b.physics == Physics::Impossible { impossible(b) } else { ("physically possible; not reproducible here".into(), "possible", b.arithmetic) }
        }
        (ClaimKind::Accuracy, _, _) => ("not reproducible here".into(), "unknown", "no accuracy runs in this database (MMLU needs the real model files)".into()),
        (ClaimKind::TurnLatency, _, _) => ("not checkable".into(), "unknown", "the claim names no device, turn length or prompt; the overview shows measured multi-turn latency for the models present".into()),
        (ClaimKind::DeviceCost, _, _) => match roi_best {
            Some(best) => ("not reproduced".into(), "not-reproduced", format!("with the ROI inputs below, the cheapest measured model costs ${best:.2} per 1M tokens even at full capacity (device amortisation + energy); claimed ${:.2}", c.usd_per_million.unwrap_or(0.0))),
            None => ("not checkable".into(), "unknown", "no measured model to cost".into()),
        },
        _ => ("not checkable".into(), "unknown", format!("model `{}` is not in models.toml", c.model.as_deref().unwrap_or("?"))),
    }
}

pub fn claims_section(
    claims: &ClaimsFile,
    registry: &Registry,
    roi_best: Option<f64>,
    devices: &[Device],
) -> ClaimSection {
    let rows: Vec<ClaimRow> = claims
        .claim
        .iter()
        .map(|c| {
            let (verdict, class, arithmetic) = check_claim(c, registry, roi_best);
            let source = claims
                .source
                .iter()
                .find(|s| s.id == c.source)
                .map_or(c.source.clone(), |s| s.title.clone());
            ClaimRow {
                id: c.id.clone(),
                model: c.model.clone().unwrap_or_else(|| "—".into()),
                claim: claim_text(c),
                source: format!("{source} — {}", c.location),
                verdict,
                verdict_class: class.into(),
                arithmetic,
            }
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.verdict.clone()).or_default() += 1;
    }
    let mut bw: Vec<BandwidthRow> = device_profile::PROFILES
        .iter()
        .filter_map(|p| {
            p.bandwidth_bytes_per_s.map(|b| BandwidthRow {
                device: p.label.into(),
                ram: bytes(p.ram_bytes as f64),
                bandwidth: Cell {
                    text: format!("{} GB/s", num(b / GB)),
                    provenance: Provenance::Claimed,
                    detail: format!("claimed: {}", p.source),
                },
            })
        })
        .collect();
    for d in devices {
        if let Some(b) = d.triad_bytes_per_s {
            bw.push(BandwidthRow {
                device: format!("{} ({}, this lab)", d.hostname, d.cpu_model),
                ram: bytes(d.ram_bytes as f64),
                bandwidth: Cell {
                    text: format!("{} GB/s", num(b / GB)),
                    provenance: Provenance::Measured,
                    detail: "measured: STREAM-style triad, best of 5 (docs/methodology.md)".into(),
                },
            });
        }
    }
    ClaimSection {
        sources: claims
            .source
            .iter()
            .map(|s| format!("{}: {} ({})", s.id, s.title, s.location))
            .collect(),
        rows,
        counts: counts
            .into_iter()
            .map(|(verdict, n)| VerdictCount { verdict, n })
            .collect(),
        devices: bw,
    }
}

/// Energy per generated token over `runs`, and whether it was measured or estimated.
fn joules_per_token(runs: &[&Run]) -> Option<(f64, Provenance, String)> {
    let (mut joules, mut tokens, mut estimated) = (0.0, 0u64, false);
    let mut source = String::new();
    for r in runs {
        if let Some(j) = r.energy_j {
            joules += j;
            tokens += r.samples.generated_tokens;
            let s = r.energy_source.clone().unwrap_or_default();
            estimated |= s.starts_with("estimate");
            source = s;
        }
    }
    (tokens > 0).then(|| {
        let jpt = joules / tokens as f64;
        if estimated {
            (
                jpt,
                Provenance::Estimated,
                format!("estimated: {source}; {tokens} tokens"),
            )
        } else {
            (
                jpt,
                Provenance::Measured,
                format!("measured: RAPL over {tokens} tokens in {} runs", runs.len()),
            )
        }
    })
}

pub fn roi(runs: &[&Run], inputs: &RoiFile, registry: &Registry) -> (RoiSection, Option<f64>) {
    let columns = model_columns(runs);
    let mut rows = Vec::new();
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut best: Option<f64> = None;
    let volumes: Vec<f64> = (0..=50)
        .map(|i| 10f64.powf(4.0 + f64::from(i) * 0.1))
        .collect();
    let device = |tps: f64, jpt: f64| DeviceCost {
        price_usd: inputs.device.price_usd,
        lifetime_months: inputs.device.lifetime_months,
        active_hours_per_day: inputs.device.active_hours_per_day,
        electricity_usd_per_kwh: inputs.electricity_usd_per_kwh,
        tokens_per_s: tps,
        joules_per_token: jpt,
    };
    let mut add_row = |label: String,
                       tps_cell: Cell,
                       tps: f64,
                       jpt_cell: Cell,
                       jpt: f64,
                       provenance: Provenance,
                       rows: &mut Vec<RoiRow>,
                       lines: &mut Vec<(String, Vec<(f64, f64)>)>| {
        let d = device(tps, jpt);
        let per_million = d.usd_per_million_at_capacity();
        if provenance != Provenance::Projected {
            best = Some(best.map_or(per_million, |b: f64| b.min(per_million)));
        }
        let capacity = d.capacity_tokens_per_month();
        rows.push(RoiRow {
            model: label.clone(),
            tokens_per_s: tps_cell,
            joules_per_token: jpt_cell,
            usd_per_million: Cell {
                text: format!("${per_million:.2}"),
                provenance,
                detail: format!(
                    "device ${:.2}/month ÷ {} tokens/month at capacity + energy ${:.4}/1M",
                    d.fixed_usd_per_month(),
                    num(capacity),
                    d.energy_usd_per_million()
                ),
            },
            capacity_per_month: format!("{:.1} M tokens", capacity / 1e6),
            break_even: inputs
                .cloud
                .iter()
                .map(|c| match d.break_even_tokens_per_month(c.usd_per_million) {
                    Some(v) if v <= capacity => {
                        format!("{}: {:.2} M tokens/month", c.name, v / 1e6)
                    }
                    Some(v) => format!(
                        "{}: {:.1} M tokens/month (beyond one device's capacity)",
                        c.name,
                        v / 1e6
                    ),
                    None => format!("{}: never (cloud cheaper than the electricity)", c.name),
                })
                .collect(),
        });
        lines.push((
            format!("on device: {label}"),
            volumes
                .iter()
                .filter(|v| **v <= capacity)
                .map(|v| (*v, d.usd_per_month(*v)))
                .collect(),
        ));
    };
    for (id, col) in &columns {
        let refs = reference_runs(runs, id);
        let tps_samples = pooled(&refs, |s| &s.generation_tokens_per_s);
        let (Some(tps), Some((jpt, prov, detail))) =
            (median_of(&tps_samples), joules_per_token(&refs))
        else {
            continue;
        };
        add_row(
            format!("{} (speed and energy from this lab's host)", col.label),
            measured(&tps_samples, "t/s", "requests"),
            tps,
            Cell {
                text: format!("{jpt:.4} J"),
                provenance: prov,
                detail,
            },
            jpt,
            prov,
            &mut rows,
            &mut lines,
        );
    }
    // The real models on the seed's phone, at their bandwidth roofline: the cheapest they could be.
    let phone_watts = 5.0;
    if let Some(s24) = device_profile::find("galaxy-s24") {
        for id in ["mimo-7b", "phi-4-mini"] {
            let Some(entry) = registry.get(id) else {
                continue;
            };
            let params = twin::parameter_count(&entry.arch);
            let weights = projection::weight_bytes(params, "Q4_K_M").unwrap_or(1) as f64;
            let tps = projection::roofline_tokens_per_s(
                weights,
                s24.bandwidth_bytes_per_s.unwrap_or(77e9),
            );
            let jpt = phone_watts / tps;
            add_row(
                format!(
                    "{} Q4_K_M on {} (projected upper bound)",
                    entry.name, s24.label
                ),
                Cell {
                    text: format!("{} t/s", num(tps)),
                    provenance: Provenance::Projected,
                    detail: format!(
                        "projected: bandwidth ÷ weights = {} GB/s ÷ {:.2} GB",
                        num(s24.bandwidth_bytes_per_s.unwrap_or(0.0) / GB),
                        weights / GB
                    ),
                },
                tps,
                Cell {
                    text: format!("{jpt:.3} J"),
                    provenance: Provenance::Estimated,
                    detail: format!("estimated: {phone_watts} W SoC power (assumed) ÷ tokens/s"),
                },
                jpt,
                Provenance::Projected,
                &mut rows,
                &mut lines,
            );
        }
    }
    for c in &inputs.cloud {
        lines.push((
            format!("cloud: {}", c.name),
            volumes
                .iter()
                .map(|v| (*v, v / 1e6 * c.usd_per_million))
                .collect(),
        ));
    }
    let inputs_rows = vec![
        RoiInput {
            name: "device".into(),
            value: inputs.device.name.clone(),
            source: String::new(),
        },
        RoiInput {
            name: "device price".into(),
            value: format!("${:.2}", inputs.device.price_usd),
            source: inputs.device.price_source.clone(),
        },
        RoiInput {
            name: "lifetime".into(),
            value: format!("{} months", num(inputs.device.lifetime_months)),
            source: inputs.device.usage_source.clone(),
        },
        RoiInput {
            name: "active generation".into(),
            value: format!("{} h/day", num(inputs.device.active_hours_per_day)),
            source: inputs.device.usage_source.clone(),
        },
        RoiInput {
            name: "electricity".into(),
            value: format!("${}/kWh", inputs.electricity_usd_per_kwh),
            source: inputs.electricity_source.clone(),
        },
    ];
    let clouds = inputs
        .cloud
        .iter()
        .map(|c| RoiInput {
            name: c.name.clone(),
            value: format!("${:.2} per 1M tokens", c.usd_per_million),
            source: format!("{} ({})", c.source, c.date),
        })
        .collect();
    (
        RoiSection {
            inputs: inputs_rows,
            clouds,
            rows,
            formula: "cost per 1M tokens at capacity = (price ÷ lifetime months) ÷ (tokens/s × active hours × 3600 × 30.44) × 10⁶ + joules/token × 10⁶ ÷ 3.6×10⁶ × $/kWh; break-even volume = (price ÷ lifetime months) ÷ (cloud $/1M − energy $/1M) × 10⁶".into(),
            plot_svg: plots::lines("Monthly cost vs monthly tokens (break-even where lines cross)", "tokens per month (log)", "USD per month (log)", &lines),
        },
        best,
    )
}

pub fn devices(dataset: &Dataset, runs_all: &[&Run]) -> DeviceSection {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in runs_all {
        *counts
            .entry((r.mode.clone(), r.status.clone()))
            .or_default() += 1;
    }
    DeviceSection {
        devices: dataset
            .devices
            .iter()
            .map(|d| DeviceRow {
                hostname: d.hostname.clone(),
                fingerprint: d.fingerprint.chars().take(12).collect(),
                cpu: format!("{} ({} logical cores)", d.cpu_model, d.cores_logical),
                ram: bytes(d.ram_bytes as f64),
                os: format!("{} / {}", d.os, d.kernel),
                build_profile: d.build_profile.clone(),
                engines: engine_versions(&d.engine_builds),
                bandwidth: match d.triad_bytes_per_s {
                    Some(b) => Cell {
                        text: format!("{} GB/s", num(b / GB)),
                        provenance: Provenance::Measured,
                        detail: "measured: triad, best of 5".into(),
                    },
                    None => Cell::none("not measured"),
                },
            })
            .collect(),
        run_counts: counts
            .into_iter()
            .map(|((mode, status), n)| RunCount { mode, status, n })
            .collect(),
        failures: runs_all
            .iter()
            .filter(|r| r.status == "failed" || r.status == "aborted")
            .map(|r| FailureRow {
                case: r.case.name.clone(),
                status: r.status.clone(),
                error: r.error.clone().unwrap_or_default(),
                stderr_tail: r.stderr_tail.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

fn engine_versions(json: &str) -> String {
    serde_json::from_str::<Vec<serde_json::Value>>(json)
        .map(|v| {
            v.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["engine"].as_str().unwrap_or("?"),
                        e["version"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|_| json.to_string())
}

/// Metrics compared for regressions: name, samples, whether higher is better.
type SampleGetter = fn(&Samples) -> &Vec<f64>;
const REGRESSION_METRICS: &[(&str, SampleGetter, bool)] = &[
    ("generation tokens/s", |s| &s.generation_tokens_per_s, true),
    ("ttft ms", |s| &s.ttft_ms, false),
    ("ms per token", |s| &s.tpot_ms, false),
];

pub fn regressions(
    pairs: &[(&Run, &Run)],
    baseline: String,
    threshold_pct: Option<f64>,
) -> RegressionSection {
    let mut rows = Vec::new();
    for (current, base) in pairs {
        for (metric, get, higher) in REGRESSION_METRICS {
            let Some(r) = compare::measured_ratio(get(&base.samples), get(&current.samples), SEED)
            else {
                continue;
            };
            let worse = if *higher {
                r.verdict == Verdict::Lower
            } else {
                r.verdict == Verdict::Higher
            };
            let better = if *higher {
                r.verdict == Verdict::Higher
            } else {
                r.verdict == Verdict::Lower
            };
            let verdict = if worse {
                "regressed"
            } else if better {
                "improved"
            } else if r.verdict == Verdict::TooFewSamples {
                "too few samples"
            } else {
                "noise"
            };
            rows.push(RegressionRow {
                case: current.case.name.clone(),
                metric: (*metric).into(),
                baseline: format!(
                    "{} (run {})",
                    num(r.baseline.median),
                    &base.id[..base.id.len().min(8)]
                ),
                current: format!(
                    "{} (run {})",
                    num(r.variant.median),
                    &current.id[..current.id.len().min(8)]
                ),
                change_pct: ((r.ratio - 1.0) * 100.0 * 10.0).round() / 10.0,
                ci: r.ci.map_or("—".into(), |ci| {
                    format!("[{:.3}, {:.3}]", ci.low, ci.high)
                }),
                verdict: verdict.into(),
            });
        }
    }
    let regressed_beyond_threshold = rows
        .iter()
        .filter(|r| {
            r.verdict == "regressed"
                && threshold_pct.is_none_or(|t| {
                    let higher = REGRESSION_METRICS
                        .iter()
                        .find(|m| m.0 == r.metric)
                        .is_some_and(|m| m.2);
                    let worse_by = if higher { -r.change_pct } else { r.change_pct };
                    worse_by > t
                })
        })
        .count();
    RegressionSection {
        test: "ratio of medians (current ÷ baseline) with a 95% percentile-bootstrap CI, 2000 resamples per side; regressed/improved only when the whole interval lies on the worse/better side of 1, else noise".into(),
        baseline,
        threshold_pct,
        rows,
        regressed_beyond_threshold,
    }
}
