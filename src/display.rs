//! What the scenario harness shows its user, as nextest's reporter does: the harness emits
//! [`HarnessEvent`]s and [`render`] turns each into the lines the user reads. No I/O and no
//! clock here, so what users see is snapshot-tested.

use std::path::Path;
use std::time::Duration;

use crate::outcome::CaseReport;

/// Something the harness has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum HarnessEvent<'a> {
    /// A plain `cargo test` (no case named): every case runs once into a scratch database.
    PlainTest {
        scratch_db: &'a Path,
        results_db: &'a Path,
    },
    /// A case passed: its headline numbers and where its run is stored.
    CasePassed {
        case: &'a str,
        model_label: &'a str,
        smoke: bool,
        report: &'a CaseReport,
        db: &'a Path,
    },
    /// A case finished (passed, failed or ignored).
    Progress {
        done: usize,
        total: usize,
        elapsed: Duration,
        left: TimeLeft,
    },
}

/// What the progress line says about the time left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeLeft {
    /// Every case is done.
    None,
    /// No case has run yet (only ignored ones): nothing to estimate from.
    Unknown,
    About(Duration),
}

/// The lines `event` shows, each without its newline.
#[must_use]
pub fn render(event: &HarnessEvent<'_>) -> Vec<String> {
    match event {
        HarnessEvent::PlainTest {
            scratch_db,
            results_db,
        } => vec![format!(
            "no case named (no filter, EDGEBENCH_CASES or EDGEBENCH_DB): each case runs once (smoke) into {}; `cargo test --test scenarios -- FILTER` or `cargo xtask bench` measures into {}",
            scratch_db.display(),
            results_db.display()
        )],
        HarnessEvent::CasePassed {
            case,
            model_label,
            smoke,
            report,
            db,
        } => case_passed(case, model_label, *smoke, report, db),
        HarnessEvent::Progress {
            done,
            total,
            elapsed,
            left,
        } => {
            let estimate = match left {
                TimeLeft::None => String::new(),
                TimeLeft::Unknown => ", time left: unknown yet".to_owned(),
                TimeLeft::About(d) => format!(", about {} left", minutes(*d)),
            };
            vec![format!(
                "    [{done}/{total} cases done, {} elapsed{estimate}]",
                minutes(*elapsed)
            )]
        }
    }
}

fn case_passed(
    case: &str,
    model_label: &str,
    smoke: bool,
    report: &CaseReport,
    db: &Path,
) -> Vec<String> {
    let roofline = report
        .roofline_fraction
        .map_or("n/a".into(), |f| format!("{:.1}%", f * 100.0));
    let peak = report.peak_rss_bytes.map_or("n/a".into(), |p| {
        format!(
            "{} MiB ({:+.0}%)",
            p >> 20,
            report.memory_estimate_error_pct().unwrap_or(f64::NAN)
        )
    });
    let preview: String = report.first_output.chars().take(60).collect();
    let mut lines = vec![format!(
        "    {}{case} [{model_label}]: generation {:.1} t/s, prefill {:.1} t/s over {} in {} (stop: {}), {} rejected, roofline {roofline}, memory estimate {} MiB vs peak RSS {peak}; run {} → {}; output: {preview:?}",
        if smoke { "(smoke) " } else { "" },
        report.generation_tokens_per_s,
        report.prefill_tokens_per_s,
        count(report.measured_requests, "request"),
        count(report.measured_repetitions as usize, "repetition"),
        report.stop_reason.as_str(),
        report.rejected,
        report.estimated_peak_bytes >> 20,
        report.run_id,
        db.display(),
    )];
    if let Some(a) = &report.accuracy {
        lines.push(format!(
            "    accuracy: acc {:.1}% ± {:.1} (n = {}), acc_norm {:.1}%, macro {:.1}%",
            100.0 * a.acc,
            100.0 * a.acc_stderr,
            a.n,
            100.0 * a.acc_norm,
            100.0 * a.macro_acc
        ));
    }
    lines
}

/// `1 request`, `24 requests`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `42 s`, or `3 min 07 s`.
fn minutes(d: Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else {
        format!(
            "{:.0} min {:02.0} s",
            (seconds / 60.0).floor(),
            seconds % 60.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::AccuracyReport;
    use edgebench_core::measure::StopReason;

    fn report() -> CaseReport {
        CaseReport {
            run_id: "run-0001".into(),
            measured_requests: 24,
            measured_repetitions: 6,
            generation_tokens_per_s: 41.234,
            prefill_tokens_per_s: 512.05,
            rejected: 1,
            stop_reason: StopReason::CiTarget,
            roofline_fraction: Some(0.4321),
            estimated_peak_bytes: 300 << 20,
            peak_rss_bytes: Some(250 << 20),
            first_output: "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number, iteratively, in O(n) time.\"\"\"".into(),
            first_output_tokens: vec![1, 2, 3],
            accuracy: None,
        }
    }

    /// What a user reads through a whole run: the plain-test notice, a measured case, a smoke
    /// case with no roofline and no RSS, an accuracy case, and the progress after each.
    #[test]
    fn what_the_harness_shows() {
        let db = Path::new("results/edgebench.sqlite");
        let measured = report();
        let smoke = CaseReport {
            roofline_fraction: None,
            peak_rss_bytes: None,
            stop_reason: StopReason::Smoke,
            measured_repetitions: 1,
            ..report()
        };
        let accuracy = CaseReport {
            accuracy: Some(AccuracyReport {
                n: 200,
                acc: 0.315,
                acc_stderr: 0.0328,
                acc_norm: 0.3,
                macro_acc: 0.29,
                predicted: "ABCD".into(),
            }),
            stop_reason: StopReason::Fixed,
            ..report()
        };
        let s = Duration::from_secs;
        let progress = |done, elapsed, left| HarnessEvent::Progress {
            done,
            total: 4,
            elapsed: s(elapsed),
            left,
        };
        let events = [
            HarnessEvent::PlainTest {
                scratch_db: Path::new("target/edgebench-test.sqlite"),
                results_db: db,
            },
            progress(1, 0, TimeLeft::Unknown),
            HarnessEvent::CasePassed {
                case: "code_generation::phi4-mini-twin::Q4_0::llama_cpp::c1",
                model_label: "Phi-4-mini (1/16 twin)",
                smoke: false,
                report: &measured,
                db,
            },
            progress(2, 96, TimeLeft::About(s(190))),
            HarnessEvent::CasePassed {
                case: "code_generation::phi4-mini-twin::Q4_0::candle::c1",
                model_label: "Phi-4-mini (1/16 twin)",
                smoke: true,
                report: &smoke,
                db,
            },
            progress(3, 101, TimeLeft::About(s(50))),
            HarnessEvent::CasePassed {
                case: "accuracy::smollm2-135m::Q4_1::llama_cpp::c1",
                model_label: "SmolLM2-135M-Instruct",
                smoke: false,
                report: &accuracy,
                db,
            },
            progress(4, 121, TimeLeft::None),
        ];
        let shown: Vec<String> = events.iter().flat_map(render).collect();
        insta::assert_snapshot!(shown.join("\n"));
    }
}
