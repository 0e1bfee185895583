//! Test-only fault injection, inert unless [`FAULT_ENV`] is set: a case process that aborts or
//! pauses after loading its model (crash containment, locked databases), and decoding slowed by
//! a given fraction (a real regression for the nightly verdicts to catch).

use std::time::{Duration, Instant};

use edgebench_backend::{
    BackendError, Effective, EngineCounters, MemoryReport, SeqId, Session, TokenId,
};

/// The switch: `abort:<text>` makes a case whose name contains `<text>` abort right after
/// loading its model, as a crashing engine would; `pause:<text>:<ms>` holds it there for `ms`
/// milliseconds; `slow-decode:<text>:<fraction>` makes every decode step take 1 ÷ (1 −
/// fraction) times as long (tokens/s lower by that fraction) by waiting after it, and
/// `slow-decode:<text>:<fraction>@<seconds>` does so from `seconds` after loading on (a
/// throttle schedule for the sustained detector); `drift-first-token:<text>:<n>` changes the
/// first token every prefill after the `n`-th returns (an engine that computed differently in a
/// later repetition: the integrity check must catch it).
pub const FAULT_ENV: &str = "EDGEBENCH_INJECT_FAULT";

fn spec() -> Option<String> {
    std::env::var(FAULT_ENV).ok()
}

/// `<text>:<value>` after `prefix` in the switch, when `<text>` is part of `case_name`.
fn matching_value(spec: &str, prefix: &str, case_name: &str) -> Option<String> {
    let (pattern, value) = spec.strip_prefix(prefix)?.rsplit_once(':')?;
    case_name.contains(pattern).then(|| value.to_owned())
}

/// Aborts (or pauses) the process if [`FAULT_ENV`] asks for it for `case_name`.
pub fn inject_fault_if_asked(case_name: &str) {
    let Some(spec) = spec() else { return };
    if let Some(pattern) = spec.strip_prefix("abort:")
        && case_name.contains(pattern)
    {
        eprintln!("edgebench: {FAULT_ENV} aborts case {case_name}");
        std::process::abort();
    }
    // Holds the case after loading, so a test can act on the database while the run is
    // `running` (lock it, say).
    if let Some(ms) = matching_value(&spec, "pause:", case_name)
        && let Ok(ms) = ms.parse::<u64>()
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// The `Session` methods a fault wrapper hands to the session it wraps unchanged.
macro_rules! pass_through {
    () => {
        fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
            self.inner.reset(seq)
        }
        fn prompt_logits(
            &mut self,
            seq: SeqId,
            prompt: &[TokenId],
        ) -> Result<Vec<f32>, BackendError> {
            self.inner.prompt_logits(seq, prompt)
        }
        fn memory(&self) -> MemoryReport {
            self.inner.memory()
        }
        fn effective(&self) -> Effective {
            self.inner.effective()
        }
        fn counters(&mut self) -> Option<EngineCounters> {
            self.inner.counters()
        }
        fn reset_counters(&mut self) {
            self.inner.reset_counters();
        }
    };
}

/// A decode slowdown: tokens/s lower by `fraction`, from `after` on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    pub fraction: f64,
    pub after: Duration,
}

/// The decode slowdown [`FAULT_ENV`] asks for `case_name`.
#[must_use]
pub fn decode_slowdown(case_name: &str) -> Option<Slowdown> {
    parse_slowdown(&spec()?, case_name)
}

fn parse_slowdown(spec: &str, case_name: &str) -> Option<Slowdown> {
    let value = matching_value(spec, "slow-decode:", case_name)?;
    let (fraction, after) = match value.split_once('@') {
        Some((f, s)) => (f, s.parse::<f64>().ok().filter(|s| *s >= 0.0)?),
        None => (value.as_str(), 0.0),
    };
    let fraction: f64 = fraction.parse().ok()?;
    (fraction > 0.0 && fraction < 1.0).then(|| Slowdown {
        fraction,
        after: Duration::from_secs_f64(after),
    })
}

/// `session` with every decode step slowed as `slowdown` says (see [`FAULT_ENV`]); the
/// harness times the step around this wrapper, so the wait is measured as decoding.
pub fn slowed<'a>(session: Box<dyn Session + 'a>, slowdown: Slowdown) -> Box<dyn Session + 'a> {
    eprintln!(
        "edgebench: {FAULT_ENV} slows decoding by {:.0}% after {:.0} s",
        slowdown.fraction * 100.0,
        slowdown.after.as_secs_f64()
    );
    Box::new(SlowDecode {
        inner: session,
        extra_per_step: slowdown.fraction / (1.0 - slowdown.fraction),
        from: Instant::now() + slowdown.after,
    })
}

struct SlowDecode<'a> {
    inner: Box<dyn Session + 'a>,
    /// Wait after a step, as a multiple of the step's own time.
    extra_per_step: f64,
    /// Steps before this instant run at full speed.
    from: Instant,
}

impl Session for SlowDecode<'_> {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        self.inner.prefill(prompts)
    }
    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        let start = Instant::now();
        let out = self.inner.decode_step(inputs)?;
        if start < self.from {
            return Ok(out);
        }
        // Spins: a step of a small model takes less than `sleep`'s own overshoot.
        let until = start.elapsed().mul_f64(1.0 + self.extra_per_step);
        while start.elapsed() < until {
            std::hint::spin_loop();
        }
        Ok(out)
    }
    pass_through!();
}

/// After how many prefills [`FAULT_ENV`] makes `case_name`'s first tokens drift.
#[must_use]
pub fn first_token_drift(case_name: &str) -> Option<u32> {
    matching_value(&spec()?, "drift-first-token:", case_name)?
        .parse()
        .ok()
}

/// `session` with every first token after the `after`-th prefill shifted by one.
pub fn drifting<'a>(session: Box<dyn Session + 'a>, after: u32) -> Box<dyn Session + 'a> {
    eprintln!("edgebench: {FAULT_ENV} changes first tokens after {after} prefills");
    Box::new(DriftingFirstToken {
        inner: session,
        after,
        prefills: 0,
    })
}

struct DriftingFirstToken<'a> {
    inner: Box<dyn Session + 'a>,
    after: u32,
    prefills: u32,
}

impl Session for DriftingFirstToken<'_> {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let mut first = self.inner.prefill(prompts)?;
        self.prefills += 1;
        if self.prefills > self.after {
            for t in &mut first {
                *t = t.wrapping_add(1);
            }
        }
        Ok(first)
    }
    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        self.inner.decode_step(inputs)
    }
    pass_through!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowdown_applies_to_matching_cases_with_a_fraction_below_one() {
        let case = "code_generation::phi::Q4_0::llama_cpp::c1";
        let at = |fraction: f64, after: f64| {
            Some(Slowdown {
                fraction,
                after: Duration::from_secs_f64(after),
            })
        };
        assert_eq!(
            parse_slowdown("slow-decode:phi::Q4_0:0.25", case),
            at(0.25, 0.0)
        );
        assert_eq!(
            parse_slowdown("slow-decode:phi:0.3@10", case),
            at(0.3, 10.0)
        );
        assert_eq!(parse_slowdown("slow-decode:phi:0.3@-1", case), None);
        assert_eq!(parse_slowdown("slow-decode:mimo:0.25", case), None);
        assert_eq!(parse_slowdown("slow-decode:phi:1.5", case), None);
        assert_eq!(parse_slowdown("slow-decode:phi:x", case), None);
        assert_eq!(parse_slowdown("pause:phi:100", case), None);
    }
}
