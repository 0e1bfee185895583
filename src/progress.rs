//! The harness's progress: cases done out of the selected total, and an estimate of the time
//! left from the cases that ran so far (ignored ones take no time). No clock here: the harness
//! hands in how long each case took and how long the run has been going.

use std::time::Duration;

use crate::display::{HarnessEvent, TimeLeft};

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    total: usize,
    done: usize,
    ran: usize,
    ran_time: Duration,
}

impl Progress {
    #[must_use]
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            ran: 0,
            ran_time: Duration::ZERO,
        }
    }

    /// Counts one finished case (`ran`: passed or failed, not ignored) that took `took`,
    /// `elapsed` into the run: the event to show.
    pub fn finished(
        &mut self,
        ran: bool,
        took: Duration,
        elapsed: Duration,
    ) -> HarnessEvent<'static> {
        self.done += 1;
        if ran {
            self.ran += 1;
            self.ran_time += took;
        }
        let left_cases = self.total.saturating_sub(self.done);
        let left = if left_cases == 0 {
            TimeLeft::None
        } else if self.ran == 0 {
            TimeLeft::Unknown
        } else {
            TimeLeft::About(self.ran_time.mul_f64(left_cases as f64 / self.ran as f64))
        };
        HarnessEvent::Progress {
            done: self.done,
            total: self.total.max(self.done),
            elapsed,
            left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_comes_from_cases_that_ran_only() {
        let mut p = Progress::new(4);
        let s = Duration::from_secs;
        let left = |e: HarnessEvent<'_>| match e {
            HarnessEvent::Progress { left, .. } => left,
            other => panic!("{other:?}"),
        };
        assert_eq!(left(p.finished(false, s(0), s(1))), TimeLeft::Unknown);
        // One ran in 10 s; two cases are left.
        assert_eq!(left(p.finished(true, s(10), s(11))), TimeLeft::About(s(20)));
        assert_eq!(left(p.finished(true, s(30), s(41))), TimeLeft::About(s(20)));
        assert_eq!(left(p.finished(false, s(0), s(41))), TimeLeft::None);
        // A case past the announced total (libtest ran more than counted) never shows 5/4.
        assert!(matches!(
            p.finished(true, s(1), s(42)),
            HarnessEvent::Progress {
                done: 5,
                total: 5,
                ..
            }
        ));
    }
}
