//! The serving loop against a deterministic fake engine on a fake clock: scheduling order,
//! priorities, timeouts, cancellation, and that every request ends exactly once.

use std::cell::Cell;
use std::rc::Rc;

use edgebench_backend::{
    BackendError, Effective, EngineCounters, MemoryReport, SeqId, Session, TokenId,
};
use edgebench_core::schedule::{Priority, Rejection, SchedulerConfig, poisson_arrivals};

use super::{Arrivals, Clock, Outcome, ServeConfig, Served, WorkItem, serve};

/// A clock that moves only when the fake engine works or the loop sleeps.
#[derive(Debug, Default)]
struct FakeClock(Cell<u64>);

impl FakeClock {
    fn advance(&self, ns: u64) {
        self.0.set(self.0.get() + ns);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.0.set(self.0.get().max(deadline_ns));
    }
}

const PREFILL_CALL_NS: u64 = 10_000;
const PREFILL_TOKEN_NS: u64 = 100;
const DECODE_STEP_NS: u64 = 1_000;

/// A deterministic engine: the next token is a hash of the sequence's whole history, so a
/// sequence that saw another's tokens (a missed reset, a mixed-up slot) produces other tokens.
/// Every call costs fixed fake time.
#[derive(Debug)]
struct FakeEngine {
    clock: Rc<FakeClock>,
    history: Vec<Vec<TokenId>>,
    /// Every call: ("prefill" | "decode" | "reset", slots).
    calls: Vec<(&'static str, Vec<SeqId>)>,
}

impl FakeEngine {
    fn new(clock: Rc<FakeClock>, slots: usize) -> Self {
        Self {
            clock,
            history: vec![Vec::new(); slots],
            calls: Vec::new(),
        }
    }

    fn next_token(history: &[TokenId]) -> TokenId {
        let h = history
            .iter()
            .fold(17u64, |h, &t| h.wrapping_mul(31).wrapping_add(t as u64));
        (h % 1000) as TokenId
    }

    fn slot(&mut self, seq: SeqId) -> Result<&mut Vec<TokenId>, BackendError> {
        let max = self.history.len() as u32;
        self.history
            .get_mut(seq)
            .ok_or(BackendError::BadSequence { seq, max })
    }
}

impl Session for FakeEngine {
    fn prefill(&mut self, prompts: &[(SeqId, &[TokenId])]) -> Result<Vec<TokenId>, BackendError> {
        let tokens: usize = prompts.iter().map(|(_, p)| p.len()).sum();
        self.clock
            .advance(PREFILL_CALL_NS + PREFILL_TOKEN_NS * tokens as u64);
        self.calls
            .push(("prefill", prompts.iter().map(|p| p.0).collect()));
        prompts
            .iter()
            .map(|&(seq, p)| {
                let h = self.slot(seq)?;
                h.extend_from_slice(p);
                Ok(Self::next_token(h))
            })
            .collect()
    }

    fn decode_step(&mut self, inputs: &[(SeqId, TokenId)]) -> Result<Vec<TokenId>, BackendError> {
        self.clock.advance(DECODE_STEP_NS);
        self.calls
            .push(("decode", inputs.iter().map(|i| i.0).collect()));
        inputs
            .iter()
            .map(|&(seq, t)| {
                let h = self.slot(seq)?;
                h.push(t);
                Ok(Self::next_token(h))
            })
            .collect()
    }

    fn reset(&mut self, seq: SeqId) -> Result<(), BackendError> {
        self.calls.push(("reset", vec![seq]));
        self.slot(seq)?.clear();
        Ok(())
    }

    fn prompt_logits(&mut self, _: SeqId, _: &[TokenId]) -> Result<Vec<f32>, BackendError> {
        Err(BackendError::Unsupported {
            engine: "fake",
            what: "logits".into(),
        })
    }

    fn memory(&self) -> MemoryReport {
        MemoryReport::default()
    }

    fn effective(&self) -> Effective {
        Effective {
            kv_storage: "none".into(),
            flash_attention: false,
            weights: edgebench_backend::WeightsLoading::Read,
            scheduling: edgebench_backend::Scheduling::Batched,
        }
    }

    fn counters(&mut self) -> Option<EngineCounters> {
        None
    }
}

fn work(n: usize, priorities: &[Priority]) -> Vec<WorkItem> {
    (0..n)
        .map(|i| WorkItem {
            priority: priorities.get(i).copied().unwrap_or(Priority::Normal),
            turns: vec![vec![1, i as TokenId + 2, 3]],
        })
        .collect()
}

fn config(slots: usize, queue: usize, arrivals: Arrivals) -> ServeConfig {
    ServeConfig {
        scheduler: SchedulerConfig {
            slots,
            queue_capacity: queue,
            admission_timeout_ns: None,
        },
        arrivals,
        generate: 4,
        cancel_after_ns: None,
    }
}

fn run(work: &[WorkItem], config: &ServeConfig) -> (Vec<Served>, FakeEngine) {
    let clock = Rc::new(FakeClock::default());
    let slots = config.scheduler.slots;
    let mut engine = FakeEngine::new(Rc::clone(&clock), slots);
    let served = match serve(&mut engine, clock.as_ref(), work, config) {
        Ok(s) => s.served,
        Err(e) => panic!("serve failed: {e}"),
    };
    (served, engine)
}

/// What one request generates alone on a fresh sequence.
fn alone(item: &WorkItem, generate: usize) -> Vec<Vec<TokenId>> {
    let mut history = Vec::new();
    let mut carried = None;
    item.turns
        .iter()
        .map(|turn| {
            history.extend(carried.into_iter().chain(turn.iter().copied()));
            let mut out = vec![FakeEngine::next_token(&history)];
            while out.len() < generate {
                history.push(*out.last().unwrap_or(&0));
                out.push(FakeEngine::next_token(&history));
            }
            carried = out.last().copied();
            out
        })
        .collect()
}

#[test]
fn a_request_that_is_never_answered_is_an_error_not_a_completion() {
    // No slot ever frees up and nothing times out: the loop has nothing left to wait for.
    let work = work(3, &[]);
    let clock = Rc::new(FakeClock::default());
    let mut engine = FakeEngine::new(Rc::clone(&clock), 1);
    let config = config(0, 64, Arrivals::Closed { clients: 3 });
    match serve(&mut engine, clock.as_ref(), &work, &config) {
        Err(super::ServeError::Unanswered { requests }) => assert_eq!(requests, vec![0, 1, 2]),
        Err(other) => panic!("wrong error: {other}"),
        Ok(outcome) => panic!("served without a slot: {:?}", outcomes(&outcome.served)),
    }
    assert!(engine.calls.is_empty(), "{:?}", engine.calls);
}

fn outcomes(served: &[Served]) -> Vec<Outcome> {
    served.iter().map(|s| s.outcome).collect()
}

#[test]
fn closed_loop_serves_every_request_once_with_the_tokens_it_gets_alone() {
    let work = work(10, &[]);
    let (served, engine) = run(&work, &config(4, 64, Arrivals::Closed { clients: 4 }));
    assert_eq!(served.len(), 10);
    for (i, s) in served.iter().enumerate() {
        assert_eq!(s.request, i);
        assert_eq!(s.outcome, Outcome::Completed);
        let tokens: Vec<_> = s.turns.iter().map(|t| t.tokens.clone()).collect();
        assert_eq!(tokens, alone(&work[i], 4), "request {i}");
        assert_eq!(s.queue_ns, 0, "slots = clients: nobody waits");
    }
    // 4 clients: the first wave is one prefill of 4 sequences, then 3 decode steps of 4.
    assert_eq!(engine.calls[4], ("prefill", vec![0, 1, 2, 3]));
    assert_eq!(engine.calls[5], ("decode", vec![0, 1, 2, 3]));
    // Exactly one reset per request.
    assert_eq!(engine.calls.iter().filter(|c| c.0 == "reset").count(), 10);
}

#[test]
fn fewer_slots_than_clients_queue_in_priority_order() {
    use Priority::{Batch, Normal, Realtime};
    let priorities = [Batch, Normal, Realtime, Batch, Realtime, Normal];
    let work = work(6, &priorities);
    let (served, _) = run(&work, &config(2, 64, Arrivals::Closed { clients: 6 }));
    assert!(served.iter().all(|s| s.outcome == Outcome::Completed));
    let mut by_admission: Vec<_> = served.iter().map(|s| (s.queue_ns, s.request)).collect();
    by_admission.sort();
    let order: Vec<_> = by_admission.iter().map(|&(_, r)| priorities[r]).collect();
    assert_eq!(
        order,
        vec![Realtime, Realtime, Normal, Normal, Batch, Batch]
    );
    // Two at a time: the second pair waited one full request (prefill + 3 decode steps).
    let one_request = PREFILL_CALL_NS + 6 * PREFILL_TOKEN_NS + 3 * DECODE_STEP_NS;
    assert_eq!(by_admission[2].0, one_request);
    assert_eq!(served[2].queue_ns, 0);
}

#[test]
fn a_full_queue_and_the_admission_timeout_reject_instead_of_blocking() {
    let work = work(8, &[]);
    let mut cfg = config(
        1,
        3,
        Arrivals::Open {
            offsets_ns: vec![0; 8],
        },
    );
    let (served, _) = run(&work, &cfg);
    let rejected = served
        .iter()
        .filter(|s| s.outcome == Outcome::Rejected(Rejection::QueueFull))
        .count();
    // All arrive at once: 3 fit in the queue (one is admitted later), the other 5 are turned away.
    assert_eq!(rejected, 5);
    assert!(
        served
            .iter()
            .filter(|s| s.outcome == Outcome::Completed)
            .all(|s| s.turns.len() == 1)
    );

    cfg.scheduler.queue_capacity = 8;
    cfg.scheduler.admission_timeout_ns = Some(20_000);
    let (served, _) = run(&work, &cfg);
    let one_request = PREFILL_CALL_NS + 3 * PREFILL_TOKEN_NS + 3 * DECODE_STEP_NS;
    for s in &served {
        match s.outcome {
            Outcome::Completed => assert!(s.queue_ns <= 20_000),
            Outcome::Rejected(Rejection::AdmissionTimeout) => assert!(s.queue_ns > 20_000),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Requests run back to back, 13.3 µs each: the ones starting within 20 µs get in.
    let completed = outcomes(&served)
        .iter()
        .filter(|&&o| o == Outcome::Completed)
        .count();
    assert_eq!(completed as u64, 20_000 / one_request + 1);
}

#[test]
fn cancellation_frees_the_slot_for_the_next_request() {
    let mut work = work(3, &[]);
    // The first request would take very long.
    work[0].turns = vec![vec![5; 10]; 50];
    let mut cfg = config(
        1,
        8,
        Arrivals::Open {
            offsets_ns: vec![0, 1, 2],
        },
    );
    cfg.cancel_after_ns = Some(100_000);
    let (served, engine) = run(&work, &cfg);
    assert_eq!(served[0].outcome, Outcome::Cancelled);
    assert!(!served[0].turns.is_empty(), "it was running when cancelled");
    assert_eq!(served[1].outcome, Outcome::Cancelled, "it waited too long");
    assert_eq!(served[1].turns.len(), 0);
    assert!(served[1].queue_ns >= 100_000 - 1);
    // The third arrived too, also waited 100 µs, and was cancelled while queued.
    assert_eq!(served[2].outcome, Outcome::Cancelled);
    // After the cancellations the engine stops being driven.
    assert!(engine.calls.len() < 200);
}

#[test]
fn open_loop_arrivals_wait_idle_and_record_queue_time() {
    let work = work(20, &[]);
    let offsets = poisson_arrivals(20, 50_000.0, 3);
    let (served, _) = run(
        &work,
        &config(
            2,
            64,
            Arrivals::Open {
                offsets_ns: offsets.clone(),
            },
        ),
    );
    for (s, &at) in served.iter().zip(&offsets) {
        assert_eq!(s.arrived_ns, at);
        assert_eq!(s.outcome, Outcome::Completed);
        let t = &s.turns[0];
        assert!(t.first_token_ns >= at + s.queue_ns);
        assert_eq!(t.token_gaps_ns.len(), 3);
        assert_eq!(
            t.end_ns,
            t.first_token_ns + t.token_gaps_ns.iter().sum::<u64>()
        );
    }
    // Same seed, same schedule.
    let (again, _) = run(
        &work,
        &config(
            2,
            64,
            Arrivals::Open {
                offsets_ns: offsets,
            },
        ),
    );
    assert_eq!(served, again);
}

#[test]
fn multi_turn_conversations_keep_their_cache_between_turns_while_others_join() {
    let mut work = work(5, &[]);
    work[0].turns = vec![vec![1, 2], vec![3, 4, 5], vec![6]];
    work[3].turns = vec![vec![9], vec![8, 7]];
    // Request 1 arrives while request 0 is generating its first turn.
    let offsets_ns = vec![0, 11_000, 11_000, 30_000, 30_000];
    let (served, engine) = run(&work, &config(2, 64, Arrivals::Open { offsets_ns }));
    for (i, s) in served.iter().enumerate() {
        let tokens: Vec<_> = s.turns.iter().map(|t| t.tokens.clone()).collect();
        assert_eq!(tokens, alone(&work[i], 4), "request {i}");
        for pair in s.turns.windows(2) {
            assert_eq!(pair[1].sent_ns, pair[0].end_ns);
        }
    }
    // Some prefill ran while another sequence was mid-turn (continuous batching).
    assert!(
        engine
            .calls
            .windows(2)
            .any(|w| w[0].0 == "prefill" && w[1].0 == "decode" && w[1].1.len() > w[0].1.len())
    );
}

#[test]
fn step_totals_count_what_the_engine_did() {
    let work = work(4, &[]);
    let clock = Rc::new(FakeClock::default());
    let mut engine = FakeEngine::new(Rc::clone(&clock), 2);
    let cfg = config(2, 64, Arrivals::Closed { clients: 2 });
    let outcome = serve(&mut engine, clock.as_ref(), &work, &cfg).expect("serve");
    let s = outcome.steps;
    // Two waves of two: one prefill of 2 × 3 tokens and 3 decode steps of 2 sequences each.
    assert_eq!((s.prefill_calls, s.prefill_tokens), (2, 12));
    assert_eq!((s.decode_steps, s.decode_tokens), (6, 12));
    assert_eq!(s.decode_ns, 6 * DECODE_STEP_NS);
    assert_eq!(s.prefill_ns, 2 * (PREFILL_CALL_NS + 6 * PREFILL_TOKEN_NS));
    // Cache lengths read per wave: 2 × (4 + 5 + 6).
    assert_eq!(s.decode_kv_positions, 2 * 2 * (4 + 5 + 6));
    assert_eq!(s.wall_ns, clock.now_ns());
}
