//! The harness's own cost: its timing of prefill and decode against the engine's counters for the
//! same phases (llama.cpp's `llama_perf_context`), one pair per measured repetition.
//!
//! The harness clock brackets a whole `prefill`/`decode_step` call (batch building, the engine,
//! sampling, copying the result out); the engine counts only its own compute. Their ratio,
//! harness tokens/s ÷ engine tokens/s, is 1 when the harness adds nothing and falls below 1 by
//! the share of time the harness spends around the engine.

use serde::{Deserialize, Serialize};

/// One measured repetition: what the harness timed and what the engine counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RepetitionPhases {
    pub harness_prefill_tokens: u64,
    pub harness_prefill_ns: u64,
    pub harness_decode_tokens: u64,
    pub harness_decode_ns: u64,
    pub engine_prefill_tokens: u64,
    pub engine_prefill_ms: f64,
    pub engine_decode_tokens: u64,
    pub engine_decode_ms: f64,
}

/// The two phases compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prefill,
    Generation,
}

impl Phase {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prefill => "prefill",
            Self::Generation => "generation",
        }
    }
}

/// Why a repetition's phase can't be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotComparable {
    #[error("{phase}: no tokens or no time on one side")]
    Empty { phase: &'static str },
    /// llama.cpp counts every multi-token decode call as prompt evaluation, so a decode step of
    /// several sequences at once lands in the prefill counter: the phases no longer line up.
    #[error(
        "{phase}: the engine counted {engine} tokens where the harness timed {harness} (batched decode steps count as prompt evaluation in llama.cpp)"
    )]
    TokenMismatch {
        phase: &'static str,
        harness: u64,
        engine: u64,
    },
}

impl RepetitionPhases {
    /// Harness tokens/s ÷ engine tokens/s for `phase`, when both sides counted the same tokens.
    ///
    /// # Errors
    /// When either side has no tokens or no time, or their token counts differ.
    pub fn ratio(&self, phase: Phase) -> Result<f64, NotComparable> {
        let (h_tokens, h_ns, e_tokens, e_ms) = match phase {
            Phase::Prefill => (
                self.harness_prefill_tokens,
                self.harness_prefill_ns,
                self.engine_prefill_tokens,
                self.engine_prefill_ms,
            ),
            Phase::Generation => (
                self.harness_decode_tokens,
                self.harness_decode_ns,
                self.engine_decode_tokens,
                self.engine_decode_ms,
            ),
        };
        let name = phase.as_str();
        if h_tokens == 0 || h_ns == 0 || e_tokens == 0 || e_ms <= 0.0 {
            return Err(NotComparable::Empty { phase: name });
        }
        if h_tokens != e_tokens {
            return Err(NotComparable::TokenMismatch {
                phase: name,
                harness: h_tokens,
                engine: e_tokens,
            });
        }
        // Same tokens on both sides, so the rate ratio is the inverse time ratio.
        Ok(e_ms * 1e6 / h_ns as f64)
    }
}

/// The per-repetition ratios of one phase, or why none could be formed.
///
/// # Errors
/// The first repetition whose phase can't be compared.
pub fn ratios(repetitions: &[RepetitionPhases], phase: Phase) -> Result<Vec<f64>, NotComparable> {
    repetitions.iter().map(|r| r.ratio(phase)).collect()
}

/// Parses the stored JSON array (`runs.phase_timings`).
///
/// # Errors
/// When the text is not such an array.
pub fn parse(json: &str) -> Result<Vec<RepetitionPhases>, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(h_decode_ns: u64, e_decode_ms: f64, e_decode_tokens: u64) -> RepetitionPhases {
        RepetitionPhases {
            harness_prefill_tokens: 512,
            harness_prefill_ns: 1_000_000_000,
            harness_decode_tokens: 128,
            harness_decode_ns: h_decode_ns,
            engine_prefill_tokens: 512,
            engine_prefill_ms: 990.0,
            engine_decode_tokens: e_decode_tokens,
            engine_decode_ms: e_decode_ms,
        }
    }

    #[test]
    fn ratio_is_harness_rate_over_engine_rate() {
        let r = rep(2_000_000_000, 1900.0, 128);
        // 128 / 2.0 s vs 128 / 1.9 s.
        assert!((r.ratio(Phase::Generation).expect("ratio") - 0.95).abs() < 1e-12);
        assert!((r.ratio(Phase::Prefill).expect("ratio") - 0.99).abs() < 1e-12);
    }

    #[test]
    fn batched_decode_counted_as_prompt_is_not_compared() {
        let r = rep(2_000_000_000, 1900.0, 32);
        assert_eq!(
            r.ratio(Phase::Generation),
            Err(NotComparable::TokenMismatch {
                phase: "generation",
                harness: 128,
                engine: 32
            })
        );
        assert!(ratios(&[rep(1, 1.0, 128), r], Phase::Generation).is_err());
    }

    #[test]
    fn empty_sides_are_not_compared() {
        let r = rep(0, 0.0, 0);
        assert_eq!(
            r.ratio(Phase::Generation),
            Err(NotComparable::Empty {
                phase: "generation"
            })
        );
        // Any one side empty is enough: no tokens or no time, harness or engine.
        let empty = Err(NotComparable::Empty {
            phase: "generation",
        });
        let mut no_harness_tokens = rep(2_000_000_000, 1900.0, 128);
        no_harness_tokens.harness_decode_tokens = 0;
        assert_eq!(no_harness_tokens.ratio(Phase::Generation), empty);
        assert_eq!(rep(0, 1900.0, 128).ratio(Phase::Generation), empty);
        assert_eq!(
            rep(2_000_000_000, 1900.0, 0).ratio(Phase::Generation),
            empty
        );
        assert_eq!(rep(2_000_000_000, 0.0, 128).ratio(Phase::Generation), empty);
        assert_eq!(
            rep(2_000_000_000, -1.0, 128).ratio(Phase::Generation),
            empty
        );
    }

    #[test]
    fn stored_json_round_trips() {
        let reps = vec![rep(5, 6.0, 128), rep(7, 8.5, 128)];
        let json = serde_json::to_string(&reps).expect("json");
        assert_eq!(parse(&json).expect("parse"), reps);
        assert!(parse("{\"not\": \"an array\"}").is_err());
    }
}
