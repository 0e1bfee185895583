//! Crash containment: every measured case runs in a child process (`edgebench-case`), so an
//! engine that aborts (llama.cpp calls `abort()` on failed asserts) fails that case only.
//!
//! The parent chooses the run id before starting the child. The child records the run as usual;
//! when it dies without finishing, the parent marks the run `aborted` with the exit signal and
//! the tail of the child's stderr, and the harness moves on to the next case.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use edgebench_core::{Case, ModelEntry, Registry, Scenario};

use crate::catalog::Catalog;
use crate::outcome::CaseReport;
use crate::plan::Mode;

/// Marks the child's one line of JSON on stdout.
const REPORT_PREFIX: &str = "EDGEBENCH_CASE_REPORT ";
/// How much of a crashed child's stderr is kept.
const STDERR_TAIL_BYTES: usize = 4096;

/// Version of [`CaseRequest`]; a child refuses any other.
pub const CASE_REQUEST_FORMAT: u32 = 2;

/// What the parent sends its child on stdin: the case (as the scenario text it was expanded
/// from, with its name), the model file the parent's preflight found and hashed, and where and
/// how to record the run. The child re-reads no file and re-runs no preflight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRequest {
    pub format: u32,
    pub root: PathBuf,
    pub db: PathBuf,
    pub run_id: String,
    pub invocation: String,
    pub mode: Mode,
    /// `models.toml` as the parent read it: (name in messages, text).
    pub registry: (String, String),
    /// The scenario file as the parent read it: (name in messages, text).
    pub scenario: (String, String),
    pub case_name: String,
    pub model_path: PathBuf,
    pub model_size: u64,
    pub model_sha256: String,
    /// A hybrid case whose previous process crashed on the device: why (format 2). Every
    /// request then goes to the cloud with this reason.
    pub device_down: Option<String>,
}

impl CaseRequest {
    /// The request for `case` of `catalog`, whose model file (from the preflight) is
    /// `model_path` with `size` bytes and digest `sha256`.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        catalog: &Catalog,
        case: &Case,
        (model_path, size, sha256): (&Path, u64, &str),
        run_id: &str,
        invocation: &str,
        db: &Path,
        mode: Mode,
    ) -> Self {
        let file = &case.scenario.source.file;
        Self {
            format: CASE_REQUEST_FORMAT,
            root: catalog.root.clone(),
            db: db.to_owned(),
            run_id: run_id.to_owned(),
            invocation: invocation.to_owned(),
            mode,
            registry: catalog.registry_source.clone(),
            scenario: (
                file.clone(),
                catalog
                    .scenario_texts
                    .get(file)
                    .cloned()
                    .unwrap_or_default(),
            ),
            case_name: case.name.clone(),
            model_path: model_path.to_owned(),
            model_size: size,
            model_sha256: sha256.to_owned(),
            device_down: None,
        }
    }

    /// The case this request names, expanded from the scenario text it carries, with its
    /// registry entry.
    pub fn case(&self) -> Result<(Case, ModelEntry), CaseRequestError> {
        if self.format != CASE_REQUEST_FORMAT {
            return Err(CaseRequestError::Format {
                found: self.format,
                reads: CASE_REQUEST_FORMAT,
            });
        }
        let registry = Registry::parse(&self.registry.0, &self.registry.1)?;
        let scenario = Scenario::parse(&self.scenario.0, &self.scenario.1, &registry)?;
        let case = scenario
            .expand()
            .into_iter()
            .find(|c| c.name == self.case_name)
            .ok_or_else(|| CaseRequestError::NoCase {
                name: self.case_name.clone(),
                scenario: self.scenario.0.clone(),
            })?;
        let entry =
            registry
                .get(&case.model)
                .cloned()
                .ok_or_else(|| CaseRequestError::NoModel {
                    model: case.model.clone(),
                    registry: self.registry.0.clone(),
                })?;
        Ok((case, entry))
    }
}

/// Why a child can't run the case its parent sent.
#[derive(Debug, thiserror::Error)]
pub enum CaseRequestError {
    #[error("case request format {found} (this edgebench-case reads {reads})")]
    Format { found: u32, reads: u32 },
    #[error(transparent)]
    Registry(#[from] edgebench_core::RegistryError),
    #[error(transparent)]
    Scenario(#[from] edgebench_core::ScenarioError),
    #[error("no scenario case is named `{name}` in {scenario}")]
    NoCase { name: String, scenario: String },
    #[error("model `{model}` is not in {registry}")]
    NoModel { model: String, registry: String },
}

/// The line the child prints for its parent.
#[must_use]
pub fn report_line(report: &CaseReport) -> String {
    format!(
        "{REPORT_PREFIX}{}",
        serde_json::to_string(report).unwrap_or_default()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot start {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    /// The child ran and reported a failure (the run is stored as `failed`).
    #[error("{message}")]
    Failed { message: String },
    /// The child died; the run (if it had begun) is stored as `aborted`.
    #[error("{reason}; run {run_id} marked aborted; stderr ends with:\n{stderr_tail}")]
    Crashed {
        run_id: String,
        reason: String,
        stderr_tail: String,
    },
    #[error("the run of a crashed child could not be marked aborted: {0}")]
    Store(#[from] edgebench_store::StoreError),
}

/// One case to run in a child process.
#[derive(Debug, Clone)]
pub struct ChildCase<'a> {
    /// The `edgebench-case` executable.
    pub exe: &'a Path,
    pub request: &'a CaseRequest,
    /// More environment for the child, e.g. [`crate::fault::FAULT_ENV`] in tests.
    pub env: &'a [(&'a str, &'a str)],
}

/// Runs `case` in a child and waits for it.
pub fn run_in_child(case: &ChildCase<'_>) -> Result<CaseReport, ChildError> {
    let request = case.request;
    let mut cmd = Command::new(case.exe);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(case.env.iter().copied());
    let mut child = cmd.spawn().map_err(|source| ChildError::Spawn {
        exe: case.exe.to_owned(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that dies before reading is reported from its exit status below.
        let _ = stdin.write_all(
            serde_json::to_string(request)
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    // Drain stderr on a thread so a chatty child never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = e.read_to_end(&mut buf);
            buf
        })
    });
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    let status = child.wait().map_err(|source| ChildError::Spawn {
        exe: case.exe.to_owned(),
        source,
    })?;
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr);
    for line in stdout.lines() {
        if !line.starts_with(REPORT_PREFIX) {
            println!("{line}");
        }
    }
    if status.success() {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(REPORT_PREFIX))
            .unwrap_or_default();
        return serde_json::from_str(line).map_err(|e| ChildError::Failed {
            message: format!("the case process ended without a readable report ({e})"),
        });
    }
    if status.code() == Some(1) {
        // An error the child handled and stored itself.
        return Err(ChildError::Failed {
            message: stderr.trim().lines().last().unwrap_or("failed").to_owned(),
        });
    }
    let reason = describe_exit(status);
    let stderr_tail = tail(&stderr, STDERR_TAIL_BYTES);
    // Not `open`: its stale-run recovery would mark the run aborted without the signal and
    // stderr recorded here.
    let store = edgebench_store::Store::open_with(
        &request.db,
        &edgebench_store::OpenOptions {
            recover_stale_runs: false,
            ..crate::paths::store_options()
        },
    )?;
    store.abort_run(
        &request.run_id,
        &reason,
        &stderr_tail,
        crate::host::now_ms(),
    )?;
    Err(ChildError::Crashed {
        run_id: request.run_id.clone(),
        reason,
        stderr_tail,
    })
}

/// [`run_in_child`]; for a hybrid case whose child crashed (its on-device engine took the
/// process down), a second child under `retry_run_id` answers every request from the cloud with
/// the crash as the fallback reason. The crashed run stays stored as aborted.
pub fn run_hybrid_in_child(
    case: &ChildCase<'_>,
    retry_run_id: &str,
) -> Result<CaseReport, ChildError> {
    match run_in_child(case) {
        Err(ChildError::Crashed { run_id, reason, .. }) => {
            let why =
                format!("the on-device process crashed ({reason}; run {run_id} stored as aborted)");
            let mut again = case.request.clone();
            again.run_id = retry_run_id.to_owned();
            again.device_down = Some(why);
            run_in_child(&ChildCase {
                exe: case.exe,
                request: &again,
                env: case.env,
            })
        }
        other => other,
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT)",
                9 => " (SIGKILL, possibly the kernel's OOM killer)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return format!("the case process was killed by signal {signal}{name}");
        }
    }
    format!("the case process exited with {status}")
}

/// The last `max` bytes of `text`, starting at a line boundary when there is one.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.trim_end().to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    cut.find('\n')
        .map_or(cut, |i| &cut[i + 1..])
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_keeps_whole_last_lines() {
        assert_eq!(tail("a\nb\n", 100), "a\nb");
        assert_eq!(tail("first line\nsecond\nthird\n", 12), "third");
        assert_eq!(tail("ééé", 3), "é");
    }
}
