//! Sustained decode and goodput with a real engine in a real child process. A throttle injected 10 s into a
//! 20 s run (decoding 50% slower from then on, the fault switch's schedule) is found by the
//! detector, and the run stores its 1 Hz series. The onset's exact second is the unit tests'
//! business (`edgebench_core::throttle`): this VM's own speed wanders by 5–40% within 20 s,
//! so here only what such noise cannot fake is asserted.

use crate::common;

use common::{child_case, smoke_request};
use edgebench::fault::FAULT_ENV;
use edgebench::isolate::run_in_child;

const CASE: &str = "sustained_decode::mimo-7b-twin16::Q4_0::llama_cpp::c1";

#[test]
fn an_injected_throttle_is_found_after_it_began_and_the_series_is_stored() {
    common::model("mimo-7b-twin16", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let request = smoke_request(CASE, "sustained-run", &db);
    let fault = format!("slow-decode:{CASE}:0.5@10");
    let report = run_in_child(&child_case(&request, &[(FAULT_ENV, fault.as_str())]))
        .expect("the case passes");
    assert!(report.generation_tokens_per_s > 0.0);

    let conn = rusqlite::Connection::open(&db).expect("open");
    let (onset, ratio, series): (Option<f64>, Option<f64>, String) = conn
        .query_row(
            "SELECT throttle_onset_s, steady_state_ratio, sustained FROM runs WHERE id = ?1",
            ["sustained-run"],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the run");
    let series = edgebench::store::dataset::SustainedSeries::parse(&series).expect("format 1");
    // 20 samples at 1 Hz (smoke runs last 20 s).
    assert!(
        (19..=21).contains(&series.points.len()),
        "{}",
        series.points.len()
    );
    let onset = onset.expect("the throttle is found");
    // The stored verdict is the detector's on the stored series (its rule is the unit tests'
    // business), so an onset before the injected 10 s means the series really dipped there.
    let rates: Vec<f64> = series.points.iter().map(|p| p.1).collect();
    let judged = edgebench::core::throttle::analyze(&rates, 1.0);
    assert_eq!(judged.onset_s, Some(onset), "{rates:?}");
    // Equal but for the last bit: the stored series went through JSON's shortest decimal.
    assert!(
        matches!((judged.steady_state_ratio, ratio), (Some(a), Some(b)) if (a - b).abs() <= 1e-12 * b.abs()),
        "{:?} vs stored {ratio:?}: {rates:?}",
        judged.steady_state_ratio
    );
    // And the injected halving is in the series: the seconds after it (from 12 s, past the
    // second it began in) run well below those before it. Medians of 8 samples each side: the
    // VM's own wander (5–40% within 20 s, mostly single seconds) does not move them by 25%.
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (before, after): (Vec<f64>, Vec<f64>) = (
        series
            .points
            .iter()
            .filter(|p| p.0 <= 10.0)
            .map(|p| p.1)
            .collect(),
        series
            .points
            .iter()
            .filter(|p| p.0 > 12.0)
            .map(|p| p.1)
            .collect(),
    );
    let drop = median(&after) / median(&before);
    assert!(
        drop < 0.75,
        "injected 0.5× from 10 s, measured {drop:.2}: {rates:?}"
    );
    assert!(
        judged.onset_s.is_some_and(|o| o <= 21.0),
        "the throttle is found within the run: {rates:?}"
    );
    // No bound on the stored ratio itself: in a 20 s run it compares the first 7 s with the
    // last 7, and a slow phase of the host in the first seconds made it 0.93 in a clean-clone
    // CI where the halving was plainly in the series (the check above passed). That it is the
    // detector's on the stored series is checked above; its rule, in core's unit tests.
    let ratio = ratio.expect("ratio");
    eprintln!("injected at 10 s: onset {onset:.0} s, steady-state ratio {ratio:.2}");
}

#[test]
fn a_goodput_sweep_serves_its_rates_and_stores_them() {
    common::model("mimo-7b-twin16", "Q4_0");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let case = "goodput::mimo-7b-twin16::Q4_0::llama_cpp::c4";
    let request = smoke_request(case, "goodput-run", &db);
    run_in_child(&child_case(&request, &[])).expect("the case passes");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let sweep: String = conn
        .query_row(
            "SELECT goodput FROM runs WHERE id = 'goodput-run'",
            [],
            |r| r.get(0),
        )
        .expect("the sweep");
    let sweep = edgebench::store::dataset::GoodputSweep::parse(&sweep).expect("format 1");
    // Smoke: two rates from the scenario's start, doubled, 4 requests each, every request
    // accounted for.
    // The second rate follows the first's verdict (doubled when it passed, halved when this
    // busy machine missed the targets at 8/s): the rule, not the machine's speed, is checked.
    let rates: Vec<f64> = sweep.points.iter().map(|p| p.rate_per_s).collect();
    let second = if sweep.points[0].passed { 16.0 } else { 4.0 };
    assert_eq!(rates, [8.0, second], "{:?}", sweep.points);
    assert!(
        sweep
            .points
            .iter()
            .all(|p| p.requests == 4 && (0.0..=1.0).contains(&p.met_share))
    );
    assert_eq!(sweep.end, edgebench::core::goodput::SweepEnd::MaxSteps);
    assert_eq!(
        (sweep.ttft_ms, sweep.tpot_ms, sweep.share),
        (500.0, 30.0, 0.9)
    );
}
