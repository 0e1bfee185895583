//! The same guarantees on PostgreSQL, against a real server each test starts on loopback
//! ([`Cluster`]): migrations once under concurrent starts, 8 ingesting processes, SIGKILL at 24
//! seeded points, a server restart mid-ingest, the writer and reporter roles as the server
//! enforces them, TLS, and passwords that never show.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgebench_core::stats::SplitMix64;
use edgebench_store::exchange::{Record, Selection};
use edgebench_store::postgres::{PgStore, PgTarget, REPORTER_ROLE, WRITER_ROLE};
use edgebench_store::{RunStatus, SCHEMA_VERSION, Store, StoreError};

use super::cluster::Cluster;
use super::{KillOnDrop, child, content, write_run};

fn target(conninfo: &str) -> PgTarget {
    PgTarget::parse_with(conninfo, &|_| None).expect("connection string")
}

/// A target whose password comes from a PGPASSWORD given here (not this process's environment,
/// which the test threads share).
fn target_with_password(conninfo: &str, password: &str) -> PgTarget {
    let password = password.to_owned();
    PgTarget::parse_with(conninfo, &move |k| {
        (k == "PGPASSWORD").then(|| password.clone())
    })
    .expect("connection string")
}

fn pg_count(store: &mut PgStore, sql: &str) -> i64 {
    store
        .client()
        .query_one(sql, &[])
        .and_then(|r| r.try_get(0))
        .expect(sql)
}

fn pg_content(store: &mut PgStore) -> Vec<Record> {
    let mut records = store.export(&Selection::default()).expect("export");
    records.retain(|r| !matches!(r, Record::Header(_)));
    records
}

/// A local SQLite file of `runs` runs named `{prefix}-{i}`, as a night on one host leaves.
fn local_night(dir: &Path, prefix: &str, runs: u32, requests: u32, latencies: usize) -> PathBuf {
    let db = dir.join(format!("{prefix}.sqlite"));
    let mut store = Store::open(&db).expect("open");
    for i in 0..runs {
        write_run(
            &mut store,
            &format!("{prefix}-{i}"),
            i,
            requests,
            latencies,
            Duration::ZERO,
        );
    }
    db
}

/// Columns and nullability of every table, as the database itself reports them.
fn sqlite_columns(db: &Path) -> Vec<(String, String, bool)> {
    let store = Store::open(db).expect("open");
    let conn = store.connection();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name, \"notnull\", pk FROM pragma_table_xinfo('{t}')"
            ))
            .expect("xinfo");
        let cols: Vec<(String, bool)> = stmt
            .query_map([], |r| {
                // SQLite's INTEGER PRIMARY KEY may be NULL on insert (it is the rowid).
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? == 1 || r.get::<_, i64>(2)? == 1,
                ))
            })
            .and_then(|rows| rows.collect())
            .expect("columns");
        out.extend(cols.into_iter().map(|(c, nn)| (t.clone(), c, nn)));
    }
    out.sort();
    out
}

fn pg_columns(store: &mut PgStore) -> Vec<(String, String, bool)> {
    let rows = store
        .client()
        .query(
            "SELECT table_name::text, column_name::text, is_nullable = 'NO' FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'edgebench_migrations'",
            &[],
        )
        .expect("columns");
    let mut out: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    out.sort();
    out
}

#[test]
fn the_schema_migrates_once_under_concurrent_starts_with_sqlites_columns_and_refuses_newer() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let conninfo = cluster.create_database("lab");
    // Six hosts start against the empty database at once.
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let t = target(&conninfo);
            std::thread::spawn(move || PgStore::connect(&t).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("connect and migrate");
    }
    let mut store = PgStore::connect(&target(&conninfo)).expect("connect");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let applied = store
        .client()
        .query(
            "SELECT version FROM edgebench_migrations ORDER BY version",
            &[],
        )
        .expect("migrations");
    let versions: Vec<i64> = applied.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        (1..=i64::from(SCHEMA_VERSION)).collect::<Vec<_>>(),
        "each migration exactly once, in order"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        pg_columns(&mut store),
        sqlite_columns(&dir.path().join("fresh.sqlite")),
        "the same tables, columns and NOT NULLs as SQLite"
    );

    store
        .batch_execute(&format!(
            "INSERT INTO edgebench_migrations (version, name) VALUES ({}, 'from a newer build')",
            SCHEMA_VERSION + 1
        ))
        .expect("pretend a newer build migrated");
    let err = PgStore::connect(&target(&conninfo)).expect_err("newer schema");
    assert!(matches!(err, StoreError::PgTooNew { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&(SCHEMA_VERSION + 1).to_string())
            && text.contains(&SCHEMA_VERSION.to_string())
            && text.contains("update edgebench"),
        "{text}"
    );
}

#[test]
fn eight_ingesting_processes_of_200_runs_each_leave_exactly_1600_runs() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let conninfo = cluster.create_database("lab");
    let dir = tempfile::tempdir().expect("tempdir");
    let sources: Vec<PathBuf> = (0..8)
        .map(|w| local_night(dir.path(), &format!("host{w}"), 200, 2, 50))
        .collect();
    let started = Instant::now();
    // No schema yet: the ingesters also race to migrate it; all share devices, models, cases.
    let children: Vec<KillOnDrop> = sources
        .iter()
        .map(|s| {
            KillOnDrop(child(
                "pg_ingest",
                s,
                &[
                    ("CONNINFO", conninfo.clone()),
                    ("SOURCE", s.display().to_string()),
                ],
            ))
        })
        .collect();
    for mut c in children {
        assert!(c.0.wait().expect("wait").success(), "an ingester failed");
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut store = PgStore::connect(&target(&conninfo)).expect("connect");
    let samples = pg_count(&mut store, "SELECT COUNT(*) FROM token_latencies");
    println!(
        "8 concurrent ingesters: 1,600 runs in {seconds:.1} s = {:.0} runs/s, {:.0} raw samples/s",
        1600.0 / seconds,
        samples as f64 / seconds
    );
    assert_eq!(pg_count(&mut store, "SELECT COUNT(*) FROM runs"), 1600);
    assert_eq!(
        pg_count(&mut store, "SELECT COUNT(DISTINCT id) FROM runs"),
        1600
    );
    assert_eq!(store.count_runs(RunStatus::Passed).expect("count"), 1600);
    assert_eq!(pg_count(&mut store, "SELECT COUNT(*) FROM requests"), 3200);
    assert_eq!(samples, 3200 * 50);
    assert_eq!(
        pg_count(&mut store, "SELECT COUNT(*) FROM run_metrics"),
        1600
    );
    // Natural keys stay unique however the upserts raced.
    assert_eq!(pg_count(&mut store, "SELECT COUNT(*) FROM devices"), 3);
    assert_eq!(pg_count(&mut store, "SELECT COUNT(*) FROM models"), 4);
    assert_eq!(pg_count(&mut store, "SELECT COUNT(*) FROM cases"), 5);
}

#[test]
fn ingesters_killed_at_24_seeded_points_leave_whole_runs_and_a_retry_completes_the_same_content() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let conninfo = cluster.create_database("lab");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = local_night(dir.path(), "night", 150, 8, 30);
    // How long a whole ingest takes here, to spread the kills over it.
    let scratch = cluster.create_database("scratch");
    let started = Instant::now();
    PgStore::connect(&target(&scratch))
        .expect("connect")
        .ingest(&source)
        .expect("ingest");
    let whole = started.elapsed();
    let mut rng = SplitMix64::new(20_261_201);
    let mut partial = 0;
    for trial in 0..24 {
        // Each kill hits a fresh ingest (the last one's state is what the retry completes).
        PgStore::connect(&target(&conninfo))
            .expect("connect")
            .batch_execute("TRUNCATE runs, devices, models, cases CASCADE")
            .expect("empty the database");
        let mut ingest = KillOnDrop(child(
            "pg_ingest",
            &source,
            &[
                ("CONNINFO", conninfo.clone()),
                ("SOURCE", source.display().to_string()),
            ],
        ));
        // Killed once a seeded number of runs is stored (ingest commits whole batches, so the
        // kill lands while a later batch is in flight), not after a guessed time: the process's
        // start-up and this machine's load made time-based kills land before the first commit.
        let kill_after = 1 + rng.next_u64() % 149;
        let mut watcher = PgStore::connect(&target(&conninfo)).expect("watch");
        let deadline = Instant::now() + whole * 20 + Duration::from_secs(30);
        while pg_count(&mut watcher, "SELECT COUNT(*) FROM runs") < kill_after as i64
            && ingest.0.try_wait().expect("poll").is_none()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        // An ingest that finished first is already gone.
        let _ = ingest.0.kill();
        ingest.0.wait().expect("reap");
        let mut store = PgStore::connect(&target(&conninfo)).expect("connect");
        let runs = pg_count(&mut store, "SELECT COUNT(*) FROM runs");
        if runs > 0 && runs < 150 {
            partial += 1;
        }
        // Whole runs only: every stored run has its 8 requests and each request its samples.
        assert_eq!(
            pg_count(
                &mut store,
                "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id) <> 8
                    OR (SELECT COUNT(*) FROM run_metrics m WHERE m.run_id = r.id) <> 1"
            ),
            0,
            "trial {trial}: a partial run"
        );
        assert_eq!(
            pg_count(
                &mut store,
                "SELECT COUNT(*) FROM requests q WHERE (SELECT COUNT(*) FROM token_latencies t WHERE t.request_id = q.id) <> 30"
            ),
            0,
            "trial {trial}: a request without all its samples"
        );
    }
    println!("24 kills over a {whole:?} ingest: {partial} left part of the runs stored");
    assert!(partial >= 6, "only {partial} of 24 kills landed mid-ingest");
    let mut store = PgStore::connect(&target(&conninfo)).expect("connect");
    store.ingest(&source).expect("retry");
    assert_eq!(pg_content(&mut store), content(&source));
}

#[test]
fn a_server_restarted_mid_ingest_is_reported_and_a_retry_succeeds() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let conninfo = cluster.create_database("lab");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = local_night(dir.path(), "night", 200, 8, 40);
    let t = target(&conninfo);
    let ingest = {
        let (t, source) = (t.clone(), source.clone());
        std::thread::spawn(move || {
            PgStore::connect(&t)
                .map_err(edgebench_store::exchange::ExchangeError::from)
                .and_then(|mut s| s.ingest(&source))
        })
    };
    // Restart once some runs have landed.
    let mut watcher = PgStore::connect(&t).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg_count(&mut watcher, "SELECT COUNT(*) FROM runs") < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(watcher);
    cluster.restart();
    let outcome = ingest.join().expect("thread");
    let err = outcome.expect_err("the connection was cut mid-ingest");
    let text = err.to_string();
    assert!(
        text.contains("PostgreSQL") && text.contains(&t.to_string()),
        "the error names the server: {text}"
    );
    let mut store = PgStore::connect(&t).expect("reconnect");
    let before = pg_count(&mut store, "SELECT COUNT(*) FROM runs");
    assert!(
        before < 200,
        "the restart landed after the ingest ({before} runs)"
    );
    let summary = store.ingest(&source).expect("retry");
    assert_eq!(summary.added as i64, 200 - before, "{summary}");
    assert_eq!(pg_content(&mut store), content(&source));
}

/// The SQLSTATE of a failed statement.
fn sqlstate(result: Result<u64, postgres::Error>) -> String {
    result
        .expect_err("the server refuses")
        .code()
        .map(|c| c.code().to_owned())
        .unwrap_or_default()
}

#[test]
fn the_reporter_cannot_write_and_the_writer_cannot_delete_or_rewrite_history() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let admin = cluster.create_database("lab");
    let mut owner = PgStore::connect(&target(&admin)).expect("connect");
    owner
        .create_roles(WRITER_ROLE, REPORTER_ROLE)
        .expect("create roles");
    owner
        .create_roles(WRITER_ROLE, REPORTER_ROLE)
        .expect("creating them again is harmless");
    owner
        .batch_execute(
            "ALTER ROLE edgebench_writer PASSWORD 'writer-pw-7f3a';
             ALTER ROLE edgebench_reporter PASSWORD 'reporter-pw-91c2';",
        )
        .expect("passwords");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = local_night(dir.path(), "night", 5, 2, 4);

    let writer_target = target_with_password(&cluster.tcp(WRITER_ROLE, "lab"), "writer-pw-7f3a");
    let mut writer = PgStore::connect(&writer_target).expect("the writer logs in");
    assert_eq!(writer.ingest(&source).expect("the writer ingests").added, 5);
    // A run left `running` elsewhere, then completed: the writer may replace it.
    owner
        .batch_execute("UPDATE runs SET status = 'running' WHERE id = 'night-0'")
        .expect("owner");
    let completed = writer
        .ingest(&source)
        .expect("the writer completes a lost run");
    assert_eq!((completed.completed, completed.already_present), (1, 4));
    let denied = "42501"; // insufficient_privilege
    for sql in [
        "DELETE FROM runs",
        "DELETE FROM token_latencies",
        "UPDATE runs SET status = 'failed'",
        "UPDATE run_metrics SET median = 0",
        "TRUNCATE runs CASCADE",
        "DROP TABLE runs CASCADE",
    ] {
        assert_eq!(
            sqlstate(writer.client().execute(sql, &[])),
            denied,
            "writer: {sql}"
        );
    }
    // Discarding goes for unfinished runs only.
    writer
        .client()
        .execute("SELECT edgebench_discard_incomplete_run('night-1')", &[])
        .expect("call");
    assert_eq!(pg_count(&mut writer, "SELECT COUNT(*) FROM runs"), 5);

    let reporter_target =
        target_with_password(&cluster.tcp(REPORTER_ROLE, "lab"), "reporter-pw-91c2");
    let mut reporter = PgStore::connect_read_only(&reporter_target).expect("the reporter logs in");
    assert_eq!(
        edgebench_store::dataset::load_pg(&mut reporter)
            .expect("the reporter reads")
            .runs
            .len(),
        5
    );
    for sql in [
        "INSERT INTO devices (fingerprint, hostname, cpu_model, cpu_features, cores_logical, ram_bytes, os, kernel, engine_builds, build_profile, details) VALUES ('x','x','x','x',1,1,'x','x','x','x','x')",
        "DELETE FROM runs",
        "UPDATE runs SET status = 'failed'",
        "SELECT edgebench_discard_incomplete_run('night-1')",
    ] {
        assert_eq!(
            sqlstate(reporter.client().execute(sql, &[])),
            denied,
            "reporter: {sql}"
        );
    }
    let err = reporter
        .ingest(&local_night(dir.path(), "other", 2, 2, 4))
        .expect_err("the reporter cannot ingest");
    assert!(err.to_string().contains("permission denied"), "{err}");

    // A wrong password is refused without being echoed; none ever is.
    let wrong = target_with_password(&cluster.tcp(WRITER_ROLE, "lab"), "not-the-pw-5d1e");
    let err = PgStore::connect(&wrong).expect_err("wrong password");
    let text = format!("{err} {err:?} {wrong} {wrong:?} {writer_target:?}");
    assert!(text.contains("28P01"), "{text}");
    for secret in ["not-the-pw-5d1e", "writer-pw-7f3a", "reporter-pw-91c2"] {
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn sslmode_require_encrypts_and_verify_full_checks_the_certificate() {
    let Some(cluster) = Cluster::start_with_tls() else {
        return;
    };
    cluster.create_database("lab");
    let password = "superuser-test-only";
    let encrypted = |store: &mut PgStore| -> bool {
        store
            .client()
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .map(|r| r.get(0))
            .expect("pg_stat_ssl")
    };
    let url = cluster.tcp("postgres", "lab");
    let mut store = PgStore::connect(&target_with_password(
        &format!("{url}?sslmode=require"),
        password,
    ))
    .expect("require: TLS without verification, as libpq");
    assert!(encrypted(&mut store), "the session is encrypted");
    let localhost = format!("postgres://postgres@localhost:{}/lab", cluster.port);
    let cert = cluster.certificate().display().to_string();
    let mut verified = PgStore::connect(&target_with_password(
        &format!("{localhost}?sslmode=verify-full&sslrootcert={cert}"),
        password,
    ))
    .expect("verify-full against the server's own certificate");
    assert!(encrypted(&mut verified));
    let err = PgStore::connect(&target_with_password(
        &format!("{localhost}?sslmode=verify-full"),
        password,
    ))
    .expect_err("a self-signed certificate is not trusted by default");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    let mut plain = PgStore::connect(&target_with_password(
        &format!("{url}?sslmode=disable"),
        password,
    ))
    .expect("disable");
    assert!(!encrypted(&mut plain));
}
