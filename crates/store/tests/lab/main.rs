//! The shared-database guarantees of the device lab, with real processes: on local SQLite files
//! (concurrent writers, SIGKILL at random points, interrupted ingest, schema refusals, a locked
//! database, llama-bench import) and on a real PostgreSQL server the tests start themselves
//! ([`on_postgres`]).
//!
//! Child processes are this test binary run again with `DEVICE_LAB_CHILD` set: the
//! `child_process_entry` test then plays the part named there and exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use edgebench_core::stats::SplitMix64;
use edgebench_store::exchange::{self, Record, Selection};
use edgebench_store::{
    CaseRow, DeviceRow, MetricRow, ModelRow, NewRunRow, OpenOptions, RequestRow, RunEndRow,
    RunStatus, SCHEMA_VERSION, Store, StoreError, local_host,
};

mod cluster;
mod on_postgres;

const CHILD_ENV: &str = "DEVICE_LAB_CHILD";

fn device(n: u32) -> DeviceRow {
    DeviceRow {
        fingerprint: format!("device-{n}"),
        hostname: local_host(),
        cpu_model: "test cpu".into(),
        cpu_features: "avx2".into(),
        cores_physical: Some(2),
        cores_logical: 2,
        ram_bytes: 8 << 30,
        os: "linux".into(),
        kernel: "6".into(),
        engine_builds: "[]".into(),
        build_profile: "test".into(),
        details: format!("{{\"n\":{n}}}"),
    }
}

fn model(n: u32) -> ModelRow {
    ModelRow {
        sha256: format!("{n:064x}"),
        registry_id: format!("model-{n}"),
        label: format!("model {n} (twin 1/16)"),
        origin: "twin".into(),
        quant: "Q4_0".into(),
        gguf_arch: "qwen2".into(),
        size_bytes: 1000 + u64::from(n),
        path: format!("models/m{n}.gguf"),
    }
}

fn case(n: u32) -> CaseRow {
    CaseRow {
        case_key: format!("case-{n}"),
        generate_tokens: 8,
        // A name with quotes and an equals sign: the export's CSV and Markdown must keep it.
        kv_variant: "k=q8_0, v=\"q8_0\"".into(),
        ..CaseRow::named(&format!("code_generation::model-{n}::Q4_0::llama_cpp::c1"))
    }
}

fn request(i: u32, latencies: usize) -> RequestRow {
    RequestRow {
        repetition: i / 4,
        warmup: false,
        request_index: i,
        prompt_id: format!("p{i}"),
        turn: 0,
        seq: 0,
        prompt_tokens: 64,
        generated_tokens: latencies as u32 + 1,
        queue_ns: 10,
        prefill_ns: 1_000 + u64::from(i),
        ttft_ns: 1_010 + u64::from(i),
        decode_ns: 5_000,
        e2e_ns: 6_010,
        reset_ns: 3,
        status: "completed".into(),
        priority: "normal".into(),
        sent_ns: 0,
        output_sha256: format!("{i:064x}"),
        output_text: format!("output {i}"),
        token_latencies_ns: (0..latencies as u64).map(|k| 100 + k).collect(),
        source: None,
        fallback_reason: None,
        fallback_ns: None,
        cost_usd: None,
        error: None,
    }
}

fn end(started: i64) -> RunEndRow {
    RunEndRow {
        load_ms: Some(1.5),
        kv_cache_bytes: Some(1 << 20),
        weights_bytes: Some(1 << 22),
        peak_rss_bytes: Some(1 << 24),
        estimated_peak_bytes: Some(1 << 24),
        cpu_time_ms: Some(3.0),
        stop_reason: Some("fixed".into()),
        metrics: vec![MetricRow {
            metric: "generation_tokens_per_s".into(),
            unit: "tokens/s".into(),
            n: 3,
            mean: 10.0,
            median: 10.0,
            stddev: 1.0,
            cv: 0.1,
            min: 9.0,
            max: 11.0,
            p90: 11.0,
            p95: 11.0,
            p99: 11.0,
            ci: Some((9.0, 11.0, 0.95)),
            outliers_low: 0,
            outliers_high: 0,
        }],
        ..RunEndRow::new(RunStatus::Passed, started + 5)
    }
}

/// Writes one complete run: rows it refers to, the `running` row, then everything else.
fn write_run(
    store: &mut Store,
    id: &str,
    n: u32,
    requests: u32,
    latencies: usize,
    pause: Duration,
) {
    let started_at_ms = 1_700_000_000_000 + i64::from(n);
    let run = NewRunRow {
        id: id.to_owned(),
        invocation: "lab".into(),
        case_id: store.upsert_case(&case(n % 5)).expect("case"),
        device_id: store.upsert_device(&device(n % 3)).expect("device"),
        model_id: Some(store.upsert_model(&model(n % 4)).expect("model")),
        started_at_ms,
        tool_version: "test".into(),
        git_commit: "test".into(),
        scenario_file: "scenarios/code_generation.toml".into(),
        scenario_sha256: "00".into(),
        seed: 7,
        warmup: 0,
        repetitions: 3,
        host: local_host(),
        pid: std::process::id(),
        mode: "measure".into(),
    };
    store.begin_run(&run).expect("begin");
    std::thread::sleep(pause);
    let rows: Vec<RequestRow> = (0..requests).map(|i| request(i, latencies)).collect();
    store
        .finish_run(id, &end(started_at_ms), &rows)
        .expect("finish");
}

/// A child process killed when dropped, so a failing test leaves no endless writer behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child(role: &str, db: &Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child_process_entry", "--test-threads=1", "-q"])
        .stdout(std::process::Stdio::null())
        .env(CHILD_ENV, role)
        .env("DEVICE_LAB_DB", db);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// The child processes' side; a no-op in a normal test run.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = PathBuf::from(std::env::var("DEVICE_LAB_DB").expect("DEVICE_LAB_DB"));
    let arg = |k: &str| std::env::var(k).expect(k);
    match role.as_str() {
        "writer" => {
            let writer: u32 = arg("WRITER").parse().expect("writer");
            let runs: u32 = arg("RUNS").parse().expect("runs");
            let mut store = Store::open(&db).expect("open");
            for i in 0..runs {
                write_run(
                    &mut store,
                    &format!("w{writer}-r{i}"),
                    writer * 1000 + i,
                    2,
                    4,
                    Duration::ZERO,
                );
            }
        }
        "endless_writer" => {
            let trial: u32 = arg("TRIAL").parse().expect("trial");
            let mut store = Store::open(&db).expect("open");
            for i in 0.. {
                write_run(
                    &mut store,
                    &format!("t{trial}-r{i}"),
                    i,
                    20,
                    50,
                    Duration::from_millis(u64::from(i % 3)),
                );
            }
        }
        "pg_ingest" => {
            let target: edgebench_store::postgres::PgTarget =
                arg("CONNINFO").parse().expect("connection string");
            let source = PathBuf::from(arg("SOURCE"));
            let mut store = edgebench_store::postgres::PgStore::connect(&target).expect("connect");
            store.ingest(&source).expect("ingest");
        }
        "ingest" => {
            let source = PathBuf::from(arg("SOURCE"));
            let store = Store::open(&db).expect("open");
            store.ingest(&source).expect("ingest");
        }
        other => panic!("unknown child role {other}"),
    }
}

fn integrity(db: &Path) -> String {
    let store = Store::open(db).expect("open");
    store
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn count(store: &Store, sql: &str) -> i64 {
    store
        .connection()
        .query_row(sql, [], |r| r.get(0))
        .expect(sql)
}

#[test]
fn eight_writer_processes_write_1600_runs_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No database yet: the writers also race to create and migrate it.
    let db = dir.path().join("shared.sqlite");
    let started = Instant::now();
    let children: Vec<Child> = (0..8)
        .map(|w| {
            child(
                "writer",
                &db,
                &[("WRITER", w.to_string()), ("RUNS", "200".into())],
            )
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success(), "a writer failed");
    }
    println!(
        "8 × 200 runs written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::open(&db).expect("open");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM runs"), 1600);
    assert_eq!(count(&store, "SELECT COUNT(DISTINCT id) FROM runs"), 1600);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM runs WHERE status = 'passed'"),
        1600
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM requests"), 3200);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM token_latencies"),
        3200 * 4
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM run_metrics"), 1600);
    // Natural keys stay unique however the upserts interleaved.
    assert_eq!(count(&store, "SELECT COUNT(*) FROM devices"), 3);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM models"), 4);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM cases"), 5);
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    drop(store);
    assert_eq!(integrity(&db), "ok");
}

/// Finished runs with their request counts, to check earlier runs survive later kills.
fn finished_runs(store: &Store) -> Vec<(String, String, i64)> {
    let mut stmt = store
        .connection()
        .prepare(
            "SELECT id, status, (SELECT COUNT(*) FROM requests q WHERE q.run_id = runs.id)
             FROM runs WHERE status != 'running' ORDER BY id",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_writer_killed_at_random_points_leaves_an_intact_database_and_an_aborted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shared.sqlite");
    let mut rng = SplitMix64::new(20_261_125);
    let mut before = Vec::new();
    let mut aborted_total = 0;
    const TRIALS: u32 = 24;
    for trial in 0..TRIALS {
        let mut writer = KillOnDrop(child(
            "endless_writer",
            &db,
            &[("TRIAL", trial.to_string())],
        ));
        // Wait until the writer is inside its loop, then kill it at a random point.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let store = Store::open(&db).expect("open while writing");
            let started = count(
                &store,
                &format!("SELECT COUNT(*) FROM runs WHERE id LIKE 't{trial}-%'"),
            );
            if started > 0 || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(60) as u64));
        writer.0.kill().expect("SIGKILL");
        writer.0.wait().expect("reap");

        // The next open sees the dead writer's `running` row and marks it aborted.
        let store = Store::open(&db).expect("open after kill");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM runs WHERE status = 'running'"),
            0
        );
        let aborted = count(
            &store,
            &format!("SELECT COUNT(*) FROM runs WHERE status = 'aborted' AND id LIKE 't{trial}-%'"),
        );
        assert!(aborted <= 1, "trial {trial}: {aborted} aborted runs");
        aborted_total += aborted;
        // A run is whole or absent: every passed run has all 20 requests, none is half-written.
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM runs WHERE status = 'passed'
                 AND (SELECT COUNT(*) FROM requests q WHERE q.run_id = runs.id) != 20"
            ),
            0
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM requests WHERE run_id IN (SELECT id FROM runs WHERE status = 'aborted')"
            ),
            0
        );
        let now = finished_runs(&store);
        let earlier: Vec<_> = now
            .iter()
            .filter(|(id, _, _)| !id.starts_with(&format!("t{trial}-")))
            .cloned()
            .collect();
        assert_eq!(earlier, before, "trial {trial} changed earlier runs");
        before = now;
        drop(store);
        assert_eq!(integrity(&db), "ok", "trial {trial}");
    }
    // The writer spends nearly all its time inside a run: most kills must catch one.
    assert!(
        aborted_total >= i64::from(TRIALS) / 2,
        "only {aborted_total} of {TRIALS} kills left an aborted run"
    );
}

/// Every record of a database, without the export time, for comparing contents.
fn content(db: &Path) -> Vec<Record> {
    let store = Store::open(db).expect("open");
    let mut records = store.export(&Selection::default()).expect("export");
    records.retain(|r| !matches!(r, Record::Header(_)));
    records
}

fn source_database(dir: &Path, runs: u32) -> PathBuf {
    let db = dir.join("local.sqlite");
    let mut store = Store::open(&db).expect("open");
    for i in 0..runs {
        write_run(&mut store, &format!("local-{i}"), i, 8, 30, Duration::ZERO);
    }
    db
}

#[test]
fn ingest_is_idempotent_and_an_interrupted_ingest_retried_equals_a_clean_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = source_database(dir.path(), 300);

    let clean = dir.path().join("clean.sqlite");
    let summary = Store::open(&clean)
        .expect("open")
        .ingest(&source)
        .expect("ingest");
    assert_eq!(summary.added, 300, "{summary}");
    let again = Store::open(&clean)
        .expect("open")
        .ingest(&source)
        .expect("ingest again");
    assert_eq!((again.added, again.already_present), (0, 300), "{again}");
    assert_eq!(content(&clean), content(&source));

    // The same through an export file.
    let export = dir.path().join("local.jsonl");
    let records = Store::open(&source)
        .expect("open")
        .export(&Selection::default())
        .expect("export");
    let mut file = std::fs::File::create(&export).expect("create");
    exchange::write_jsonl(&records, &mut file).expect("write");
    let via_export = dir.path().join("via-export.sqlite");
    Store::open(&via_export)
        .expect("open")
        .ingest(&export)
        .expect("ingest export");
    Store::open(&via_export)
        .expect("open")
        .ingest(&export)
        .expect("ingest export again");
    assert_eq!(content(&via_export), content(&clean));

    // Kill ingests part-way, several times, then finish: the same content as the clean one.
    let target = dir.path().join("target.sqlite");
    let mut partial_states = 0;
    for _ in 0..4 {
        let mut ingest = KillOnDrop(child(
            "ingest",
            &target,
            &[("SOURCE", source.display().to_string())],
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while Instant::now() < deadline {
            if target.exists()
                && let Ok(store) = Store::open(&target)
            {
                seen = count(&store, "SELECT COUNT(*) FROM runs");
            }
            if seen > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        ingest.0.kill().expect("SIGKILL");
        let status = ingest.0.wait().expect("reap");
        let store = Store::open(&target).expect("open");
        let runs = count(&store, "SELECT COUNT(*) FROM runs");
        if !status.success() && runs < 300 {
            partial_states += 1;
        }
        // Whole runs only.
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM runs WHERE (SELECT COUNT(*) FROM requests q WHERE q.run_id = runs.id) != 8"
            ),
            0
        );
    }
    assert!(partial_states > 0, "no kill landed mid-ingest");
    Store::open(&target)
        .expect("open")
        .ingest(&source)
        .expect("retry");
    assert_eq!(content(&target), content(&clean));
    assert_eq!(integrity(&target), "ok");
}

#[test]
fn a_newer_schema_or_format_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let newer = dir.path().join("newer.sqlite");
    drop(Store::open(&newer).expect("open"));
    Store::open(&newer)
        .expect("open")
        .connection()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump");
    let target = Store::open(&dir.path().join("t.sqlite")).expect("open");
    let err = target.ingest(&newer).expect_err("newer schema").to_string();
    assert!(
        err.contains("newer.sqlite")
            && err.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
            && err.contains(&format!("this build's {SCHEMA_VERSION}")),
        "{err}"
    );

    let export = dir.path().join("newer.jsonl");
    std::fs::write(
        &export,
        format!(
            "{{\"record\":\"header\",\"format\":\"edgebench-runs\",\"version\":1,\"schema_version\":{},\"exported_at_ms\":0}}\n",
            SCHEMA_VERSION + 3
        ),
    )
    .expect("write");
    let err = target
        .ingest(&export)
        .expect_err("newer export")
        .to_string();
    assert!(
        err.contains("newer.jsonl") && err.contains(&(SCHEMA_VERSION + 3).to_string()),
        "{err}"
    );

    // A broken line is named by file and line; nothing of the file is ingested.
    let source = source_database(dir.path(), 2);
    let mut records = Store::open(&source)
        .expect("open")
        .export(&Selection::default())
        .expect("export");
    if let Some(Record::Run(run)) = records.get_mut(2) {
        run.run.insert("no_such_column".into(), 1.into());
    }
    let bad = dir.path().join("bad.jsonl");
    let mut out = Vec::new();
    exchange::write_jsonl(&records, &mut out).expect("write");
    out.extend_from_slice(b"{\"record\":\"run\",\"truncated\n");
    std::fs::write(&bad, out).expect("write");
    let err = target.ingest(&bad).expect_err("bad line").to_string();
    assert!(err.contains("bad.jsonl:4:"), "{err}");
}

#[test]
fn a_locked_database_is_named_in_a_clear_error_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shared.sqlite");
    let mut store = Store::open(&db).expect("open");
    write_run(&mut store, "kept", 1, 2, 3, Duration::ZERO);
    drop(store);

    // Another writer holds the write lock for the whole attempt.
    let holder = rusqlite::Connection::open(&db).expect("open holder");
    holder.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let options = OpenOptions {
        busy_timeout: Duration::from_millis(150),
        ..OpenOptions::default()
    };
    let mut writer = Store::open_with(&db, &options).expect("open is read-only work");
    let started = Instant::now();
    let err = writer.upsert_case(&case(99)).expect_err("locked");
    assert!(
        matches!(err, StoreError::Locked { .. }) && err.is_unwritable(),
        "{err:?}"
    );
    assert!(err.to_string().contains(&db.display().to_string()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    let run_err = writer
        .finish_run("kept", &end(0), &[])
        .expect_err("locked finish");
    assert!(run_err.is_unwritable(), "{run_err}");
    holder.execute_batch("ROLLBACK").expect("unlock");

    // Once the lock is gone the same store writes, and the earlier run is untouched.
    writer.upsert_case(&case(99)).expect("after unlock");
    assert_eq!(
        finished_runs(&writer),
        vec![("kept".to_owned(), "passed".to_owned(), 2)]
    );
}

#[test]
fn llama_bench_json_imports_once_as_imported_runs_with_their_samples_summarised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama-bench.json");
    let records = edgebench_store::llama_bench::read(&fixture, "lab-phone-1").expect("read");
    let store = Store::open(&dir.path().join("shared.sqlite")).expect("open");
    let first = store.ingest_records(&fixture, &records).expect("import");
    assert_eq!(first.added, 2, "{first}");
    let again = edgebench_store::llama_bench::read(&fixture, "lab-phone-1").expect("read");
    let second = store
        .ingest_records(&fixture, &again)
        .expect("import again");
    assert_eq!((second.added, second.already_present), (0, 2), "{second}");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM runs WHERE origin = 'imported:llama-bench' AND host = 'lab-phone-1'"
        ),
        2
    );
    // The median of the five samples, computed here independently of the importer.
    let text = std::fs::read_to_string(&fixture).expect("fixture");
    let tests: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    for (test, metric) in tests
        .iter()
        .zip(["prefill_tokens_per_s", "generation_tokens_per_s"])
    {
        let mut samples: Vec<f64> = test["samples_ts"]
            .as_array()
            .expect("samples")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let stored: f64 = store
            .connection()
            .query_row(
                "SELECT m.median FROM run_metrics m JOIN runs r ON r.id = m.run_id JOIN cases c ON c.id = r.case_id
                 WHERE m.metric = ?1 AND c.scenario = 'llama-bench'",
                [metric],
                |r| r.get(0),
            )
            .expect(metric);
        assert!(
            (stored - median).abs() < 1e-9,
            "{metric}: {stored} vs {median}"
        );
    }
    let exported = store.export(&Selection::default()).expect("export");
    let mut csv = Vec::new();
    exchange::write_csv(&exported, &mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("utf8");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("imported:llama-bench"), "{csv}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{\"model_filename\": \"m.gguf\"}]").expect("write");
    let err = edgebench_store::llama_bench::read(&broken, "h")
        .expect_err("broken")
        .to_string();
    assert!(
        err.contains("broken.json") && err.contains("test 0"),
        "{err}"
    );
}

#[test]
fn csv_and_markdown_exports_have_one_row_per_run_and_metric_and_escape_their_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = source_database(dir.path(), 3);
    let records = Store::open(&db)
        .expect("open")
        .export(&Selection {
            run_id: Some("local-1".into()),
            ..Selection::default()
        })
        .expect("export");
    let runs = records
        .iter()
        .filter(|r| matches!(r, Record::Run(_)))
        .count();
    assert_eq!(runs, 1);
    let mut csv = Vec::new();
    exchange::write_csv(&records, &mut csv).expect("csv");
    let csv = String::from_utf8(csv).expect("utf8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(lines[0].split(',').count(), exchange::SUMMARY_COLUMNS.len());
    assert!(lines[1].starts_with("local-1,"), "{csv}");
    // RFC 4180: a field with a comma is quoted, its quotes doubled.
    assert!(lines[1].contains(",\"k=q8_0, v=\"\"q8_0\"\"\","), "{csv}");
    let mut md = Vec::new();
    exchange::write_markdown(&records, &mut md).expect("md");
    let md = String::from_utf8(md).expect("utf8");
    assert_eq!(md.lines().count(), 3, "{md}");
    assert!(md.contains("| generation_tokens_per_s |"), "{md}");

    // A date range: runs started in [since, until).
    let ranged = Store::open(&db)
        .expect("open")
        .export(&Selection {
            since_ms: Some(1_700_000_000_001),
            until_ms: Some(1_700_000_000_002),
            ..Selection::default()
        })
        .expect("export");
    let ids: Vec<&str> = ranged
        .iter()
        .filter_map(|r| match r {
            Record::Run(run) => run.run.get("id").and_then(|v| v.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["local-1"]);
}

#[test]
fn an_older_database_is_ingested_through_a_migrated_copy_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old-v5.sqlite");
    // A database as schema version 5 wrote it (before `runs.origin` and `answers`).
    edgebench_store::synthetic::schema_v5_database(&old, "old-host").expect("old database");
    let before = std::fs::read(&old).expect("read");

    let target = Store::open(&dir.path().join("new.sqlite")).expect("open");
    let summary = target.ingest(&old).expect("ingest an older schema");
    assert_eq!(
        summary.added, 2,
        "{summary}: the passed run and the stale one"
    );
    let (origin, requests): (String, i64) = target
        .connection()
        .query_row(
            "SELECT origin, (SELECT COUNT(*) FROM requests WHERE run_id = 'old-run') FROM runs WHERE id = 'old-run'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("ingested run");
    assert_eq!((origin.as_str(), requests), ("edgebench", 1));
    // The source was read, never migrated in place.
    assert_eq!(std::fs::read(&old).expect("read"), before);
    let version: u32 = rusqlite::Connection::open(&old)
        .expect("open")
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 5);
}
