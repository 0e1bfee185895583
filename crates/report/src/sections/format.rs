//! Number and cell formatting shared by every section: about three significant digits, byte sizes, percentages, and measured cells with n and a CI.

use super::prelude::*;

/// Formats a number with about three significant digits.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A small probability as a reader takes it in: two significant digits (where [`num`] would
/// keep one), or "< 0.0001".
pub(crate) fn probability(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".to_owned()
    } else {
        let decimals = 2 + (-p.log10()).floor().max(0.0) as usize;
        format!("{p:.decimals$}")
    }
}

pub fn bytes(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / MIB)
    }
}

/// The compact spread shown beside a value: half the width of its interval, `±1.2`.
pub(crate) fn half_width(low: f64, high: f64) -> String {
    format!("±{}", num((high - low) / 2.0))
}

pub(crate) fn pct(ratio: f64) -> String {
    format!("{:+.0}%", (ratio - 1.0) * 100.0)
}

/// A measured cell: the median of `samples` with n and the 95% bootstrap CI of the median.
pub fn measured(samples: &[f64], unit: &str, what: &str) -> Cell {
    let Some(s) = stats::summarize(samples) else {
        return Cell::none(format!("no {what} samples"));
    };
    let ci = (samples.len() >= 2)
        .then(|| stats::bootstrap_median_ci(samples, measure::CI_LEVEL, measure::RESAMPLES, SEED))
        .flatten();
    let spread = match ci {
        Some(ci) => format!("95% CI of the median [{}, {}]", num(ci.low), num(ci.high)),
        None => "one sample, no interval".into(),
    };
    Cell {
        text: format!("{} {unit}", num(s.median)),
        spread: ci.map_or_else(String::new, |ci| half_width(ci.low, ci.high)),
        provenance: Provenance::Measured,
        detail: format!("median of n={} {what}; {spread}; p95 {}", s.n, num(s.p95)),
    }
}

/// A ratio cell: variant ÷ baseline with its CI and verdict.
pub(crate) fn ratio_cell(baseline: &[f64], variant: &[f64], what: &str) -> Cell {
    match compare::measured_ratio(baseline, variant, SEED) {
        None => Cell::none(format!("no {what} samples on one side")),
        Some(r) => Cell {
            text: pct(r.ratio),
            spread: r.ci.map_or_else(String::new, |ci| {
                format!("±{:.0}%", (ci.high - ci.low) / 2.0 * 100.0)
            }),
            provenance: Provenance::Measured,
            detail: format!(
                "median ratio {:.3} (n={} vs n={} {what}){}; {}",
                r.ratio,
                r.baseline.n,
                r.variant.n,
                r.ci.map_or(String::new(), |ci| format!(
                    ", 95% bootstrap CI [{:.3}, {:.3}]",
                    ci.low, ci.high
                )),
                r.verdict.as_str()
            ),
        },
    }
}

/// `a → b (change)` for two byte counts, measured; `missing` as the reason when either is
/// absent.
pub(crate) fn bytes_change_cell(
    a: Option<u64>,
    b: Option<u64>,
    detail: &str,
    missing: String,
) -> Cell {
    match (a, b) {
        (Some(a), Some(b)) if a > 0 => Cell {
            text: format!(
                "{} → {} ({})",
                bytes(a as f64),
                bytes(b as f64),
                pct(b as f64 / a as f64)
            ),
            provenance: Provenance::Measured,
            detail: detail.to_owned(),
            ..Cell::default()
        },
        _ => Cell::none(missing),
    }
}

/// A device's host name by its id (`device N` when the selection has no such device).
#[must_use]
pub fn hostname(devices: &[crate::data::Device], id: i64) -> String {
    devices
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| format!("device {id}"), |d| d.hostname.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn probabilities_keep_two_significant_digits() {
        assert_eq!(super::probability(0.5), "0.50");
        assert_eq!(super::probability(0.022), "0.022");
        assert_eq!(super::probability(0.0037), "0.0037");
        assert_eq!(super::probability(0.000_05), "< 0.0001");
    }
}
