//! Whether other processes shared the machine while a run measured: the CPU time the whole
//! machine spent busy over the measured part, minus the run's own, as a share of the cores'
//! time. A run where others held a meaningful share is *contended*: shown so, and kept out of
//! comparisons and history verdicts (a compile beside a full-size case cut its speed eightfold
//! here). Pure: the caller reads the counters.

/// Others' share of the cores above which a run is contended. A quiet machine's background
/// (the kernel, the test runner waiting) stays well under it.
pub const CONTENDED_SHARE: f64 = 0.10;

/// The metric name a run's others' CPU share is stored under (unit `fraction`).
pub const OTHERS_CPU_SHARE_METRIC: &str = "host_others_cpu_share";
/// The metric name of the 1-minute load average at the end of the measured part.
pub const LOAD_METRIC: &str = "host_load_1m";

/// Others' share of the machine's CPU time over `wall_ms` on `cores` cores: the machine's busy
/// time minus the run's own, clamped to [0, 1].
#[must_use]
pub fn others_share(machine_busy_ms: f64, own_cpu_ms: f64, wall_ms: f64, cores: usize) -> f64 {
    let capacity = wall_ms * cores.max(1) as f64;
    if capacity.is_nan() || capacity <= 0.0 {
        return 0.0;
    }
    ((machine_busy_ms - own_cpu_ms).max(0.0) / capacity).clamp(0.0, 1.0)
}

/// Whether others' share makes a run contended.
#[must_use]
pub fn is_contended(others_share: f64) -> bool {
    others_share > CONTENDED_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_share_is_the_machines_busy_time_less_the_runs_own() {
        // 10 s on 2 cores, the run busy 19 s, the machine 19.5 s: others held 2.5%.
        let quiet = others_share(19_500.0, 19_000.0, 10_000.0, 2);
        assert!((quiet - 0.025).abs() < 1e-12, "{quiet}");
        assert!(!is_contended(quiet));
        // A compile beside it: the machine busy the whole 20 s, the run only 11 s of it.
        let busy = others_share(20_000.0, 11_000.0, 10_000.0, 2);
        assert!((busy - 0.45).abs() < 1e-12 && is_contended(busy), "{busy}");
        // Counter skew never gives a negative or above-one share.
        assert_eq!(others_share(100.0, 200.0, 1_000.0, 2), 0.0);
        assert_eq!(others_share(1e9, 0.0, 1_000.0, 2), 1.0);
        assert_eq!(others_share(1.0, 0.0, 0.0, 2), 0.0);
    }
}
