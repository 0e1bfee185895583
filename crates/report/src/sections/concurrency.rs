//! Latency percentiles and aggregate throughput against concurrency.

use super::prelude::*;

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
                            "median over {n_reps} repetitions of decode tokens ÷ decode time, all sequences ({} runs)",
                            rs.len()
                        ),
                        ..Cell::default()
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
