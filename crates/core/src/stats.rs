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

/// Confidence at which a reported tail percentile must be bounded by the samples (LoadGen's
/// early-stopping rule uses 99%).
pub const PERCENTILE_CONFIDENCE: f64 = 0.99;

/// The fewest samples that bound percentile `p` (in (0, 100)) from above at
/// [`PERCENTILE_CONFIDENCE`] when none exceeds it: the smallest n with (p/100)ⁿ ≤ 1 − 0.99, the
/// binomial tail MLPerf LoadGen's early stopping starts from. p50: 7, p90: 44, p95: 90,
/// p99: 459. Fewer samples, and the report prints "n < N" instead of the percentile.
#[must_use]
pub fn percentile_min_samples(p: f64) -> usize {
    if !(p > 0.0 && p < 100.0) {
        return 1;
    }
    ((1.0 - PERCENTILE_CONFIDENCE).ln() / (p / 100.0).ln()).ceil() as usize
}

/// The run-to-run spread band of a coefficient of variation, as AIPerf labels it: below 5%
/// excellent, 5–10% good, 10–20% fair, above 20% high.
#[must_use]
pub fn cv_band(cv: f64) -> &'static str {
    if cv < 0.05 {
        "excellent"
    } else if cv < 0.10 {
        "good"
    } else if cv < 0.20 {
        "fair"
    } else {
        "high"
    }
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

/// Above this many samples, intervals of the median are computed from order statistics instead
/// of resampling: 2000 resamples of 10⁶ samples take minutes, and at that size the percentile
/// bootstrap has converged to the order-statistic interval anyway.
pub const RESAMPLING_LIMIT: usize = 10_000;

/// The type-7 median of `buf` by selection (O(n)); reorders `buf`. Equals
/// `percentile_sorted(sorted buf, 50.0)` exactly.
fn median_in_place(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    if n < 2 {
        return buf.first().copied().unwrap_or(f64::NAN);
    }
    let rank = 0.5 * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let (_, &mut low, right) = buf.select_nth_unstable_by(lo, f64::total_cmp);
    if rank.ceil() as usize == lo {
        return low;
    }
    let high = right.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    low + (high - low) * (rank - lo as f64)
}

/// Medians of bootstrap resamples of one sample set, exactly those that copying each resample
/// and selecting its median ([`median_in_place`]) gives, with the same draws from the generator,
/// but without moving data: the samples are sorted once, a resample is a count per sorted
/// position, and its median is found by walking the counts. The report computes thousands of
/// these intervals; selection over copied resamples was most of its time.
struct Resampler {
    sorted: Vec<f64>,
    /// Position in `sorted` of each sample, by its index in the original order.
    rank: Vec<usize>,
    counts: Vec<u32>,
}

impl Resampler {
    fn new(samples: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.sort_by(|&a, &b| samples[a].total_cmp(&samples[b]));
        let mut rank = vec![0; samples.len()];
        for (position, &index) in order.iter().enumerate() {
            rank[index] = position;
        }
        Self {
            sorted: order.iter().map(|&i| samples[i]).collect(),
            rank,
            counts: vec![0; samples.len()],
        }
    }

    /// The values at positions `k` and `k + 1` of the current resample in sorted order, in one
    /// walk of the counts.
    fn at_pair(&self, k: usize) -> (f64, f64) {
        let last = self.sorted.last().copied().unwrap_or(f64::NAN);
        let mut seen = 0usize;
        let mut low = None;
        for (position, &count) in self.counts.iter().enumerate() {
            seen += count as usize;
            if low.is_none() && seen > k {
                low = Some(self.sorted[position]);
            }
            if seen > k + 1 {
                return (low.unwrap_or(last), self.sorted[position]);
            }
        }
        (low.unwrap_or(last), last)
    }

    /// Draws a resample (`n` draws of `rng.below(n)`, as a copied resample does) and returns
    /// its median, bit for bit what [`median_in_place`] returns for it.
    fn median(&mut self, rng: &mut SplitMix64) -> f64 {
        let n = self.sorted.len();
        self.counts.fill(0);
        for _ in 0..n {
            self.counts[self.rank[rng.below(n)]] += 1;
        }
        if n < 2 {
            return self.sorted.first().copied().unwrap_or(f64::NAN);
        }
        let rank = 0.5 * (n - 1) as f64;
        let lo = rank.floor() as usize;
        let (low, high) = self.at_pair(lo);
        if rank.ceil() as usize == lo {
            return low;
        }
        low + (high - low) * (rank - lo as f64)
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error below
/// 1.2e-9), for `p` in (0, 1).
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Distribution-free confidence interval of the median from order statistics: the number of
/// samples below the true median is Binomial(n, ½), so `[x₍ₗ₎, x₍ᵤ₎]` with
/// `l, u = n/2 ∓ z·√n/2` (normal approximation, fine for the large n it is used at) covers it
/// with probability ≥ `level`. O(n log n), no resampling (`resamples = 0` in the result).
#[must_use]
pub fn order_statistic_median_ci(samples: &[f64], level: f64) -> Option<Interval> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let z = normal_quantile(0.5 + level / 2.0);
    let half = z * n.sqrt() / 2.0;
    // 1-based ranks floor(n/2 − half) and ceil(1 + n/2 + half), clamped to the samples.
    let last = sorted.len() - 1;
    let low = ((n / 2.0 - half).floor() as usize).clamp(1, last + 1) - 1;
    let high = ((1.0 + n / 2.0 + half).ceil() as usize).clamp(1, last + 1) - 1;
    Some(Interval {
        low: sorted[low],
        high: sorted[high],
        level,
        resamples: 0,
    })
}

/// Confidence interval of the median: a percentile bootstrap (`resamples` resamples with
/// replacement, seeded, the interval between the (1 − level)/2 and (1 + level)/2 percentiles of
/// their medians) up to [`RESAMPLING_LIMIT`] samples, the order-statistic interval above it.
/// `None` for no samples or non-finite ones.
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
    if samples.len() > RESAMPLING_LIMIT {
        return order_statistic_median_ci(samples, level);
    }
    let mut rng = SplitMix64::new(seed);
    let mut resampler = Resampler::new(samples);
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        medians.push(resampler.median(&mut rng));
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
/// empty, holds a non-finite value, or a resampled baseline median is zero. When either group
/// holds more than [`RESAMPLING_LIMIT`] samples, the interval combines the two order-statistic
/// intervals on the log scale instead (`log r ± z·√(se_b² + se_v²)`, each `se` from its
/// interval's width), with `resamples = 0`.
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
    if baseline.len().max(variant.len()) > RESAMPLING_LIMIT {
        return large_ratio_ci(baseline, variant, level);
    }
    let mut rng = SplitMix64::new(seed);
    let (mut base, mut var) = (Resampler::new(baseline), Resampler::new(variant));
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let b = base.median(&mut rng);
        let v = var.median(&mut rng);
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

fn large_ratio_ci(baseline: &[f64], variant: &[f64], level: f64) -> Option<Interval> {
    let z = normal_quantile(0.5 + level / 2.0);
    let log_median_and_se = |s: &[f64]| {
        let median = median_in_place(&mut s.to_vec());
        let ci = order_statistic_median_ci(s, level)?;
        (median > 0.0 && ci.low > 0.0)
            .then(|| (median.ln(), (ci.high.ln() - ci.low.ln()) / (2.0 * z)))
    };
    let (b, se_b) = log_median_and_se(baseline)?;
    let (v, se_v) = log_median_and_se(variant)?;
    let half = z * se_b.hypot(se_v);
    Some(Interval {
        low: (v - b - half).exp(),
        high: (v - b + half).exp(),
        level,
        resamples: 0,
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
mod resampler_tests {
    use super::*;

    #[test]
    fn resampled_medians_equal_selection_over_copied_resamples_bit_for_bit() {
        let mut data = SplitMix64::new(7);
        for n in [1usize, 2, 3, 4, 5, 10, 11, 64, 101, 1000] {
            // Ties, negative zero and repeated values included.
            let samples: Vec<f64> = (0..n)
                .map(|i| match i % 7 {
                    0 => 1.5,
                    1 => -0.0,
                    2 => 0.0,
                    _ => (data.next_u64() % 1000) as f64 / 7.0,
                })
                .collect();
            let (mut a, mut b) = (SplitMix64::new(n as u64), SplitMix64::new(n as u64));
            let mut resampler = Resampler::new(&samples);
            for _ in 0..50 {
                let mut copy: Vec<f64> = (0..n).map(|_| samples[a.below(n)]).collect();
                let expected = median_in_place(&mut copy);
                let got = resampler.median(&mut b);
                assert_eq!(got.to_bits(), expected.to_bits(), "n = {n}");
            }
        }
    }
}

#[cfg(test)]
mod replication_tests {
    use super::*;

    #[test]
    fn a_median_replicates_only_when_every_try_is_within_the_tolerance() {
        let (ok, worst) = replicates(&[100.0, 102.0, 98.0, 101.0, 99.0], 0.05).expect("values");
        assert!(ok && worst < 0.021, "{worst}");
        let (ok, worst) = replicates(&[100.0, 102.0, 91.0, 101.0, 99.0], 0.05).expect("values");
        assert!(!ok && worst > 0.08, "{worst}");
        assert!(replicates(&[], 0.05).is_none());
    }
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
    fn selection_median_equals_the_sorted_median() {
        let mut rng = SplitMix64::new(11);
        for n in [1, 2, 3, 4, 5, 10, 101, 1000] {
            let samples: Vec<f64> = (0..n).map(|_| (rng.below(50) as f64) * 0.5).collect();
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let mut buf = samples.clone();
            assert_eq!(
                median_in_place(&mut buf),
                percentile_sorted(&sorted, 50.0),
                "n={n}"
            );
        }
    }

    #[test]
    fn normal_quantile_matches_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.005) + 2.575_829_304).abs() < 1e-8);
        // Both tails (below 0.02425 and above 1 − 0.02425 each have their own branch), and
        // the symmetry q(1 − p) = −q(p).
        for (p, z) in [
            (0.999, 3.090_232_306),
            (0.99, 2.326_347_874),
            (0.98, 2.053_748_911),
            (0.001, -3.090_232_306),
            (0.01, -2.326_347_874),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "q({p})");
            assert!((normal_quantile(1.0 - p) + z).abs() < 1e-8, "q(1 − {p})");
        }
    }

    #[test]
    fn order_statistic_ranks_by_hand() {
        // n = 100, 95%: half = 1.96 · √100 / 2 = 9.8; 1-based ranks floor(50 − 9.8) = 40 and
        // ceil(1 + 50 + 9.8) = 61. Samples 1..=100 hold their own rank.
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let ci = order_statistic_median_ci(&samples, 0.95).expect("interval");
        assert_eq!((ci.low, ci.high, ci.resamples), (40.0, 61.0, 0));
        // Few samples: the ranks fall outside 1..=n and are clamped to the extremes.
        let ci = |s: &[f64]| {
            let c = order_statistic_median_ci(s, 0.95).expect("interval");
            (c.low, c.high)
        };
        assert_eq!(ci(&[7.0]), (7.0, 7.0));
        assert_eq!(ci(&[7.0, 9.0]), (7.0, 9.0));
        assert_eq!(ci(&[9.0, 7.0, 8.0]), (7.0, 9.0));
        assert!(order_statistic_median_ci(&[1.0, f64::NAN, 3.0], 0.95).is_none());
        assert!(order_statistic_median_ci(&[], 0.95).is_none());
    }

    #[test]
    fn bootstrap_levels_set_the_percentiles() {
        let samples: Vec<f64> = (0..40).map(|i| f64::from(i * i % 17) + 1.0).collect();
        let base: Vec<f64> = samples.iter().map(|x| x + 3.0).collect();
        // Level 0: both ends are the 50th percentile of the resampled statistic.
        let zero = bootstrap_median_ci(&samples, 0.0, 500, 9).expect("interval");
        assert_eq!(zero.low, zero.high);
        let zero = bootstrap_ratio_of_medians_ci(&base, &samples, 0.0, 500, 9).expect("interval");
        assert_eq!(zero.low, zero.high);
        // Wider levels nest: 50% inside 95%, and neither is empty.
        let intervals: [&dyn Fn(f64) -> Option<Interval>; 2] =
            [&|l| bootstrap_median_ci(&samples, l, 500, 9), &|l| {
                bootstrap_ratio_of_medians_ci(&base, &samples, l, 500, 9)
            }];
        for ci in intervals {
            let (half, wide) = (ci(0.5).expect("50%"), ci(0.95).expect("95%"));
            assert!(half.low < half.high, "{half:?}");
            assert!(
                wide.low < half.low && half.high < wide.high,
                "{half:?} {wide:?}"
            );
        }
    }

    #[test]
    fn ratio_interval_refuses_what_it_cannot_resample() {
        let ok = [1.0, 2.0, 3.0];
        assert!(bootstrap_ratio_of_medians_ci(&ok, &[1.0, f64::INFINITY], 0.95, 100, 1).is_none());
        assert!(bootstrap_ratio_of_medians_ci(&[f64::NAN, 1.0], &ok, 0.95, 100, 1).is_none());
        assert!(bootstrap_ratio_of_medians_ci(&ok, &ok, 0.95, 0, 1).is_none());
        // Exactly at the resampling limit the bootstrap still runs; one more sample switches
        // to the order-statistic combination (`resamples = 0`).
        let at_limit: Vec<f64> = (0..RESAMPLING_LIMIT)
            .map(|i| 1.0 + (i % 7) as f64)
            .collect();
        let ci = bootstrap_ratio_of_medians_ci(&at_limit, &ok, 0.95, 50, 1).expect("interval");
        assert_eq!(ci.resamples, 50);
        let mut over = at_limit.clone();
        over.push(4.0);
        let ci = bootstrap_ratio_of_medians_ci(&over, &ok, 0.95, 50, 1).expect("interval");
        assert_eq!(ci.resamples, 0);
    }

    #[test]
    fn large_ratio_interval_by_hand() {
        // Identical groups above the limit: ratio 1, and each side's log-scale se is its
        // order-statistic interval's log width ÷ 2z, so the half-width is √2 · width / 2.
        let s: Vec<f64> = (1..=(RESAMPLING_LIMIT as u32 + 1)).map(f64::from).collect();
        let one = order_statistic_median_ci(&s, 0.95).expect("interval");
        let width = one.high.ln() - one.low.ln();
        let ci = bootstrap_ratio_of_medians_ci(&s, &s, 0.95, 100, 1).expect("interval");
        let half = std::f64::consts::SQRT_2 * width / 2.0;
        assert!((ci.high.ln() - half).abs() < 1e-12, "{ci:?}");
        assert!((ci.low.ln() + half).abs() < 1e-12, "{ci:?}");
        // A group whose interval reaches 0 has no log scale: no interval, not [0, ∞].
        let mut zeros = vec![0.0; RESAMPLING_LIMIT / 2 - 50];
        zeros.extend(std::iter::repeat_n(1.0, RESAMPLING_LIMIT / 2 + 51));
        assert!(bootstrap_ratio_of_medians_ci(&zeros, &s, 0.95, 100, 1).is_none());
        assert!(bootstrap_ratio_of_medians_ci(&s, &zeros, 0.95, 100, 1).is_none());
    }

    #[test]
    fn tukey_fences_at_their_exact_boundaries() {
        // Quartiles 20 and 40 (IQR 20): mild beyond 30 from a quartile, severe beyond 60.
        let samples = [
            -41.0, -11.0, 10.0, 20.0, 20.0, 20.0, 30.0, 40.0, 40.0, 40.0, 50.0, 70.0, 100.0,
        ];
        use Outlier::{Mild, None, Severe};
        assert_eq!(
            tukey_outliers(&samples),
            vec![
                Severe, Mild, None, None, None, None, None, None, None, None, None, None, Mild
            ],
            "70 sits exactly 1.5 IQR above q3 and 100 exactly 3 IQR: not beyond"
        );
    }

    #[test]
    fn splitmix64_is_the_reference_generator() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference implementation):
        // every seeded interval in a report depends on this exact stream.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn coefficient_of_variation_by_hand() {
        let s = summarize(&[1.0, 3.0]).expect("summary");
        // mean 2, sample stddev √2.
        assert!(
            (s.cv - std::f64::consts::SQRT_2 / 2.0).abs() < 1e-12,
            "{}",
            s.cv
        );
        // A zero mean has no meaningful CV: stored as 0, not ±inf.
        assert_eq!(summarize(&[-1.0, 1.0]).expect("summary").cv, 0.0);
        // The CV is scale-free and uses |mean|.
        let neg = summarize(&[-1.0, -3.0]).expect("summary");
        assert!((neg.cv - s.cv).abs() < 1e-12);
    }

    #[test]
    fn order_statistic_interval_agrees_with_the_bootstrap_where_both_run() {
        // Skewed samples (exponential-like) around the resampling limit: the percentile
        // bootstrap and the order-statistic interval estimate the same thing.
        let mut rng = SplitMix64::new(5);
        let samples: Vec<f64> = (0..RESAMPLING_LIMIT)
            .map(|_| -((rng.below(1 << 20) as f64 + 0.5) / f64::from(1 << 20)).ln())
            .collect();
        let boot = bootstrap_median_ci(&samples, 0.95, 1000, 3).expect("bootstrap");
        let order = order_statistic_median_ci(&samples, 0.95).expect("order");
        assert_eq!((boot.resamples, order.resamples), (1000, 0));
        let width = boot.high - boot.low;
        assert!(width > 0.0);
        assert!(
            (boot.low - order.low).abs() < 0.25 * width,
            "{boot:?} vs {order:?}"
        );
        assert!(
            (boot.high - order.high).abs() < 0.25 * width,
            "{boot:?} vs {order:?}"
        );
        // One more sample crosses the limit: no resampling, same interval as computed directly.
        let mut more = samples.clone();
        more.push(1.0);
        let big = bootstrap_median_ci(&more, 0.95, 2000, 3).expect("ci");
        assert_eq!(big, order_statistic_median_ci(&more, 0.95).expect("order"));
        // Its ratio with itself straddles 1; with itself × 2 it brackets 2.
        let same = bootstrap_ratio_of_medians_ci(&more, &more, 0.95, 2000, 1).expect("ratio");
        assert!(
            same.low < 1.0 && 1.0 < same.high && same.resamples == 0,
            "{same:?}"
        );
        let doubled: Vec<f64> = more.iter().map(|x| x * 2.0).collect();
        let r = bootstrap_ratio_of_medians_ci(&more, &doubled, 0.95, 2000, 1).expect("ratio");
        assert!(r.low < 2.0 && 2.0 < r.high && r.low > 1.8, "{r:?}");
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

    #[test]
    fn percentiles_need_the_early_stopping_sample_counts_and_cv_bands_follow_aiperf() {
        assert_eq!(
            [50.0, 90.0, 95.0, 99.0].map(percentile_min_samples),
            [7, 44, 90, 459]
        );
        // With the minimum, a sample past the percentile is possible only 1% of the time.
        for p in [90.0, 95.0, 99.0] {
            let n = percentile_min_samples(p);
            assert!((p / 100.0f64).powi(n as i32) <= 0.01);
            assert!((p / 100.0f64).powi(n as i32 - 1) > 0.01);
        }
        assert_eq!(
            [0.01, 0.05, 0.15, 0.5].map(cv_band),
            ["excellent", "good", "fair", "high"]
        );
    }
}

/// Whether every value lies within `tolerance` (a fraction) of the values' median (MLPerf
/// Mobile's replication rule: within 5% in 5 tries), and the largest deviation; `None` for no
/// values.
#[must_use]
pub fn replicates(values: &[f64], tolerance: f64) -> Option<(bool, f64)> {
    let s = summarize(values)?;
    let worst = values
        .iter()
        .map(|v| (v / s.median - 1.0).abs())
        .fold(0.0, f64::max);
    Some((worst <= tolerance, worst))
}

/// Prefix of the invocation id `cargo xtask replicate` gives all the tries of one replication.
pub const REPLICATION_INVOCATION_PREFIX: &str = "replicate-";

/// The replication tolerance: MLPerf Mobile's 5%.
pub const REPLICATION_TOLERANCE: f64 = 0.05;
