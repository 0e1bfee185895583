//! A simulated lab at reduced size through real `xtask` processes (issue #36): `lab simulate`
//! into a throwaway PostgreSQL server and into a SQLite file, the windowed report finding
//! exactly the injected fresh regressions (and the same report from both databases), then
//! `db prune --keep-raw` deleting old raw samples while every run, its summaries and the
//! verdicts stay as they were.

use std::path::Path;
use std::process::{Output, Stdio};

use super::cluster::Cluster;
use super::on_postgres::{first_difference, report_json};
use super::{text, xtask};

const DEVICES: usize = 3;
const CASES: usize = 8;
const NIGHTS: usize = 45;
const REQUESTS: usize = 3;
const LATENCIES: usize = 20;

fn run(args: &[&str], extra: &[&Path]) -> Output {
    let out = xtask()
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("xtask runs");
    assert!(out.status.success(), "xtask {args:?}: {}", text(&out));
    out
}

fn simulate(db: &str, truth: &Path) -> Output {
    let (d, c, n) = (DEVICES.to_string(), CASES.to_string(), NIGHTS.to_string());
    let (q, l) = (REQUESTS.to_string(), LATENCIES.to_string());
    run(
        &[
            "lab",
            "simulate",
            "--db",
            db,
            "--devices",
            &d,
            "--cases",
            &c,
            "--nights",
            &n,
            "--requests",
            &q,
            "--latencies",
            &l,
            "--writers",
            "2",
            "--truth",
        ],
        &[truth],
    )
}

fn count(client: &mut postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).expect(sql).get(0)
}

/// (device, case) of every flagged history verdict of a report, regressed or improved.
fn flagged(report: &serde_json::Value, verdict: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["regressions"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["verdict"] == verdict)
        .map(|r| {
            (
                r["device"].as_str().unwrap_or_default().to_owned(),
                r["case"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_simulated_lab_is_judged_then_pruned_and_its_verdicts_stay_the_same() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let admin = cluster.create_database("year");
    let dir = tempfile::tempdir().expect("tempdir");
    let truth_path = dir.path().join("truth.json");
    let simulated = simulate(&admin, &truth_path);
    let runs = DEVICES * CASES * NIGHTS;
    assert!(
        String::from_utf8_lossy(&simulated.stdout).contains(&format!("{runs} runs added")),
        "{}",
        text(&simulated)
    );
    let mut server = postgres::Client::connect(&admin, postgres::NoTls).expect("admin");
    assert_eq!(count(&mut server, "SELECT COUNT(*) FROM runs"), runs as i64);
    let samples = (runs * REQUESTS * LATENCIES) as i64;
    assert_eq!(
        count(&mut server, "SELECT COUNT(*) FROM token_latencies"),
        samples
    );
    // Request ids reserved ahead of the batched insert: each request's samples under its own id.
    assert_eq!(
        count(
            &mut server,
            &format!(
                "SELECT COUNT(*) FROM (SELECT request_id FROM token_latencies GROUP BY request_id
                 HAVING COUNT(*) = {LATENCIES}) r"
            )
        ),
        (runs * REQUESTS) as i64
    );

    // The same lab in a SQLite file.
    let sqlite = dir.path().join("year.sqlite");
    simulate(
        &sqlite.display().to_string(),
        &dir.path().join("truth2.json"),
    );

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth_path).expect("truth")).expect("json");
    let mut fresh: Vec<(String, String)> = truth["regressions"]
        .as_array()
        .expect("regressions")
        .iter()
        .filter(|r| r["night"] == NIGHTS - 3 && r["recovers_at"].is_null())
        .map(|r| {
            (
                r["device"].as_str().unwrap_or_default().to_owned(),
                r["case"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    fresh.sort();
    assert!(
        !fresh.is_empty(),
        "the simulation injected no fresh regression: {truth}"
    );

    let report = |db: &str, name: &str| -> serde_json::Value {
        let out = dir.path().join(name);
        run(&["report", "--db", db, "--window", "28", "--out"], &[&out]);
        report_json(&out)
    };
    let before = report(&admin, "before");
    assert_eq!(
        flagged(&before, "regressed"),
        fresh,
        "the history verdicts flag exactly the injected fresh regressions"
    );
    assert!(flagged(&before, "improved").is_empty());
    let lab = &before["lab"];
    assert_eq!(lab["devices"], DEVICES);
    assert_eq!(lab["cases"], CASES);
    let window = before["selection"].as_str().unwrap_or_default();
    let older = (NIGHTS - 28) * DEVICES * CASES;
    assert!(
        window.contains(&format!(
            "{older} older passed measured runs read as history"
        )),
        "{window}"
    );
    let from_sqlite = report(&sqlite.display().to_string(), "sqlite");
    assert!(
        before == from_sqlite,
        "the report from PostgreSQL differs from SQLite's: {}",
        first_difference(&before, &from_sqlite, "report")
    );

    // Prune to 10 nights of raw samples: runs and summaries stay, old samples go.
    let metrics = count(&mut server, "SELECT COUNT(*) FROM run_metrics");
    let pruned = run(&["db", "prune", "--db", &admin, "--keep-raw", "10"], &[]);
    let kept_runs = 10 * DEVICES * CASES; // nights 35..=44
    assert!(
        text(&pruned).contains(&format!("raw samples of {} runs", runs - kept_runs)),
        "{}",
        text(&pruned)
    );
    assert_eq!(count(&mut server, "SELECT COUNT(*) FROM runs"), runs as i64);
    assert_eq!(
        count(&mut server, "SELECT COUNT(*) FROM run_metrics"),
        metrics
    );
    assert_eq!(
        count(&mut server, "SELECT COUNT(*) FROM token_latencies"),
        (kept_runs * REQUESTS * LATENCIES) as i64
    );
    assert_eq!(
        count(
            &mut server,
            "SELECT COUNT(*) FROM runs WHERE raw_pruned_at_ms IS NOT NULL"
        ),
        (runs - kept_runs) as i64
    );
    let after = report(&admin, "after");
    for section in ["regressions", "lab"] {
        assert!(
            before[section] == after[section],
            "the {section} section changed with the prune: {}",
            first_difference(&before[section], &after[section], section)
        );
    }
    // Pruning again finds nothing more to delete.
    let again = run(&["db", "prune", "--db", &admin, "--keep-raw", "10"], &[]);
    assert!(
        text(&again).contains("raw samples of 0 runs"),
        "{}",
        text(&again)
    );
}
