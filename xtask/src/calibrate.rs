//! `cargo xtask calibrate`: how much a case's run medians move between runs of unchanged code
//! on this machine. The chosen cases run in N separate harness processes (each case in its own
//! child, as always); each case's run medians then give its between-run spread, and resampling
//! them gives the false alerts and detected steps the nightly verdict would show on this
//! machine (`edgebench_core::history`). Stored in `calibrations`, shown in the report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{CalibrateArgs, day_start_ms};
use edgebench_core::history::{self, HistoryConfig};
use edgebench_report::data::Run;
use edgebench_report::sections::regressions::REGRESSION_METRICS;
use edgebench_store::{CalibrationRow, Store};

/// The step the simulation injects, and its seed: the target (10% within 3 nights).
const STEP: f64 = 0.1;
const SIMULATION_SEED: u64 = 20_261_201;
/// Processes per night simulated (`nightly --processes`): the first is the stored columns'.
const PROCESSES_PER_NIGHT: [usize; 4] = [1, 3, 5, 9];
/// The targets a night's verdicts are held to: at most this many false alerts per 100
/// unchanged nights, and at least this share of 10% steps flagged within 3 nights.
const MAX_FALSE_ALERTS_PER_100: f64 = 1.0;
const MIN_DETECTED_WITHIN_3: f64 = 0.9;

pub fn calibrate(root: &Path, args: &CalibrateArgs) -> Result<()> {
    let db = args.db.sqlite(
        root,
        "calibration runs cases, which write a local SQLite file: calibrate locally, then \
         `cargo xtask ingest` the file",
    )?;
    let since_ms = match args.from_runs_since {
        Some(day) => day_start_ms(day),
        None => {
            let start = now_ms();
            run_rounds(root, &db, args)?;
            start
        }
    };
    let dataset =
        edgebench_store::dataset::load(&db).with_context(|| format!("reading {}", db.display()))?;
    let chosen = |r: &&Run| {
        edgebench_report::comparable(r)
            && r.started_at_ms >= since_ms
            && (args.filters.is_empty() || args.filters.iter().any(|f| r.case.name.contains(f)))
    };
    // One series per case, device and model file.
    let mut series: BTreeMap<(String, i64, Option<String>), Vec<&Run>> = BTreeMap::new();
    for run in dataset.runs.iter().filter(chosen) {
        let key = (
            run.case.name.clone(),
            run.device_id,
            run.model.as_ref().map(|m| m.sha256.clone()),
        );
        series.entry(key).or_default().push(run);
    }
    if series.is_empty() {
        bail!(
            "no measured runs of the chosen cases in {} to calibrate from",
            db.display()
        );
    }
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let calibrated_at_ms = now_ms();
    println!(
        "| case | metric | runs | median | robust spread | CV | false alerts / 100 nights | 10% steps within 3 nights | processes per night: false alerts / detected | processes per night needed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for ((case_name, device_id, model_sha256), mut runs) in series {
        runs.sort_by_key(|r| (r.started_at_ms, r.id.clone()));
        let case_key = case_key(&store, &runs[0].id)?;
        for m in REGRESSION_METRICS {
            let (metric, higher) = (m.name, &m.higher_is_better);
            let medians: Vec<f64> = runs
                .iter()
                .filter_map(|r| m.run_value(&r.samples))
                .collect();
            let Some(spread) = history::between_runs(&medians) else {
                continue;
            };
            // The verdicts judge drops; a time judged as its negation (as the report does).
            let oriented: Vec<f64> = medians
                .iter()
                .map(|&v| if *higher { v } else { -v })
                .collect();
            let per_night: Vec<(usize, history::Simulation)> = PROCESSES_PER_NIGHT
                .iter()
                .filter_map(|&k| {
                    history::simulate_resampled(
                        &oriented,
                        &HistoryConfig::default(),
                        STEP,
                        SIMULATION_SEED,
                        k,
                    )
                    .map(|s| (k, s))
                })
                .collect();
            let simulation = per_night.first().map(|(_, s)| *s);
            // The fewest processes a night whose median meets both targets.
            let processes_needed = per_night
                .iter()
                .find(|(_, s)| {
                    s.false_alerts_per_100 <= MAX_FALSE_ALERTS_PER_100
                        && s.detected_within_3 >= MIN_DETECTED_WITHIN_3
                })
                .map(|(k, _)| *k);
            let row = CalibrationRow {
                device_id,
                case_key: case_key.clone(),
                case_name: case_name.clone(),
                model_sha256: model_sha256.clone(),
                metric: metric.to_owned(),
                calibrated_at_ms,
                runs: spread.runs as u32,
                median: spread.median,
                robust_spread: spread.robust_spread,
                cv: spread.cv,
                min: spread.min,
                max: spread.max,
                false_alerts_per_100: simulation.map(|s| s.false_alerts_per_100),
                detected_within_3: simulation.map(|s| s.detected_within_3),
                details: serde_json::json!({
                    "run_ids": runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
                    "run_medians": medians,
                    "simulation": simulation.map(|s| serde_json::json!({
                        "seed": SIMULATION_SEED, "series": s.series,
                        "nights_judged": s.nights_judged, "step": s.step,
                        "resampled": "smoothed bootstrap of the run medians",
                    })),
                    "per_night": per_night.iter().map(|(k, s)| serde_json::json!({
                        "processes": k,
                        "false_alerts_per_100": s.false_alerts_per_100,
                        "detected_within_3": s.detected_within_3,
                    })).collect::<Vec<_>>(),
                    "processes_per_night": processes_needed,
                })
                .to_string(),
            };
            store.insert_calibration(&row)?;
            let night_sizes = per_night
                .iter()
                .map(|(k, s)| {
                    format!(
                        "{k}: {:.2} / {:.0}%",
                        s.false_alerts_per_100,
                        100.0 * s.detected_within_3
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let needed =
                processes_needed.map_or_else(|| "none of these".to_owned(), |k| k.to_string());
            println!(
                "| {case_name} | {metric} | {} | {} | {:.1}% | {:.1}% | {} | {} | {night_sizes} | {needed} |",
                spread.runs,
                significant(spread.median),
                100.0 * spread.robust_spread,
                100.0 * spread.cv,
                simulation.map_or("—".into(), |s| format!("{:.2}", s.false_alerts_per_100)),
                simulation.map_or("—".into(), |s| format!(
                    "{:.0}%",
                    100.0 * s.detected_within_3
                )),
            );
        }
    }
    println!("stored in {}", db.display());
    Ok(())
}

/// `runs` harness processes over the chosen cases, measured, into `db`.
fn run_rounds(root: &Path, db: &Path, args: &CalibrateArgs) -> Result<()> {
    crate::setup::ensure_build_tools()?;
    crate::models::fetch_all(root)?;
    crate::twins::twins(root)?;
    crate::build_announced(root)?;
    for round in 1..=args.runs {
        eprintln!("calibration run {round}/{}", args.runs);
        let mut cmd = crate::cargo();
        cmd.current_dir(root)
            .args(["test", "--test", "scenarios"])
            .env(edgebench_settings::DB_ENV, db)
            .env(
                edgebench_settings::CASES_ENV,
                crate::containing_any(&args.filters),
            )
            // Measured as the nightly suite measures, whatever the caller's environment says.
            .env_remove(edgebench_settings::SMOKE_ENV);
        crate::run(&mut cmd)?;
    }
    Ok(())
}

/// Four significant digits or so: tokens/s in the thousands, milliseconds per token below 1.
fn significant(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

fn case_key(store: &Store, run_id: &str) -> Result<String> {
    Ok(store.connection().query_row(
        "SELECT c.case_key FROM runs r JOIN cases c ON c.id = r.case_id WHERE r.id = ?1",
        [run_id],
        |r| r.get(0),
    )?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
