//! Sustained decode with a real engine in a real child process: a throttle injected 10 s into a
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
    if common::model("mimo-7b-twin16", "Q4_0").is_none() {
        return;
    }
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
    // Looked for once the first window (20 s ÷ 3) is over.
    assert!(onset > 20.0 / 3.0 && onset <= 21.0, "{onset}");
    let ratio = ratio.expect("ratio");
    assert!(ratio < 0.8, "the last window runs at half speed: {ratio}");
    eprintln!("injected at 10 s: onset {onset:.0} s, steady-state ratio {ratio:.2}");
}
