//! A sustained case: one sequence decoding without pause for the scenario's seconds (20 s in
//! smoke runs), tokens/s, CPU frequency and temperatures sampled at 1 Hz, then the throttle
//! detector (`edgebench_core::throttle`) over the series. When the sequence fills its context
//! it is reset and its prompt prefilled again: the series is what a long generation sustains,
//! those few milliseconds included. An optional cool-down waits first for the device to come
//! back to its idle temperature.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use edgebench_core::scenario::{Cooldown, SUSTAINED_SMOKE_SECONDS};
use edgebench_core::throttle::{self, Throttle};
use edgebench_core::{Case, ModelEntry};

use super::measure::tokenize;
use super::{Inputs, Prepared, SessionFacts, case_error};
use crate::error::RunError;
use crate::{device_facts, prompt_set};

/// Seconds between samples.
pub const INTERVAL_S: f64 = 1.0;

/// One 1 Hz sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since decoding began, at the end of this sample's window.
    pub t_s: f64,
    pub tokens_per_s: f64,
    pub cpu_mhz: Option<f64>,
    pub temps_c: BTreeMap<String, f64>,
}

/// What a cool-down did.
#[derive(Debug, Clone, PartialEq)]
pub enum CooldownRecord {
    Skipped(String),
    Waited {
        config: Cooldown,
        idle_c: f64,
        start_c: f64,
        end_c: f64,
        waited_s: f64,
        reached: bool,
    },
}

/// A sustained run.
#[derive(Debug, Clone)]
pub struct SustainedRun {
    pub samples: Vec<Sample>,
    pub throttle: Throttle,
    pub cooldown: Option<CooldownRecord>,
    pub seconds: u32,
    pub decoded_tokens: u64,
    pub session: SessionFacts,
    pub first_output_tokens: Vec<edgebench_backend::TokenId>,
}

/// Waits (bounded) until the hottest zone is within the margin of the idle temperature.
fn cool_down(config: Cooldown, idle_c: Option<f64>) -> CooldownRecord {
    let (Some(idle_c), Some(start_c)) = (idle_c, device_facts::hottest_c()) else {
        return CooldownRecord::Skipped(
            "no thermal zone readable on this host (or no idle temperature stored)".into(),
        );
    };
    let started = Instant::now();
    let limit = Duration::from_secs(u64::from(config.max_seconds));
    let mut now_c = start_c;
    while now_c > idle_c + config.margin_c && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(500));
        now_c = device_facts::hottest_c().unwrap_or(now_c);
    }
    CooldownRecord::Waited {
        config,
        idle_c,
        start_c,
        end_c: now_c,
        waited_s: started.elapsed().as_secs_f64(),
        reached: now_c <= idle_c + config.margin_c,
    }
}

pub fn run(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
    sustained: edgebench_core::scenario::Sustained,
) -> Result<SustainedRun, RunError> {
    let s = &case.scenario;
    let seconds = if inputs.mode.smoke {
        sustained.seconds.min(SUSTAINED_SMOKE_SECONDS)
    } else {
        sustained.seconds
    };
    let prompts = prompt_set::load(&inputs.root.join(&s.dataset))?;
    let prepared = Prepared::new(inputs, case, entry, model_path)?;
    let requests = tokenize(
        prepared.vocabulary.as_ref(),
        prepared.format,
        s.category,
        &prompts[..prompts.len().min(1)],
        s.prompt_tokens,
    )?;
    let prompt = requests
        .first()
        .and_then(|r| r.turns.first().cloned())
        .ok_or_else(|| case_error(case, format!("{} has no prompt", s.dataset)))?;
    // Room left in the context after the prompt: then the sequence starts over.
    let room = (case.context() as usize)
        .saturating_sub(prompt.len() + 1)
        .max(1);

    let cooldown = sustained
        .cooldown
        .map(|c| cool_down(c, inputs.idle_temperature_c));
    let (mut session, load_ms) = prepared.load(case, model_path)?;

    let cpu_before = device_facts::process_cpu_ms();
    let mut samples = Vec::new();
    let mut token = session.prefill(&[(0, prompt.as_slice())])?[0];
    let first_output_tokens = vec![token];
    let (mut in_context, mut decoded, mut in_window) = (0usize, 0u64, 0u64);
    let start = Instant::now();
    let mut window_start = Duration::ZERO;
    let interval = Duration::from_secs_f64(INTERVAL_S);
    let mut next_tick = interval;
    let end = Duration::from_secs(u64::from(seconds));
    loop {
        if in_context >= room {
            session.reset(0)?;
            token = session.prefill(&[(0, prompt.as_slice())])?[0];
            in_context = 0;
        }
        token = session.decode_step(&[(0, token)])?[0];
        in_context += 1;
        decoded += 1;
        in_window += 1;
        let now = start.elapsed();
        if now >= next_tick {
            let window = (now - window_start).as_secs_f64();
            samples.push(Sample {
                t_s: now.as_secs_f64(),
                tokens_per_s: in_window as f64 / window,
                cpu_mhz: device_facts::cpu_mhz(),
                temps_c: device_facts::temperatures_c(),
            });
            in_window = 0;
            window_start = now;
            next_tick += interval;
            if now >= end {
                break;
            }
        }
    }
    let cpu_time_ms = cpu_before
        .zip(device_facts::process_cpu_ms())
        .map(|(a, b)| b - a);
    let rates: Vec<f64> = samples.iter().map(|s| s.tokens_per_s).collect();
    Ok(SustainedRun {
        throttle: throttle::analyze(&rates, INTERVAL_S),
        samples,
        cooldown,
        seconds,
        decoded_tokens: decoded,
        session: prepared.facts(session, load_ms, cpu_time_ms),
        first_output_tokens,
    })
}
