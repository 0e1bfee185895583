//! Crash containment with a real engine in a real child process: a case whose process aborts
//! (fault injection right after the model loads, as a failed llama.cpp assert would) is stored as
//! `aborted` with its stderr, and the next case in the same database still passes.

use crate::common;

use std::path::Path;

use edgebench::fault::FAULT_ENV;
use edgebench::isolate::{ChildError, run_in_child};
use edgebench::store::{RunStatus, Store};

use common::{child_case as child, smoke_request as request};

const CASE: &str = "code_generation::phi-4-mini-twin16::Q4_0::llama_cpp::c1";

#[test]
fn an_aborting_case_fails_alone_and_is_stored_as_aborted() {
    common::model("phi-4-mini-twin16", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let fault = format!("abort:{CASE}");
    let env = [(FAULT_ENV, fault.as_str())];

    let crashed_id = "crash-run-1";
    let err =
        run_in_child(&child(&request(CASE, crashed_id, &db), &env)).expect_err("the child aborts");
    match &err {
        ChildError::Crashed {
            run_id,
            reason,
            stderr_tail,
        } => {
            assert_eq!(run_id, crashed_id);
            assert!(reason.contains("signal 6"), "{reason}");
            assert!(stderr_tail.contains(FAULT_ENV), "{stderr_tail}");
        }
        other => panic!("expected a crash, got {other}"),
    }

    // The same case without the fault, in the same database, passes.
    let passed_id = "crash-run-2";
    let report = run_in_child(&child(&request(CASE, passed_id, &db), &[])).expect("passes");
    assert_eq!(report.run_id, passed_id);
    assert!(report.generation_tokens_per_s > 0.0);

    let store = Store::open(&db).expect("open");
    assert_eq!(store.count_runs(RunStatus::Aborted).expect("count"), 1);
    assert_eq!(store.count_runs(RunStatus::Passed).expect("count"), 1);
    let (status, error) = store.run_status(crashed_id).expect("query").expect("row");
    assert_eq!(status, "aborted");
    assert!(error.unwrap_or_default().contains("SIGABRT"));
    // The crashed run wrote no half-finished samples; the passed one wrote all of its own.
    let samples: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE run_id = ?1",
            [crashed_id],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(samples, 0);
}

#[test]
fn a_failing_case_reports_its_error_and_an_unknown_case_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    common::model("phi-4-mini-twin16", "Q4_0");
    let mut unknown = request(CASE, "unknown-case-run", &db);
    unknown.case_name = "no_such::case".into();
    let err = run_in_child(&child(&unknown, &[])).expect_err("unknown case");
    assert!(
        matches!(&err, ChildError::Failed { message } if message.contains("no scenario case is named `no_such::case`")),
        "{err}"
    );
}

#[test]
fn a_truncated_model_file_fails_its_case_with_the_offset_on_both_engines() {
    let original = common::model("mimo-7b-twin16", "Q4_0");
    let models = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(&original).expect("read");
    let twin_dir = models.path().join("twins");
    std::fs::create_dir_all(&twin_dir).expect("dir");
    let truncated = twin_dir.join(original.file_name().expect("name"));
    // Cut inside the tensor table: llama.cpp would read garbage offsets from here.
    std::fs::write(&truncated, &bytes[..bytes.len().min(20_000)]).expect("write");
    let db = models.path().join("results.sqlite");
    for backend in ["llama_cpp", "candle"] {
        let case = format!("code_generation::mimo-7b-twin16::Q4_0::{backend}::c1");
        // The file changed after the parent's preflight: the child validates it again before
        // any engine opens it.
        let mut req = request(&case, "truncated-run", &db);
        req.model_path.clone_from(&truncated);
        let err = run_in_child(&child(&req, &[])).expect_err("invalid model");
        match &err {
            ChildError::Failed { message } => {
                assert!(
                    message.contains("mimo-7b-twin16-Q4_0.gguf") && message.contains("byte offset"),
                    "{backend}: {message}"
                );
            }
            other => panic!("{backend}: expected a clean failure, got {other}"),
        }
    }
}

fn count_runs(db: &Path, run_id: &str, status: &str) -> i64 {
    Store::open(db)
        .expect("open")
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE id = ?1 AND status = ?2",
            [run_id, status],
            |r| r.get(0),
        )
        .expect("count")
}

#[test]
fn a_locked_results_database_keeps_the_run_in_the_fallback_file_and_ingest_brings_it_back() {
    common::model("phi-4-mini-twin16", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shared.sqlite");
    let fallback = dir.path().join("fallback.sqlite");
    drop(Store::open(&db).expect("create"));
    let fallback_env = fallback.display().to_string();

    // 1. Locked before the case starts: nothing reaches the shared database, all of it the
    //    fallback.
    let holder = rusqlite::Connection::open(&db).expect("holder");
    holder.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let env = [
        ("EDGEBENCH_BUSY_TIMEOUT_MS", "300"),
        ("EDGEBENCH_FALLBACK_DB", fallback_env.as_str()),
    ];
    let report = run_in_child(&child(&request(CASE, "locked-from-the-start", &db), &env))
        .expect("case passes");
    assert_eq!(report.run_id, "locked-from-the-start");
    holder.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(count_runs(&db, "locked-from-the-start", "passed"), 0);
    assert_eq!(count_runs(&fallback, "locked-from-the-start", "passed"), 1);

    // 2. Locked while the case runs: its `running` row is in the shared database, the finished
    //    run only in the fallback.
    let pause = format!("pause:{CASE}:2500");
    let env = [
        ("EDGEBENCH_BUSY_TIMEOUT_MS", "300"),
        ("EDGEBENCH_FALLBACK_DB", fallback_env.as_str()),
        (FAULT_ENV, pause.as_str()),
    ];
    let mid_run = request(CASE, "locked-mid-run", &db);
    let child_case = child(&mid_run, &env);
    let locker = std::thread::scope(|scope| {
        let runner = scope.spawn(|| run_in_child(&child_case));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while count_runs(&db, "locked-mid-run", "running") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the run never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let holder = rusqlite::Connection::open(&db).expect("holder");
        holder
            .execute_batch("BEGIN IMMEDIATE")
            .expect("lock mid-run");
        let outcome = runner.join().expect("join");
        holder.execute_batch("ROLLBACK").expect("unlock");
        outcome
    });
    locker.expect("the case passes though its database was locked");
    assert_eq!(count_runs(&db, "locked-mid-run", "passed"), 0);
    assert_eq!(count_runs(&fallback, "locked-mid-run", "passed"), 1);

    // Ingesting the fallback completes the shared database: both runs, passed, with requests.
    let summary = Store::open(&db)
        .expect("open")
        .ingest(&fallback)
        .expect("ingest");
    // One run added, the other completed (the records beyond are the fallback's device facts).
    assert_eq!(summary.completed, 1, "{summary}");
    assert!(summary.added >= 1, "{summary}");
    for id in ["locked-from-the-start", "locked-mid-run"] {
        assert_eq!(count_runs(&db, id, "passed"), 1, "{id}");
    }
    let requests: i64 = Store::open(&db)
        .expect("open")
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE run_id = 'locked-mid-run'",
            [],
            |r| r.get(0),
        )
        .expect("requests");
    assert!(requests > 0);
}

#[cfg(unix)]
#[test]
fn a_read_only_results_database_is_named_and_the_run_lands_in_the_fallback_file() {
    use std::os::unix::fs::PermissionsExt;
    common::model("phi-4-mini-twin16", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let db = dir.path().join("shared.sqlite");
    drop(Store::open(&db).expect("create"));
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", db.display());
        if Path::new(&p).exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        }
    }
    let fallback = dir.path().join("fallback.sqlite");
    // Root ignores file modes: run the case as `nobody`, for whom the file is read-only. The
    // checkout may be private (a clone under /root is 0700), so everything the child needs
    // (its executable, the model, the dataset) is copied where `nobody` can read it.
    let mut req = request(CASE, "read-only-run", &db);
    let case_root = dir.path().join("checkout");
    let dataset = req.case().expect("case").0.scenario.dataset.clone();
    let copied_dataset = case_root.join(&dataset);
    std::fs::create_dir_all(copied_dataset.parent().expect("dataset dir")).expect("mkdir");
    std::fs::copy(edgebench::paths::root().join(&dataset), &copied_dataset).expect("copy dataset");
    let model = case_root.join("model.gguf");
    std::fs::copy(&req.model_path, &model).expect("copy model");
    let exe = dir.path().join("edgebench-case");
    std::fs::copy(common::CASE_EXE, &exe).expect("copy executable");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    req.root = case_root;
    req.model_path = model;
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut cmd = if as_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    };
    let mut child = cmd
        .env("EDGEBENCH_FALLBACK_DB", &fallback)
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the case");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(serde_json::to_string(&req).expect("json").as_bytes())
            .expect("send the request");
    }
    let out = child.wait_with_output().expect("case output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&db.display().to_string()) && stderr.contains("readonly"),
        "the error names the database and the cause: {stderr}"
    );
    assert!(stderr.contains(&fallback.display().to_string()), "{stderr}");
    assert_eq!(count_runs(&fallback, "read-only-run", "passed"), 1);
}
