//! Turning raw samples into stored summaries, and deciding when to stop repeating.
//! Pure: callers hand in samples, elapsed time and seeds.

use crate::scenario::Stopping;
use crate::stats::{self, Interval, Outlier, Summary};

/// Confidence level of every stored interval.
pub const CI_LEVEL: f64 = 0.95;
/// Bootstrap resamples per interval: enough that the interval's own noise is well below 1%.
pub const RESAMPLES: usize = 2_000;

/// One metric's summary, with the CI of its median and its Tukey outlier counts.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    pub metric: &'static str,
    pub unit: &'static str,
    pub summary: Summary,
    pub ci: Option<Interval>,
    /// Samples beyond the lower / upper 1.5 × IQR fence (mild and severe together).
    pub outliers_low: u32,
    pub outliers_high: u32,
}

/// Summarises `samples`; `None` when there are none (or any is not finite). The bootstrap is
/// seeded with `seed` so the same samples give the same interval everywhere.
#[must_use]
pub fn summarize_metric(
    metric: &'static str,
    unit: &'static str,
    samples: &[f64],
    seed: u64,
) -> Option<MetricSummary> {
    let summary = stats::summarize(samples)?;
    let ci = if samples.len() >= 2 {
        stats::bootstrap_median_ci(samples, CI_LEVEL, RESAMPLES, seed)
    } else {
        None
    };
    let (mut low, mut high) = (0, 0);
    for (x, flag) in samples.iter().zip(stats::tukey_outliers(samples)) {
        if flag != Outlier::None {
            if *x < summary.median {
                low += 1;
            } else {
                high += 1;
            }
        }
    }
    Some(MetricSummary {
        metric,
        unit,
        summary,
        ci,
        outliers_low: low,
        outliers_high: high,
    })
}

/// A proportion (`hits` out of n) summarised like a metric: the mean and median columns hold
/// the proportion itself, and its interval is ±1.96 standard errors (the normal approximation
/// lm-evaluation-harness reports), clamped to [0, 1]. No outliers: every sample is 0 or 1.
#[must_use]
pub fn summarize_proportion(hits: &[bool], seed: u64) -> Option<MetricSummary> {
    let samples: Vec<f64> = hits.iter().map(|&h| f64::from(u8::from(h))).collect();
    let mut m = summarize_metric("accuracy", "fraction", &samples, seed)?;
    let se = if samples.len() > 1 {
        m.summary.stddev / (samples.len() as f64).sqrt()
    } else {
        0.0
    };
    let p = m.summary.mean;
    m.summary.median = p;
    m.ci = Some(Interval {
        low: (p - 1.96 * se).max(0.0),
        high: (p + 1.96 * se).min(1.0),
        level: 0.95,
        resamples: 0,
    });
    m.outliers_low = 0;
    m.outliers_high = 0;
    Some(m)
}

/// Why a case stopped repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ran exactly the scenario's `repetitions` (no adaptive stopping).
    Fixed,
    /// The CI of the median was within the target.
    CiTarget,
    MaxRepetitions,
    TimeBudget,
    /// A smoke run: once, to check the case works.
    Smoke,
}

impl StopReason {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::CiTarget => "ci_target",
            Self::MaxRepetitions => "max_repetitions",
            Self::TimeBudget => "time_budget",
            Self::Smoke => "smoke",
        }
    }
}

crate::named_enum!(
    StopReason,
    "stop reason",
    [Fixed, CiTarget, MaxRepetitions, TimeBudget, Smoke]
);

/// The shortest a measured run measures (defined beside the scenario format, which refuses a
/// time budget below it).
pub use crate::scenario::MIN_MEASURED_SECONDS;

/// Whether to stop after `samples.len()` measured repetitions (one sample per repetition),
/// `elapsed_s` seconds into measuring. At least `minimum` repetitions always run, and nothing
/// but the scenario's time budget stops a run before `min_seconds` of measuring.
#[must_use]
pub fn should_stop(
    samples: &[f64],
    minimum: u32,
    stopping: Option<&Stopping>,
    elapsed_s: f64,
    min_seconds: f64,
    seed: u64,
) -> Option<StopReason> {
    let budget_spent = stopping
        .and_then(|s| s.max_seconds)
        .is_some_and(|max| elapsed_s >= max);
    match planned_stop(samples, minimum, stopping, elapsed_s, seed) {
        Some(_) if elapsed_s < min_seconds => budget_spent.then_some(StopReason::TimeBudget),
        other => other,
    }
}

/// [`should_stop`] without the minimum duration.
fn planned_stop(
    samples: &[f64],
    minimum: u32,
    stopping: Option<&Stopping>,
    elapsed_s: f64,
    seed: u64,
) -> Option<StopReason> {
    let done = samples.len() as u32;
    if done < minimum.max(1) {
        return None;
    }
    let Some(stopping) = stopping else {
        return Some(StopReason::Fixed);
    };
    if done >= 3
        && let (Some(s), Some(ci)) = (
            stats::summarize(samples),
            stats::bootstrap_median_ci(samples, CI_LEVEL, RESAMPLES, seed),
        )
        && s.median != 0.0
        && ci.half_width() / s.median.abs() <= stopping.target_relative_ci
    {
        return Some(StopReason::CiTarget);
    }
    if done >= stopping.max_repetitions {
        return Some(StopReason::MaxRepetitions);
    }
    if stopping.max_seconds.is_some_and(|max| elapsed_s >= max) {
        return Some(StopReason::TimeBudget);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proportion_has_a_normal_interval_inside_zero_and_one() {
        let hits: Vec<bool> = (0..100).map(|i| i % 4 == 0).collect();
        let m = summarize_proportion(&hits, 1).expect("summary");
        assert!((m.summary.median - 0.25).abs() < 1e-12);
        let ci = m.ci.expect("interval");
        // ±1.96 standard errors of the sample: stddev / √n with n = 100.
        assert!(
            (ci.high - ci.low - 2.0 * 1.96 * m.summary.stddev / 10.0).abs() < 1e-12,
            "{ci:?}"
        );
        assert!(ci.low > 0.15 && ci.high < 0.35, "{ci:?}");
        assert_eq!((m.outliers_low, m.outliers_high), (0, 0));
        let all = summarize_proportion(&[true; 5], 1).expect("summary");
        let ci = all.ci.expect("interval");
        assert_eq!((ci.low, ci.high), (1.0, 1.0));
        assert!(summarize_proportion(&[], 1).is_none());
    }

    fn stopping(target: f64, max: u32, seconds: Option<f64>) -> Stopping {
        Stopping {
            target_relative_ci: target,
            max_repetitions: max,
            max_seconds: seconds,
        }
    }

    #[test]
    fn summaries_count_outliers_on_each_side() {
        let samples = [1.0, 10.0, 10.5, 11.0, 11.5, 12.0, 12.5, 40.0, 45.0];
        let m = summarize_metric("x", "ms", &samples, 1).expect("summary");
        assert_eq!((m.outliers_low, m.outliers_high), (1, 2));
        assert_eq!(m.summary.n, 9);
        let ci = m.ci.expect("ci");
        assert!(ci.low <= m.summary.median && m.summary.median <= ci.high);
        // One sample: a summary but no interval.
        assert!(
            summarize_metric("x", "ms", &[3.0], 1)
                .expect("one")
                .ci
                .is_none()
        );
        assert!(summarize_metric("x", "ms", &[], 1).is_none());
    }

    #[test]
    fn fixed_repetitions_without_stopping_rule() {
        assert_eq!(should_stop(&[1.0], 2, None, 0.0, 0.0, 1), None);
        assert_eq!(
            should_stop(&[1.0, 2.0], 2, None, 0.0, 0.0, 1),
            Some(StopReason::Fixed)
        );
    }

    #[test]
    fn stops_when_the_ci_is_narrow_enough_or_a_budget_runs_out() {
        // Tight samples: ±1% is reached as soon as three are in.
        let tight = [100.0, 100.2, 99.9];
        let rule = stopping(0.01, 50, None);
        assert_eq!(should_stop(&tight[..2], 2, Some(&rule), 1.0, 0.0, 1), None);
        assert_eq!(
            should_stop(&tight, 2, Some(&rule), 1.0, 0.0, 1),
            Some(StopReason::CiTarget)
        );
        // Noisy samples keep going until the repetition or time budget says stop.
        let noisy = [80.0, 120.0, 95.0, 130.0];
        assert_eq!(should_stop(&noisy, 2, Some(&rule), 1.0, 0.0, 1), None);
        assert_eq!(
            should_stop(&noisy, 2, Some(&stopping(0.01, 4, None)), 1.0, 0.0, 1),
            Some(StopReason::MaxRepetitions)
        );
        assert_eq!(
            should_stop(
                &noisy,
                2,
                Some(&stopping(0.01, 50, Some(30.0))),
                31.0,
                0.0,
                1
            ),
            Some(StopReason::TimeBudget)
        );
        // The minimum holds even when the budget is spent.
        assert_eq!(
            should_stop(
                &noisy[..1],
                2,
                Some(&stopping(0.01, 50, Some(1.0))),
                99.0,
                0.0,
                1
            ),
            None
        );
    }

    #[test]
    fn a_run_measures_at_least_the_minimum_duration() {
        let tight = [100.0, 100.2, 99.9];
        let rule = stopping(0.01, 3, Some(60.0));
        // The plan, the CI target and the repetition cap are all met at 2 s: not yet.
        for rule in [None, Some(&rule)] {
            assert_eq!(should_stop(&tight, 2, rule, 2.0, 5.0, 1), None, "{rule:?}");
        }
        assert_eq!(
            should_stop(&tight, 2, None, 5.0, 5.0, 1),
            Some(StopReason::Fixed)
        );
        assert_eq!(
            should_stop(&tight, 2, Some(&rule), 5.1, 5.0, 1),
            Some(StopReason::CiTarget)
        );
        // Only the scenario's time budget ends a run sooner (validation keeps it above the
        // minimum).
        assert_eq!(
            should_stop(&tight, 2, Some(&stopping(0.01, 50, Some(3.0))), 3.0, 5.0, 1),
            Some(StopReason::TimeBudget)
        );
    }
}
