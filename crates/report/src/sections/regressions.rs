//! Runs against their baseline, judged by the bootstrap CI of the ratio of medians.

use std::collections::HashMap;

use super::prelude::*;
use edgebench_store::dataset::{HistoryPoint, ProcessesPerNight, RunMedians};

pub type SampleGetter = fn(&Samples) -> &Vec<f64>;

/// A metric compared for regressions: its samples and which way is better. A run stands for
/// its median. (The fastest decile of token gaps was tried as a steadier run value and was not:
/// on the calibrated series whole runs move, not some of their tokens; docs/methodology.md.)
#[derive(Debug, Clone, Copy)]
pub struct RegressionMetric {
    pub name: &'static str,
    pub samples: SampleGetter,
    /// The run's median as its history keeps it (a pruned run has no samples).
    pub median: fn(&RunMedians) -> Option<f64>,
    pub higher_is_better: bool,
}

impl RegressionMetric {
    /// The run's value: the median of its samples.
    #[must_use]
    pub fn run_value(&self, samples: &Samples) -> Option<f64> {
        stats::summarize((self.samples)(samples)).map(|s| s.median)
    }
}

pub const REGRESSION_METRICS: &[RegressionMetric] = &[
    RegressionMetric {
        name: "generation tokens/s",
        samples: |s| &s.generation_tokens_per_s,
        median: |m| m.generation_tokens_per_s,
        higher_is_better: true,
    },
    RegressionMetric {
        name: "ttft ms",
        samples: |s| &s.ttft_ms,
        median: |m| m.ttft_ms,
        higher_is_better: false,
    },
    RegressionMetric {
        name: "ms per token",
        samples: |s| &s.tpot_ms,
        median: |m| m.tpot_ms,
        higher_is_better: false,
    },
];

/// Every comparable run's history point, grouped by series (case, device, model file) and
/// oldest first: the runs before the report's window from their summaries, the window's own
/// runs from their samples. Built once; a verdict then reads one series, not the whole lab.
#[derive(Debug)]
pub struct SeriesHistory {
    series: HashMap<(std::sync::Arc<str>, i64, std::sync::Arc<str>), Vec<HistoryPoint>>,
}

impl SeriesHistory {
    /// `before` (a windowed dataset's history) and the window's comparable `runs`.
    #[must_use]
    pub fn new<'h>(before: impl IntoIterator<Item = &'h HistoryPoint>, runs: &[&Run]) -> Self {
        let mut series: HashMap<_, Vec<HistoryPoint>> = HashMap::new();
        let comparable_before = before.into_iter().filter(|p| {
            p.integrity_passed != Some(false)
                && !p
                    .others_cpu_share
                    .is_some_and(edgebench_core::contention::is_contended)
        });
        let window = runs.iter().filter_map(|r| {
            let model = r.model.as_ref()?;
            Some(HistoryPoint {
                case: r.case.name.as_str().into(),
                device_id: r.device_id,
                model_sha256: model.sha256.as_str().into(),
                invocation: r.invocation.as_str().into(),
                started_at_ms: r.started_at_ms,
                medians: RunMedians::of(r),
                others_cpu_share: None,
                integrity_passed: None,
            })
        });
        for p in comparable_before.cloned().chain(window) {
            series
                .entry((p.case.clone(), p.device_id, p.model_sha256.clone()))
                .or_default()
                .push(p);
        }
        for points in series.values_mut() {
            points.sort_by_key(|p| p.started_at_ms);
        }
        Self { series }
    }

    fn of(&self, run: &Run) -> &[HistoryPoint] {
        let Some(model) = &run.model else {
            return &[];
        };
        self.series
            .get(&(
                run.case.name.as_str().into(),
                run.device_id,
                model.sha256.as_str().into(),
            ))
            .map_or(&[], Vec::as_slice)
    }

    /// Devices with any history.
    fn has_device(&self, device_id: i64) -> bool {
        self.series.keys().any(|(_, d, _)| *d == device_id)
    }
}

/// One value per night of one metric of `current`'s case on its device and model, oldest
/// first, up to and including `current`'s night, and how many runs they came from. A night is
/// an invocation: its runs (`nightly --processes K` stores K per case) count as their median.
fn metric_history(
    current: &Run,
    history: &SeriesHistory,
    metric: &RegressionMetric,
) -> (Vec<f64>, Vec<String>, usize) {
    // Nights in the order of their first run.
    let mut labels: Vec<String> = Vec::new();
    let mut nights: Vec<Vec<f64>> = Vec::new();
    let mut night_of: HashMap<&str, usize> = HashMap::new();
    let mut counted = 0;
    for p in history
        .of(current)
        .iter()
        .filter(|p| p.started_at_ms <= current.started_at_ms)
    {
        let Some(v) = (metric.median)(&p.medians) else {
            continue;
        };
        counted += 1;
        let k = *night_of.entry(&p.invocation).or_insert_with(|| {
            nights.push(Vec::new());
            labels.push(night_label(p));
            nights.len() - 1
        });
        nights[k].push(v);
    }
    let (labels, series) = labels
        .into_iter()
        .zip(nights)
        .filter_map(|(label, values)| Some((label, stats::summarize(&values)?.median)))
        .unzip();
    (series, labels, counted)
}

/// A night as its page lists it: the day it started and its invocation.
fn night_label(p: &HistoryPoint) -> String {
    let day = jiff::Timestamp::from_millisecond(p.started_at_ms).map_or_else(
        |_| p.started_at_ms.to_string(),
        |t| t.strftime("%Y-%m-%d").to_string(),
    );
    format!("{day} ({})", p.invocation)
}

/// The history verdict on one metric, when the history is long enough.
struct FromHistory {
    verdict: String,
    reference: String,
    change_pct: f64,
    basis: String,
    /// The history plot of a flagged series (empty when steady).
    svg: String,
    /// A flagged series' nights for its page (empty when steady).
    nights: Vec<SeriesNight>,
}

/// [`FromHistory`] for `current`'s `metric`, or why its history is too short (the basis of the
/// two-run verdict instead).
fn history_verdict(
    current: &Run,
    history: &SeriesHistory,
    metric: &RegressionMetric,
) -> Result<FromHistory, String> {
    use edgebench_core::history::{HistoryConfig, HistoryVerdict, judge};
    let (series, labels, runs) = metric_history(current, history, metric);
    let higher = metric.higher_is_better;
    let nights = |n: usize| {
        if runs == n {
            format!("{n} nights")
        } else {
            format!("{n} nights ({runs} runs)")
        }
    };
    let config = HistoryConfig::default();
    // The judge flags drops as regressions; a time that rises is a regression too, so it judges
    // the negated series (median and MAD only change sign).
    let oriented: Vec<f64> = if higher {
        series.clone()
    } else {
        series.iter().map(|v| -v).collect()
    };
    let (verdict, e, since) = match judge(&oriented, &config) {
        HistoryVerdict::NotEnoughHistory { need, .. } => {
            return Err(format!(
                "two runs only: a history verdict needs {} nights (invocations) of the case here, it has {}",
                need + config.lookback,
                nights(series.len())
            ));
        }
        HistoryVerdict::Steady(e) => ("noise", e, None),
        HistoryVerdict::Regression { since, evidence } => ("regressed", evidence, Some(since)),
        HistoryVerdict::Improvement { since, evidence } => ("improved", evidence, Some(since)),
    };
    let reference = e.reference_median.abs();
    // Flagged series get their plot: the band is the clip (a night counts at most that many
    // spreads), the red line the night the change began.
    let svg = since.map_or_else(String::new, |since| {
        crate::plots::history(
            &format!("{verdict} since run {}", since + 1),
            metric.name,
            &series,
            (reference, e.spread),
            config.clip,
            Some(since),
        )
    });
    let newest = series.last().copied().unwrap_or(reference);
    let change = ((newest / reference - 1.0) * 100.0 * 10.0).round() / 10.0;
    let page_nights = since.map_or_else(Vec::new, |since| {
        labels
            .into_iter()
            .zip(&series)
            .enumerate()
            .map(|(i, (night, &value))| SeriesNight {
                night,
                value: num(value),
                off_pct: ((value / reference - 1.0) * 1000.0).round() / 10.0,
                changed: i >= since,
            })
            .collect()
    });
    Ok(FromHistory {
        nights: page_nights,
        verdict: verdict.to_owned(),
        reference: format!(
            "{} (reference of {} runs)",
            num(reference),
            series.len() - 1
        ),
        change_pct: change,
        basis: format!(
            "history of {}: reference {} ±{:.1}%, z {:.1}; smallest step flagged within 3 nights {:.0}%; newest 3 nights rank beyond the reference by chance with p {}",
            nights(series.len()),
            num(reference),
            100.0 * e.spread / reference,
            e.z,
            100.0 * e.detectable_step,
            probability(e.rank_p)
        ),
        svg,
    })
}

/// The calibrations of devices that have runs in `history` (the report's selection).
fn calibration_rows(
    calibrations: &[edgebench_store::dataset::Calibration],
    devices: &[edgebench_store::dataset::Device],
    history: &SeriesHistory,
) -> Vec<CalibrationRow> {
    calibrations
        .iter()
        .filter(|c| history.has_device(c.device_id))
        .map(|c| CalibrationRow {
            case: c.case_name.clone(),
            metric: c.metric.clone(),
            device: hostname(devices, c.device_id),
            calibrated_on: jiff::Timestamp::from_millisecond(c.calibrated_at_ms)
                .map_or_else(|_| c.calibrated_at_ms.to_string(), |t| {
                    t.strftime("%Y-%m-%d").to_string()
                }),
            median: Cell {
                text: num(c.median),
                spread: format!("±{:.1}%", 100.0 * c.robust_spread),
                provenance: Provenance::Measured,
                detail: format!(
                    "median of {} run medians, each run in its own process; ± is the robust spread (1.4826 × MAD)",
                    c.runs
                ),
            },
            robust_spread_pct: (1000.0 * c.robust_spread).round() / 10.0,
            cv_pct: (1000.0 * c.cv).round() / 10.0,
            range: format!("{} – {}", num(c.min), num(c.max)),
            false_alerts_per_100: c.false_alerts_per_100.map(|v| (v * 100.0).round() / 100.0),
            detected_within_3_pct: c.detected_within_3.map(|v| (v * 1000.0).round() / 10.0),
            processes_per_night: match &c.processes_per_night {
                ProcessesPerNight::NotSimulated => "—".to_owned(),
                ProcessesPerNight::Needed(k) => k.to_string(),
                ProcessesPerNight::MoreThan(sizes) => format!(
                    "more than simulated ({})",
                    sizes
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        })
        .collect()
}

/// The rows of one current run against its baseline, one per metric, each with its series
/// page when a history verdict flagged it (its path set by the caller, in row order).
fn pair_rows(
    current: &Run,
    base: &Run,
    history: &SeriesHistory,
    hostname: &str,
) -> Vec<(RegressionRow, Option<SeriesPage>)> {
    let hostname = hostname.to_owned();
    let mut rows = Vec::new();
    for metric in REGRESSION_METRICS {
        let get = metric.samples;
        let (base_samples, current_samples) = (get(&base.samples), get(&current.samples));
        if base_samples.is_empty() || current_samples.is_empty() {
            continue;
        }
        let device = hostname.clone();
        let short = |id: &str| id[..id.len().min(8)].to_owned();
        // A history verdict is the row's basis when the series is long enough; the two-run
        // bootstrap (2,000 resamples per side, most of a lab report's time) only otherwise.
        let (verdict, baseline, change_pct, basis, history_svg, page, ci, current_median) =
            match history_verdict(current, history, metric) {
                Ok(h) => {
                    let page = (!h.svg.is_empty()).then(|| SeriesPage {
                        path: String::new(),
                        case: current.case.name.clone(),
                        device: device.clone(),
                        metric: metric.name.into(),
                        verdict: h.verdict.clone(),
                        reference: h.reference.clone(),
                        change_pct: h.change_pct,
                        basis: h.basis.clone(),
                        svg: h.svg.clone(),
                        nights: h.nights,
                    });
                    let median = stats::summarize(current_samples).map_or(f64::NAN, |s| s.median);
                    (
                        h.verdict,
                        h.reference,
                        h.change_pct,
                        h.basis,
                        h.svg,
                        page,
                        "— (judged on history)".to_owned(),
                        median,
                    )
                }
                Err(basis) => {
                    let Some(r) = compare::measured_ratio(base_samples, current_samples, SEED)
                    else {
                        continue;
                    };
                    let (worse, better) = if metric.higher_is_better {
                        (Verdict::Lower, Verdict::Higher)
                    } else {
                        (Verdict::Higher, Verdict::Lower)
                    };
                    let verdict = if r.verdict == worse {
                        "regressed"
                    } else if r.verdict == better {
                        "improved"
                    } else if r.verdict == Verdict::TooFewSamples {
                        "too few samples"
                    } else {
                        "noise"
                    };
                    (
                        verdict.to_owned(),
                        format!("{} (run {})", num(r.baseline.median), short(&base.id)),
                        ((r.ratio - 1.0) * 100.0 * 10.0).round() / 10.0,
                        basis,
                        String::new(),
                        None,
                        r.ci.map_or("—".into(), |ci| {
                            format!("[{:.3}, {:.3}]", ci.low, ci.high)
                        }),
                        r.variant.median,
                    )
                }
            };
        rows.push((
            RegressionRow {
                device,
                page: String::new(),
                case: current.case.name.clone(),
                metric: metric.name.into(),
                baseline,
                current: format!("{} (run {})", num(current_median), short(&current.id)),
                change_pct,
                ci,
                verdict,
                basis,
                history_svg,
            },
            page,
        ));
    }
    rows
}

/// The regression section. `history` is every comparable run of the selection (the verdicts'
/// series and the calibrated devices).
pub fn regressions(
    pairs: &[(&Run, &Run)],
    current: &[&Run],
    history: &SeriesHistory,
    calibration: (
        &[edgebench_store::dataset::Calibration],
        &[edgebench_store::dataset::Device],
    ),
    baseline: String,
    threshold_pct: Option<f64>,
) -> RegressionSection {
    let hostname = |id: i64| hostname(calibration.1, id);
    let mut series_pages: Vec<SeriesPage> = Vec::new();
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
    // Pairs in parallel (each bootstrap is seeded, so the rows are the same on any number of
    // threads): a lab's night is thousands of pairs, 2,000 resamples per metric and side.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = pairs.len().div_ceil(threads).max(1);
    let judged: Vec<(RegressionRow, Option<SeriesPage>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                let hostname = &hostname;
                scope.spawn(move || {
                    part.iter()
                        .flat_map(|(current, base)| {
                            pair_rows(current, base, history, &hostname(current.device_id))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut rows = Vec::with_capacity(judged.len());
    for (mut row, page) in judged {
        if let Some(mut page) = page {
            page.path = format!("series/{:04}.html", series_pages.len() + 1);
            row.page = page.path.clone();
            series_pages.push(page);
        }
        rows.push(row);
    }
    let regressed_beyond_threshold = rows
        .iter()
        .filter(|r| {
            r.verdict == "regressed"
                && threshold_pct.is_none_or(|t| {
                    let higher = REGRESSION_METRICS
                        .iter()
                        .find(|m| m.name == r.metric)
                        .is_some_and(|m| m.higher_is_better);
                    let worse_by = if higher { -r.change_pct } else { r.change_pct };
                    worse_by > t
                })
        })
        .count();
    RegressionSection {
        test: "ratio of medians (current ÷ baseline) with a 95% percentile-bootstrap CI, 2000 resamples per side; regressed/improved only when the whole interval lies on the worse/better side of 1, else noise".into(),
        history_test: "each metric, once a case has 13 nights on this device and model (8 reference nights before the last 5; a night is one invocation, and the runs of one night, `nightly --processes K`, count as the median of their medians): the newest night against the median and robust spread (1.4826 × MAD) of up to 30 nights before the last 5, by CUSUM over the last 5 (allowance 0.5, threshold 6 spreads, a night counting 3 spreads at most), with the newest 3 nights all more than a spread off; fewer nights fall back to the two-run test, labelled".into(),
        baseline,
        threshold_pct,
        rows,
        regressed_beyond_threshold,
        first_runs,
        calibrations: calibration_rows(calibration.0, calibration.1, history),
        series_pages,
    }
}
