//! The pure core of edgebench.
//!
//! Architecture invariant: nothing in this crate performs I/O, reads the clock or the environment.
//! Callers hand in file contents and get back validated values, so every rule here is testable
//! with plain strings.

pub mod broken_input;
pub mod claims;
pub mod compare;
pub mod contention;
pub mod device_profile;
#[cfg(test)]
mod fixtures;
pub mod glob;
pub mod goodput;
pub mod history;
pub mod hybrid;
pub mod integrity;
pub mod measure;
pub mod mmlu;
pub mod names;
pub mod overhead;
pub mod projection;
pub mod quality;
pub mod quant;
pub mod registry;
pub mod roi;
pub mod run_facts;
pub mod scenario;
pub mod schedule;
pub mod serve_faults;
pub mod stats;
pub mod text_pos;
pub mod throttle;
pub mod twin;

pub use registry::{ModelEntry, ModelFile, Registry, RegistryError};
pub use scenario::{Case, Scenario, ScenarioError};

/// sha256 of a byte slice, as lowercase hex. Used for scenario hashes and output digests.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
