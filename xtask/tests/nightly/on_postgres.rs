//! The lab on PostgreSQL through real `xtask` processes: roles created by `xtask db roles`,
//! two `nightly` processes at once logging in as the writer, the report rendered from the
//! server as the reporter equal to the one from a SQLite file holding the same runs, and the
//! passwords in none of the output, the report or the stored data.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::cluster::Cluster;
use super::{night, text, xtask};

const WRITER_SECRET: &str = "w-pass-4e1b9c";
const REPORTER_SECRET: &str = "r-pass-07d2aa";

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("xtask runs")
}

/// report.json without what legitimately differs: when it was made and from which database.
pub(crate) fn report_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let o = v.as_object_mut().expect("object");
    o.remove("generated_at");
    o.remove("database");
    v
}

/// Where two JSON values first differ (a path and both sides), for a readable failure.
pub(crate) fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> String {
    use serde_json::Value as V;
    match (a, b) {
        (V::Object(x), V::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_difference(v, w, &format!("{at}.{k}")),
                    None => return format!("{at}.{k}: only on the left"),
                }
            }
            format!("{at}: keys only on the right")
        }
        (V::Array(x), V::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map_or_else(String::new, |(i, (v, w))| {
                first_difference(v, w, &format!("{at}[{i}]"))
            }),
        _ => format!("{at}: {a} vs {b}"),
    }
}

#[test]
fn nightly_ingests_into_postgres_as_the_writer_and_the_report_from_it_equals_sqlites() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let admin = cluster.create_database("lab");
    let roles = run({
        let mut c = xtask();
        c.args(["db", "roles", "--db", &admin]);
        c
    });
    assert!(roles.status.success(), "{}", text(&roles));
    cluster.sql(
        "lab",
        &format!(
            "ALTER ROLE edgebench_writer PASSWORD '{WRITER_SECRET}';
             ALTER ROLE edgebench_reporter PASSWORD '{REPORTER_SECRET}';"
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Two devices' nights, each measured twice.
    let locals: Vec<_> = [
        ("a1", "aa", 0, 20.0),
        ("b1", "bb", 0, 25.0),
        ("a2", "aa", 1, 20.5),
        ("b2", "bb", 1, 24.0),
    ]
    .iter()
    .map(|&(name, fp, n, ms)| night(dir.path(), name, &fp.repeat(32), n, ms))
    .collect();
    let writer = cluster.tcp("edgebench_writer", "lab");
    let mut outputs = Vec::new();
    for pair in locals.chunks(2) {
        // Two hosts' nightly at once against the one server.
        let children: Vec<_> = pair
            .iter()
            .map(|local| {
                xtask()
                    .args(["nightly", "--db", &writer, "--results-from"])
                    .arg(local)
                    .arg("--out")
                    .arg(dir.path().join(format!(
                        "out-{}",
                        local.file_stem().unwrap_or_default().to_string_lossy()
                    )))
                    .env("PGPASSWORD", WRITER_SECRET)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("nightly starts")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("nightly");
            assert!(out.status.success(), "{}", text(&out));
            assert!(text(&out).contains("1 added"), "{}", text(&out));
            outputs.push(out);
        }
    }
    let mut server = postgres::Client::connect(&admin, postgres::NoTls).expect("admin");
    let runs: i64 = server
        .query_one("SELECT COUNT(*) FROM runs", &[])
        .expect("count")
        .get(0);
    assert_eq!(runs, 4);

    // The same runs in a SQLite file; both reports rendered by xtask.
    let sqlite = dir.path().join("same.sqlite");
    let mut ingest = xtask();
    ingest.args(["ingest", "--db"]).arg(&sqlite).args(&locals);
    let ingested = run(ingest);
    assert!(ingested.status.success(), "{}", text(&ingested));
    let from_pg = dir.path().join("report-pg");
    let mut report = xtask();
    report
        .args([
            "report",
            "--db",
            &cluster.tcp("edgebench_reporter", "lab"),
            "--out",
        ])
        .arg(&from_pg)
        .env("PGPASSWORD", REPORTER_SECRET);
    let pg_out = run(report);
    assert!(pg_out.status.success(), "{}", text(&pg_out));
    let from_sqlite = dir.path().join("report-sqlite");
    let mut report = xtask();
    report
        .args(["report", "--db"])
        .arg(&sqlite)
        .arg("--out")
        .arg(&from_sqlite);
    let sqlite_out = run(report);
    assert!(sqlite_out.status.success(), "{}", text(&sqlite_out));
    let (pg, lite) = (report_json(&from_pg), report_json(&from_sqlite));
    // The report holds each device's latest night of the case (two empty reports would also
    // compare equal below).
    assert_eq!(
        pg["measured_runs"].as_u64(),
        Some(2),
        "one run per device: {}",
        pg["measured_runs"]
    );
    assert!(
        pg == lite,
        "report.json from PostgreSQL differs from SQLite's at {}",
        first_difference(&pg, &lite, "")
    );
    let database_line = std::fs::read_to_string(from_pg.join("report.json")).expect("json");
    assert!(
        database_line.contains("edgebench_reporter@127.0.0.1"),
        "the report names the server without a password"
    );

    // The reporter can't ingest; a password on the command line is refused unechoed.
    let mut refused = xtask();
    refused
        .args(["ingest", "--db", &cluster.tcp("edgebench_reporter", "lab")])
        .arg(night(dir.path(), "c1", &"cc".repeat(32), 2, 20.0))
        .env("PGPASSWORD", REPORTER_SECRET);
    let refused = run(refused);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("permission denied"),
        "{}",
        text(&refused)
    );
    outputs.push(refused);
    let mut in_argv = xtask();
    in_argv
        .args([
            "ingest",
            "--db",
            &format!(
                "postgres://edgebench_writer:{WRITER_SECRET}@127.0.0.1:{}/lab",
                cluster.port
            ),
        ])
        .arg(&locals[0]);
    let in_argv = run(in_argv);
    assert!(!in_argv.status.success());
    assert!(text(&in_argv).contains("PGPASSWORD"), "{}", text(&in_argv));
    let in_argv_text = text(&in_argv);
    assert!(!in_argv_text.contains(WRITER_SECRET), "{in_argv_text}");

    // No password anywhere: output, report files, stored rows.
    let mut everything: Vec<String> = outputs.iter().map(text).collect();
    everything.extend([text(&pg_out), text(&sqlite_out), text(&roles)]);
    for file in ["index.html", "report.json", "report.csv", "summary.md"] {
        everything.push(std::fs::read_to_string(from_pg.join(file)).unwrap_or_default());
    }
    let dump: Vec<String> = server
        .query(
            "SELECT row_to_json(r)::text FROM runs r UNION ALL SELECT row_to_json(d)::text FROM devices d",
            &[],
        )
        .expect("dump")
        .iter()
        .map(|r| r.get(0))
        .collect();
    everything.extend(dump);
    for secret in [WRITER_SECRET, REPORTER_SECRET] {
        assert!(
            everything.iter().all(|t| !t.contains(secret)),
            "a password leaked"
        );
    }
}
