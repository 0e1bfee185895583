//! `cargo xtask compare A B`: two runs, or two invocations case by case, in the spirit of
//! llama.cpp's `compare-llama-bench.py`, judged with the report's own statistics (ratio of
//! medians, B ÷ A, with its 95% bootstrap CI; a change only when the whole interval is on one
//! side of 1).

use edgebench_core::compare::{self, Verdict};

use crate::data::{Dataset, Run};
use crate::sections::format::num;
use crate::{ReportError, measured};

/// One metric of one case, A against B.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    pub case: String,
    pub metric: &'static str,
    pub a: f64,
    pub b: f64,
    /// B ÷ A.
    pub ratio: f64,
    pub ci: Option<(f64, f64)>,
    /// `faster`/`slower` for speeds, `lower`/`higher` latency, `no change`, `too few samples`.
    pub verdict: &'static str,
}

/// What was compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// How A and B were read (`run …` or `invocation …, N runs`).
    pub a: String,
    pub b: String,
    pub rows: Vec<ComparisonRow>,
    /// Cases measured on one side only.
    pub unpaired: Vec<String>,
}

impl Comparison {
    /// Rows as text cells for a table: case, metric, A, B, B ÷ A, CI, verdict.
    #[must_use]
    pub fn cells(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                vec![
                    r.case.clone(),
                    r.metric.to_owned(),
                    num(r.a),
                    num(r.b),
                    format!("{:.3}", r.ratio),
                    r.ci.map_or("—".into(), |(lo, hi)| format!("[{lo:.3}, {hi:.3}]")),
                    r.verdict.to_owned(),
                ]
            })
            .collect()
    }
}

/// The header of [`Comparison::cells`].
pub const HEADER: &[&str] = &["case", "metric", "A", "B", "B ÷ A", "95% CI", "verdict"];

/// The runs `selector` names: one run (an id or its prefix), else every measured run of an
/// invocation (id or prefix), latest per case.
fn select<'a>(dataset: &'a Dataset, selector: &str) -> Result<(String, Vec<&'a Run>), ReportError> {
    let runs = || dataset.runs.iter().filter(|r| measured(r));
    if let Some(run) = runs().find(|r| r.id == selector).or_else(|| {
        let mut matching = runs().filter(|r| r.id.starts_with(selector));
        match (matching.next(), matching.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }) {
        return Ok((format!("run {}", run.id), vec![run]));
    }
    let invocations: std::collections::BTreeSet<&str> = runs()
        .filter(|r| r.invocation.starts_with(selector))
        .map(|r| r.invocation.as_str())
        .collect();
    match invocations.len() {
        1 => {
            let invocation = invocations.into_iter().next().unwrap_or_default();
            let mut latest: std::collections::BTreeMap<&str, &Run> = Default::default();
            for r in runs().filter(|r| r.invocation == invocation) {
                latest.insert(r.case.name.as_str(), r);
            }
            let picked: Vec<&Run> = latest.into_values().collect();
            Ok((
                format!("invocation {invocation}, {} runs", picked.len()),
                picked,
            ))
        }
        0 => Err(ReportError::UnknownRun(selector.to_owned())),
        n => Err(ReportError::Input {
            file: "compare".into(),
            message: format!("`{selector}` matches {n} invocations; give more of the id"),
        }),
    }
}

const METRICS: &[(&str, crate::sections::regressions::SampleGetter, bool)] = &[
    ("generation t/s", |s| &s.generation_tokens_per_s, true),
    ("TTFT ms", |s| &s.ttft_ms, false),
    ("ms per token", |s| &s.tpot_ms, false),
];

/// A against B. Two single runs are compared whatever their cases; invocations are paired by
/// case name.
pub fn compare(dataset: &Dataset, a: &str, b: &str, seed: u64) -> Result<Comparison, ReportError> {
    let (a_label, a_runs) = select(dataset, a)?;
    let (b_label, b_runs) = select(dataset, b)?;
    let pairs: Vec<(&Run, &Run)> = if a_runs.len() == 1 && b_runs.len() == 1 {
        vec![(a_runs[0], b_runs[0])]
    } else {
        a_runs
            .iter()
            .filter_map(|ra| {
                b_runs
                    .iter()
                    .find(|rb| rb.case.name == ra.case.name)
                    .map(|rb| (*ra, *rb))
            })
            .collect()
    };
    let mut unpaired: Vec<String> = a_runs
        .iter()
        .chain(&b_runs)
        .filter(|r| !pairs.iter().any(|(x, y)| x.id == r.id || y.id == r.id))
        .map(|r| r.case.name.clone())
        .collect();
    unpaired.sort();
    unpaired.dedup();
    let mut rows = Vec::new();
    for (ra, rb) in pairs {
        let case = if ra.case.name == rb.case.name {
            ra.case.name.clone()
        } else {
            format!("{} → {}", ra.case.name, rb.case.name)
        };
        for &(metric, samples, higher_is_better) in METRICS {
            let Some(r) = compare::measured_ratio(samples(&ra.samples), samples(&rb.samples), seed)
            else {
                continue;
            };
            let verdict = match (r.verdict, higher_is_better) {
                (Verdict::Higher, true) => "faster",
                (Verdict::Lower, true) => "slower",
                (Verdict::Higher, false) => "higher (worse)",
                (Verdict::Lower, false) => "lower (better)",
                (Verdict::TooFewSamples, _) => "too few samples",
                _ => "no change",
            };
            rows.push(ComparisonRow {
                case: case.clone(),
                metric,
                a: r.baseline.median,
                b: r.variant.median,
                ratio: r.ratio,
                ci: r.ci.map(|ci| (ci.low, ci.high)),
                verdict,
            });
        }
    }
    Ok(Comparison {
        a: a_label,
        b: b_label,
        rows,
        unpaired,
    })
}
