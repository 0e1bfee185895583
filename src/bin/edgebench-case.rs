//! Runs one scenario case and stores its run: the child process the scenario harness starts for
//! every measured case, so an engine crash fails that case only (see `edgebench::isolate`).
//!
//! Reads one `CaseRequest` (JSON) on stdin: the case, its model file as the parent's preflight
//! found it, and where to record the run. Exit 0: passed, report on stdout. Exit 1: failed,
//! stored as failed (when it got that far), error on stderr. Anything else is a crash, which the
//! parent records.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use edgebench::isolate::{self, CaseRequest};
use edgebench::outcome::CaseReport;
use edgebench::runner::Runner;

fn main() -> ExitCode {
    match run() {
        Ok(report) => {
            println!("{}", isolate::report_line(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<CaseReport> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the case request on stdin")?;
    let request: CaseRequest = serde_json::from_str(&input).context(
        "edgebench-case reads a JSON case request on stdin (it is started by the scenario harness)",
    )?;
    let (case, entry) = request.case()?;
    // The file may have changed since the parent looked: no engine sees a malformed one. (The
    // vocabulary and the engine's load check it again, free: once per process.)
    edgebench_backend::check_model_file(&request.model_path)
        .map_err(|e| anyhow!("case {}: {e}", case.name))?;
    let models_dir = edgebench::paths::models_dir(&request.root);
    let mut runner = Runner::open(&request.root, &models_dir, &request.db)?;
    runner.set_mode(request.mode);
    runner.set_invocation(request.invocation.clone());
    runner.set_device_down(request.device_down.clone());
    runner.remember_model_hash(
        &request.model_path,
        request.model_size,
        request.model_sha256.clone(),
    );
    Ok(runner.run_case_as(&request.run_id, &case, &entry, &request.model_path)?)
}
