//! KV-cache variants against their baseline, measured, and projected at the real model sizes.

use super::prelude::*;

pub(crate) fn real_arch<'a>(
    registry: &'a Registry,
    id: &str,
) -> Option<(&'a str, &'a Architecture)> {
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
    let mut quality_points: Vec<(String, f64, f64)> = Vec::new();
    // (decode ratio, sentence) of the fastest variant with a quality pass.
    let mut fastest: Option<(f64, String)> = None;
    let mut projected = Vec::new();
    let mut projected_seen = BTreeSet::new();
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
                bytes_change_cell(
                    base_runs.iter().find_map(|r| get(r)),
                    var_runs.iter().find_map(|r| get(r)),
                    &format!("{what} of one run each"),
                    format!("{what} not stored"),
                )
            };
            let refusal = registry
                .get(model_id(v0))
                .and_then(ModelEntry::accuracy_refusal);
            let (kld, same_top1) = quality_cells(&var_runs, refusal.is_some());
            if let (Some(q), Some(r)) = (
                newest_quality(&var_runs),
                compare::measured_ratio(
                    &pooled(&base_runs, |s| &s.generation_tokens_per_s),
                    &pooled(&var_runs, |s| &s.generation_tokens_per_s),
                    SEED,
                ),
            ) && refusal.is_none()
            {
                quality_points.push((
                    format!("{} {variant}", r_model_label(v0)),
                    q.mean_kld,
                    100.0 * (r.ratio - 1.0),
                ));
                if fastest.as_ref().is_none_or(|(best, _)| r.ratio > *best) {
                    let memory = match (
                        base_runs.iter().find_map(|r| r.kv_cache_bytes),
                        var_runs.iter().find_map(|r| r.kv_cache_bytes),
                    ) {
                        (Some(a), Some(b)) if a > 0 => {
                            format!(", KV memory {}", pct(b as f64 / a as f64))
                        }
                        _ => String::new(),
                    };
                    fastest = Some((
                        r.ratio,
                        format!(
                            "Fastest KV-cache variant with a quality pass: {variant} on {group}: decode {} (n={} vs n={}){memory}, at a mean KLD of {:.4} ({}) and {:.1}% same top-1 against {} over {} positions.",
                            pct(r.ratio),
                            r.baseline.n,
                            r.variant.n,
                            q.mean_kld,
                            if quality::q8_level(q.mean_kld) {
                                "q8_0-level"
                            } else {
                                "above the q8_0-level band"
                            },
                            100.0 * q.same_top1,
                            q.reference,
                            q.tokens
                        ),
                    ));
                }
            }
            let ms_per_token = ratio_cell(
                &pooled(&base_runs, |s| &s.tpot_ms),
                &pooled(&var_runs, |s| &s.tpot_ms),
                "token gaps",
            );
            measured_rows.push(KvMeasuredRow {
                prefill: ratio_cell(
                    &pooled(&base_runs, |s| &s.ttft_ms),
                    &pooled(&var_runs, |s| &s.ttft_ms),
                    "requests' TTFT",
                ),
                mean_kld: kld,
                same_top1,
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
                kv_memory: {
                    let mut c = mem(|r| r.kv_cache_bytes, "KV cache bytes");
                    let rss = mem(|r| r.peak_rss_bytes, "peak RSS");
                    c.detail = format!("{}; peak RSS {} ({})", c.detail, rss.text, rss.detail);
                    c
                },
                peak_rss: mem(|r| r.peak_rss_bytes, "peak RSS"),
                tokens_per_s: {
                    let mut c = ratio_cell(
                        &pooled(&base_runs, |s| &s.generation_tokens_per_s),
                        &pooled(&var_runs, |s| &s.generation_tokens_per_s),
                        "requests",
                    );
                    c.detail = format!(
                        "{}; ms per token {}: {}",
                        c.detail, ms_per_token.text, ms_per_token.detail
                    );
                    c
                },
                ms_per_token,
            });
            // The same option at the real model's size.
            let Some((real_id, arch)) = real_arch(registry, model_id(v0)) else {
                continue;
            };
            let (bk, bv, vk, vv) = (
                base.case.type_k,
                base.case.type_v,
                v0.case.type_k,
                v0.case.type_v,
            );
            // A real file or a full-size twin reads the real model's bytes: project at the
            // context it was measured at, with the roofline shares measured here. A 1/16 twin
            // only says which options were run; its projection is the formula at a context of
            // at least 4096.
            let full_size = registry
                .get(model_id(v0))
                .is_some_and(|m| m.is_full_size_twin() || m.twin_of.is_none());
            let context = if full_size {
                v0.case.context
            } else {
                v0.case.context.max(4096)
            };
            let key = format!(
                "{real_id}/{}/{}/{context}/{}",
                v0.case.type_k, v0.case.type_v, base.case.type_k
            );
            if !projected_seen.insert(key) {
                continue;
            }
            let params = twin::parameter_count(arch);
            let weights = projection::weight_bytes(params, Quant::Q4KM).unwrap_or(0);
            let shares = full_size.then(|| (measured_share(&base_runs), measured_share(&var_runs)));
            for profile in device_profile::PROFILES {
                let Some(bandwidth) = profile.bandwidth_bytes_per_s else {
                    continue;
                };
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
                    bandwidth,
                );
                projected.push(KvProjectedRow {
                    model: format!("{real_id} (real size, Q4_K_M, projected)"),
                    variant: format!(
                        "{}/{} → {}/{}{}",
                        base.case.type_k,
                        base.case.type_v,
                        v0.case.type_k,
                        v0.case.type_v,
                        if v0.case.flash_attention {
                            ", flash"
                        } else {
                            ""
                        }
                    ),
                    context,
                    device: format!("{} ({:.1} GB/s)", profile.label, bandwidth / GB),
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
                    at_measured_share: at_measured_share(&p, shares, &group),
                    detail: format!(
                        "{:.2} B parameters, weights {:.2} GB at Q4_K_M, context {context}{}",
                        params as f64 / GB,
                        weights as f64 / GB,
                        if full_size {
                            " (as measured)"
                        } else {
                            " (at least 4096)"
                        }
                    ),
                });
            }
        }
    }
    KvSection {
        fastest_quality: fastest.map(|f| f.1).unwrap_or_default(),
        quality_svg: crate::plots::scatter(
            "Decode speed change against output quality (mean KLD vs the f16 cache)",
            "mean KLD (nats)",
            "decode tokens/s change (%)",
            &quality_points,
        ),
        q8_level_kld: quality::Q8_LEVEL_MEAN_KLD,
        measured: measured_rows,
        projected,
        formula: compare::KvProjection::formula().into(),
    }
}

/// The median roofline share of `runs` (those with a probe beside them).
fn measured_share(runs: &[&Run]) -> Option<stats::Summary> {
    let shares: Vec<f64> = runs.iter().filter_map(|r| r.roofline_fraction).collect();
    stats::summarize(&shares)
}

/// The projection at the roofline shares the full-size twin's baseline and variant reached
/// here, each capped at 100% (a share above it means the probe beside the run read low).
fn at_measured_share(
    p: &compare::KvProjection,
    shares: Option<(Option<stats::Summary>, Option<stats::Summary>)>,
    group: &str,
) -> Cell {
    let Some(shares) = shares else {
        return Cell::none(
            "a 1/16 twin's share says nothing of the real model: run the full-size twin",
        );
    };
    let (Some(base), Some(var)) = shares else {
        return Cell::none("no roofline share measured for both variants");
    };
    let (b, v) = (base.median.min(1.0), var.median.min(1.0));
    let (tb, tv) = (
        b * p.roofline_tokens_per_s_baseline,
        v * p.roofline_tokens_per_s_variant,
    );
    Cell {
        text: format!("{} → {} t/s ({})", num(tb), num(tv), pct(tv / tb)),
        provenance: Provenance::Projected,
        detail: format!(
            "roofline share measured here on {group}: {:.0}% (n={}) → {:.0}% (n={}), capped at 100%, × the roofline beside it",
            100.0 * base.median,
            base.n,
            100.0 * var.median,
            var.n
        ),
        ..Cell::default()
    }
}

fn r_model_label(r: &Run) -> &str {
    r.model
        .as_ref()
        .map_or(r.case.model.as_str(), |m| m.registry_id.as_str())
}

/// The newest quality pass among `runs`.
pub(crate) fn newest_quality<'a>(runs: &[&'a Run]) -> Option<&'a RunQuality> {
    runs.iter().rev().find_map(|r| r.quality.as_ref())
}

/// Mean KLD (with its band) and same-top-1 of a variant's newest quality pass.
pub(crate) fn quality_cells(runs: &[&Run], twin: bool) -> (Cell, Cell) {
    if twin {
        let na = || {
            Cell {
            text: "n/a (random weights)".into(),
            detail: "a synthetic twin's distributions mean nothing: quality is measured on real files only".into(),
            ..Cell::default()
        }
        };
        return (na(), na());
    }
    let Some(q) = newest_quality(runs) else {
        let none = || Cell::none("no quality pass: add a [quality] table to the scenario");
        return (none(), none());
    };
    let band = if quality::q8_level(q.mean_kld) {
        "q8_0-level"
    } else {
        "above q8_0-level"
    };
    let source = format!(
        "against {} over {} positions ({} chunks of {} tokens) of {} (sha256 {})",
        q.reference,
        q.tokens,
        q.chunks,
        q.context,
        q.corpus,
        q.corpus_sha256.get(..12).unwrap_or(&q.corpus_sha256)
    );
    (
        Cell {
            text: format!("{:.4} ({band})", q.mean_kld),
            spread: format!("±{:.4}", q.kld_ci95.1 - q.mean_kld),
            provenance: Provenance::Measured,
            detail: format!(
                "mean KLD {source}; 95% CI [{:.4}, {:.4}], p99 {:.4}, max {:.4}, Δ ln PPL {:+.4}; band: mean KLD ≤ {} is q8_0-level",
                q.kld_ci95.0,
                q.kld_ci95.1,
                q.p99_kld,
                q.max_kld,
                q.delta_log_ppl,
                quality::Q8_LEVEL_MEAN_KLD
            ),
        },
        Cell {
            text: format!("{:.1}%", 100.0 * q.same_top1),
            spread: format!("±{:.1}", 196.0 * q.same_top1_stderr),
            provenance: Provenance::Measured,
            detail: format!(
                "share of positions whose most likely token is the reference's, {source}"
            ),
        },
    )
}
