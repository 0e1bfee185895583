//! `cargo xtask nightly`, `ingest`, `export` and `import-llama-bench` as a lab uses them: real
//! `xtask` processes against one shared database file. The nightly runs here ingest results
//! measured beforehand (`--results-from`), so the test needs no engine; the suite step is
//! `cargo test --test scenarios`, which a test cannot start while cargo runs it.

#[path = "../../../crates/store/tests/lab/cluster.rs"]
mod cluster;
mod lab_year;
mod on_postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgebench_store::{
    CaseRow, DeviceRow, ModelRow, NewRunRow, RequestRow, RunEndRow, RunStatus, Store,
};

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

fn device(fingerprint: &str) -> DeviceRow {
    DeviceRow {
        fingerprint: fingerprint.to_owned(),
        hostname: format!("lab-{}", &fingerprint[..4]),
        cpu_model: "lab cpu".into(),
        cpu_features: "neon".into(),
        cores_physical: Some(8),
        cores_logical: 8,
        ram_bytes: 8 << 30,
        os: "android".into(),
        kernel: "6".into(),
        engine_builds: "[]".into(),
        build_profile: "release".into(),
        details: "{}".into(),
    }
}

fn case() -> CaseRow {
    CaseRow {
        case_key: "nightly-case".into(),
        threads: 4,
        context: 1024,
        prompt_tokens: 128,
        generate_tokens: 33,
        ..CaseRow::named("code_generation::phi-4-mini-twin16::Q4_0::llama_cpp::c1")
    }
}

/// One night's local database for one device: a measured run whose 12 requests decode 32
/// tokens in about `decode_ms` each.
fn night(dir: &Path, name: &str, fingerprint: &str, night: i64, decode_ms: f64) -> PathBuf {
    let path = dir.join(format!("{name}.sqlite"));
    let mut store = Store::open(&path).expect("open");
    let device_id = store.upsert_device(&device(fingerprint)).expect("device");
    let model_id = store
        .upsert_model(&ModelRow {
            sha256: "ab".repeat(32),
            registry_id: "phi-4-mini-twin16".into(),
            label: "phi-4-mini (twin 1/16)".into(),
            origin: "twin".into(),
            quant: "Q4_0".into(),
            gguf_arch: "phi3".into(),
            size_bytes: 1 << 20,
            path: "models/twins/phi.gguf".into(),
        })
        .expect("model");
    let case_id = store.upsert_case(&case()).expect("case");
    let started_at_ms = 1_795_564_800_000 + night * 86_400_000;
    let id = format!("{name}-run");
    store
        .begin_run(&NewRunRow {
            id: id.clone(),
            invocation: format!("{name}-invocation"),
            case_id,
            device_id,
            model_id: Some(model_id),
            started_at_ms,
            tool_version: "test".into(),
            git_commit: "test".into(),
            scenario_file: "scenarios/code_generation.toml".into(),
            scenario_sha256: "00".into(),
            seed: 1,
            warmup: 0,
            repetitions: 3,
            host: "lab".into(),
            pid: 1,
            mode: "measure".into(),
        })
        .expect("begin");
    let requests: Vec<RequestRow> = (0..12u32)
        .map(|i| {
            // ±3% spread, so the comparison has real variance to judge.
            let jitter = 1.0 + (f64::from(i % 5) - 2.0) * 0.015;
            let decode_ns = (decode_ms * jitter * 1e6) as u64;
            RequestRow {
                repetition: i / 4,
                warmup: false,
                request_index: i,
                prompt_id: format!("p{}", i % 4),
                turn: 0,
                seq: 0,
                prompt_tokens: 128,
                generated_tokens: 33,
                queue_ns: 0,
                prefill_ns: 5_000_000,
                ttft_ns: 5_000_000,
                decode_ns,
                e2e_ns: 5_000_000 + decode_ns,
                reset_ns: 0,
                status: "completed".into(),
                priority: "normal".into(),
                sent_ns: 0,
                output_sha256: "00".into(),
                output_text: "fn main() {}".into(),
                token_latencies_ns: vec![decode_ns / 32; 32],
                source: None,
                fallback_reason: None,
                fallback_ns: None,
                cost_usd: None,
                error: None,
            }
        })
        .collect();
    store
        .finish_run(
            &id,
            &RunEndRow {
                load_ms: Some(10.0),
                stop_reason: Some("fixed".into()),
                ..RunEndRow::new(RunStatus::Passed, started_at_ms + 1000)
            },
            &requests,
        )
        .expect("finish");
    path
}

fn nightly(shared: &Path, local: &Path, out: &Path) -> std::process::Child {
    xtask()
        .args(["nightly", "--db"])
        .arg(shared)
        .arg("--results-from")
        .arg(local)
        .args(["--fail-on-regression", "10", "--out"])
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start xtask nightly")
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().expect("xtask nightly")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn two_nightly_processes_share_one_database_and_a_regression_fails_the_night() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("shared.sqlite");
    let out = dir.path().join("reports");
    let (a, b) = ("aaaa1111", "bbbb2222");

    // Night 1: two devices at once, nothing to compare with yet.
    let a1 = night(dir.path(), "a-night1", a, 0, 100.0);
    let b1 = night(dir.path(), "b-night1", b, 0, 100.0);
    let (pa, pb) = (nightly(&shared, &a1, &out), nightly(&shared, &b1, &out));
    for o in [finish(pa), finish(pb)] {
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("1 added"), "{}", text(&o));
    }

    // Night 2, again at once: device A as fast as before, device B twice as slow.
    let a2 = night(dir.path(), "a-night2", a, 1, 101.0);
    let b2 = night(dir.path(), "b-night2", b, 1, 200.0);
    let (pa, pb) = (nightly(&shared, &a2, &out), nightly(&shared, &b2, &out));
    let (oa, ob) = (finish(pa), finish(pb));
    assert!(
        oa.status.success(),
        "device A did not regress: {}",
        text(&oa)
    );
    assert_eq!(
        ob.status.code(),
        Some(2),
        "device B regressed: {}",
        text(&ob)
    );
    assert!(
        text(&ob).contains("regressed by more than 10%"),
        "{}",
        text(&ob)
    );

    // The same night again adds nothing: ingest is idempotent.
    let again = finish(nightly(&shared, &a2, &out));
    assert!(
        text(&again).contains("0 added, 0 completed, 1 already present"),
        "{}",
        text(&again)
    );

    let store = Store::open(&shared).expect("open");
    let runs: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .expect("count");
    assert_eq!(runs, 4);
    let ok: String = store
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok");

    // Export the shared database and ingest the export elsewhere: the same four runs.
    let export = dir.path().join("shared.jsonl");
    let o = xtask()
        .args(["export", "--format", "jsonl", "--db"])
        .arg(&shared)
        .arg("--out")
        .arg(&export)
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o));
    let copy = dir.path().join("copy.sqlite");
    let o = xtask()
        .args(["ingest", "--db"])
        .arg(&copy)
        .arg(&export)
        .output()
        .expect("ingest");
    assert!(
        o.status.success() && text(&o).contains("4 added"),
        "{}",
        text(&o)
    );
    let o = xtask()
        .args([
            "export",
            "--format",
            "md",
            "--since",
            "2026-11-26",
            "--until",
            "2026-11-26",
            "--db",
        ])
        .arg(&copy)
        .output()
        .expect("export md");
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        md.lines().filter(|l| l.contains("-night2-run")).count(),
        2,
        "{md}"
    );
    assert_eq!(
        md.lines().filter(|l| l.contains("-night1-run")).count(),
        0,
        "{md}"
    );
}

#[test]
fn a_shared_database_that_refuses_the_night_keeps_the_local_results_and_says_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = night(dir.path(), "night", "cccc3333", 0, 100.0);
    // A directory where the database file should be: SQLite cannot open it.
    let shared = dir.path().join("shared.sqlite");
    std::fs::create_dir(&shared).expect("dir");
    let o = finish(nightly(&shared, &local, &dir.path().join("out")));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains(&shared.display().to_string()) && t.contains(&local.display().to_string()),
        "{t}"
    );
    assert!(
        Store::open(&local)
            .expect("local intact")
            .run_status("night-run")
            .expect("status")
            .is_some()
    );
}

#[test]
fn llama_bench_output_is_imported_through_xtask_and_bad_arguments_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/store/tests/fixtures/llama-bench.json");
    let o = xtask()
        .args(["import-llama-bench", "--host", "pixel-8", "--db"])
        .arg(&db)
        .arg(&fixture)
        .output()
        .expect("import");
    assert!(
        o.status.success() && text(&o).contains("2 added"),
        "{}",
        text(&o)
    );
    let o = xtask()
        .args(["export", "--format", "csv", "--db"])
        .arg(&db)
        .output()
        .expect("export csv");
    let csv = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        csv.lines()
            .filter(|l| l.contains("imported:llama-bench"))
            .count(),
        2,
        "{csv}"
    );

    let o = xtask()
        .args(["export", "--format", "xml", "--db"])
        .arg(&db)
        .output()
        .expect("xml");
    // A usage error exits 1, never 2 (which means "regressed").
    assert!(
        o.status.code() == Some(1) && text(&o).contains("invalid value 'xml' for '--format"),
        "{}",
        text(&o)
    );
    let o = xtask()
        .args(["nightly", "--results-from", "x"])
        .output()
        .expect("no db");
    assert!(
        o.status.code() == Some(1)
            && text(&o).contains("required arguments were not provided")
            && text(&o).contains("--db <CONNINFO|PATH>"),
        "{}",
        text(&o)
    );
}

#[test]
fn report_fail_on_regression_exits_2_only_past_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let store = Store::open(&db).expect("open");
    for (name, night_index, decode_ms) in [("r1", 0, 100.0), ("r2", 1, 150.0)] {
        let local = night(dir.path(), name, "dddd4444", night_index, decode_ms);
        store.ingest(&local).expect("ingest");
    }
    drop(store);
    let report = |pct: &str| {
        xtask()
            .args(["report", "--db"])
            .arg(&db)
            .arg("--out")
            .arg(dir.path().join(format!("report-{pct}")))
            .args(["--fail-on-regression", pct])
            .output()
            .expect("xtask report")
    };
    // Decoding 50% slower: a regression past 10%, none past 80%.
    let past = report("10");
    assert_eq!(past.status.code(), Some(2), "{}", text(&past));
    assert!(
        text(&past).contains("regressed by more than 10%"),
        "{}",
        text(&past)
    );
    assert!(dir.path().join("report-10/index.html").is_file());
    let within = report("80");
    assert!(within.status.success(), "{}", text(&within));
}

/// The suite branch of `nightly` (no `--results-from`): it runs the scenario harness through
/// cargo into a local database, then ingests and compares. A stand-in for cargo (the `CARGO`
/// variable xtask honours) plays the suite: it records how it was called, writes a night's
/// results where it was told to, and fails as a suite with a failed case does. The night is
/// ingested all the same, and the failed case makes nightly exit 1.
#[cfg(unix)]
#[test]
fn nightly_runs_the_suite_into_a_local_file_and_a_failed_case_fails_the_night() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let prepared = night(dir.path(), "prepared", "eeee5555", 0, 100.0);
    let calls = dir.path().join("calls.txt");
    let fake_cargo = dir.path().join("fake-cargo");
    std::fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\necho \"$* | $EDGEBENCH_CASES\" >> '{}'\ncp '{}' \"$EDGEBENCH_DB\"\nexit 101\n",
            calls.display(),
            prepared.display()
        ),
    )
    .expect("write the stand-in");
    std::fs::set_permissions(&fake_cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let shared = dir.path().join("shared.sqlite");
    let out = dir.path().join("nightly");
    let o = xtask()
        .args(["nightly", "--db"])
        .arg(&shared)
        .args(["--scenarios", "code_generation::*::llama_cpp::*"])
        .arg("--out")
        .arg(&out)
        .env("CARGO", &fake_cargo)
        .output()
        .expect("xtask nightly");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("some cases failed"), "{}", text(&o));
    let called = std::fs::read_to_string(&calls).expect("the suite ran");
    assert_eq!(
        called.trim(),
        "test --test scenarios | code_generation::*::llama_cpp::*"
    );
    // The local file sits under --out (never in the user's results/), and was ingested.
    let locals: Vec<_> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sqlite"))
        .collect();
    assert_eq!(locals.len(), 1, "{locals:?}");
    assert!(
        Store::open(&shared)
            .expect("shared")
            .run_status("prepared-run")
            .expect("status")
            .is_some(),
        "the night was ingested though a case failed"
    );
}

#[test]
fn calibrate_stores_each_cases_between_run_spread_and_the_report_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.sqlite");
    let store = Store::open(&db).expect("open");
    // Ten runs of unchanged code whose medians move by a few percent.
    for (i, wobble) in [0.0, 2.0, -1.5, 1.0, -2.5, 0.5, 3.0, -1.0, 1.5, -0.5]
        .into_iter()
        .enumerate()
    {
        let local = night(
            dir.path(),
            &format!("c{i}"),
            "eeee5555",
            i as i64,
            100.0 + wobble,
        );
        store.ingest(&local).expect("ingest");
    }
    drop(store);
    let o = xtask()
        .args(["calibrate", "--from-runs-since", "2026-11-01", "--db"])
        .arg(&db)
        .arg("nightly-case")
        .output()
        .expect("calibrate");
    // The filter is on case names: this one matches none.
    assert!(
        !o.status.success() && text(&o).contains("no measured runs"),
        "{}",
        text(&o)
    );
    let o = xtask()
        .args(["calibrate", "--from-runs-since", "2026-11-01", "--db"])
        .arg(&db)
        .arg("code_generation::phi")
        .output()
        .expect("calibrate");
    assert!(o.status.success(), "{}", text(&o));
    let table = text(&o);
    let generation = table
        .lines()
        .find(|l| l.contains("| generation tokens/s | 10 |"))
        .unwrap_or_else(|| panic!("{table}"));
    // Decode time ±3% → generation speed a few percent apart; the simulation ran.
    assert!(generation.contains('%'), "{generation}");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let (rows, spread, simulated): (i64, f64, Option<f64>) = conn
        .query_row(
            "SELECT COUNT(*), MAX(robust_spread), MIN(false_alerts_per_100) FROM calibrations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("calibrations");
    assert_eq!(rows, 3, "one per regression metric");
    assert!(spread > 0.0 && spread < 0.1, "{spread}");
    assert!(simulated.is_some());

    let out = dir.path().join("report");
    let o = xtask()
        .args(["report", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("report");
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("json"))
            .expect("parse");
    let shown = json["regressions"]["calibrations"]
        .as_array()
        .expect("array");
    assert_eq!(shown.len(), 3, "{shown:?}");

    // Nothing to calibrate and nothing named: a usage error that says what is missing.
    let o = xtask().args(["calibrate"]).output().expect("calibrate");
    assert!(
        o.status.code() == Some(1) && text(&o).contains("<FILTERS>"),
        "{}",
        text(&o)
    );
}
