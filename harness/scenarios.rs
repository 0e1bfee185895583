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
use std::time::{Duration, Instant};

use edgebench::catalog::Catalog;
use edgebench::isolate::{self, CaseRequest, ChildCase};
use edgebench::plan::Mode;
use edgebench::preflight::{self, Readiness};
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
        eprintln!(
            "no case named (no filter, EDGEBENCH_CASES or EDGEBENCH_DB): each case runs once (smoke) into {}; `cargo test --test scenarios -- FILTER` or `cargo xtask bench` measures into {}",
            db.display(),
            paths::database(&root).display()
        );
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
                let entry = registry.get(&case.model).ok_or_else(|| Failed::from("model vanished from registry"))?;
                let (size, sha256) = {
                    let mut known = hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    match known.get(&model_path) {
                        Some(h) => h.clone(),
                        None => {
                            let h = host::model_file_hash(&model_path).map_err(|e| Failed::from(e.to_string()))?;
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
                let report = if case.backend == edgebench::core::scenario::BackendKind::Hybrid {
                    isolate::run_hybrid_in_child(&child, &host::new_run_id(&case))
                } else {
                    isolate::run_in_child(&child)
                }
                .map_err(|e| Failed::from(e.to_string()))?;
                let preview: String = report.first_output.chars().take(60).collect();
                println!(
                    "    {}{} [{}]: generation {:.1} t/s, prefill {:.1} t/s over {} requests in {} repetitions (stop: {}), {} rejected, roofline {}, memory estimate {} MiB vs peak RSS {}; run {} → {}; output: {:?}",
                    if smoke { "(smoke) " } else { "" },
                    case.name,
                    entry.label(),
                    report.generation_tokens_per_s,
                    report.prefill_tokens_per_s,
                    report.measured_requests,
                    report.measured_repetitions,
                    report.stop_reason,
                    report.rejected,
                    report.roofline_fraction.map_or("n/a".into(), |f| format!("{:.1}%", f * 100.0)),
                    report.estimated_peak_bytes >> 20,
                    report.peak_rss_bytes.map_or("n/a".into(), |p| format!(
                        "{} MiB ({:+.0}%)",
                        p >> 20,
                        report.memory_estimate_error_pct().unwrap_or(f64::NAN)
                    )),
                    report.run_id,
                    db.display(),
                    preview
                );
                if let Some(a) = &report.accuracy {
                    println!(
                        "    accuracy: acc {:.1}% ± {:.1} (n = {}), acc_norm {:.1}%, macro {:.1}%",
                        100.0 * a.acc,
                        100.0 * a.acc_stderr,
                        a.n,
                        100.0 * a.acc_norm,
                        100.0 * a.macro_acc
                    );
                }
                Ok(Completion::Completed)
                };
                let result = run_trial();
                let ran = matches!(&result, Ok(Completion::Completed) | Err(_));
                let line = progress
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .finished(ran, started.elapsed());
                println!("    {line}");
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

/// Cases done out of the selected total, and an estimate of the time left from the cases that
/// ran so far (ignored ones take no time).
struct Progress {
    total: usize,
    done: usize,
    ran: usize,
    ran_time: Duration,
    since: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            ran: 0,
            ran_time: Duration::ZERO,
            since: Instant::now(),
        }
    }

    /// Counts one finished case; the line to print.
    fn finished(&mut self, ran: bool, took: Duration) -> String {
        self.done += 1;
        if ran {
            self.ran += 1;
            self.ran_time += took;
        }
        let left = self.total.saturating_sub(self.done);
        let estimate = if left == 0 {
            String::new()
        } else if self.ran == 0 {
            ", time left: unknown yet".to_owned()
        } else {
            let per_case = self.ran_time.as_secs_f64() / self.ran as f64;
            format!(", about {} left", minutes(per_case * left as f64))
        };
        format!(
            "[{}/{} cases done, {} elapsed{estimate}]",
            self.done,
            self.total.max(self.done),
            minutes(self.since.elapsed().as_secs_f64())
        )
    }
}

fn minutes(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        format!(
            "{:.0} min {:02.0} s",
            (seconds / 60.0).floor(),
            seconds % 60.0
        )
    }
}
