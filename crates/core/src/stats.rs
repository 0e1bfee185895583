//! Descriptive statistics over raw samples. Pure functions; callers keep the raw samples.

/// Summary of one metric's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1 denominator); 0 for n = 1.
    pub stddev: f64,
    /// Coefficient of variation, stddev / mean.
    pub cv: f64,
    pub min: f64,
    pub max: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Percentile `p` in [0, 100] of sorted samples, linear interpolation between closest ranks
/// (the "type 7" estimator of R and NumPy's default).
#[must_use]
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// Summarises `samples`; `None` when there are none or any is not finite.
#[must_use]
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let stddev = var.sqrt();
    Some(Summary {
        n,
        mean,
        median: percentile_sorted(&sorted, 50.0),
        stddev,
        cv: if mean == 0.0 {
            0.0
        } else {
            stddev / mean.abs()
        },
        min: sorted[0],
        max: sorted[n - 1],
        p90: percentile_sorted(&sorted, 90.0),
        p95: percentile_sorted(&sorted, 95.0),
        p99: percentile_sorted(&sorted, 99.0),
    })
}

/// A confidence interval for a statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
}

impl Interval {
    #[must_use]
    pub fn half_width(&self) -> f64 {
        (self.high - self.low) / 2.0
    }
}

/// A small seeded generator (SplitMix64): the bootstrap must give the same interval for the same
/// samples and seed on every machine, so the core carries its own.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift (bias below 2⁻³² for our n).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Percentile-bootstrap confidence interval of the median: `resamples` resamples with
/// replacement, seeded, the interval between the (1 − level)/2 and (1 + level)/2 percentiles of
/// their medians. `None` for no samples or non-finite ones.
#[must_use]
pub fn bootstrap_median_ci(
    samples: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) || resamples == 0 {
        return None;
    }
    let n = samples.len();
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0.0; n];
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in &mut buf {
            *slot = samples[rng.below(n)];
        }
        buf.sort_by(f64::total_cmp);
        medians.push(percentile_sorted(&buf, 50.0));
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0 * 100.0;
    Some(Interval {
        low: percentile_sorted(&medians, tail),
        high: percentile_sorted(&medians, 100.0 - tail),
        level,
        resamples,
    })
}

/// Percentile-bootstrap confidence interval of `median(variant) / median(baseline)`: both groups
/// are resampled independently (they are separate runs), seeded. `None` when either group is
/// empty, holds a non-finite value, or a resampled baseline median is zero.
#[must_use]
pub fn bootstrap_ratio_of_medians_ci(
    baseline: &[f64],
    variant: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    let finite = |s: &[f64]| !s.is_empty() && s.iter().all(|x| x.is_finite());
    if !finite(baseline) || !finite(variant) || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut resampled_median = |samples: &[f64], buf: &mut Vec<f64>| {
        buf.clear();
        buf.extend((0..samples.len()).map(|_| samples[rng.below(samples.len())]));
        buf.sort_by(f64::total_cmp);
        percentile_sorted(buf, 50.0)
    };
    let (mut buf_b, mut buf_v) = (Vec::new(), Vec::new());
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let b = resampled_median(baseline, &mut buf_b);
        let v = resampled_median(variant, &mut buf_v);
        if b == 0.0 {
            return None;
        }
        ratios.push(v / b);
    }
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0 * 100.0;
    Some(Interval {
        low: percentile_sorted(&ratios, tail),
        high: percentile_sorted(&ratios, 100.0 - tail),
        level,
        resamples,
    })
}

/// Where a sample sits relative to Tukey's fences (quartiles ± 1.5 / 3 × IQR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlier {
    None,
    /// Beyond 1.5 × IQR from the nearer quartile.
    Mild,
    /// Beyond 3 × IQR.
    Severe,
}

/// Tukey classification of every sample, in input order. Outliers are flagged, never dropped.
#[must_use]
pub fn tukey_outliers(samples: &[f64]) -> Vec<Outlier> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (q1, q3) = (
        percentile_sorted(&sorted, 25.0),
        percentile_sorted(&sorted, 75.0),
    );
    let iqr = q3 - q1;
    samples
        .iter()
        .map(|&x| {
            let distance = if x < q1 {
                q1 - x
            } else if x > q3 {
                x - q3
            } else {
                0.0
            };
            if distance > 3.0 * iqr {
                Outlier::Severe
            } else if distance > 1.5 * iqr {
                Outlier::Mild
            } else {
                Outlier::None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn known_values() {
        // Values checked against numpy: mean 5, median 4.5, std(ddof=1) 2.138..., p90 = 7.6.
        let s = summarize(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("finite");
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.median, 4.5));
        assert!(close(s.stddev, 2.138_089_935_299_395), "{}", s.stddev);
        assert!(close(s.p90, 7.6), "{}", s.p90);
        assert!(close(s.min, 2.0) && close(s.max, 9.0));
    }

    #[test]
    fn bootstrap_ci_is_seeded_and_brackets_the_median() {
        let samples: Vec<f64> = (1..=101).map(f64::from).collect();
        let a = bootstrap_median_ci(&samples, 0.95, 2000, 7).expect("ci");
        let b = bootstrap_median_ci(&samples, 0.95, 2000, 7).expect("ci");
        assert_eq!(a, b, "same seed, same interval");
        assert!(a.low < 51.0 && 51.0 < a.high, "{a:?}");
        // Theory: the median's standard error for uniform 1..101 is about 1.25 × σ/√n ≈ 3.6,
        // so a 95% interval spans roughly ±7; it must be neither degenerate nor the whole range.
        assert!(a.half_width() > 3.0 && a.half_width() < 12.0, "{a:?}");
        let c = bootstrap_median_ci(&samples, 0.95, 2000, 8).expect("ci");
        assert!((c.low - a.low).abs() < 4.0, "another seed agrees roughly");
        // Constant samples: the interval collapses to the value.
        let flat = bootstrap_median_ci(&[5.0; 10], 0.95, 100, 1).expect("ci");
        assert!(close(flat.low, 5.0) && close(flat.high, 5.0));
        assert!(bootstrap_median_ci(&[], 0.95, 100, 1).is_none());
        assert!(bootstrap_median_ci(&[1.0, f64::INFINITY], 0.95, 100, 1).is_none());
    }

    #[test]
    fn ratio_ci_brackets_the_true_ratio_and_detects_no_change() {
        // Variant = baseline × 1.5 exactly: every resample pair can still differ (independent
        // resampling), but the interval must contain 1.5 and exclude 1.
        let baseline: Vec<f64> = (0..30).map(|i| 100.0 + f64::from(i % 7)).collect();
        let variant: Vec<f64> = baseline.iter().map(|x| x * 1.5).collect();
        let ci = bootstrap_ratio_of_medians_ci(&baseline, &variant, 0.95, 2000, 3).expect("ci");
        assert!(ci.low < 1.5 && 1.5 < ci.high + 1e-12, "{ci:?}");
        assert!(ci.low > 1.0, "a 50% change is significant: {ci:?}");
        // Same distribution on both sides: the interval must straddle 1.
        let same = bootstrap_ratio_of_medians_ci(&baseline, &baseline, 0.95, 2000, 3).expect("ci");
        assert!(same.low <= 1.0 && 1.0 <= same.high, "{same:?}");
        assert!(bootstrap_ratio_of_medians_ci(&[], &baseline, 0.95, 10, 1).is_none());
        assert!(bootstrap_ratio_of_medians_ci(&[0.0, 0.0], &baseline, 0.95, 10, 1).is_none());
    }

    #[test]
    fn tukey_fences_flag_mild_and_severe_outliers() {
        // Quartiles 2.75 and 6.25 (type 7), IQR 3.5: fences at 11.5 (mild) and 16.75 (severe).
        let samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 12.0];
        let flags = tukey_outliers(&samples);
        assert_eq!(flags[..7], [Outlier::None; 7]);
        assert_eq!(flags[7], Outlier::Mild);
        let flags = tukey_outliers(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 30.0]);
        assert_eq!(flags[7], Outlier::Severe);
        assert_eq!(tukey_outliers(&[3.0; 4]), vec![Outlier::None; 4]);
    }

    #[test]
    fn edge_cases() {
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
        let one = summarize(&[3.0]).expect("one sample");
        assert!(close(one.stddev, 0.0) && close(one.p99, 3.0));
        assert!(close(percentile_sorted(&[0.0, 10.0], 25.0), 2.5));
    }
}
