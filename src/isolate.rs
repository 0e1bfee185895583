//! Crash containment: every measured case runs in a child process (`edgebench-case`), so an
//! engine that aborts (llama.cpp calls `abort()` on failed asserts) fails that case only.
//!
//! The parent chooses the run id before starting the child. The child records the run as usual;
//! when it dies without finishing, the parent marks the run `aborted` with the exit signal and
//! the tail of the child's stderr, and the harness moves on to the next case.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::runner::CaseReport;

/// Environment switch for testing containment: `abort:<text>` makes a child whose case name
/// contains `<text>` abort right after loading its model, as a crashing engine would;
/// `pause:<text>:<ms>` holds it there for `ms` milliseconds.
pub const FAULT_ENV: &str = "EDGEBENCH_INJECT_FAULT";

/// Marks the child's one line of JSON on stdout.
const REPORT_PREFIX: &str = "EDGEBENCH_CASE_REPORT ";
/// How much of a crashed child's stderr is kept.
const STDERR_TAIL_BYTES: usize = 4096;

/// Aborts (or pauses) the process if [`FAULT_ENV`] asks for it for `case_name`.
pub fn inject_fault_if_asked(case_name: &str) {
    if let Ok(spec) = std::env::var(FAULT_ENV)
        && let Some(pattern) = spec.strip_prefix("abort:")
        && case_name.contains(pattern)
    {
        eprintln!("edgebench: {FAULT_ENV} aborts case {case_name}");
        std::process::abort();
    }
    // `pause:PATTERN:MS` holds the case after loading, so a test can act on the database while
    // the run is `running` (lock it, say).
    if let Ok(spec) = std::env::var(FAULT_ENV)
        && let Some((pattern, ms)) = spec
            .strip_prefix("pause:")
            .and_then(|rest| rest.rsplit_once(':'))
        && case_name.contains(pattern)
        && let Ok(ms) = ms.parse::<u64>()
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// What a child reports about a passed case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    pub run_id: String,
    pub measured_requests: usize,
    pub measured_repetitions: u32,
    pub generation_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    pub rejected: usize,
    pub stop_reason: String,
    pub roofline_fraction: Option<f64>,
    pub estimated_peak_bytes: u64,
    pub peak_rss_bytes: Option<u64>,
    pub first_output: String,
    /// Multiple-choice accuracy (category `accuracy`): `acc` over `n` questions, with the
    /// letters chosen in question order.
    #[serde(default)]
    pub accuracy: Option<AccuracyReport>,
}

/// What an accuracy case scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    pub n: usize,
    pub acc: f64,
    pub acc_stderr: f64,
    pub acc_norm: f64,
    pub macro_acc: f64,
    /// `A`…`D` per question, in the set's order (to compare engines question by question).
    pub predicted: String,
}

impl ChildReport {
    /// `(estimate − peak RSS) ÷ peak RSS` in percent, as the store derives it.
    #[must_use]
    pub fn memory_estimate_error_pct(&self) -> Option<f64> {
        self.peak_rss_bytes
            .filter(|&p| p > 0)
            .map(|p| 100.0 * (self.estimated_peak_bytes as f64 - p as f64) / p as f64)
    }
}

impl From<&CaseReport> for ChildReport {
    fn from(r: &CaseReport) -> Self {
        Self {
            run_id: r.run_id.clone(),
            measured_requests: r.measured_requests,
            measured_repetitions: r.measured_repetitions,
            generation_tokens_per_s: r.generation_tokens_per_s,
            prefill_tokens_per_s: r.prefill_tokens_per_s,
            rejected: r.rejected,
            stop_reason: r.stop_reason.as_str().into(),
            roofline_fraction: r.roofline_fraction,
            estimated_peak_bytes: r.estimated_peak_bytes,
            peak_rss_bytes: r.peak_rss_bytes,
            first_output: r.first_output.clone(),
            accuracy: r.accuracy.clone(),
        }
    }
}

impl ChildReport {
    /// The line the child prints for its parent.
    #[must_use]
    pub fn to_line(&self) -> String {
        format!(
            "{REPORT_PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }
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
    pub case_name: &'a str,
    pub run_id: &'a str,
    pub invocation: &'a str,
    pub db: &'a Path,
    pub smoke: bool,
    /// Model file, size and sha256 the parent already knows.
    pub model_hash: Option<(&'a Path, u64, &'a str)>,
    /// More environment for the child, e.g. [`FAULT_ENV`] in tests.
    pub env: &'a [(&'a str, &'a str)],
}

/// Runs `case` in a child and waits for it.
pub fn run_in_child(case: &ChildCase<'_>) -> Result<ChildReport, ChildError> {
    let mut cmd = Command::new(case.exe);
    cmd.arg(case.case_name)
        .env("EDGEBENCH_DB", case.db)
        .env("EDGEBENCH_RUN_ID", case.run_id)
        .env("EDGEBENCH_INVOCATION", case.invocation)
        .env("EDGEBENCH_SMOKE", if case.smoke { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(case.env.iter().copied());
    if let Some((path, size, sha)) = case.model_hash {
        cmd.env(
            "EDGEBENCH_MODEL_HASH",
            format!("{size}:{sha}:{}", path.display()),
        );
    }
    let mut child = cmd.spawn().map_err(|source| ChildError::Spawn {
        exe: case.exe.to_owned(),
        source,
    })?;
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
        case.db,
        &edgebench_store::OpenOptions {
            recover_stale_runs: false,
            ..crate::paths::store_options()
        },
    )?;
    store.abort_run(case.run_id, &reason, &stderr_tail, crate::runner::now_ms())?;
    Err(ChildError::Crashed {
        run_id: case.run_id.to_owned(),
        reason,
        stderr_tail,
    })
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
