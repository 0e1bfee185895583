//! Runs one scenario case and stores its run: the child process the scenario harness starts for
//! every measured case, so an engine crash fails that case only (see `edgebench::isolate`).
//!
//! Usage: `edgebench-case CASE_NAME`, with `EDGEBENCH_DB`, `EDGEBENCH_RUN_ID`,
//! `EDGEBENCH_INVOCATION`, `EDGEBENCH_SMOKE` and optionally `EDGEBENCH_MODEL_HASH` set by the
//! parent. Exit 0: passed, report on stdout. Exit 1: failed, stored as failed, error on stderr.
//! Anything else is a crash, which the parent records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use edgebench::catalog::Catalog;
use edgebench::isolate::ChildReport;
use edgebench::paths;
use edgebench::runner::{self, CaseReport, Readiness, Runner};

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: edgebench-case CASE_NAME");
        return ExitCode::from(2);
    };
    match run(&name) {
        Ok(report) => {
            println!("{}", ChildReport::from(&report).to_line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(name: &str) -> Result<CaseReport> {
    let root = paths::root();
    let catalog = Catalog::load(&root)?;
    let case = catalog
        .cases
        .iter()
        .find(|c| c.name == name)
        .with_context(|| format!("no scenario case is named `{name}`"))?;
    let models_dir = paths::models_dir(&root);
    let model_path = match runner::readiness(case, &catalog.registry, &models_dir) {
        Readiness::Ready { model_path } => model_path,
        Readiness::Skip(reason) => bail!("case {name} cannot run here: {reason}"),
        Readiness::Invalid(reason) => bail!("case {name}: {reason}"),
    };
    let entry = catalog
        .registry
        .get(&case.model)
        .with_context(|| format!("model `{}` is not in models.toml", case.model))?;
    let mut runner = Runner::open(&root, &models_dir, &paths::database(&root))?;
    runner.set_smoke(std::env::var("EDGEBENCH_SMOKE").is_ok_and(|v| v == "1"));
    runner.set_fixed_stopping(std::env::var("EDGEBENCH_STOPPING").is_ok_and(|v| v == "fixed"));
    if let Ok(invocation) = std::env::var("EDGEBENCH_INVOCATION") {
        runner.set_invocation(invocation);
    }
    if let Ok(known) = std::env::var("EDGEBENCH_MODEL_HASH")
        && let Some((size, rest)) = known.split_once(':')
        && let Some((sha, path)) = rest.split_once(':')
        && let Ok(size) = size.parse()
    {
        runner.remember_model_hash(&PathBuf::from(path), size, sha.to_owned());
    }
    let run_id = std::env::var("EDGEBENCH_RUN_ID").unwrap_or_else(|_| runner::new_run_id(case));
    Ok(runner.run_case_as(&run_id, case, entry, &model_path)?)
}
