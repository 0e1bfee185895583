//! Where edgebench finds its inputs and puts its outputs, and the `EDGEBENCH_*` environment
//! variables that move them. One light crate (no dependencies) so the run pipeline and `xtask`
//! read the same settings the same way; `xtask` must build before llama.cpp can, so this lives
//! apart from the pipeline.

use std::path::{Path, PathBuf};

/// Models directory (default `<root>/models`).
pub const MODELS_ENV: &str = "EDGEBENCH_MODELS";
/// Results database (default `<root>/results/edgebench.sqlite`).
pub const DB_ENV: &str = "EDGEBENCH_DB";
/// Comma-separated case globs the scenario harness runs (`*` any text, `?` one character).
pub const CASES_ENV: &str = "EDGEBENCH_CASES";
/// `1`: every case runs once, to check it works (stored as `mode = 'smoke'`).
pub const SMOKE_ENV: &str = "EDGEBENCH_SMOKE";
/// `fixed`: ignore `[stopping]` and run `max_repetitions`.
pub const STOPPING_ENV: &str = "EDGEBENCH_STOPPING";
/// The shortest measured run in seconds (default 5; 0 turns the minimum off).
pub const MIN_MEASURED_SECONDS_ENV: &str = "EDGEBENCH_MIN_MEASURED_SECONDS";
/// Where runs go when the results database refuses them.
pub const FALLBACK_DB_ENV: &str = "EDGEBENCH_FALLBACK_DB";
/// How long to wait for other writers of the database, in milliseconds.
pub const BUSY_TIMEOUT_ENV: &str = "EDGEBENCH_BUSY_TIMEOUT_MS";
/// `1`: a missing model fails a test instead of skipping it (`cargo xtask test` sets it).
pub const REQUIRE_MODELS_ENV: &str = "EDGEBENCH_REQUIRE_MODELS";
/// A llama.cpp `llama-server` binary: the HTTP engine's test against a server edgebench did not
/// write (`cargo xtask test` builds one from the pinned sdist and sets it).
pub const LLAMA_SERVER_ENV: &str = "EDGEBENCH_LLAMA_SERVER";
/// The repository root, when the binaries run from elsewhere.
pub const ROOT_ENV: &str = "EDGEBENCH_ROOT";
/// `1`: scenarios may name datasets outside `<root>/datasets` (refused otherwise).
pub const EXTERNAL_DATASETS_ENV: &str = "EDGEBENCH_EXTERNAL_DATASETS";
/// The invocation id the scenario harness stores its runs under (default: a fresh one). Set by
/// `cargo xtask nightly --processes K` so its K rounds are one night to the verdicts.
pub const INVOCATION_ENV: &str = "EDGEBENCH_INVOCATION";

/// Models directory: `EDGEBENCH_MODELS`, else `<root>/models`.
#[must_use]
pub fn models_dir(root: &Path) -> PathBuf {
    std::env::var_os(MODELS_ENV).map_or_else(|| root.join("models"), PathBuf::from)
}

/// Results database: `EDGEBENCH_DB`, else `<root>/results/edgebench.sqlite`.
#[must_use]
pub fn database(root: &Path) -> PathBuf {
    std::env::var_os(DB_ENV).map_or_else(|| root.join("results/edgebench.sqlite"), PathBuf::from)
}

/// Where the scenario harness writes, and whether it only checks each case (smoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessTarget {
    pub database: PathBuf,
    /// A plain `cargo test`: each case runs once into a scratch database.
    pub plain_test: bool,
}

/// The scenario harness's target. A run that names no case (`filtered` false: no libtest
/// filter; `cases` empty: no `EDGEBENCH_CASES`) and no database (`db` unset: no `EDGEBENCH_DB`)
/// is a plain `cargo test`, a test run and not a benchmark: it goes to
/// `<root>/target/test-results/edgebench.sqlite`, never the user's results. Naming cases or a
/// database measures into [`database`].
#[must_use]
pub fn harness_target(
    root: &Path,
    filtered: bool,
    cases: &str,
    db: Option<&std::ffi::OsStr>,
) -> HarnessTarget {
    let plain_test = !filtered && cases.is_empty() && db.is_none();
    HarnessTarget {
        database: match db {
            Some(path) => PathBuf::from(path),
            None if plain_test => root.join("target/test-results/edgebench.sqlite"),
            None => root.join("results/edgebench.sqlite"),
        },
        plain_test,
    }
}

/// The model registry, `<root>/models.toml`.
#[must_use]
pub fn registry_file(root: &Path) -> PathBuf {
    root.join("models.toml")
}

/// The prompt sets' directory, `<root>/datasets`: where scenarios' datasets must live unless
/// [`EXTERNAL_DATASETS_ENV`] allows others.
#[must_use]
pub fn datasets_dir(root: &Path) -> PathBuf {
    root.join("datasets")
}

/// The scenario files' directory, `<root>/scenarios`.
#[must_use]
pub fn scenarios_dir(root: &Path) -> PathBuf {
    root.join("scenarios")
}

/// Whether the environment variable `name` is set to exactly `value`.
#[must_use]
pub fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_cargo_test_never_targets_the_users_results() {
        let root = Path::new("/repo");
        let plain = harness_target(root, false, "", None);
        assert!(plain.plain_test);
        assert_eq!(
            plain.database,
            root.join("target/test-results/edgebench.sqlite")
        );
        // A filter, a case list or a named database measures, where it is told.
        for (filtered, cases) in [(true, ""), (false, "code_generation::*")] {
            let t = harness_target(root, filtered, cases, None);
            assert!(!t.plain_test);
            assert_eq!(t.database, root.join("results/edgebench.sqlite"));
        }
        let named = harness_target(root, false, "", Some(std::ffi::OsStr::new("/tmp/x.sqlite")));
        assert!(!named.plain_test);
        assert_eq!(named.database, PathBuf::from("/tmp/x.sqlite"));
    }
}
