//! A goodput case: the open loop served at a sweep of arrival rates (`edgebench_core::goodput`
//! picks each next rate and says when to stop), each request's TTFT and TPOT held against the
//! scenario's targets. The model loads once; each rate serves `requests_per_rate` requests, or
//! as many as arrive in [`SECONDS_PER_RATE`] at that rate if more (so a high rate is a load
//! held for a while, not a burst of a few milliseconds), the prompts repeated, with its own
//! seeded Poisson arrivals.

use std::path::Path;
use std::time::Instant;

use edgebench_core::goodput::{self, RatePoint, RequestLatency, SweepEnd};
use edgebench_core::schedule::{self, SchedulerConfig};
use edgebench_core::{Case, ModelEntry};

use super::measure::tokenize;
use super::serving::{self, Arrivals, MonotonicClock, Outcome, ServeConfig, WorkItem};
use super::{Inputs, Prepared, SessionFacts, case_error};
use crate::error::RunError;
use crate::{device_facts, prompt_set};

/// Each rate serves at least this long a stream of arrivals.
pub const SECONDS_PER_RATE: f64 = 2.0;
/// ... but never more requests than this at one rate.
const MAX_REQUESTS_PER_RATE: usize = 4096;

/// A goodput sweep.
#[derive(Debug, Clone)]
pub struct GoodputRun {
    pub targets: goodput::Targets,
    pub preset: Option<String>,
    pub points: Vec<RatePoint>,
    pub goodput_per_s: Option<f64>,
    pub end: SweepEnd,
    pub session: SessionFacts,
}

/// The latencies of one served request, as the client saw them.
fn latency(served: &serving::Served) -> RequestLatency {
    let ms = |ns: u64| ns as f64 / 1e6;
    match (served.outcome, served.turns.first()) {
        (Outcome::Completed, Some(turn)) => RequestLatency {
            ttft_ms: Some(ms(turn.first_token_ns.saturating_sub(turn.sent_ns))),
            tpot_ms: (!turn.token_gaps_ns.is_empty()).then(|| {
                ms(turn.token_gaps_ns.iter().sum::<u64>()) / turn.token_gaps_ns.len() as f64
            }),
        },
        _ => RequestLatency {
            ttft_ms: None,
            tpot_ms: None,
        },
    }
}

pub fn run(
    inputs: Inputs<'_>,
    case: &Case,
    entry: &ModelEntry,
    model_path: &Path,
    g: &edgebench_core::scenario::Goodput,
) -> Result<GoodputRun, RunError> {
    let s = &case.scenario;
    let prompts = prompt_set::load(&inputs.root.join(&s.dataset))?;
    let prompts = &prompts[..prompts.len().min(inputs.plan.prompts.max(1))];
    let prepared = Prepared::new(inputs, case, entry, model_path)?;
    let requests = tokenize(
        prepared.vocabulary.as_ref(),
        prepared.format,
        s.category,
        prompts,
        s.prompt_tokens,
    )?;
    if requests.is_empty() {
        return Err(case_error(case, format!("{} has no prompt", s.dataset)));
    }
    // Smoke runs check that the sweep works: two rates of a few requests.
    let (per_rate, sweep) = if inputs.mode.smoke {
        (
            4,
            goodput::SweepConfig {
                max_steps: 2,
                ..g.sweep
            },
        )
    } else {
        (g.requests_per_rate as usize, g.sweep)
    };
    let work_at = |rate: f64| -> Vec<WorkItem> {
        let count = if inputs.mode.smoke {
            per_rate
        } else {
            per_rate.max(((rate * SECONDS_PER_RATE).ceil() as usize).min(MAX_REQUESTS_PER_RATE))
        };
        let priorities = schedule::priority_mix(count, s.serving.priorities);
        (0..count)
            .map(|i| WorkItem {
                priority: priorities[i],
                turns: requests[i % requests.len()].turns.clone(),
            })
            .collect()
    };

    let (mut session, load_ms) = prepared.load(case, model_path)?;
    let cpu_before = device_facts::process_cpu_ms();
    let started = Instant::now();
    let mut points: Vec<RatePoint> = Vec::new();
    let end = loop {
        if started.elapsed().as_secs_f64() > g.max_seconds {
            break SweepEnd::TimeBudget;
        }
        let rate = match goodput::next_rate(&points, &sweep) {
            Ok(rate) => rate,
            Err(end) => break end,
        };
        let work = work_at(rate);
        let config = ServeConfig {
            scheduler: SchedulerConfig {
                slots: case.slots() as usize,
                queue_capacity: s.serving.queue_capacity.map_or(usize::MAX, |q| q as usize),
                admission_timeout_ns: s.serving.admission_timeout_ms.map(|ms| ms * 1_000_000),
            },
            arrivals: Arrivals::Open {
                offsets_ns: schedule::poisson_arrivals(
                    work.len(),
                    rate,
                    s.seed ^ ((points.len() as u64) << 32),
                ),
            },
            generate: s.generate_tokens,
            cancel_after_ns: s.serving.cancel_after_ms.map(|ms| ms * 1_000_000),
        };
        let outcome = serving::serve(session.as_mut(), &MonotonicClock::start(), &work, &config)
            .map_err(|e| case_error(case, format!("serving at {rate:.3} requests/s: {e}")))?;
        let latencies: Vec<RequestLatency> = outcome.served.iter().map(latency).collect();
        points.push(goodput::rate_point(rate, &latencies, &g.targets));
    };
    let cpu_time_ms = cpu_before
        .zip(device_facts::process_cpu_ms())
        .map(|(a, b)| b - a);
    Ok(GoodputRun {
        targets: g.targets,
        preset: g.preset.clone(),
        goodput_per_s: goodput::goodput(&points),
        points,
        end,
        session: prepared.facts(session, load_ms, cpu_time_ms),
    })
}
