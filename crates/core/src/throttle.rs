//! Throttling in a sustained decode: from tokens/s sampled at a fixed interval, when the speed
//! fell and how far it settled.
//!
//! Throttle onset: the first time the rolling median over the last 30 s drops below 95% of the
//! median of the first 60 s, looked for once those 60 s are over (inside them the reference is
//! still being measured: a run that speeds up as it warms would "throttle" at once). Steady-state ratio: the last minute's median ÷ the first minute's.
//! A run shorter than 3 minutes scales both windows down (a third of the run for the first and
//! last "minute", a sixth for the rolling window), so the 20 s CI case is judged by the same
//! rule; the windows used are returned with the result.
//!
//! Pure: the caller hands in the samples.

/// What the detector found in one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Seconds from the start at which the rolling median first fell below the threshold.
    pub onset_s: Option<f64>,
    /// Last-window median ÷ first-window median.
    pub steady_state_ratio: Option<f64>,
    pub first_median: Option<f64>,
    pub last_median: Option<f64>,
    /// The windows used, in seconds: first/last ("minute") and rolling.
    pub baseline_window_s: f64,
    pub rolling_window_s: f64,
}

/// The rolling median must stay above this share of the first window's.
pub const ONSET_SHARE: f64 = 0.95;

/// The median of the finite values, `None` without any.
fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| crate::history::median(&mut v))
}

/// Judges `rates` (tokens/s, one sample per `interval_s`, oldest first).
#[must_use]
pub fn analyze(rates: &[f64], interval_s: f64) -> Throttle {
    let duration = rates.len() as f64 * interval_s;
    let baseline_window_s = 60.0f64.min(duration / 3.0);
    let rolling_window_s = 30.0f64.min(duration / 6.0);
    let samples = |seconds: f64| ((seconds / interval_s).round() as usize).max(1);
    let (first_n, rolling_n) = (samples(baseline_window_s), samples(rolling_window_s));
    let mut result = Throttle {
        onset_s: None,
        steady_state_ratio: None,
        first_median: None,
        last_median: None,
        baseline_window_s,
        rolling_window_s,
    };
    if rates.len() < first_n.max(2) {
        return result;
    }
    let first = median(&rates[..first_n]);
    let last = median(&rates[rates.len() - first_n..]);
    result.first_median = first;
    result.last_median = last;
    let Some(first) = first.filter(|f| *f > 0.0) else {
        return result;
    };
    result.steady_state_ratio = last.map(|l| l / first);
    // The rolling window ends at each sample after the first window.
    result.onset_s = (first_n.max(rolling_n) + 1..=rates.len())
        .find(|&end| median(&rates[end - rolling_n..end]).is_some_and(|m| m < ONSET_SHARE * first))
        .map(|end| end as f64 * interval_s);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An injected slowdown schedule: `level` until `at_s`, then `level × (1 − drop)`, with a
    /// ±1% deterministic wobble.
    fn schedule(seconds: usize, at_s: Option<usize>, drop: f64) -> Vec<f64> {
        (0..seconds)
            .map(|t| {
                let wobble = 1.0 + 0.01 * ((t * 7 % 5) as f64 - 2.0) / 2.0;
                let level = if at_s.is_some_and(|a| t >= a) {
                    100.0 * (1.0 - drop)
                } else {
                    100.0
                };
                level * wobble
            })
            .collect()
    }

    #[test]
    fn a_steady_run_has_no_onset_and_a_ratio_near_one() {
        let t = analyze(&schedule(600, None, 0.0), 1.0);
        assert_eq!(t.onset_s, None);
        assert!(
            (t.steady_state_ratio.expect("ratio") - 1.0).abs() < 0.02,
            "{t:?}"
        );
        assert_eq!((t.baseline_window_s, t.rolling_window_s), (60.0, 30.0));
    }

    #[test]
    fn a_throttle_at_200_s_is_found_once_the_rolling_median_has_crossed() {
        let t = analyze(&schedule(600, Some(200), 0.2), 1.0);
        // Half of the 30 s window must be slow before its median is: about 15 s after.
        let onset = t.onset_s.expect("onset");
        assert!((214.0..=217.0).contains(&onset), "{t:?}");
        assert!(
            (t.steady_state_ratio.expect("ratio") - 0.8).abs() < 0.02,
            "{t:?}"
        );
        // A dip smaller than 5% is no throttling.
        assert_eq!(analyze(&schedule(600, Some(200), 0.03), 1.0).onset_s, None);
    }

    #[test]
    fn a_short_run_scales_its_windows_and_too_few_samples_give_nothing() {
        // Warming up (slow first seconds) is no throttle: the search starts after the first
        // window.
        let mut warming = schedule(20, None, 0.0);
        warming[0] = 50.0;
        warming[1] = 60.0;
        assert_eq!(analyze(&warming, 1.0).onset_s, None);
        let t = analyze(&schedule(20, Some(10), 0.3), 1.0);
        assert_eq!(t.baseline_window_s, 20.0 / 3.0);
        let onset = t.onset_s.expect("onset");
        assert!((11.0..=14.0).contains(&onset), "{t:?}");
        assert!(t.steady_state_ratio.expect("ratio") < 0.75, "{t:?}");
        let none = analyze(&[100.0], 1.0);
        assert_eq!((none.onset_s, none.steady_state_ratio), (None, None));
    }
}
