//! The serving loop: turns a workload (requests with priorities and arrival times) into engine
//! steps on one [`Session`], with the core [`Scheduler`] deciding who holds a sequence slot.
//!
//! Between engine steps the loop takes arrivals, client cancellations and the scheduler's
//! decisions, as a server thread would. Each iteration then runs one prefill of every newly
//! admitted turn (one batch) and one decode step of every sequence that is generating (one
//! batch); sequences join and leave between steps (continuous batching). All times come from an
//! injected [`Clock`], so tests drive the loop with a fake engine and a fake clock.

use std::time::Instant;

use edgebench_backend::{BackendError, SeqId, Session, TokenId};
use edgebench_core::run_facts::RequestStatus;
use edgebench_core::schedule::{
    Cancelled, Decision, Priority, Rejection, RequestId, ScheduleError, Scheduler, SchedulerConfig,
};

/// A monotonic clock in nanoseconds since some fixed start.
pub trait Clock {
    fn now_ns(&self) -> u64;
    /// Waits until `deadline_ns`; the loop calls it only when no engine work is pending.
    fn sleep_until(&self, deadline_ns: u64);
}

/// The real clock: [`Instant`] since construction.
#[derive(Debug)]
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    #[must_use]
    pub fn start() -> Self {
        Self(Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let now = self.now_ns();
        if deadline_ns > now {
            std::thread::sleep(std::time::Duration::from_nanos(deadline_ns - now));
        }
    }
}

/// One request: a conversation of one or more turns, already tokenized.
#[derive(Debug, Clone)]
pub struct WorkItem {
    pub priority: Priority,
    pub turns: Vec<Vec<TokenId>>,
}

/// When requests arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// `clients` clients, each sending its next request as soon as its previous one is answered
    /// (or rejected); request `i` belongs to client `i % clients`.
    Closed { clients: usize },
    /// Request `i` arrives at `offsets_ns[i]`, whatever the server is doing.
    Open { offsets_ns: Vec<u64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub scheduler: SchedulerConfig,
    pub arrivals: Arrivals,
    /// Tokens generated per turn.
    pub generate: u32,
    /// A client gives up on a request this long after it arrived (queued or running).
    pub cancel_after_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Rejected(Rejection),
    Cancelled,
}

impl Outcome {
    /// The stored name (`requests.status`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        RequestStatus::from(self).as_str()
    }
}

impl From<Outcome> for RequestStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Completed => Self::Completed,
            Outcome::Rejected(r) => Self::Rejected(r),
            Outcome::Cancelled => Self::Cancelled,
        }
    }
}

/// One turn as the client saw it. Times are ns on the loop's clock, relative to its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnResult {
    pub tokens: Vec<TokenId>,
    /// When the turn was sent: the request's arrival for turn 0, the previous turn's last token
    /// for later turns.
    pub sent_ns: u64,
    /// Duration of the prefill call that processed this turn (shared with its batch).
    pub prefill_ns: u64,
    /// When its first token was ready.
    pub first_token_ns: u64,
    /// Time between consecutive tokens (inter-token latency), including steps the sequence
    /// waited for other sequences' prefills.
    pub token_gaps_ns: Vec<u64>,
    /// When its last token was ready (or it was cancelled).
    pub end_ns: u64,
}

/// Everything that happened to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub request: RequestId,
    pub priority: Priority,
    pub outcome: Outcome,
    pub arrived_ns: u64,
    /// Time in the queue before admission, rejection or cancellation.
    pub queue_ns: u64,
    pub slot: Option<SeqId>,
    /// Time to reset the slot's sequence at admission.
    pub reset_ns: u64,
    /// Turns served, complete or (when cancelled) partial.
    pub turns: Vec<TurnResult>,
}

/// What the engine did, summed over the whole workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTotals {
    pub prefill_calls: u64,
    pub prefill_tokens: u64,
    /// Turns prefilled; each prefill yields one sequence's first token.
    pub prefill_sequences: u64,
    pub prefill_ns: u64,
    pub decode_steps: u64,
    /// Tokens produced by decode steps (one per sequence per step).
    pub decode_tokens: u64,
    pub decode_ns: u64,
    /// Sum over decode steps of every stepped sequence's cache length: the KV entries the steps
    /// had to read.
    pub decode_kv_positions: u64,
    /// From the first arrival to the last request's end.
    pub wall_ns: u64,
}

/// The result of serving one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOutcome {
    /// One per request, in request order.
    pub served: Vec<Served>,
    pub steps: StepTotals,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("scheduler: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("open-loop arrivals list {offsets} times for {requests} requests")]
    ArrivalCount { offsets: usize, requests: usize },
    /// Nothing could happen any more (no arrival, timeout or running sequence ahead) while
    /// these requests had no answer: a scheduler that never admits them (zero slots, say).
    #[error(
        "{} request(s) never answered (first: {:?}); the serving loop had nothing left to wait for",
        requests.len(),
        &requests[..requests.len().min(8)]
    )]
    Unanswered { requests: Vec<RequestId> },
}

#[derive(Debug)]
enum Phase {
    NotArrived,
    Queued,
    /// Admitted; turn `turn` waits for its prefill.
    Prefill {
        turn: usize,
    },
    /// Generating turn `turn`; the last sampled token is fed next.
    Decode {
        turn: usize,
    },
    Done,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Set exactly once, when the request ends; `None` is a request still without an answer.
    outcome: Option<Outcome>,
    served: Served,
    /// Last token of the previous turn: sampled but not yet in the KV cache.
    carried: Option<TokenId>,
    /// Tokens in the sequence's KV cache.
    cached: u64,
    last_token_ns: u64,
}

/// Serves `work` on `session` under `config`. Every request ends exactly once (completed,
/// rejected or cancelled).
pub fn serve(
    session: &mut dyn Session,
    clock: &dyn Clock,
    work: &[WorkItem],
    config: &ServeConfig,
) -> Result<ServeOutcome, ServeError> {
    let mut steps = StepTotals::default();
    let start = clock.now_ns();
    let now = || clock.now_ns().saturating_sub(start);
    let mut scheduler = Scheduler::new(config.scheduler);
    let mut states: Vec<State> = work
        .iter()
        .enumerate()
        .map(|(request, item)| State {
            phase: Phase::NotArrived,
            outcome: None,
            served: Served {
                request,
                priority: item.priority,
                // Placeholder: the real outcome is `State::outcome`, copied in when the loop ends.
                outcome: Outcome::Cancelled,
                arrived_ns: 0,
                queue_ns: 0,
                slot: None,
                reset_ns: 0,
                turns: Vec::new(),
            },
            carried: None,
            cached: 0,
            last_token_ns: 0,
        })
        .collect();
    let mut pending = match &config.arrivals {
        Arrivals::Closed { clients } => Pending::new(
            (0..work.len().min((*clients).max(1)))
                .map(|r| (0, r))
                .collect(),
            Some((*clients).max(1)),
            work.len(),
        ),
        Arrivals::Open { offsets_ns } => {
            if offsets_ns.len() != work.len() {
                return Err(ServeError::ArrivalCount {
                    offsets: offsets_ns.len(),
                    requests: work.len(),
                });
            }
            Pending::new(
                offsets_ns.iter().copied().zip(0..).collect(),
                None,
                work.len(),
            )
        }
    };

    while !pending.all_ended() {
        let t = now();
        while let Some((at, r)) = pending.next_due(t) {
            let state = &mut states[r];
            state.served.arrived_ns = at;
            match scheduler.submit(r, work[r].priority, at)? {
                Ok(()) => state.phase = Phase::Queued,
                Err(rejection) => {
                    state.phase = Phase::Done;
                    state.outcome = Some(Outcome::Rejected(rejection));
                    pending.ended(r, t);
                }
            }
        }
        if let Some(after) = config.cancel_after_ns {
            for (r, state) in states.iter_mut().enumerate() {
                let active = matches!(
                    state.phase,
                    Phase::Queued | Phase::Prefill { .. } | Phase::Decode { .. }
                );
                if active && state.served.arrived_ns.saturating_add(after) <= t {
                    match scheduler.cancel(r, t) {
                        Some(Cancelled::Queued { queued_ns }) => state.served.queue_ns = queued_ns,
                        Some(Cancelled::Running { .. }) => {
                            if let Phase::Decode { turn } = state.phase {
                                state.served.turns[turn].end_ns = t;
                            }
                        }
                        None => {}
                    }
                    state.phase = Phase::Done;
                    state.outcome = Some(Outcome::Cancelled);
                    pending.ended(r, t);
                }
            }
        }
        for decision in scheduler.schedule(t) {
            match decision {
                Decision::Admitted {
                    request,
                    slot,
                    queued_ns,
                } => {
                    let reset_start = clock.now_ns();
                    session.reset(slot)?;
                    let state = &mut states[request];
                    state.served.reset_ns = clock.now_ns().saturating_sub(reset_start);
                    state.served.slot = Some(slot);
                    state.served.queue_ns = queued_ns;
                    state.cached = 0;
                    state.phase = Phase::Prefill { turn: 0 };
                }
                Decision::TimedOut { request, queued_ns } => {
                    let state = &mut states[request];
                    state.served.queue_ns = queued_ns;
                    state.outcome = Some(Outcome::Rejected(Rejection::AdmissionTimeout));
                    state.phase = Phase::Done;
                    pending.ended(request, t);
                }
            }
        }

        let mut worked = false;
        // Prefill every turn waiting for it, as one batch.
        let waiting: Vec<(RequestId, usize)> = states
            .iter()
            .enumerate()
            .filter_map(|(r, s)| match s.phase {
                Phase::Prefill { turn } => Some((r, turn)),
                _ => None,
            })
            .collect();
        if !waiting.is_empty() {
            worked = true;
            let inputs: Vec<(SeqId, Vec<TokenId>)> = waiting
                .iter()
                .map(|&(r, turn)| {
                    let s = &states[r];
                    let tokens = s
                        .carried
                        .into_iter()
                        .chain(work[r].turns[turn].iter().copied())
                        .collect();
                    (s.served.slot.unwrap_or_default(), tokens)
                })
                .collect();
            let batch: Vec<(SeqId, &[TokenId])> =
                inputs.iter().map(|(s, t)| (*s, t.as_slice())).collect();
            let before = now();
            let first = session.prefill(&batch)?;
            let after = now();
            steps.prefill_calls += 1;
            steps.prefill_sequences += inputs.len() as u64;
            steps.prefill_tokens += inputs.iter().map(|(_, t)| t.len() as u64).sum::<u64>();
            steps.prefill_ns += after - before;
            for (&(r, _), (_, tokens)) in waiting.iter().zip(&inputs) {
                states[r].cached += tokens.len() as u64;
            }
            for (&(r, turn), token) in waiting.iter().zip(first) {
                let s = &mut states[r];
                let sent_ns = if turn == 0 {
                    s.served.arrived_ns
                } else {
                    s.last_token_ns
                };
                s.served.turns.push(TurnResult {
                    tokens: vec![token],
                    sent_ns,
                    prefill_ns: after - before,
                    first_token_ns: after,
                    token_gaps_ns: Vec::new(),
                    end_ns: after,
                });
                s.last_token_ns = after;
                s.phase = Phase::Decode { turn };
            }
        }
        // One decode step for every generating sequence (a turn with one token to generate is
        // finished by its prefill).
        finish_turns(
            &mut states,
            work,
            config.generate,
            &mut scheduler,
            &mut pending,
        )?;
        let generating: Vec<(RequestId, usize)> = states
            .iter()
            .enumerate()
            .filter_map(|(r, s)| match s.phase {
                Phase::Decode { turn } => Some((r, turn)),
                _ => None,
            })
            .collect();
        if !generating.is_empty() {
            worked = true;
            let batch: Vec<(SeqId, TokenId)> = generating
                .iter()
                .map(|&(r, turn)| {
                    let s = &states[r];
                    let last = s.served.turns[turn]
                        .tokens
                        .last()
                        .copied()
                        .unwrap_or_default();
                    (s.served.slot.unwrap_or_default(), last)
                })
                .collect();
            let before = now();
            let next = session.decode_step(&batch)?;
            let after = now();
            steps.decode_steps += 1;
            steps.decode_tokens += batch.len() as u64;
            steps.decode_ns += after - before;
            for &(r, _) in &generating {
                // The fed token joins the cache; the step reads every entry.
                states[r].cached += 1;
                steps.decode_kv_positions += states[r].cached;
            }
            for (&(r, turn), token) in generating.iter().zip(next) {
                let s = &mut states[r];
                let result = &mut s.served.turns[turn];
                result.tokens.push(token);
                result.token_gaps_ns.push(after - s.last_token_ns);
                result.end_ns = after;
                s.last_token_ns = after;
            }
            finish_turns(
                &mut states,
                work,
                config.generate,
                &mut scheduler,
                &mut pending,
            )?;
        }

        if !worked && !pending.all_ended() {
            // Idle: nothing admitted is running, so wait for the next event.
            let next = [
                pending.next_at(),
                scheduler.next_timeout_ns(),
                config.cancel_after_ns.and_then(|after| {
                    states
                        .iter()
                        .filter(|s| matches!(s.phase, Phase::Queued))
                        .map(|s| s.served.arrived_ns.saturating_add(after))
                        .min()
                }),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(deadline) => clock.sleep_until(start + deadline),
                // Nothing can happen any more: the requests without an outcome are an error
                // below, never counted as completed.
                None => break,
            }
        }
    }
    let unanswered: Vec<RequestId> = states
        .iter()
        .filter(|s| s.outcome.is_none())
        .map(|s| s.served.request)
        .collect();
    if !unanswered.is_empty() {
        return Err(ServeError::Unanswered {
            requests: unanswered,
        });
    }
    let served: Vec<Served> = states
        .into_iter()
        .filter_map(|s| {
            Some(Served {
                outcome: s.outcome?,
                ..s.served
            })
        })
        .collect();
    let first = served.iter().map(|s| s.arrived_ns).min().unwrap_or(0);
    let last = served
        .iter()
        .map(|s| {
            s.turns
                .last()
                .map_or(s.arrived_ns + s.queue_ns, |t| t.end_ns)
        })
        .max()
        .unwrap_or(0);
    steps.wall_ns = last.saturating_sub(first);
    Ok(ServeOutcome { served, steps })
}

/// Moves sequences whose turn has all its tokens on: to the next turn's prefill, or out of their
/// slot when the conversation is over.
fn finish_turns(
    states: &mut [State],
    work: &[WorkItem],
    generate: u32,
    scheduler: &mut Scheduler,
    pending: &mut Pending,
) -> Result<(), ServeError> {
    for (r, s) in states.iter_mut().enumerate() {
        let Phase::Decode { turn } = s.phase else {
            continue;
        };
        let result = &s.served.turns[turn];
        if result.tokens.len() < generate.max(1) as usize {
            continue;
        }
        s.carried = result.tokens.last().copied();
        if turn + 1 < work[r].turns.len() {
            s.phase = Phase::Prefill { turn: turn + 1 };
        } else {
            s.phase = Phase::Done;
            s.outcome = Some(Outcome::Completed);
            scheduler.finish(r)?;
            pending.ended(r, result.end_ns);
        }
    }
    Ok(())
}

/// Requests not yet arrived, and how many have ended.
#[derive(Debug)]
struct Pending {
    /// (arrival time, request), latest first so `pop` takes the next one.
    queue: Vec<(u64, RequestId)>,
    /// Closed loop: request `r`'s end sends request `r + clients`.
    clients: Option<usize>,
    total: usize,
    ended: usize,
}

impl Pending {
    fn new(mut queue: Vec<(u64, RequestId)>, clients: Option<usize>, total: usize) -> Self {
        queue.sort_by(|a, b| b.cmp(a));
        Self {
            queue,
            clients,
            total,
            ended: 0,
        }
    }

    fn next_due(&mut self, now_ns: u64) -> Option<(u64, RequestId)> {
        if self.queue.last().is_some_and(|&(at, _)| at <= now_ns) {
            self.queue.pop()
        } else {
            None
        }
    }

    fn next_at(&self) -> Option<u64> {
        self.queue.last().map(|&(at, _)| at)
    }

    /// `request` ended at `at`: in a closed loop its client sends the next one then.
    fn ended(&mut self, request: RequestId, at: u64) {
        self.ended += 1;
        if let Some(clients) = self.clients
            && request + clients < self.total
        {
            self.queue.push((at, request + clients));
            self.queue.sort_by(|a, b| b.cmp(a));
        }
    }

    fn all_ended(&self) -> bool {
        self.ended >= self.total
    }
}

#[cfg(test)]
#[path = "serving_tests.rs"]
mod tests;
