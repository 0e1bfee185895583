//! edgebench's run pipeline: reads scenario, registry and dataset files, drives the engines,
//! writes the results database. The pure rules live in `edgebench-core`; this crate does the I/O
//! around them, one module per stage (see ARCHITECTURE.md):
//!
//! catalog → preflight (with `engines`) → plan → execute → record → runner / fallback, with
//! `isolate` running each case in a child process and `outcome` what it reports back.

pub mod accuracy;
pub mod catalog;
pub mod device_facts;
pub mod display;
pub mod engines;
pub mod error;
pub mod execute;
pub mod fallback;
pub mod fault;
pub mod host;
pub mod isolate;
pub mod outcome;
pub mod paired;
pub mod parity;
pub mod paths;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod prompt_set;
pub mod record;
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
