//! `cargo xtask replicate CASE`: the case run as separate processes (a pause between them, as
//! MLPerf Mobile's "replicates within 5% in 5 tries with a 5-minute wait"), then whether its
//! median replicates: every try's median within the tolerance of the tries' median. A
//! within-run CI says nothing of between-run variance; this does.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use edgebench_core::stats;
use edgebench_report::data;

use crate::anchor::{latest, metric_median, run_cases, spread};

const METRICS: [&str; 2] = ["generation_tokens_per_s", "prefill_tokens_per_s"];

/// Whether every value lies within `tolerance` (a fraction) of the values' median; and the
/// largest deviation.
#[must_use]
pub fn replicates(values: &[f64], tolerance: f64) -> Option<(bool, f64)> {
    let s = stats::summarize(values)?;
    let worst = values
        .iter()
        .map(|v| (v / s.median - 1.0).abs())
        .fold(0.0, f64::max);
    Some((worst <= tolerance, worst))
}

pub fn replicate(
    root: &Path,
    case: &str,
    tries: u32,
    pause: Duration,
    tolerance: f64,
) -> Result<()> {
    if tries < 2 {
        bail!("--tries must be at least 2 to say anything about replication");
    }
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    crate::twins::twins(root)?;
    crate::build_announced(root)?;
    let db = crate::database(root);
    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); METRICS.len()];
    for t in 0..tries {
        if t > 0 {
            eprintln!("pausing {} s before try {}", pause.as_secs(), t + 1);
            std::thread::sleep(pause);
        }
        run_cases(root, &db, &[case.to_owned()])?;
        let dataset = data::load(&db)?;
        let run = latest(&dataset, case)
            .with_context(|| format!("no passed run of {case} in {}", db.display()))?;
        for (i, metric) in METRICS.iter().enumerate() {
            if let Some(m) = metric_median(run, metric) {
                medians[i].push(m);
            }
        }
    }
    println!(
        "\n{case}: {tries} tries as separate processes, {} s apart; replicates when every try's median is within {:.0}% of the tries' median\n",
        pause.as_secs(),
        100.0 * tolerance
    );
    for (metric, values) in METRICS.iter().zip(&medians) {
        match replicates(values, tolerance) {
            Some((ok, worst)) => println!(
                "{metric:<26} {:>34}  largest deviation {:.1}%: {}",
                spread(values, 2),
                100.0 * worst,
                if ok {
                    "replicates"
                } else {
                    "does not replicate"
                }
            ),
            None => println!("{metric:<26} no values"),
        }
    }
    println!("\nevery try is stored in {}", db.display());
    Ok(())
}

#[cfg(test)]
mod tests {
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
