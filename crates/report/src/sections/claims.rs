//! The seed article's published claims checked against physics and against what was measured.

use super::prelude::*;

pub(crate) fn claim_text(c: &ClaimFile) -> String {
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
        ClaimKind::QuantizationSupport => format!(
            "quantizations {}",
            c.formats.as_deref().unwrap_or_default().join(", ")
        ),
    }
}

/// One claim's verdict: (verdict, css class, arithmetic).
/// What a decode-rate claim is projected from: the published measurements' class fits and the
/// roofline shares measured here on each real model's full-size twin.
pub(crate) struct ProjectionInputs<'a> {
    pub claims: &'a ClaimsFile,
    pub shares: BTreeMap<String, stats::Summary>,
}

/// A decode rate projected to a claim's device, context and concurrency.
pub(crate) struct DecodeProjection {
    pub mid: f64,
    pub low: f64,
    pub high: f64,
    pub arithmetic: String,
}

/// Efficiency × the physical bound at the claim's context and concurrency (`limit`, t/s per
/// sequence): the class fit where the device has one, else this lab's measured share.
pub(crate) fn decode_projection(
    c: &ClaimFile,
    inputs: &ProjectionInputs<'_>,
    limit: f64,
) -> Option<DecodeProjection> {
    let device = c.device.as_deref()?;
    let fit = projections::class_of(inputs.claims, device).and_then(|class| {
        projections::class_efficiency(inputs.claims, &class.id, None).map(|f| (class, f))
    });
    if let Some((class, fit)) = fit {
        let (mid, low, high) = (fit.mid() * limit, fit.low * limit, fit.high * limit);
        return Some(DecodeProjection {
            mid,
            low,
            high,
            arithmetic: format!(
                "{} efficiency {:.0}% ({:.0}–{:.0}%, fitted on {}) × the bound {limit:.1} t/s = {mid:.1} t/s ({low:.1}–{high:.1})",
                class.label,
                100.0 * fit.mid(),
                100.0 * fit.low,
                100.0 * fit.high,
                fit.from.join(", ")
            ),
        });
    }
    let share = inputs.shares.get(c.model.as_deref()?)?;
    // Never above the physical bound, whatever the probe read.
    let used = share.median.min(1.0);
    Some(DecodeProjection {
        mid: used * limit,
        low: share.min.min(1.0) * limit,
        high: share.max.min(1.0) * limit,
        arithmetic: format!(
            "no published measurement for this device's class: the full-size twin's measured roofline share {:.0}%{} (median of n={} runs here) × the bound {limit:.1} t/s = {:.1} t/s (a phone's efficiency differs from this machine's)",
            100.0 * share.median,
            if share.median > 1.0 {
                ", capped at 100%"
            } else {
                ""
            },
            share.n,
            used * limit
        ),
    })
}

pub(crate) fn check_claim(
    c: &ClaimFile,
    registry: &Registry,
    roi_best: Option<f64>,
    projection_inputs: &ProjectionInputs<'_>,
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
                let arithmetic = format!("{}; bandwidth: {}", upper.arithmetic, profile.map_or("", |p| p.source));
                if upper.physics == Physics::Impossible {
                    return ("partly impossible (the upper end)".into(), "impossible", arithmetic);
                }
                // Re-judged at the device class's efficiency fitted on published measurements
                // (else at the efficiency measured here on the model's full-size twin).
                let weights = c.weights_gb.unwrap_or(0.0) * GB;
                match decode_projection(c, projection_inputs, upper.limit) {
                    Some(p) if weights > 0.0 => {
                        let within = lo <= p.high;
                        (
                            if within { "physically possible; within the projection" } else { "physically possible; above the projection" }.into(),
                            if within { "possible" } else { "not-reproduced" },
                            format!("{arithmetic}; projected: {}", p.arithmetic),
                        )
                    }
                    _ => ("not reproducible here (device not in the lab); physically possible".into(), "possible", arithmetic),
                }
            }
        }
        (ClaimKind::Footprint, _, Some(params)) => match c.precision.as_deref().and_then(|p| p.parse::<Quant>().ok()).and_then(|precision| claims::footprint_bound(c.gb.unwrap_or(0.0) * GB, params, precision)) {
            Some(b) if b.physics == Physics::Impossible => impossible(b),
            Some(b) => ("physically possible".into(), "possible", b.arithmetic),
            None => ("not checkable".into(), "unknown", "unknown precision".into()),
        },
        (ClaimKind::MinMemory | ClaimKind::ModelSize, Some(arch), Some(params)) => {
            let precision = c.precision.as_deref().and_then(|p| p.parse::<Quant>().ok());
            let Some((precision, weights)) = precision.and_then(|p| Some((p, projection::weight_bytes(params, p)?))) else {
                return ("not checkable".into(), "unknown", "unknown precision".into());
            };
            let claimed = c.gb.unwrap_or(0.0) * GB;
            if c.kind == ClaimKind::ModelSize {
                let ratio = claimed / weights as f64;
                let ok = (0.9..=1.1).contains(&ratio);
                (
                    if ok { "consistent with the projection" } else { "not reproduced by the projection" }.into(),
                    if ok { "reproduced" } else { "not-reproduced" },
                    format!("{:.2} B parameters × {} bits ÷ 8 = {:.2} GB; claimed {:.2} GB ({:+.0}%)", params as f64 / GB, precision.bits_per_weight().unwrap_or(0.0), weights as f64 / GB, claimed / GB, (ratio - 1.0) * 100.0),
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
        (ClaimKind::Accuracy, _, _) => ("not reproducible here".into(), "unknown", "no accuracy run of the real model here: MMLU needs the real model file (a twin has random weights and is never scored)".into()),
        (ClaimKind::TurnLatency, _, _) => ("not checkable".into(), "unknown", "the claim names no device, turn length or prompt; the overview shows measured multi-turn latency for the models present".into()),
        (ClaimKind::DeviceCost, _, _) => match roi_best {
            Some(best) => ("not reproduced".into(), "not-reproduced", format!("with the ROI inputs below, the cheapest measured model costs ${best:.2} per 1M tokens even at full capacity (device amortisation + energy); claimed ${:.2}", c.usd_per_million.unwrap_or(0.0))),
            None => ("not checkable".into(), "unknown", "no measured model to cost".into()),
        },
        (ClaimKind::QuantizationSupport, _, _) => {
            // What llama.cpp reads of each format, and which GGUF types this project runs.
            let mut read = Vec::new();
            let mut unread = Vec::new();
            for f in c.formats.as_deref().unwrap_or_default() {
                match f.to_ascii_uppercase().as_str() {
                    "INT4" => read.push("INT4 as GGUF Q4_0 / Q4_K_M"),
                    "INT8" => read.push("INT8 as GGUF Q8_0"),
                    _ => unread.push(f.as_str()),
                }
            }
            let arithmetic = format!(
                "the full-size twins are written and run at {}{}",
                read.join(", "),
                if unread.is_empty() { String::new() } else { format!("; {} is not a format llama.cpp reads (GPTQ is a GPU checkpoint format for PyTorch runtimes, not GGUF)", unread.join(", ")) }
            );
            if unread.is_empty() {
                ("reproduced".into(), "reproduced", arithmetic)
            } else {
                ("partly reproduced".into(), "not-reproduced", arithmetic)
            }
        }
        _ => ("not checkable".into(), "unknown", format!("model `{}` is not in models.toml", c.model.as_deref().unwrap_or("?"))),
    }
}

/// The median roofline share of each real model's full-size twin (one stream, llama.cpp, baseline
/// KV), keyed by the real model's id.
pub(crate) fn full_size_shares(
    runs: &[&Run],
    registry: &Registry,
) -> BTreeMap<String, stats::Summary> {
    let mut out = BTreeMap::new();
    for m in registry.models().filter(|m| m.is_full_size_twin()) {
        let Some(real) = &m.twin_of else { continue };
        let f: Vec<f64> = reference_runs(runs, &m.id)
            .iter()
            .filter_map(|r| r.roofline_fraction)
            .collect();
        if let Some(s) = stats::summarize(&f) {
            out.insert(real.clone(), s);
        }
    }
    out
}

pub fn claims_section(
    claims: &ClaimsFile,
    registry: &Registry,
    roi_best: Option<f64>,
    devices: &[Device],
    runs: &[&Run],
) -> ClaimSection {
    let inputs = ProjectionInputs {
        claims,
        shares: full_size_shares(runs, registry),
    };
    let rows: Vec<ClaimRow> = claims
        .claim
        .iter()
        .map(|c| {
            let (verdict, class, arithmetic) = check_claim(c, registry, roi_best, &inputs);
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
                    detail: p.source.to_string(),
                    ..Cell::default()
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
                    detail: "STREAM-style triad, best of 5 (docs/methodology.md)".into(),
                    ..Cell::default()
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
