//! edgebench's edge: reads scenario, registry and dataset files, drives backends, writes the
//! results database. The pure rules live in `edgebench-core`; this crate does the I/O around them.

pub mod accuracy;
pub mod catalog;
pub mod dataset;
pub mod device_facts;
pub mod fingerprint;
pub mod isolate;
pub mod parity;
pub mod paths;
pub mod runner;
pub mod serve;

pub use edgebench_backend as backend;
pub use edgebench_core as core;
pub use edgebench_store as store;

/// Version of this build of edgebench.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit the harness was built from (`-dirty` when the tree had changes).
pub const GIT_COMMIT: &str = env!("EDGEBENCH_GIT_COMMIT");
/// Cargo profile, opt-level and debug assertions of this build.
pub const BUILD_PROFILE: &str = env!("EDGEBENCH_BUILD_PROFILE");
