//! Where edgebench finds its inputs and puts its outputs. Environment variables override the
//! defaults so device-lab machines can share a database or a model cache.

use std::path::{Path, PathBuf};

/// Repository root: `EDGEBENCH_ROOT`, else the directory this crate was built from.
#[must_use]
pub fn root() -> PathBuf {
    std::env::var_os("EDGEBENCH_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Models directory: `EDGEBENCH_MODELS`, else `<root>/models`.
#[must_use]
pub fn models_dir(root: &Path) -> PathBuf {
    std::env::var_os("EDGEBENCH_MODELS").map_or_else(|| root.join("models"), PathBuf::from)
}

/// Results database: `EDGEBENCH_DB`, else `<root>/results/edgebench.sqlite`.
#[must_use]
pub fn database(root: &Path) -> PathBuf {
    std::env::var_os("EDGEBENCH_DB")
        .map_or_else(|| root.join("results/edgebench.sqlite"), PathBuf::from)
}

#[must_use]
pub fn registry_file(root: &Path) -> PathBuf {
    root.join("models.toml")
}

#[must_use]
pub fn scenarios_dir(root: &Path) -> PathBuf {
    root.join("scenarios")
}
