//! Runs against their baseline, judged by the bootstrap CI of the ratio of medians.

use super::prelude::*;

/// Metrics compared for regressions: name, samples, whether higher is better.
pub(crate) type SampleGetter = fn(&Samples) -> &Vec<f64>;
pub(crate) const REGRESSION_METRICS: &[(&str, SampleGetter, bool)] = &[
    ("generation tokens/s", |s| &s.generation_tokens_per_s, true),
    ("ttft ms", |s| &s.ttft_ms, false),
    ("ms per token", |s| &s.tpot_ms, false),
];

pub fn regressions(
    pairs: &[(&Run, &Run)],
    current: &[&Run],
    baseline: String,
    threshold_pct: Option<f64>,
) -> RegressionSection {
    let mut first_runs: Vec<FirstRunRow> = current
        .iter()
        .filter(|c| !pairs.iter().any(|(p, _)| p.id == c.id))
        .filter(|c| !c.samples.generation_tokens_per_s.is_empty())
        .map(|c| FirstRunRow {
            case: c.case.name.clone(),
            run: c.id[..c.id.len().min(8)].to_owned(),
            generation: measured(
                &c.samples.generation_tokens_per_s,
                "t/s",
                "generation tokens/s samples",
            ),
        })
        .collect();
    first_runs.sort_by(|a, b| a.case.cmp(&b.case));
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
        first_runs,
    }
}
