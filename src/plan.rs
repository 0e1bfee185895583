//! How many times a case runs, and over how many prompts: the scenario's plan, shortened in
//! smoke mode, lengthened to `max_repetitions` when adaptive stopping is switched off.

use edgebench_core::Case;

/// How this invocation runs cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mode {
    /// Every case runs once (no warmup, one repetition, one wave of prompts), to check that it
    /// works, not to measure it. Runs are stored with `mode = 'smoke'`.
    pub smoke: bool,
    /// Ignore every scenario's `[stopping]` and run its `max_repetitions` instead: the fixed
    /// plan adaptive stopping is measured against (`EDGEBENCH_STOPPING=fixed`).
    pub fixed_stopping: bool,
}

impl Mode {
    /// The mode the environment asks for (`EDGEBENCH_SMOKE=1`, `EDGEBENCH_STOPPING=fixed`).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            smoke: edgebench_settings::env_is(edgebench_settings::SMOKE_ENV, "1"),
            fixed_stopping: edgebench_settings::env_is(edgebench_settings::STOPPING_ENV, "fixed"),
        }
    }
}

/// Repetitions and prompts of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPlan {
    pub warmup: u32,
    /// At least this many measured repetitions (adaptive stopping may add more).
    pub repetitions: u32,
    pub prompts: usize,
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
        }
    } else {
        RunPlan {
            warmup: s.warmup,
            repetitions: match &s.stopping {
                Some(stopping) if mode.fixed_stopping => stopping.max_repetitions,
                _ => s.repetitions,
            },
            prompts,
        }
    }
}
