//! Sustained decode: tokens/s over minutes, the throttle onset and the steady-state ratio.

use super::prelude::*;

fn range(values: impl Iterator<Item = f64>, unit: &str) -> String {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() {
        format!("{} – {} {unit}", num(lo), num(hi))
    } else {
        "not exposed by this host".into()
    }
}

/// The rates of the first (or last) `seconds` of the run.
fn window(points: &[(f64, f64)], seconds: f64, from_end: bool) -> Vec<f64> {
    let n = points.len();
    let k = points
        .iter()
        .filter(|p| p.0 <= seconds + 1e-9)
        .count()
        .clamp(1, n.max(1));
    let part = if from_end {
        &points[n - k..]
    } else {
        &points[..k]
    };
    part.iter().map(|p| p.1).collect()
}

/// What a cool-down record says, in words.
fn cooldown_text(json: Option<&str>) -> String {
    let Some(json) = json else {
        return "none asked".into();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return "unreadable record".into();
    };
    if let Some(reason) = v["skipped"].as_str() {
        return format!("skipped: {reason}");
    }
    format!(
        "waited {:.0} s: {:.1} → {:.1} °C (idle {:.1} °C, margin {} °C){}",
        v["waited_s"].as_f64().unwrap_or_default(),
        v["start_c"].as_f64().unwrap_or_default(),
        v["end_c"].as_f64().unwrap_or_default(),
        v["idle_c"].as_f64().unwrap_or_default(),
        v["margin_c"].as_f64().unwrap_or_default(),
        if v["reached"].as_bool() == Some(true) {
            ""
        } else {
            "; gave up at max_seconds"
        }
    )
}

pub fn sustained(runs: &[&Run]) -> SustainedSection {
    let rows = runs
        .iter()
        .filter_map(|r| r.sustained.as_ref().map(|s| (r, s)))
        .filter(|(_, s)| !s.points.is_empty())
        .map(|(r, s)| {
            let first_window = window(&s.points, s.baseline_window_s, false);
            let first_median = stats::summarize(&first_window).map_or(0.0, |m| m.median);
            let rates = "tokens/s samples at 1 Hz";
            let first = measured(&first_window, "t/s", rates);
            let last = measured(&window(&s.points, s.baseline_window_s, true), "t/s", rates);
            SustainedRunRow {
                case: r.case.name.clone(),
                model: r.model.as_ref().map_or_else(
                    || r.case.model.clone(),
                    |m| format!("{} {}", m.label, m.quant),
                ),
                seconds: s.seconds,
                samples: s.points.len(),
                first,
                last,
                steady_state_ratio: s.steady_state_ratio.map(|v| (v * 1000.0).round() / 1000.0),
                onset: s
                    .throttle_onset_s
                    .map_or_else(|| "none".into(), |t| format!("{t:.0} s")),
                cpu_mhz: range(s.cpu_mhz.iter().flatten().copied(), "MHz"),
                hottest_c: range(s.hottest_c.iter().flatten().copied(), "°C"),
                cooldown: cooldown_text(s.cooldown.as_deref()),
                plot_svg: crate::plots::sustained(
                    &r.case.name,
                    &s.points,
                    first_median * edgebench_core::throttle::ONSET_SHARE,
                    s.throttle_onset_s,
                ),
            }
        })
        .collect();
    SustainedSection {
        rule: "throttle onset: the first time the rolling median of tokens/s over the last 30 s falls below 95% of the median of the first 60 s; steady-state ratio: the last minute's median ÷ the first minute's. Runs shorter than 3 minutes use a third of the run for the first and last windows and a sixth for the rolling one (the CI smoke run lasts 20 s).".into(),
        rows,
    }
}
