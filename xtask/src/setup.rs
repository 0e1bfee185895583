//! System packages the build and the tests need. llama-cpp-sys-2 builds llama.cpp with cmake and
//! generates bindings with bindgen, which needs libclang; the report's browser test opens the
//! report in Debian's headless `chromium` (never a tool's own browser download).

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

fn has_cmake() -> bool {
    Command::new("cmake")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Chromium binary the report's browser test runs: `EDGEBENCH_CHROMIUM`, else the first of
/// Debian's names found on PATH.
pub fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("EDGEBENCH_CHROMIUM") {
        return Some(path);
    }
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

fn has_libclang() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    ["/usr/lib", "/usr/lib64", "/usr/local/lib"]
        .iter()
        .any(|dir| walk_has_libclang(std::path::Path::new(dir), 3))
}

fn walk_has_libclang(dir: &std::path::Path, depth: u32) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("libclang") && name.contains(".so") && !name.starts_with("libclang-cpp")
        {
            return true;
        }
        if depth > 0
            && e.file_type().is_ok_and(|t| t.is_dir())
            && walk_has_libclang(&e.path(), depth - 1)
        {
            return true;
        }
    }
    false
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs cmake, libclang-dev and chromium with apt-get when missing (as root), else says how.
pub fn ensure_build_tools() -> Result<()> {
    let mut missing = Vec::new();
    if !has_cmake() {
        missing.push("cmake");
    }
    if !has_libclang() {
        missing.push("libclang-dev");
    }
    if chromium().is_none() {
        missing.push("chromium");
    }
    // The PostgreSQL client links the platform's OpenSSL (native-tls); the tests start a
    // throwaway PostgreSQL server and make its TLS certificate with `openssl`.
    if !has_openssl_dev() {
        missing.extend(["libssl-dev", "pkg-config"]);
    }
    if !Path::new("/usr/bin/openssl").is_file() {
        missing.push("openssl");
    }
    if !has_postgresql_server() {
        missing.push("postgresql");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "the build needs {}; install them with:\n  sudo apt-get update && sudo {install}",
            missing.join(" and ")
        );
    }
    // One line here; apt's and dpkg's hundreds go to a log file, named if they fail.
    let log = log_file("apt-get")?;
    eprintln!(
        "installing {} with apt-get (to build llama.cpp and check the report in a browser; log: {})",
        missing.join(", "),
        log.display()
    );
    let ok = quiet(
        Command::new("sh").args([
            "-c",
            &format!("apt-get update -qq && DEBIAN_FRONTEND=noninteractive {install} -qq"),
        ]),
        &log,
    )?;
    if !ok {
        bail!(
            "`{install}` failed; its output is in {}:\n{}",
            log.display(),
            tail(&log, 15)
        );
    }
    Ok(())
}

fn has_openssl_dev() -> bool {
    ["/usr/include/openssl/ssl.h"]
        .iter()
        .any(|p| Path::new(p).is_file())
        && Command::new("pkg-config")
            .args(["--exists", "openssl"])
            .status()
            .is_ok_and(|s| s.success())
}

/// Debian's server binaries (`initdb`, `pg_ctl`) under /usr/lib/postgresql/<version>/bin.
fn has_postgresql_server() -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(Result::ok)
                .any(|d| d.path().join("bin/initdb").is_file())
        })
        .unwrap_or(false)
}

/// `target/logs/<name>.log` under the project, created empty.
pub fn log_file(name: &str) -> Result<std::path::PathBuf> {
    let dir = crate::project_root().join("target/logs");
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir.join(format!("{name}.log")))
}

/// Runs `cmd` with stdout and stderr into `log`; whether it succeeded.
pub fn quiet(cmd: &mut Command, log: &std::path::Path) -> Result<bool> {
    let file = std::fs::File::create(log)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?;
    Ok(cmd
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .is_ok_and(|s| s.success()))
}

/// The last `lines` lines of a log file.
pub fn tail(log: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where the official `openai` Python client lives for the conformance test (never the
/// system Python).
pub const OPENAI_VENV: &str = "target/openai-venv";

/// Creates the virtual environment with PyPI's `openai` client unless it is there already.
pub fn ensure_openai_client(root: &Path) -> Result<()> {
    let venv = root.join(OPENAI_VENV);
    let python = venv.join("bin/python");
    let has_client = || {
        Command::new(&python)
            .args(["-c", "import openai"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_client() {
        return Ok(());
    }
    let log = log_file("openai-venv")?;
    eprintln!(
        "installing the openai Python client into {} (log: {})",
        venv.display(),
        log.display()
    );
    let ok = quiet(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        &log,
    )? && quiet(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "openai>=1.40,<4",
        ]),
        &log,
    )?;
    if !ok || !has_client() {
        bail!(
            "could not install the openai client (python3 -m venv needs Debian's python3-venv); output in {}:\n{}",
            log.display(),
            tail(&log, 15)
        );
    }
    Ok(())
}
