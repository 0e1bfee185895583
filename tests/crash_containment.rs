//! Crash containment with a real engine in a real child process: a case whose process aborts
//! (fault injection right after the model loads, as a failed llama.cpp assert would) is stored as
//! `aborted` with its stderr, and the next case in the same database still passes.

mod common;

use std::path::Path;

use edgebench::isolate::{ChildCase, ChildError, FAULT_ENV, run_in_child};
use edgebench::runner;
use edgebench::store::{RunStatus, Store};

const EXE: &str = env!("CARGO_BIN_EXE_edgebench-case");
const CASE: &str = "code_generation::phi-4-mini-twin16::Q4_0::llama_cpp::c1";

fn child<'a>(
    name: &'a str,
    run_id: &'a str,
    db: &'a Path,
    env: &'a [(&'a str, &'a str)],
) -> ChildCase<'a> {
    ChildCase {
        exe: Path::new(EXE),
        case_name: name,
        run_id,
        invocation: "crash-test",
        db,
        smoke: true,
        model_hash: None,
        env,
    }
}

#[test]
fn an_aborting_case_fails_alone_and_is_stored_as_aborted() {
    if common::model("phi-4-mini-twin16", "Q4_0").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let fault = format!("abort:{CASE}");
    let env = [(FAULT_ENV, fault.as_str())];

    let crashed_id = "crash-run-1";
    let err = run_in_child(&child(CASE, crashed_id, &db, &env)).expect_err("the child aborts");
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
    let report = run_in_child(&child(CASE, passed_id, &db, &[])).expect("passes");
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
    let id = runner::new_invocation_id();
    let err = run_in_child(&child("no_such::case", &id, &db, &[])).expect_err("unknown case");
    assert!(
        matches!(&err, ChildError::Failed { message } if message.contains("no scenario case is named `no_such::case`")),
        "{err}"
    );
}

#[test]
fn a_truncated_model_file_fails_its_case_with_the_offset_on_both_engines() {
    let Some(original) = common::model("mimo-7b-twin16", "Q4_0") else {
        return;
    };
    let models = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(&original).expect("read");
    let twin_dir = models.path().join("twins");
    std::fs::create_dir_all(&twin_dir).expect("dir");
    let truncated = twin_dir.join(original.file_name().expect("name"));
    // Cut inside the tensor table: llama.cpp would read garbage offsets from here.
    std::fs::write(&truncated, &bytes[..bytes.len().min(20_000)]).expect("write");
    let models_env = models.path().display().to_string();
    let env = [("EDGEBENCH_MODELS", models_env.as_str())];
    let db = models.path().join("results.sqlite");
    for backend in ["llama_cpp", "candle"] {
        let case = format!("code_generation::mimo-7b-twin16::Q4_0::{backend}::c1");
        let err =
            run_in_child(&child(&case, "truncated-run", &db, &env)).expect_err("invalid model");
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
