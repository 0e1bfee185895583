//! Facts about the device measured rather than read: memory bandwidth (a STREAM-style triad),
//! process CPU time and, where the kernel exposes it, RAPL energy.

use std::time::Instant;

/// Kind name of the triad bandwidth in `device_measurements`.
pub const TRIAD_KIND: &str = "triad_bandwidth_bytes_per_s";

/// One triad measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Triad {
    /// Best repetition, bytes moved per second (STREAM reports the best).
    pub best_bytes_per_s: f64,
    pub median_bytes_per_s: f64,
    pub repetitions: Vec<f64>,
    /// Bytes of each of the three arrays.
    pub array_bytes: usize,
    pub threads: usize,
    pub seed: u64,
}

/// STREAM triad `a[i] = b[i] + s·c[i]` over three f64 arrays of `array_bytes` each, split over
/// every available core, `repetitions` times. Counts 3 × `array_bytes` per repetition (two reads,
/// one write; write-allocate traffic is not counted, as in STREAM). The arrays are filled from
/// `seed` so every run does identical work.
#[must_use]
pub fn triad(array_bytes: usize, repetitions: usize, seed: u64) -> Triad {
    let n = (array_bytes / 8).max(1);
    let mut rng = edgebench_core::stats::SplitMix64::new(seed);
    let b: Vec<f64> = (0..n)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    let c: Vec<f64> = (0..n)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    let mut a = vec![0.0f64; n];
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = n.div_ceil(threads);
    let scalar = 3.0;
    let mut rates = Vec::with_capacity(repetitions);
    for _ in 0..repetitions.max(1) {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                scope.spawn(move || {
                    for ((x, y), z) in a.iter_mut().zip(b).zip(c) {
                        *x = y + scalar * z;
                    }
                });
            }
        });
        let seconds = start.elapsed().as_secs_f64();
        // Keep the result observable so the loop can't be optimised away.
        std::hint::black_box(&a);
        rates.push(3.0 * (n * 8) as f64 / seconds.max(1e-9));
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    Triad {
        best_bytes_per_s: sorted[sorted.len() - 1],
        median_bytes_per_s: edgebench_core::stats::percentile_sorted(&sorted, 50.0),
        repetitions: rates,
        array_bytes: n * 8,
        threads,
        seed,
    }
}

/// Array size and seed of the probe beside each case: the device probe's, so the two agree.
pub const PROBE_ARRAY_BYTES: usize = 96 << 20;
pub const PROBE_SEED: u64 = 20_261_125;
/// Repetitions of the probe before a case and again after it.
pub const PROBE_REPETITIONS: usize = 3;

/// The bandwidth probe's repetitions around one case: before it and after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeBeside {
    pub repetitions_bytes_per_s: Vec<f64>,
}

impl ProbeBeside {
    /// The probe's repetitions before a case.
    #[must_use]
    pub fn before() -> Self {
        Self {
            repetitions_bytes_per_s: triad(PROBE_ARRAY_BYTES, PROBE_REPETITIONS, PROBE_SEED)
                .repetitions,
        }
    }

    /// Adds the repetitions after the case.
    pub fn and_after(&mut self) {
        self.repetitions_bytes_per_s
            .extend(triad(PROBE_ARRAY_BYTES, PROBE_REPETITIONS, PROBE_SEED).repetitions);
    }

    #[must_use]
    pub fn median(&self) -> f64 {
        let mut sorted = self.repetitions_bytes_per_s.clone();
        sorted.sort_by(f64::total_cmp);
        edgebench_core::stats::percentile_sorted(&sorted, 50.0)
    }

    #[must_use]
    pub fn spread(&self) -> ProbeSpread {
        let r = &self.repetitions_bytes_per_s;
        ProbeSpread {
            n: r.len() as u32,
            min_bytes_per_s: r.iter().copied().fold(f64::INFINITY, f64::min),
            max_bytes_per_s: r.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// How far a probe's repetitions spread: their count and extremes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeSpread {
    pub n: u32,
    pub min_bytes_per_s: f64,
    pub max_bytes_per_s: f64,
}

/// User + system CPU time of this process so far, in milliseconds (Linux `/proc/self/stat`,
/// whose tick is the fixed user-space `USER_HZ` of 100).
#[must_use]
pub fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// CPU time the whole machine spent busy since boot (every core: user, nice, system, irq,
/// softirq, steal; `/proc/stat`, in USER_HZ ticks of 10 ms), in ms. `None` off Linux.
#[must_use]
pub fn machine_busy_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy * 10.0)
}

/// The 1-minute load average (`/proc/loadavg`).
#[must_use]
pub fn load_average_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Package energy counters from RAPL, when this machine exposes them to this user.
#[derive(Debug, Clone)]
pub struct Rapl {
    zones: Vec<(std::path::PathBuf, u64)>,
}

impl Rapl {
    /// Every readable `intel-rapl:N` package zone; `None` when there is none.
    #[must_use]
    pub fn open() -> Option<Self> {
        let dir = std::fs::read_dir("/sys/class/powercap").ok()?;
        let zones: Vec<_> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("intel-rapl:") && n.matches(':').count() == 1)
            })
            .filter_map(|p| {
                let max = std::fs::read_to_string(p.join("max_energy_range_uj")).ok()?;
                let max = max.trim().parse().ok()?;
                std::fs::read_to_string(p.join("energy_uj")).ok()?;
                Some((p.join("energy_uj"), max))
            })
            .collect();
        (!zones.is_empty()).then_some(Self { zones })
    }

    /// Current counter of every zone, in µJ.
    #[must_use]
    pub fn read(&self) -> Option<Vec<u64>> {
        self.zones
            .iter()
            .map(|(p, _)| std::fs::read_to_string(p).ok()?.trim().parse().ok())
            .collect()
    }

    /// Joules between two readings, allowing each counter to wrap once.
    #[must_use]
    pub fn joules_between(&self, before: &[u64], after: &[u64]) -> f64 {
        self.zones
            .iter()
            .zip(before.iter().zip(after))
            .map(|((_, max), (&b, &a))| if a >= b { a - b } else { max - b + a })
            .sum::<u64>() as f64
            / 1e6
    }
}

/// Mean current frequency of the CPUs that expose one, in MHz
/// (`/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq`, kHz); `None` where none does (VMs).
#[must_use]
pub fn cpu_mhz() -> Option<f64> {
    let entries = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    let khz: Vec<f64> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("cpu") && name[3..].chars().all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("cpufreq/scaling_cur_freq")).ok())
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .collect();
    (!khz.is_empty()).then(|| khz.iter().sum::<f64>() / khz.len() as f64 / 1e3)
}

/// Every readable thermal zone's temperature in °C, by its type (`/sys/class/thermal`; a
/// repeated type gets its zone number appended). Empty where the host exposes none.
#[must_use]
pub fn temperatures_c() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/sys/class/thermal") else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("thermal_zone") {
            continue;
        }
        let Some(milli) = std::fs::read_to_string(e.path().join("temp"))
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
        else {
            continue;
        };
        let kind = std::fs::read_to_string(e.path().join("type"))
            .map_or_else(|_| name.clone(), |t| t.trim().to_owned());
        let key = if out.contains_key(&kind) {
            format!("{kind}:{}", &name["thermal_zone".len()..])
        } else {
            kind
        };
        out.insert(key, milli / 1e3);
    }
    out
}

/// The hottest thermal zone, in °C.
#[must_use]
pub fn hottest_c() -> Option<f64> {
    temperatures_c().into_values().reduce(f64::max)
}

/// Kind name of the device's idle temperature in `device_measurements` (the hottest zone when
/// the device's first database was opened, before any case ran): what a cool-down waits for.
pub const IDLE_TEMPERATURE_KIND: &str = "idle_temperature_c";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triad_moves_the_bytes_it_claims_at_a_plausible_rate() {
        let t = triad(8 << 20, 3, 1);
        assert_eq!(t.repetitions.len(), 3);
        assert_eq!(t.array_bytes, 8 << 20);
        // Anything from a phone (1 GB/s) to a server socket (1 TB/s) is plausible; zero or
        // infinity means the timing or the byte count is wrong.
        assert!(
            t.best_bytes_per_s > 1e9 && t.best_bytes_per_s < 1e12,
            "{t:?}"
        );
        assert!(t.median_bytes_per_s <= t.best_bytes_per_s);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_ms().expect("linux /proc");
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed().as_millis() < 120 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let after = process_cpu_ms().expect("linux /proc");
        assert!(
            after - before >= 50.0,
            "{before} → {after} ms after 120 ms of spinning"
        );
    }

    #[test]
    fn rapl_wraparound_is_counted_once() {
        let rapl = Rapl {
            zones: vec![("x".into(), 1_000_000)],
        };
        assert!((rapl.joules_between(&[900_000], &[100_000]) - 0.2).abs() < 1e-9);
        assert!((rapl.joules_between(&[100_000], &[400_000]) - 0.3).abs() < 1e-9);
    }
}
