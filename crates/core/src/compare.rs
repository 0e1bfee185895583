//! Comparing a baseline with a variant (a KV-cache option, another backend, another model):
//! measured ratios with a bootstrap CI, and projected deltas at real model sizes. Pure.

use crate::projection;
use crate::registry::Architecture;
use crate::scenario::KvType;
use crate::stats::{self, Interval, Summary};

/// What a measured ratio's interval says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval lies above 1: the variant's median is higher.
    Higher,
    /// The whole interval lies below 1.
    Lower,
    /// The interval contains 1: no change this run could detect.
    NoDetectableChange,
    /// Fewer than two samples on a side: no interval.
    TooFewSamples,
}

impl Verdict {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Higher => "higher",
            Self::Lower => "lower",
            Self::NoDetectableChange => "no detectable change",
            Self::TooFewSamples => "too few samples",
        }
    }
}

crate::named_enum!(
    Verdict,
    "verdict",
    [Higher, Lower, NoDetectableChange, TooFewSamples]
);

/// `variant ÷ baseline` for one metric, measured.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredRatio {
    pub baseline: Summary,
    pub variant: Summary,
    /// median(variant) ÷ median(baseline).
    pub ratio: f64,
    pub ci: Option<Interval>,
    pub verdict: Verdict,
}

/// Ratio of medians with its bootstrap CI (95%, seeded). `None` when a side has no finite
/// samples or the baseline median is zero.
#[must_use]
pub fn measured_ratio(baseline: &[f64], variant: &[f64], seed: u64) -> Option<MeasuredRatio> {
    let b = stats::summarize(baseline)?;
    let v = stats::summarize(variant)?;
    if b.median == 0.0 {
        return None;
    }
    let ci = if baseline.len() >= 2 && variant.len() >= 2 {
        stats::bootstrap_ratio_of_medians_ci(
            baseline,
            variant,
            crate::measure::CI_LEVEL,
            crate::measure::RESAMPLES,
            seed,
        )
    } else {
        None
    };
    let verdict = match ci {
        None => Verdict::TooFewSamples,
        Some(ci) if ci.low > 1.0 => Verdict::Higher,
        Some(ci) if ci.high < 1.0 => Verdict::Lower,
        Some(_) => Verdict::NoDetectableChange,
    };
    Some(MeasuredRatio {
        ratio: v.median / b.median,
        baseline: b,
        variant: v,
        ci,
        verdict,
    })
}

/// A KV-cache configuration: the element types of K and V.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvConfig {
    pub type_k: KvType,
    pub type_v: KvType,
}

/// A KV option projected at a real model's size: cache bytes, and the decode roofline when every
/// generated token reads all weights plus the whole cache at `context` positions.
#[derive(Debug, Clone, PartialEq)]
pub struct KvProjection {
    pub context: u32,
    pub sequences: u32,
    pub kv_bytes_baseline: u64,
    pub kv_bytes_variant: u64,
    pub bytes_per_token_baseline: f64,
    pub bytes_per_token_variant: f64,
    pub bandwidth_bytes_per_s: f64,
    pub roofline_tokens_per_s_baseline: f64,
    pub roofline_tokens_per_s_variant: f64,
}

impl KvProjection {
    /// variant ÷ baseline roofline: the most the option can speed decoding up at this size.
    #[must_use]
    pub fn roofline_ratio(&self) -> f64 {
        self.roofline_tokens_per_s_variant / self.roofline_tokens_per_s_baseline
    }

    /// The formula the numbers came from, for reports.
    #[must_use]
    pub fn formula() -> &'static str {
        "kv = layers × kv_heads × head_dim × (bytes(K) + bytes(V)) × context × sequences; \
         decode t/s ≤ bandwidth ÷ (weights + kv per sequence at full context)"
    }
}

/// Projects `variant` against `baseline` for a model of architecture `arch` with
/// `weights_bytes` of weights, at `context` positions for `sequences` sequences.
#[must_use]
pub fn project_kv(
    arch: &Architecture,
    weights_bytes: u64,
    baseline: KvConfig,
    variant: KvConfig,
    context: u32,
    sequences: u32,
    bandwidth_bytes_per_s: f64,
) -> KvProjection {
    let kv = |c: KvConfig| projection::kv_bytes(arch, c.type_k, c.type_v, context, sequences);
    let per_token = |c: KvConfig| {
        weights_bytes as f64
            + projection::kv_bytes_per_token(arch, c.type_k, c.type_v) * f64::from(context)
    };
    let (bb, bv) = (per_token(baseline), per_token(variant));
    KvProjection {
        context,
        sequences,
        kv_bytes_baseline: kv(baseline),
        kv_bytes_variant: kv(variant),
        bytes_per_token_baseline: bb,
        bytes_per_token_variant: bv,
        bandwidth_bytes_per_s,
        roofline_tokens_per_s_baseline: projection::roofline_tokens_per_s(
            bb,
            bandwidth_bytes_per_s,
        ),
        roofline_tokens_per_s_variant: projection::roofline_tokens_per_s(bv, bandwidth_bytes_per_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_interval() {
        let base: Vec<f64> = (0..20).map(|i| 50.0 + f64::from(i % 5)).collect();
        let faster: Vec<f64> = base.iter().map(|x| x * 1.3).collect();
        let r = measured_ratio(&base, &faster, 1).expect("ratio");
        assert!((r.ratio - 1.3).abs() < 1e-9, "{}", r.ratio);
        assert_eq!(r.verdict, Verdict::Higher);
        let slower: Vec<f64> = base.iter().map(|x| x * 0.7).collect();
        assert_eq!(
            measured_ratio(&base, &slower, 1).expect("ratio").verdict,
            Verdict::Lower
        );
        assert_eq!(
            measured_ratio(&base, &base, 1).expect("ratio").verdict,
            Verdict::NoDetectableChange
        );
        assert_eq!(
            measured_ratio(&[1.0], &[2.0], 1).expect("ratio").verdict,
            Verdict::TooFewSamples
        );
        assert!(measured_ratio(&[0.0, 0.0], &[1.0, 2.0], 1).is_none());
        // One sample on either side is too few, even with many on the other.
        for (b, v) in [
            (&[1.0][..], &[2.0, 2.5, 3.0][..]),
            (&[2.0, 2.5, 3.0][..], &[1.0][..]),
        ] {
            assert_eq!(
                measured_ratio(b, v, 1).expect("ratio").verdict,
                Verdict::TooFewSamples
            );
        }
        // An interval that touches 1 exactly is no detectable change, not a difference.
        let flat = [5.0, 5.0, 5.0, 5.0];
        let same = measured_ratio(&flat, &flat, 1).expect("ratio");
        assert_eq!(same.ci.map(|c| (c.low, c.high)), Some((1.0, 1.0)));
        assert_eq!(same.verdict, Verdict::NoDetectableChange);
    }

    #[test]
    fn verdicts_and_the_projection_formula_read_as_reports_show_them() {
        let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            names,
            ["higher", "lower", "no detectable change", "too few samples"]
        );
        for v in Verdict::ALL {
            assert_eq!(v.to_string().parse::<Verdict>(), Ok(*v));
        }
        let formula = KvProjection::formula();
        for term in ["kv_heads", "head_dim", "context", "bandwidth", "weights"] {
            assert!(formula.contains(term), "{formula}");
        }
    }

    #[test]
    fn q8_cache_projection_for_mimo_by_hand() {
        // MiMo-7B: 36 layers, 8 kv heads, 128 dims. f16 cache: 147 456 B per token; q8_0:
        // 78 336 B. At 4096 positions, one sequence: 603 979 776 B vs 320 864 256 B.
        let arch = Architecture {
            params: Some(7_000_000_000),
            ..crate::fixtures::mimo_7b()
        };
        let f16 = KvConfig {
            type_k: KvType::F16,
            type_v: KvType::F16,
        };
        let q8 = KvConfig {
            type_k: KvType::Q8_0,
            type_v: KvType::Q8_0,
        };
        let p = project_kv(&arch, 4_500_000_000, f16, q8, 4096, 1, 77e9);
        assert_eq!(p.kv_bytes_baseline, 603_979_776);
        assert_eq!(p.kv_bytes_variant, 320_864_256);
        // Roofline: 77e9 / (4.5e9 + 603 979 776) = 15.087; / (4.5e9 + 320 864 256) = 15.972.
        assert!(
            (p.roofline_tokens_per_s_baseline - 15.087).abs() < 0.01,
            "{p:?}"
        );
        assert!(
            (p.roofline_tokens_per_s_variant - 15.972).abs() < 0.01,
            "{p:?}"
        );
        assert!(p.roofline_ratio() > 1.05 && p.roofline_ratio() < 1.06);
    }
}
