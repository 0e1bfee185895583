//! Verdicts from a case's history instead of from two runs: the between-run spread of run
//! medians, estimated robustly from the nights before, and a one-sided CUSUM over the nights
//! that standardises each new median against it.
//!
//! Why CUSUM: a nightly series moves by noise every night and by a real change once; a
//! threshold on one night (conbench's z-score band) must be wide to keep false alerts rare, so
//! it misses a 10% step hidden in 5% noise, while a CUSUM adds up the evidence of consecutive
//! nights and flags a persistent shift within a few nights at the same false-alert rate (its
//! average run length without a change is set by `threshold`). The reference is the median
//! and the MAD of a trailing window, so one outlier night moves neither. A series too short to
//! estimate its spread gets no verdict ("not enough history"), never a guess.
//!
//! Why a rank test beside it: the CUSUM measures nights in spreads of the main speed mode, and a
//! series with several modes (a twin that runs at 12,000 or 7,500 t/s by process) or with hot
//! nights (a throttling device) has nights far outside that spread on its own. Such nights are
//! no change as long as the newest nights sit among the reference's own: a regression also
//! needs the newest [`HistoryConfig::confirm`] nights to rank so far below the reference that,
//! were every night drawn alike (nothing changed, whatever the modes), that would happen with
//! probability under [`HistoryConfig::rank_alpha`]. The bound holds for any distribution of
//! nights, so a slow mode seen in the reference vetoes what it explains, and a change the size
//! of a mode is still found by persistence (three nights in a row below all but a few).
//!
//! Pure: the caller hands in the medians in night order.

/// How the history is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryConfig {
    /// Nights the reference (median and spread) is estimated from, at most.
    pub window: usize,
    /// Fewer reference nights than this: not enough history.
    pub min_reference: usize,
    /// The most recent nights the CUSUM runs over (a change older than this is the new normal
    /// and already in the reference).
    pub lookback: usize,
    /// CUSUM allowance, in robust standard deviations: drift smaller than this is ignored.
    pub allowance: f64,
    /// CUSUM decision threshold, in robust standard deviations.
    pub threshold: f64,
    /// The spread never counts as smaller than this fraction of the median (a run of identical
    /// medians would otherwise make every wobble an alert).
    pub min_relative_spread: f64,
    /// A night counts at most this many spreads in the CUSUM (a Huber-clipped CUSUM): one
    /// night far out cannot raise an alert by itself, however far.
    pub clip: f64,
    /// The newest this many nights must all lie off the reference on the same side: a night or
    /// two far out (another job on the machine) are no regression until the next confirms it.
    pub confirm: usize,
    /// A change also needs the newest `confirm` nights to rank beyond the reference with
    /// probability under this were the nights exchangeable (see the module's docs).
    pub rank_alpha: f64,
}

impl Default for HistoryConfig {
    /// 30 reference nights (at least 8), the last 5 nights judged, allowance 0.5 σ, threshold
    /// 6 σ, three nights to confirm, ranked beyond the reference at p < 0.01: without a change,
    /// under 1 false alert per 100 nights in the simulation below, outlier nights included, and
    /// on the recorded real series; a step of 4 σ is flagged within 3 nights nine times in ten.
    fn default() -> Self {
        Self {
            window: 30,
            min_reference: 8,
            lookback: 5,
            allowance: 0.5,
            threshold: 6.0,
            min_relative_spread: 0.005,
            clip: 3.0,
            confirm: 3,
            rank_alpha: 0.01,
        }
    }
}

/// What the history says of the newest night.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryVerdict {
    /// Fewer reference nights than [`HistoryConfig::min_reference`].
    NotEnoughHistory { have: usize, need: usize },
    /// Within the noise.
    Steady(Evidence),
    /// A persistent drop since night `since` (an index into the series).
    Regression { since: usize, evidence: Evidence },
    /// A persistent rise since night `since`.
    Improvement { since: usize, evidence: Evidence },
}

/// The numbers behind a verdict, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Median of the reference nights.
    pub reference_median: f64,
    /// Robust standard deviation of the reference nights (1.4826 × MAD, floored).
    pub spread: f64,
    /// The newest night in spreads from the reference median.
    pub z: f64,
    /// The CUSUM of drops and of rises at the newest night, in spreads (both ≥ 0).
    pub cusum_down: f64,
    pub cusum_up: f64,
    /// The smallest step (as a fraction of the median) this spread lets the CUSUM flag within
    /// 3 nights: (threshold / 3 + allowance) × spread ÷ median.
    pub detectable_step: f64,
    /// The probability, were all nights drawn alike, that the newest `confirm` nights rank at
    /// least as low among the reference as they do (for a drop; as high, for a rise): the
    /// smaller of the two. Above `rank_alpha`, the reference's own nights explain them.
    pub rank_p: f64,
}

/// The median of `values` (sorted in place); not for an empty slice.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The chance that `newest.len()` nights drawn like the `reference` nights (exchangeable: the
/// same distribution, whatever its modes) would all be at or below the highest of `newest`
/// (`below`) or at or above its lowest: with `r` reference nights on that side of it, the newest
/// `m` are then among the `r + m` most extreme of `n + m`, which happens with probability
/// C(r + m, m) / C(n + m, m). Ties count on that side, so the figure errs towards "explained".
fn rank_probability(reference: &[f64], newest: &[f64], below: bool) -> f64 {
    let (n, m) = (reference.len(), newest.len());
    let bound = if below {
        newest.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    } else {
        newest.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let r = reference
        .iter()
        .filter(|&&v| if below { v <= bound } else { v >= bound })
        .count();
    (1..=m).map(|i| (r + i) as f64 / (n + i) as f64).product()
}

/// Judges the newest value of `series` (run medians, oldest first) against the nights before.
#[must_use]
pub fn judge(series: &[f64], config: &HistoryConfig) -> HistoryVerdict {
    let n = series.len();
    let recent = config.lookback.min(n);
    let reference_end = n - recent;
    let reference_start = reference_end.saturating_sub(config.window);
    let mut reference: Vec<f64> = series[reference_start..reference_end]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if reference.len() < config.min_reference {
        return HistoryVerdict::NotEnoughHistory {
            have: reference.len(),
            need: config.min_reference,
        };
    }
    let newest = &series[n.saturating_sub(config.confirm.max(1))..];
    let rank_down = rank_probability(&reference, newest, true);
    let rank_up = rank_probability(&reference, newest, false);
    let center = median(&mut reference);
    let mut deviations: Vec<f64> = reference.iter().map(|v| (v - center).abs()).collect();
    let spread = (1.4826 * median(&mut deviations)).max(config.min_relative_spread * center.abs());
    let z_of = |v: f64| (v - center) / spread;
    // One-sided CUSUMs over the recent nights, remembering where each last left zero.
    let (mut down, mut up) = (0.0f64, 0.0f64);
    let (mut down_since, mut up_since) = (reference_end, reference_end);
    for (i, &v) in series.iter().enumerate().skip(reference_end) {
        let z = z_of(v);
        if down == 0.0 {
            down_since = i;
        }
        if up == 0.0 {
            up_since = i;
        }
        let z = z.clamp(-config.clip, config.clip);
        down = (down - z - config.allowance).max(0.0);
        up = (up + z - config.allowance).max(0.0);
    }
    let evidence = Evidence {
        reference_median: center,
        spread,
        z: series.last().map_or(0.0, |&v| z_of(v)),
        cusum_down: down,
        cusum_up: up,
        detectable_step: (config.threshold / 3.0 + config.allowance) * spread / center.abs(),
        rank_p: rank_down.min(rank_up),
    };
    // The newest nights must all still be off the reference: a lone bad night leaves the
    // CUSUM high, but it is no standing regression until the next night confirms it, nor once
    // the series has recovered. And they must rank beyond what the reference's own nights
    // explain (its slow mode, its hot nights).
    let still_low = newest.iter().all(|&v| z_of(v) < -2.0 * config.allowance);
    let still_high = newest.iter().all(|&v| z_of(v) > 2.0 * config.allowance);
    if down > config.threshold && still_low && rank_down < config.rank_alpha {
        HistoryVerdict::Regression {
            since: down_since,
            evidence,
        }
    } else if up > config.threshold && still_high && rank_up < config.rank_alpha {
        HistoryVerdict::Improvement {
            since: up_since,
            evidence,
        }
    } else {
        HistoryVerdict::Steady(evidence)
    }
}

/// The spread of run medians across runs of unchanged code: what a calibration measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetweenRuns {
    pub runs: usize,
    pub median: f64,
    /// 1.4826 × MAD ÷ median: the robust standard deviation the verdicts use, relative.
    pub robust_spread: f64,
    /// Standard deviation ÷ mean (outliers count fully here).
    pub cv: f64,
    pub min: f64,
    pub max: f64,
}

/// [`BetweenRuns`] of `run_medians`; `None` below 2 finite values.
#[must_use]
pub fn between_runs(run_medians: &[f64]) -> Option<BetweenRuns> {
    let mut values: Vec<f64> = run_medians
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let center = median(&mut values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    let mad = median(&mut deviations);
    Some(BetweenRuns {
        runs: values.len(),
        median: center,
        robust_spread: 1.4826 * mad / center.abs(),
        cv: sd / mean.abs(),
        min: values[0],
        max: values[values.len() - 1],
    })
}

/// What [`simulate`] found: how often unchanged series raise an alert, how often a step down
/// is flagged in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Simulation {
    pub series: usize,
    /// Nights judged without any change (each series from its 41st night on).
    pub nights_judged: usize,
    pub false_alerts_per_100: f64,
    /// The injected step, as a fraction of the level (0.1: 10% slower).
    pub step: f64,
    /// Share of stepped series flagged by the third night after the step.
    pub detected_within_3: f64,
}

/// A standard normal draw (Box–Muller).
fn standard_normal(rng: &mut crate::stats::SplitMix64) -> f64 {
    let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let (u, v) = (uniform().max(1e-300), uniform());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Nights of history before the judged ones in [`simulate`], and nights per unchanged series.
const SIMULATED_HISTORY: usize = 40;
const SIMULATED_NIGHTS: usize = 140;

/// Judges `series` simulated series of nights drawn by `night` (a value around its level,
/// as a run median of a benchmark would be): unchanged, and stepped down by `step` of its
/// magnitude after [`SIMULATED_HISTORY`] nights (a negated time, as lower-is-better metrics
/// are judged, by growing `step` more negative).
pub fn simulate(
    night: &mut dyn FnMut() -> f64,
    config: &HistoryConfig,
    series: usize,
    step: f64,
) -> Simulation {
    let flags_drop = |s: &[f64]| matches!(judge(s, config), HistoryVerdict::Regression { .. });
    let (mut false_alerts, mut judged) = (0usize, 0usize);
    for _ in 0..series {
        let values: Vec<f64> = (0..SIMULATED_NIGHTS).map(|_| night()).collect();
        for end in SIMULATED_HISTORY..=SIMULATED_NIGHTS {
            judged += 1;
            false_alerts += usize::from(flags_drop(&values[..end]));
        }
    }
    let mut detected = 0usize;
    for _ in 0..series {
        let values: Vec<f64> = (0..SIMULATED_HISTORY + 3)
            .map(|i| {
                let v = night();
                if i >= SIMULATED_HISTORY {
                    // Worse by `step` of its size: a negated time (a judged
                    // lower-is-better metric) grows more negative.
                    v - step * v.abs()
                } else {
                    v
                }
            })
            .collect();
        detected += usize::from(
            (SIMULATED_HISTORY + 1..=SIMULATED_HISTORY + 3).any(|end| flags_drop(&values[..end])),
        );
    }
    Simulation {
        series,
        nights_judged: judged,
        false_alerts_per_100: 100.0 * false_alerts as f64 / judged.max(1) as f64,
        step,
        detected_within_3: detected as f64 / series.max(1) as f64,
    }
}

/// [`simulate`] with nights resampled from measured run medians (a calibration's): the
/// measured spread and its tails, outliers included, without assuming a distribution. The
/// bootstrap is smoothed (each draw plus Gaussian noise of Silverman's bandwidth): drawing 40
/// nights from a dozen values repeats each one, and a reference made of repeats has a MAD of 0,
/// a spread no real series shows. A night is the median of `processes` such draws: a nightly
/// that runs each case in that many separate processes (`nightly --processes`), whose runs the
/// verdicts take together as one night. `None` below 3 medians or without a process.
#[must_use]
pub fn simulate_resampled(
    run_medians: &[f64],
    config: &HistoryConfig,
    step: f64,
    seed: u64,
    processes: usize,
) -> Option<Simulation> {
    if run_medians.len() < 3 || processes == 0 {
        return None;
    }
    let n = run_medians.len() as f64;
    let mean = run_medians.iter().sum::<f64>() / n;
    let sd = (run_medians.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let mut sorted = run_medians.to_vec();
    sorted.sort_by(f64::total_cmp);
    let iqr = crate::stats::percentile_sorted(&sorted, 75.0)
        - crate::stats::percentile_sorted(&sorted, 25.0);
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    let bandwidth = 0.9 * spread * n.powf(-0.2);
    let mut rng = crate::stats::SplitMix64::new(seed);
    let mut draws = vec![0.0; processes];
    let mut night = || {
        for d in &mut draws {
            *d = run_medians[rng.below(run_medians.len())] + bandwidth * standard_normal(&mut rng);
        }
        median(&mut draws)
    };
    Some(simulate(&mut night, config, 200, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core's seeded generator with Box–Muller: the same noise every run.
    struct Noise(crate::stats::SplitMix64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            standard_normal(&mut self.0)
        }
    }

    fn night(noise: &mut Noise, level: f64, relative_spread: f64) -> f64 {
        level * (relative_spread * noise.normal()).exp()
    }

    /// Share of nights another job slows by 10–30% (measured here: one night in 14 of the
    /// nightly test's real runs fell 22% below its neighbours).
    const OUTLIER_NIGHTS: f64 = 0.05;

    /// A night with the heavy tail a shared machine adds.
    fn shared_night(noise: &mut Noise, level: f64, relative_spread: f64) -> f64 {
        let v = night(noise, level, relative_spread);
        if noise.uniform() < OUTLIER_NIGHTS {
            v * (0.9 - 0.2 * noise.uniform())
        } else {
            v
        }
    }

    fn flags_drop(verdict: &HistoryVerdict) -> bool {
        matches!(verdict, HistoryVerdict::Regression { .. })
    }

    #[test]
    fn between_run_spread_is_robust_and_the_cv_is_not() {
        let b = between_runs(&[100.0, 102.0, 98.0, 101.0, 99.0, 50.0]).expect("spread");
        assert_eq!((b.runs, b.min, b.max), (6, 50.0, 102.0));
        assert!((b.median - 99.5).abs() < 1e-9, "{b:?}");
        // MAD 1.5 → 2.2% of the median; the outlier puts the CV past 20%.
        assert!(
            (b.robust_spread - 1.4826 * 1.5 / 99.5).abs() < 1e-9,
            "{b:?}"
        );
        assert!(b.cv > 0.2, "{b:?}");
        assert_eq!(between_runs(&[1.0]), None);
    }

    #[test]
    fn too_little_history_gets_no_verdict() {
        let config = HistoryConfig::default();
        let v = judge(&[100.0; 10], &config);
        assert_eq!(v, HistoryVerdict::NotEnoughHistory { have: 5, need: 8 });
        assert!(matches!(
            judge(&[100.0; 13], &config),
            HistoryVerdict::Steady(_)
        ));
    }

    #[test]
    fn one_outlier_night_moves_neither_the_reference_nor_the_verdict() {
        let config = HistoryConfig::default();
        let mut noise = Noise(crate::stats::SplitMix64::new(1));
        let mut series: Vec<f64> = (0..40).map(|_| night(&mut noise, 100.0, 0.02)).collect();
        series[20] = 30.0; // a night the machine was shared
        let HistoryVerdict::Steady(evidence) = judge(&series, &config) else {
            panic!("an old outlier is no regression");
        };
        assert!(
            (evidence.reference_median - 100.0).abs() < 2.0,
            "{evidence:?}"
        );
        assert!(evidence.spread < 3.0, "{evidence:?}");
        // The same outlier as the newest night: far out, but a night counts 3 spreads at most,
        // so neither one nor two such nights are a regression yet; a third is.
        series.push(30.0);
        assert!(!flags_drop(&judge(&series, &config)));
        series.push(30.0);
        assert!(!flags_drop(&judge(&series, &config)));
        series.push(30.0);
        assert!(flags_drop(&judge(&series, &config)));
        // Two normal nights later the series has recovered: steady again.
        series.extend([100.0, 100.5]);
        assert!(
            matches!(judge(&series, &config), HistoryVerdict::Steady(_)),
            "{:?}",
            judge(&series, &config)
        );
    }

    #[test]
    fn the_rank_probability_is_the_exchangeable_chance_of_ranking_that_far() {
        let reference: Vec<f64> = (1..=12).map(f64::from).collect();
        // All three below every reference night: 1 / C(15, 3).
        let p = rank_probability(&reference, &[0.1, 0.2, 0.3], true);
        assert!((p - 1.0 / 455.0).abs() < 1e-12, "{p}");
        // Two reference nights at or below the highest of them: C(5, 3) / C(15, 3).
        let p = rank_probability(&reference, &[0.5, 2.0, 1.5], true);
        assert!((p - 10.0 / 455.0).abs() < 1e-12, "{p}");
        // The mirror image, for a rise.
        let p = rank_probability(&reference, &[13.0, 11.0, 14.0], false);
        assert!((p - 10.0 / 455.0).abs() < 1e-12, "{p}");
        // Among the reference's middle nights: nothing unusual.
        assert!(rank_probability(&reference, &[6.0, 7.0, 5.0], true) > 0.1);
    }

    /// The MiMo twin's speed is bimodal by process (about 12,000 or 7,500 t/s), and a clean-clone
    /// CI's nightly test flagged an unchanged night of it: a history with two slow-mode nights in
    /// 13, then an unchanged stretch with one more of them, two nights a little low and one 8.5%
    /// down. The CUSUM alone (in spreads of the fast mode) calls it a regression; the rank test
    /// sees that the reference's own slow nights rank below the newest ones. Decoding halved for
    /// three nights is still a regression.
    #[test]
    fn a_series_with_two_speed_modes_alerts_on_a_change_not_on_its_slow_mode() {
        let mut reference: Vec<f64> = (0..11_i32)
            .map(|i| 12_000.0 * (1.0 + 0.01 * f64::from(i % 5 - 2) / 2.0))
            .collect();
        reference.insert(3, 7_500.0);
        reference.insert(9, 7_600.0);
        let config = HistoryConfig::default();
        let unchanged: Vec<f64> = reference
            .iter()
            .copied()
            .chain([7_500.0, 11_800.0, 11_700.0, 12_000.0 * 0.915])
            .collect();
        let verdict = judge(&unchanged, &config);
        assert!(matches!(verdict, HistoryVerdict::Steady(_)), "{verdict:?}");
        // A probability is at most 1: the rank test never vetoes.
        let cusum_alone = HistoryConfig {
            rank_alpha: 1.1,
            ..config
        };
        let verdict = judge(&unchanged, &cusum_alone);
        assert!(flags_drop(&verdict), "the CUSUM alone: {verdict:?}");
        let halved: Vec<f64> = reference
            .iter()
            .copied()
            .chain([11_900.0, 6_000.0, 6_050.0, 5_950.0])
            .collect();
        let verdict = judge(&halved, &config);
        assert!(flags_drop(&verdict), "{verdict:?}");
    }

    /// A device whose hot nights (12%) run 10–30% slow: a fresh 16% step lands inside that range
    /// and is still flagged on its third night, by persistence (a band wide enough to hold the
    /// hot nights hid it: the reverted percentile band); the hot nights alone are not.
    #[test]
    fn a_change_the_size_of_a_throttled_night_is_found_by_persistence() {
        let config = HistoryConfig::default();
        let mut noise = Noise(crate::stats::SplitMix64::new(31));
        let hot_night = |noise: &mut Noise| {
            let v = night(noise, 100.0, 0.03);
            if noise.uniform() < 0.12 {
                v / (1.1 + 0.2 * noise.uniform())
            } else {
                v
            }
        };
        let (mut flagged, mut false_alerts, mut judged) = (0, 0, 0);
        for _ in 0..200 {
            let history: Vec<f64> = (0..35).map(|_| hot_night(&mut noise)).collect();
            for end in 30..=35 {
                judged += 1;
                if flags_drop(&judge(&history[..end], &config)) {
                    false_alerts += 1;
                }
            }
            let stepped: Vec<f64> = history
                .iter()
                .copied()
                .chain((0..3).map(|_| hot_night(&mut noise) / 1.16))
                .collect();
            if flags_drop(&judge(&stepped, &config)) {
                flagged += 1;
            }
        }
        println!(
            "{flagged} of 200 steps flagged on the third night; {false_alerts} false alerts in {judged} nights"
        );
        assert!(flagged >= 150, "{flagged} of 200");
        assert!(100 * false_alerts <= judged, "{false_alerts} in {judged}");
    }

    /// Run medians recorded on a real machine, one file per case and metric (each file's header
    /// says how it was recorded): the nights a real series has, modes and tails included.
    const RECORDED_SERIES: [(&str, &str); 4] = [
        (
            "mimo-7b-twin16 generation tokens/s",
            include_str!("../tests/recorded_series/mimo-7b-twin16-generation-tokens-per-s.txt"),
        ),
        (
            "mimo-7b-twin16 ms per token",
            include_str!("../tests/recorded_series/mimo-7b-twin16-ms-per-token.txt"),
        ),
        (
            "smollm2-135m generation tokens/s",
            include_str!("../tests/recorded_series/smollm2-135m-generation-tokens-per-s.txt"),
        ),
        (
            "smollm2-135m ms per token",
            include_str!("../tests/recorded_series/smollm2-135m-ms-per-token.txt"),
        ),
    ];

    /// A recorded file's values as the judge sees them: negated when its header says lower is
    /// better (as the report judges times).
    fn recorded(text: &str) -> Vec<f64> {
        let sign = if text.lines().any(|l| l.starts_with("# lower is better")) {
            -1.0
        } else {
            1.0
        };
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| sign * l.parse::<f64>().expect("a run median per line"))
            .collect()
    }

    /// Real series, resampled as nights (each night one of the recorded runs, drawn alike: the
    /// series' own modes and tails, no distribution assumed): at most 1 false alert per 100
    /// nights, where the CUSUM alone gives more. The nightly test's protocol (13 reference nights, 2 unchanged nights judged) is
    /// replayed on them too, for the false-failure rate its docs state.
    #[test]
    fn recorded_real_series_meet_the_false_alert_target() {
        let config = HistoryConfig::default();
        // A probability is at most 1: the rank test never vetoes.
        let cusum_alone = HistoryConfig {
            rank_alpha: 1.1,
            ..config
        };
        let mut worst_alone = 0.0f64;
        for (name, text) in RECORDED_SERIES {
            let medians = recorded(text);
            assert!(medians.len() >= 30, "{name}: {} runs", medians.len());
            let mut rng = crate::stats::SplitMix64::new(41);
            let mut draw = || medians[rng.below(medians.len())];
            let judged = super::simulate(&mut draw, &config, 200, 0.1);
            let alone = super::simulate(&mut draw, &cusum_alone, 200, 0.1);
            let (mut protocol_failures, trials) = (0usize, 20_000usize);
            for _ in 0..trials {
                let nights: Vec<f64> = (0..15).map(|_| draw()).collect();
                protocol_failures += usize::from(
                    flags_drop(&judge(&nights[..14], &config))
                        || flags_drop(&judge(&nights, &config)),
                );
            }
            println!(
                "{name}: {:.2} false alerts per 100 nights ({:.2} under the CUSUM alone), {:.0}% of 10% steps within 3 nights; the nightly test's two unchanged nights flagged in {protocol_failures} of {trials} replays",
                judged.false_alerts_per_100,
                alone.false_alerts_per_100,
                100.0 * judged.detected_within_3
            );
            assert!(judged.false_alerts_per_100 <= 1.0, "{name}: {judged:?}");
            worst_alone = worst_alone.max(alone.false_alerts_per_100);
        }
        // The recorded tails are what the rank test is for: the CUSUM alone misses the target
        // on them (1.6–2.1 per 100 nights on the twin, 2026-12-07).
        assert!(worst_alone > 1.0, "{worst_alone}");
    }

    #[test]
    fn a_step_is_dated_at_the_night_it_happened() {
        let config = HistoryConfig::default();
        let mut noise = Noise(crate::stats::SplitMix64::new(2));
        let mut series: Vec<f64> = (0..30).map(|_| night(&mut noise, 100.0, 0.01)).collect();
        series.extend((0..3).map(|_| night(&mut noise, 85.0, 0.01)));
        match judge(&series, &config) {
            HistoryVerdict::Regression { since, evidence } => {
                assert_eq!(since, 30, "{evidence:?}");
            }
            other => panic!("a 15% step in 1% noise: {other:?}"),
        }
        // The mirror image is an improvement, not a regression.
        let risen: Vec<f64> = series.iter().map(|v| 200.0 - v).collect();
        assert!(matches!(
            judge(&risen, &config),
            HistoryVerdict::Improvement { since: 30, .. }
        ));
    }

    /// The simulation the docs quote: series of lognormal nights at a given between-run spread,
    /// 5% of them outliers 10–30% slow. Unchanged: the false alerts per 100 nights judged.
    /// Stepped down by 10% at night 40: the share of series flagged by the third night after
    /// the step.
    fn simulate(relative_spread: f64, seed: u64) -> (f64, f64) {
        let mut noise = Noise(crate::stats::SplitMix64::new(seed));
        let mut draw = || shared_night(&mut noise, 1000.0, relative_spread);
        let s = super::simulate(&mut draw, &HistoryConfig::default(), 200, 0.1);
        (s.false_alerts_per_100, s.detected_within_3)
    }

    #[test]
    fn resampled_medians_are_simulated_and_too_few_are_refused() {
        let config = HistoryConfig::default();
        assert_eq!(simulate_resampled(&[1.0, 2.0], &config, 0.1, 1, 1), None);
        assert_eq!(
            simulate_resampled(&[1.0, 2.0, 3.0], &config, 0.1, 1, 0),
            None
        );
        let mut noise = Noise(crate::stats::SplitMix64::new(21));
        let tight: Vec<f64> = (0..12).map(|_| night(&mut noise, 100.0, 0.01)).collect();
        let s = simulate_resampled(&tight, &config, 0.1, 1, 1).expect("simulated");
        assert!(
            s.false_alerts_per_100 <= 1.0 && s.detected_within_3 >= 0.9,
            "{s:?}"
        );
        // Medians 20% apart half the time: a 10% step hides in that.
        let bimodal: Vec<f64> = (0..12)
            .map(|i| if i % 2 == 0 { 100.0 } else { 80.0 })
            .collect();
        let s = simulate_resampled(&bimodal, &config, 0.1, 1, 1).expect("simulated");
        assert!(
            s.detected_within_3 < 0.5 && s.false_alerts_per_100 <= 1.0,
            "{s:?}"
        );
    }

    #[test]
    fn a_negated_time_series_detects_its_step_as_a_speed_series_does() {
        // Lower-is-better metrics are judged negated; their simulated step must make them
        // worse (a 10% longer time), not better.
        let config = HistoryConfig::default();
        let mut noise = Noise(crate::stats::SplitMix64::new(8));
        let times: Vec<f64> = (0..12).map(|_| night(&mut noise, 10.0, 0.01)).collect();
        let negated: Vec<f64> = times.iter().map(|t| -t).collect();
        let s = simulate_resampled(&negated, &config, 0.1, 1, 1).expect("simulated");
        assert!(
            s.detected_within_3 >= 0.9 && s.false_alerts_per_100 <= 1.0,
            "{s:?}"
        );
    }

    #[test]
    fn nights_of_several_processes_detect_what_one_process_cannot() {
        // Run medians spread by 3% (SmolLM2 on this VM: 2.7% CV, 3.8% robust): one process a
        // night misses most 10% steps, the median of five catches nine in ten, at no more alarms.
        let config = HistoryConfig::default();
        let mut noise = Noise(crate::stats::SplitMix64::new(5));
        let runs: Vec<f64> = (0..12).map(|_| night(&mut noise, 100.0, 0.03)).collect();
        let one = simulate_resampled(&runs, &config, 0.1, 9, 1).expect("simulated");
        let three = simulate_resampled(&runs, &config, 0.1, 9, 3).expect("simulated");
        let five = simulate_resampled(&runs, &config, 0.1, 9, 5).expect("simulated");
        println!("one process: {one:?}\nthree: {three:?}\nfive: {five:?}");
        assert!(one.detected_within_3 < 0.5, "{one:?}");
        assert!(three.detected_within_3 > one.detected_within_3, "{three:?}");
        assert!(
            five.detected_within_3 >= 0.9 && five.false_alerts_per_100 <= 1.0,
            "{five:?}"
        );
    }

    #[test]
    fn simulated_nights_meet_the_false_alert_and_detection_targets() {
        // Between-run spreads a quiet lab machine shows (1–2.5% of the median).
        for (spread, seed) in [(0.01, 11), (0.02, 12), (0.025, 13)] {
            let (false_per_100, detected) = simulate(spread, seed);
            println!(
                "spread {:.1}%: {false_per_100:.2} false alerts per 100 nights, {:.0}% of 10% steps within 3 nights",
                100.0 * spread,
                100.0 * detected
            );
            assert!(
                false_per_100 <= 1.0,
                "spread {spread}: {false_per_100} per 100"
            );
            assert!(detected >= 0.9, "spread {spread}: {detected}");
        }
        // Wider spreads keep the false-alert rate; the detectable step grows with them, and
        // the evidence says so.
        let (false_per_100, _) = simulate(0.06, 14);
        assert!(false_per_100 <= 1.0, "{false_per_100}");
        let mut noise = Noise(crate::stats::SplitMix64::new(15));
        let series: Vec<f64> = (0..40).map(|_| night(&mut noise, 1000.0, 0.06)).collect();
        let HistoryVerdict::Steady(evidence) = judge(&series, &HistoryConfig::default()) else {
            panic!("unchanged");
        };
        assert!(evidence.detectable_step > 0.1, "{evidence:?}");
    }
}
