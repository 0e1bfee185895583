//! The request scheduler: `slots` sequences served at once, a bounded queue in front of them,
//! three priority classes, an admission timeout and cancellation.
//!
//! Pure: times are nanoseconds handed in by the caller (the serving loop reads its injected
//! clock), so every rule is testable without sleeping. The scheduler decides who runs; it never
//! touches an engine.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// Caller-chosen identity of a request (the serving loop uses its index in the workload).
pub type RequestId = usize;

/// Priority classes, served strictly in this order; first come, first served within a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Realtime,
    Normal,
    Batch,
}

impl Priority {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Realtime => "realtime",
            Self::Normal => "normal",
            Self::Batch => "batch",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Sequences served at the same time (the engine's parallel sequences).
    pub slots: usize,
    /// Requests that may wait for a slot; a request arriving at a full queue is rejected.
    pub queue_capacity: usize,
    /// A queued request not admitted within this time is rejected instead of waiting forever.
    pub admission_timeout_ns: Option<u64>,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    QueueFull,
    AdmissionTimeout,
}

crate::named_enum!(Priority, "priority", [Realtime, Normal, Batch]);
crate::named_enum!(Rejection, "rejection", [QueueFull, AdmissionTimeout]);

impl Rejection {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::AdmissionTimeout => "admission_timeout",
        }
    }
}

/// What [`Scheduler::schedule`] decided at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request holds `slot` from now on; it waited `queued_ns`.
    Admitted {
        request: RequestId,
        slot: usize,
        queued_ns: u64,
    },
    /// The request waited past the admission timeout and left the queue.
    TimedOut { request: RequestId, queued_ns: u64 },
}

/// Where a cancelled request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Still waiting: it leaves the queue after `queued_ns`.
    Queued { queued_ns: u64 },
    /// Being served: its slot is free again.
    Running { slot: usize },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("request {0} was already submitted")]
    Duplicate(RequestId),
    #[error("request {0} is not running")]
    NotRunning(RequestId),
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    request: RequestId,
    since_ns: u64,
}

#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    queues: [VecDeque<Waiting>; 3],
    free_slots: BTreeSet<usize>,
    running: HashMap<RequestId, usize>,
    submitted: BTreeSet<RequestId>,
}

impl Scheduler {
    #[must_use]
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            queues: Default::default(),
            free_slots: (0..config.slots).collect(),
            running: HashMap::new(),
            submitted: BTreeSet::new(),
        }
    }

    #[must_use]
    pub fn config(&self) -> SchedulerConfig {
        self.config
    }

    /// Puts `request`, arrived at `arrived_ns`, in its class's queue, or rejects it when the
    /// queue (all classes together) is full. Admission happens in [`Self::schedule`].
    pub fn submit(
        &mut self,
        request: RequestId,
        priority: Priority,
        arrived_ns: u64,
    ) -> Result<Result<(), Rejection>, ScheduleError> {
        if !self.submitted.insert(request) {
            return Err(ScheduleError::Duplicate(request));
        }
        if self.queued() >= self.config.queue_capacity {
            return Ok(Err(Rejection::QueueFull));
        }
        self.queues[priority.index()].push_back(Waiting {
            request,
            since_ns: arrived_ns,
        });
        Ok(Ok(()))
    }

    /// At `now_ns`: first drops queued requests that waited longer than the admission timeout,
    /// then fills free slots by priority (lowest slot number first).
    pub fn schedule(&mut self, now_ns: u64) -> Vec<Decision> {
        let mut decisions = Vec::new();
        if let Some(timeout) = self.config.admission_timeout_ns {
            for queue in &mut self.queues {
                queue.retain(|w| {
                    let waited = now_ns.saturating_sub(w.since_ns);
                    let keep = waited <= timeout;
                    if !keep {
                        decisions.push(Decision::TimedOut {
                            request: w.request,
                            queued_ns: waited,
                        });
                    }
                    keep
                });
            }
        }
        while let Some(&slot) = self.free_slots.first() {
            let Some(waiting) = self.queues.iter_mut().find_map(VecDeque::pop_front) else {
                break;
            };
            self.free_slots.remove(&slot);
            self.running.insert(waiting.request, slot);
            decisions.push(Decision::Admitted {
                request: waiting.request,
                slot,
                queued_ns: now_ns.saturating_sub(waiting.since_ns),
            });
        }
        decisions
    }

    /// The running `request` is done; its slot is free for the next [`Self::schedule`].
    pub fn finish(&mut self, request: RequestId) -> Result<usize, ScheduleError> {
        let slot = self
            .running
            .remove(&request)
            .ok_or(ScheduleError::NotRunning(request))?;
        self.free_slots.insert(slot);
        Ok(slot)
    }

    /// Withdraws `request` wherever it is; `None` when it is neither queued nor running
    /// (finished, rejected, or never submitted).
    pub fn cancel(&mut self, request: RequestId, now_ns: u64) -> Option<Cancelled> {
        if let Some(slot) = self.running.remove(&request) {
            self.free_slots.insert(slot);
            return Some(Cancelled::Running { slot });
        }
        for queue in &mut self.queues {
            if let Some(i) = queue.iter().position(|w| w.request == request) {
                let w = queue.remove(i)?;
                return Some(Cancelled::Queued {
                    queued_ns: now_ns.saturating_sub(w.since_ns),
                });
            }
        }
        None
    }

    /// When the earliest queued request times out, if any does.
    #[must_use]
    pub fn next_timeout_ns(&self) -> Option<u64> {
        let timeout = self.config.admission_timeout_ns?;
        self.queues
            .iter()
            .flatten()
            .map(|w| w.since_ns.saturating_add(timeout).saturating_add(1))
            .min()
    }

    #[must_use]
    pub fn queued(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    #[must_use]
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The slot `request` holds, if it is running.
    #[must_use]
    pub fn slot_of(&self, request: RequestId) -> Option<usize> {
        self.running.get(&request).copied()
    }
}

/// Seeded Poisson arrivals: `count` arrival times (ns from the start) with exponential gaps at
/// `rate_per_s` requests per second. The same seed gives the same times on every machine.
#[must_use]
pub fn poisson_arrivals(count: usize, rate_per_s: f64, seed: u64) -> Vec<u64> {
    let mut rng = crate::stats::SplitMix64::new(seed);
    let mut t = 0.0_f64;
    (0..count)
        .map(|_| {
            // Uniform in (0, 1]: 53 random bits, never 0, so ln is finite.
            let u = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
            t += -u.ln() / rate_per_s;
            (t * 1e9) as u64
        })
        .collect()
}

/// Assigns priority classes to `count` requests in proportion to `weights` (realtime, normal,
/// batch), interleaved deterministically (largest remaining deficit first) so every prefix of
/// the workload has nearly the requested mix.
#[must_use]
pub fn priority_mix(count: usize, weights: [u32; 3]) -> Vec<Priority> {
    let total: u32 = weights.iter().sum();
    if total == 0 {
        return vec![Priority::Normal; count];
    }
    let mut given = [0u64; 3];
    (0..count)
        .map(|i| {
            let i = i as u64 + 1;
            // The class furthest behind its share of the first i requests.
            let (class, _) = (0..3)
                .map(|c| {
                    let want = i * u64::from(weights[c]);
                    let have = given[c] * u64::from(total);
                    (c, want as i128 - have as i128)
                })
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .unwrap_or((1, 0));
            given[class] += 1;
            Priority::ALL[class]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(slots: usize, queue: usize, timeout: Option<u64>) -> SchedulerConfig {
        SchedulerConfig {
            slots,
            queue_capacity: queue,
            admission_timeout_ns: timeout,
        }
    }

    fn admitted(d: &[Decision]) -> Vec<(RequestId, usize)> {
        d.iter()
            .filter_map(|d| match *d {
                Decision::Admitted { request, slot, .. } => Some((request, slot)),
                Decision::TimedOut { .. } => None,
            })
            .collect()
    }

    #[test]
    fn fills_slots_in_priority_order_then_fifo() {
        let mut s = Scheduler::new(config(2, 10, None));
        for (id, p) in [
            (0, Priority::Batch),
            (1, Priority::Normal),
            (2, Priority::Realtime),
            (3, Priority::Normal),
            (4, Priority::Realtime),
        ] {
            assert_eq!(s.submit(id, p, 0), Ok(Ok(())));
        }
        assert_eq!(admitted(&s.schedule(5)), vec![(2, 0), (4, 1)]);
        assert_eq!(s.queued(), 3);
        assert_eq!(s.running(), 2);
        assert_eq!((s.slot_of(2), s.slot_of(4)), (Some(0), Some(1)));
        assert_eq!(s.slot_of(1), None, "queued, not running");
        assert_eq!(s.finish(4), Ok(1));
        assert_eq!(admitted(&s.schedule(9)), vec![(1, 1)]);
        assert_eq!(s.finish(2), Ok(0));
        assert_eq!(s.finish(1), Ok(1));
        assert_eq!(admitted(&s.schedule(10)), vec![(3, 0), (0, 1)]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn queue_wait_counts_from_arrival() {
        let mut s = Scheduler::new(config(1, 4, None));
        s.submit(7, Priority::Normal, 100).ok();
        s.submit(8, Priority::Normal, 150).ok();
        assert_eq!(
            s.schedule(400),
            vec![Decision::Admitted {
                request: 7,
                slot: 0,
                queued_ns: 300
            }]
        );
        s.finish(7).ok();
        assert_eq!(
            s.schedule(1000),
            vec![Decision::Admitted {
                request: 8,
                slot: 0,
                queued_ns: 850
            }]
        );
    }

    #[test]
    fn full_queue_rejects_and_duplicates_are_errors() {
        let mut s = Scheduler::new(config(1, 2, None));
        assert_eq!(s.submit(0, Priority::Normal, 0), Ok(Ok(())));
        assert_eq!(s.submit(1, Priority::Normal, 0), Ok(Ok(())));
        assert_eq!(
            s.submit(2, Priority::Realtime, 0),
            Ok(Err(Rejection::QueueFull))
        );
        assert_eq!(
            s.submit(1, Priority::Normal, 0),
            Err(ScheduleError::Duplicate(1))
        );
        // Admission makes room in the queue.
        assert_eq!(admitted(&s.schedule(1)), vec![(0, 0)]);
        assert_eq!(s.submit(3, Priority::Normal, 1), Ok(Ok(())));
    }

    #[test]
    fn admission_timeout_rejects_rather_than_waits() {
        let mut s = Scheduler::new(config(1, 10, Some(1_000)));
        s.submit(0, Priority::Normal, 0).ok();
        s.submit(1, Priority::Normal, 0).ok();
        s.submit(2, Priority::Normal, 500).ok();
        assert_eq!(admitted(&s.schedule(0)), vec![(0, 0)]);
        assert_eq!(s.next_timeout_ns(), Some(1_001));
        // Exactly at the timeout it may still be admitted; one ns later it is gone.
        assert!(s.schedule(1_000).is_empty());
        assert_eq!(
            s.schedule(1_001),
            vec![Decision::TimedOut {
                request: 1,
                queued_ns: 1_001
            }]
        );
        s.finish(0).ok();
        assert_eq!(admitted(&s.schedule(1_400)), vec![(2, 0)]);
        assert_eq!(s.next_timeout_ns(), None);
    }

    #[test]
    fn cancel_frees_the_slot_or_leaves_the_queue() {
        let mut s = Scheduler::new(config(1, 10, None));
        s.submit(0, Priority::Normal, 0).ok();
        s.submit(1, Priority::Normal, 0).ok();
        s.schedule(0);
        assert_eq!(s.cancel(1, 40), Some(Cancelled::Queued { queued_ns: 40 }));
        assert_eq!(s.cancel(0, 50), Some(Cancelled::Running { slot: 0 }));
        assert_eq!(s.cancel(0, 60), None);
        assert_eq!(s.finish(0), Err(ScheduleError::NotRunning(0)));
        assert_eq!((s.running(), s.queued()), (0, 0));
        s.submit(2, Priority::Batch, 70).ok();
        assert_eq!(admitted(&s.schedule(70)), vec![(2, 0)]);
    }

    #[test]
    fn poisson_arrivals_are_seeded_increasing_and_at_the_rate() {
        let a = poisson_arrivals(20_000, 4.0, 7);
        assert_eq!(a, poisson_arrivals(20_000, 4.0, 7));
        assert_ne!(a[..10], poisson_arrivals(10, 4.0, 8)[..]);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // 20,000 arrivals at 4/s take about 5,000 s; the relative sd of the sum is 1/sqrt(n).
        let seconds = *a.last().unwrap_or(&0) as f64 / 1e9;
        assert!((seconds / 5_000.0 - 1.0).abs() < 0.03, "{seconds}");
    }

    #[test]
    fn priority_mix_follows_the_weights_in_every_prefix() {
        let mix = priority_mix(12, [1, 2, 1]);
        let count = |p| mix.iter().filter(|&&q| q == p).count();
        assert_eq!(
            (
                count(Priority::Realtime),
                count(Priority::Normal),
                count(Priority::Batch)
            ),
            (3, 6, 3)
        );
        assert_eq!(
            mix[..4].iter().filter(|&&q| q == Priority::Normal).count(),
            2
        );
        assert_eq!(priority_mix(3, [0, 0, 0]), vec![Priority::Normal; 3]);
        assert_eq!(priority_mix(2, [0, 0, 5]), vec![Priority::Batch; 2]);
    }
}
