//! Every run: its numbers, roofline share and harness overhead, with notes on large deviations.

use super::prelude::*;

/// A cell from a run's stored summary (imported runs have no raw samples, only these).
pub(crate) fn stored_cell(metric: Option<&crate::data::Metric>, unit: &str, what: &str) -> Cell {
    let Some(m) = metric else {
        return Cell::none(format!("no {what}"));
    };
    let spread = m.ci.map_or_else(
        || "no interval".to_owned(),
        |(low, high)| format!("95% CI of the median [{}, {}]", num(low), num(high)),
    );
    Cell {
        text: format!("{} {unit}", num(m.median)),
        spread: m
            .ci
            .map_or_else(String::new, |(low, high)| half_width(low, high)),
        provenance: Provenance::Measured,
        detail: format!("median of n={} {what}; {spread}", m.n),
    }
}

/// Harness ÷ engine rate of one phase over a run's repetitions.
pub(crate) fn overhead_cell(r: &Run, phase: overhead::Phase) -> Cell {
    if r.origin != RunOrigin::Edgebench {
        return Cell::none(format!("{}: timed by that tool itself", r.origin));
    }
    if r.phases.is_empty() {
        return Cell::none(if r.case.backend == BackendKind::LlamaCpp {
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
                    "median of n={} repetitions, min {:.4}, max {:.4}; harness {} tokens/s ÷ the engine counters' ({} {:.2}%)",
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
                ..Cell::default()
            }
        }
    }
}

/// Why a decode ran far from its roofline, when it did.
pub(crate) fn roofline_note(r: &Run, fraction: f64, cores: Option<u32>) -> String {
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
        notes.push(if r.case.backend == BackendKind::Candle {
            "far below the bound: compute-bound (candle runs one forward per sequence and dequantizes in plain Rust kernels)".to_owned()
        } else {
            "far below the bound: compute-bound (dequantization, small matrix-vector products, thread synchronization per layer), not bandwidth-bound"
                .to_owned()
        });
    }
    notes.join("; ")
}

/// A run's prompt format as the report shows it.
pub(crate) fn prompt_format(r: &Run) -> String {
    match (r.prompt_format, &r.origin) {
        (Some(f), _) => f.as_str().into(),
        (None, RunOrigin::Edgebench) => "raw (not recorded)".into(),
        (None, RunOrigin::Imported { .. }) => "—".into(),
    }
}

/// A probe beside a run whose repetitions spread wider than this share of their median
/// ((max − min) ÷ median) measured a machine whose bandwidth moved while the case ran: the
/// roofline share is shown but flagged as not to be trusted.
pub const PROBE_SPREAD_LIMIT: f64 = 0.25;

/// The probe's spread beside `r`: (spread, text for the cell, note when too wide).
fn probe_spread(r: &Run, bandwidth: f64) -> Option<(f64, String, String)> {
    let p = r.bandwidth_probe?;
    let spread = (p.max_bytes_per_s - p.min_bytes_per_s) / bandwidth;
    let text = format!(
        "median of the probe beside the run, {} repetitions before and after it: {}–{} GB/s, spread {:.0}%",
        p.n,
        num(p.min_bytes_per_s / GB),
        num(p.max_bytes_per_s / GB),
        100.0 * spread
    );
    let note = if spread > PROBE_SPREAD_LIMIT {
        format!(
            "probe spread {:.0}%: the bandwidth moved by more than {:.0}% around this run, so its roofline share is not to be trusted",
            100.0 * spread,
            100.0 * PROBE_SPREAD_LIMIT
        )
    } else {
        String::new()
    };
    Some((spread, text, note))
}

/// One row per run: speed, % of the bandwidth roofline and harness overhead.
/// `contended: …` when other processes held a meaningful share of the cores while the run
/// measured: the run is shown, never compared.
fn contended_note(r: &Run) -> String {
    crate::contended(r).map_or_else(String::new, |share| {
        format!(
            "contended: other processes used {:.0}% of the cores' time while it measured (over {:.0}%), so it is left out of comparisons and history verdicts",
            100.0 * share,
            100.0 * edgebench_core::contention::CONTENDED_SHARE
        )
    })
}

/// `integrity: fail: …` when the engine did not produce what was asked (first tokens changed
/// between repetitions, wrong lengths): the run is shown, never compared.
fn integrity_note(r: &Run) -> String {
    match &r.integrity {
        Some(v @ IntegrityVerdict::Fail(_)) => {
            format!("integrity: {v}; so it is left out of comparisons and history verdicts")
        }
        _ => String::new(),
    }
}

/// The coefficient of variation of a run's per-request generation rates, with AIPerf's band
/// (`stats::cv_band`): how far one request's speed is from the next within the run.
fn spread_band(rates: &[f64]) -> Cell {
    match stats::summarize(rates) {
        Some(s) if s.n >= 2 && s.mean > 0.0 => {
            let cv = s.cv;
            Cell {
                text: format!("{:.1}% {}", 100.0 * cv, stats::cv_band(cv)),
                provenance: Provenance::Measured,
                detail: format!(
                    "standard deviation ÷ mean of n={} requests' generation tokens/s; bands: below 5% excellent, 5–10% good, 10–20% fair, above 20% high (AIPerf's); a within-run spread, not whether the run replicates (`cargo xtask replicate`)",
                    s.n
                ),
                ..Cell::default()
            }
        }
        _ => Cell::none("fewer than two requests"),
    }
}

/// Per case and device, the newest `cargo xtask replicate` verdict: its tries (one invocation,
/// separate processes) and whether every try's median generation speed lies within 5% of
/// their median.
pub fn replication_verdicts(all: &[Run]) -> BTreeMap<(String, String), String> {
    // (case, device) → invocation → (its newest start, its tries' medians).
    let mut tries: BTreeMap<(String, String), BTreeMap<&str, (i64, Vec<f64>)>> = BTreeMap::new();
    for r in all.iter().filter(|r| {
        crate::measured(r)
            && r.invocation
                .starts_with(stats::REPLICATION_INVOCATION_PREFIX)
    }) {
        let Some(m) = r.metrics.get("generation_tokens_per_s") else {
            continue;
        };
        let entry = tries
            .entry((r.case.name.clone(), r.device_fingerprint.clone()))
            .or_default()
            .entry(r.invocation.as_str())
            .or_insert((r.started_at_ms, Vec::new()));
        entry.0 = entry.0.max(r.started_at_ms);
        entry.1.push(m.median);
    }
    tries
        .into_iter()
        .filter_map(|(key, invocations)| {
            let (_, medians) = invocations
                .into_values()
                .filter(|(_, m)| m.len() >= 2)
                .max_by_key(|(newest, _)| *newest)?;
            let (ok, worst) = stats::replicates(&medians, stats::REPLICATION_TOLERANCE)?;
            Some((
                key,
                format!(
                    "{}: {} tries, largest deviation from their median {:.1}% (tolerance {:.0}%)",
                    if ok {
                        "replicates"
                    } else {
                        "does not replicate"
                    },
                    medians.len(),
                    100.0 * worst,
                    100.0 * stats::REPLICATION_TOLERANCE
                ),
            ))
        })
        .collect()
}

pub fn runs(
    runs: &[&Run],
    devices: &[Device],
    replication: &BTreeMap<(String, String), String>,
) -> RunSection {
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
                    let probe = probe_spread(r, bw);
                    let (spread, source, probe_note) = probe.map_or_else(
                        || (String::new(), "the device's one-off probe".to_owned(), String::new()),
                        |(s, text, note)| (format!("probe ±{:.0}%", 50.0 * s), text, note),
                    );
                    let note = [
                        contended_note(r),
                        integrity_note(r),
                        probe_note,
                        roofline_note(r, f, cores),
                    ]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                    (
                        Cell {
                            text: format!("{:.0}%", f * 100.0),
                            spread,
                            provenance: Provenance::Projected,
                            detail: format!(
                                "bytes the decode steps had to read ÷ their measured time ÷ the measured triad bandwidth {} GB/s ({source}){bound}",
                                num(bw / GB)
                            ),
                        },
                        note,
                    )
                }
                _ => (
                    Cell::none(if r.origin == RunOrigin::Edgebench {
                        "no bandwidth measured on this device"
                    } else {
                        "imported: no decode byte count"
                    }),
                    [contended_note(r), integrity_note(r)]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            };
            let replicated = replication
                .get(&(r.case.name.clone(), r.device_fingerprint.clone()))
                .cloned()
                .unwrap_or_default();
            let row = RunRow {
                replication_short: replicated
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                replication: replicated,
                integrity: match &r.integrity {
                    None => "n/a",
                    Some(IntegrityVerdict::Pass) => "pass",
                    Some(IntegrityVerdict::Fail(_)) => "fail",
                }
                .to_owned(),
                case: r.case.name.clone(),
                model: model.clone(),
                origin: r.origin.to_string(),
                threads: r.case.threads,
                prompt_format: prompt_format(r),
                generation: stored_cell(generation, "t/s", "generation tokens/s samples"),
                prefill: stored_cell(
                    r.metrics.get("prefill_tokens_per_s"),
                    "t/s",
                    "prefill tokens/s samples",
                ),
                roofline,
                spread_band: spread_band(&r.samples.generation_tokens_per_s),
                overhead_prefill: overhead_cell(r, overhead::Phase::Prefill),
                overhead_generation: overhead_cell(r, overhead::Phase::Generation),
                note_short: note
                    .split("; ")
                    .filter_map(|n| n.split(':').next())
                    .collect::<Vec<_>>()
                    .join("; "),
                note,
            };
            (model, r.case.threads, r.origin.to_string(), r.case.name.clone(), row)
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
