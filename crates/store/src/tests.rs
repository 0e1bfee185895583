use super::*;

fn device() -> DeviceRow {
    DeviceRow {
        fingerprint: "fp".into(),
        hostname: "host".into(),
        cpu_model: "cpu".into(),
        cpu_features: "avx2".into(),
        cores_physical: Some(1),
        cores_logical: 2,
        ram_bytes: 1 << 30,
        os: "linux".into(),
        kernel: "6".into(),
        engine_builds: "[]".into(),
        build_profile: "test".into(),
        details: "{}".into(),
    }
}

fn case() -> CaseRow {
    CaseRow {
        case_key: "k".into(),
        category: "code_generation".into(),
        generate_tokens: 8,
        ..CaseRow::named("s::m::Q4_0::llama_cpp::c1")
    }
}

fn new_run(store: &Store, id: &str, pid: u32) -> NewRunRow {
    let device_id = store.upsert_device(&device()).expect("device");
    let case_id = store.upsert_case(&case()).expect("case");
    NewRunRow {
        id: id.into(),
        invocation: "inv".into(),
        case_id,
        device_id,
        model_id: None,
        started_at_ms: 1,
        tool_version: "0.1.0".into(),
        git_commit: "abc".into(),
        scenario_file: "scenarios/s.toml".into(),
        scenario_sha256: "00".into(),
        seed: u64::MAX,
        warmup: 1,
        repetitions: 1,
        host: "host".into(),
        pid,
        mode: "measure".into(),
    }
}

/// What candle reports it ran with, in a chat-format run.
fn effective() -> EffectiveRow {
    EffectiveRow {
        kv_storage: "f32/f32".into(),
        weights_loading: "read".into(),
        scheduling: "round-robin".into(),
        flash_attention: false,
        prompt_format: Some("chat".into()),
    }
}

fn request(latencies: Vec<u64>) -> RequestRow {
    RequestRow {
        repetition: 0,
        warmup: false,
        request_index: 0,
        prompt_id: "p1".into(),
        turn: 0,
        seq: 0,
        prompt_tokens: 10,
        generated_tokens: latencies.len() as u32 + 1,
        queue_ns: 0,
        prefill_ns: 5,
        ttft_ns: 6,
        decode_ns: latencies.iter().sum(),
        e2e_ns: 100,
        reset_ns: 3,
        status: "completed".into(),
        priority: "normal".into(),
        sent_ns: 0,
        output_sha256: "d".into(),
        output_text: "hi".into(),
        token_latencies_ns: latencies,
        source: None,
        fallback_reason: None,
        fallback_ns: None,
        cost_usd: None,
        error: None,
    }
}

#[test]
fn migrates_to_current_version_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/db.sqlite");
    let store = Store::open(&path).expect("open creates parents");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    drop(store);
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let mode: String = store
        .connection()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn refuses_newer_schema_naming_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let store = Store::open(&path).expect("open");
    store
        .connection()
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    drop(store);
    let err = Store::open(&path).expect_err("too new").to_string();
    assert!(
        err.contains("schema version 99") && err.contains(&SCHEMA_VERSION.to_string()),
        "{err}"
    );
    assert!(err.contains("db.sqlite"), "{err}");
}

#[test]
fn a_run_stores_every_sample_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("db.sqlite")).expect("open");
    let run = new_run(&store, "run-1", 1);
    store.begin_run(&run).expect("begin");
    assert_eq!(store.count_runs(RunStatus::Running).expect("count"), 1);
    let end = RunEndRow {
        load_ms: Some(1.5),
        kv_cache_bytes: Some(10),
        weights_bytes: Some(20),
        peak_rss_bytes: Some(30),
        effective: Some(effective()),
        estimated_peak_bytes: Some(40),
        cpu_time_ms: Some(12.5),
        stop_reason: Some("ci_target".into()),
        roofline: Some(RooflineRow {
            decode_bytes_read: 1000,
            decode_steps_ns: 10,
            bandwidth_bytes_per_s: 2e11,
            fraction: 0.5,
            probe: None,
        }),
        metrics: vec![MetricRow {
            metric: "ttft_ms".into(),
            unit: "ms".into(),
            n: 2,
            mean: 1.0,
            median: 1.0,
            stddev: 0.1,
            cv: 0.1,
            min: 0.9,
            max: 1.1,
            p90: 1.08,
            p95: 1.09,
            p99: 1.1,
            ci: Some((0.9, 1.1, 0.95)),
            outliers_low: 0,
            outliers_high: 1,
        }],
        ..RunEndRow::new(RunStatus::Passed, 2)
    };
    store
        .finish_run("run-1", &end, &[request(vec![7, 8, 9]), request(vec![1])])
        .expect("finish");
    assert_eq!(store.count_runs(RunStatus::Passed).expect("count"), 1);
    let n: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM token_latencies", [], |r| r.get(0))
        .expect("n");
    assert_eq!(n, 4);
    let (kv, loading, reset, prompt_format): (String, String, i64, String) = store
        .connection()
        .query_row(
            "SELECT kv_storage, weights_loading, (SELECT SUM(reset_ns) FROM requests), prompt_format FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("effective");
    assert_eq!(
        (kv.as_str(), loading.as_str(), reset, prompt_format.as_str()),
        ("f32/f32", "read", 6, "chat")
    );
    let (stop, fraction, ci_high, outliers): (String, f64, f64, i64) = store
        .connection()
        .query_row(
            "SELECT stop_reason, roofline_fraction, ci_high, outliers_high FROM runs JOIN run_metrics ON run_id = id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("summary");
    assert_eq!(
        (stop.as_str(), fraction, ci_high, outliers),
        ("ci_target", 0.5, 1.1, 1)
    );
    // Estimate 40 vs peak RSS 30: the guard over-estimated by a third.
    let error_pct: f64 = store
        .connection()
        .query_row("SELECT memory_estimate_error_pct FROM runs", [], |r| {
            r.get(0)
        })
        .expect("error %");
    assert!((error_pct - 100.0 / 3.0).abs() < 1e-9, "{error_pct}");
    let seed: i64 = store
        .connection()
        .query_row("SELECT seed FROM runs", [], |r| r.get(0))
        .expect("seed");
    assert_eq!(
        seed,
        i64::MAX,
        "u64 seeds above i64::MAX saturate instead of wrapping negative"
    );

    // Finishing an unknown run fails and leaves no orphan requests behind.
    let err = store
        .finish_run("nope", &end, &[request(vec![1])])
        .expect_err("unknown run");
    assert!(
        err.to_string().contains("run `nope` does not exist"),
        "{err}"
    );
    let n: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
        .expect("n");
    assert_eq!(n, 2);
}

#[test]
fn a_crashed_run_is_aborted_once_with_its_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
    store
        .begin_run(&new_run(&store, "crashed", 111))
        .expect("begin");
    assert!(
        store
            .abort_run("crashed", "killed by signal 6", "GGML_ASSERT failed", 9)
            .expect("abort")
    );
    // Already ended: a second report changes nothing.
    assert!(!store.abort_run("crashed", "other", "", 10).expect("abort"));
    let (status, error, tail): (String, String, String) = store
        .connection()
        .query_row("SELECT status, error, stderr_tail FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("row");
    assert_eq!(
        (status.as_str(), error.as_str(), tail.as_str()),
        ("aborted", "killed by signal 6", "GGML_ASSERT failed")
    );
}

#[test]
fn stale_running_rows_become_aborted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.sqlite")).expect("open");
    store
        .begin_run(&new_run(&store, "dead", 111))
        .expect("begin");
    store
        .begin_run(&new_run(&store, "alive", 222))
        .expect("begin");
    let marked = store
        .mark_stale_runs_aborted("host", |pid| pid == 222)
        .expect("mark");
    assert_eq!(marked, 1);
    assert_eq!(
        store.run_status("dead").expect("q").map(|s| s.0).as_deref(),
        Some("aborted")
    );
    assert_eq!(
        store
            .run_status("alive")
            .expect("q")
            .map(|s| s.0)
            .as_deref(),
        Some("running")
    );
}

#[test]
fn a_version_1_database_migrates_keeping_its_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).expect("create");
        conn.execute_batch(include_str!("../migrations/0001_2026-11-25_init.sql"))
            .expect("schema 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO devices (fingerprint, hostname, cpu_model, cpu_features, cores_logical, ram_bytes, os,
                 kernel, engine_builds, build_profile, details)
             VALUES ('fp', 'h', 'cpu', 'avx2', 2, 1, 'linux', '6', '[]', 'dev', '{}')",
            [],
        )
        .expect("old row");
    }
    let store = Store::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let n: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM devices WHERE hostname = 'h'",
            [],
            |r| r.get(0),
        )
        .expect("kept");
    assert_eq!(n, 1, "rows written under schema 1 survive the migration");
    let parity: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM parity", [], |r| r.get(0))
        .expect("parity table exists");
    assert_eq!(parity, 0);
}

/// The read side hands reports typed values: what was written reads back as enums, a legacy
/// spelling (llama.cpp's description of a quantization) as the same quantization, and a name
/// no enum knows as an error naming the column and the stored value, never as text.
#[test]
fn stored_names_read_back_typed_and_an_unknown_one_is_named() {
    use edgebench_core::measure::StopReason;
    use edgebench_core::quant::Quant;
    use edgebench_core::run_facts::{RunOrigin, Scheduling};
    use edgebench_core::scenario::{KvType, PromptFormat};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db.sqlite");
    let mut store = Store::open(&db).expect("open");
    let run = new_run(&store, "run-1", 1);
    store.begin_run(&run).expect("begin");
    let end = RunEndRow {
        effective: Some(effective()),
        stop_reason: Some("time_budget".into()),
        ..RunEndRow::new(RunStatus::Passed, 2)
    };
    store
        .finish_run("run-1", &end, &[request(vec![7, 8])])
        .expect("finish");
    drop(store);

    let read = crate::dataset::load(&db).expect("load");
    let r = &read.runs[0];
    assert_eq!(r.stop_reason, Some(StopReason::TimeBudget));
    assert_eq!(r.scheduling, Some(Scheduling::RoundRobin));
    assert_eq!(r.prompt_format, Some(PromptFormat::Chat));
    assert_eq!(r.origin, RunOrigin::Edgebench);
    assert_eq!((r.case.type_k, r.case.type_v), (KvType::F16, KvType::F16));
    assert_eq!(r.case.quant, Quant::Q4_0);

    let set = |sql: &str| {
        Store::open(&db)
            .expect("open")
            .connection()
            .execute(sql, [])
            .expect("update");
    };
    // Imports stored llama.cpp's description before they stored names.
    set("UPDATE cases SET quant = 'Q4_K - Medium'");
    let read = crate::dataset::load(&db).expect("a legacy spelling reads");
    assert_eq!(read.runs[0].case.quant, Quant::Q4KM);

    for (sql, column, value) in [
        (
            "UPDATE runs SET scheduling = 'parallel'",
            "scheduling",
            "parallel",
        ),
        ("UPDATE cases SET type_k = 'q9_9'", "type_k", "q9_9"),
        ("UPDATE cases SET quant = 'Q4_X'", "quant", "Q4_X"),
    ] {
        set(sql);
        let err = crate::dataset::load(&db).expect_err("an unknown name");
        let message = err.to_string();
        assert!(
            message.contains(column) && message.contains(value),
            "{sql}: {message}"
        );
        set(&format!(
            "UPDATE {} SET {column} = {}",
            if column == "scheduling" {
                "runs"
            } else {
                "cases"
            },
            match column {
                "scheduling" => "'round-robin'",
                "type_k" => "'f16'",
                _ => "'Q4_0'",
            }
        ));
    }
    assert!(crate::dataset::load(&db).is_ok(), "every value restored");
}
