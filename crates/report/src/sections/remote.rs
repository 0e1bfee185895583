//! Engines beyond this host: HTTP runs paired with the same case in process (HTTP tokens/s ÷
//! in-process tokens/s, and the TTFT HTTP adds), and hybrid runs (the seed's on-device-first
//! service with cloud fallback) with the seed's own figures beside them as claims.

use super::prelude::*;
use edgebench_core::hybrid::{self, Served};

/// The seed's reported production figures for its `HybridInferenceService`.
const SEED_HYBRID: &str =
    "seed article, hybrid_inference.ts (\"Kết quả production (tháng 6/2026)\")";

fn claimed(text: &str) -> Cell {
    Cell {
        text: text.into(),
        spread: String::new(),
        provenance: Provenance::Claimed,
        detail: SEED_HYBRID.into(),
    }
}

fn server_of(r: &Run) -> String {
    let Some(json) = &r.endpoint else {
        return "—".into();
    };
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let url = v.get("url").and_then(|u| u.as_str()).unwrap_or("?");
    let props = v.pointer("/server/props");
    let name = props
        .and_then(|p| p.get("server").or_else(|| p.get("build_info")))
        .and_then(|s| s.as_str())
        .unwrap_or("server");
    let device = v
        .get("device_profile")
        .and_then(|d| d.as_str())
        .map_or_else(String::new, |d| format!("{d} via "));
    let counts = v
        .get("token_counts")
        .and_then(|c| c.as_str())
        .map_or_else(String::new, |c| format!("; tokens counted from {c}"));
    format!("{device}{name} at {url}{counts}")
}

pub fn remote(runs: &[&Run]) -> RemoteSection {
    // HTTP runs with the in-process llama.cpp run of the same case.
    let mut in_process: BTreeMap<String, &Run> = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.case.backend == BackendKind::LlamaCpp)
    {
        in_process.insert(r.case.name.replace("::llama_cpp::", "::*::"), r);
    }
    let http = runs
        .iter()
        .filter(|r| r.case.backend == BackendKind::Http)
        .map(|r| {
            let local = in_process.get(&r.case.name.replace("::http::", "::*::"));
            let rate = |x: &Run| x.samples.generation_tokens_per_s.clone();
            let ttft = |x: &Run| x.samples.ttft_ms.clone();
            HttpRow {
                case: r.case.name.clone(),
                server: server_of(r),
                http_rate: measured(&rate(r), "t/s", "requests"),
                in_process_rate: local.map_or_else(|| Cell::none("no in-process run of this case"), |l| measured(&rate(l), "t/s", "requests")),
                ratio: local.map_or_else(|| Cell::none("no in-process run of this case"), |l| ratio_cell(&rate(l), &rate(r), "requests")),
                ttft_added: match local.and_then(|l| {
                    let (h, p) = (stats::summarize(&ttft(r))?, stats::summarize(&ttft(l))?);
                    Some((h.median - p.median, h.n, p.n))
                }) {
                    Some((d, nh, np)) => Cell {
                        text: format!("{} ms", num(d)),
                        spread: String::new(),
                        provenance: Provenance::Measured,
                        detail: format!("median TTFT over HTTP (n={nh}) minus in process (n={np}), same case, same run of the suite"),
                    },
                    None => Cell::none("TTFT needs both runs"),
                },
            }
        })
        .collect();
    let hybrid_rows = runs
        .iter()
        .filter(|r| r.case.backend == BackendKind::Hybrid)
        .map(|r| hybrid_row(r))
        .collect();
    RemoteSection {
        http,
        hybrid: hybrid_rows,
        claims: vec![
            ("on-device success rate".into(), claimed("87%")),
            ("cloud fallback latency (average)".into(), claimed("47 ms")),
            ("cost savings vs pure cloud".into(), claimed("73%")),
        ]
        .into_iter()
        .map(|(what, cell)| ClaimRowCell { what, cell })
        .collect(),
    }
}

fn hybrid_row(r: &Run) -> HybridRow {
    let v: serde_json::Value = r
        .endpoint
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default();
    let price = v
        .pointer("/price/usd_per_million")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    let price_name = v
        .pointer("/price/name")
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_owned();
    let served: Vec<Served> = r
        .samples
        .hybrid
        .iter()
        .map(|q| Served {
            on_device: q.source == AnswerSource::OnDevice,
            cloud: q.source == AnswerSource::Cloud,
            fallback_ms: q.fallback_ms,
            tokens: q.tokens,
            cost_usd: q.cost_usd,
        })
        .collect();
    let s = hybrid::summarize(&served, price);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for q in &r.samples.hybrid {
        if let Some(reason) = &q.fallback_reason {
            // The kind of reason, without its figures.
            let kind = reason.split(':').next().unwrap_or(reason).to_owned();
            *reasons.entry(kind).or_default() += 1;
        }
        if let Some(e) = &q.error {
            let kind = e.split(':').next().unwrap_or(e).to_owned();
            *reasons.entry(format!("cloud failed: {kind}")).or_default() += 1;
        }
    }
    let share = |k: usize| Cell {
        text: format!("{:.0}%", 100.0 * k as f64 / s.requests.max(1) as f64),
        spread: String::new(),
        provenance: Provenance::Measured,
        detail: format!("{k} of n={} measured requests", s.requests),
    };
    let usd = |x: Option<f64>, detail: String| match x {
        Some(x) => Cell {
            text: format!("${x:.3}"),
            spread: String::new(),
            provenance: Provenance::Projected,
            detail,
        },
        None => Cell::none("no answered tokens"),
    };
    HybridRow {
        case: r.case.name.clone(),
        cloud: format!(
            "{} (route `{}`, priced as {price_name} at ${price}/M)",
            v.get("url").and_then(|u| u.as_str()).unwrap_or("?"),
            v.pointer("/route/model")
                .and_then(|m| m.as_str())
                .unwrap_or("?"),
        ),
        device_refusal: v
            .get("device_refusal")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_owned(),
        on_device: share(s.on_device),
        answered: share(s.on_device + s.cloud),
        fallback_p50: measured(&s.fallback_ms, "ms", "cloud fallbacks"),
        fallback_p95: match s.fallback_p95_ms {
            Some(p) => Cell {
                text: format!("{} ms", num(p)),
                spread: String::new(),
                provenance: Provenance::Measured,
                detail: format!(
                    "95th percentile of n={} cloud fallbacks (decision to first cloud token)",
                    s.fallback_ms.len()
                ),
            },
            None => Cell::none("no request fell back and was answered"),
        },
        hybrid_cost: usd(
            s.hybrid_usd_per_million,
            format!(
                "measured cost of the cloud answers ÷ every answered token × 10⁶ (prompt + completion tokens, as the seed's total_tokens × price); n={} requests",
                s.requests
            ),
        ),
        cloud_cost: usd(
            Some(price),
            format!("pure cloud: every token at {price_name}'s ${price}/M (datasets/roi.toml)"),
        ),
        device_cost: usd(
            Some(0.0),
            "pure on-device: no per-token price (the device's cost is in the ROI section)".into(),
        ),
        savings: match s.savings_vs_cloud {
            Some(x) => Cell {
                text: format!("{:.0}%", 100.0 * x),
                spread: String::new(),
                provenance: Provenance::Projected,
                detail: "1 − hybrid cost per token ÷ pure-cloud cost per token".into(),
            },
            None => Cell::none("no price or no answered tokens"),
        },
        reasons: reasons
            .into_iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect(),
    }
}
