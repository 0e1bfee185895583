//! What a finished case reports: what the harness prints, and what the case's child process
//! sends back to its parent (one JSON line). One type for both, so they can't drift apart.

use edgebench_backend::TokenId;
use edgebench_core::measure::StopReason;
use serde::{Deserialize, Serialize};

/// A passed case, in a few numbers (the run itself, with every sample, is in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    pub run_id: String,
    pub measured_requests: usize,
    pub measured_repetitions: u32,
    /// Median over repetitions of the aggregate decode rate (tokens from decode steps ÷ their
    /// time).
    pub generation_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    /// Requests turned away (queue full or admission timeout) in measured repetitions.
    pub rejected: usize,
    #[serde(with = "stop_reason_name")]
    pub stop_reason: StopReason,
    pub roofline_fraction: Option<f64>,
    /// The memory guard's estimate and the measured peak RSS (the child's whole process).
    pub estimated_peak_bytes: u64,
    pub peak_rss_bytes: Option<u64>,
    pub first_output: String,
    pub first_output_tokens: Vec<TokenId>,
    /// Set for accuracy cases.
    pub accuracy: Option<AccuracyReport>,
}

/// What an accuracy case scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    pub n: usize,
    pub acc: f64,
    pub acc_stderr: f64,
    pub acc_norm: f64,
    pub macro_acc: f64,
    /// `A`…`D` per question, in the set's order (to compare engines question by question).
    pub predicted: String,
}

impl CaseReport {
    /// `(estimate − peak RSS) ÷ peak RSS` in percent, as the store derives it.
    #[must_use]
    pub fn memory_estimate_error_pct(&self) -> Option<f64> {
        self.peak_rss_bytes
            .filter(|&p| p > 0)
            .map(|p| 100.0 * (self.estimated_peak_bytes as f64 - p as f64) / p as f64)
    }
}

/// The stop reason by its stored name, so the child's line reads like the database.
mod stop_reason_name {
    use edgebench_core::measure::StopReason;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(reason: &StopReason, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(reason.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StopReason, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
