//! Output integrity on real runs: a measured SmolLM2 case passes (greedy first tokens the same
//! in every repetition, every turn of the requested length); the same case with first tokens
//! that change after the warmup (an injected fault, as an engine computing differently would)
//! fails, is stored so and is left out of comparisons. And the good run measured at least the
//! minimum measured duration.

use crate::common;

const CASE: &str = "twin_fidelity_short::smollm2-135m::Q4_1::llama_cpp::c1";

fn run(run_id: &str, env: &[(&str, &str)], db: &std::path::Path) -> edgebench::store::dataset::Run {
    let measured = edgebench::plan::Mode {
        smoke: false,
        fixed_stopping: true,
        ..edgebench::plan::Mode::default()
    };
    common::run_case(CASE, run_id, db, measured, env)
}

#[test]
fn a_real_run_passes_integrity_and_a_drifting_engine_fails_it() {
    common::model("smollm2-135m", "Q4_1");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("results.sqlite");
    let good = run("good", &[], &db);
    assert_eq!(
        good.integrity,
        Some(edgebench::core::run_facts::IntegrityVerdict::Pass)
    );
    // Its plan (6 repetitions of 64 tokens, about 4 s here) is shorter than the minimum
    // measured duration: repetitions went on until it had passed.
    let measured_s: f64 = good
        .phases
        .iter()
        .map(|p| (p.harness_prefill_ns + p.harness_decode_ns) as f64 / 1e9)
        .sum();
    let minimum = edgebench::core::measure::MIN_MEASURED_SECONDS;
    assert!(
        measured_s >= 0.95 * minimum,
        "measured {measured_s:.2} s in {} repetitions, below the {minimum} s minimum",
        good.phases.len()
    );
    // Comparable unless something else held the cores (a compile beside the tests).
    assert_eq!(
        edgebench_report::comparable(&good),
        edgebench_report::contended(&good).is_none()
    );

    // Every prefill after the first (the warmup's) returns another first token.
    let drift = format!("drift-first-token:{CASE}:1");
    let bad = run("drifting", &[(edgebench::fault::FAULT_ENV, &drift)], &db);
    let verdict = bad.integrity.clone().expect("checked").to_string();
    assert!(
        verdict.starts_with("fail: first token differs between repetitions for "),
        "{verdict}"
    );
    assert!(!edgebench_report::comparable(&bad));
}
