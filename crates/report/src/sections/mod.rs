//! Building each section's context from the selected runs, one module per report section
//! (and per template). Pure: no I/O, no clock.

pub mod backends;
pub mod categories;
pub mod claims;
pub mod concurrency;
pub mod devices;
pub mod fidelity;
pub mod format;
pub mod goodput;
pub mod kv;
pub mod lab;
pub mod models;
pub mod overview;
pub mod projections;
pub mod quantization;
pub mod regressions;
pub mod remote;
pub mod roi;
pub mod runs;
pub mod seed_tables;
pub mod sustained;

pub use backends::backends;
pub use categories::categories;
pub use claims::claims_section;
pub use concurrency::concurrency;
pub use devices::devices;
pub use fidelity::fidelity;
pub use format::{bytes, measured, num};
pub use goodput::goodput;
pub use kv::kv;
pub use lab::lab;
pub use models::model_columns;
pub use overview::{overview, small_models};
pub use projections::projection_checks;
pub use quantization::quantizations;
pub use regressions::regressions;
pub use remote::remote;
pub use roi::roi;
pub use runs::runs;
pub use seed_tables::seed_tables;
pub use sustained::sustained;

/// What every section module uses: the core's rules, the report's data and context types, and
/// the shared helpers of its sibling modules.
mod prelude {
    pub use std::collections::{BTreeMap, BTreeSet};

    pub use edgebench_core::claims::{self, Physics};
    pub use edgebench_core::compare::{self, KvConfig, Verdict};
    pub use edgebench_core::quant::Quant;
    pub use edgebench_core::registry::ModelEntry;
    pub use edgebench_core::registry::{Architecture, Registry};
    pub use edgebench_core::roi::DeviceCost;
    pub use edgebench_core::run_facts::{AnswerSource, EnergySource, IntegrityVerdict, RunOrigin};
    pub use edgebench_core::scenario::{BackendKind, KvType};
    pub use edgebench_core::{device_profile, measure, overhead, projection, quality, stats, twin};

    pub use crate::context::*;
    pub use crate::data::{Dataset, Device, Run, RunQuality, Samples};
    pub use crate::inputs::{ClaimFile, ClaimKind, ClaimsFile, RoiFile};
    pub use crate::plots;
    pub use edgebench_store::RunStatus;

    pub use super::categories::*;
    pub use super::format::*;
    pub use super::models::*;
    pub use super::projections;

    pub use crate::SEED;
    pub const GB: f64 = 1e9;
    pub const MIB: f64 = (1u64 << 20) as f64;
}
