//! The scenario harness: every case of every `scenarios/*.toml` becomes one libtest-mimic trial,
//! so `cargo test --test scenarios -- long_context` runs the matching cases and
//! `--list --format terse` lets nextest drive it.
//!
//! Cases that cannot run here (model file absent, device or engine not built, over the memory
//! budget) are reported as ignored with the reason. Measured cases run one at a time, each in
//! its own `edgebench-case` process so an engine crash fails that case only.
//! `EDGEBENCH_CASES` (comma-separated globs, `*` and `?`) narrows the cases further.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use edgebench::catalog::Catalog;
use edgebench::display::{self, HarnessEvent};
use edgebench::isolate::{self, CaseRequest, ChildCase};
use edgebench::plan::Mode;
use edgebench::preflight::{self, Readiness};
use edgebench::progress::Progress;
use edgebench::{host, paths};
use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Trials running side by side on the same cores would distort each other's timings.
    args.test_threads = Some(1);

    let root = paths::root();
    let catalog = match Catalog::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let models_dir = paths::models_dir(&root);
    // EDGEBENCH_CASES (set by `cargo xtask nightly --scenarios`): comma-separated globs over
    // case names, on top of libtest's own substring filter.
    let selected = std::env::var(edgebench_settings::CASES_ENV).unwrap_or_default();
    // A plain `cargo test` (no filter, no case list, no database named) is a test run, not a
    // benchmark: each case runs once (smoke) into a scratch database under target/, never into
    // the user's results. Naming cases (a filter, EDGEBENCH_CASES) or a database measures.
    let target = edgebench_settings::harness_target(
        &root,
        args.filter.is_some(),
        &selected,
        std::env::var_os(edgebench_settings::DB_ENV).as_deref(),
    );
    let (db, plain_test) = (target.database, target.plain_test);
    if edgebench_store::postgres::is_connection_string(&db.to_string_lossy()) {
        eprintln!(
            "error: EDGEBENCH_DB names a PostgreSQL database; cases write to a local SQLite file \
             (unset EDGEBENCH_DB or point it at a file), and `cargo xtask nightly --db <conninfo>` \
             or `cargo xtask ingest --db <conninfo> FILE` moves the runs there"
        );
        return ExitCode::from(2);
    }
    // EDGEBENCH_SMOKE=1 (set by `cargo xtask test`) runs each case once to check it works;
    // such runs are stored as `mode = 'smoke'` and are not measurements.
    let mode = Mode {
        smoke: Mode::from_env().smoke || plain_test,
        ..Mode::from_env()
    };
    let smoke = mode.smoke;
    if plain_test && !args.list {
        show(&HarnessEvent::PlainTest {
            scratch_db: &db,
            results_db: &paths::database(&root),
        });
    }
    // One night of `nightly --processes K` is K harness processes under one invocation id.
    let invocation = Arc::new(host::invocation_id(
        std::env::var(edgebench_settings::INVOCATION_ENV).ok(),
    ));
    // Model files hashed once per invocation, not once per case process.
    let hashes: Arc<Mutex<HashMap<PathBuf, (u64, String)>>> = Arc::default();
    let child_exe = PathBuf::from(env!("CARGO_BIN_EXE_edgebench-case"));

    let catalog = Arc::new(catalog);
    let chosen: Vec<_> = catalog
        .cases
        .iter()
        .filter(|case| edgebench_core::glob::matches_any(&selected, &case.name))
        .cloned()
        .collect();
    // Cases done / total with an estimate of the time left, after every case.
    let run_started = Instant::now();
    let progress = Arc::new(Mutex::new(Progress::new(
        chosen
            .iter()
            .filter(|c| libtest_selects(&args, &c.name))
            .count(),
    )));
    let trials = chosen
        .into_iter()
        .map(|case| {
            let (catalog, hashes, invocation, child_exe, models_dir, db, progress) = (
                Arc::clone(&catalog),
                Arc::clone(&hashes),
                Arc::clone(&invocation),
                child_exe.clone(),
                models_dir.clone(),
                db.clone(),
                Arc::clone(&progress),
            );
            Trial::ignorable_test(case.name.clone(), move || {
                let started = Instant::now();
                let run_trial = || -> Result<Completion, Failed> {
                    let registry = &catalog.registry;
                    let model_path = match preflight::readiness(&case, registry, &models_dir) {
                        Readiness::Skip(reason) => return Ok(Completion::ignored_with(reason)),
                        Readiness::Invalid(reason) => return Err(Failed::from(reason)),
                        Readiness::Ready { model_path } => model_path,
                    };
                    let entry = registry
                        .get(&case.model)
                        .ok_or_else(|| Failed::from("model vanished from registry"))?;
                    let (size, sha256) = {
                        let mut known = hashes
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        match known.get(&model_path) {
                            Some(h) => h.clone(),
                            None => {
                                let h = host::model_file_hash(&model_path)
                                    .map_err(|e| Failed::from(e.to_string()))?;
                                known.insert(model_path.clone(), h.clone());
                                h
                            }
                        }
                    };
                    // Each case runs in its own process: an engine abort fails this case only.
                    let run_id = host::new_run_id(&case);
                    let request = CaseRequest::new(
                        &catalog,
                        &case,
                        (&model_path, size, &sha256),
                        &run_id,
                        &invocation,
                        &db,
                        mode,
                    );
                    let child = ChildCase {
                        exe: &child_exe,
                        request: &request,
                        env: &[],
                    };
                    // A hybrid case survives its on-device engine crashing: the cloud answers.
                    let report =
                        if case.backend == edgebench::core::scenario::BackendKind::Hybrid {
                            isolate::run_hybrid_in_child(&child, &host::new_run_id(&case))
                        } else {
                            isolate::run_in_child(&child)
                        }
                        .map_err(|e| Failed::from(e.to_string()))?;
                    show(&HarnessEvent::CasePassed {
                        case: &case.name,
                        model_label: &entry.label(),
                        smoke,
                        report: &report,
                        db: &db,
                    });
                    Ok(Completion::Completed)
                };
                let result = run_trial();
                let ran = matches!(&result, Ok(Completion::Completed) | Err(_));
                let event = progress
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .finished(ran, started.elapsed(), run_started.elapsed());
                show(&event);
                result
            })
        })
        .collect();

    libtest_mimic::run(&args, trials).exit_code()
}

/// Whether libtest's own filter (substring or `--exact`, and `--skip`) selects `name`.
fn libtest_selects(args: &Arguments, name: &str) -> bool {
    let matches = |pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// Prints what the displayer makes of `event` (stdout: libtest captures it with the trial's).
fn show(event: &HarnessEvent<'_>) {
    for line in display::render(event) {
        println!("{line}");
    }
}
