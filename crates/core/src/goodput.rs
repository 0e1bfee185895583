//! Goodput under latency targets: the highest arrival rate at which at least 90% of requests
//! meet both a time-to-first-token and a time-per-output-token target (MLPerf Client-style
//! presets), found by a sweep whose stopping rule bounds its length.
//!
//! The sweep: start at a rate, double it while the rate passes; after the first failing rate,
//! bisect (geometrically) between the highest passing and the lowest failing rate until they
//! are within 20% of each other; never more than `max_steps` rates. The caller also stops it
//! at its time budget. Pure: the caller serves each rate and hands in what it measured.

/// The latency targets a request must meet, and the share of requests that must meet them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Targets {
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    pub share: f64,
}

/// Named presets (MLPerf Client's interactive and conversational-style latency classes).
pub const PRESETS: &[(&str, Targets)] = &[
    (
        "interactive",
        Targets {
            ttft_ms: 500.0,
            tpot_ms: 30.0,
            share: 0.9,
        },
    ),
    (
        "conversational",
        Targets {
            ttft_ms: 2000.0,
            tpot_ms: 100.0,
            share: 0.9,
        },
    ),
];

/// The preset named `name`.
#[must_use]
pub fn preset(name: &str) -> Option<Targets> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// One request as the client saw it: `None` latencies for a request that never completed
/// (rejected, timed out, cancelled), which meets no target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestLatency {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
}

impl Targets {
    #[must_use]
    pub fn met_by(&self, r: &RequestLatency) -> bool {
        // A one-token answer has no time per output token: only its TTFT counts.
        matches!(r.ttft_ms, Some(t) if t <= self.ttft_ms)
            && r.tpot_ms.is_none_or(|t| t <= self.tpot_ms)
    }
}

/// What one rate of the sweep measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePoint {
    pub rate_per_s: f64,
    pub requests: usize,
    pub met_share: f64,
    pub passed: bool,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p90_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub tpot_p90_ms: Option<f64>,
}

fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(crate::stats::percentile_sorted(&v, p))
}

/// Summarises the requests served at `rate_per_s`.
#[must_use]
pub fn rate_point(rate_per_s: f64, requests: &[RequestLatency], targets: &Targets) -> RatePoint {
    let met = requests.iter().filter(|r| targets.met_by(r)).count();
    let met_share = met as f64 / requests.len().max(1) as f64;
    let ttft: Vec<f64> = requests.iter().filter_map(|r| r.ttft_ms).collect();
    let tpot: Vec<f64> = requests.iter().filter_map(|r| r.tpot_ms).collect();
    RatePoint {
        rate_per_s,
        requests: requests.len(),
        met_share,
        passed: !requests.is_empty() && met_share >= targets.share,
        ttft_p50_ms: percentile(&ttft, 50.0),
        ttft_p90_ms: percentile(&ttft, 90.0),
        tpot_p50_ms: percentile(&tpot, 50.0),
        tpot_p90_ms: percentile(&tpot, 90.0),
    }
}

/// How the sweep moves and when it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepConfig {
    pub start_rate_per_s: f64,
    pub max_steps: usize,
    /// Bisection ends once highest passing × this ≥ lowest failing.
    pub resolution: f64,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            start_rate_per_s: 1.0,
            max_steps: 8,
            resolution: 1.2,
        }
    }
}

/// Why the sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepEnd {
    /// Passing and failing rates within the resolution.
    Resolved,
    MaxSteps,
    /// The caller's time budget (it stops asking).
    TimeBudget,
}

impl SweepEnd {
    /// The stored name (`runs.goodput`'s `end`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::MaxSteps => "max_steps",
            Self::TimeBudget => "time_budget",
        }
    }
}

crate::named_enum!(SweepEnd, "sweep end", [Resolved, MaxSteps, TimeBudget]);

/// The next rate to serve after `points`, or why the sweep is over.
pub fn next_rate(points: &[RatePoint], config: &SweepConfig) -> Result<f64, SweepEnd> {
    if points.len() >= config.max_steps {
        return Err(SweepEnd::MaxSteps);
    }
    let best_pass = points
        .iter()
        .filter(|p| p.passed)
        .map(|p| p.rate_per_s)
        .reduce(f64::max);
    let lowest_fail = points
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.rate_per_s)
        .reduce(f64::min);
    match (best_pass, lowest_fail) {
        (None, None) => Ok(config.start_rate_per_s),
        (Some(pass), None) => Ok(pass * 2.0),
        // Even the lowest rate fails: go down until one passes (or the steps run out).
        (None, Some(fail)) => Ok(fail / 2.0),
        (Some(pass), Some(fail)) if pass * config.resolution >= fail => Err(SweepEnd::Resolved),
        (Some(pass), Some(fail)) => Ok((pass * fail).sqrt()),
    }
}

/// The goodput: the highest passing rate below every failing one (a passing rate above a
/// failing one is luck of the draw, not capacity).
#[must_use]
pub fn goodput(points: &[RatePoint]) -> Option<f64> {
    let lowest_fail = points
        .iter()
        .filter(|p| !p.passed)
        .map(|p| p.rate_per_s)
        .fold(f64::INFINITY, f64::min);
    points
        .iter()
        .filter(|p| p.passed && p.rate_per_s < lowest_fail)
        .map(|p| p.rate_per_s)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose TTFT grows past 500 ms above `capacity` requests/s.
    fn serve(rate: f64, capacity: f64) -> Vec<RequestLatency> {
        (0..20)
            .map(|i| {
                let load = rate / capacity;
                let ttft =
                    100.0 * load * (1.0 + f64::from(i) / 40.0) * if load > 1.0 { 5.0 } else { 1.0 };
                RequestLatency {
                    ttft_ms: Some(ttft),
                    tpot_ms: Some(20.0),
                }
            })
            .collect()
    }

    #[test]
    fn the_sweep_brackets_the_capacity_within_its_resolution_and_steps() {
        let targets = preset("interactive").expect("preset");
        let config = SweepConfig::default();
        let mut points = Vec::new();
        let end = loop {
            match next_rate(&points, &config) {
                Ok(rate) => points.push(rate_point(rate, &serve(rate, 3.0), &targets)),
                Err(end) => break end,
            }
        };
        assert_eq!(end, SweepEnd::Resolved, "{points:?}");
        assert!(points.len() <= config.max_steps);
        let g = goodput(&points).expect("goodput");
        assert!((3.0 / 1.2..=3.0).contains(&g), "{g} from {points:?}");
        // Rates: 1, 2, 4 (fails), then bisection between 2 and 4.
        assert_eq!(
            points[..3].iter().map(|p| p.rate_per_s).collect::<Vec<_>>(),
            [1.0, 2.0, 4.0]
        );
    }

    #[test]
    fn incomplete_requests_meet_nothing_and_a_slow_server_has_no_goodput() {
        let targets = preset("conversational").expect("preset");
        let rejected = RequestLatency {
            ttft_ms: None,
            tpot_ms: None,
        };
        assert!(!targets.met_by(&rejected));
        let p = rate_point(1.0, &[rejected; 10], &targets);
        assert!(!p.passed && p.met_share == 0.0);
        let config = SweepConfig {
            max_steps: 4,
            ..SweepConfig::default()
        };
        let mut points = vec![p];
        while let Ok(rate) = next_rate(&points, &config) {
            assert!(rate < 1.0, "goes down from a failing start");
            points.push(rate_point(rate, &[rejected; 10], &targets));
        }
        assert_eq!(next_rate(&points, &config), Err(SweepEnd::MaxSteps));
        assert_eq!(goodput(&points), None);
    }

    #[test]
    fn a_passing_rate_above_a_failing_one_is_not_goodput() {
        let targets = preset("interactive").expect("preset");
        let ok = RequestLatency {
            ttft_ms: Some(100.0),
            tpot_ms: Some(10.0),
        };
        let slow = RequestLatency {
            ttft_ms: Some(900.0),
            tpot_ms: Some(10.0),
        };
        let points = [
            rate_point(1.0, &[ok; 10], &targets),
            rate_point(2.0, &[slow; 10], &targets),
            rate_point(4.0, &[ok; 10], &targets),
        ];
        assert_eq!(goodput(&points), Some(1.0));
    }
}
