//! Starting `edgebench serve` as a child process on 127.0.0.1 (an ephemeral port) and stopping
//! it: how HTTP and hybrid cases with `launch = true`, and the tests, get a server they own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgebench_core::scenario::ServerFaults;

/// What the launched server serves, and how.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub model_file: PathBuf,
    pub model_id: String,
    pub chat_template: Option<String>,
    pub threads: u32,
    pub context: u32,
    pub slots: u32,
    pub queue: Option<u32>,
    pub admission_timeout_ms: Option<u64>,
    pub faults: ServerFaults,
    pub seed: u64,
    /// The variable holding the key the server requires; it inherits the variable, and only
    /// its name goes on the command line.
    pub api_key_env: Option<String>,
}

/// A running server; dropping it stops the process (SIGTERM, then SIGKILL after 5 s).
#[derive(Debug)]
pub struct Launched {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    /// Every line the server printed (stdout after the first, and stderr).
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("edgebench serve is not built next to {}: build the `edgebench` binary (cargo build --bin edgebench) or set EDGEBENCH_SERVE_BIN", beside.display())]
    NoBinary { beside: PathBuf },
    #[error("could not start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("edgebench serve exited before listening: {stderr}")]
    Exited { stderr: String },
}

/// The `edgebench` binary: `EDGEBENCH_SERVE_BIN`, else beside this executable (or one level
/// up, for test binaries in `target/*/deps`).
pub fn binary() -> Result<PathBuf, LaunchError> {
    if let Some(p) = std::env::var_os("EDGEBENCH_SERVE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().unwrap_or_default();
    let dir = me.parent().unwrap_or(Path::new("."));
    let name = format!("edgebench{}", std::env::consts::EXE_SUFFIX);
    [dir.join(&name), dir.parent().unwrap_or(dir).join(&name)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or(LaunchError::NoBinary { beside: me })
}

impl LaunchSpec {
    /// The command-line arguments of `edgebench serve` for this spec.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "serve".to_owned(),
            "--model-file".to_owned(),
            self.model_file.display().to_string(),
            "--model-id".to_owned(),
            self.model_id.clone(),
            "--port".to_owned(),
            "0".to_owned(),
            "--threads".to_owned(),
            self.threads.to_string(),
            "--context".to_owned(),
            self.context.to_string(),
            "--slots".to_owned(),
            self.slots.to_string(),
            "--seed".to_owned(),
            self.seed.to_string(),
        ];
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.to_owned());
                a.push(v);
            }
        };
        let f = &self.faults;
        opt("--chat-template", self.chat_template.clone());
        opt("--api-key-env", self.api_key_env.clone());
        opt("--queue", self.queue.map(|q| q.to_string()));
        opt(
            "--admission-timeout-ms",
            self.admission_timeout_ms.map(|t| t.to_string()),
        );
        opt(
            "--fault-latency-ms",
            (f.latency_ms > 0).then(|| f.latency_ms.to_string()),
        );
        for (flag, share) in [
            ("--fault-error-rate", f.error_rate),
            ("--fault-overload-rate", f.overload_rate),
            ("--fault-cut-rate", f.cut_rate),
            ("--fault-stall-rate", f.stall_rate),
            ("--fault-malformed-rate", f.malformed_rate),
        ] {
            opt(flag, (share > 0.0).then(|| share.to_string()));
        }
        opt("--fault-after-tokens", Some(f.after_tokens.to_string()));
        opt(
            "--fault-kill-at-request",
            f.kill_at_request.map(|k| k.to_string()),
        );
        a
    }

    /// Starts the server and waits until it listens.
    pub fn launch(&self) -> Result<Launched, LaunchError> {
        self.launch_with_env(&[])
    }

    /// [`Self::launch`] with `env` added to the server's environment only.
    pub fn launch_with_env(&self, env: &[(&str, &str)]) -> Result<Launched, LaunchError> {
        let binary = binary()?;
        let mut child = Command::new(&binary)
            .args(self.args())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                binary: binary.clone(),
                source,
            })?;
        let stdout = child.stdout.take();
        let mut lines = BufReader::new(stdout.ok_or_else(|| LaunchError::Exited {
            stderr: "no stdout".into(),
        })?)
        .lines();
        let base_url = lines.find_map(|l| l.ok()?.strip_prefix("listening on ").map(str::to_owned));
        let Some(base_url) = base_url else {
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return Err(LaunchError::Exited { stderr });
        };
        // Keep draining its output so the server never blocks on a full pipe, and keep it for
        // whoever asks (tests look for what must never be printed).
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = |log: std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
            move |line: std::io::Result<String>| {
                if let Ok(line) = line {
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line);
                }
            }
        };
        std::thread::spawn({
            let keep = keep(std::sync::Arc::clone(&log));
            move || lines.for_each(keep)
        });
        if let Some(stderr) = child.stderr.take() {
            let keep = keep(std::sync::Arc::clone(&log));
            std::thread::spawn(move || BufReader::new(stderr).lines().for_each(keep));
        }
        Ok(Launched {
            child,
            base_url,
            log,
        })
    }
}

impl Launched {
    /// The process id (tests kill it to see clients survive).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server: SIGTERM (graceful), SIGKILL if it is still there after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the server has printed so far, a line each.
    #[must_use]
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the process has exited, and how.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
