//! `cargo xtask replicate CASE`: the case run as separate processes (a pause between them, as
//! MLPerf Mobile's "replicates within 5% in 5 tries with a 5-minute wait"), then whether its
//! median replicates: every try's median within the tolerance of the tries' median. A
//! within-run CI says nothing of between-run variance; this does.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use edgebench_core::stats::{self, replicates};
use edgebench_report::data;

use crate::anchor::{latest, metric_median, run_cases, spread};

const METRICS: [&str; 2] = ["generation_tokens_per_s", "prefill_tokens_per_s"];

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
    // One invocation for every try: the report finds them and shows the verdict.
    let invocation = format!(
        "{}{}",
        stats::REPLICATION_INVOCATION_PREFIX,
        jiff::Timestamp::now().as_second()
    );
    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); METRICS.len()];
    for t in 0..tries {
        if t > 0 {
            eprintln!("pausing {} s before try {}", pause.as_secs(), t + 1);
            std::thread::sleep(pause);
        }
        run_cases(
            root,
            &db,
            &[case.to_owned()],
            &[(edgebench_settings::INVOCATION_ENV, invocation.as_str())],
        )?;
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
    println!(
        "\nevery try is stored in {} (invocation {invocation}); the report's every-run table shows the verdict",
        db.display()
    );
    Ok(())
}
