//! Where edgebench finds its inputs and puts its outputs. Environment variables override the
//! defaults so device-lab machines can share a database or a model cache; the settings `xtask`
//! shares live in `edgebench-settings`, re-exported here.

use std::path::{Path, PathBuf};

/// Repository root: `EDGEBENCH_ROOT`, else the directory this crate was built from.
#[must_use]
pub fn root() -> PathBuf {
    std::env::var_os(edgebench_settings::ROOT_ENV)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub use edgebench_settings::{database, datasets_dir, models_dir, registry_file, scenarios_dir};

/// Where runs go when the results database refuses them (locked, read-only, full):
/// `EDGEBENCH_FALLBACK_DB`, else `<root>/results/fallback/<host>.sqlite`, on this machine's own
/// disk. Merge it into the shared database with `cargo xtask ingest`.
#[must_use]
pub fn fallback_database(root: &Path) -> PathBuf {
    std::env::var_os(edgebench_settings::FALLBACK_DB_ENV).map_or_else(
        || {
            root.join("results/fallback")
                .join(format!("{}.sqlite", edgebench_store::local_host()))
        },
        PathBuf::from,
    )
}

/// How long to wait for other writers of the database: `EDGEBENCH_BUSY_TIMEOUT_MS`, else
/// [`edgebench_store::BUSY_TIMEOUT`].
#[must_use]
pub fn store_options() -> edgebench_store::OpenOptions {
    let mut options = edgebench_store::OpenOptions::default();
    if let Some(ms) = std::env::var(edgebench_settings::BUSY_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.busy_timeout = std::time::Duration::from_millis(ms);
    }
    options
}
