//! How many times a case runs, and over how many prompts: the scenario's plan, shortened in
//! smoke mode, lengthened to `max_repetitions` when adaptive stopping is switched off.

use edgebench_core::Case;
use edgebench_core::scenario::BackendKind;

/// candle's CPU prefill runs at about 14 tokens/s on these models here (llama.cpp's: 150 to
/// 320), so a 1,536- or 3,584-token smoke prompt took candle 2 to 4 minutes a case; in smoke
/// mode its prompts keep their last this many tokens (long prompts on candle are proved by the
/// backend tests past Gemma's sliding window; measured runs keep the scenario's length).
pub const SMOKE_CANDLE_PROMPT_TOKENS: u32 = 128;

/// How this invocation runs cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mode {
    /// Every case runs once (no warmup, one repetition, one wave of prompts), to check that it
    /// works, not to measure it. Runs are stored with `mode = 'smoke'`.
    pub smoke: bool,
    /// Ignore every scenario's `[stopping]` and run its `max_repetitions` instead: the fixed
    /// plan adaptive stopping is measured against (`EDGEBENCH_STOPPING=fixed`).
    pub fixed_stopping: bool,
    /// A measured run measures at least this long
    /// ([`edgebench_core::measure::MIN_MEASURED_SECONDS`], or
    /// `EDGEBENCH_MIN_MEASURED_SECONDS`); smoke runs don't measure.
    #[serde(default)]
    pub min_measured_ms: u32,
}

impl Default for Mode {
    fn default() -> Self {
        Self {
            smoke: false,
            fixed_stopping: false,
            min_measured_ms: (edgebench_core::measure::MIN_MEASURED_SECONDS * 1e3) as u32,
        }
    }
}

impl Mode {
    /// The mode the environment asks for (`EDGEBENCH_SMOKE=1`, `EDGEBENCH_STOPPING=fixed`,
    /// `EDGEBENCH_MIN_MEASURED_SECONDS`).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            smoke: edgebench_settings::env_is(edgebench_settings::SMOKE_ENV, "1"),
            fixed_stopping: edgebench_settings::env_is(edgebench_settings::STOPPING_ENV, "fixed"),
            min_measured_ms: std::env::var(edgebench_settings::MIN_MEASURED_SECONDS_ENV)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map_or(Self::default().min_measured_ms, |s| (s * 1e3) as u32),
        }
    }

    /// The minimum measured duration in seconds.
    #[must_use]
    pub fn min_measured_seconds(self) -> f64 {
        f64::from(self.min_measured_ms) / 1e3
    }
}

/// Repetitions and prompts of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPlan {
    pub warmup: u32,
    /// At least this many measured repetitions (adaptive stopping may add more).
    pub repetitions: u32,
    pub prompts: usize,
    /// Prompts keep at most their last this many tokens: the scenario's `prompt_tokens`, or
    /// less in smoke mode on candle ([`SMOKE_CANDLE_PROMPT_TOKENS`]).
    pub prompt_tokens: u32,
    /// Probe the memory bandwidth beside the run, before and after it: a measured speed case's
    /// roofline share rests on the bandwidth of the minutes it ran in, with that probe's
    /// spread. Smoke runs are no measurements, and scored, sustained, goodput and remote cases
    /// have no roofline: they keep the device's one-off probe.
    pub probe_bandwidth_beside: bool,
}

#[must_use]
pub fn plan(case: &Case, mode: Mode) -> RunPlan {
    let s = &case.scenario;
    let prompts = s.prompts.map_or(usize::MAX, |n| n as usize);
    if mode.smoke {
        RunPlan {
            warmup: 0,
            repetitions: 1,
            prompts: prompts.min(case.concurrency.max(1) as usize),
            prompt_tokens: if case.backend == BackendKind::Candle {
                s.prompt_tokens.min(SMOKE_CANDLE_PROMPT_TOKENS)
            } else {
                s.prompt_tokens
            },
            probe_bandwidth_beside: false,
        }
    } else {
        RunPlan {
            warmup: s.warmup,
            repetitions: match &s.stopping {
                Some(stopping) if mode.fixed_stopping => stopping.max_repetitions,
                _ => s.repetitions,
            },
            prompts,
            prompt_tokens: s.prompt_tokens,
            probe_bandwidth_beside: s.workload.is_timed()
                && !matches!(case.backend, BackendKind::Http | BackendKind::Hybrid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Mode, SMOKE_CANDLE_PROMPT_TOKENS, plan};
    use edgebench_core::scenario::BackendKind;
    use edgebench_core::{Registry, Scenario};

    #[test]
    fn smoke_mode_runs_once_and_shortens_only_candle_prompts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |f: &str| std::fs::read_to_string(root.join(f)).expect(f);
        let registry = Registry::parse("models.toml", &read("models.toml")).expect("registry");
        let scenario = Scenario::parse(
            "scenarios/kv_cache.toml",
            &read("scenarios/kv_cache.toml"),
            &registry,
        )
        .expect("scenario");
        let long = scenario.prompt_tokens;
        assert!(
            long > SMOKE_CANDLE_PROMPT_TOKENS,
            "the scenario's prompts are long"
        );
        let smoke = Mode {
            smoke: true,
            ..Mode::default()
        };
        let cases = scenario.expand();
        for backend in [BackendKind::LlamaCpp, BackendKind::Candle] {
            let case = cases
                .iter()
                .find(|c| c.backend == backend)
                .expect("a case per engine");
            let quick = plan(case, smoke);
            assert_eq!((quick.warmup, quick.repetitions), (0, 1));
            let expected = match backend {
                BackendKind::Candle => SMOKE_CANDLE_PROMPT_TOKENS,
                _ => long,
            };
            assert_eq!(quick.prompt_tokens, expected, "{backend}");
            assert_eq!(plan(case, Mode::default()).prompt_tokens, long, "{backend}");
        }
    }
}
