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
/// Where runs go when the results database refuses them.
pub const FALLBACK_DB_ENV: &str = "EDGEBENCH_FALLBACK_DB";
/// How long to wait for other writers of the database, in milliseconds.
pub const BUSY_TIMEOUT_ENV: &str = "EDGEBENCH_BUSY_TIMEOUT_MS";
/// `1`: a missing model fails a test instead of skipping it (`cargo xtask test` sets it).
pub const REQUIRE_MODELS_ENV: &str = "EDGEBENCH_REQUIRE_MODELS";
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
